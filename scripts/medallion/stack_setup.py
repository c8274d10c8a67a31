"""What a platform team sets up once beside olo, for the bundled example's tasks to run: Airflow's
connections (Trino per workspace, Spark), dbt's profile for the running Trino, and the example's
landing files. scripts/medallion/e2e.py imports it; scripts/local-stack.sh runs it:

  python3 scripts/medallion/stack_setup.py workers WORKSPACE...   Airflow's connections + dbt profile
  python3 scripts/medallion/stack_setup.py landing FOLDER         the sample order exports

`workers` reads OLO_TEST_AIRFLOW_URL, OLO_TEST_AIRFLOW_PASSWORD, OLO_TEST_TRINO_URL and
DBT_PROFILES_DIR (what scripts/stack.sh exports). Standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

TASK_USER = "airflow"  # render.trino_task_user: the Trino user of Airflow's connections and dbt


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"medallion: {name} is not set (scripts/stack.sh sets it)")
    return value


def http(method: str, url: str, body=None, headers=None, timeout=60.0):
    """(status, parsed JSON or text) of one request; never raises for an HTTP status."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, f"could not reach {url}: {e}"
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


class Airflow:
    def __init__(self, url: str, password: str):
        self.url = url
        status, doc = http("POST", f"{url}/auth/token", {"username": "admin", "password": password})
        if status not in (200, 201):
            sys.exit(f"medallion: Airflow refused the admin password ({status}: {doc})")
        self.headers = {"Authorization": f"Bearer {doc['access_token']}"}

    def connection(self, conn: dict) -> None:
        """Creates or replaces one connection."""
        cid = conn["connection_id"]
        http("DELETE", f"{self.url}/api/v2/connections/{cid}", None, self.headers)
        status, doc = http("POST", f"{self.url}/api/v2/connections", conn, self.headers)
        if status != 201:
            sys.exit(f"medallion: Airflow refused connection {cid} ({status}: {doc})")

    def stop_scheduled_runs(self, dag_id: str, run_type: str = "scheduled") -> list[str]:
        """Marks the scheduler's own unfinished runs of a DAG failed. The example's jobs are
        unpaused with schedules, so Airflow starts a run for the latest interval as soon as it
        parses them (reading the production landing bucket, which this machine has not); with
        max_active_runs: 1 it would hold back the runs this script triggers."""
        status, doc = http("GET", f"{self.url}/api/v2/dags/{dag_id}/dagRuns?run_type={run_type}&state=queued&state=running",
                           None, self.headers)
        stopped = []
        for run in (doc or {}).get("dag_runs", []) if status == 200 else []:
            rid = run["dag_run_id"]
            http("PATCH", f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(rid, safe='')}",
                 {"state": "failed"}, self.headers)
            stopped.append(rid)
        return stopped


def workers(airflow: Airflow, trino_url: str, workspaces, profiles: Path) -> None:
    """Airflow's connections as the platform team sets them up (compose/ does it with env): one
    Trino connection per workspace (`olo_trino_<workspace>`, render.trino_conn_id) as the task
    user, and a local Spark; then dbt's profile for the example's dbt project."""
    host, port = trino_url.removeprefix("http://").split(":")
    for ws in workspaces:
        airflow.connection({"connection_id": f"olo_trino_{ws}", "conn_type": "trino", "host": host,
                            "port": int(port), "login": TASK_USER, "schema": "lake"})
    airflow.connection({"connection_id": "spark_default", "conn_type": "spark", "host": "local[2]"})
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "profiles.yml").write_text(
        "# Written by scripts/medallion/stack_setup.py for the running Trino: the example's dbt\n"
        "# project (examples-repo/workspaces/sales/dbt). Add your projects' profiles here.\n"
        "sales:\n  target: lake\n  outputs:\n    lake:\n"
        f"      type: trino\n      method: none\n      user: {TASK_USER}\n"
        f"      host: {host}\n      port: {port}\n      http_scheme: http\n"
        '      database: lake\n      schema: "sales.gold"\n      threads: 1\n'
    )


# The shop's order exports for two days: duplicates, a later update, a test order and a
# pending one, so each layer's rules show in the result.
ORDERS = [
    # id, customer, status, currency, total, created_at, updated_at
    (1001, 7, "PAID", "eur", "19.90", "2026-01-02T10:00:00Z", "2026-01-02T10:00:00Z"),
    (1002, 8, "pending", "usd", "5", "2026-01-02T11:30:00Z", "2026-01-02T11:30:00Z"),
    (1002, 8, "Shipped", "usd", "5", "2026-01-02T11:30:00Z", "2026-01-03T08:00:00Z"),
    (1003, 7, "paid", "eur", "30.10", "2026-01-02T15:00:00Z", "2026-01-02T15:00:00Z"),
    (1004, 9, "test", "eur", "99", "2026-01-02T16:00:00Z", "2026-01-02T16:00:00Z"),
    (1005, 9, "delivered", "eur", "12.50", "2026-01-03T09:00:00Z", "2026-01-03T09:00:00Z"),
    (1006, 8, "pending", "usd", "7", "2026-01-03T10:00:00Z", "2026-01-03T10:00:00Z"),
]
# gold.revenue from them: (order_date, currency, orders, customers, revenue).
EXPECTED_REVENUE = [
    ["2026-01-02", "EUR", 2, 1, "50.00"],
    ["2026-01-02", "USD", 1, 1, "5.00"],
    ["2026-01-03", "EUR", 1, 1, "12.50"],
]


def landing(folder: Path) -> None:
    """One JSON-lines export per day, as the shop drops them (existing files are replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    for day in ("2026-01-02", "2026-01-03"):
        lines = []
        for oid, cust, status, cur, total, created, updated in ORDERS:
            if updated.startswith(day):
                lines.append(json.dumps({
                    "id": oid, "customer": cust, "status": status, "currency": cur,
                    "total": total, "created_at": created, "updated_at": updated,
                }))
        (folder / f"orders-{day}.json").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "workers":
        airflow = Airflow(need("OLO_TEST_AIRFLOW_URL"), need("OLO_TEST_AIRFLOW_PASSWORD"))
        workers(airflow, need("OLO_TEST_TRINO_URL"), argv[1:], Path(need("DBT_PROFILES_DIR")))
    elif len(argv) == 2 and argv[0] == "landing":
        landing(Path(argv[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
