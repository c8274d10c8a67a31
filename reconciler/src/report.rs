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
            let fence = crate::text::code_fence(d);
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

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

    use crate::plan::{Action, Change, Plan};

    /// The text of every fenced code block in `markdown`, parsed as CommonMark (with the
    /// `<details>` HTML around it, as GitHub sees it).
    pub(crate) fn code_blocks(markdown: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut open: Option<String> = None;
        for event in Parser::new(markdown) {
            match event {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                    open = Some(String::new())
                }
                Event::Text(t) => {
                    if let Some(b) = open.as_mut() {
                        b.push_str(&t);
                    }
                }
                Event::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
                _ => {}
            }
        }
        blocks
    }

    fn plan_with_diff(diff: &str) -> Plan {
        Plan {
            revision: Some("4f0c".into()),
            changes: vec![Change {
                name: "dags/w__j.py".into(),
                action: Action::Update,
                hash: String::new(),
                diff: Some(diff.to_string()),
                reason: None,
            }],
            unchanged: 0,
        }
    }

    #[test]
    fn a_diff_with_backtick_and_tilde_fences_stays_in_its_block() {
        // The content that closed the `~~~~` fence olo used to pick for it.
        let diff = "@@ -1 +1 @@\n-```\n+~~~~\n ~~~~\n+## Approved\n";
        let md = super::markdown(&plan_with_diff(diff));
        assert_eq!(code_blocks(&md), vec![diff.to_string()], "{md}");
    }

    proptest! {
        /// Whatever the diff holds (fence characters, indentation, HTML, headings), the Markdown
        /// holds it in exactly one code block, whole.
        #[test]
        fn any_diff_stays_inside_one_code_block(
            lines in proptest::collection::vec("[ ]{0,4}[-+ ]?[`~]{0,9}[a-z <>#/]{0,6}[`~]{0,4}", 0..12)
        ) {
            let mut diff: String = lines.iter().map(|l| format!("{l}\n")).collect();
            diff.insert_str(0, "@@ -1 +1 @@\n");
            let md = super::markdown(&plan_with_diff(&diff));
            prop_assert_eq!(code_blocks(&md), vec![diff.clone()], "{}", md);
        }
    }
}
