//! End to end: the `olo` binary reconciling real git repositories into a DAG folder and a
//! SQLite state store. Commits by different authors, an invalid commit between two valid ones,
//! a revert, a deleted job with and without pruning, a rendered branch, a remote (file://)
//! source, and a kill -9 in the middle of an apply followed by a restart.

use std::path::Path;
use std::process::Command;

use crate::common::{job, ok, Olo, Repo, Running, Step, WORKSPACE};

#[test]
fn commits_invalid_commit_revert_and_audit() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = repo.commit("add one", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string());
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), vec!["w__one.py"]);

    // A second author adds a job.
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c2 = repo.commit("add two", ("Grace", "grace@example.com"));
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), vec!["w__one.py", "w__two.py"]);
    let two_before = std::fs::read(olo.dags().join("w__two.py")).unwrap();

    // An invalid commit: refused, live state untouched, branch Stalled.
    repo.write(
        "workspaces/w/jobs/two.yaml",
        &job("two", "echo 2").replace("tasks:", "taskz:"),
    );
    let c3 = repo.commit("break two", ("Mallory", "mallory@example.com"));
    let out = olo.apply();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workspaces/w/jobs/two.yaml:"));
    assert_eq!(
        std::fs::read(olo.dags().join("w__two.py")).unwrap(),
        two_before
    );
    let status = olo.status();
    assert!(status.starts_with("main: Stalled"), "{status}");
    assert!(
        status.contains(&format!("last attempted: {c3}")),
        "{status}"
    );
    assert!(
        status.contains(&format!("last applied:   {c2}")),
        "{status}"
    );
    // Stalled exits 1, prints every diagnostic as `olo validate` does, and names its store.
    let out = olo.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{status}");
    assert!(
        status.contains("\n  workspaces/w/jobs/two.yaml:") && status.contains(": error: "),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "  state store:    sqlite:{}",
            olo.state.path().join("state.db").display()
        )),
        "{status}"
    );

    // The revert recovers.
    repo.git(
        &["revert", "--no-edit", "HEAD"],
        ("Grace", "grace@example.com"),
    );
    let c4 = repo.git(&["rev-parse", "HEAD"], ("Grace", "grace@example.com"));
    ok(&olo.apply());
    assert!(olo.status().starts_with("main: Ready"));
    ok(&olo.run(&["status"]));
    assert_eq!(
        std::fs::read(olo.dags().join("w__two.py")).unwrap().len(),
        two_before.len()
    );

    // The audit trail, newest first: who did what at which commit.
    let audit = olo.audit();
    let rows: Vec<(String, String, String)> = audit
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["revision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "apply".into(),
                "Grace <grace@example.com>".into(),
                c4.clone()
            ),
            (
                "invalid_commit".into(),
                "Mallory <mallory@example.com>".into(),
                c3.clone()
            ),
            (
                "apply".into(),
                "Grace <grace@example.com>".into(),
                c2.clone()
            ),
            ("apply".into(), "Ada <ada@example.com>".into(), c1),
        ]
    );
    assert_eq!(
        audit[0]["details"]["committer"],
        "Merge Bot <bot@example.com>"
    );
    assert_eq!(audit[0]["details"]["signed"], false);
    // The invalid commit never went live, so the revert had nothing left to change.
    assert_eq!(audit[0]["details"]["plan"]["update"], 0);
    assert_eq!(audit[2]["details"]["plan"]["create"], 1);
    // `olo audit` says the same in sentences, one entry a line.
    let text = olo.run(&["audit"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].ends_with(&format!(
            "Mallory <mallory@example.com>  refused commit {} “break two” on main: {}; the live state stayed",
            &c3[..12],
            olo_reconciler::text::count(audit[1]["details"]["errors"].as_u64().unwrap() as usize, "error")
        )),
        "{text}"
    );
    assert!(
        lines[2].contains(&format!(
            "Grace <grace@example.com>  applied {} “add two” to main: 1 created",
            &c2[..12]
        )),
        "{text}"
    );

    // Applying the same commit again changes nothing and records nothing new.
    ok(&olo.apply());
    assert_eq!(olo.audit().len(), 4);
}

#[test]
fn a_dag_file_changed_or_removed_by_hand_is_put_back_and_audited_as_drift() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let sha = repo.commit("add one and two", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string());
    ok(&olo.apply());
    let one = std::fs::read(olo.dags().join("w__one.py")).unwrap();
    let two = std::fs::read(olo.dags().join("w__two.py")).unwrap();

    std::fs::write(
        olo.dags().join("w__one.py"),
        "# edited on the Airflow host\n",
    )
    .unwrap();
    std::fs::remove_file(olo.dags().join("w__two.py")).unwrap();
    // The same commit: nothing changed in Git, so every change the apply makes is drift.
    ok(&olo.apply());
    assert_eq!(std::fs::read(olo.dags().join("w__one.py")).unwrap(), one);
    assert_eq!(std::fs::read(olo.dags().join("w__two.py")).unwrap(), two);

    let audit = olo.audit();
    assert_eq!(audit[0]["action"], "drift_repaired", "{audit:#?}");
    assert_eq!(audit[0]["actor"], "olo");
    assert_eq!(audit[0]["revision"], sha.as_str());
    assert_eq!(audit[0]["details"]["count"], 2);
    assert_eq!(
        audit[0]["details"]["resources"],
        serde_json::json!(["dags/w__one.py", "dags/w__two.py"])
    );
    assert_eq!(audit[1]["details"]["plan"]["drift"], 2, "{audit:#?}");

    // Nothing drifted since: another apply records nothing new.
    let entries = audit.len();
    ok(&olo.apply());
    assert_eq!(olo.audit().len(), entries);
}

#[test]
fn a_deleted_job_is_pruned_only_when_pruning_is_on() {
    for prune in [true, false] {
        let repo = Repo::new();
        repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
        repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
        repo.commit("two jobs", ("Ada", "ada@example.com"));
        let olo = Olo::new(&repo.path().display().to_string())
            .set("OLO_APPLY__PRUNE", &prune.to_string());
        ok(&olo.apply());
        // A DAG file olo did not write is never touched.
        std::fs::write(olo.dags().join("hand_made.py"), "# not olo's\n").unwrap();
        std::fs::remove_file(repo.path().join("workspaces/w/jobs/two.yaml")).unwrap();
        repo.commit("drop two", ("Ada", "ada@example.com"));

        let plan = olo.run(&["plan", &repo.path().display().to_string()]);
        let text = String::from_utf8_lossy(&plan.stdout);
        if prune {
            assert_eq!(plan.status.code(), Some(2), "{text}");
            assert!(text.contains("- delete dags/w__two.py"), "{text}");
        } else {
            assert_eq!(plan.status.code(), Some(0), "{text}");
            assert!(
                text.contains(
                    "= keep   dags/w__two.py  (no longer in the repository; pruning is off)"
                ),
                "{text}"
            );
        }
        ok(&olo.apply());
        let want: Vec<&str> = if prune {
            vec!["hand_made.py", "w__one.py"]
        } else {
            vec!["hand_made.py", "w__one.py", "w__two.py"]
        };
        assert_eq!(olo.dag_files(), want, "prune = {prune}");
    }
}

#[test]
fn plan_exit_codes_and_formats() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string());
    let path = repo.path().display().to_string();

    let before = olo.run(&["plan", &path, "--format", "json"]);
    assert_eq!(before.status.code(), Some(2));
    let plan: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    let names: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "iceberg/namespaces.json",
            // The embedded lakehouse: the workspace's namespaces in the SQL catalog and its
            // warehouse folder.
            "namespace/lake/w",
            "namespace/lake/w.raw",
            "warehouse/w",
            "trino/catalog/lake.properties",
            "trino/rules.json",
            "dags/.airflowignore",
            "dags/w__one.py"
        ]
    );

    ok(&olo.apply());
    let after = olo.run(&["plan", &path]);
    assert_eq!(after.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&after.stdout).contains("No changes."));

    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo changed"));
    let md = olo.run(&["plan", &path, "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(2));
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(text.contains("| ~ | `dags/w__one.py` | update |"), "{text}");
    assert!(
        text.contains("-        bash_command='echo 1',\n+        bash_command='echo changed',"),
        "{text}"
    );

    repo.write("workspaces/w/jobs/one.yaml", "kind: [");
    assert_eq!(olo.run(&["plan", &path]).status.code(), Some(1));
}

#[test]
fn a_rendered_branch_gets_one_commit_per_apply() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = repo.commit("one", ("Ada", "ada@example.com"));
    let rendered = tempfile::tempdir().unwrap();
    let bare = rendered.path().join("rendered.git");
    let olo = Olo::new(&repo.path().display().to_string())
        .set("OLO_APPLY__SINK", "branch")
        .set("OLO_APPLY__RENDERED_REPO", &bare.display().to_string());
    ok(&olo.apply());
    ok(&olo.apply());
    let log = Command::new("git")
        .args([
            "--git-dir",
            &bare.display().to_string(),
            "log",
            "--format=%s",
            "olo/rendered",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout),
        format!("olo: apply {c1}\n")
    );
    let files = Command::new("git")
        .args([
            "--git-dir",
            &bare.display().to_string(),
            "ls-tree",
            "-r",
            "--name-only",
            "olo/rendered",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&files.stdout).contains("dags/w__one.py\n"));
    assert!(!olo.dags().exists(), "the folder sink is not used");
}

#[test]
fn a_remote_repository_is_fetched_over_file_urls() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", ("Ada", "ada@example.com"));
    let url = format!("file://{}", repo.path().display());
    let olo = Olo::new("unused")
        .set("OLO_SOURCE__URL", &url)
        .set("OLO_SOURCE__BRANCH", "main");
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), vec!["w__one.py"]);
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    repo.commit("two", ("Ada", "ada@example.com"));
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), vec!["w__one.py", "w__two.py"]);
}

#[test]
fn kill_9_during_an_apply_then_a_restart_converges() {
    // Big enough that the apply (an fsync per file) is still running when it is killed.
    let repo = Repo::new();
    let opts = olo_bench::SynthOptions {
        workspaces: 4,
        jobs_per_workspace: 500,
        seed: 9,
        bash_only: true,
    };
    olo_bench::write_files(repo.path(), &olo_bench::generate(&opts)).unwrap();
    let sha = repo.commit("two thousand jobs", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string());

    let mut child = Running(olo.command(&["apply"]).spawn().unwrap());
    let dags = olo.dags();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let count = |p: &Path| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
    while count(&dags) < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "apply never started writing"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "apply finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let written_before = count(&dags);
    assert!(
        written_before < 2001,
        "the kill came too late to interrupt the apply ({written_before} files)"
    );
    assert!(
        olo.status().starts_with("main: Reconciling"),
        "{}",
        olo.status()
    );

    // Restart: the same commit is applied to the end, nothing is lost, nothing recorded twice.
    ok(&olo.apply());
    assert_eq!(olo.dag_files().len(), 2000);
    let leftovers: Vec<_> = std::fs::read_dir(&dags)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".olo-tmp"))
        .collect();
    assert!(
        leftovers.is_empty() || leftovers.len() == 1,
        "temporary files left: {leftovers:?}"
    );
    // One apply entry, and no `drift_repaired`: the files the killed apply had claimed but not
    // written yet are its unfinished work, not changes made by hand.
    let audit = olo.audit();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0]["action"], "apply");
    assert_eq!(audit[0]["revision"], sha);
    assert!(
        audit[0]["details"]["plan"].get("drift").is_none(),
        "{audit:#?}"
    );
    assert!(olo.status().starts_with("main: Ready"));
    let plan = olo.run(&["plan", &repo.path().display().to_string()]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

#[test]
fn a_burst_of_commits_collapses_into_few_reconciles_of_the_newest() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 0"));
    repo.commit("start", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string()).set("OLO_SOURCE__POLL_SECONDS", "1");
    let log = olo.state.path().join("serve.log");
    let mut serve = Running(
        olo.command(&["serve"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let wait_for = |sha: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !olo.status().contains(&format!("last applied:   {sha}")) {
            assert!(
                std::time::Instant::now() < deadline,
                "serve never applied {sha}:\n{}\n{}",
                olo.status(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(&repo.git(&["rev-parse", "HEAD"], ("Ada", "ada@example.com")));

    // Twenty commits in a quick burst.
    let script = "for i in $(seq 1 20); do printf 'apiVersion: olo/v1\\nkind: Job\\nmetadata: {name: one}\\nspec:\\n  tasks:\\n    - id: a\\n      bash: {command: \"echo %s\"}\\n' $i > workspaces/w/jobs/one.yaml; git commit -qam \"burst $i\"; done";
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(repo.path())
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let newest = repo.git(&["rev-parse", "HEAD"], ("Ada", "ada@example.com"));
    wait_for(&newest);

    // Beside a running serve, a one-shot reconcile of the same state refuses at once: serve
    // reconciles new commits itself (tests/e2e/cli.rs snapshots the whole message).
    let second = olo.run(&["apply"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("an olo serve follows main"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    serve.0.kill().unwrap();
    serve.0.wait().unwrap();

    let applies = olo
        .audit()
        .iter()
        .filter(|e| e["action"] == "apply")
        .count();
    assert!(
        applies < 1 + 20,
        "every commit of the burst was reconciled ({applies} applies)"
    );
    let dag = std::fs::read_to_string(olo.dags().join("w__one.py")).unwrap();
    assert!(
        dag.contains("bash_command='echo 20'"),
        "the newest commit is live"
    );
}

#[test]
fn the_daemons_incremental_reconciles_match_a_cold_plan() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    repo.write("workspaces/w/sql/q.sql", "select 1\n");
    repo.write(
        "workspaces/w/jobs/three.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: three}\nspec:\n  tasks:\n    - id: q\n      sql: {file: sql/q.sql}\n",
    );
    // A second workspace whose jobs have no task files.
    // Workspace `v` with the given namespaces.
    fn v_workspace(namespaces: &str) -> String {
        WORKSPACE
            .replace("name: w", "name: v")
            .replace("catalog: lake", "catalog: lake_v")
            .replace("s3://lake-bucket/w", "s3://lake-bucket/v")
            .replace("namespaces: [raw]", &format!("namespaces: [{namespaces}]"))
    }
    repo.write("workspaces/v/workspace.yaml", &v_workspace("raw"));
    repo.write("workspaces/v/jobs/plain.yaml", &job("plain", "echo v"));
    // Jobs whose task files are rendered beside the DAGs (olo_assets).
    repo.write("workspaces/w/spark/app.py", "print(1)\n");
    repo.write("workspaces/w/spark/app2.py", "print('two')\n");
    repo.write("workspaces/w/dbt/dbt_project.yml", "name: p\n");
    repo.write("workspaces/w/dbt/models/m.sql", "select 1\n");
    repo.write(
        "workspaces/w/jobs/five.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: five}\nspec:\n  tasks:\n    - id: s\n      spark: {application: spark/app.py}\n    - id: d\n      dbt: {select: m}\n",
    );
    repo.commit("start", ("Ada", "ada@example.com"));
    let path = repo.path().display().to_string();
    let olo = Olo::new(&path).set("OLO_SOURCE__POLL_SECONDS", "1");
    let log = olo.state.path().join("serve.log");
    let mut serve = Running(
        olo.command(&["serve"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let settle = |sha: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let s = olo.status();
            if s.contains(&format!("last attempted: {sha}")) && !s.starts_with("main: Reconciling")
            {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve never reconciled {sha}:\n{s}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let cold_plan_is_empty = |what: &str| {
        let plan = olo.run(&["plan", &path]);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "after {what}, a cold plan still finds changes:\n{}",
            String::from_utf8_lossy(&plan.stdout)
        );
    };
    let head = |r: &Repo| r.git(&["rev-parse", "HEAD"], ("Ada", "ada@example.com"));
    settle(&head(&repo));
    cold_plan_is_empty("the first reconcile");

    let steps: Vec<(&str, Step)> = vec![
        (
            "changing a job",
            Box::new(|r: &Repo| r.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1b"))),
        ),
        (
            "adding a job",
            Box::new(|r: &Repo| r.write("workspaces/w/jobs/four.yaml", &job("four", "echo 4"))),
        ),
        (
            "deleting a job",
            Box::new(|r: &Repo| {
                std::fs::remove_file(r.path().join("workspaces/w/jobs/two.yaml")).unwrap()
            }),
        ),
        (
            "changing a referenced SQL file",
            Box::new(|r: &Repo| r.write("workspaces/w/sql/q.sql", "select 2\n")),
        ),
        (
            "changing a Spark application (its asset only)",
            Box::new(|r: &Repo| r.write("workspaces/w/spark/app.py", "print(2)\n")),
        ),
        (
            "changing a dbt model (its asset only)",
            Box::new(|r: &Repo| r.write("workspaces/w/dbt/models/m.sql", "select 2\n")),
        ),
        (
            "declaring another namespace (Iceberg and Trino files)",
            Box::new(|r: &Repo| {
                r.write(
                    "workspaces/w/workspace.yaml",
                    &WORKSPACE.replace("namespaces: [raw]", "namespaces: [raw, gold]"),
                )
            }),
        ),
        (
            "declaring a namespace where no job has task files (Iceberg and Trino files only)",
            Box::new(|r: &Repo| {
                r.write("workspaces/v/workspace.yaml", &v_workspace("raw, silver"))
            }),
        ),
        (
            "changing workspace defaults (every DAG)",
            Box::new(|r: &Repo| {
                r.write(
                    "workspaces/w/workspace.yaml",
                    &format!("{WORKSPACE}  defaults: {{retries: 7}}\n"),
                )
            }),
        ),
        (
            "an invalid commit",
            Box::new(|r: &Repo| {
                r.write(
                    "workspaces/w/jobs/one.yaml",
                    "apiVersion: olo/v1\nkind: Job\n",
                )
            }),
        ),
        (
            "the fix",
            Box::new(|r: &Repo| r.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1c"))),
        ),
        (
            // The next commit changes only a job file, yet the shared files (Iceberg and Trino)
            // must follow this commit's workspace change: the last *valid* commit is the base.
            "an invalid commit that also declares a namespace",
            Box::new(|r: &Repo| {
                r.write(
                    "workspaces/v/workspace.yaml",
                    &v_workspace("raw, silver, bronze"),
                );
                r.write(
                    "workspaces/w/jobs/one.yaml",
                    "apiVersion: olo/v1\nkind: Job\n",
                )
            }),
        ),
        (
            "the fix of the job alone",
            Box::new(|r: &Repo| r.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1d"))),
        ),
        (
            "pointing a Spark task at another application (only a job file changes)",
            Box::new(|r: &Repo| {
                let five = std::fs::read_to_string(r.path().join("workspaces/w/jobs/five.yaml"))
                    .unwrap()
                    .replace("spark/app.py", "spark/app2.py");
                r.write("workspaces/w/jobs/five.yaml", &five)
            }),
        ),
    ];
    for (what, change) in steps {
        change(&repo);
        repo.commit(what, ("Ada", "ada@example.com"));
        let status = settle(&head(&repo));
        if what.starts_with("an invalid commit") {
            assert!(status.starts_with("main: Stalled"), "{status}");
        } else {
            assert!(status.starts_with("main: Ready"), "after {what}: {status}");
            cold_plan_is_empty(what);
        }
    }
    serve.0.kill().unwrap();
    serve.0.wait().unwrap();
    assert_eq!(
        olo.dag_files(),
        vec![
            "v__plain.py",
            "w__five.py",
            "w__four.py",
            "w__one.py",
            "w__three.py"
        ]
    );
    let asset =
        |rel: &str| std::fs::read_to_string(olo.dags().join("olo_assets/w").join(rel)).unwrap();
    assert_eq!(asset("spark/app2.py"), "print('two')\n");
    assert!(!olo.dags().join("olo_assets/w/spark/app.py").exists());
    assert_eq!(asset("dbt/models/m.sql"), "select 2\n");
    let three = std::fs::read_to_string(olo.dags().join("w__three.py")).unwrap();
    assert!(
        three.contains("sql='select 2\\n'") && three.contains("\"retries\": 7"),
        "{three}"
    );
}

#[test]
fn processes_opening_a_new_state_store_at_once_all_succeed() {
    for _ in 0..10 {
        let olo = Olo::new("unused");
        let children: Vec<_> = (0..6)
            .map(|_| {
                Running(
                    olo.command(&["status"])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        for mut c in children {
            let status = c.0.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(c.0.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "olo status failed on a new store: {err}");
        }
    }
}

/// `[log] format = "json"` in the settings file makes every log line one JSON object carrying
/// its spans (the reconcile's branch and commit); `OLO_LOG_FORMAT` wins over the file.
#[test]
fn the_settings_file_sets_the_log_format_and_olo_log_format_wins() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let sha = repo.commit("add one", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string());
    let settings = olo.state.path().join("olo.toml");
    std::fs::write(&settings, "[log]\nformat = \"json\"\n").unwrap();
    let config = settings.display().to_string();
    let apply = |format: Option<&str>| {
        let mut c = olo.command(&["apply", "--config", &config]);
        c.env_remove("OLO_LOG_FORMAT").env_remove("RUST_LOG");
        if let Some(f) = format {
            c.env("OLO_LOG_FORMAT", f);
        }
        let out = c.output().expect("olo runs");
        ok(&out);
        String::from_utf8(out.stderr).unwrap()
    };

    let json = apply(None);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ready = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Ready"))
        })
        .unwrap_or_else(|| panic!("no Ready line in {json}"));
    assert_eq!(ready["level"], "INFO", "{ready}");
    assert_eq!(ready["span"]["name"], "reconcile", "{ready}");
    assert_eq!(ready["span"]["branch"], "main", "{ready}");
    assert_eq!(ready["span"]["sha"], &sha[..12], "{ready}");

    let text = apply(Some("text"));
    assert!(text.contains("Ready"), "{text}");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()),
        "{text}"
    );
}
