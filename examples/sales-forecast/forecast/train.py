"""Fit the daily revenue forecast and log it to MLflow (task `train` of sales/orders_daily).

    python -m forecast.train --days 30 --table lake.sales.gold.revenue

Reads the gold table through Trino, as the task's Trino connection (the job passes its host, port
and user in TRINO_HOST, TRINO_PORT and TRINO_USER, templated by Airflow from the connection), fits
a moving-average model of the daily revenue and logs it as one MLflow run. olo sets
MLFLOW_EXPERIMENT_NAME, MLFLOW_TRACKING_URI and MLFLOW_RUN_CONTEXT for the task, so the plain
`mlflow.start_run()` below lands in the job's experiment tagged with the Airflow run, which is how
olo links the run to it.

Needs `mlflow-skinny` and `trino` (the Trino provider brings it) in the worker's Python.
"""

import argparse
import os
from decimal import Decimal

import mlflow
import trino


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="forecast horizon in days")
    parser.add_argument("--table", default="lake.sales.gold.revenue", help="catalog.workspace.namespace.table")
    parser.add_argument("--window", type=int, default=7, help="days the moving average covers")
    return parser.parse_args()


def quoted(table: str) -> str:
    """`lake.sales.gold.revenue` as Trino names it: the two-level namespace is one schema."""
    catalog, workspace, namespace, name = table.split(".")
    for part in (catalog, workspace, namespace, name):
        if not part.replace("_", "").isalnum():
            raise SystemExit(f"--table: {table!r} is not catalog.workspace.namespace.table")
    return f'{catalog}."{workspace}.{namespace}".{name}'


def daily_revenue(table: str) -> list[tuple[str, Decimal]]:
    conn = trino.dbapi.connect(
        host=os.environ["TRINO_HOST"],
        port=int(os.environ["TRINO_PORT"]),
        user=os.environ["TRINO_USER"],
    )
    cur = conn.cursor()
    cur.execute(f"SELECT order_date, sum(revenue) FROM {quoted(table)} GROUP BY 1 ORDER BY 1")
    return [(str(day), Decimal(total)) for day, total in cur.fetchall()]


def main() -> None:
    args = parse_args()
    history = daily_revenue(args.table)
    if not history:
        raise SystemExit(f"{args.table} has no rows: nothing to fit")
    recent = [total for _, total in history[-args.window :]]
    forecast = sum(recent) / len(recent)
    with mlflow.start_run(run_name="revenue_forecast"):
        mlflow.log_params(
            {
                "model": os.environ.get("FORECAST_MODEL", "moving_average"),
                "window": args.window,
                "horizon_days": args.days,
                "table": args.table,
            }
        )
        mlflow.log_metrics(
            {
                "history_days": len(history),
                "forecast_daily_revenue": float(forecast),
                "forecast_total_revenue": float(forecast * args.days),
            }
        )
    print(f"forecast: {float(forecast):.2f} a day over {args.days} days, from {len(history)} days")


if __name__ == "__main__":
    main()
