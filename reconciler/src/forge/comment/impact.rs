//! The lineage sections of a valid plan's comment: the reads a merge would break (datasets left
//! with no producer that jobs still read), then what each changed job writes and the jobs and
//! datasets downstream of it.

use std::collections::BTreeSet;

use super::parts::Block;
use super::text::{escape_markdown, plural};
use crate::lineage::{BrokenRead, JobImpact};

/// Names listed per table cell before "and N more".
const IMPACT_NAMES: usize = 8;

/// The lineage impact table: a row per changed job that writes something; `None` when no
/// changed job writes anything.
pub(super) fn impact_block(impact: &[JobImpact]) -> Option<Block> {
    if !impact.iter().any(|i| !i.impact.writes.is_empty()) {
        return None;
    }
    let body = impact
        .iter()
        .filter(|i| !i.impact.writes.is_empty())
        .map(|i| {
            format!(
                "| {} | {} | {} | {} | {} |\n",
                escape_markdown(&i.job),
                i.action.as_str(),
                cell(&i.impact.writes),
                cell(&i.impact.downstream_jobs),
                cell(&i.impact.downstream_datasets),
            )
        })
        .collect();
    Some(Block {
        head: "**Lineage impact** (declared and observed; downstream up to 5 jobs away):\n\n\
               | job | change | writes | downstream jobs | downstream datasets |\n\
               |---|---|---|---|---|\n"
            .to_string(),
        body,
        close: String::new(),
        end: String::new(),
        note: |n| format!("\n_(and {})_\n", plural(n, "more job")),
    })
}

/// The warning that merging leaves jobs reading datasets nothing writes any more, in every
/// workspace; `None` when there are none.
pub(super) fn broken_block(broken: &[BrokenRead]) -> Option<Block> {
    if broken.is_empty() {
        return None;
    }
    let readers: BTreeSet<&str> = broken
        .iter()
        .flat_map(|b| b.readers.iter().map(String::as_str))
        .collect();
    let workspaces: BTreeSet<&str> = readers
        .iter()
        .filter_map(|r| r.strip_prefix("job:")?.split(':').next())
        .collect();
    let head = format!(
        "> [!WARNING]\n> **Merging this breaks {} in {}**: {} would lose every job \
         that writes {}.\n\n\
         | dataset | written now by | still read by |\n|---|---|---|\n",
        plural(readers.len(), "reader"),
        plural(workspaces.len(), "workspace"),
        if broken.len() == 1 {
            "a dataset they read"
        } else {
            "datasets they read"
        },
        if broken.len() == 1 { "it" } else { "them" },
    );
    let body = broken
        .iter()
        .map(|b| {
            format!(
                "| {} | {} | {} |\n",
                cell(std::slice::from_ref(&b.dataset)),
                cell(&b.lost),
                cell(&b.readers)
            )
        })
        .collect();
    Some(Block {
        head,
        body,
        close: String::new(),
        end: String::new(),
        note: |n| format!("\n_(and {})_\n", plural(n, "more dataset")),
    })
}

/// Node ids as a table cell: `dataset:sales:gold.revenue` reads as `sales:gold.revenue`, at most
/// [`IMPACT_NAMES`] of them.
fn cell(names: &[String]) -> String {
    if names.is_empty() {
        return "—".to_string();
    }
    let shown: Vec<String> = names
        .iter()
        .take(IMPACT_NAMES)
        .map(|n| {
            let short = n
                .strip_prefix("dataset:")
                .or_else(|| n.strip_prefix("job:"))
                .unwrap_or(n);
            escape_markdown(short)
        })
        .collect();
    let more = names.len().saturating_sub(IMPACT_NAMES);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
