//! The disaster-recovery drill, end to end, on SQLite and on PostgreSQL: `olo serve` applies
//! commits (revisions, plans, an invalid commit, audit entries, lineage events), `olo backup`
//! runs beside it, the daemon stops, the store is destroyed, `olo restore` brings it back, and
//! the restarted daemon shows the same history through its API (same revisions, plans and audit
//! entries with the same ids) and applies a new commit on top with fresh ids.
//!
//! The PostgreSQL drill runs in a database of its own, made and dropped with `psql` on the
//! server whose admin URL is in `OLO_TEST_POSTGRES_URL` (scripts/test.sh starts one); without
//! it, that test fails.

use std::process::Output;

use crate::common::daemon::{push_payload, sign, Daemon, TOKEN, WHO};
use crate::common::pg::PgDatabase;
use crate::common::{job, ok, Olo, Repo};
use serde_json::{json, Value};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Pushes the newest commit of `main` to the daemon and waits until it is the last applied.
async fn push_and_wait_applied(d: &Daemon, sha: &str, delivery: &str) {
    let body = push_payload("refs/heads/main", sha);
    let (status, _) = d.deliver("push", delivery, &body, &sign(&body)).await;
    assert_eq!(status, 202);
    d.wait_until("the push to be applied", |d| async move {
        d.last_applied().await.as_deref() == Some(sha)
    })
    .await;
}

/// Pushes a commit that cannot be applied and waits until the daemon has judged it.
async fn push_and_wait_stalled(d: &Daemon, sha: &str, delivery: &str) {
    let body = push_payload("refs/heads/main", sha);
    let (status, _) = d.deliver("push", delivery, &body, &sign(&body)).await;
    assert_eq!(status, 202);
    d.wait_until("the invalid commit to stall the branch", |d| async move {
        let (_, status) = d.get("/api/v1/status").await;
        status["sync"]["last_attempted"] == sha && status["sync"]["state"] == "Stalled"
    })
    .await;
}

/// What the API and `olo audit --format jsonl` show of the history.
#[derive(Debug, PartialEq)]
struct History {
    /// Every revision, newest first, each with its plans (ids, summaries, bodies, outcomes).
    revisions: Vec<Value>,
    /// The audit log, newest first.
    audit: Vec<Value>,
    /// The branch's sync status.
    sync: Value,
    /// The lineage graph around a job (declared and observed edges).
    lineage: Value,
    /// `olo audit --format jsonl`: every entry, oldest first.
    export: Vec<Value>,
}

async fn history(d: &Daemon) -> History {
    let (status, list) = d.get("/api/v1/revisions?limit=100").await;
    assert_eq!(status, 200, "{list}");
    let mut revisions = Vec::new();
    for item in list["items"].as_array().unwrap() {
        let sha = item["revision"]["sha"].as_str().unwrap();
        let (status, full) = d.get(&format!("/api/v1/revisions/{sha}")).await;
        assert_eq!(status, 200, "{full}");
        revisions.push(full);
    }
    let (status, audit) = d.get("/api/v1/audit?limit=100").await;
    assert_eq!(status, 200, "{audit}");
    let (_, status) = d.get("/api/v1/status").await;
    let (_, lineage) = d.get("/api/v1/lineage?nodeId=job:w:one&depth=2").await;
    History {
        revisions,
        audit: audit["items"].as_array().unwrap().clone(),
        sync: status["sync"].clone(),
        lineage,
        export: export_audit(&d.olo),
    }
}

fn export_audit(olo: &Olo) -> Vec<Value> {
    let out = olo.run(&["audit", "--format", "jsonl"]);
    ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

fn plan_ids(history: &History) -> Vec<i64> {
    history
        .revisions
        .iter()
        .flat_map(|r| r["plans"].as_array().unwrap())
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

/// An OpenLineage run event of job `w__one`'s task writing a table.
fn lineage_event() -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T12:00:00.123456Z",
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11", "facets": {}},
        "job": {"namespace": "default", "name": "w__one.a"},
        "inputs": [],
        "outputs": [{"namespace": "w", "name": "raw.orders"}]
    })
}

/// The drill on the store `extra` configures; `destroy` deletes it (the daemon is stopped).
async fn drill(extra: &[(&str, &str)], destroy: impl FnOnce(&Olo)) {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = repo.commit("add one", WHO);
    let d = Daemon::start(&repo, extra).await;
    assert_eq!(d.last_applied().await.as_deref(), Some(c1.as_str()));

    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c2 = repo.commit("add two", ("Grace", "grace@example.com"));
    push_and_wait_applied(&d, &c2, "delivery-1").await;
    repo.write(
        "workspaces/w/jobs/two.yaml",
        "apiVersion: olo/v1\nkind: Job\n",
    );
    let c3 = repo.commit("break two", ("Mallory", "mallory@example.com"));
    push_and_wait_stalled(&d, &c3, "delivery-2").await;
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo two"));
    let c4 = repo.commit("fix two", WHO);
    push_and_wait_applied(&d, &c4, "delivery-3").await;
    let (status, body) = d
        .post("/api/v1/lineage", Some(TOKEN), lineage_event())
        .await;
    assert!(status < 300, "{status} {body}");

    let before = history(&d).await;
    assert_eq!(before.revisions.len(), 4);
    assert_eq!(
        before.revisions[1]["status"], "invalid",
        "{:#}",
        before.revisions[1]
    );
    assert!(before.audit.len() >= 4, "{:#?}", before.audit);
    let mut oldest_first = before.audit.clone();
    oldest_first.reverse();
    assert_eq!(before.export, oldest_first);

    // The backup, while the daemon runs.
    let file = d.olo.state.path().join("olo-backup.jsonl");
    let out = d.olo.run(&["backup", "--out", file.to_str().unwrap()]);
    ok(&out);
    let log = stderr(&out);
    for table in [
        "revisions",
        "plans",
        "audit_log",
        "lineage_events",
        "inventory",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("backup: {table} "))),
            "no progress for {table}:\n{log}"
        );
    }
    let check = d
        .olo
        .run(&["restore", "--from", file.to_str().unwrap(), "--check"]);
    ok(&check);
    let checked = String::from_utf8_lossy(&check.stdout);
    assert!(
        checked.contains("a complete, unchanged backup"),
        "{checked}"
    );

    // A restore while the daemon runs is refused and changes nothing: with PostgreSQL because a
    // replica leads the branch, with SQLite because the daemon holds the state folder's lock.
    let refused = d
        .olo
        .run(&["restore", "--from", file.to_str().unwrap(), "--force"]);
    assert!(!refused.status.success());
    let postgres = extra.iter().any(|(k, _)| *k == "OLO_STATE__DATABASE");
    let why = stderr(&refused);
    assert!(
        why.contains(if postgres {
            "a replica of `olo serve` leads branch main on"
        } else {
            "is using the state folder"
        }) && why.contains("before restoring"),
        "{why}"
    );
    assert_eq!(history(&d).await, before);

    // Disaster.
    let olo = d.stop();
    destroy(&olo);
    assert!(
        String::from_utf8_lossy(&olo.run(&["status"]).stdout).contains("never reconciled"),
        "the store is gone"
    );
    assert!(export_audit(&olo).is_empty());

    let restored = olo.run(&["restore", "--from", file.to_str().unwrap()]);
    ok(&restored);
    assert!(
        stderr(&restored).contains("restore: restored"),
        "{}",
        stderr(&restored)
    );
    // Once is enough: the store is not empty any more.
    let again = olo.run(&["restore", "--from", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("the state store is not empty")
            && stderr(&again).contains("pass --force"),
        "{}",
        stderr(&again)
    );

    // The restarted daemon reconciles the head once more (a plan with nothing to change): what
    // it adds comes after the restored history, with newer ids.
    let d = Daemon::resume(olo).await;
    let after = history(&d).await;
    assert_eq!(after.lineage, before.lineage);
    for field in ["state", "last_applied", "last_attempted"] {
        assert_eq!(after.sync[field], before.sync[field], "{field}");
    }
    assert_eq!(after.revisions.len(), before.revisions.len());
    let newest_plan = *plan_ids(&before).iter().max().unwrap();
    for (after, before) in after.revisions.iter().zip(&before.revisions) {
        let (mut a, mut b) = (after.clone(), before.clone());
        let (a_plans, b_plans) = (a["plans"].take(), b["plans"].take());
        assert_eq!(a, b, "the revision is not the one backed up");
        let (a_plans, b_plans) = (a_plans.as_array().unwrap(), b_plans.as_array().unwrap());
        let old = a_plans.len() - b_plans.len();
        assert_eq!(
            a_plans[old..],
            b_plans[..],
            "the plans of {}",
            b["revision"]["sha"]
        );
        assert!(a_plans[..old]
            .iter()
            .all(|p| p["id"].as_i64().unwrap() > newest_plan));
    }
    let n = before.audit.len();
    assert_eq!(after.audit[after.audit.len() - n..], before.audit[..]);
    assert_eq!(after.export[..n], before.export[..]);
    let newest_before = *ids(&before.audit).iter().max().unwrap();
    assert!(ids(&after.audit[..after.audit.len() - n])
        .iter()
        .all(|&id| id > newest_before));

    // A new commit applies on top, with fresh ids.
    repo.write("workspaces/w/jobs/three.yaml", &job("three", "echo 3"));
    let c5 = repo.commit("add three", WHO);
    push_and_wait_applied(&d, &c5, "delivery-4").await;
    assert!(d.olo.dags().join("w__three.py").exists());
    let last = history(&d).await;
    assert_eq!(last.revisions.len(), 5);
    assert_eq!(last.revisions[0]["revision"]["sha"], c5.as_str());
    let shas =
        |h: &[Value]| -> Vec<Value> { h.iter().map(|r| r["revision"]["sha"].clone()).collect() };
    assert_eq!(shas(&last.revisions[1..]), shas(&before.revisions));
    let new_plans = last.revisions[0]["plans"].as_array().unwrap();
    assert!(!new_plans.is_empty());
    for plan in new_plans {
        assert!(plan["id"].as_i64().unwrap() > newest_plan, "{plan}");
    }
    let apply = last
        .audit
        .iter()
        .find(|e| e["action"] == "apply" && e["revision"] == c5.as_str())
        .unwrap_or_else(|| panic!("no apply entry for {c5}: {:#?}", last.audit));
    assert!(apply["id"].as_i64().unwrap() > newest_before, "{apply}");
    assert_eq!(last.export.len(), last.audit.len());
}

fn remove_sqlite_store(olo: &Olo) {
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        let path = olo.state.path().join(file);
        if file == "state.db" {
            assert!(path.exists(), "no SQLite store at {}", path.display());
        }
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_survives_backup_destroy_and_restore() {
    drill(&[], remove_sqlite_store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_survives_backup_destroy_and_restore() {
    let db = PgDatabase::create();
    drill(&[("OLO_STATE__DATABASE", &db.url)], |olo| {
        assert!(!olo.state.path().join("state.db").exists());
        db.recreate();
    })
    .await;
    db.drop_database();
}

#[test]
fn restore_names_what_is_wrong_with_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let olo = Olo::new("unused");
    let file = dir.path().join("cut.jsonl");
    std::fs::write(&file, "{\"format\":\"olo-backup\",\"version\":1").unwrap();
    let out = olo.run(&["restore", "--from", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: could not restore the state store sqlite:{}/state.db from {}: {} is not a \
             backup olo can restore: the file ends before its trailer line: it is truncated (a \
             partial copy, or a backup that did not finish); use a complete backup",
            olo.state.path().display(),
            file.display(),
            file.display()
        )
    );
    assert!(!olo.state.path().join("state.db").exists());
    let missing = olo.run(&["restore", "--from", "/nonexistent/olo.jsonl", "--check"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("could not open /nonexistent/olo.jsonl"),
        "{}",
        stderr(&missing)
    );
}

/// `olo audit --format jsonl` pages through a log longer than one page (1,000 entries), oldest
/// first. The log is loaded with `olo restore` from a backup of an empty store with the entries
/// added.
#[test]
fn audit_jsonl_exports_every_entry_oldest_first() {
    use olo_reconciler::store::backup::format::{Decoder, Encoder, Line};

    let olo = Olo::new("unused");
    ok(&olo.run(&["status"]));
    let empty = olo.state.path().join("empty.jsonl");
    ok(&olo.run(&["backup", "--out", empty.to_str().unwrap()]));
    let text = std::fs::read_to_string(&empty).unwrap();
    let mut decoder = Decoder::new();
    let Ok(Line::Header(header)) = decoder.line(text.split_inclusive('\n').next().unwrap()) else {
        panic!("no header in {text}")
    };
    let (mut encoder, mut file) = Encoder::new(&header);
    const ENTRIES: i64 = 2_345;
    for id in 1..=ENTRIES {
        let row = json!({
            "id": id,
            "at": format!("2024-05-01T12:00:00.{id:06}Z"),
            "actor": "Ada <ada@example.com>",
            "action": "apply",
            "target": "main",
            "revision": null,
            "details": format!("{{\"n\":{id}}}"),
        });
        file += &encoder.row("audit_log", row.as_object().unwrap());
    }
    file += &encoder.finish().0;
    let full = olo.state.path().join("full.jsonl");
    std::fs::write(&full, file).unwrap();
    std::fs::remove_file(olo.state.path().join("state.db")).unwrap();
    ok(&olo.run(&["restore", "--from", full.to_str().unwrap()]));

    let entries = export_audit(&olo);
    assert_eq!(
        ids(&entries),
        (1..=ENTRIES).collect::<Vec<_>>(),
        "every entry, oldest first"
    );
    assert_eq!(entries[1233]["details"], json!({"n": 1234}));
    let limited = olo.run(&["audit", "--format", "jsonl", "--limit", "5"]);
    assert!(!limited.status.success());
    assert!(
        stderr(&limited).contains("leave out --limit"),
        "{}",
        stderr(&limited)
    );
}
