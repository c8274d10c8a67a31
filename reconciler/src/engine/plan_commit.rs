//! Planning a commit: its desired files and lakehouse resources against what the sink and the
//! lakehouse hold and what olo owns there. The one planner of reconciles, `olo plan` and pull
//! request previews; they differ in their [`PlanOptions`] and in where the desired state and the
//! inventories come from (the reconcile's memo and in-memory inventory, or a fresh render and
//! the store).

use crate::apply::SharedSink;
use crate::lakehouse::{self, apply::Lakehouse, LakePlan};
use crate::plan::{self, Observe, Plan, PlanOptions};
use crate::store::InventoryItem;
use crate::Result;

use super::Phases;

/// The lakehouse part of a commit's plan: the target, what the commit wants of it and what olo
/// owns there.
pub struct LakeInputs<'a> {
    pub lakehouse: &'a Lakehouse,
    pub desired: &'a lakehouse::Desired,
    pub owned: &'a [InventoryItem],
}

/// A commit's plan.
#[derive(Debug)]
pub struct CommitPlan {
    /// Files and lakehouse resources, in apply order.
    pub plan: Plan,
    /// The lakehouse part again, with the operations that apply it (`None` without a lakehouse
    /// target).
    pub lake: Option<LakePlan>,
}

/// Plans the desired files paired with olo's inventory in `rows` ([`plan::rows`]) against
/// `sink`, and the lakehouse part against the lakehouse, with the same `options`; laps the
/// `plan` and `lakehouse` phases. Changes nothing.
pub async fn plan_commit(
    revision: Option<&str>,
    rows: &mut [plan::Row<'_>],
    sink: &SharedSink,
    lake: Option<LakeInputs<'_>>,
    options: &PlanOptions,
    phases: &mut Phases,
) -> Result<CommitPlan> {
    let mut plan = plan_rows(revision, rows, sink, options).await?;
    phases.lap("plan");
    let lake = match lake {
        Some(l) => {
            let lake_plan = l.lakehouse.plan(l.desired, l.owned, options).await?;
            merge(&mut plan, &lake_plan);
            Some(lake_plan)
        }
        None => None,
    };
    phases.lap("lakehouse");
    Ok(CommitPlan { plan, lake })
}

/// Plans the desired files and olo's inventory paired in `rows` against `sink` (read on a
/// blocking thread); on an incremental observe it marks the rows it trusts without reading them
/// back.
pub async fn plan_rows(
    revision: Option<&str>,
    rows: &mut [plan::Row<'_>],
    sink: &SharedSink,
    options: &PlanOptions,
) -> Result<Plan> {
    if options.observe == Observe::Incremental {
        rows.iter_mut().for_each(plan::Row::trust_applied);
    }
    let names = rows
        .iter()
        .filter(|r| !r.trusted)
        .map(|r| r.name.to_string())
        .collect();
    let observed = sink.observe(names).await?;
    Ok(plan::diff_rows(
        revision,
        rows,
        &observed,
        options.prune,
        options.diffs,
    ))
}

/// Adds the lakehouse part to a plan of files, in apply order.
pub fn merge(plan: &mut Plan, lake: &LakePlan) {
    plan.changes.extend(lake.changes.iter().cloned());
    plan.unchanged += lake.unchanged;
    plan.sort();
}
