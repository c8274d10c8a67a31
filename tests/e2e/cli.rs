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
        serde_json::from_str(include_str!("../../schema/json/job.schema.json")).unwrap();
    assert_eq!(printed, file);
}

// ---- `olo plan` and `olo apply`: exit codes, the configured source, a daemon beside them ----

/// `olo` with its state folder in `state` (and no other settings from the environment).
fn olo_in(args: &[&str], dir: &Path, state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_olo"))
        .args(args)
        .current_dir(dir)
        .env("OLO_STATE__DIR", state)
        .env("OLO_SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("OLO_CONFIG")
        .env_remove("OLO_SOURCE__URL")
        .env_remove("OLO_SOURCE__PATH")
        .output()
        .expect("olo runs")
}

/// The lines of `stderr` that say what failed (not the logs), with `paths` replaced by names.
fn errors(out: &Output, paths: &[(&Path, &str)]) -> String {
    let mut text: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(|l| format!("{l}\n"))
        .collect();
    for (path, name) in paths {
        text = text.replace(&path.display().to_string(), name);
    }
    text
}

/// A git repository whose one commit is valid (workspace `w`, job `j`).
fn valid_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(d.join("workspaces/w/jobs")).unwrap();
    std::fs::write(d.join("workspaces/w/workspace.yaml"), WORKSPACE).unwrap();
    std::fs::write(d.join("workspaces/w/jobs/j.yaml"), GOOD_JOB).unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "good"]);
    dir
}

#[test]
fn plan_errors_exit_1_because_2_means_changes_pending() {
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let missing_repo = olo_in(&["plan", "/definitely/not/here"], cwd.path(), state.path());
    assert_eq!(missing_repo.status.code(), Some(1));
    insta::assert_snapshot!("plan_missing_repository", errors(&missing_repo, &[]));
    let missing_config = olo_in(
        &["plan", "--config", "missing.toml"],
        cwd.path(),
        state.path(),
    );
    assert_eq!(missing_config.status.code(), Some(1));
    insta::assert_snapshot!("plan_missing_config", errors(&missing_config, &[]));
    let missing_apply = olo_in(
        &["apply", "--config", "missing.toml"],
        cwd.path(),
        state.path(),
    );
    assert_eq!(missing_apply.status.code(), Some(1));
}

/// The summary line counts in words: one workspace, not "1 workspaces".
#[test]
fn validate_summarises_with_singulars_and_plurals() {
    let repo = valid_repo();
    let state = tempfile::tempdir().unwrap();
    let out = olo_in(&["validate", "."], repo.path(), state.path());
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(".: valid (1 workspace, 1 job)"), "{stderr}");
}

/// Inside one's own config repository, `olo plan` plans the current folder as `olo validate`
/// checks it, and a first plan creates no state there (no `.olo` beside the config files).
#[test]
fn plan_in_a_config_repository_plans_it_and_writes_nothing_there() {
    let repo = valid_repo();
    let out = Command::new(env!("CARGO_BIN_EXE_olo"))
        .arg("plan")
        .current_dir(repo.path())
        .env("OLO_SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("OLO_CONFIG")
        .env_remove("OLO_STATE__DIR")
        .env_remove("OLO_SOURCE__URL")
        .env_remove("OLO_SOURCE__PATH")
        .output()
        .expect("olo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("+ create dags/w__j.py"), "{stdout}");
    assert!(
        !repo.path().join(".olo").exists(),
        "olo plan created state in the config repository"
    );
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "");
}

#[test]
fn plan_with_a_configured_url_plans_that_source() {
    let repo = valid_repo();
    // No examples-repo here: planning the default source path would fail.
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = cwd.path().join("olo.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nurl = \"file://{}\"\nbranch = \"main\"\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let out = olo_in(
        &["plan", "--config", "olo.toml", "--format", "json"],
        cwd.path(),
        state.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let head = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(plan["revision"], head.trim(), "the source's newest commit");
    let created: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "create" && c["name"].as_str().unwrap().ends_with(".py"))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(created.contains(&"dags/w__j.py"), "{created:?}");
}

#[test]
fn apply_takes_a_path_like_plan() {
    let repo = valid_repo();
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let path = repo.path().display().to_string();
    let out = olo_in(&["apply", &path], cwd.path(), state.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state.path().join("dags/w__j.py").is_file());
    // And the plan of the same path is now empty.
    let plan = olo_in(&["plan", &path], cwd.path(), state.path());
    assert_eq!(plan.status.code(), Some(0));
}

/// Waits for `child` to end, for at most `limit`; kills it and fails when it does not.
fn wait_for(mut child: std::process::Child, limit: std::time::Duration, what: &str) -> Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} still runs after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `olo serve` of the repository at `path` with its state in `state`, once it listens (idle:
/// it has reconciled the commit), and what it logged until then. `soft_files`: start it with
/// this soft limit of open files.
fn start_serve(
    cwd: &Path,
    state: &Path,
    path: &str,
    soft_files: Option<u64>,
) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_olo"));
    command
        .arg("serve")
        .current_dir(cwd)
        .env("OLO_STATE__DIR", state)
        .env("OLO_SOURCE__PATH", path)
        .env("OLO_SOURCE__POLL_SECONDS", "3600")
        .env("OLO_SERVER__LISTEN", "127.0.0.1:0")
        .env_remove("OLO_CONFIG")
        .env_remove("OLO_SOURCE__URL")
        .stderr(std::process::Stdio::piped());
    if let Some(soft) = soft_files {
        // SAFETY: between fork and exec only setrlimit, which is async-signal-safe, runs.
        unsafe {
            command.pre_exec(move || {
                use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
                let hard = getrlimit(Resource::Nofile).maximum;
                setrlimit(
                    Resource::Nofile,
                    Rlimit {
                        current: Some(soft),
                        maximum: hard,
                    },
                )
                .map_err(std::io::Error::from)
            });
        }
    }
    let mut serve = command.spawn().unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let line = lines.next().expect("olo serve ended").unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (serve, seen)
}

/// The soft and hard limits of open files of process `pid`.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

#[test]
fn serve_raises_its_soft_open_files_limit_to_the_hard_limit() {
    let repo = valid_repo();
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let path = repo.path().display().to_string();
    let (mut serve, seen) = start_serve(cwd.path(), state.path(), &path, Some(256));
    let (soft, hard) = open_files_limits(serve.id());
    let _ = serve.kill();
    let _ = serve.wait();
    assert_ne!(
        hard, "256",
        "the hard limit is the soft one: nothing to check"
    );
    assert_eq!(soft, hard, "{seen}");
}

#[test]
fn apply_beside_an_idle_serve_refuses_at_once() {
    let repo = valid_repo();
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let path = repo.path().display().to_string();
    let (mut serve, seen) = start_serve(cwd.path(), state.path(), &path, None);

    let apply = Command::new(env!("CARGO_BIN_EXE_olo"))
        .args(["apply", &path])
        .current_dir(cwd.path())
        .env("OLO_STATE__DIR", state.path())
        .env_remove("OLO_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_for(
        apply,
        std::time::Duration::from_secs(60),
        "olo apply beside olo serve",
    );
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(out.status.code(), Some(1), "{seen}");
    insta::assert_snapshot!(
        "apply_beside_serve",
        errors(&out, &[(state.path(), "[STATE]")])
    );
}

#[test]
fn one_apply_waits_for_another_without_a_daemon() {
    // A one-shot reconcile holding the branch lock ends: the second waits for it, then applies.
    let repo = valid_repo();
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let lock = state.path().join("reconcile-main.lock");
    let held = std::fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    let path = repo.path().display().to_string();
    let apply = Command::new(env!("CARGO_BIN_EXE_olo"))
        .args(["apply", &path])
        .current_dir(cwd.path())
        .env("OLO_STATE__DIR", state.path())
        .env_remove("OLO_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!state.path().join("dags/w__j.py").exists(), "it waited");
    held.unlock().unwrap();
    let out = wait_for(apply, std::time::Duration::from_secs(60), "olo apply");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state.path().join("dags/w__j.py").is_file());
}

/// `olo settings` prints what olo would run with (file, then environment) and refuses what
/// `olo serve` would refuse at start, naming the key and where it came from.
#[test]
fn settings_prints_the_merged_settings_and_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("olo.toml");
    std::fs::write(
        &file,
        "[source]\npoll_seconds = 45\n[server]\nlisten = \"0.0.0.0:9000\"\n",
    )
    .unwrap();
    let settings = |env: &[(&str, &str)], format: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_olo"));
        c.args([
            "settings",
            "--config",
            file.to_str().unwrap(),
            "--format",
            format,
        ])
        .current_dir(dir.path())
        .env_remove("OLO_CONFIG");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = settings(&[("OLO_APPLY__PRUNE", "false")], "text");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "poll_seconds = 45",
        "listen = \"0.0.0.0:9000\"",
        "prune = false",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    // What people read: every setting, as a settings file.
    insta::assert_snapshot!("settings_text", text);
    let out = settings(&[], "json");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["source"]["poll_seconds"], 45);

    let out = settings(&[("OLO_SOURCE__POLL_SECONDS", "thirty")], "text");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"thirty\"") && err.to_ascii_lowercase().contains("poll_seconds"),
        "{err}"
    );
    std::fs::write(&file, "[server]\nlisten = \"everywhere\"\n").unwrap();
    let out = settings(&[], "text");
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("settings_bad_listen", String::from_utf8_lossy(&out.stderr));
}
