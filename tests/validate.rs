//! `olo validate` against fixture repositories: every invalid fixture's exact diagnostics are
//! snapshotted, the example repository validates cleanly, and hostile input is refused quickly.

use std::path::{Path, PathBuf};

use olo_schema::{diagnostic, validate, Snapshot};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(dir: &Path) -> Snapshot {
    olo_reconciler::snapshot::from_worktree(dir).expect("fixture readable")
}

#[test]
fn every_invalid_fixture_has_its_exact_diagnostics() {
    let root = fixtures().join("invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "expected at least 40 invalid fixtures, found {}",
        cases.len()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let validation = validate(load(&case));
        assert!(
            validation.repo.is_none(),
            "fixture {name} should be invalid but validated"
        );
        insta::assert_snapshot!(name, diagnostic::to_text(&validation.diagnostics));
    }
}

#[test]
fn example_repo_is_valid() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo");
    let validation = validate(load(&repo));
    assert_eq!(diagnostic::to_text(&validation.diagnostics), "");
    let repo = validation.repo.expect("valid");
    let jobs: Vec<String> = repo
        .workspaces
        .values()
        .flat_map(|w| w.jobs.values().map(|j| j.dag_id.clone()))
        .collect();
    assert!(
        jobs.contains(&"sales__orders_daily".to_string()),
        "{jobs:?}"
    );
    assert!(
        jobs.contains(&"platform__smoke_test".to_string()),
        "{jobs:?}"
    );
}

fn minimal_workspace(snapshot: &mut Snapshot) {
    snapshot.insert_file(
        "workspaces/w/workspace.yaml",
        "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w'}\n",
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let mut s = Snapshot::new(None);
    minimal_workspace(&mut s);
    let mut big =
        String::from("apiVersion: olo/v1\nkind: Job\nmetadata: {name: big}\nspec:\n  tasks:\n");
    while big.len() <= olo_schema::yaml::MAX_FILE_BYTES {
        big.push_str("  # padding padding padding padding padding padding padding padding\n");
    }
    s.insert_file("workspaces/w/jobs/big.yaml", big);
    let v = validate(s);
    assert_eq!(v.diagnostics.len(), 1, "{:?}", v.diagnostics);
    assert!(v.diagnostics[0]
        .message
        .contains("config files are limited to 1048576 bytes"));
}

#[test]
fn deeply_nested_and_alias_bomb_documents_are_refused() {
    let mut s = Snapshot::new(None);
    minimal_workspace(&mut s);
    s.insert_file(
        "workspaces/w/jobs/deep.yaml",
        format!("a: {}", "[".repeat(100_000)),
    );
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s.insert_file("workspaces/w/jobs/bomb.yaml", bomb);
    let v = validate(s);
    let text = diagnostic::to_text(&v.diagnostics);
    assert!(
        text.contains("workspaces/w/jobs/bomb.yaml:") && text.contains("alias bomb"),
        "{text}"
    );
    assert!(
        text.contains("workspaces/w/jobs/deep.yaml:") && text.contains("nesting too deep"),
        "{text}"
    );
}

#[test]
fn a_file_reached_through_a_linked_folder_inside_the_workspace_is_accepted() {
    let mut s = Snapshot::new(None);
    minimal_workspace(&mut s);
    s.insert_file("workspaces/w/sql/clean.sql", "select 1\n");
    s.insert_symlink("workspaces/w/queries", "sql");
    s.insert_file(
        "workspaces/w/jobs/j.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  tasks:\n    - id: q\n      sql: {file: queries/clean.sql}\n",
    );
    let v = validate(s);
    assert_eq!(diagnostic::to_text(&v.diagnostics), "");
    assert!(v.repo.is_some());
}
