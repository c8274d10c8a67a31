//! The graph walk: every node connected within the depth, both ways (issue 26's case), and a
//! property test against a breadth-first search over the undirected edges.

use std::collections::{BTreeSet, HashMap, VecDeque};

use proptest::prelude::*;

use super::*;

/// The example repository's sales and marketing jobs (declared), with what Spark and dbt
/// reported reading besides (observed): `orders_daily` writes `gold.revenue` (task `revenue`) and
/// reads it (task `train`), and reads `silver.refunds` and a landing folder nobody declared.
fn example() -> Graph {
    let (j, d) = (NodeRef::job, NodeRef::dataset);
    let orders_daily = j("sales", "orders_daily");
    let customers = j("sales", "customers_hourly");
    let report = j("marketing", "campaign_report");
    let declared = vec![
        (orders_daily.clone(), d("sales", "bronze.orders")),
        (d("sales", "bronze.orders"), orders_daily.clone()),
        (orders_daily.clone(), d("sales", "silver.orders")),
        (d("sales", "silver.orders"), orders_daily.clone()),
        (orders_daily.clone(), d("sales", "gold.revenue")),
        (d("sales", "gold.revenue"), orders_daily.clone()),
        (d("sales", "bronze.customers"), customers.clone()),
        (customers.clone(), d("sales", "silver.customers")),
        (d("sales", "silver.customers"), customers.clone()),
        (d("sales", "silver.orders"), customers.clone()),
        (customers.clone(), d("sales", "gold.customer_summary")),
        (d("marketing", "raw.campaign_spend"), report.clone()),
        (d("sales", "gold.revenue"), report.clone()),
        (report.clone(), d("marketing", "curated.campaign_report")),
    ];
    let mut g = Graph::default();
    g.set_declared(&declared);
    g.add(
        &d("s3://landing", "orders/2026-11-27"),
        &orders_daily,
        OBSERVED,
    );
    g.add(&d("sales", "silver.refunds"), &orders_daily, OBSERVED);
    g
}

fn ids(sub: &Subgraph) -> BTreeSet<String> {
    sub.nodes.iter().map(NodeRef::id).collect()
}

#[test]
fn a_node_reached_downstream_is_also_expanded_upstream() {
    let g = example();
    let revenue = NodeRef::dataset("sales", "gold.revenue");
    let sub = g.walk(&revenue, 5, 1000).unwrap();
    let want: BTreeSet<String> = [
        "dataset:sales:gold.revenue",
        "job:sales:orders_daily",
        "job:marketing:campaign_report",
        // Upstream of orders_daily, which the walk first reached downstream of gold.revenue.
        "dataset:s3://landing:orders/2026-11-27",
        "dataset:sales:silver.refunds",
        "dataset:sales:bronze.orders",
        "dataset:sales:silver.orders",
        "dataset:marketing:raw.campaign_spend",
        "dataset:marketing:curated.campaign_report",
        "job:sales:customers_hourly",
        "dataset:sales:bronze.customers",
        "dataset:sales:silver.customers",
        "dataset:sales:gold.customer_summary",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ids(&sub), want);
    assert!(!sub.truncated);
    assert_eq!((sub.nodes[0].id(), sub.layer[0]), (revenue.id(), 0));
    // Every edge among them, with its flags.
    assert_eq!(sub.edges.len(), g.edge_count());

    // The depth still bounds the walk: two edges away, customers_hourly (three) is left out.
    let near = g.walk(&revenue, 2, 1000).unwrap();
    let near_ids = ids(&near);
    assert!(near_ids.contains("dataset:sales:silver.refunds"));
    assert!(!near_ids.contains("job:sales:customers_hourly"));
    assert_eq!(near_ids.len(), 9);
}

/// Distances from `start` over the live edges taken both ways.
fn bfs(edges: &HashMap<(usize, usize), u8>, start: usize) -> HashMap<usize, usize> {
    let mut adjacent: HashMap<usize, Vec<usize>> = HashMap::new();
    for ((a, b), flags) in edges {
        if *flags != 0 {
            adjacent.entry(*a).or_default().push(*b);
            adjacent.entry(*b).or_default().push(*a);
        }
    }
    let mut dist = HashMap::from([(start, 0)]);
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for m in adjacent.get(&n).into_iter().flatten() {
            if !dist.contains_key(m) {
                dist.insert(*m, dist[&n] + 1);
                queue.push_back(*m);
            }
        }
    }
    dist
}

fn node(i: usize) -> NodeRef {
    if i.is_multiple_of(2) {
        NodeRef::job("ns", &format!("n{i:02}"))
    } else {
        NodeRef::dataset("ns", &format!("n{i:02}"))
    }
}

type Edges = Vec<(usize, usize)>;

fn edges(n: usize) -> impl Strategy<Value = Edges> {
    prop::collection::vec((0..n, 0..n), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Declared edges of an old commit (replaced), observed edges, declared edges of the new
    /// commit: the walk's node set is everything within `depth` of the start over the live
    /// edges taken both ways, and at a node limit it keeps the nearest.
    #[test]
    fn the_walk_is_a_breadth_first_search_over_undirected_edges(
        (old, observed, declared) in (edges(16), edges(16), edges(16)),
        start in 0usize..16,
        depth in 1usize..7,
        max_nodes in 1usize..20,
    ) {
        let mut g = Graph::default();
        let pairs = |e: &Edges| -> Vec<(NodeRef, NodeRef)> {
            e.iter().map(|(a, b)| (node(*a), node(*b))).collect()
        };
        g.set_declared(&pairs(&old));
        for (a, b) in &observed {
            g.add(&node(*a), &node(*b), OBSERVED);
        }
        g.set_declared(&pairs(&declared));
        let mut live: HashMap<(usize, usize), u8> = HashMap::new();
        for e in observed.iter() {
            *live.entry(*e).or_default() |= OBSERVED;
        }
        for e in declared.iter() {
            *live.entry(*e).or_default() |= DECLARED;
        }
        let start_node = node(start);
        let Some(sub) = g.walk(&start_node, depth, usize::MAX) else {
            // Only a node no edge ever named is unknown.
            prop_assert!(!old.iter().chain(&observed).chain(&declared).any(|(a, b)| *a == start || *b == start));
            return Ok(());
        };
        let dist = bfs(&live, start);
        let want: BTreeSet<String> = dist
            .iter()
            .filter(|(_, d)| **d <= depth)
            .map(|(n, _)| node(*n).id())
            .collect();
        prop_assert_eq!(ids(&sub), want.clone());
        prop_assert!(!sub.truncated);
        // The edges are exactly the live edges among those nodes, with their flags.
        let got_edges: BTreeSet<(String, String, u8)> = sub
            .edges
            .iter()
            .map(|(f, t, flags)| (sub.nodes[*f].id(), sub.nodes[*t].id(), *flags))
            .collect();
        let want_edges: BTreeSet<(String, String, u8)> = live
            .iter()
            .map(|((a, b), flags)| (node(*a).id(), node(*b).id(), *flags))
            .filter(|(a, b, _)| want.contains(a) && want.contains(b))
            .collect();
        prop_assert_eq!(got_edges, want_edges);

        // At a node limit: as many as fit, none farther than one left out.
        let capped = g.walk(&start_node, depth, max_nodes).unwrap();
        prop_assert_eq!(capped.nodes.len(), want.len().min(max_nodes));
        prop_assert_eq!(capped.truncated, want.len() > max_nodes);
        let distance_of = |id: &str| -> usize {
            dist.iter().find(|(n, _)| node(**n).id() == id).map(|(_, d)| *d).unwrap()
        };
        let kept = ids(&capped);
        let farthest_kept = kept.iter().map(|id| distance_of(id.as_str())).max().unwrap();
        let nearest_left = want.difference(&kept).map(|id| distance_of(id.as_str())).min();
        prop_assert!(nearest_left.is_none_or(|d| d >= farthest_kept));
    }
}
