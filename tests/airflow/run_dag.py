"""Runs one DAG of a folder for real in Airflow (`dag.test()`: every task executes in this
process, against a fresh SQLite metadata database) and prints the outcome as JSON on the last
line. Used by tests/e2e/airflow.rs.

    python run_dag.py DAGS_DIR DAG_ID
"""

import json
import sys


def main():
    dags_dir, dag_id = sys.argv[1], sys.argv[2]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dags_dir)
    dag = bag.dags[dag_id]
    run = dag.test()
    tis = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(json.dumps({"state": str(run.state), "tasks": tis}))


if __name__ == "__main__":
    main()
