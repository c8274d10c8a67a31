//! The comment of a commit that validates: the summary, the table of changes per workspace, the
//! lineage impact, what is kept, and a diff per changed resource; and its commit status line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plan::{Action, Change, Plan};

use super::impact::{broken_block, impact_block};
use super::parts::Block;
use super::text::{
    code_span, diff_stat, escape_html, escape_markdown, escape_markdown_with_code, fence_for,
    plural,
};
use super::{commit_link, PlanComment};

pub(super) fn plan_blocks(c: &PlanComment, plan: &Plan) -> Vec<Block> {
    let s = plan.summary();
    let groups = group_changes(plan, c.owners);
    let mut title = format!(
        "### olo plan for {} into {}\n\n",
        commit_link(c),
        code_span(c.base_branch)
    );
    if !plan.has_changes() {
        let _ = writeln!(
            title,
            "**No changes.** Merging this leaves the platform as it is ({} unchanged).",
            plural(s.unchanged, "resource")
        );
    } else {
        let _ = writeln!(
            title,
            "**{} to create, {} to change, {} to delete**; {} unchanged.",
            s.create, s.update, s.delete, s.unchanged
        );
    }
    let mut out = vec![Block::text(title)];

    if plan.has_changes() {
        let with_keep = s.keep > 0;
        let mut head = String::from("| workspace | to create | to change | to delete |");
        if with_keep {
            head.push_str(" kept, not deleted |");
        }
        head.push_str("\n|---|--:|--:|--:|");
        if with_keep {
            head.push_str("--:|");
        }
        head.push('\n');
        let body = groups
            .iter()
            .map(|(g, cs)| {
                let count = |a: Action| cs.iter().filter(|c| c.action == a).count();
                let mut row = format!(
                    "| {} | {} | {} | {} |",
                    g.table_label(),
                    count(Action::Create),
                    count(Action::Update),
                    count(Action::Delete)
                );
                if with_keep {
                    let _ = write!(row, " {} |", count(Action::Keep));
                }
                row.push('\n');
                row
            })
            .collect();
        out.push(Block {
            head,
            body,
            close: String::new(),
            end: String::new(),
            note: |n| format!("\n_(and {})_\n", plural(n, "more workspace")),
        });
    }

    out.extend(broken_block(&c.impact.broken));
    out.extend(impact_block(&c.impact.jobs));

    let kept: Vec<String> = groups
        .iter()
        .flat_map(|(g, cs)| cs.iter().map(move |c| (g, c)))
        .filter(|(_, c)| c.action == Action::Keep)
        .map(|(g, c)| {
            let reason = c
                .reason
                .as_deref()
                .map(|r| format!(": {}", escape_markdown_with_code(r)))
                .unwrap_or_default();
            format!(
                "- {} ({}){reason}\n",
                code_span(&c.name),
                escape_markdown(g.name())
            )
        })
        .collect();
    if !kept.is_empty() {
        out.push(Block {
            head: "**Kept, not deleted:**\n\n".to_string(),
            body: kept,
            close: String::new(),
            end: String::new(),
            note: |n| format!("\n_(and {} more)_\n", n),
        });
    }

    for (g, cs) in &groups {
        for change in cs.iter().filter(|c| is_change(c.action)) {
            out.push(change_block(*g, change));
        }
    }
    out
}

fn change_block(group: Group, change: &Change) -> Block {
    let verb = match change.action {
        Action::Create => "+ create",
        Action::Update => "~ change",
        Action::Delete => "- delete",
        Action::Keep => "= keep",
        Action::Unchanged => "unchanged",
    };
    let Some(diff) = change.diff.as_deref() else {
        return Block::text(format!(
            "<details><summary>{verb} <code>{}</code> ({})</summary>\n\n\
             _No text diff (binary content)._\n\n</details>\n",
            escape_html(&change.name),
            escape_html(group.name()),
        ));
    };
    let (added, removed) = diff_stat(diff);
    let fence = fence_for(diff);
    let mut body: Vec<String> = diff.split_inclusive('\n').map(str::to_string).collect();
    if let Some(last) = body.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
        }
    }
    Block {
        head: format!(
            "<details><summary>{verb} <code>{}</code> ({}, +{added} −{removed})</summary>\n\n\
             {fence}diff\n",
            escape_html(&change.name),
            escape_html(group.name()),
        ),
        body,
        close: format!("{fence}\n"),
        end: "\n</details>\n".to_string(),
        note: |n| {
            format!(
                "\n_(diff truncated: {}; run `olo plan` locally for the full diff)_\n",
                plural(n, "more line")
            )
        },
    }
}

pub(super) fn plan_status(plan: &Plan, owners: &BTreeMap<String, String>) -> String {
    let s = plan.summary();
    let kept = if s.keep > 0 {
        format!("; {} kept, not deleted", s.keep)
    } else {
        String::new()
    };
    if !plan.has_changes() {
        return format!(
            "no changes; {} up to date{kept}",
            plural(s.unchanged, "resource")
        );
    }
    let groups = group_changes(plan, owners);
    let changed: Vec<Group> = groups
        .iter()
        .filter(|(_, cs)| cs.iter().any(|c| is_change(c.action)))
        .map(|(g, _)| *g)
        .collect();
    let workspaces = changed
        .iter()
        .filter(|g| matches!(g, Group::Workspace(_)))
        .count();
    let shared = changed.contains(&Group::Shared);
    let place = match (workspaces, shared) {
        (0, _) => "shared resources".to_string(),
        (n, false) => plural(n, "workspace"),
        (n, true) => format!("{} and shared resources", plural(n, "workspace")),
    };
    format!(
        "{} to create, {} to change, {} to delete in {place}{kept}",
        s.create, s.update, s.delete
    )
}

// ---------------------------------------------------------------------------------------------
// Grouping by workspace.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group<'a> {
    Workspace(&'a str),
    /// Resources no workspace owns (sorted last).
    Shared,
}

impl<'a> Group<'a> {
    /// The name as it is, for escaping where it lands.
    fn name(self) -> &'a str {
        match self {
            Group::Workspace(w) => w,
            Group::Shared => "shared",
        }
    }

    fn table_label(self) -> String {
        match self {
            Group::Workspace(w) => escape_markdown(w),
            Group::Shared => "_shared_".to_string(),
        }
    }
}

fn group_changes<'a>(
    plan: &'a Plan,
    owners: &'a BTreeMap<String, String>,
) -> BTreeMap<Group<'a>, Vec<&'a Change>> {
    let mut groups: BTreeMap<Group, Vec<&Change>> = BTreeMap::new();
    for c in &plan.changes {
        let g = owners
            .get(&c.name)
            .map_or(Group::Shared, |w| Group::Workspace(w.as_str()));
        groups.entry(g).or_default().push(c);
    }
    groups
}

fn is_change(a: Action) -> bool {
    matches!(a, Action::Create | Action::Update | Action::Delete)
}
