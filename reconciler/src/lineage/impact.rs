//! What a pull request's plan does to the lineage graph: the difference between the live graph
//! and the graph the merged commit would give. Pure.
//!
//! The proposed graph is the live one (declared and observed edges) with the proposed commit's
//! declarations in place of the live ones, and two more changes, because observed edges are
//! history and the plan says what the future holds:
//! - a job the plan deletes writes and reads nothing any more (its observed edges go too);
//! - an output a changed job declared and no longer declares is no longer written, even if
//!   events showed it (a renamed output, a dropped table).
//!
//! Observed-only edges of the other jobs stay: olo cannot know what an undeclared write will do.

use std::collections::BTreeSet;

use crate::catalog::Catalog;
use crate::plan::{Action, Plan};

use super::{declared_edges, sorted_ids, Graph, Impact, NodeRef, DECLARED};

/// How deep a pull request's impact looks downstream (in jobs).
pub const IMPACT_DEPTH: usize = 5;

/// The lineage impact of one job a plan changes.
#[derive(Debug, Clone, PartialEq)]
pub struct JobImpact {
    /// `workspace/job`
    pub job: String,
    pub action: Action,
    pub impact: Impact,
}

/// A dataset that loses every job writing it while jobs still read it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenRead {
    /// The dataset's node id (`dataset:sales:gold.revenue`).
    pub dataset: String,
    /// The jobs that write it now and would not after the merge (node ids).
    pub lost: Vec<String>,
    /// The jobs, in any workspace, that would still read it (node ids).
    pub readers: Vec<String>,
}

/// What a plan does to the lineage graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanImpact {
    /// Each job whose DAG file the plan creates, changes or deletes, with what it writes and
    /// what is downstream: on the proposed graph, and for a deleted job on the live one (what
    /// loses it).
    pub jobs: Vec<JobImpact>,
    /// Datasets left without a producer that jobs still read, by dataset.
    pub broken: Vec<BrokenRead>,
}

impl PlanImpact {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.broken.is_empty()
    }
}

/// The impact of `plan` (whose proposed commit has catalog `proposed`) on the live lineage
/// `graph`, whose declared edges are those of `live` (the live commit's catalog; `None` before
/// the first commit went live). Jobs the plan deletes are found in `live`.
pub fn plan_impact(
    plan: &Plan,
    proposed: &Catalog,
    live: Option<&Catalog>,
    graph: &Graph,
) -> PlanImpact {
    let changed: Vec<(NodeRef, String, Action, bool)> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Delete))
        .filter_map(|c| {
            let dag_id = c.name.strip_prefix("dags/")?.strip_suffix(".py")?;
            if dag_id.contains('/') {
                return None;
            }
            let (job, stays) = match proposed.job_by_dag_id(dag_id) {
                Some(job) => (job, true),
                None => (live?.job_by_dag_id(dag_id)?, false),
            };
            Some((
                NodeRef::job(&job.workspace, &job.name),
                format!("{}/{}", job.workspace, job.name),
                c.action,
                stays,
            ))
        })
        .collect();
    if changed.is_empty() {
        return PlanImpact::default();
    }

    let mut after = graph.clone();
    after.set_declared(&declared_edges(proposed));
    for (node, _, _, stays) in &changed {
        let Some(j) = graph.index.get(node).copied() else {
            continue;
        };
        if !*stays {
            let edges: Vec<(u32, u32)> = graph
                .live_out(j)
                .map(|d| (j, d))
                .chain(graph.live_in(j).map(|d| (d, j)))
                .collect();
            for (from, to) in edges {
                after.remove(from, to);
            }
            continue;
        }
        let dropped: Vec<u32> = graph
            .live_out(j)
            .filter(|d| graph.flags(j, *d) & DECLARED != 0 && after.flags(j, *d) & DECLARED == 0)
            .collect();
        for d in dropped {
            after.remove(j, d);
        }
    }

    let jobs = changed
        .iter()
        .map(|(node, job, action, stays)| JobImpact {
            job: job.clone(),
            action: *action,
            impact: if *stays { &after } else { graph }.impact(node, IMPACT_DEPTH),
        })
        .collect();

    // What the changed jobs write now, and nothing writes after the merge.
    let written_now: BTreeSet<u32> = changed
        .iter()
        .filter_map(|(node, ..)| graph.index.get(node).copied())
        .flat_map(|j| graph.live_out(j))
        .collect();
    let mut broken: Vec<BrokenRead> = written_now
        .into_iter()
        .filter(|d| after.live_in(*d).next().is_none())
        .filter_map(|d| {
            let readers: BTreeSet<u32> = after.live_out(d).collect();
            (!readers.is_empty()).then(|| BrokenRead {
                dataset: graph.nodes[d as usize].id(),
                lost: sorted_ids(graph, &graph.live_in(d).collect()),
                readers: sorted_ids(&after, &readers),
            })
        })
        .collect();
    broken.sort_by(|a, b| a.dataset.cmp(&b.dataset));
    PlanImpact { jobs, broken }
}
