//! The lineage impact section of a valid plan's comment: what each changed job writes, and the
//! jobs and datasets downstream of it.

use super::parts::Block;
use super::text::{escape_markdown, plural};
use super::JobImpact;

/// Names listed per table cell before "and N more".
const IMPACT_NAMES: usize = 8;

/// The lineage impact table: a row per changed job that writes something; `None` when no
/// changed job writes anything.
pub(super) fn impact_block(impact: &[JobImpact]) -> Option<Block> {
    if !impact.iter().any(|i| !i.impact.writes.is_empty()) {
        return None;
    }
    let cell = |names: &[String]| -> String {
        if names.is_empty() {
            return "—".to_string();
        }
        // `dataset:sales:gold.revenue` reads as `sales:gold.revenue`.
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
    };
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
