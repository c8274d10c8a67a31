//! A state store that lost olo's earlier work (a deleted SQLite file, an emptied PostgreSQL
//! database) beside the files olo rendered: `olo apply` and `olo serve` refuse to start, naming
//! the ways forward; `--adopt` takes olo's files back into the inventory from their headers, so
//! that a job removed meanwhile is pruned; a file without olo's header is never adopted and
//! never stops a start; a fresh install starts as before.
//!
//! The PostgreSQL case runs in a database of its own on the server whose admin URL is in
//! `OLO_TEST_POSTGRES_URL` (scripts/test.sh starts one); without it, that test fails.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::daemon::WHO;
use crate::common::pg::PgDatabase;
use crate::common::{job, ok, Olo, Repo};

/// A DAG olo did not write, in olo's DAG folder.
const FOREIGN: &str = "# A DAG someone else wrote.\nfrom airflow import DAG\n";

/// The `error:` lines of a command's stderr, with the named strings replaced.
fn errors(out: &Output, replace: &[(&str, &str)]) -> String {
    let mut text: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(|l| format!("{l}\n"))
        .collect();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    text
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `olo serve` (the daemon) on `olo`'s settings, until it exits; fails the test if it still
/// runs after a minute (it started).
fn serve_until_exit(olo: &Olo) -> Output {
    let mut child = olo
        .command(&["serve"])
        .env("OLO_SOURCE__POLL_SECONDS", "3600")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "olo serve started on a store that lost olo's work:\n{}",
                String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn remove_sqlite_store(state: &Path) {
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(state.join(file));
    }
    assert!(!state.join("state.db").exists());
}

/// The audit entries of an action, as `olo audit --format json` prints them.
fn audit_of(olo: &Olo, action: &str) -> Vec<serde_json::Value> {
    olo.audit()
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

/// Jobs one and two applied into a DAG folder that also holds a DAG olo did not write; returns
/// the first commit.
/// The namespaces of the embedded Iceberg catalog (in the state folder), read through olo's
/// SQL catalog client.
fn namespaces(olo: &Olo) -> Vec<String> {
    use olo_reconciler::lakehouse::{
        sql::SqlCatalog, warehouse::Warehouses, IcebergCatalog, NamespaceId,
    };
    let url = format!("sqlite://{}/iceberg-catalog.db", olo.state.path().display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let cat = SqlCatalog::open(&url, std::sync::Arc::new(Warehouses::new(None).unwrap()))
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut todo = vec![NamespaceId::new("lake", &["w"])];
        while let Some(id) = todo.pop() {
            if cat.load_namespace(&id).await.unwrap().is_some() {
                out.push(id.dotted());
                todo.extend(cat.children(&id).await.unwrap());
            }
        }
        out.sort();
        out
    })
}

/// The workspace with a second namespace, `gold`, in the embedded Iceberg catalog.
fn workspace(namespaces: &str) -> String {
    crate::common::WORKSPACE.replace("namespaces: [raw]", &format!("namespaces: [{namespaces}]"))
}

fn applied(repo: &Repo, olo: &Olo) -> String {
    repo.write("workspaces/w/workspace.yaml", &workspace("raw, gold"));
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c1 = repo.commit("one and two", WHO);
    ok(&olo.apply());
    std::fs::write(olo.dags().join("foreign.py"), FOREIGN).unwrap();
    assert_eq!(
        olo.dag_files(),
        ["foreign.py", "w__one.py", "w__two.py"],
        "{}",
        olo.dags().display()
    );
    c1
}

/// After the refusal: job two and the namespace `gold` leave the repository while the store is
/// lost; `--adopt` takes olo's files back (both DAGs and the Trino catalog) and its namespaces
/// (`w`, `w.raw`, `w.gold`, marked as olo's in the embedded Iceberg catalog), and so prunes
/// two's DAG and drops `w.gold` at once, keeps the foreign DAG, and a later commit prunes one's.
fn adopt_and_prune(repo: &Repo, olo: &Olo, c1: &str) {
    std::fs::remove_file(repo.path().join("workspaces/w/jobs/two.yaml")).unwrap();
    repo.write("workspaces/w/workspace.yaml", &workspace("raw"));
    repo.commit("remove two and gold", WHO);
    let adopted = olo.run(&["apply", "--adopt"]);
    ok(&adopted);
    assert!(
        stderr(&adopted).contains(
            "3 files olo rendered taken back into the inventory from their headers, and 3 \
             namespaces of the lakehouse"
        ),
        "{}",
        stderr(&adopted)
    );
    assert_eq!(olo.dag_files(), ["foreign.py", "w__one.py"]);
    assert_eq!(
        namespaces(olo),
        ["w", "w.raw"],
        "the namespace that left the repository is dropped"
    );
    let adoptions = audit_of(olo, "adopt");
    assert_eq!(adoptions.len(), 1, "{adoptions:#?}");
    assert_eq!(adoptions[0]["actor"], "olo");
    assert_eq!(adoptions[0]["details"]["files"], 3);
    assert_eq!(adoptions[0]["details"]["namespaces"], 3);
    assert!(olo.status().starts_with("main: Ready"), "{}", olo.status());
    // The history starts over from the adoption: c1 is only known from the headers.
    assert!(
        olo.audit().iter().all(|e| e["revision"] != c1),
        "{:#?}",
        olo.audit()
    );

    std::fs::remove_file(repo.path().join("workspaces/w/jobs/one.yaml")).unwrap();
    repo.commit("remove one", WHO);
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), ["foreign.py"]);
    // --adopt on a store that holds olo's work changes nothing.
    ok(&olo.run(&["apply", "--adopt"]));
    assert_eq!(audit_of(olo, "adopt").len(), 1);
}

#[test]
fn a_lost_sqlite_store_is_refused_until_restored_or_adopted() {
    let repo = Repo::new();
    let olo = Olo::new(&repo.path().display().to_string());
    let c1 = applied(&repo, &olo);
    remove_sqlite_store(olo.state.path());

    let state = olo.state.path().display().to_string();
    let replace = [(state.as_str(), "[STATE]"), (&c1[..12], "[C1]")];
    let refused = olo.apply();
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    insta::assert_snapshot!("lost_sqlite_store", errors(&refused, &replace));
    // The daemon and a one-shot serve refuse alike, and the refusals change nothing.
    let daemon = serve_until_exit(&olo);
    assert_eq!(daemon.status.code(), Some(1), "{}", stderr(&daemon));
    assert_eq!(errors(&daemon, &replace), errors(&refused, &replace));
    let once = olo.run(&["serve", "--once"]);
    assert_eq!(once.status.code(), Some(1), "{}", stderr(&once));
    assert_eq!(errors(&once, &replace), errors(&refused, &replace));
    assert!(
        olo.status().starts_with("main: never reconciled"),
        "{}",
        olo.status()
    );
    assert_eq!(olo.dag_files(), ["foreign.py", "w__one.py", "w__two.py"]);

    adopt_and_prune(&repo, &olo, &c1);
}

#[test]
fn an_emptied_postgres_store_is_refused_until_restored_or_adopted() {
    let db = PgDatabase::create();
    let repo = Repo::new();
    let olo = Olo::new(&repo.path().display().to_string()).set("OLO_STATE__DATABASE", &db.url);
    let c1 = applied(&repo, &olo);
    db.recreate();

    let state = olo.state.path().display().to_string();
    let replace = [
        (db.url.as_str(), "[POSTGRES]"),
        (state.as_str(), "[STATE]"),
        (&c1[..12], "[C1]"),
    ];
    let refused = olo.apply();
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    insta::assert_snapshot!("emptied_postgres_store", errors(&refused, &replace));
    let daemon = serve_until_exit(&olo);
    assert_eq!(daemon.status.code(), Some(1), "{}", stderr(&daemon));
    assert_eq!(errors(&daemon, &replace), errors(&refused, &replace));

    adopt_and_prune(&repo, &olo, &c1);
    db.drop_database();
}

#[test]
fn a_fresh_install_starts_beside_files_olo_did_not_write() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let olo = Olo::new(&repo.path().display().to_string());
    // A DAG folder shared with other tools: their DAGs, and a file that only looks like olo's
    // (olo's header cut short).
    std::fs::create_dir_all(olo.dags()).unwrap();
    std::fs::write(olo.dags().join("foreign.py"), FOREIGN).unwrap();
    std::fs::write(
        olo.dags().join("w__old.py"),
        "# Generated by olo (OpenLake Orchestrator). Do not edit: change the source and commit.\n\
         # source: workspaces/w/jobs/old.yaml\n",
    )
    .unwrap();
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), ["foreign.py", "w__old.py", "w__one.py"]);
    assert!(audit_of(&olo, "adopt").is_empty());
}

#[test]
fn a_lost_store_beside_a_rendered_branch_is_refused_until_adopted() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    repo.commit("one and two", WHO);
    let rendered = tempfile::tempdir().unwrap();
    let bare = rendered.path().join("rendered.git");
    let olo = Olo::new(&repo.path().display().to_string())
        .set("OLO_APPLY__SINK", "branch")
        .set("OLO_APPLY__RENDERED_REPO", &bare.display().to_string());
    ok(&olo.apply());
    remove_sqlite_store(olo.state.path());

    let refused = olo.apply();
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let why = errors(&refused, &[]);
    assert!(
        why.contains("dags/w__one.py on branch olo/rendered of ") && why.contains("--adopt"),
        "{why}"
    );

    std::fs::remove_file(repo.path().join("workspaces/w/jobs/two.yaml")).unwrap();
    repo.commit("remove two", WHO);
    ok(&olo.run(&["apply", "--adopt"]));
    let files = Command::new("git")
        .args(["--git-dir", &bare.display().to_string()])
        .args(["ls-tree", "-r", "--name-only", "olo/rendered", "dags/"])
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&files.stdout);
    assert!(files.contains("dags/w__one.py\n"), "{files}");
    assert!(!files.contains("dags/w__two.py"), "{files}");
}
