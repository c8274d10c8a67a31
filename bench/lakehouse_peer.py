"""The peer of olo's lakehouse benchmark: PyIceberg creating the same namespaces (with the same
properties) and tables that olo applies, in the same catalog, timed inside the process.

    python lakehouse_peer.py rest URI WAREHOUSE PREFIX WORKSPACES NAMESPACES TABLES
    python lakehouse_peer.py sql  sqlite:////abs/db CATALOG PREFIX WORKSPACES NAMESPACES TABLES

Prints one JSON line: {"import_s", "work_s", "namespaces", "tables"}.
"""

import json
import sys
import time

t0 = time.perf_counter()
from pyiceberg.catalog import load_catalog  # noqa: E402
from pyiceberg.partitioning import PartitionField, PartitionSpec  # noqa: E402
from pyiceberg.schema import Schema  # noqa: E402
from pyiceberg.transforms import DayTransform  # noqa: E402
from pyiceberg.types import DecimalType, LongType, NestedField, StringType, TimestamptzType  # noqa: E402

t1 = time.perf_counter()
kind, uri, where, prefix, ws_n, ns_n, t_n = sys.argv[1:8]
ws_n, ns_n, t_n = int(ws_n), int(ns_n), int(t_n)
if kind == "rest":
    catalog = load_catalog("rest", type="rest", uri=uri, warehouse=where)
    base = "s3://bench"
else:
    catalog = load_catalog(where, type="sql", uri=uri)
    base = "file:///tmp/olo-bench-lakehouse/peer"

schema = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "customer", StringType()),
    NestedField(3, "amount", DecimalType(12, 2)),
    NestedField(4, "at", TimestamptzType()),
)
spec = PartitionSpec(PartitionField(source_id=4, field_id=1000, transform=DayTransform(), name="at_day"))
namespaces = tables = 0
for w in range(ws_n):
    ws = f"{prefix}{w}"
    loc = f"{base}/{ws}"
    common = {"owner": "data@example.com", "comment": "benchmark workspace", "team": "bench",
              "olo.managed-by": "olo", "olo.workspace": ws}
    catalog.create_namespace((ws,), {**common, "location": loc})
    namespaces += 1
    for n in range(ns_n):
        catalog.create_namespace((ws, f"ns{n}"), {**common, "location": f"{loc}/ns{n}"})
        namespaces += 1
    for t in range(t_n):
        # As olo does: the REST catalog places the table; the SQL catalog needs one.
        location = None if kind == "rest" else f"{loc}/ns0/t{t}"
        catalog.create_table((ws, "ns0", f"t{t}"), schema=schema, partition_spec=spec,
                             location=location)
        tables += 1
t2 = time.perf_counter()
print(json.dumps({"import_s": round(t1 - t0, 3), "work_s": round(t2 - t1, 3),
                  "namespaces": namespaces, "tables": tables}))
