//! An audit entry as a sentence people read (`olo audit`, the dashboard's audit page); the
//! entry's JSON details stay one step away (`--format json`, the page's "details").

use serde_json::Value;

use crate::engine::short;
use crate::store::AuditEntry;
use crate::text::{count, echo};

/// Longest echo of a caller's or committer's text (a commit subject, a refusal reason).
const ECHO: usize = 120;

/// What the entry records, as one sentence without its actor and time (they have columns of their
/// own): "applied 3f2a9c1 “Add orders” to main: 2 created, 1 updated". Unknown actions read as
/// "action target".
pub fn sentence(entry: &AuditEntry) -> String {
    let d = &entry.details;
    let target = entry.target.as_str();
    let commit = || {
        let sha = entry.revision.as_deref().map(short).unwrap_or("?");
        match str_of(d, "message").filter(|m| !m.is_empty()) {
            Some(m) => format!("{sha} “{}”", echo(m, ECHO)),
            None => sha.to_string(),
        }
    };
    let run = || match d.get("run") {
        Some(id) => format!("run {id} of {target}"),
        None => format!("a run of {target}"),
    };
    match entry.action.as_str() {
        "apply" if str_of(d, "outcome") == Some("failed") => format!(
            "could not apply {} to {target}: {}",
            commit(),
            echo(str_of(d, "error").unwrap_or("unknown error"), ECHO)
        ),
        "apply" => format!("applied {} to {target}: {}", commit(), changes(&d["plan"])),
        "invalid_commit" => format!(
            "refused commit {} on {target}: {}; the live state stayed",
            commit(),
            count(uint(d, "errors"), "error")
        ),
        crate::engine::UNVERIFIED_COMMIT => format!(
            "refused commit {} on {target}: {}; the live state stayed",
            commit(),
            echo(str_of(d, "signature").unwrap_or("not verified"), ECHO)
        ),
        crate::adopt::ADOPTED => format!(
            "took {} olo rendered (target {target}) back into the inventory, from their \
             headers: the state store was empty",
            count(uint(d, "files"), "file")
        ),
        crate::engine::DRIFT_REPAIRED => format!(
            "put back {} changed by hand in {target}",
            count(uint(d, "count"), "resource")
        ),
        "run_trigger" => {
            let mut s = format!("triggered {}", run());
            if let Some(how) = str_of(d, "trigger") {
                s.push_str(&format!(" ({how})"));
            }
            if let Some(date) = str_of(d, "logical_date") {
                s.push_str(&format!(", logical date {date}"));
            }
            s
        }
        "run_cancel" => format!("cancelled {}", run()),
        "run_clear" => format!("cleared the failed tasks of {}", run()),
        "reconcile_request" => format!("asked for a reconcile of {target}"),
        "sql_query" => match str_of(d, "error") {
            Some(error) => format!("ran a SQL query on Trino that failed ({error})"),
            None => format!(
                "ran a SQL query on Trino ({})",
                count(uint(d, "rows"), "row")
            ),
        },
        "denied" if d.get("summary").and_then(Value::as_bool) == Some(true) => format!(
            "was refused {} more from {} in {} s",
            count(uint(d, "count"), "time"),
            str_of(d, "source").unwrap_or("?"),
            uint(d, "interval_seconds")
        ),
        "denied" => format!(
            "was refused {target}: {}",
            echo(str_of(d, "reason").unwrap_or("not allowed"), ECHO)
        ),
        action => match write(action) {
            Some((kind, verb, false)) => {
                let mut s = format!("{verb} {kind} {target} through the API");
                if let Some(pr) = d.get("pull_request") {
                    match pr.get("number") {
                        Some(n) => s.push_str(&format!(": pull request #{n}")),
                        None => s.push_str(": a pull request"),
                    }
                } else if let Some(sha) = str_of(d, "revision") {
                    s.push_str(&format!(": commit {}", short(sha)));
                }
                if d.get("pull_request_error").is_some() {
                    s.push_str(" (the pull request could not be opened)");
                }
                s
            }
            Some((kind, verb, true)) => {
                let why = match str_of(d, "code") {
                    Some("invalid_change") => {
                        format!(
                            "the change is invalid ({})",
                            count(uint(d, "errors"), "error")
                        )
                    }
                    Some("revision_conflict") => "the branch had moved on".to_string(),
                    Some(code) => code.to_string(),
                    None => "refused".to_string(),
                };
                format!("could not {verb} {kind} {target}: {why}")
            }
            None if target.is_empty() => action.replace('_', " "),
            None => format!("{} {target}", action.replace('_', " ")),
        },
    }
}

/// An API write's action (`job_apply`, `workspace_delete_refused`, ...): the kind, the verb, and
/// whether it was refused.
fn write(action: &str) -> Option<(&'static str, &'static str, bool)> {
    let (action, refused) = match action.strip_suffix("_refused") {
        Some(a) => (a, true),
        None => (action, false),
    };
    let (kind, verb) = action.split_once('_')?;
    let kind = match kind {
        "job" => "job",
        "workspace" => "workspace",
        _ => return None,
    };
    let verb = match (verb, refused) {
        ("apply", false) => "changed",
        ("delete", false) => "deleted",
        ("apply", true) => "change",
        ("delete", true) => "delete",
        _ => return None,
    };
    Some((kind, verb, refused))
}

/// A plan summary (`{"create": 2, "update": 1, ...}`) in words, zeros left out.
fn changes(plan: &Value) -> String {
    let parts: Vec<String> = [
        ("create", "created"),
        ("update", "updated"),
        ("delete", "deleted"),
        ("drift", "repaired"),
    ]
    .iter()
    .filter_map(|(key, word)| {
        let n = uint(plan, key);
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    if parts.is_empty() {
        "nothing to change".into()
    } else {
        parts.join(", ")
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn uint(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_u64).unwrap_or(0) as usize
}

#[cfg(test)]
mod tests {
    use super::sentence;
    use crate::store::AuditEntry;
    use serde_json::{json, Value};

    fn entry(action: &str, target: &str, revision: Option<&str>, details: Value) -> AuditEntry {
        AuditEntry {
            id: 1,
            at: chrono::DateTime::UNIX_EPOCH,
            actor: "Ada <ada@example.com>".into(),
            action: action.into(),
            target: target.into(),
            revision: revision.map(str::to_string),
            details,
        }
    }

    /// One entry of each kind olo writes, as `olo audit` and the dashboard show it.
    #[test]
    fn every_action_reads_as_a_sentence() {
        let sha = Some("3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b");
        let entries = [
            entry(
                "apply",
                "main",
                sha,
                json!({"message": "Add orders", "outcome": "applied",
                "plan": {"create": 2, "update": 1, "delete": 0, "keep": 0, "unchanged": 40, "drift": 0}}),
            ),
            entry(
                "apply",
                "main",
                sha,
                json!({"message": "Nothing", "outcome": "applied",
                "plan": {"create": 0, "update": 0, "delete": 0}}),
            ),
            entry(
                "apply",
                "main",
                sha,
                json!({"message": "Add orders", "outcome": "failed",
                "error": "Airflow refused: 503", "plan": {}}),
            ),
            entry(
                "invalid_commit",
                "main",
                sha,
                json!({"errors": 1, "message": "Break it"}),
            ),
            entry("invalid_commit", "main", sha, json!({"errors": 6})),
            entry(
                "unverified_commit",
                "main",
                sha,
                json!({"message": "Sneak", "signature": "unsigned", "verdict": "unsigned"}),
            ),
            entry(
                "drift_repaired",
                "/var/lib/olo/dags",
                sha,
                json!({"count": 2, "resources": []}),
            ),
            entry(
                "run_trigger",
                "sales/orders_daily",
                None,
                json!({"run": 7, "trigger": "api",
                "logical_date": "2026-12-07T00:00:00Z"}),
            ),
            entry("adopt", "files", None, json!({"files": 12})),
            entry("run_cancel", "sales/orders_daily", None, json!({"run": 7})),
            entry("run_clear", "sales/orders_daily", None, json!({"run": 7})),
            entry("reconcile_request", "main", None, json!({})),
            entry(
                "sql_query",
                "trino",
                None,
                json!({"rows": 1, "sql": "SELECT 1"}),
            ),
            entry(
                "sql_query",
                "trino",
                None,
                json!({"error": "TABLE_NOT_FOUND"}),
            ),
            entry(
                "denied",
                "POST /api/v1/reconcile",
                None,
                json!({"reason": "no such token"}),
            ),
            entry(
                "denied",
                "12 more requests",
                None,
                json!({"summary": true, "count": 12,
                "source": "10.0.0.9", "interval_seconds": 60}),
            ),
            entry(
                "job_apply",
                "sales/orders",
                sha,
                json!({"revision": sha, "result": "committed"}),
            ),
            entry(
                "workspace_delete",
                "sales",
                sha,
                json!({"pull_request": {"number": 12, "url": "u"}}),
            ),
            entry(
                "job_apply_refused",
                "sales/orders",
                None,
                json!({"code": "invalid_change", "errors": 3}),
            ),
            entry(
                "job_delete_refused",
                "sales/orders",
                None,
                json!({"code": "revision_conflict"}),
            ),
            entry("something_new", "x", None, json!({})),
        ];
        let text: String = entries
            .iter()
            .map(|e| format!("{:<18} {}\n", e.action, sentence(e)))
            .collect();
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_long_commit_subject_is_cut() {
        let subject = "x".repeat(500);
        let e = entry(
            "invalid_commit",
            "main",
            None,
            json!({"errors": 2, "message": subject}),
        );
        let s = sentence(&e);
        assert!(s.chars().count() < 200, "{s}");
        assert!(s.contains('…'));
    }
}
