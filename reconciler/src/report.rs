//! What people read about a plan: text for the terminal, Markdown for pull requests. Pure.

use std::fmt::Write as _;

use crate::plan::{Action, Plan};

fn sign(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Keep => "=",
        Action::Unchanged => " ",
    }
}

fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "{} to create, {} to update, {} to delete, {} kept, {} unchanged",
        s.create, s.update, s.delete, s.keep, s.unchanged
    )
}

/// The plan for a terminal: one line per resource, then the diffs.
pub fn text(plan: &Plan, with_diffs: bool) -> String {
    let mut out = String::new();
    let rev = plan.revision.as_deref().unwrap_or("working tree");
    let _ = writeln!(out, "Plan for {rev}: {}", summary_line(plan));
    if plan.changes.is_empty() {
        let _ = writeln!(out, "No changes. The live state matches the repository.");
        return out;
    }
    out.push('\n');
    for c in &plan.changes {
        let _ = write!(
            out,
            "  {} {:<6} {}",
            sign(c.action),
            c.action.as_str(),
            c.name
        );
        if let Some(r) = &c.reason {
            let _ = write!(out, "  ({r})");
        }
        out.push('\n');
    }
    if with_diffs {
        for c in &plan.changes {
            if let Some(d) = &c.diff {
                if matches!(c.action, Action::Update) {
                    out.push('\n');
                    out.push_str(d);
                }
            }
        }
    }
    out
}

/// The plan as Markdown (pull request comments, `olo plan --format markdown`): a summary table
/// and each changed file's diff in a collapsible section.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let rev = plan.revision.as_deref().unwrap_or("working tree");
    let _ = writeln!(out, "### olo plan for `{rev}`\n");
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if plan.changes.is_empty() {
        let _ = writeln!(out, "No changes.");
        return out;
    }
    let _ = writeln!(out, "| | resource | action |\n|---|---|---|");
    for c in &plan.changes {
        let reason = c
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | `{}` | {}{} |",
            sign(c.action),
            c.name,
            c.action.as_str(),
            reason
        );
    }
    for c in &plan.changes {
        if let Some(d) = &c.diff {
            let fence = if d.contains("```") { "~~~~" } else { "```" };
            let _ = writeln!(
                out,
                "\n<details><summary>{} <code>{}</code></summary>\n\n{fence}diff\n{}{fence}\n</details>",
                c.action.as_str(),
                c.name,
                d
            );
        }
    }
    out
}
