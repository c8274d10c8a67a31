//! [`Graph::clusters`] and [`Graph::sources_of`]: the lineage page's overview by namespace.

use super::*;

fn graph() -> Graph {
    let mut g = Graph::default();
    let (load, revenue, report) = (
        NodeRef::job("sales", "load"),
        NodeRef::job("sales", "revenue"),
        NodeRef::job("marketing", "report"),
    );
    let (landing, orders, gold) = (
        NodeRef::dataset("s3://landing", "sales/orders"),
        NodeRef::dataset("sales", "silver.orders"),
        NodeRef::dataset("sales", "gold.revenue"),
    );
    g.set_declared(&[
        (landing.clone(), load.clone()),
        (load.clone(), orders.clone()),
        (orders.clone(), revenue.clone()),
        (revenue.clone(), gold.clone()),
        (gold.clone(), report.clone()),
    ]);
    // marketing's report is also seen reading the silver table it does not declare.
    g.add(&orders, &report, OBSERVED);
    g.add(&gold, &report, OBSERVED);
    g
}

#[test]
fn clusters_group_nodes_by_namespace_and_count_the_edges_between_namespaces() {
    let c = graph().clusters(10);
    let names: Vec<(&str, usize, usize, usize)> = c
        .namespaces
        .iter()
        .map(|n| {
            (
                n.namespace.as_str(),
                n.job_count,
                n.dataset_count,
                n.edges_within,
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("marketing", 1, 0, 0),
            ("s3://landing", 0, 1, 0),
            ("sales", 2, 2, 3),
        ]
    );
    let sales = &c.namespaces[2];
    assert_eq!(
        sales.jobs,
        vec![
            NodeRef::job("sales", "load"),
            NodeRef::job("sales", "revenue")
        ]
    );
    let crossings: Vec<(&str, &str, usize, u8, String)> = c
        .crossings
        .iter()
        .map(|x| {
            (
                x.from.as_str(),
                x.to.as_str(),
                x.edges,
                x.flags,
                x.example.0.id(),
            )
        })
        .collect();
    assert_eq!(
        crossings,
        vec![
            (
                "sales",
                "marketing",
                2,
                DECLARED | OBSERVED,
                "dataset:sales:gold.revenue".to_string()
            ),
            (
                "s3://landing",
                "sales",
                1,
                DECLARED,
                "dataset:s3://landing:sales/orders".to_string()
            ),
        ]
    );
}

#[test]
fn a_large_namespace_lists_its_first_nodes_by_name_and_counts_the_rest() {
    let mut g = Graph::default();
    let table = NodeRef::dataset("big", "t");
    let edges: Vec<(NodeRef, NodeRef)> = (0..500)
        .rev()
        .map(|i| (table.clone(), NodeRef::job("big", &format!("job{i:03}"))))
        .collect();
    g.set_declared(&edges);
    let c = g.clusters(3);
    let big = &c.namespaces[0];
    assert_eq!(
        (big.job_count, big.dataset_count, big.edges_within),
        (500, 1, 500)
    );
    assert_eq!(
        big.jobs.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        vec!["job000", "job001", "job002"]
    );
    assert_eq!(big.datasets, vec![table]);
}

#[test]
fn a_nodes_sources_are_the_flags_of_the_edges_that_touch_it() {
    let g = graph();
    assert_eq!(g.sources_of(&NodeRef::job("sales", "load")), DECLARED);
    assert_eq!(
        g.sources_of(&NodeRef::job("marketing", "report")),
        DECLARED | OBSERVED
    );
    assert_eq!(
        g.sources_of(&NodeRef::dataset("sales", "silver.orders")),
        DECLARED | OBSERVED
    );
    assert_eq!(g.sources_of(&NodeRef::job("sales", "nope")), 0);
}

#[test]
fn an_empty_graph_has_no_clusters() {
    assert_eq!(Graph::default().clusters(10), Clusters::default());
}
