//! What an API write changes, as plain data: the file a job or workspace lives in, the document
//! text to write, the commit's author and message, the pull request's branch. No I/O here; the
//! routes ([`super`]) read the tip, validate and commit.

use olo_reconciler::source::write::{Author, FileChange};
use olo_schema::{Diagnostic, Entry, Name, Snapshot};
use serde::{Deserialize, Serialize};

/// `api.writes`: what a write through the API becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Writes are refused: change the repository.
    #[default]
    Off,
    /// One commit on the tracked branch, applied like any push.
    Commit,
    /// One commit on a new branch and a pull request, planned like any other.
    PullRequest,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Commit => "commit",
            Mode::PullRequest => "pull_request",
        }
    }
}

/// What is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Job { workspace: Name, job: Name },
    Workspace { workspace: Name },
}

impl Target {
    /// `ws/job` or `ws`: the audit entry's target.
    pub fn label(&self) -> String {
        match self {
            Target::Job { workspace, job } => format!("{}/{}", workspace.as_str(), job.as_str()),
            Target::Workspace { workspace } => workspace.as_str().to_string(),
        }
    }

    pub fn workspace(&self) -> &Name {
        match self {
            Target::Job { workspace, .. } | Target::Workspace { workspace } => workspace,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Target::Job { .. } => "job",
            Target::Workspace { .. } => "workspace",
        }
    }

    /// The file of the target in `snapshot`, and whether it exists there. A job keeps the
    /// extension its file has (`.yaml` or `.yml`); a new one gets `.yaml`.
    pub fn file(&self, snapshot: &Snapshot) -> (String, bool) {
        let stem = match self {
            Target::Job { workspace, job } => {
                format!("workspaces/{}/jobs/{}", workspace.as_str(), job.as_str())
            }
            Target::Workspace { workspace } => {
                format!("workspaces/{}/workspace", workspace.as_str())
            }
        };
        for ext in ["yaml", "yml"] {
            let path = format!("{stem}.{ext}");
            if snapshot.files.contains_key(&path) {
                return (path, true);
            }
        }
        (format!("{stem}.yaml"), false)
    }
}

/// What the commit does, for its message, the audit log and the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Replaced,
    Deleted,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Created => "Create",
            Action::Replaced => "Replace",
            Action::Deleted => "Delete",
        }
    }
}

/// Why a change cannot even be built (before validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body is not a document olo can store (400).
    BadBody(String),
    /// Deleting what does not exist (404).
    Missing(String),
    /// Deleting a workspace that still has jobs (409).
    HasJobs(String),
}

/// The document text to store: YAML as sent, byte for byte (it must be UTF-8), or a JSON object
/// written as YAML. `content_type` is the request's `Content-Type`.
pub fn document_text(content_type: Option<&str>, body: &[u8]) -> Result<String, Refusal> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = essence == "application/json" || essence.ends_with("+json");
    if json {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::BadBody(format!("the body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(Refusal::BadBody(
                "the body must be one document (a JSON object)".into(),
            ));
        }
        return Ok(olo_schema::yaml::emit_json(&value));
    }
    let yaml = matches!(
        essence.as_str(),
        "" | "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" | "text/plain"
    );
    if !yaml {
        return Err(Refusal::BadBody(format!(
            "Content-Type `{essence}` is not a document: send application/yaml (or text/yaml) or application/json"
        )));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| Refusal::BadBody("the YAML body is not UTF-8".into()))?;
    if text.trim().is_empty() {
        return Err(Refusal::BadBody(
            "the body is empty: send the document".into(),
        ));
    }
    Ok(text)
}

/// The file changes that put `text` (or, with `None`, delete the target) into `snapshot`.
pub fn changes(
    snapshot: &Snapshot,
    target: &Target,
    text: Option<&str>,
) -> Result<(Action, Vec<FileChange>), Refusal> {
    let (path, exists) = target.file(snapshot);
    match (text, target) {
        (Some(text), _) => Ok((
            if exists {
                Action::Replaced
            } else {
                Action::Created
            },
            vec![FileChange {
                path,
                content: Some(text.as_bytes().to_vec()),
            }],
        )),
        (None, _) if !exists => Err(Refusal::Missing(format!(
            "no {} `{}` at the branch tip",
            target.kind(),
            target.label()
        ))),
        (None, Target::Job { .. }) => Ok((
            Action::Deleted,
            vec![FileChange {
                path,
                content: None,
            }],
        )),
        (None, Target::Workspace { workspace }) => {
            let folder = format!("workspaces/{}/", workspace.as_str());
            let jobs = format!("{folder}jobs/");
            let files: Vec<&String> = snapshot
                .files
                .keys()
                .filter(|p| p.starts_with(&folder))
                .collect();
            let job_files: Vec<&str> = files
                .iter()
                .filter(|p| p.starts_with(&jobs))
                .map(|p| p.as_str())
                .collect();
            if !job_files.is_empty() {
                return Err(Refusal::HasJobs(format!(
                    "workspace `{}` still has {} job file(s) ({}): delete its jobs first",
                    workspace.as_str(),
                    job_files.len(),
                    job_files.join(", ")
                )));
            }
            Ok((
                Action::Deleted,
                files
                    .into_iter()
                    .map(|p| FileChange {
                        path: p.clone(),
                        content: None,
                    })
                    .collect(),
            ))
        }
    }
}

/// `snapshot` with `changes` made: what is validated before anything is written.
pub fn apply(mut snapshot: Snapshot, changes: &[FileChange]) -> Snapshot {
    for change in changes {
        match &change.content {
            Some(bytes) => {
                snapshot
                    .files
                    .insert(change.path.clone(), Entry::File(bytes.clone().into()));
            }
            None => {
                snapshot.files.remove(&change.path);
            }
        }
    }
    snapshot
}

/// The errors among `diagnostics` (warnings do not refuse a change).
pub fn errors(diagnostics: &[Diagnostic]) -> Vec<Diagnostic> {
    diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect()
}

/// The commit's author: the caller's name, and its e-mail when the name is one (OpenID Connect
/// callers named by their `email` claim); otherwise `<name>@olo.invalid`, a domain that never
/// receives mail (RFC 2606), so the author is never mistaken for a real address. Characters git
/// does not allow in a signature (`<`, `>`, line breaks) are dropped.
pub fn author(name: &str) -> Author {
    let clean: String = name
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
        .collect();
    let clean = clean.trim().to_string();
    let clean = if clean.is_empty() {
        "anonymous".to_string()
    } else {
        clean
    };
    let is_email = clean.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !clean.contains(char::is_whitespace)
    });
    let email = if is_email {
        clean.clone()
    } else {
        let local: String = clean
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("{local}@olo.invalid")
    };
    Author { name: clean, email }
}

/// The commit message: what changed, then who asked and against which revision.
pub fn message(target: &Target, action: Action, caller: &str, via: &str, base: &str) -> String {
    format!(
        "{} {} {}\n\nWritten through olo's API by {caller} ({via}) against {base}.\n",
        action.verb(),
        target.kind(),
        target.label()
    )
}

/// The pull request's branch: `olo/api/<ws>-<job>-<id>` (`olo/api/<ws>-<id>` for a workspace),
/// `id` a short random hex string that keeps two writes to one job apart.
pub fn branch(target: &Target, id: &str) -> String {
    let what = match target {
        Target::Job { workspace, job } => format!("{}-{}", workspace.as_str(), job.as_str()),
        Target::Workspace { workspace } => workspace.as_str().to_string(),
    };
    format!("olo/api/{}-{id}", what.replace('_', "-"))
}

/// The pull request's title and body.
pub fn pull_request_text(
    target: &Target,
    action: Action,
    caller: &str,
    base: &str,
) -> (String, String) {
    (
        format!("{} {} {}", action.verb(), target.kind(), target.label()),
        format!(
            "Opened through olo's API for {caller}, against {base}.\n\nolo plans this pull request like any other; merging it applies the change.\n"
        ),
    )
}

/// The revision an `If-Match` header names: `"<sha>"`, `W/"<sha>"` or a bare sha; `*` (any) is
/// no condition.
pub fn if_match(header: &str) -> Option<String> {
    let v = header.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let v = v.trim_matches('"').trim();
    (!v.is_empty() && v != "*").then(|| v.to_string())
}

/// Whether the base the caller names is `tip` (a full sha, or a prefix of at least 7 digits).
pub fn same_revision(base: &str, tip: &str) -> bool {
    let base = base.to_ascii_lowercase();
    base.len() >= 7 && base.len() <= tip.len() && tip.starts_with(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn job_target() -> Target {
        Target::Job {
            workspace: name("sales"),
            job: name("orders_daily"),
        }
    }

    fn snapshot(files: &[(&str, &str)]) -> Snapshot {
        let mut s = Snapshot::new(Some("abc".into()));
        for (p, t) in files {
            s.insert_file(*p, t.as_bytes().to_vec());
        }
        s
    }

    #[test]
    fn a_job_lives_in_its_workspace_jobs_folder_and_keeps_its_extension() {
        let t = job_target();
        assert_eq!(
            t.file(&snapshot(&[])),
            ("workspaces/sales/jobs/orders_daily.yaml".into(), false)
        );
        let s = snapshot(&[("workspaces/sales/jobs/orders_daily.yml", "x")]);
        assert_eq!(
            t.file(&s),
            ("workspaces/sales/jobs/orders_daily.yml".into(), true)
        );
        let w = Target::Workspace {
            workspace: name("sales"),
        };
        assert_eq!(w.file(&snapshot(&[])).0, "workspaces/sales/workspace.yaml");
    }

    #[test]
    fn yaml_is_kept_byte_for_byte_and_json_becomes_yaml() {
        let text = "# keep me\napiVersion: olo/v1   # and me\n";
        assert_eq!(
            document_text(Some("application/yaml"), text.as_bytes()),
            Ok(text.to_string())
        );
        assert_eq!(document_text(None, text.as_bytes()), Ok(text.to_string()));
        assert_eq!(
            document_text(
                Some("application/json; charset=utf-8"),
                br#"{"apiVersion": "olo/v1", "kind": "Job"}"#
            ),
            Ok("apiVersion: olo/v1\nkind: Job\n".to_string())
        );
        assert!(matches!(
            document_text(Some("application/json"), b"[1]"),
            Err(Refusal::BadBody(_))
        ));
        assert!(matches!(
            document_text(Some("image/png"), b"x"),
            Err(Refusal::BadBody(_))
        ));
        assert!(matches!(
            document_text(Some("text/yaml"), &[0xff, 0xfe]),
            Err(Refusal::BadBody(_))
        ));
    }

    #[test]
    fn changes_create_replace_and_delete_a_job() {
        let t = job_target();
        let empty = snapshot(&[]);
        let (a, c) = changes(&empty, &t, Some("doc")).unwrap();
        assert_eq!(a, Action::Created);
        assert_eq!(c[0].path, "workspaces/sales/jobs/orders_daily.yaml");
        assert_eq!(c[0].content.as_deref(), Some(&b"doc"[..]));
        let there = snapshot(&[("workspaces/sales/jobs/orders_daily.yaml", "old")]);
        assert_eq!(
            changes(&there, &t, Some("new")).unwrap().0,
            Action::Replaced
        );
        let (a, c) = changes(&there, &t, None).unwrap();
        assert_eq!((a, c[0].content.clone()), (Action::Deleted, None));
        assert!(matches!(
            changes(&empty, &t, None),
            Err(Refusal::Missing(_))
        ));
        let after = apply(there, &c);
        assert!(after.files.is_empty());
    }

    #[test]
    fn a_workspace_with_jobs_is_not_deleted_and_one_without_goes_whole() {
        let w = Target::Workspace {
            workspace: name("sales"),
        };
        let s = snapshot(&[
            ("workspaces/sales/workspace.yaml", "ws"),
            ("workspaces/sales/jobs/a.yaml", "job"),
        ]);
        assert!(matches!(changes(&s, &w, None), Err(Refusal::HasJobs(_))));
        let s = snapshot(&[
            ("workspaces/sales/workspace.yaml", "ws"),
            ("workspaces/sales/sql/x.sql", "select 1"),
            ("workspaces/salesx/workspace.yaml", "other"),
        ]);
        let (_, c) = changes(&s, &w, None).unwrap();
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "workspaces/sales/sql/x.sql",
                "workspaces/sales/workspace.yaml"
            ]
        );
    }

    #[test]
    fn the_author_is_the_caller_with_an_email_that_is_real_or_clearly_not() {
        assert_eq!(
            author("ada@example.com"),
            Author {
                name: "ada@example.com".into(),
                email: "ada@example.com".into()
            }
        );
        assert_eq!(author("ci-bot").email, "ci-bot@olo.invalid");
        assert_eq!(author("Ada <x>\nLovelace").name, "Ada xLovelace");
        assert_eq!(author("Ada Lovelace").email, "Ada-Lovelace@olo.invalid");
        assert_eq!(author("").name, "anonymous");
    }

    #[test]
    fn message_branch_and_pull_request_name_the_change_and_the_caller() {
        let t = job_target();
        assert_eq!(
            message(&t, Action::Created, "ci-bot", "token", "0123abc"),
            "Create job sales/orders_daily\n\nWritten through olo's API by ci-bot (token) against 0123abc.\n"
        );
        assert_eq!(
            branch(&t, "1a2b3c4d"),
            "olo/api/sales-orders-daily-1a2b3c4d"
        );
        let (title, body) = pull_request_text(&t, Action::Deleted, "ada", "0123abc");
        assert_eq!(title, "Delete job sales/orders_daily");
        assert!(body.starts_with("Opened through olo's API for ada, against 0123abc."));
    }

    #[test]
    fn if_match_takes_quoted_weak_and_bare_revisions() {
        assert_eq!(if_match("\"abc1234\""), Some("abc1234".into()));
        assert_eq!(if_match("W/\"abc1234\""), Some("abc1234".into()));
        assert_eq!(if_match(" abc1234 "), Some("abc1234".into()));
        assert_eq!(if_match("*"), None);
        let tip = "0123456789abcdef0123456789abcdef01234567";
        assert!(same_revision(tip, tip));
        assert!(same_revision("0123456", tip));
        assert!(!same_revision("012345", tip));
        assert!(!same_revision("1123456", tip));
    }
}
