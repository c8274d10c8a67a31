//! What a pull request shows about a commit: the plan comment (Markdown, split into parts that fit
//! GitHub's limit) and the one-line commit status. Pure: data in, strings out.
//!
//! Everything that comes from the commit (file names, diagnostic messages, diffs, branch names) is
//! escaped for the place it lands in: Markdown text, HTML inside `<summary>`, a code span, or a
//! code fence longer than any backtick run in its content. Nothing a commit contains can close a
//! fence or a `<details>` block, inject HTML, or mention a person or team.

use std::collections::BTreeMap;

use olo_schema::Diagnostic;

use crate::plan::Plan;
use crate::signature::{Policy, Verification};

mod changes;
mod failures;
mod impact;
mod parts;
mod text;

use changes::{plan_blocks, plan_status};
use failures::{error_blocks, invalid_blocks};
use parts::{pack, part_header, part_trailer, Block};
pub(super) use text::cut;
use text::*;

/// The first line of every comment olo owns; the forge finds its earlier comments by it.
pub const MARKER: &str = "<!-- olo-plan -->";

/// GitHub's maximum comment length, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// GitHub's maximum commit status description length, in characters.
pub const STATUS_DESCRIPTION_LIMIT: usize = 140;

/// The smallest part size [`render`] works with; a smaller `limit` is raised to this.
pub const MIN_LIMIT: usize = 1_000;

/// Everything the plan comment of one pull request commit is made from.
#[derive(Debug, Clone, Copy)]
pub struct PlanComment<'a> {
    pub head_sha: &'a str,
    pub base_branch: &'a str,
    /// `https://github.com/owner/repo` (the payload's `repository.html_url`).
    pub repo_html_url: &'a str,
    pub outcome: PlanOutcome<'a>,
    /// Which workspace each planned resource belongs to (`dags/sales__orders_daily.py` ->
    /// `sales`); resources absent here are grouped under "shared".
    pub owners: &'a BTreeMap<String, String>,
    /// What each changed job writes and what depends on it, and the reads the merge would
    /// break (declared and observed lineage).
    pub impact: &'a PlanImpact,
    /// The head commit's signature check, when signatures are checked and it does not verify:
    /// the comment warns that `verify.policy = "enforce"` refuses (or would refuse) it.
    pub unverified: Option<(&'a Verification, Policy)>,
}

pub use crate::lineage::{JobImpact, PlanImpact};

/// How planning the commit ended.
#[derive(Debug, Clone, Copy)]
pub enum PlanOutcome<'a> {
    /// The commit validates; this is what merging it would change.
    Valid { plan: &'a Plan },
    /// The commit does not validate: nothing can be planned.
    Invalid { diagnostics: &'a [Diagnostic] },
    /// Planning failed for a reason that is not the commit's (e.g. a target was unreachable).
    Error { message: &'a str },
}

/// The state of the `olo/plan` commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    /// The value GitHub's API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// The comment bodies, in order. Each is at most `limit` characters (pass
/// [`GITHUB_COMMENT_LIMIT`]; a `limit` below [`MIN_LIMIT`] is raised to it) and starts with
/// [`MARKER`] and then `<!-- olo-plan part i/n -->`, so the forge can find and order them.
///
/// Parts are split between sections, never inside a code fence or a `<details>` block; a single
/// section too large for a part is cut at a line boundary, with a visible note saying so.
pub fn render(comment: &PlanComment, limit: usize) -> Vec<String> {
    let limit = limit.max(MIN_LIMIT);
    let blocks = blocks(comment);
    let sha = short_sha(comment.head_sha);
    // The part header and trailer depend on the number of parts: guess, split, and split again
    // with room for a longer header until the guess holds. More room for the header only ever
    // means more parts, and there are never more parts than blocks, so this ends.
    let mut guess = 1;
    loop {
        let overhead = (1..=guess)
            .map(|i| len(&part_header(i, guess, sha)) + len(&part_trailer(i, guess)))
            .max()
            .unwrap_or(0);
        let groups = pack(&blocks, limit.saturating_sub(overhead));
        let n = groups.len();
        if n <= guess {
            return groups
                .into_iter()
                .enumerate()
                .map(|(i, body)| {
                    format!(
                        "{}{body}{}",
                        part_header(i + 1, n, sha),
                        part_trailer(i + 1, n)
                    )
                })
                .collect();
        }
        guess = n;
    }
}

/// The commit status: its state and a one-line description of at most
/// [`STATUS_DESCRIPTION_LIMIT`] characters. `owners` is [`PlanComment::owners`].
pub fn status(outcome: &PlanOutcome, owners: &BTreeMap<String, String>) -> (StatusState, String) {
    let (state, text) = match outcome {
        PlanOutcome::Valid { plan } => (StatusState::Success, plan_status(plan, owners)),
        PlanOutcome::Invalid { diagnostics } => {
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = diagnostics.len() - errors;
            let first = diagnostics
                .iter()
                .filter(|d| d.is_error())
                .min()
                .or_else(|| diagnostics.iter().min());
            let counted = if errors > 0 {
                plural(errors, "error")
            } else {
                plural(warnings, "warning")
            };
            let text = match first {
                Some(d) => format!(
                    "invalid: {counted}, first: {}:{}:{} {}",
                    d.path, d.line, d.column, d.message
                ),
                None => format!("invalid: {counted}"),
            };
            (StatusState::Failure, text)
        }
        PlanOutcome::Error { message } => {
            (StatusState::Error, format!("could not plan: {message}"))
        }
    };
    (state, cut(&one_line(&text), STATUS_DESCRIPTION_LIMIT))
}

fn blocks(c: &PlanComment) -> Vec<Block> {
    let mut blocks = match c.outcome {
        PlanOutcome::Valid { plan } => plan_blocks(c, plan),
        PlanOutcome::Invalid { diagnostics } => invalid_blocks(c, diagnostics),
        PlanOutcome::Error { message } => error_blocks(c, message),
    };
    if let Some((signature, policy)) = c.unverified {
        // Right under the title, before anything a reviewer might stop reading at.
        blocks.insert(1.min(blocks.len()), unverified_block(c, signature, policy));
    }
    blocks
}

/// The warning that the head commit does not verify with a trusted key.
fn unverified_block(c: &PlanComment, signature: &Verification, policy: Policy) -> Block {
    let branch = code_span(c.base_branch);
    let consequence = match policy {
        Policy::Enforce => format!("olo will refuse it when it reaches {branch}."),
        _ => format!(
            "olo would refuse it on {branch} under `verify.policy = \"enforce\"` (the policy is \
             `{}` now: it will be applied).",
            policy.as_str()
        ),
    };
    Block::text(format!(
        "> [!WARNING]\n> **{}: {}.** {consequence} Sign it with a trusted OpenPGP or SSH key \
         (`git commit -S`), or merge it with a merge commit when the forge's key is trusted for \
         merge commits.\n\n",
        commit_link(c),
        escape_markdown(&signature.to_string()),
    ))
}

fn commit_link(c: &PlanComment) -> String {
    format!(
        "[{}]({}/commit/{})",
        code_span(short_sha(c.head_sha)),
        link_destination(c.repo_html_url.trim_end_matches('/')),
        encode_path(c.head_sha)
    )
}

#[cfg(test)]
mod tests {
    use olo_schema::Severity;

    use super::*;
    use crate::plan::tests::{files, owned};
    use crate::plan::{diff, Action, Diffs};

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const REPO: &str = "https://github.com/acme/lakehouse-config";

    fn owners(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    static NO_IMPACT: PlanImpact = PlanImpact {
        jobs: Vec::new(),
        broken: Vec::new(),
    };

    fn comment<'a>(
        outcome: PlanOutcome<'a>,
        owners: &'a BTreeMap<String, String>,
    ) -> PlanComment<'a> {
        PlanComment {
            head_sha: SHA,
            base_branch: "main",
            repo_html_url: REPO,
            outcome,
            owners,
            impact: &NO_IMPACT,
            unverified: None,
        }
    }

    fn diagnostic(path: &str, line: u32, column: u32, message: &str) -> Diagnostic {
        Diagnostic {
            path: path.into(),
            line,
            column,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    /// All parts, as a reviewer reads them one after the other.
    fn joined(parts: &[String]) -> String {
        parts.join("\n=============== next comment ===============\n")
    }

    /// Every code fence a part opens is closed in it, and so is every `<details>` outside
    /// fences: nothing a part contains can swallow what GitHub shows after it.
    fn assert_well_formed(part: &str) {
        let mut fence: Option<usize> = None;
        let mut details = 0i64;
        for line in part.lines() {
            let ticks = line.chars().take_while(|&c| c == '`').count();
            match fence {
                Some(open) => {
                    if ticks >= open && line.trim_end().chars().all(|c| c == '`') {
                        fence = None;
                    }
                }
                None if ticks >= 3 => fence = Some(ticks),
                None => {
                    let line = without_code_spans(line);
                    details += line.matches("<details>").count() as i64;
                    details -= line.matches("</details>").count() as i64;
                    assert!(details >= 0, "</details> without <details> in:\n{part}");
                }
            }
        }
        assert_eq!(fence, None, "unclosed code fence in:\n{part}");
        assert_eq!(details, 0, "unclosed <details> in:\n{part}");
    }

    /// The line with its code spans (whose content is never HTML) taken out: a run of n
    /// backticks opens a span that the next run of exactly n backticks closes.
    fn without_code_spans(line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '`' {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let n = run_at(i);
            let mut j = i + n;
            let mut closed = None;
            while j < chars.len() {
                if chars[j] == '`' {
                    let m = run_at(j);
                    if m == n {
                        closed = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match closed {
                Some(end) => i = end,
                None => {
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
            }
        }
        out
    }

    fn assert_parts(parts: &[String], limit: usize) {
        let n = parts.len();
        for (i, part) in parts.iter().enumerate() {
            assert!(
                len(part) <= limit,
                "part {} has {} chars, limit {limit}",
                i + 1,
                len(part)
            );
            let marker = format!("{MARKER}\n<!-- olo-plan part {}/{n} -->\n", i + 1);
            assert!(part.starts_with(&marker), "part {} starts:\n{part}", i + 1);
            assert_well_formed(part);
        }
    }

    const ORDERS_V1: &str = "from airflow.sdk import DAG\n\nwith DAG(\n    dag_id='sales__orders_daily',\n    schedule='0 3 * * *',\n) as dag:\n    ingest = BashOperator(task_id='ingest')\n";
    const ORDERS_V2: &str = "from airflow.sdk import DAG\n\nwith DAG(\n    dag_id='sales__orders_daily',\n    schedule='0 4 * * *',\n) as dag:\n    ingest = BashOperator(task_id='ingest')\n";

    fn two_workspace_plan() -> Plan {
        diff(
            Some(SHA),
            &files(&[
                ("dags/sales__orders_daily.py", ORDERS_V2),
                (
                    "dags/marketing__campaign_report.py",
                    "with DAG(dag_id='marketing__campaign_report') as dag:\n    pass\n",
                ),
                ("dags/sales__customers_hourly.py", "unchanged\n"),
                ("trino/rules.json", "{\"catalogs\": []}\n"),
            ]),
            &files(&[
                ("dags/sales__orders_daily.py", ORDERS_V1),
                ("dags/sales__customers_hourly.py", "unchanged\n"),
                (
                    "dags/sales__refunds.py",
                    "-- refunds\nwith DAG(dag_id='sales__refunds'):\n    pass\n",
                ),
            ]),
            &owned(&[
                "dags/sales__orders_daily.py",
                "dags/sales__customers_hourly.py",
                "dags/sales__refunds.py",
            ]),
            true,
            Diffs::All,
        )
    }

    fn two_workspace_owners() -> BTreeMap<String, String> {
        owners(&[
            ("dags/sales__orders_daily.py", "sales"),
            ("dags/sales__customers_hourly.py", "sales"),
            ("dags/sales__refunds.py", "sales"),
            ("dags/marketing__campaign_report.py", "marketing"),
        ])
    }

    #[test]
    fn valid_plan_in_two_workspaces() {
        let plan = two_workspace_plan();
        let owners = two_workspace_owners();
        let outcome = PlanOutcome::Valid { plan: &plan };
        let parts = render(&comment(outcome, &owners), GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        assert_eq!(parts.len(), 1);
        insta::assert_snapshot!("valid_plan_in_two_workspaces", joined(&parts));
        assert_eq!(
            status(&outcome, &owners),
            (
                StatusState::Success,
                "2 to create, 1 to change, 1 to delete in 2 workspaces and shared resources"
                    .to_string()
            )
        );
    }

    #[test]
    fn a_head_that_does_not_verify_is_warned_about_under_the_title() {
        let plan = two_workspace_plan();
        let owners = two_workspace_owners();
        let untrusted = crate::signature::Verification {
            verdict: crate::signature::Verdict::UntrustedKey,
            format: Some(crate::signature::Format::Ssh),
            key: Some("SHA256:XN5jI5qQKEg7UzVS948dummWeWDrxgqf6M5PEpox88c".into()),
            identity: None,
            detail: None,
        };
        let unsigned = crate::signature::Verification {
            verdict: crate::signature::Verdict::Unsigned,
            format: None,
            key: None,
            identity: None,
            detail: None,
        };
        let heads: Vec<String> = [(&untrusted, Policy::Enforce), (&unsigned, Policy::Audit)]
            .into_iter()
            .map(|unverified| {
                let c = PlanComment {
                    unverified: Some(unverified),
                    ..comment(PlanOutcome::Valid { plan: &plan }, &owners)
                };
                let parts = render(&c, GITHUB_COMMENT_LIMIT);
                assert_parts(&parts, GITHUB_COMMENT_LIMIT);
                parts[0].lines().take(8).collect::<Vec<_>>().join("\n")
            })
            .collect();
        insta::assert_snapshot!(heads.join("\n---\n"));
    }

    #[test]
    fn lineage_impact_of_changed_jobs() {
        let plan = two_workspace_plan();
        let owners = two_workspace_owners();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let many: Vec<String> = (0..11).map(|i| format!("job:bi:refresh_{i:02}")).collect();
        let jobs = vec![
            JobImpact {
                job: "sales/orders_daily".into(),
                action: Action::Update,
                impact: crate::lineage::Impact {
                    writes: names(&["dataset:sales:gold.orders"]),
                    downstream_jobs: many,
                    // A name from an OpenLineage event: hostile text stays text.
                    downstream_datasets: names(&[
                        "dataset:s3://x:a|b`c <script>@acme/admins",
                        "dataset:sales:gold.revenue",
                    ]),
                },
            },
            // A job that writes nothing is not listed.
            JobImpact {
                job: "sales/notify".into(),
                action: Action::Create,
                impact: crate::lineage::Impact::default(),
            },
        ];
        let impact = PlanImpact {
            jobs,
            broken: vec![crate::lineage::BrokenRead {
                dataset: "dataset:sales:gold.revenue".into(),
                lost: names(&["job:sales:orders_daily"]),
                readers: names(&[
                    "job:marketing:campaign_report",
                    "job:sales:customers_hourly",
                ]),
            }],
        };
        let c = PlanComment {
            impact: &impact,
            ..comment(PlanOutcome::Valid { plan: &plan }, &owners)
        };
        let parts = render(&c, GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        let text = joined(&parts);
        let section: String = text
            .lines()
            .skip_while(|l| !l.starts_with("> [!WARNING]"))
            .take_while(|l| !l.starts_with("<details>"))
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!("lineage_impact", section);
        assert!(!text.contains("sales/notify"));
        assert!(!text.contains("<script>") && !text.contains("@acme"));
    }

    #[test]
    fn status_counts_only_workspaces_with_changes() {
        let plan = diff(
            None,
            &files(&[
                ("dags/sales__orders_daily.py", ORDERS_V2),
                ("dags/m.py", "m\n"),
            ]),
            &files(&[
                ("dags/sales__orders_daily.py", ORDERS_V1),
                ("dags/m.py", "m\n"),
            ]),
            &[],
            true,
            Diffs::All,
        );
        let owners = owners(&[
            ("dags/sales__orders_daily.py", "sales"),
            ("dags/m.py", "marketing"),
        ]);
        assert_eq!(
            status(&PlanOutcome::Valid { plan: &plan }, &owners),
            (
                StatusState::Success,
                "0 to create, 1 to change, 0 to delete in 1 workspace".to_string()
            )
        );
    }

    #[test]
    fn no_changes() {
        let plan = diff(
            Some(SHA),
            &files(&[("dags/sales__orders_daily.py", ORDERS_V1)]),
            &files(&[
                ("dags/sales__orders_daily.py", ORDERS_V1),
                ("dags/sales__refunds.py", "r\n"),
            ]),
            &owned(&["dags/sales__orders_daily.py", "dags/sales__refunds.py"]),
            false,
            Diffs::All,
        );
        let owners = owners(&[
            ("dags/sales__orders_daily.py", "sales"),
            ("dags/sales__refunds.py", "sales"),
        ]);
        let outcome = PlanOutcome::Valid { plan: &plan };
        let parts = render(&comment(outcome, &owners), GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        insta::assert_snapshot!("no_changes", joined(&parts));
        assert_eq!(
            status(&outcome, &owners),
            (
                StatusState::Success,
                "no changes; 1 resource up to date; 1 kept, not deleted".to_string()
            )
        );
    }

    #[test]
    fn invalid_commit() {
        let diagnostics = vec![
            diagnostic(
                "workspaces/sales/jobs/b.yaml",
                12,
                7,
                "task `clean` depends on unknown task `ingest2`",
            ),
            diagnostic(
                "workspaces/sales/jobs/a.yaml",
                3,
                5,
                "unknown field `shedule`, expected one of `schedule`, `start_date`",
            ),
            Diagnostic {
                severity: Severity::Warning,
                ..diagnostic("workspaces/sales/workspace.yaml", 1, 1, "`owners` is empty")
            },
            diagnostic(
                "workspaces/sales/jobs/a.yaml",
                9,
                11,
                "cron `0 25 * * *`: hour 25 is out of range 0-23",
            ),
        ];
        let owners = BTreeMap::new();
        let outcome = PlanOutcome::Invalid {
            diagnostics: &diagnostics,
        };
        let parts = render(&comment(outcome, &owners), GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        insta::assert_snapshot!("invalid_commit", joined(&parts));
        assert_eq!(
            status(&outcome, &owners),
            (
                StatusState::Failure,
                "invalid: 3 errors, first: workspaces/sales/jobs/a.yaml:3:5 unknown field \
                 `shedule`, expected one of `schedule`, `start_date`"
                    .to_string()
            )
        );
    }

    #[test]
    fn planning_error() {
        let owners = BTreeMap::new();
        let outcome = PlanOutcome::Error {
            message: "could not list the DAG folder\ncaused by: connection refused",
        };
        let parts = render(&comment(outcome, &owners), GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        insta::assert_snapshot!("planning_error", joined(&parts));
        assert_eq!(
            status(&outcome, &owners),
            (
                StatusState::Error,
                "could not plan: could not list the DAG folder caused by: connection refused"
                    .to_string()
            )
        );
    }

    #[test]
    fn status_description_fits_githubs_limit() {
        let message = "é".repeat(500);
        let (state, text) = status(&PlanOutcome::Error { message: &message }, &BTreeMap::new());
        assert_eq!(state, StatusState::Error);
        assert_eq!(len(&text), STATUS_DESCRIPTION_LIMIT);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn hostile_strings_stay_inside_their_blocks() {
        let hostile_file = "print('x')\n```\n</details>\n````\n@acme/admins please approve\n<script>alert(1)</script>\n";
        let name = "dags/<img src=x onerror=alert(1)>.py";
        let plan = diff(
            Some(SHA),
            &files(&[(name, hostile_file)]),
            &files(&[]),
            &[],
            true,
            Diffs::All,
        );
        let owners = owners(&[(name, "sales|<b>")]);
        let outcome = PlanOutcome::Valid { plan: &plan };
        let c = PlanComment {
            base_branch: "feat`x`</details>",
            ..comment(outcome, &owners)
        };
        let parts = render(&c, GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        insta::assert_snapshot!("hostile_plan", joined(&parts));

        let diagnostics = vec![diagnostic(
            "workspaces/sales/jobs/x (1).yaml",
            2,
            1,
            "bad value `</details>`\n\n# Approved [click](https://evil.example) <b>now</b> @acme/admins ![i](x) *",
        )];
        let outcome = PlanOutcome::Invalid {
            diagnostics: &diagnostics,
        };
        let parts = render(&comment(outcome, &owners), GITHUB_COMMENT_LIMIT);
        assert_parts(&parts, GITHUB_COMMENT_LIMIT);
        insta::assert_snapshot!("hostile_diagnostics", joined(&parts));
    }

    #[test]
    fn long_plan_is_split_into_numbered_parts() {
        let limit = 1_500;
        let mut desired = Vec::new();
        for i in 0..12 {
            let body: String = (0..8)
                .map(|l| format!("    task_{l} = BashOperator(task_id='t{l}')  # dag {i}\n"))
                .collect();
            desired.push((format!("dags/sales__job_{i:02}.py"), body));
        }
        let pairs: Vec<(&str, &str)> = desired
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_str()))
            .collect();
        let plan = diff(
            Some(SHA),
            &files(&pairs),
            &files(&[]),
            &[],
            true,
            Diffs::All,
        );
        let owners: BTreeMap<String, String> = desired
            .iter()
            .map(|(n, _)| (n.clone(), "sales".to_string()))
            .collect();
        let parts = render(&comment(PlanOutcome::Valid { plan: &plan }, &owners), limit);
        assert!(
            parts.len() > 2,
            "expected several parts, got {}",
            parts.len()
        );
        assert_parts(&parts, limit);
        // Nothing is lost: every resource's section is in exactly one part.
        for (name, _) in &desired {
            let holding = parts
                .iter()
                .filter(|p| p.contains(&format!("<code>{name}</code>")))
                .count();
            assert_eq!(holding, 1, "{name}");
        }
        assert!(!joined(&parts).contains("truncated"));
        insta::assert_snapshot!("split_plan", joined(&parts));
    }

    #[test]
    fn a_diff_larger_than_a_part_is_cut_with_a_note() {
        let limit = 1_200;
        let body: String = (0..200).map(|l| format!("line {l}\n")).collect();
        let plan = diff(
            Some(SHA),
            &files(&[("dags/sales__big.py", &body)]),
            &files(&[]),
            &[],
            true,
            Diffs::All,
        );
        let owners = BTreeMap::new();
        let parts = render(&comment(PlanOutcome::Valid { plan: &plan }, &owners), limit);
        assert_parts(&parts, limit);
        // The cut diff fills the first comment rather than leaving it with just the table.
        assert_eq!(parts.len(), 1);
        insta::assert_snapshot!("truncated_diff", joined(&parts));
        let last = parts.last().unwrap();
        assert!(
            last.contains("more lines; run `olo plan` locally for the full diff)"),
            "{last}"
        );
    }

    #[test]
    fn fences_outgrow_the_backticks_they_hold() {
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("`````"), "``````");
        assert_eq!(fence_for("```\n~~~~"), "`````");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
        // Found by fuzz/pr_comment: a blank path gave "``", which a later "``" in the message
        // closed, leaving the message's code unescaped (emphasis planted in olo's comment).
        assert_eq!(code_span("\r"), "` `");
        assert_eq!(code_span(""), "` `");
    }

    // Every fenced code block of a comment part, parsed back as CommonMark.
    use crate::report::tests::code_blocks;

    proptest::proptest! {
        /// Whatever a changed file's diff holds (fence lines of backticks and tildes, indented
        /// or not, HTML, headings, mentions), the comment, parsed back, holds it whole in one
        /// code block.
        #[test]
        fn any_diff_stays_inside_one_code_block(
            lines in proptest::collection::vec(
                "[ ]{0,4}[-+ ]?[`~]{0,9}[a-z <>#/@]{0,6}[`~]{0,4}", 0..12
            )
        ) {
            let mut diff: String = lines.iter().map(|l| format!("{l}\n")).collect();
            diff.insert_str(0, "@@ -1 +1 @@\n");
            let plan = Plan {
                revision: Some(SHA.into()),
                changes: vec![crate::plan::Change {
                    name: "dags/w__j.py".into(),
                    action: Action::Update,
                    hash: String::new(),
                    diff: Some(diff.clone()),
                    reason: None,
                }],
                unchanged: 0,
            };
            let owners = owners(&[]);
            let parts = render(
                &comment(PlanOutcome::Valid { plan: &plan }, &owners),
                GITHUB_COMMENT_LIMIT,
            );
            proptest::prop_assert_eq!(parts.len(), 1);
            proptest::prop_assert_eq!(code_blocks(&parts[0]), vec![diff], "{}", parts[0]);
        }
    }

    #[test]
    fn tiny_limits_are_raised_to_the_minimum() {
        let plan = two_workspace_plan();
        let owners = two_workspace_owners();
        let parts = render(&comment(PlanOutcome::Valid { plan: &plan }, &owners), 10);
        assert_parts(&parts, MIN_LIMIT);
    }
}
