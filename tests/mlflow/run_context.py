"""Runs the task env of a rendered DAG through Jinja (as Airflow templates it) and MLflow's own
client: start_run() with no tags of its own, then prints the tags MLflow stored, as JSON.

    python run_context.py DAG_FILE TASK_ID RUN_ID TRACKING_DIR
"""
import ast
import json
import os
import sys

from jinja2.sandbox import SandboxedEnvironment

dag_file, task_id, run_id, tracking_dir = sys.argv[1:5]


def task_env(tree):
    """The `env` the rendered DAG gives task `task_id`: a literal, read without running the DAG."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kw = {k.arg: k.value for k in node.keywords}
        if "task_id" in kw and ast.literal_eval(kw["task_id"]) == task_id:
            if "env" in kw:
                return ast.literal_eval(kw["env"])
            return ast.literal_eval(kw["op_kwargs"])["env"]
    raise SystemExit(f"no task {task_id} in {dag_file}")


env = task_env(ast.parse(open(dag_file, encoding="utf-8").read()))
jinja = SandboxedEnvironment()
for key, value in env.items():
    os.environ[key] = jinja.from_string(value).render(run_id=run_id)
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///" + os.path.join(tracking_dir, "mlflow.db")

import mlflow  # noqa: E402  (after the environment is set, as in the task)

with mlflow.start_run() as run:
    pass
stored = mlflow.get_run(run.info.run_id).data.tags
print(json.dumps({
    "tags": {k: v for k, v in stored.items() if not k.startswith("mlflow.")},
    "olo_mlflow_tags": json.loads(os.environ["OLO_MLFLOW_TAGS"]),
}))
