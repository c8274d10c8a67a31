//! Unit tests of a plan's lineage impact: the live graph against the graph after the merge.

use super::tests::{catalog, graph, job, workspace};
use super::*;
use crate::catalog::Catalog;
use crate::plan::{Action, Change, Plan};
use std::sync::Arc;

fn plan_of(changes: &[(&str, Action)]) -> Plan {
    Plan {
        revision: None,
        changes: changes
            .iter()
            .map(|(name, action)| Change {
                name: name.to_string(),
                action: *action,
                hash: String::new(),
                diff: None,
                reason: None,
            })
            .collect(),
        unchanged: 0,
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The issue's case. sales: orders_daily reads silver.orders and writes gold.revenue;
/// customers_hourly reads gold.revenue. marketing: campaign_report reads sales.gold.revenue.
fn revenue(orders_daily_writes: &[&str]) -> Catalog {
    Catalog {
        revision: Some("r".into()),
        admins: Vec::new(),
        workspaces: [
            workspace(
                "marketing",
                "mkt",
                vec![job(
                    "marketing",
                    "campaign_report",
                    &["sales.gold.revenue"],
                    &["gold.campaigns"],
                )],
            ),
            workspace(
                "sales",
                "lake",
                vec![
                    job(
                        "sales",
                        "orders_daily",
                        &["silver.orders"],
                        orders_daily_writes,
                    ),
                    job(
                        "sales",
                        "customers_hourly",
                        &["gold.revenue"],
                        &["gold.customers"],
                    ),
                ],
            ),
        ]
        .map(Arc::new)
        .into(),
    }
}

/// The live graph of `live`, with what events showed: orders_daily wrote gold.revenue.
fn live_graph(live: &Catalog) -> Graph {
    let mut g = Graph::default();
    g.set_declared(&declared_edges(live));
    g.add(
        &NodeRef::job("sales", "orders_daily"),
        &NodeRef::dataset("sales", "gold.revenue"),
        OBSERVED,
    );
    g
}

fn revenue_lost_by(lost: &[&str]) -> Vec<BrokenRead> {
    vec![BrokenRead {
        dataset: "dataset:sales:gold.revenue".into(),
        lost: ids(lost),
        readers: ids(&[
            "job:marketing:campaign_report",
            "job:sales:customers_hourly",
        ]),
    }]
}

#[test]
fn renaming_an_output_flags_its_readers_in_every_workspace() {
    let live = revenue(&["gold.revenue"]);
    let g = live_graph(&live);
    let proposed = revenue(&["gold.revenue_v2"]);
    let impact = plan_impact(
        &plan_of(&[("dags/sales__orders_daily.py", Action::Update)]),
        &proposed,
        Some(&live),
        &g,
    );
    // The events that showed orders_daily writing gold.revenue are history: it will not.
    assert_eq!(impact.broken, revenue_lost_by(&["job:sales:orders_daily"]));
    assert_eq!(impact.jobs.len(), 1);
    assert_eq!(
        impact.jobs[0].impact.writes,
        ids(&["dataset:sales:gold.revenue_v2"])
    );
    assert!(impact.jobs[0].impact.downstream_jobs.is_empty());
    // The live graph is untouched.
    assert!(g.contains(&NodeRef::dataset("sales", "gold.revenue")));
    assert!(!g.contains(&NodeRef::dataset("sales", "gold.revenue_v2")));
}

#[test]
fn deleting_a_job_shows_what_it_wrote_and_who_loses_it() {
    let live = revenue(&["gold.revenue"]);
    let g = live_graph(&live);
    let mut proposed = revenue(&[]);
    let sales = Arc::make_mut(&mut proposed.workspaces[1]);
    sales.jobs.retain(|j| j.name != "orders_daily");
    let impact = plan_impact(
        &plan_of(&[("dags/sales__orders_daily.py", Action::Delete)]),
        &proposed,
        Some(&live),
        &g,
    );
    assert_eq!(impact.broken, revenue_lost_by(&["job:sales:orders_daily"]));
    assert_eq!(impact.jobs.len(), 1);
    let deleted = &impact.jobs[0];
    assert_eq!(
        (deleted.job.as_str(), deleted.action),
        ("sales/orders_daily", Action::Delete)
    );
    // On the live graph: what the deleted job wrote, and everything downstream that loses it.
    assert_eq!(deleted.impact.writes, ids(&["dataset:sales:gold.revenue"]));
    assert_eq!(
        deleted.impact.downstream_jobs,
        ids(&[
            "job:marketing:campaign_report",
            "job:sales:customers_hourly"
        ])
    );
    assert_eq!(
        deleted.impact.downstream_datasets,
        ids(&[
            "dataset:marketing:gold.campaigns",
            "dataset:sales:gold.customers"
        ])
    );
}

#[test]
fn renaming_a_job_is_a_delete_and_a_create_and_the_new_name_keeps_the_readers() {
    let live = revenue(&["gold.revenue"]);
    let g = live_graph(&live);
    let mut proposed = revenue(&["gold.revenue"]);
    let sales = Arc::make_mut(&mut proposed.workspaces[1]);
    sales.jobs[0] = job(
        "sales",
        "revenue_daily",
        &["silver.orders"],
        &["gold.revenue"],
    );
    let impact = plan_impact(
        &plan_of(&[
            ("dags/sales__orders_daily.py", Action::Delete),
            ("dags/sales__revenue_daily.py", Action::Create),
        ]),
        &proposed,
        Some(&live),
        &g,
    );
    assert!(impact.broken.is_empty(), "{:?}", impact.broken);
    let created = &impact.jobs[1];
    assert_eq!(
        (created.job.as_str(), created.action),
        ("sales/revenue_daily", Action::Create)
    );
    assert_eq!(
        created.impact.downstream_jobs,
        ids(&[
            "job:marketing:campaign_report",
            "job:sales:customers_hourly"
        ])
    );
}

#[test]
fn a_dataset_another_job_still_writes_is_not_broken() {
    let live = revenue(&["gold.revenue"]);
    let mut g = live_graph(&live);
    // A job outside olo's declarations was seen writing gold.revenue too.
    g.add(
        &NodeRef::job("spark", "backfill_revenue"),
        &NodeRef::dataset("sales", "gold.revenue"),
        OBSERVED,
    );
    let impact = plan_impact(
        &plan_of(&[("dags/sales__orders_daily.py", Action::Update)]),
        &revenue(&["gold.revenue_v2"]),
        Some(&live),
        &g,
    );
    assert!(impact.broken.is_empty(), "{:?}", impact.broken);
}

#[test]
fn an_output_nobody_reads_is_not_a_broken_read() {
    let live = revenue(&["gold.revenue", "gold.scratch"]);
    let g = live_graph(&live);
    let impact = plan_impact(
        &plan_of(&[("dags/sales__orders_daily.py", Action::Update)]),
        &revenue(&["gold.revenue"]),
        Some(&live),
        &g,
    );
    assert!(impact.broken.is_empty(), "{:?}", impact.broken);
}

#[test]
fn an_observed_write_that_was_never_declared_is_kept() {
    // Events show orders_daily writing gold.audit, which it never declared: olo cannot know it
    // stops, so its reader is not flagged.
    let live = revenue(&["gold.revenue"]);
    let mut g = live_graph(&live);
    g.add(
        &NodeRef::job("sales", "orders_daily"),
        &NodeRef::dataset("sales", "gold.audit"),
        OBSERVED,
    );
    g.add(
        &NodeRef::dataset("sales", "gold.audit"),
        &NodeRef::job("bi", "audit_board"),
        OBSERVED,
    );
    let impact = plan_impact(
        &plan_of(&[("dags/sales__orders_daily.py", Action::Update)]),
        &revenue(&["gold.revenue", "gold.extra"]),
        Some(&live),
        &g,
    );
    assert!(impact.broken.is_empty(), "{:?}", impact.broken);
    assert_eq!(
        impact.jobs[0].impact.downstream_jobs,
        ids(&[
            "job:bi:audit_board",
            "job:marketing:campaign_report",
            "job:sales:customers_hourly"
        ])
    );
}

#[test]
fn a_plan_shows_the_impact_of_its_changed_jobs_with_the_proposed_lineage() {
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
        .map(Arc::make_mut)
        .unwrap();
    sales.jobs[1] = job(
        "sales",
        "refine",
        &["raw.orders"],
        &["gold.revenue", "gold.refunds"],
    );
    let plan = plan_of(&[
        ("dags/olo_assets/sales/x.py", Action::Update),
        ("dags/sales__refine.py", Action::Update),
        ("trino/rules.json", Action::Update),
    ]);
    let PlanImpact {
        jobs: impact,
        broken,
    } = plan_impact(&plan, &proposed, Some(&live), &g);
    assert!(broken.is_empty(), "{broken:?}");
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
    assert!(plan_impact(&plan_of(&[]), &proposed, None, &g).is_empty());
}
