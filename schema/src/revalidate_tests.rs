use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::load;

fn workspace(name: &str) -> String {
    format!("apiVersion: olo/v1\nkind: Workspace\nmetadata: {{name: {name}}}\nspec:\n  lakehouse: {{catalog: lake, warehouse: 's3://lake-bucket/{name}', namespaces: [raw]}}\n")
}

/// A job file's text in one of a few versions: valid ones, a schema error, a semantic error
/// (a dependency on a task that does not exist), a YAML error.
fn job(name: &str, version: u8) -> String {
    let head = format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n");
    match version {
        0 => format!("{head}  tasks:\n    - id: a\n      bash: {{command: echo one}}\n"),
        1 => format!("{head}  schedule: '@daily'\n  start_date: '2026-01-01'\n  tasks:\n    - id: a\n      bash: {{command: echo two}}\n    - id: b\n      depends_on: [a]\n      bash: {{command: echo three}}\n"),
        2 => format!("{head}  tasks:\n    - id: a\n      bash: {{command: echo four}}\n      unknown_key: 1\n"),
        3 => format!("{head}  tasks:\n    - id: a\n      depends_on: [nope]\n      bash: {{command: echo five}}\n"),
        _ => format!("{head}  tasks: [\n"),
    }
}

/// Workspaces `a`, `a__b` (jobs of `a` named `b__…` clash with it on DAG ids) and `c`; the
/// folder `d` has jobs but no workspace file.
const FOLDERS: &[&str] = &["a", "a__b", "c", "d"];
const JOBS: &[&str] = &["b__x", "x", "y", "z"];

/// One commit's change to a job file: (folder, job, `None` to delete or the version to write).
type Step = (usize, usize, Option<u8>);

fn step() -> impl Strategy<Value = Step> {
    (
        0..FOLDERS.len(),
        0..JOBS.len(),
        prop_oneof![3 => (0u8..5).prop_map(Some), 1 => Just(None)],
    )
}

fn path(folder: usize, job: usize) -> String {
    format!("workspaces/{}/jobs/{}.yaml", FOLDERS[folder], JOBS[job])
}

fn start() -> Snapshot {
    let mut s = Snapshot::new(Some("r0".into()));
    for ws in &FOLDERS[..3] {
        s.insert_file(format!("workspaces/{ws}/workspace.yaml"), workspace(ws));
    }
    s.insert_file(path(0, 1), job("x", 0));
    s.insert_file(path(1, 1), job("x", 1));
    s
}

/// What a validation decided, in a form two validations can be compared by.
fn outcome(
    repo: &Repo,
    diagnostics: &[Diagnostic],
) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let jobs = repo
        .workspaces
        .iter()
        .map(|(name, ws)| {
            let jobs = ws
                .jobs
                .values()
                .map(|j| format!("{} {} {:?}", j.path, j.dag_id, j.doc.spec.schedule))
                .collect();
            (name.to_string(), jobs)
        })
        .collect();
    (jobs, diagnostics.iter().map(|d| d.to_string()).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Commit after commit, validating from the previous commit gives what validating each
    /// commit whole gives: the same accepted jobs, the same diagnostics.
    #[test]
    fn from_the_previous_commit_is_the_same_as_whole(
        commits in proptest::collection::vec(proptest::collection::vec(step(), 1..4), 1..12)
    ) {
        let mut cache = Cache::default();
        let first = revalidate(Input::Whole(start()), &mut cache);
        prop_assert!(first.touched.is_none());
        let mut repo = first.repo;
        for (n, steps) in commits.iter().enumerate() {
            let since = repo.snapshot.revision.clone().unwrap();
            let mut paths = Vec::new();
            for &(folder, j, version) in steps {
                let p = path(folder, j);
                match version {
                    Some(v) => repo.snapshot.insert_file(p.clone(), job(JOBS[j], v)),
                    None => {
                        repo.snapshot.files.remove(&p);
                    }
                }
                paths.push(p);
            }
            repo.snapshot.revision = Some(format!("r{}", n + 1));
            let expected = crate::validate::validate_whole(repo.snapshot.clone(), &mut Cache::default());
            let next = revalidate(Input::Next { repo, since, paths: paths.clone() }, &mut cache);
            prop_assert!(next.touched.is_some(), "a commit of job files only is validated from the previous one");
            prop_assert!(next.checked <= paths.len());
            prop_assert_eq!(outcome(&next.repo, &next.diagnostics), outcome(&expected.0, &expected.1));
            prop_assert_eq!(next.is_valid(), !expected.1.iter().any(Diagnostic::is_error));
            repo = next.repo;
        }
    }
}

#[test]
fn a_clash_moves_to_the_next_job_file_when_the_first_goes() {
    // `workspaces/a/jobs/b__x.yaml` and `workspaces/a__b/jobs/x.yaml` are both DAG `a__b__x`;
    // the first in path order is accepted.
    let mut s = start();
    s.insert_file(path(0, 0), job("b__x", 0));
    let mut cache = Cache::default();
    let whole = revalidate(Input::Whole(s), &mut cache);
    assert!(!whole.is_valid());
    assert_eq!(whole.repo.workspaces["a"].jobs.len(), 2);
    assert_eq!(whole.repo.workspaces["a__b"].jobs.len(), 0);
    let mut repo = whole.repo;
    repo.snapshot.files.remove(&path(0, 0));
    repo.snapshot.revision = Some("r1".into());
    let next = revalidate(
        Input::Next {
            repo,
            since: "r0".into(),
            paths: vec![path(0, 0)],
        },
        &mut cache,
    );
    assert!(next.is_valid(), "{:?}", next.diagnostics);
    assert_eq!(next.checked, 0, "a deleted file is not parsed");
    assert_eq!(
        next.touched.as_deref(),
        Some(&[path(0, 0), path(1, 1)][..]),
        "the job that won the clash is touched too"
    );
    assert!(next.repo.workspaces["a__b"].jobs.contains_key("x"));
}

#[test]
fn any_other_change_or_an_unknown_base_validates_whole() {
    let mut cache = Cache::default();
    let mut repo = revalidate(Input::Whole(start()), &mut cache).repo;
    let changes = [
        (true, "workspaces/a/workspace.yaml"),
        (true, "olo.yaml"),
        (true, "workspaces/a/jobs/x.yml"),
        (true, "workspaces/a/jobs/deeper/x.yaml"),
        (false, "workspaces/a/jobs/x.yaml"),
    ];
    for (n, (known_base, changed)) in changes.into_iter().enumerate() {
        let since = match known_base {
            true => repo.snapshot.revision.clone().unwrap(),
            false => "not the last commit validated".into(),
        };
        repo.snapshot.revision = Some(format!("r{}", n + 1));
        let next = revalidate(
            Input::Next {
                repo,
                since,
                paths: vec![changed.into()],
            },
            &mut cache,
        );
        assert!(
            next.touched.is_none(),
            "{changed} (known base: {known_base})"
        );
        repo = next.repo;
    }
    // And a job file alone, from the last commit, is not.
    let since = repo.snapshot.revision.clone().unwrap();
    let next = revalidate(
        Input::Next {
            repo,
            since,
            paths: vec![path(2, 2)],
        },
        &mut cache,
    );
    assert_eq!(next.touched.as_deref(), Some(&[path(2, 2)][..]));
}

#[test]
fn job_paths_are_those_classify_reads_as_jobs() {
    let mut s = Snapshot::new(None);
    for p in [
        "olo.yaml",
        "workspaces/a/workspace.yaml",
        "workspaces/a/jobs/x.yaml",
        "workspaces/a/jobs/x.yml",
        "workspaces/a/jobs/deeper/x.yaml",
        "workspaces/a/jobs/x.sql",
        "workspaces/a/x.yaml",
        "workspaces/a/jobs",
        "workspaces/jobs/x.yaml",
        "workspaces/a/jobs/.yaml",
    ] {
        s.insert_file(p, "");
    }
    let (files, _) = load::classify(&s);
    let jobs: Vec<(String, Role)> = files
        .into_iter()
        .filter(|(_, r)| matches!(r, Role::Job { .. }))
        .collect();
    let ours: Vec<(String, Role)> = s
        .files
        .keys()
        .filter_map(|p| job_role(p).map(|r| (p.clone(), r)))
        .collect();
    assert_eq!(ours, jobs);
}
