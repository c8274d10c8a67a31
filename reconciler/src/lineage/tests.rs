//! Unit tests of the lineage graph, names, impact and drawing.

use super::*;
use crate::catalog::{JobView, TaskView, WorkspaceView};
use crate::openlineage::DatasetRef;
use serde_json::{json, Value};
use std::sync::Arc;

fn job(ws: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Arc<JobView> {
    Arc::new(JobView {
        name: name.into(),
        workspace: ws.into(),
        dag_id: format!("{ws}__{name}"),
        path: format!("workspaces/{ws}/jobs/{name}.yaml"),
        description: None,
        schedule: None,
        start_date: None,
        end_date: None,
        paused: false,
        tags: vec![],
        params: vec![],
        param_types: Default::default(),
        tasks: vec![TaskView {
            id: "t".into(),
            kind: "bash".into(),
            depends_on: vec![],
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            mlflow_experiment: None,
        }],
    })
}

fn workspace(name: &str, catalog: &str, jobs: Vec<Arc<JobView>>) -> WorkspaceView {
    WorkspaceView {
        name: name.into(),
        description: None,
        path: format!("workspaces/{name}/workspace.yaml"),
        owners: vec![],
        catalog: catalog.into(),
        warehouse: format!("s3://lake/{name}/"),
        namespaces: vec!["raw".into(), "gold".into()],
        tables: vec![],
        roles: Default::default(),
        jobs,
    }
}

/// sales: ingest writes raw.orders; refine reads it and writes gold.revenue.
/// marketing: report reads sales.gold.revenue and writes gold.campaigns.
fn catalog() -> Catalog {
    Catalog {
        revision: Some("r".into()),
        admins: Vec::new(),
        workspaces: vec![
            workspace(
                "marketing",
                "mkt",
                vec![job(
                    "marketing",
                    "report",
                    &["sales.gold.revenue"],
                    &["gold.campaigns"],
                )],
            ),
            workspace(
                "sales",
                "lake",
                vec![
                    job("sales", "ingest", &[], &["raw.orders"]),
                    job("sales", "refine", &["raw.orders"], &["gold.revenue"]),
                ],
            ),
        ],
    }
}

fn graph() -> Graph {
    let mut g = Graph::default();
    g.set_declared(&declared_edges(&catalog()));
    g
}

#[test]
fn declared_datasets_name_their_workspace() {
    assert_eq!(
        declared_dataset("marketing", "sales.gold.revenue").id(),
        "dataset:sales:gold.revenue"
    );
    assert_eq!(
        declared_dataset("sales", "raw.orders").id(),
        "dataset:sales:raw.orders"
    );
    let g = graph();
    assert_eq!((g.node_count(), g.edge_count()), (6, 5));
}

#[test]
fn observed_names_map_onto_olo_jobs_and_tables() {
    let r = Resolver::new(&catalog());
    assert_eq!(
        r.job("default", "sales__refine.load").id(),
        "job:sales:refine"
    );
    assert_eq!(r.job("sales", "sales__refine").id(), "job:sales:refine");
    assert_eq!(
        r.job("spark", "other_app.write").id(),
        "job:spark:other_app.write"
    );
    let d = |ns: &str, name: &str| DatasetRef {
        namespace: ns.into(),
        name: name.into(),
        symlinks: vec![],
    };
    let cases = [
        (d("sales", "raw.orders"), "dataset:sales:raw.orders"),
        (
            d("trino://trino:8080", "lake.gold.revenue"),
            "dataset:sales:gold.revenue",
        ),
        (
            d("s3://lake", "sales/gold/revenue"),
            "dataset:sales:gold.revenue",
        ),
        (
            d("s3://lake/sales", "raw/orders"),
            "dataset:sales:raw.orders",
        ),
        // Not a namespace of the workspace, an unknown catalog: kept as sent.
        (d("sales", "secret.orders"), "dataset:sales:secret.orders"),
        (
            d("trino://t:8080", "other.gold.revenue"),
            "dataset:trino://t:8080:other.gold.revenue",
        ),
        (
            d("postgres://db:5432", "public.users"),
            "dataset:postgres://db:5432:public.users",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r.dataset(&input).id(), want, "{input:?}");
    }
    let linked = DatasetRef {
        namespace: "s3://elsewhere".into(),
        name: "x/y/z".into(),
        symlinks: vec![("http://catalog:8181".into(), "lake.raw.orders".into())],
    };
    assert_eq!(r.dataset(&linked).id(), "dataset:sales:raw.orders");
}

#[test]
fn a_walk_goes_upstream_and_downstream_to_the_depth() {
    let g = graph();
    let refine = NodeRef::job("sales", "refine");
    let sub = g.walk(&refine, 2, 1000).unwrap();
    let got: Vec<(String, i32)> = sub
        .nodes
        .iter()
        .zip(&sub.layer)
        .map(|(n, l)| (n.id(), *l))
        .collect();
    assert_eq!(
        got,
        vec![
            ("job:sales:refine".into(), 0),
            ("dataset:sales:gold.revenue".into(), 1),
            ("dataset:sales:raw.orders".into(), -1),
            ("job:marketing:report".into(), 2),
            ("job:sales:ingest".into(), -2),
        ]
    );
    assert_eq!(sub.edges.len(), 4);
    assert!(!sub.truncated);
    let near = g.walk(&refine, 1, 1000).unwrap();
    assert_eq!(near.nodes.len(), 3);
    let capped = g.walk(&refine, 10, 2).unwrap();
    assert_eq!((capped.nodes.len(), capped.truncated), (2, true));
    assert!(g.walk(&NodeRef::job("x", "y"), 1, 10).is_none());
}

#[test]
fn node_ids_with_colons_in_the_namespace_are_found() {
    let mut g = graph();
    let trino = NodeRef::dataset("trino://t:8080", "other.a.b");
    g.add(&trino, &NodeRef::job("sales", "refine"), OBSERVED);
    assert_eq!(g.find("dataset:trino://t:8080:other.a.b"), Some(trino));
    assert_eq!(
        g.find("dataset:sales:raw.orders"),
        Some(NodeRef::dataset("sales", "raw.orders"))
    );
    assert_eq!(g.find("job:sales:nope"), None);
    assert_eq!(g.find("table:sales:raw.orders"), None);
}

#[test]
fn mismatches_are_reported_both_ways() {
    let mut g = graph();
    let refine = NodeRef::job("sales", "refine");
    assert_eq!(
        g.mismatches(&refine),
        Mismatches {
            observed_any: false,
            declared_not_observed: vec![
                DatasetEdge {
                    direction: "in",
                    dataset: "dataset:sales:raw.orders".into()
                },
                DatasetEdge {
                    direction: "out",
                    dataset: "dataset:sales:gold.revenue".into()
                },
            ],
            observed_not_declared: vec![],
        }
    );
    g.add(&NodeRef::dataset("sales", "raw.orders"), &refine, OBSERVED);
    g.add(
        &refine,
        &NodeRef::dataset("sales", "gold.refunds"),
        OBSERVED,
    );
    let m = g.mismatches(&refine);
    assert!(m.observed_any);
    assert_eq!(
        m.declared_not_observed,
        vec![DatasetEdge {
            direction: "out",
            dataset: "dataset:sales:gold.revenue".into()
        }]
    );
    assert_eq!(
        m.observed_not_declared,
        vec![DatasetEdge {
            direction: "out",
            dataset: "dataset:sales:gold.refunds".into()
        }]
    );
}

#[test]
fn a_new_commit_replaces_declared_edges_and_keeps_observed_ones() {
    let mut g = graph();
    let ingest = NodeRef::job("sales", "ingest");
    let orders = NodeRef::dataset("sales", "raw.orders");
    g.add(&ingest, &orders, OBSERVED);
    // The next commit declares nothing.
    g.set_declared(&[]);
    assert_eq!(g.edge_count(), 1);
    let sub = g.walk(&ingest, 5, 100).unwrap();
    assert_eq!(sub.edges, vec![(0, 1, OBSERVED)]);
    g.set_declared(&declared_edges(&catalog()));
    assert_eq!(g.edge_count(), 5);
    let sub = g.walk(&ingest, 1, 100).unwrap();
    assert_eq!(sub.edges, vec![(0, 1, DECLARED | OBSERVED)]);
}

#[test]
fn impact_follows_what_a_job_writes_downstream() {
    let g = graph();
    let i = g.impact(&NodeRef::job("sales", "ingest"), 5);
    assert_eq!(i.writes, vec!["dataset:sales:raw.orders"]);
    assert_eq!(
        i.downstream_jobs,
        vec!["job:marketing:report", "job:sales:refine"]
    );
    assert_eq!(
        i.downstream_datasets,
        vec![
            "dataset:marketing:gold.campaigns",
            "dataset:sales:gold.revenue"
        ]
    );
    let shallow = g.impact(&NodeRef::job("sales", "ingest"), 1);
    assert_eq!(shallow.downstream_jobs, vec!["job:sales:refine"]);
    assert_eq!(g.impact(&NodeRef::job("x", "y"), 3), Impact::default());
}

#[test]
fn the_marquez_shape_has_nodes_with_their_edges() {
    let g = graph();
    let sub = g.walk(&NodeRef::job("sales", "refine"), 1, 100).unwrap();
    let v = marquez(&sub, &Observed::default());
    let nodes = v["graph"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let refine = &nodes[0];
    assert_eq!(refine["id"], "job:sales:refine");
    assert_eq!(refine["type"], "JOB");
    assert_eq!(
        refine["data"]["inputs"],
        json!([{"namespace": "sales", "name": "raw.orders"}])
    );
    assert_eq!(
        refine["data"]["outputs"],
        json!([{"namespace": "sales", "name": "gold.revenue"}])
    );
    assert_eq!(
        refine["inEdges"],
        json!([{"origin": "dataset:sales:raw.orders", "destination": "job:sales:refine", "sources": ["declared"]}])
    );
    assert_eq!(nodes[1]["type"], "DATASET");
    assert_eq!(
        nodes[1]["data"]["id"],
        json!({"namespace": "sales", "name": "gold.revenue"})
    );
    assert_eq!(v["truncated"], false);
}

#[test]
fn the_layout_puts_upstream_left_and_downstream_right() {
    let g = graph();
    let sub = g.walk(&NodeRef::job("sales", "refine"), 2, 100).unwrap();
    let l = layout(&sub);
    let x = |id: &str| l.nodes.iter().find(|n| n.id == id).unwrap().x;
    assert!(x("job:sales:ingest") < x("dataset:sales:raw.orders"));
    assert!(x("dataset:sales:raw.orders") < x("job:sales:refine"));
    assert!(x("job:sales:refine") < x("job:marketing:report"));
    assert_eq!(l.edges.len(), 4);
    assert!(l
        .edges
        .iter()
        .all(|e| e.path.starts_with('M') && e.class == "declared"));
    assert_eq!(l.width, 10 * 2 + 5 * (NODE_W + 90) - 90);
    assert!(l.nodes.iter().filter(|n| n.start).count() == 1);
}

#[test]
fn two_hundred_nodes_are_laid_out_without_overlap() {
    // A job writing 60 tables, each read by a job writing one more table: 181 nodes, plus
    // 19 upstream tables.
    let mut g = Graph::default();
    let hub = NodeRef::job("w", "hub");
    for i in 0..19 {
        g.add(&NodeRef::dataset("w", &format!("in.t{i}")), &hub, DECLARED);
    }
    for i in 0..60 {
        let t = NodeRef::dataset("w", &format!("mid.t{i}"));
        let reader = NodeRef::job("w", &format!("reader{i}"));
        g.add(&hub, &t, DECLARED);
        g.add(&t, &reader, OBSERVED);
        g.add(
            &reader,
            &NodeRef::dataset("w", &format!("out.t{i}")),
            DECLARED | OBSERVED,
        );
    }
    let sub = g.walk(&hub, 3, 1000).unwrap();
    assert_eq!(sub.nodes.len(), 200);
    let l = layout(&sub);
    for (i, a) in l.nodes.iter().enumerate() {
        assert!(
            a.x + NODE_W <= l.width && a.y + NODE_H <= l.height,
            "{a:?} outside"
        );
        for b in &l.nodes[i + 1..] {
            let apart = a.x + NODE_W <= b.x
                || b.x + NODE_W <= a.x
                || a.y + NODE_H <= b.y
                || b.y + NODE_H <= a.y;
            assert!(apart, "{a:?} overlaps {b:?}");
        }
    }
    // Five columns: inputs, the hub, its tables, their readers, the readers' outputs.
    let columns: BTreeSet<u32> = l.nodes.iter().map(|n| n.x).collect();
    assert_eq!(columns.len(), 5);
}

#[test]
fn a_plan_shows_the_impact_of_its_changed_jobs_with_the_proposed_lineage() {
    use crate::plan::{Action, Change, Plan};
    let live = catalog();
    let mut g = graph();
    // Observed: someone outside olo reads gold.revenue.
    g.add(
        &NodeRef::dataset("sales", "gold.revenue"),
        &NodeRef::job("bi", "dashboard_refresh"),
        OBSERVED,
    );
    // The proposed commit makes refine also write gold.refunds, read by nobody yet.
    let mut proposed = catalog();
    let sales = proposed
        .workspaces
        .iter_mut()
        .find(|w| w.name == "sales")
        .unwrap();
    sales.jobs[1] = job(
        "sales",
        "refine",
        &["raw.orders"],
        &["gold.revenue", "gold.refunds"],
    );
    let change = |name: &str, action| Change {
        name: name.into(),
        action,
        hash: String::new(),
        diff: None,
        reason: None,
    };
    let plan = Plan {
        revision: None,
        changes: vec![
            change("dags/olo_assets/sales/x.py", Action::Update),
            change("dags/sales__refine.py", Action::Update),
            change("trino/rules.json", Action::Update),
        ],
        unchanged: 3,
    };
    let impact = plan_impact(&plan, &proposed, Some(&live), &g);
    assert_eq!(impact.len(), 1);
    assert_eq!(impact[0].job, "sales/refine");
    assert_eq!(impact[0].action, Action::Update);
    assert_eq!(
        impact[0].impact.writes,
        vec!["dataset:sales:gold.refunds", "dataset:sales:gold.revenue"]
    );
    assert_eq!(
        impact[0].impact.downstream_jobs,
        vec!["job:bi:dashboard_refresh", "job:marketing:report"]
    );
    // The live graph is untouched.
    assert!(!g.contains(&NodeRef::dataset("sales", "gold.refunds")));
    let none = Plan {
        revision: None,
        changes: vec![],
        unchanged: 0,
    };
    assert!(plan_impact(&none, &proposed, None, &g).is_empty());
}

#[test]
fn what_people_and_tools_see_of_a_small_graph() {
    let mut g = graph();
    g.add(
        &NodeRef::dataset("trino://trino:8080", "other.raw.x"),
        &NodeRef::job("sales", "refine"),
        OBSERVED,
    );
    let sub = g.walk(&NodeRef::job("sales", "refine"), 2, 100).unwrap();
    insta::assert_json_snapshot!("marquez_graph", marquez(&sub, &Observed::default()));
    insta::assert_json_snapshot!("layout", layout(&sub));
}

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
        workspaces: vec![marketing, sales],
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
