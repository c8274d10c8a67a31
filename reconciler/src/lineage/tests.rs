//! Unit tests of the lineage graph, impact and drawing (the names engines give tables: names_tests.rs).

use super::*;
use crate::catalog::{Catalog, JobView, TaskView, WorkspaceView};
use crate::openlineage::DatasetRef;
use serde_json::json;
use std::sync::Arc;

pub(super) fn job(ws: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Arc<JobView> {
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

pub(super) fn workspace(name: &str, catalog: &str, jobs: Vec<Arc<JobView>>) -> WorkspaceView {
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
pub(super) fn catalog() -> Catalog {
    Catalog {
        revision: Some("r".into()),
        admins: Vec::new(),
        workspaces: [
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
        ]
        .map(Arc::new)
        .into(),
    }
}

pub(super) fn graph() -> Graph {
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
