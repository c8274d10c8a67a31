//! olo's parse requests make changed and new DAGs live in an Airflow of its own that would look
//! again only once an hour.

use std::time::Duration;

use crate::airflow_dag;
use crate::common;
use crate::common::daemon::{push_payload, sign, Daemon, WHO};
use crate::common::{Olo, Repo};
use serde_json::Value;

/// An Airflow of this test's own (api-server and dag-processor, no scheduler), started through
/// scripts/airflow.sh on `dags`, whose DAG processor on its own would look for new files and
/// parse a known file again only once an hour, in alphabetical order (so a file's modification
/// time does not put it first either). Stopped when dropped.
struct HourlyAirflow {
    env: Vec<(&'static str, String)>,
    url: String,
    password: String,
}

impl HourlyAirflow {
    fn start(home: &std::path::Path, dags: &std::path::Path) -> HourlyAirflow {
        let env = vec![
            ("OLO_AIRFLOW_DIR", home.display().to_string()),
            ("OLO_AIRFLOW_PORT", "28180".to_string()),
            ("OLO_AIRFLOW_DAGS", dags.display().to_string()),
            ("OLO_AIRFLOW_REFRESH_INTERVAL", "3600".to_string()),
            ("OLO_AIRFLOW_MIN_FILE_PROCESS_INTERVAL", "3600".to_string()),
            (
                "OLO_AIRFLOW_COMPONENTS",
                "api-server dag-processor".to_string(),
            ),
            (
                "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE",
                "alphabetical".to_string(),
            ),
            // Airflow keeps the stored version of a DAG serialized less than this long ago (30 s by
            // default) even when a parse finds it changed; this test changes w__a within seconds.
            (
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL",
                "0".to_string(),
            ),
        ];
        let script = |arg: &str| {
            let out = std::process::Command::new("scripts/airflow.sh")
                .arg(arg)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("scripts/airflow.sh runs");
            assert!(
                out.status.success(),
                "scripts/airflow.sh {arg}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let mut airflow = HourlyAirflow {
            env: env.clone(),
            url: String::new(),
            password: String::new(),
        };
        // From here on, a failure stops it (Drop).
        let started = script("start");
        airflow.url = started.split_whitespace().next().unwrap().to_string();
        airflow.password = script("password");
        airflow
    }

    async fn dag(&self, dag_id: &str) -> Value {
        airflow_dag(&self.url, &self.password, dag_id).await
    }

    /// The task ids of a DAG as Airflow serialized it.
    async fn tasks(&self, dag_id: &str) -> Vec<String> {
        let tasks =
            common::airflow::get(&self.url, &self.password, &format!("dags/{dag_id}/tasks")).await;
        let mut ids: Vec<String> = tasks["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["task_id"].as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

impl Drop for HourlyAirflow {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scripts/airflow.sh")
            .arg("stop")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status();
    }
}

fn job_with_tasks(name: &str, tasks: &[&str]) -> String {
    let mut job =
        format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n");
    for task in tasks {
        job.push_str(&format!(
            "    - id: {task}\n      bash: {{command: 'echo {task}'}}\n"
        ));
    }
    job
}

/// Pushes `commit` through a signed webhook and waits until olo has applied it (Ready).
async fn push_and_wait_applied(d: &Daemon, delivery: &str, commit: &str) {
    let body = push_payload("refs/heads/main", commit);
    let (code, _) = d.deliver("push", delivery, &body, &sign(&body)).await;
    assert_eq!(code, 202);
    d.wait_within("the apply", Duration::from_secs(150), |d| {
        let commit = commit.to_string();
        async move {
            let (_, s) = d.get("/api/v1/status").await;
            assert_ne!(s["sync"]["state"], "Stalled", "{s}");
            s["sync"]["last_applied"] == commit.as_str() && s["sync"]["state"] == "Ready"
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reparse_changed_and_new_dags_are_live_while_airflow_would_wait_an_hour() {
    let home = tempfile::tempdir().unwrap();
    let dags = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/a.yaml", &job_with_tasks("a", &["one"]));
    let c1 = repo.commit("add job a", WHO);

    // Airflow's first look at its folder is the only one within the hour: olo's first apply
    // (without Airflow) writes w__a there before it starts. The daemon below is the same olo
    // later: it shares this apply's state store (a new store beside olo's files would be
    // refused).
    let store_dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", store_dir.path().join("state.db").display());
    let seed = Olo::new(&repo.path().display().to_string())
        .set("OLO_APPLY__DAGS_FOLDER", &dags.path().display().to_string())
        .set("OLO_STATE__DATABASE", &store);
    common::ok(&seed.apply());
    let airflow = {
        let (home, dags) = (home.path().to_owned(), dags.path().to_owned());
        tokio::task::spawn_blocking(move || HourlyAirflow::start(&home, &dags))
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while airflow.dag("w__a").await["dag_id"] != "w__a" {
        assert!(
            std::time::Instant::now() < deadline,
            "Airflow did not parse its folder when it started"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let d = Daemon::start(
        &repo,
        &[
            ("OLO_APPLY__DAGS_FOLDER", &dags.path().display().to_string()),
            ("OLO_STATE__DATABASE", &store),
            ("OLO_AIRFLOW__URL", &airflow.url),
            ("OLO_AIRFLOW__PASSWORD_ENV", "TEST_AIRFLOW_PASSWORD"),
            ("TEST_AIRFLOW_PASSWORD", &airflow.password),
            ("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "120"),
        ],
    )
    .await;
    d.wait_within("c1 applied", Duration::from_secs(150), |d| {
        let c1 = c1.clone();
        async move { d.last_applied().await.as_deref() == Some(c1.as_str()) }
    })
    .await;

    // A changed DAG (a new task) and a new one: both live, each only through olo's request (the
    // changed file's own; the new file found by the bundle refresh that request brings).
    repo.write(
        "workspaces/w/jobs/a.yaml",
        &job_with_tasks("a", &["one", "two"]),
    );
    repo.write("workspaces/w/jobs/b.yaml", &job_with_tasks("b", &["only"]));
    let c2 = repo.commit("change job a, add job b", WHO);
    push_and_wait_applied(&d, "reparse-1", &c2).await;
    assert_eq!(airflow.tasks("w__a").await, ["one", "two"], "{}", d.log());
    assert_eq!(airflow.tasks("w__b").await, ["only"]);

    // Only a new DAG: olo asks for another DAG of its own, and the new file is found.
    repo.write("workspaces/w/jobs/c.yaml", &job_with_tasks("c", &["only"]));
    let c3 = repo.commit("add job c", WHO);
    push_and_wait_applied(&d, "reparse-2", &c3).await;
    assert_eq!(airflow.tasks("w__c").await, ["only"]);

    // The same kind of change with `reparse = false`: this Airflow does not parse it, so the
    // apply times out (what passed above was olo's doing).
    let olo = d
        .stop()
        .set("OLO_AIRFLOW__REPARSE", "false")
        .set("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "20");
    let d = Daemon::resume(olo).await;
    repo.write(
        "workspaces/w/jobs/a.yaml",
        &job_with_tasks("a", &["one", "two", "three"]),
    );
    repo.write("workspaces/w/jobs/e.yaml", &job_with_tasks("e", &["only"]));
    let c4 = repo.commit("change job a, add job e, reparse off", WHO);
    let body = push_payload("refs/heads/main", &c4);
    let (code, _) = d.deliver("push", "reparse-3", &body, &sign(&body)).await;
    assert_eq!(code, 202);
    d.wait_within("the apply to fail", Duration::from_secs(120), |d| {
        let c4 = c4.clone();
        async move {
            let (_, s) = d.get("/api/v1/status").await;
            s["sync"]["last_attempted"] == c4.as_str() && s["sync"]["state"] == "Stalled"
        }
    })
    .await;
    let (_, rev) = d.get(&format!("/api/v1/revisions/{c4}")).await;
    let error = rev["plans"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Airflow did not parse these DAGs within 20 s: w__a, w__e"),
        "{rev}"
    );
    assert_eq!(airflow.tasks("w__a").await, ["one", "two"]);
    assert_eq!(airflow.dag("w__e").await["dag_id"], Value::Null);
}
