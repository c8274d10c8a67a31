//! Unit tests of the names Trino, dbt and Spark give olo's jobs and tables in their events, and
//! of the run index that ties a task's run to its olo job.

use super::tests::{job, workspace};
use super::*;
use crate::catalog::Catalog;
use crate::catalog::{JobView, TaskView};
use crate::openlineage::DatasetRef;
use serde_json::{json, Value};
use std::sync::Arc;

/// The example repository's layout: `sales` and `marketing` share catalog `lake` (so a Trino name
/// needs its workspace level), each with its own warehouse; `sales/orders_daily` ingests with
/// Spark and cleans on Trino.
fn medallion() -> Catalog {
    let mut sales = workspace(
        "sales",
        "lake",
        vec![Arc::new(JobView {
            tasks: vec![
                TaskView {
                    id: "ingest".into(),
                    kind: "spark".into(),
                    depends_on: vec![],
                    inputs: vec![],
                    outputs: vec!["bronze.orders".into()],
                    mlflow_experiment: None,
                },
                TaskView {
                    id: "clean".into(),
                    kind: "sql".into(),
                    depends_on: vec!["ingest".into()],
                    inputs: vec!["bronze.orders".into()],
                    outputs: vec!["silver.orders".into()],
                    mlflow_experiment: None,
                },
            ],
            ..(*job("sales", "orders_daily", &[], &[])).clone()
        })],
    );
    sales.warehouse = "s3://lakehouse/sales".into();
    sales.namespaces = vec!["bronze".into(), "silver".into(), "gold".into()];
    let mut marketing = workspace("marketing", "lake", vec![]);
    marketing.warehouse = "s3://lakehouse/marketing".into();
    marketing.namespaces = vec!["raw".into(), "curated".into()];
    Catalog {
        revision: Some("r".into()),
        admins: Vec::new(),
        workspaces: vec![Arc::new(marketing), Arc::new(sales)],
    }
}

/// A RunEvent as `producer` sends it, parsed the way `POST /api/v1/lineage` parses it.
fn event(
    producer: &str,
    job: (&str, &str),
    inputs: Value,
    outputs: Value,
) -> crate::openlineage::RunEvent {
    let body = json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-27T03:12:45.318Z",
        "producer": producer,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11", "facets": {}},
        "job": {"namespace": job.0, "name": job.1, "facets": {}},
        "inputs": inputs,
        "outputs": outputs,
    });
    run_event(&body)
}

/// A RunEvent's body parsed as `POST /api/v1/lineage` parses it.
fn run_event(body: &Value) -> crate::openlineage::RunEvent {
    match crate::openlineage::parse(&serde_json::to_vec(body).unwrap()) {
        Ok((crate::openlineage::Event::Run(e), _)) => e,
        other => panic!("not a RunEvent: {other:?}"),
    }
}

const TRINO_LISTENER: &str = "https://github.com/trinodb/trino/plugin/trino-openlineage";
const SPARK: &str = "https://github.com/OpenLineage/OpenLineage/tree/1.33.0/integration/spark";
const DBT: &str = "https://github.com/OpenLineage/OpenLineage/tree/1.33.0/integration/dbt";
const AIRFLOW: &str = "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0";

fn schema_facet() -> Value {
    json!({"schema": {
        "_producer": TRINO_LISTENER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": [{"name": "order_id", "type": "bigint"}, {"name": "amount", "type": "decimal(12,2)"}]
    }})
}

/// openlineage-spark's Iceberg output: the table's location, and the REST catalog's identifier
/// (`<namespace levels>.<table>`, without Spark's catalog name) as a `symlinks` facet.
fn spark_iceberg(location_ns: &str, location: &str, identifier: &str) -> Value {
    json!({
        "namespace": location_ns,
        "name": location,
        "facets": {
            "symlinks": {
                "_producer": SPARK,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet",
                "identifiers": [{"namespace": "http://127.0.0.1:8181", "name": identifier, "type": "TABLE"}]
            },
            "storage": {"storageLayer": "iceberg", "fileFormat": "parquet"},
            "catalog": {"framework": "iceberg", "type": "rest", "name": "lake", "metadataUri": "http://127.0.0.1:8181", "warehouseUri": "lake", "source": "spark"}
        },
        "outputFacets": {"outputStatistics": {"rowCount": 1200, "size": 48213}}
    })
}

fn resolved(r: &Resolver, e: &crate::openlineage::RunEvent) -> (Vec<String>, Vec<String>) {
    let ids = |list: &[DatasetRef]| list.iter().map(|d| r.dataset(d).id()).collect();
    (ids(&e.inputs), ids(&e.outputs))
}

#[test]
fn the_names_trino_dbt_and_spark_give_a_table_map_onto_its_declaration() {
    let r = Resolver::new(&medallion());
    let trino = |name: &str| json!({"namespace": "trino://trino:8080", "name": name, "facets": schema_facet()});
    // Trino's event listener: `catalog.schema.table`, the schema being the two-level namespace.
    let listener = event(
        TRINO_LISTENER,
        ("trino://trino:8080", "20261127_031245_00042_x7k2p"),
        json!([trino("lake.sales.bronze.orders")]),
        json!([trino("lake.sales.silver.orders")]),
    );
    assert_eq!(
        resolved(&r, &listener),
        (
            vec!["dataset:sales:bronze.orders".to_string()],
            vec!["dataset:sales:silver.orders".to_string()]
        )
    );
    // dbt-ol with dbt-trino: `database.schema.identifier` = catalog, schema, table.
    let dbt = event(
        DBT,
        ("sales", "lake.sales.gold.sales.revenue.build.run"),
        json!([{"namespace": "trino://trino:8080", "name": "lake.sales.silver.orders", "facets": {"dataSource": {"name": "trino://trino:8080", "uri": "trino://trino:8080"}}}]),
        json!([{"namespace": "trino://trino:8080", "name": "lake.sales.gold.revenue", "facets": {"dataSource": {"name": "trino://trino:8080", "uri": "trino://trino:8080"}}}]),
    );
    assert_eq!(
        resolved(&r, &dbt),
        (
            vec!["dataset:sales:silver.orders".to_string()],
            vec!["dataset:sales:gold.revenue".to_string()]
        )
    );
    // Spark with Iceberg: `s3a://` and `s3://` locations, a Trino-made table's unique location.
    let spark = event(
        SPARK,
        (
            "sales",
            "sales__orders_daily.append_data_exec_v1.lake_sales_bronze_orders",
        ),
        json!([spark_iceberg(
            "s3://lakehouse",
            "sales/silver/orders-4f1c2b9a0d8e4e7f9a6b3c2d1e0f9a8b",
            "sales.silver.orders"
        )]),
        json!([spark_iceberg(
            "s3a://lakehouse",
            "sales/bronze/orders",
            "sales.bronze.orders"
        )]),
    );
    assert_eq!(
        resolved(&r, &spark),
        (
            vec!["dataset:sales:silver.orders".to_string()],
            vec!["dataset:sales:bronze.orders".to_string()]
        )
    );
    let d = |ns: &str, name: &str, symlinks: &[(&str, &str)]| DatasetRef {
        namespace: ns.into(),
        name: name.into(),
        symlinks: symlinks
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let cases = [
        // A location olo cannot place, named by its symlink alone.
        (
            d(
                "s3a://elsewhere",
                "tmp/x",
                &[("http://127.0.0.1:8181", "sales.gold.revenue")],
            ),
            "dataset:sales:gold.revenue",
        ),
        // A SQL parser that kept the quotes of the nested schema.
        (
            d("trino://trino:8080", "lake.\"sales.silver\".orders", &[]),
            "dataset:sales:silver.orders",
        ),
        (
            d("s3a://lakehouse/", "marketing/raw/spend/", &[]),
            "dataset:marketing:raw.spend",
        ),
        // Not olo's: a namespace the workspace lacks, another catalog, a namespace folder, a
        // suffix that is not a table id.
        (
            d("trino://trino:8080", "lake.marketing.silver.orders", &[]),
            "dataset:trino://trino:8080:lake.marketing.silver.orders",
        ),
        (
            d("trino://trino:8080", "ops.sales.silver.orders", &[]),
            "dataset:trino://trino:8080:ops.sales.silver.orders",
        ),
        (
            d("s3a://lakehouse", "sales/bronze", &[]),
            "dataset:s3a://lakehouse:sales/bronze",
        ),
        (
            d("s3://lakehouse", "sales/bronze/x/y", &[]),
            "dataset:s3://lakehouse:sales/bronze/x/y",
        ),
        (
            d("http://127.0.0.1:8181", "sales.platinum.orders", &[]),
            "dataset:http://127.0.0.1:8181:sales.platinum.orders",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r.dataset(&input).id(), want, "{input:?}");
    }
    assert_eq!(
        r.dataset(&d("s3://lakehouse", "sales/silver/orders-2026", &[]))
            .id(),
        "dataset:sales:silver.orders-2026",
        "a table named with a dash keeps its name"
    );
}

#[test]
fn a_spark_and_a_trino_task_observed_as_declared_leave_no_mismatch() {
    let catalog = medallion();
    let r = Resolver::new(&catalog);
    let mut g = Graph::default();
    g.set_declared(&declared_edges(&catalog));
    let ingest = event(
        SPARK,
        (
            "sales",
            "sales__orders_daily.append_data_exec_v1.lake_sales_bronze_orders",
        ),
        json!([]),
        json!([spark_iceberg(
            "s3a://lakehouse",
            "sales/bronze/orders",
            "sales.bronze.orders"
        )]),
    );
    // The Airflow provider's SQL parser on the `clean` task, against the Trino connection.
    let trino = |name: &str| json!({"namespace": "trino://trino:8080", "name": name});
    let clean = event(
        AIRFLOW,
        ("default", "sales__orders_daily.clean"),
        json!([trino("lake.sales.bronze.orders")]),
        json!([trino("lake.sales.silver.orders")]),
    );
    for e in [&ingest, &clean] {
        let job = r.job(&e.job_namespace, &e.job_name);
        for d in &e.inputs {
            g.add(&r.dataset(d), &job, OBSERVED);
        }
        for d in &e.outputs {
            g.add(&job, &r.dataset(d), OBSERVED);
        }
    }
    let m = g.mismatches(&NodeRef::job("sales", "orders_daily"));
    assert_eq!(
        m,
        Mismatches {
            observed_any: true,
            declared_not_observed: vec![],
            observed_not_declared: vec![],
        }
    );
}

#[test]
fn spark_and_dbt_jobs_reach_the_olo_job_through_their_parent_runs() {
    let catalog = medallion();
    let r = Resolver::new(&catalog);
    let mut runs = RunIndex::default();
    // An event as `producer` sends it: its run id, job, and parent run (with its root's job).
    let sent =
        |producer: &str, run: &str, job: (&str, &str), parent: Option<(&str, &str, &str)>| {
            let mut body = json!({
                "eventType": "START",
                "eventTime": "2026-11-27T03:12:45.318Z",
                "producer": producer,
                "run": {"runId": run, "facets": {}},
                "job": {"namespace": job.0, "name": job.1},
            });
            if let Some((ns, name, parent_run)) = parent {
                body["run"]["facets"]["parent"] = json!({
                    "run": {"runId": parent_run},
                    "job": {"namespace": ns, "name": name},
                });
            }
            run_event(&body)
        };
    let id = |n: u32| format!("01930f5e-7b7e-7c4c-9a52-{n:012}");
    let mut resolve = |e: &crate::openlineage::RunEvent| {
        let job = r.olo_job_of(e, &runs);
        if let Some(j) = &job {
            runs.insert(&e.run_id, j.clone());
        }
        job.map(|j| j.id())
    };
    // openlineage-spark snake-cases the app name: DAG `sales__orders_daily` becomes
    // `sales_orders_daily`, no olo job; Airflow's provider passed the task as parent.
    let spark_job = (
        "sales",
        "sales_orders_daily.execute_merge_into_command_edge.lake_sales_bronze_orders",
    );
    let spark = sent(
        SPARK,
        &id(1),
        spark_job,
        Some(("airflow", "sales__orders_daily.ingest", &id(0))),
    );
    assert_eq!(resolve(&spark).as_deref(), Some("job:sales:orders_daily"));
    // Without a parent it is nobody's (the snake-cased name is not guessed: two DAG ids can
    // share it), and keeps the name it was sent with.
    let alone = sent(SPARK, &id(2), spark_job, None);
    assert_eq!(resolve(&alone), None);
    // dbt-ol: the `dbt-run-<project>` run names the Airflow task as its parent; each model's
    // events name only that run, which is known by then.
    let dbt_run = sent(
        DBT,
        &id(3),
        ("airflow", "dbt-run-sales"),
        Some(("airflow", "sales__orders_daily.revenue", &id(0))),
    );
    assert_eq!(resolve(&dbt_run).as_deref(), Some("job:sales:orders_daily"));
    let model = sent(
        DBT,
        &id(4),
        ("dbt", "lake.sales.gold.sales.revenue.build.run"),
        Some(("airflow", "dbt-run-sales", &id(3))),
    );
    assert_eq!(resolve(&model).as_deref(), Some("job:sales:orders_daily"));
    // A model whose parent run is unknown (another project's, or forgotten) is nobody's.
    let stray = sent(
        DBT,
        &id(5),
        ("dbt", "lake.x.y.z.build.run"),
        Some(("airflow", "dbt-run-x", &id(99))),
    );
    assert_eq!(resolve(&stray), None);
    // An own name that is olo's wins over its parent's.
    let own = sent(
        AIRFLOW,
        &id(6),
        ("default", "sales__orders_daily.clean"),
        Some(("default", "marketing__other.task", &id(0))),
    );
    assert_eq!(resolve(&own).as_deref(), Some("job:sales:orders_daily"));
}

#[test]
fn the_run_index_forgets_the_oldest_runs_past_its_size() {
    let mut runs = RunIndex::new(2);
    let job = NodeRef::job("sales", "orders_daily");
    runs.insert("a", job.clone());
    runs.insert("b", job.clone());
    runs.insert("a", job.clone());
    runs.insert("c", job.clone());
    assert_eq!(runs.len(), 2);
    assert!(runs.get("a").is_none());
    assert!(runs.get("b").is_some() && runs.get("c").is_some());
}

#[test]
fn a_job_reading_back_what_it_declares_to_write_is_no_mismatch() {
    // dbt's data tests on `customer_summary` read the table the job declares as its output.
    let catalog = medallion();
    let mut g = Graph::default();
    g.set_declared(&declared_edges(&catalog));
    let job = NodeRef::job("sales", "orders_daily");
    let silver = NodeRef::dataset("sales", "silver.orders");
    let elsewhere = NodeRef::dataset("sales", "gold.revenue");
    g.add(&job, &silver, OBSERVED);
    g.add(&silver, &job, OBSERVED);
    g.add(&NodeRef::dataset("sales", "bronze.orders"), &job, OBSERVED);
    g.add(&job, &NodeRef::dataset("sales", "bronze.orders"), OBSERVED);
    // ...but reading a table it neither reads nor writes by declaration still is.
    g.add(&elsewhere, &job, OBSERVED);
    let m = g.mismatches(&job);
    assert_eq!(m.declared_not_observed, vec![]);
    assert_eq!(
        m.observed_not_declared,
        vec![DatasetEdge {
            direction: "in",
            dataset: "dataset:sales:gold.revenue".into()
        }]
    );
}
