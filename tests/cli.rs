//! The `olo` binary against a real git repository: `validate --rev` reads commits from git
//! objects (never the working tree), exit codes, output formats.

use std::path::Path;
use std::process::{Command, Output};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

fn olo(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_olo"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("olo runs")
}

const WORKSPACE: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w', namespaces: [raw]}\n";
const GOOD_JOB: &str = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  tasks:\n    - id: a\n      bash: {command: echo a}\n";
const BAD_JOB: &str = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  shedule: daily\n  tasks:\n    - id: a\n      bash: {command: echo a}\n";

fn repo_with_two_commits() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(d.join("workspaces/w/jobs")).unwrap();
    std::fs::write(d.join("workspaces/w/workspace.yaml"), WORKSPACE).unwrap();
    std::fs::write(d.join("workspaces/w/jobs/j.yaml"), GOOD_JOB).unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "good"]);
    std::fs::write(d.join("workspaces/w/jobs/j.yaml"), BAD_JOB).unwrap();
    git(d, &["commit", "-q", "-am", "bad"]);
    dir
}

#[test]
fn validate_reads_the_named_commit_not_the_working_tree() {
    let dir = repo_with_two_commits();
    let d = dir.path();
    // HEAD is invalid; HEAD~1 is valid.
    let head = olo(&["validate", "--rev", "HEAD"], d);
    assert_eq!(head.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&head.stdout),
        "workspaces/w/jobs/j.yaml:5:3: error: unknown field `shedule` in `spec`; did you mean `schedule`?\n"
    );
    let previous = olo(&["validate", "--rev", "HEAD~1"], d);
    assert_eq!(
        previous.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&previous.stderr)
    );

    // A fixed working tree does not change what a commit says...
    std::fs::write(d.join("workspaces/w/jobs/j.yaml"), GOOD_JOB).unwrap();
    assert_eq!(
        olo(&["validate", "--rev", "HEAD"], d).status.code(),
        Some(1)
    );
    // ...while the working tree itself is now valid.
    assert_eq!(olo(&["validate"], d).status.code(), Some(0));
    // An uncommitted broken file is not seen through --rev either.
    std::fs::write(d.join("workspaces/w/workspace.yaml"), "{{{").unwrap();
    assert_eq!(
        olo(&["validate", "--rev", "HEAD~1"], d).status.code(),
        Some(0)
    );
}

#[test]
fn json_format_lists_the_same_diagnostics() {
    let dir = repo_with_two_commits();
    let out = olo(
        &["validate", "--rev", "HEAD", "--format", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{
            "path": "workspaces/w/jobs/j.yaml",
            "line": 5,
            "column": 3,
            "severity": "error",
            "message": "unknown field `shedule` in `spec`; did you mean `schedule`?"
        }])
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = repo_with_two_commits();
    let unknown_rev = olo(&["validate", "--rev", "no-such-branch"], dir.path());
    assert_eq!(unknown_rev.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown_rev.stderr)
        .contains("could not read revision no-such-branch"));
    let missing = olo(&["validate", "/definitely/not/here"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    let bad_flag = olo(&["validate", "--frobnicate"], dir.path());
    assert_eq!(bad_flag.status.code(), Some(2));
}

#[test]
fn schema_prints_the_embedded_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = olo(&["schema", "job"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../schema/json/job.schema.json")).unwrap();
    assert_eq!(printed, file);
}
