//! `olo jobs`, `olo runs`, `olo lineage` and `olo sql` against a running `olo serve` (a real git
//! repository, SQLite state): the CLI reads what the API serves, as tables or JSON, and says what
//! to do when it cannot. `olo logs` and `olo runs` with real runs are in tests/airflow_e2e/.

use crate::common::daemon::{Daemon, TOKEN, WHO};
use crate::common::{job, Repo};
use serde_json::Value;

fn olo(d: &Daemon, args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_olo"));
    cmd.args(args)
        .args(["--server", &d.base])
        .env_remove("OLO_TOKEN");
    if let Some(token) = token {
        cmd.env("OLO_TOKEN", token);
    }
    let out = cmd.output().expect("olo runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_jobs_and_runs_and_shows_lineage_from_a_running_olo() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    repo.commit("two jobs", WHO);
    let d = Daemon::start(&repo, &[]).await;

    let (code, out, err) = olo(&d, &["jobs"], Some(TOKEN));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("JOB "), "{out}");
    assert!(lines[1].starts_with("w/one "), "{out}");
    assert!(lines[2].starts_with("w/two "), "{out}");
    assert_eq!(lines.len(), 3, "{out}");

    let (code, out, _) = olo(&d, &["jobs", "w", "--format", "json"], Some(TOKEN));
    assert_eq!(code, 0);
    let jobs: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);

    // No run yet.
    let (code, out, err) = olo(&d, &["runs", "--job", "w/one"], Some(TOKEN));
    assert_eq!((code, out.as_str()), (0, "no runs\n"), "{err}");

    let (code, out, err) = olo(&d, &["lineage", "w/one"], Some(TOKEN));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("w/one has reported no lineage yet"),
        "{out}"
    );

    // What goes wrong says what to do.
    let (code, _, err) = olo(&d, &["lineage", "w/nope"], Some(TOKEN));
    assert_eq!(code, 2);
    assert!(err.contains("no job `w/nope`"), "{err}");
    let (code, _, err) = olo(&d, &["runs", "--job", "one"], Some(TOKEN));
    assert_eq!(code, 2);
    assert!(err.contains("<workspace>/<job>"), "{err}");
    let (code, _, err) = olo(&d, &["sql", "SELECT 1"], None);
    assert_eq!(code, 2);
    assert!(err.contains("OLO_TOKEN"), "{err}");
    // No Trino configured: the runner says so.
    let (code, _, err) = olo(&d, &["sql", "SELECT 1"], Some(TOKEN));
    assert_eq!(code, 2);
    assert!(err.contains("Trino"), "{err}");
}

/// `~/.config/olo/cli.toml` (here named by OLO_CLI_CONFIG) stands in for --server and --token;
/// a flag still wins, and a token in a file others can read is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_config_file_gives_the_server_and_the_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one job", WHO);
    // Reads need a token here, so a listing proves the file's token was sent.
    let d = Daemon::start(&repo, &[("OLO_API__READ_REQUIRES_TOKEN", "true")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cli.toml");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(
        &config,
        format!(
            "server = \"{}\"\ntoken_file = \"{}\"\n",
            d.base,
            dir.path().join("token").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], config: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_olo"))
            .args(args)
            .env_remove("OLO_TOKEN")
            .env_remove("OLO_SERVER")
            .env("OLO_CLI_CONFIG", config)
            .output()
            .expect("olo runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let server_only = dir.path().join("server-only.toml");
    std::fs::write(&server_only, format!("server = \"{}\"\n", d.base)).unwrap();
    let (code, _, err) = run(&["jobs"], &server_only);
    assert_ne!(code, 0);
    assert!(err.contains("HTTP 401"), "{err}");
    let (code, out, err) = run(&["jobs"], &config);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().nth(1).unwrap_or("").starts_with("w/one "),
        "{out}"
    );
    // A flag wins over the file: a server nobody listens on.
    let (code, _, err) = run(&["jobs", "--server", "http://127.0.0.1:9"], &config);
    assert_ne!(code, 0);
    assert!(
        err.contains("could not reach olo at http://127.0.0.1:9"),
        "{err}"
    );
    // The token inline, in a file others can read: refused, with the fix.
    std::fs::write(
        &config,
        format!("server = \"{}\"\ntoken = \"{TOKEN}\"\n", d.base),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(&["jobs"], &config);
    assert_ne!(code, 0);
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, err) = run(&["jobs"], &config);
    assert_eq!(code, 0, "{err}");
    // OLO_CLI_CONFIG naming a file that is not there is an error, not a silent default.
    let (code, _, err) = run(&["jobs"], &dir.path().join("missing.toml"));
    assert_ne!(code, 0);
    assert!(err.contains("missing.toml"), "{err}");
}
