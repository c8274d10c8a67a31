//! The DAG folder's disk fills up during an apply: the apply fails with the operating system's
//! reason and the file it was writing, nothing of the new commit is live (Airflow keeps reading
//! the last good DAG files, byte for byte), no temporary file is left to hold the space, and the
//! next apply after space returns goes through.
//!
//! The full disk is a real one: a tmpfs of 64 KiB mounted on the DAG folder in a mount namespace of
//! the test's own (util-linux's `unshare`, as root or with unprivileged user namespaces), grown
//! with `mount -o remount` once the failure is seen.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::daemon::WHO;
use crate::common::{job, Olo, Repo};

/// What a step of the script left: the exit code, stderr and the DAG folder's files (name ->
/// size and SHA-256).
struct Step {
    code: String,
    stderr: String,
    /// `olo status` after it.
    status: String,
    files: BTreeMap<String, String>,
}

fn read_step(out: &Path, name: &str) -> Step {
    let text = |f: &str| std::fs::read_to_string(out.join(format!("{name}.{f}"))).unwrap();
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(out.join(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).unwrap();
            let sha = olo_templates::render::sha256_hex(&bytes);
            files.insert(name, format!("{} bytes, sha256 {sha}", bytes.len()));
        }
    }
    Step {
        code: text("code").trim().to_string(),
        stderr: text("err"),
        status: text("status"),
        files,
    }
}

/// A job whose DAG file takes about 12 KiB (40 tasks).
fn big_job(name: &str) -> String {
    let mut text =
        format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n");
    for i in 0..40 {
        let words = "lorem ipsum dolor sit amet ".repeat(6);
        text.push_str(&format!(
            "    - id: t{i}\n      bash: {{command: \"echo {words}\"}}\n"
        ));
    }
    text
}

/// A repository with two commits, checked out at the first: three small jobs, then eight large
/// ones beside them and one of the small ones changed (about 100 KiB more of DAG files).
fn small_then_large() -> (Repo, String, String) {
    let repo = Repo::new();
    for name in ["one", "two", "three"] {
        repo.write(
            &format!("workspaces/w/jobs/{name}.yaml"),
            &job(name, "echo 1"),
        );
    }
    let first = repo.commit("three small jobs", WHO);
    for i in 0..8 {
        let name = format!("big{i}");
        repo.write(&format!("workspaces/w/jobs/{name}.yaml"), &big_job(&name));
    }
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo changed"));
    let second = repo.commit("eight large jobs, one changed", WHO);
    repo.git(&["reset", "-q", "--hard", &first], WHO);
    (repo, first, second)
}

#[test]
fn a_full_dag_disk_fails_the_apply_leaves_the_last_good_files_and_recovers() {
    let (repo, first, second) = small_then_large();

    let olo = Olo::new(&repo.path().display().to_string());
    let dags = olo.dags();
    std::fs::create_dir_all(&dags).unwrap();
    let out = tempfile::tempdir().unwrap();
    // Every step's DAG folder is copied out: the tmpfs goes away with the namespace.
    let script = r#"
set -u
mount -t tmpfs -o size=64k olo-disk-full "$DAGS" || exit 90
step() {
    "$OLO" apply >/dev/null 2>"$OUT/$1.err"; echo $? >"$OUT/$1.code"
    "$OLO" status >"$OUT/$1.status" 2>&1
    cp -a "$DAGS" "$OUT/$1"
}
step first
git -C "$REPO" reset -q --hard "$SECOND"
step full
step again
mount -o remount,size=16m "$DAGS"
step space
"#;
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("DAGS", &dags)
        .env("OLO", env!("CARGO_BIN_EXE_olo"))
        .env("OUT", out.path())
        .env("REPO", repo.path())
        .env("SECOND", &second)
        // The lakehouse and Trino files stay on the real disk: only the DAG folder fills up.
        .env("OLO_LAKEHOUSE__CATALOG", "off")
        .env("OLO_LAKEHOUSE__WAREHOUSE", "off");
    for (k, v) in &olo.env {
        unshare.env(k, v);
    }
    let run = unshare.output().expect("util-linux's unshare runs");
    assert!(
        run.status.success(),
        "the script in a mount namespace failed ({:?}); this test mounts a tmpfs, which needs \
         root or unprivileged user namespaces:\n{}",
        run.status.code(),
        String::from_utf8_lossy(&run.stderr)
    );

    let first_sha = first;
    let first = read_step(out.path(), "first");
    assert_eq!(first.code, "0", "{}", first.stderr);
    let dag_files = |s: &Step| s.files.keys().filter(|n| n.ends_with(".py")).count();
    assert_eq!(dag_files(&first), 3);

    for name in ["full", "again"] {
        let full = read_step(out.path(), name);
        assert_eq!(full.code, "1", "{name}: {}", full.stderr);
        assert!(
            full.stderr.contains("No space left on device"),
            "{name}: the operating system's reason is said:\n{}",
            full.stderr
        );
        assert!(
            full.stderr.contains(&dags.display().to_string()),
            "{name}: the file being written is named:\n{}",
            full.stderr
        );
        // Nothing of the new commit is live, and nothing is left behind holding the space.
        assert_eq!(
            full.files, first.files,
            "{name}: the DAG folder holds exactly the last good commit's files"
        );
        assert!(
            full.status.contains("No space left on device")
                && full
                    .status
                    .contains(&format!("last applied:   {first_sha}")),
            "{name}: olo status says why and what is live:\n{}",
            full.status
        );
    }

    let space = read_step(out.path(), "space");
    assert_eq!(space.code, "0", "{}", space.stderr);
    assert_eq!(dag_files(&space), 11);
    assert!(
        !space.files.keys().any(|n| n.contains("olo-tmp")),
        "{:?}",
        space.files.keys()
    );
    assert_ne!(space.files["w__one.py"], first.files["w__one.py"]);
    assert!(
        space.status.contains("Ready")
            && space.status.contains(&format!("last applied:   {second}")),
        "{}",
        space.status
    );
}

/// The disk under the state store fills up: SQLite cannot even open the store (its WAL's shared
/// memory file needs space; SQLite's own message is "disk I/O error"). The apply fails saying the
/// disk has no space left, nothing of the new commit reaches the DAG folder (olo records a commit
/// and claims its files in the store before it writes them), `olo status` says the same, and the
/// next apply after space returns goes through. The full disk is a 1 MiB tmpfs on the
/// store's folder, filled up with a file and freed by deleting it.
#[test]
fn a_full_disk_under_the_state_store_fails_the_apply_before_any_file_and_recovers() {
    let (repo, first_sha, second) = small_then_large();

    let store_dir = tempfile::tempdir().unwrap();
    let olo = Olo::new(&repo.path().display().to_string()).set(
        "OLO_STATE__DATABASE",
        &format!("sqlite:{}/state.db", store_dir.path().display()),
    );
    let dags = olo.dags();
    std::fs::create_dir_all(&dags).unwrap();
    let out = tempfile::tempdir().unwrap();
    let script = r#"
set -u
mount -t tmpfs -o size=1m olo-state-full "$STORE" || exit 90
step() {
    "$OLO" apply >/dev/null 2>"$OUT/$1.err"; echo $? >"$OUT/$1.code"
    "$OLO" status >"$OUT/$1.status" 2>&1
    cp -a "$DAGS" "$OUT/$1"
}
step first
git -C "$REPO" reset -q --hard "$SECOND"
dd if=/dev/zero of="$STORE/filler" bs=4k 2>/dev/null
step full
step again
rm "$STORE/filler"
step space
"#;
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("STORE", store_dir.path())
        .env("DAGS", &dags)
        .env("OLO", env!("CARGO_BIN_EXE_olo"))
        .env("OUT", out.path())
        .env("REPO", repo.path())
        .env("SECOND", &second)
        .env("OLO_LAKEHOUSE__CATALOG", "off")
        .env("OLO_LAKEHOUSE__WAREHOUSE", "off");
    for (k, v) in &olo.env {
        unshare.env(k, v);
    }
    let run = unshare.output().expect("util-linux's unshare runs");
    assert!(
        run.status.success(),
        "the script in a mount namespace failed ({:?}); this test mounts a tmpfs, which needs \
         root or unprivileged user namespaces:\n{}",
        run.status.code(),
        String::from_utf8_lossy(&run.stderr)
    );

    let first = read_step(out.path(), "first");
    assert_eq!(first.code, "0", "{}", first.stderr);
    let dag_files = |s: &Step| s.files.keys().filter(|n| n.ends_with(".py")).count();
    assert_eq!(dag_files(&first), 3);
    for name in ["full", "again"] {
        let full = read_step(out.path(), name);
        assert_eq!(full.code, "1", "{name}: {}", full.stderr);
        assert!(
            full.stderr.contains(&format!(
                "the disk holding the state store sqlite:{}/state.db has no space left",
                store_dir.path().display()
            )) || full.stderr.contains("database or disk is full"),
            "{name}: the reason is said:\n{}",
            full.stderr
        );
        assert_eq!(
            full.files, first.files,
            "{name}: the DAG folder holds exactly the last good commit's files"
        );
        // `olo status` either cannot open the store either (SQLite's WAL files need space) and
        // says why, or reads it (what little space tmpfs left sufficed) and shows the last good
        // commit live.
        assert!(
            full.status.contains("has no space left")
                || full
                    .status
                    .contains(&format!("last applied:   {first_sha}")),
            "{name}: olo status says why or what is live:\n{}",
            full.status
        );
    }
    let space = read_step(out.path(), "space");
    assert_eq!(space.code, "0", "{}", space.stderr);
    assert_eq!(dag_files(&space), 11);
    assert!(
        space.status.contains("Ready")
            && space.status.contains(&format!("last applied:   {second}")),
        "{}",
        space.status
    );
}
