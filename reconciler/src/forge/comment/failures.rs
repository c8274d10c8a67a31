//! The comment of a commit that has no plan: it does not validate (every diagnostic, by file), or
//! planning it failed (the error).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use olo_schema::{Diagnostic, Severity};

use super::parts::Block;
use super::text::{
    code_span, cut, encode_path, escape_markdown, escape_markdown_with_code, fence_for,
    link_destination, plural,
};
use super::{commit_link, PlanComment};

/// Longest diagnostic message shown; longer ones are cut (they are never that long in practice).
const MAX_MESSAGE_CHARS: usize = 2_000;

pub(super) fn invalid_blocks(c: &PlanComment, diagnostics: &[Diagnostic]) -> Vec<Block> {
    let mut sorted = diagnostics.to_vec();
    olo_schema::diagnostic::sort(&mut sorted);
    let errors = sorted.iter().filter(|d| d.is_error()).count();
    let warnings = sorted.len() - errors;
    let mut counts = plural(errors, "error");
    if warnings > 0 {
        let _ = write!(counts, ", {}", plural(warnings, "warning"));
    }
    let title = format!(
        "### olo: {} does not validate\n\n\
         **{counts}.** Nothing can be planned until the configuration validates.\n",
        commit_link(c)
    );
    let mut out = vec![Block::text(title)];
    let base = link_destination(c.repo_html_url.trim_end_matches('/'));
    let sha = encode_path(c.head_sha);
    let mut by_file: BTreeMap<&str, Vec<&Diagnostic>> = BTreeMap::new();
    for d in &sorted {
        by_file.entry(d.path.as_str()).or_default().push(d);
    }
    for (path, ds) in by_file {
        let body = ds
            .iter()
            .map(|d| {
                let severity = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                format!(
                    "- [{}:{}:{}]({base}/blob/{sha}/{}#L{}) **{severity}**: {}\n",
                    escape_markdown(&d.path),
                    d.line,
                    d.column,
                    encode_path(&d.path),
                    d.line,
                    escape_markdown_with_code(&cut(&d.message, MAX_MESSAGE_CHARS)),
                )
            })
            .collect();
        out.push(Block {
            head: format!("**{}**\n\n", code_span(path)),
            body,
            close: String::new(),
            end: String::new(),
            note: |n| {
                format!(
                    "\n_(and {}; run `olo validate` locally for all of them)_\n",
                    plural(n, "more diagnostic")
                )
            },
        });
    }
    out
}

pub(super) fn error_blocks(c: &PlanComment, message: &str) -> Vec<Block> {
    let title = format!(
        "### olo could not plan {}\n\n\
         The configuration validates, but computing the plan failed. Nothing was decided about \
         this change; push again, or ask the platform team if this persists.\n",
        commit_link(c)
    );
    let fence = fence_for(message);
    let mut body: Vec<String> = message.split_inclusive('\n').map(str::to_string).collect();
    if let Some(last) = body.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
        }
    }
    vec![
        Block::text(title),
        Block {
            head: format!("{fence}text\n"),
            body,
            close: format!("{fence}\n"),
            end: String::new(),
            note: |n| format!("\n_(message truncated: {})_\n", plural(n, "more line")),
        },
    ]
}
