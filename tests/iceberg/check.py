"""An independent reader of an Iceberg catalog, through PyIceberg, for the lakehouse tests: what olo
wrote is read back by the reference Python client rather than by olo's own code.

    python check.py rest --uri URI [--warehouse NAME] [--token T] [--prop K=V ...] COMMAND
    python check.py sql  --uri sqlite:////abs/path.db --catalog NAME [--warehouse file:///abs]
                         [--prop K=V ...] COMMAND

COMMAND:
    namespaces   every namespace, depth first (children through list_namespaces(parent)):
                 [{"namespace": ["sales", "bronze"], "properties": {...}}, ...]
    table NS.NAME
                 {"identifier": [...], "location": ..., "format_version": N,
                  "fields": [{"id", "name", "type", "required", "doc"}],
                  "partition_spec": [{"source-id", "field-id", "name", "transform", "source_name"}],
                  "properties": {...}}
                 NS.NAME splits on the last dot: "sales.bronze.orders" is table "orders" in
                 namespace ["sales", "bronze"]. "type" is the Iceberg JSON form ("long",
                 "decimal(10, 2)", or an object for struct/list/map).

    rows NS.NAME
                 every row of the table's current snapshot (a full scan), as JSON objects
                 sorted by their JSON text; decimals, dates and timestamps as strings
    create-table NS.NAME
                 another client's write: creates a table (id long required, name string)
    set-properties NS KEY=VALUE ...
                 another client's write: sets namespace properties (NS dotted)

JSON on stdout; on failure the error on stderr and exit status 1.

Loading a table reads its metadata file, so the FileIO must reach the warehouse. For an S3
warehouse pass --prop s3.endpoint=... --prop s3.access-key-id=... --prop s3.secret-access-key=...;
when no s3.endpoint is given and OLO_TEST_S3_URL is set (scripts/lakehouse.sh env), those three
and s3.path-style-access/s3.region are taken from OLO_TEST_S3_URL, OLO_TEST_S3_ACCESS_KEY and
OLO_TEST_S3_SECRET_KEY.
"""

import argparse
import json
import os
import sys


def catalog_from(args):
    from pyiceberg.catalog import load_catalog

    props = {}
    if args.kind == "rest":
        props["type"] = "rest"
        props["uri"] = args.uri
        if args.warehouse:
            props["warehouse"] = args.warehouse
        if args.token:
            props["token"] = args.token
        name = args.catalog or "rest"
    else:
        props["type"] = "sql"
        props["uri"] = args.uri
        # SQLite would create a missing file; a reader must not.
        if args.uri.startswith("sqlite:///"):
            path = args.uri[len("sqlite:///"):]
            if path and not os.path.exists(path):
                raise FileNotFoundError(f"no SQLite catalog at {path}")
        if args.warehouse:
            props["warehouse"] = args.warehouse
        # Never create the tables: a reader must see exactly what the writer left.
        props["init_catalog_tables"] = "false"
        name = args.catalog
    for kv in args.prop or []:
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit(f"--prop wants KEY=VALUE, got {kv!r}")
        props[key] = value
    if "s3.endpoint" not in props and os.environ.get("OLO_TEST_S3_URL"):
        props["s3.endpoint"] = os.environ["OLO_TEST_S3_URL"]
        props.setdefault("s3.access-key-id", os.environ.get("OLO_TEST_S3_ACCESS_KEY", ""))
        props.setdefault("s3.secret-access-key", os.environ.get("OLO_TEST_S3_SECRET_KEY", ""))
        props.setdefault("s3.path-style-access", "true")
        props.setdefault("s3.region", "us-east-1")
    return load_catalog(name, **props)


def namespaces(catalog):
    out = []

    def walk(parent):
        children = catalog.list_namespaces(parent) if parent else catalog.list_namespaces()
        for ns in sorted(tuple(c) for c in children):
            out.append(
                {"namespace": list(ns), "properties": dict(catalog.load_namespace_properties(ns))}
            )
            walk(ns)

    walk(())
    return out


def table(catalog, ident):
    ns, sep, name = ident.rpartition(".")
    if not sep or not ns or not name:
        raise SystemExit(f"table wants NS.NAME, got {ident!r}")
    t = catalog.load_table((*ns.split("."), name))
    schema = t.schema()
    fields = json.loads(schema.model_dump_json())["fields"]
    spec = t.spec()
    parts = []
    for field, raw in zip(spec.fields, json.loads(spec.model_dump_json())["fields"]):
        try:
            raw["source_name"] = schema.find_column_name(field.source_id)
        except Exception:  # a dropped source column
            raw["source_name"] = None
        parts.append(raw)
    return {
        "identifier": [*ns.split("."), name],
        "location": t.location(),
        "format_version": t.metadata.format_version,
        "fields": [
            {
                "id": f["id"],
                "name": f["name"],
                "type": f["type"],
                "required": f["required"],
                "doc": f.get("doc"),
            }
            for f in fields
        ],
        "partition_spec": parts,
        "properties": dict(t.properties),
    }


def rows(catalog, ident):
    ns, sep, name = ident.rpartition(".")
    if not sep or not ns or not name:
        raise SystemExit(f"rows wants NS.NAME, got {ident!r}")
    t = catalog.load_table((*ns.split("."), name))
    out = [json.loads(json.dumps(r, default=str, sort_keys=True)) for r in t.scan().to_arrow().to_pylist()]
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def create_table(catalog, ident):
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    ns, _, name = ident.rpartition(".")
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
    )
    t = catalog.create_table((*ns.split("."), name), schema=schema)
    return {"identifier": [*ns.split("."), name], "location": t.location()}


def set_properties(catalog, ns, pairs):
    updates = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit(f"set-properties wants KEY=VALUE, got {kv!r}")
        updates[key] = value
    summary = catalog.update_namespace_properties(tuple(ns.split(".")), updates=updates)
    return {"updated": sorted(summary.updated)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kinds = parser.add_subparsers(dest="kind", required=True)
    for kind in ("rest", "sql"):
        p = kinds.add_parser(kind)
        p.add_argument("--uri", required=True)
        p.add_argument("--warehouse")
        p.add_argument("--catalog", required=(kind == "sql"), help="catalog name (sql: catalog_name)")
        if kind == "rest":
            p.add_argument("--token")
        p.add_argument("--prop", action="append", help="extra catalog property KEY=VALUE")
        cmds = p.add_subparsers(dest="cmd", required=True)
        cmds.add_parser("namespaces")
        t = cmds.add_parser("table")
        t.add_argument("ident", metavar="NS.NAME")
        r = cmds.add_parser("rows")
        r.add_argument("ident", metavar="NS.NAME")
        c = cmds.add_parser("create-table")
        c.add_argument("ident", metavar="NS.NAME")
        sp = cmds.add_parser("set-properties")
        sp.add_argument("ns", metavar="NS")
        sp.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args()
    try:
        catalog = catalog_from(args)
        if args.cmd == "namespaces":
            result = namespaces(catalog)
        elif args.cmd == "table":
            result = table(catalog, args.ident)
        elif args.cmd == "rows":
            result = rows(catalog, args.ident)
        elif args.cmd == "create-table":
            result = create_table(catalog, args.ident)
        else:
            result = set_properties(catalog, args.ns, args.pairs)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - reported, not handled
        print(f"check.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
