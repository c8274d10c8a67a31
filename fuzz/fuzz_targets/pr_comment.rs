//! The plan comment olo posts on a pull request, built from what the pull request's author
//! controls: the diff of a rendered file, the path of a file that does not validate and its
//! diagnostic's message, or an error message. The input's first byte picks which; the rest is
//! the text (two parts split at the first NUL for a path and a message).
//!
//! Checked, parsing the comment back as GitHub-flavoured Markdown: the author's text lands
//! whole in one code block (diffs, errors), and the comment's structure (headings, links,
//! images, HTML, emphasis, tables, lists) is the same as for a harmless text of the same
//! shape: nothing the author writes can close olo's fences, plant a link or a heading, or
//! swallow what follows.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use olo_reconciler::forge::comment::{render, PlanComment, PlanOutcome, GITHUB_COMMENT_LIMIT};
use olo_reconciler::lineage::PlanImpact;
use olo_reconciler::plan::{Action, Change, Plan};
use olo_schema::{Diagnostic, Severity};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "https://github.com/acme/lakehouse-config";
/// Where a diagnostic's link points: the file at the pull request's head.
const BLOB: &str =
    "https://github.com/acme/lakehouse-config/blob/0123456789abcdef0123456789abcdef01234567/";

/// What the author controls, in one of three places.
enum Input {
    Diff(String),
    Diagnostic { path: String, message: String },
    Error(String),
}

impl Input {
    /// The same shape (lines, lengths) with every character but line breaks an `x` (and, in a
    /// diff, the `+`, `-` and hunk headers that the comment counts).
    fn harmless(&self) -> Input {
        let x = |s: &str, keep: &[char]| {
            s.chars()
                .map(|c| {
                    if c == '\n' || keep.contains(&c) {
                        c
                    } else {
                        'x'
                    }
                })
                .collect()
        };
        match self {
            Input::Diff(d) => Input::Diff(x(d, &['+', '-', '@', ' '])),
            Input::Diagnostic { path, message } => Input::Diagnostic {
                path: x(path, &['/']),
                message: x(message, &[]),
            },
            Input::Error(m) => Input::Error(x(m, &[])),
        }
    }

    fn comment(&self) -> String {
        let owners = BTreeMap::new();
        let impact = PlanImpact::default();
        let plan;
        let diagnostics;
        let outcome = match self {
            Input::Diff(diff) => {
                plan = Plan {
                    revision: Some(SHA.into()),
                    changes: vec![Change {
                        name: "dags/w__j.py".into(),
                        action: Action::Update,
                        hash: String::new(),
                        diff: Some(diff.clone()),
                        reason: None,
                    }],
                    unchanged: 0,
                };
                PlanOutcome::Valid { plan: &plan }
            }
            Input::Diagnostic { path, message } => {
                diagnostics = [Diagnostic {
                    path: path.clone(),
                    line: 3,
                    column: 7,
                    severity: Severity::Error,
                    message: message.clone(),
                }];
                PlanOutcome::Invalid {
                    diagnostics: &diagnostics,
                }
            }
            Input::Error(message) => PlanOutcome::Error { message },
        };
        let parts = render(
            &PlanComment {
                head_sha: SHA,
                base_branch: "main",
                repo_html_url: REPO,
                outcome,
                owners: &owners,
                impact: &impact,
                unverified: None,
            },
            GITHUB_COMMENT_LIMIT,
        );
        assert_eq!(parts.len(), 1, "a small input fits one comment");
        parts.into_iter().next().unwrap()
    }
}

/// GitHub's Markdown: CommonMark with tables, strikethrough, task lists and alerts.
fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS
            | Options::ENABLE_GFM,
    )
}

/// The comment's fenced code blocks, and its structure outside them (code spans are not
/// structure: a diagnostic keeps the backtick quotes of its message as code).
fn read_back(markdown: &str) -> (Vec<String>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut structure = Vec::new();
    let mut open: Option<String> = None;
    for event in parser(markdown) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => open = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
            Event::Text(t) => {
                if let Some(b) = open.as_mut() {
                    b.push_str(&t);
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => structure.push(link(&dest_url)),
            Event::Start(Tag::Image { dest_url, .. }) => {
                structure.push(format!("image {dest_url}"))
            }
            Event::Start(tag) => structure.push(format!("{tag:?}")),
            Event::Html(h) | Event::InlineHtml(h) => structure.push(format!("html {h}")),
            _ => {}
        }
    }
    (blocks, structure)
}

/// A link, with the file path of a link into the repository left out (it is the author's text),
/// checked to stay in the repository.
fn link(dest: &str) -> String {
    let Some(path) = dest.strip_prefix(BLOB) else {
        return format!("link {dest}");
    };
    let path = path.split('#').next().unwrap_or_default();
    assert!(
        !path.contains(['?', ' ', '\\', '<', '>', '(', ')'])
            && path
                .split('/')
                .all(|s| !matches!(s, "" | "." | ".." | "%2e" | "%2E")),
        "a link out of the repository's files: {dest}"
    );
    "link to a file".into()
}

/// Text with its carriage returns left out: Markdown reads one as a line end, alone or before a
/// line feed, and pulldown-cmark keeps or drops it depending on where it is.
fn as_read(text: &str) -> String {
    text.replace('\r', "")
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    let input = match pick % 3 {
        0 => Input::Diff(format!("@@ -1 +1 @@\n{text}\n")),
        1 => {
            let (path, message) = text
                .split_once('\0')
                .unwrap_or(("workspaces/w/jobs/j.yaml", &text));
            // Git keeps no path with an empty, `.` or `..` part, or a NUL.
            if path.split('/').any(|s| matches!(s, "" | "." | "..")) {
                return;
            }
            Input::Diagnostic {
                path: path.to_string(),
                message: message.to_string(),
            }
        }
        _ => Input::Error(text),
    };
    let comment = input.comment();
    let (blocks, structure) = read_back(&comment);
    let blocks: Vec<String> = blocks.iter().map(|b| as_read(b)).collect();
    let (_, expected) = read_back(&input.harmless().comment());
    assert_eq!(
        structure, expected,
        "the text changed the comment's structure:\n{comment}"
    );
    match &input {
        Input::Diff(diff) => assert_eq!(blocks, vec![as_read(diff)], "{comment}"),
        Input::Error(message) if !message.is_empty() => {
            let whole = if message.ends_with('\n') {
                message.clone()
            } else {
                format!("{message}\n")
            };
            assert_eq!(blocks, vec![as_read(&whole)], "{comment}");
        }
        _ => {}
    }
});
