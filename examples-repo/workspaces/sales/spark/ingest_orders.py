"""Ingest raw order exports into the bronze Iceberg table (task `ingest` of orders_daily).

Reads the shop's JSON order exports from a landing prefix and merges them into
`lake.sales.bronze.orders` (Iceberg namespace `sales.bronze` in catalog `lake`), keyed on
order_id, so re-running a day is harmless. The Iceberg catalog and the OpenLineage listener are
configured by olo through spark-submit conf; this application only names tables. olo creates the
table from its declaration in workspace.yaml (`bronze.orders`) before the job runs, so the columns
selected below are exactly the declared ones: MERGE ... INSERT * matches them by name.

    spark-submit ingest_orders.py --source s3://landing/sales/orders/ --table lake.sales.bronze.orders
"""

import argparse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="landing prefix of the JSON order exports")
    parser.add_argument("--table", default="lake.sales.bronze.orders", help="target Iceberg table")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    spark = SparkSession.builder.appName("sales.ingest_orders").getOrCreate()

    raw = (
        spark.read.option("recursiveFileLookup", "true")
        .json(args.source)
        .select(
            F.col("id").cast("string").alias("order_id"),
            F.col("customer").cast("string").alias("customer_id"),
            F.lower(F.col("status")).alias("status"),
            F.upper(F.col("currency")).alias("currency"),
            F.col("total").cast("decimal(12,2)").alias("amount"),
            F.to_timestamp("created_at").alias("ordered_at"),
            F.to_timestamp("updated_at").alias("updated_at"),
            F.input_file_name().alias("source_file"),
            F.current_timestamp().alias("ingested_at"),
        )
        .where(F.col("order_id").isNotNull())
        .dropDuplicates(["order_id", "updated_at"])
    )
    raw.createOrReplaceTempView("incoming_orders")

    spark.sql(
        f"""
        MERGE INTO {args.table} AS t
        USING incoming_orders AS s
        ON t.order_id = s.order_id AND t.updated_at = s.updated_at
        WHEN NOT MATCHED THEN INSERT *
        """
    )
    spark.stop()


if __name__ == "__main__":
    main()
