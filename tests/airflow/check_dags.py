"""Loads a folder of rendered DAG files in Airflow's own DagBag and compares what Airflow parsed
with what the olo spec says. Used by tests/e2e/airflow.rs.

    python check_dags.py DAGS_DIR EXPECT.json  ->  prints one JSON object on the last line

EXPECT.json:
  {"dags": {dag_id: {"tasks": {task_id: {"upstream": [...], "operator": "BashOperator"}},
                     "schedule": str|null, "start_date": "YYYY-MM-DD"|null, "catchup": bool,
                     "params": {name: default}, "tags": [...]}},
   "values": [{"dag": id, "task": id|null, "path": [attr or key, ...], "expected": value}],
   "marker": path that must not exist after loading (a payload would create it)}
"""

import json
import os
import sys


def get(obj, path):
    for part in path:
        if isinstance(obj, dict):
            obj = obj[part]
        elif hasattr(obj, "get_param") and part in getattr(obj, "keys", lambda: [])():
            obj = obj.get_param(part)
        else:
            obj = getattr(obj, part)
    return obj


def main():
    dags_dir, expect_path = sys.argv[1], sys.argv[2]
    with open(expect_path) as f:
        expect = json.load(f)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dags_dir)
    mismatches = []

    def differ(what, got, want):
        if got != want:
            mismatches.append(f"{what}: Airflow has {got!r}, the spec says {want!r}")

    for dag_id, want in expect["dags"].items():
        dag = bag.dags.get(dag_id)
        if dag is None:
            mismatches.append(f"{dag_id}: not loaded")
            continue
        differ(f"{dag_id} task ids", sorted(dag.task_ids), sorted(want["tasks"]))
        for task_id, t in want["tasks"].items():
            if task_id not in dag.task_dict:
                continue
            task = dag.task_dict[task_id]
            differ(f"{dag_id}.{task_id} upstream", sorted(task.upstream_task_ids), sorted(t["upstream"]))
            differ(f"{dag_id}.{task_id} operator", type(task).__name__, t["operator"])
        differ(f"{dag_id} schedule", dag.schedule, want["schedule"])
        start = dag.start_date.strftime("%Y-%m-%d") if dag.start_date else None
        differ(f"{dag_id} start_date", start, want["start_date"])
        if dag.start_date is not None:
            differ(f"{dag_id} start_date tz", str(dag.start_date.tzinfo), "UTC")
        differ(f"{dag_id} catchup", dag.catchup, want["catchup"])
        differ(f"{dag_id} params", dict(dag.params.dump()), want["params"])
        differ(f"{dag_id} tags", sorted(dag.tags), sorted(want["tags"]))

    for v in expect.get("values", []):
        dag = bag.dags.get(v["dag"])
        if dag is None:
            continue
        obj = dag.task_dict[v["task"]] if v.get("task") else dag
        try:
            got = get(obj, v["path"])
        except Exception as e:  # noqa: BLE001 - report, do not crash
            mismatches.append(f"{v['dag']}/{v.get('task')}/{'.'.join(v['path'])}: {e!r}")
            continue
        if isinstance(got, tuple):
            got = list(got)
        if isinstance(got, set):
            got = sorted(got)
        differ(f"{v['dag']}/{v.get('task')}/{'.'.join(v['path'])}", got, v["expected"])

    marker = expect.get("marker")
    result = {
        "import_errors": {os.path.basename(k): v for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dags),
        "mismatches": mismatches,
        "marker_exists": bool(marker) and os.path.exists(marker),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
