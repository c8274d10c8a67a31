"""Airflow parse cost of olo's rendered DAG files vs the same jobs for dag-factory.

Run with the Airflow venv's python (scripts/python-env.sh airflow), AIRFLOW__CORE__LOAD_EXAMPLES=False
and a throwaway AIRFLOW_HOME (scripts/bench.sh sets both):

    python bench/airflow_parse.py compare OLO_DAGS DAG_FACTORY_DIR [--runs N] [--json OUT]
        Loads both folders with Airflow's own DagBag; checks zero import errors, the same dag ids,
        task ids, dependencies, schedule, start date, params, tags, default args and bash commands;
        then, in this one process (after `import airflow` and one warm-up parse of each folder),
        times DagBag(folder) N times per folder, alternating, plus an empty folder. The per-DAG
        cost is (median(folder) - median(empty)) / number of DAGs. Exit 1 on any mismatch.

    python bench/airflow_parse.py parse FOLDER
        The whole-process measurement: import Airflow, DagBag(FOLDER), exit (1 if any import
        error). Time it from outside (hyperfine, /usr/bin/time) on an empty folder and on each
        folder: the difference over the number of DAGs is the same slope, fixed cost included.

Bytecode caching is off (sys.dont_write_bytecode), so every parse compiles the .py DAG files, as
a first parse in Airflow does; dag-factory's YAML is parsed every time anyway.
"""

import gc
import json
import os
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True


def load(folder):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(folder)


def describe_task(task):
    return {
        "operator": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "bash_command": task.bash_command,
        "env": task.env,
        "append_env": task.append_env,
        "owner": task.owner,
        "retries": task.retries,
        "retry_delay": str(task.retry_delay),
        "execution_timeout": str(task.execution_timeout),
        "start_date": task.start_date.isoformat() if task.start_date else None,
    }


def describe_dag(dag, dag_factory):
    tags = set(dag.tags)
    doc_md = dag.doc_md or ""
    if dag_factory:
        # dag-factory adds its own tag and appends the YAML it read to the DAG docs.
        tags.discard("dagfactory")
        doc_md = doc_md.split("\n## YML DAG\n", 1)[0]
    return {
        "description": dag.description,
        "doc_md": doc_md,
        "schedule": str(dag.schedule),
        "timetable": repr(dag.timetable),
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "tags": sorted(tags),
        "params": dict(dag.params.dump()),
        "param_schemas": {k: dag.params.get_param(k).schema for k in dag.params.keys()},
        "param_descriptions": {k: dag.params.get_param(k).description for k in dag.params.keys()},
        "tasks": {t.task_id: describe_task(t) for t in dag.tasks},
    }


def compare(olo_bag, df_bag):
    """Every difference between the two DagBags, as readable lines (empty: equal)."""
    problems = []
    for name, bag in (("olo", olo_bag), ("dag-factory", df_bag)):
        for path, err in bag.import_errors.items():
            problems.append(f"{name}: import error in {path}: {err.strip().splitlines()[-1]}")
        if not bag.dags:
            problems.append(f"{name}: no DAG loaded")
    olo_ids, df_ids = set(olo_bag.dags), set(df_bag.dags)
    for d in sorted(olo_ids - df_ids):
        problems.append(f"{d}: only in olo")
    for d in sorted(df_ids - olo_ids):
        problems.append(f"{d}: only in dag-factory")
    for dag_id in sorted(olo_ids & df_ids):
        a = describe_dag(olo_bag.dags[dag_id], dag_factory=False)
        b = describe_dag(df_bag.dags[dag_id], dag_factory=True)
        for key in a:
            if key == "tasks":
                continue
            if a[key] != b[key]:
                problems.append(f"{dag_id}.{key}: olo {a[key]!r} vs dag-factory {b[key]!r}")
        if sorted(a["tasks"]) != sorted(b["tasks"]):
            problems.append(f"{dag_id} task ids: olo {sorted(a['tasks'])} vs dag-factory {sorted(b['tasks'])}")
            continue
        for task_id in a["tasks"]:
            ta, tb = a["tasks"][task_id], b["tasks"][task_id]
            for key in ta:
                if ta[key] != tb[key]:
                    problems.append(f"{dag_id}.{task_id}.{key}: olo {ta[key]!r} vs dag-factory {tb[key]!r}")
    return problems


def timed(folder):
    """Seconds of one DagBag(folder), and the number of DAGs. Every parse starts from the same
    state: the modules the previous parse left in sys.modules (DAG files keep their DAGs alive
    there) are removed and garbage is collected, outside the timed part."""
    before = set(sys.modules)
    gc.collect()
    t0 = time.perf_counter()
    bag = load(folder)
    elapsed = time.perf_counter() - t0
    if bag.import_errors:
        raise SystemExit(f"import errors while timing {folder}: {list(bag.import_errors)}")
    n = len(bag.dags)
    del bag
    for name in set(sys.modules) - before:
        del sys.modules[name]
    gc.collect()
    return elapsed, n


def cmd_compare(argv):
    import argparse

    p = argparse.ArgumentParser(prog="airflow_parse.py compare")
    p.add_argument("olo")
    p.add_argument("dag_factory")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    import airflow  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401

    import_s = time.perf_counter() - t0

    # Warm-up parses (they import BashOperator, dag-factory, ...) double as the equality check.
    olo_bag, df_bag = load(args.olo), load(args.dag_factory)
    problems = compare(olo_bag, df_bag)
    n_dags = len(olo_bag.dags)
    n_tasks = sum(len(d.tasks) for d in olo_bag.dags.values())
    del olo_bag, df_bag
    if problems:
        print(f"MISMATCH: {len(problems)} differences between olo's DAGs and dag-factory's:")
        for line in problems[:40]:
            print("  " + line)
        raise SystemExit(1)
    print(
        f"equal: {n_dags} DAGs, {n_tasks} tasks, zero import errors in both; same dag ids, task ids, "
        "dependencies, schedule, start date, catchup, max_active_runs, params, tags, default args, "
        "bash commands"
    )

    empty = tempfile.mkdtemp(prefix="olo-empty-dags-")
    samples = {"olo": [], "dag_factory": [], "empty": []}
    for _ in range(args.runs):
        for key, folder in (("olo", args.olo), ("dag_factory", args.dag_factory), ("empty", empty)):
            elapsed, n = timed(folder)
            expected = 0 if key == "empty" else n_dags
            if n != expected:
                raise SystemExit(f"{folder}: {n} DAGs loaded, expected {expected}")
            samples[key].append(elapsed)
    os.rmdir(empty)

    med = {k: statistics.median(v) for k, v in samples.items()}
    per_dag = {k: (med[k] - med["empty"]) / n_dags for k in ("olo", "dag_factory")}
    result = {
        "dags": n_dags,
        "tasks": n_tasks,
        "runs": args.runs,
        "import_airflow_s": import_s,
        "median_s": med,
        "samples_s": samples,
        "per_dag_ms": {k: v * 1000 for k, v in per_dag.items()},
        "ratio": per_dag["dag_factory"] / per_dag["olo"],
    }
    print(f"in one process, after `import airflow` ({import_s:.2f} s) and a warm-up parse of each folder;")
    print(f"DagBag(folder), median of {args.runs} runs (min .. max):")
    for key in ("olo", "dag_factory", "empty"):
        v = samples[key]
        print(f"  {key:<12} {med[key]:7.3f} s  ({min(v):.3f} .. {max(v):.3f})")
    print(
        f"per-DAG parse cost: olo {per_dag['olo'] * 1000:.2f} ms, dag-factory "
        f"{per_dag['dag_factory'] * 1000:.2f} ms -> olo is {result['ratio']:.2f}x faster per DAG"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


def cmd_parse(argv):
    (folder,) = argv
    bag = load(folder)
    if bag.import_errors:
        print(f"import errors: {list(bag.import_errors)}", file=sys.stderr)
        raise SystemExit(1)
    print(f"{len(bag.dags)} DAGs")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("compare", "parse"):
        raise SystemExit(__doc__)
    {"compare": cmd_compare, "parse": cmd_parse}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
