//! [`Graph::summary`]: the lineage page's overview.

use super::*;

#[test]
fn the_summary_counts_edges_by_source_and_lists_jobs_whose_events_disagree() {
    let mut g = Graph::default();
    let (load, report, quiet) = (
        NodeRef::job("sales", "load"),
        NodeRef::job("sales", "report"),
        NodeRef::job("sales", "quiet"),
    );
    let (raw, orders, rejected, revenue) = (
        NodeRef::dataset("sales", "raw.orders"),
        NodeRef::dataset("sales", "silver.orders"),
        NodeRef::dataset("sales", "silver.rejected"),
        NodeRef::dataset("sales", "gold.revenue"),
    );
    g.set_declared(&[
        (raw.clone(), load.clone()),
        (load.clone(), orders.clone()),
        (orders.clone(), report.clone()),
        (report.clone(), revenue.clone()),
        (revenue.clone(), quiet.clone()),
    ]);
    // load reports what it declares, and a table it does not declare; report's events show it
    // reading but never writing gold.revenue; quiet reports nothing.
    g.add(&raw, &load, OBSERVED);
    g.add(&load, &orders, OBSERVED);
    g.add(&load, &rejected, OBSERVED);
    g.add(&orders, &report, OBSERVED);
    let s = g.summary();
    assert_eq!((s.jobs, s.datasets), (3, 4));
    assert_eq!((s.declared, s.observed, s.both), (2, 1, 3));
    assert_eq!(
        s.mismatched,
        vec![
            ("job:sales:load".to_string(), 0, 1),
            ("job:sales:report".to_string(), 1, 0),
        ]
    );
}
