//! Three `olo serve` replicas on one real PostgreSQL store (a throwaway database on the server
//! scripts/test.sh starts), sharing the folders they apply to, as pods sharing a volume would:
//! exactly one leads; followers serve the API and take webhooks, which reach the leader through
//! the store; kill -9 the leader and a follower takes over within 15 s; a SIGTERM'd leader hands
//! over at once; no commit is applied twice and no webhook delivery is lost or done twice.
//!
//! And the outages a running daemon rides out without a restart: its PostgreSQL stopped for a
//! minute (a server of the test's own), and Airflow unreachable while a run is followed (a TCP
//! proxy between olo and the shared Airflow, cut and restored).

mod common;

use std::time::Duration;

use common::airflow::env;
use common::daemon::{push_payload, sign, Daemon, WHO};
use common::pg::PgDatabase;
use common::{job, Repo};
use serde_json::Value;

/// What every replica shares: the store, and the folders it applies to (as pods sharing a
/// volume would).
struct Replica {
    /// A PostgreSQL URL (`None`: the daemon's own SQLite store).
    database: Option<String>,
    dags: String,
    trino: String,
    iceberg: String,
}

impl Replica {
    fn new(db: &PgDatabase, shared: &std::path::Path, dags: &str) -> Replica {
        Replica::on(Some(&db.url), shared, dags)
    }

    fn on(database: Option<&str>, shared: &std::path::Path, dags: &str) -> Replica {
        let folder = |name: &str| shared.join(name).display().to_string();
        Replica {
            database: database.map(str::to_string),
            dags: dags.to_string(),
            trino: folder("trino"),
            iceberg: folder("iceberg"),
        }
    }

    fn settings(&self) -> Vec<(&str, &str)> {
        let mut settings = vec![
            ("OLO_APPLY__DAGS_FOLDER", self.dags.as_str()),
            ("OLO_APPLY__TRINO_FOLDER", self.trino.as_str()),
            ("OLO_APPLY__ICEBERG_FOLDER", self.iceberg.as_str()),
            // The embedded lakehouse is a file per replica; several replicas need a shared
            // catalog (REST, or the SQL catalog on PostgreSQL), which these tests do not run.
            ("OLO_LAKEHOUSE__CATALOG", "off"),
            ("OLO_LAKEHOUSE__WAREHOUSE", "off"),
        ];
        if let Some(database) = &self.database {
            settings.push(("OLO_STATE__DATABASE", database.as_str()));
        }
        settings
    }
}

/// The settings of a daemon that applies to the shared Airflow (at `url`) and follows its runs.
fn airflow_settings<'a>(url: &'a str, password: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("OLO_AIRFLOW__URL", url),
        ("OLO_AIRFLOW__PASSWORD_ENV", "TEST_AIRFLOW_PASSWORD"),
        ("TEST_AIRFLOW_PASSWORD", password),
        ("OLO_AIRFLOW__POLL_SECONDS", "1"),
        ("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "150"),
    ]
}

async fn status(d: &Daemon) -> Value {
    d.get("/api/v1/status").await.1
}

async fn role(d: &Daemon) -> String {
    status(d).await["role"].as_str().unwrap_or("").to_string()
}

/// The one replica that leads (asserting there is exactly one), by index.
async fn leader(ds: &[&Daemon]) -> usize {
    let mut leaders = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        match role(d).await.as_str() {
            "leader" => leaders.push(i),
            "follower" => {}
            other => panic!("replica {i} says its role is {other:?}"),
        }
    }
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    leaders[0]
}

/// The replica's `olo_leader` gauge and `olo_leadership_changes_total` counter.
async fn leadership_metrics(d: &Daemon) -> (String, String) {
    let text = d.get_text("/metrics").await;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_string()
    };
    (value("olo_leader"), value("olo_leadership_changes_total"))
}

async fn push(d: &Daemon, sha: &str, delivery: &str) -> (u16, Value) {
    let body = push_payload("refs/heads/main", sha);
    d.deliver("push", delivery, &body, &sign(&body)).await
}

async fn applied_everywhere(ds: &[&Daemon], sha: &str) {
    for d in ds {
        d.wait_until("the commit to be applied and served", |d| async move {
            let s = status(d).await;
            s["sync"]["last_applied"] == sha && s["catalog_revision"] == sha
        })
        .await;
    }
}

async fn applies(d: &Daemon) -> Vec<String> {
    let (_, audit) = d.get("/api/v1/audit?limit=500").await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "apply")
        .map(|e| e["revision"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_leader_failover_without_double_applies_or_lost_webhooks() {
    let db = PgDatabase::create();
    let shared = tempfile::tempdir().unwrap();
    let dags = shared.path().join("dags").display().to_string();
    let replica = Replica::new(&db, shared.path(), &dags);
    let settings = replica.settings();
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = repo.commit("one job", WHO);

    let a = Daemon::start(&repo, &settings).await;
    let b = Daemon::start(&repo, &settings).await;
    let c = Daemon::start(&repo, &settings).await;
    applied_everywhere(&[&a, &b, &c], &c1).await;
    let first = leader(&[&a, &b, &c]).await;
    assert_eq!(first, 0, "the first replica started leads");
    assert_eq!(b.get_text("/readyz").await, "ready (follower)\n");
    assert_eq!(a.get_text("/readyz").await, "ready (leader)\n");
    // The role in /metrics: summed over replicas, olo_leader is 1 while exactly one leads.
    assert_eq!(leadership_metrics(&a).await, ("1".into(), "1".into()));
    for d in [&b, &c] {
        assert_eq!(leadership_metrics(d).await, ("0".into(), "0".into()));
    }
    // And on the dashboard's overview, so a person sees which replica answered.
    for (d, role) in [(&a, "leader"), (&b, "follower")] {
        let page = d.get_text("/").await;
        assert!(page.contains(&format!(">replica: {role}</span>")), "{page}");
    }

    // A push delivered to a follower is applied by the leader and served by all.
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c2 = repo.commit("two jobs", WHO);
    assert_eq!(push(&b, &c2, "delivery-2").await.0, 202);
    applied_everywhere(&[&a, &b, &c], &c2).await;
    assert!(std::path::Path::new(&dags).join("w__two.py").exists());
    let (_, jobs) = c.get("/api/v1/workspaces/w/jobs").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 2, "{jobs}");
    // GitHub retrying the delivery at another replica: recognised, not done again.
    let (s, body) = push(&c, &c2, "delivery-2").await;
    assert_eq!(
        (s, body["result"].as_str()),
        (200, Some("duplicate delivery, ignored"))
    );
    // An OpenLineage event taken in by one follower shows on the leader's graph too.
    let event = serde_json::json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-27T04:30:00Z",
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0",
        "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11"},
        "job": {"namespace": "default", "name": "w__one.a"},
        "inputs": [],
        "outputs": [{"namespace": "w", "name": "raw.seen_by_b"}]
    });
    let (s, body) = b
        .post("/api/v1/lineage", Some(common::daemon::TOKEN), event)
        .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    a.wait_within(
        "the leader to show lineage a follower recorded",
        Duration::from_secs(15),
        |d| async move {
            let (_, g) = d.get("/api/v1/lineage?nodeId=job:w:one&depth=1").await;
            g.to_string().contains("dataset:w:raw.seen_by_b")
        },
    )
    .await;

    // kill -9 the leader; a push lands on a follower before anyone leads.
    let a_gone = a.stop();
    let killed_at = std::time::Instant::now();
    repo.write("workspaces/w/jobs/three.yaml", &job("three", "echo 3"));
    let c3 = repo.commit("three jobs", WHO);
    assert_eq!(push(&c, &c3, "delivery-3").await.0, 202);
    b.wait_within(
        "a follower to lead within 15 s of the leader's death",
        Duration::from_secs(15),
        |_| async {
            let (rb, rc) = (role(&b).await, role(&c).await);
            (rb == "leader") != (rc == "leader")
        },
    )
    .await;
    eprintln!(
        "a follower led {} ms after the leader was killed",
        killed_at.elapsed().as_millis()
    );
    applied_everywhere(&[&b, &c], &c3).await;
    let second = leader(&[&b, &c]).await;
    let (new_leader, follower) = if second == 0 { (&b, &c) } else { (&c, &b) };
    assert_eq!(
        leadership_metrics(new_leader).await,
        ("1".into(), "1".into())
    );
    assert_eq!(leadership_metrics(follower).await, ("0".into(), "0".into()));

    // A leader stopped with SIGTERM gives the lead up at once; the last replica takes over.
    let (going, staying) = if second == 0 { (b, c) } else { (c, b) };
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &going.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    staying
        .wait_within(
            "the last replica to lead after a graceful stop",
            Duration::from_secs(15),
            |d| async move { role(d).await == "leader" },
        )
        .await;
    assert!(
        going.log().contains("olo serve: stopping"),
        "{}",
        going.log()
    );
    repo.write("workspaces/w/jobs/four.yaml", &job("four", "echo 4"));
    let c4 = repo.commit("four jobs", WHO);
    assert_eq!(push(&staying, &c4, "delivery-4").await.0, 202);
    applied_everywhere(&[&staying], &c4).await;

    // Every commit applied exactly once, whoever led.
    let mut applied = applies(&staying).await;
    applied.sort();
    let mut expected = vec![c1, c2, c3, c4];
    expected.sort();
    assert_eq!(applied, expected, "each commit applied once");
    drop(a_gone);
    drop(going);
    drop(staying);
    db.drop_database();
}

/// olo's runs of `path` (a runs query) triggered by the trailer of commit `sha`.
async fn commit_runs(d: &Daemon, path: &str, sha: &str) -> usize {
    let (_, runs) = d.get(path).await;
    runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "commit" && r["revision"] == sha)
        .count()
}

/// The runs Airflow itself holds for a DAG.
async fn airflow_runs(airflow: &str, password: &str, dag_id: &str) -> Vec<Value> {
    let runs = common::airflow::get(airflow, password, &format!("dags/{dag_id}/dagRuns")).await;
    runs["dag_runs"].as_array().cloned().unwrap_or_default()
}

/// An `Olo-Run:` trailer is triggered once, even when the leader dies right after triggering it
/// and the new leader reconciles the same commit again: the trigger is looked up in the shared
/// runs table first. Real Airflow: the replicas apply to its DAG folder and wait for its parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_trailer_triggers_one_run_across_a_failover() {
    let airflow = env("OLO_TEST_AIRFLOW_URL");
    let dags = common::airflow::own_dag_folder("ha");
    let password = env("OLO_TEST_AIRFLOW_PASSWORD");
    let db = PgDatabase::create();
    let shared = tempfile::tempdir().unwrap();
    let replica = Replica::new(&db, shared.path(), &dags);
    let mut settings = replica.settings();
    settings.extend(airflow_settings(&airflow, &password));
    // Airflow's database outlives a test run: a fresh job name every time.
    let name = format!("ha_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dag_id = format!("w__{name}");
    let repo = Repo::new();
    repo.write(
        &format!("workspaces/w/jobs/{name}.yaml"),
        &job(&name, "echo 1"),
    );
    let c1 = repo.commit("a job", WHO);
    let a = Daemon::start(&repo, &settings).await;
    let b = Daemon::start(&repo, &settings).await;
    applied_everywhere(&[&a, &b], &c1).await;
    assert_eq!(leader(&[&a, &b]).await, 0);

    // A commit asking for a run, pushed to the follower.
    repo.write(
        &format!("workspaces/w/jobs/{name}.yaml"),
        &job(&name, "echo 2"),
    );
    let c2 = repo.commit(&format!("run it\n\nOlo-Run: w/{name}"), WHO);
    assert_eq!(push(&b, &c2, "delivery-trailer").await.0, 202);
    let runs_path = format!("/api/v1/runs?job={name}");
    b.wait_within(
        "the leader to apply the commit and trigger its trailer",
        Duration::from_secs(200),
        |d| {
            let (path, c2) = (runs_path.clone(), c2.clone());
            async move { commit_runs(d, &path, &c2).await == 1 }
        },
    )
    .await;

    // The leader dies; the follower leads and reconciles the same commit again.
    let a_gone = a.stop();
    b.wait_within(
        "the follower to lead",
        Duration::from_secs(15),
        |d| async move { role(d).await == "leader" },
    )
    .await;
    b.wait_within(
        "the new leader's reconcile of the same commit",
        Duration::from_secs(200),
        |d| async move {
            let log = d.log();
            log.split("this replica leads now")
                .nth(1)
                .is_some_and(|after| after.contains(": Ready ("))
        },
    )
    .await;
    assert_eq!(commit_runs(&b, &runs_path, &c2).await, 1, "{}", b.log());
    assert_eq!(
        airflow_runs(&airflow, &password, &dag_id).await.len(),
        1,
        "Airflow holds one run of {dag_id}"
    );
    drop(a_gone);
    drop(b);
    db.drop_database();
}

/// PostgreSQL stopped for a minute under a running `olo serve` (its own server, stopped with
/// `pg_ctl stop -m fast` and started again on the same port): the daemon stays up and says it
/// is not ready; a webhook and a run trigger that arrive meanwhile are refused with 503 and
/// reach nothing (GitHub redelivers, the caller retries); once PostgreSQL is back, without a
/// restart, the redelivered push is applied, its `Olo-Run:` trailer triggers one run, a run
/// triggered through the API is recorded, and nothing is applied or triggered twice. Real
/// Airflow: the daemon applies to its DAG folder and triggers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_a_minute_under_a_running_daemon() {
    let airflow = env("OLO_TEST_AIRFLOW_URL");
    let dags = common::airflow::own_dag_folder("pg_outage");
    let password = env("OLO_TEST_AIRFLOW_PASSWORD");
    let server = common::pg::PgServer::start();
    let shared = tempfile::tempdir().unwrap();
    let replica = Replica::on(Some(&server.url), shared.path(), &dags);
    let mut settings = replica.settings();
    settings.extend(airflow_settings(&airflow, &password));
    let name = format!("pg_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dag_id = format!("w__{name}");
    let repo = Repo::new();
    let file = format!("workspaces/w/jobs/{name}.yaml");
    repo.write(&file, &job(&name, "echo 1"));
    let c1 = repo.commit("a job", WHO);
    let d = Daemon::start(&repo, &settings).await;
    applied_everywhere(&[&d], &c1).await;

    // PostgreSQL stops.
    server.pause();
    let down_at = std::time::Instant::now();
    d.wait_within(
        "/readyz to say the store is unreachable",
        Duration::from_secs(30),
        |d| async move {
            let r = reqwest::get(format!("{}/readyz", d.base)).await;
            assert!(d.running(), "olo serve exited:\n{}", d.log());
            r.is_ok_and(|r| r.status() == 503)
        },
    )
    .await;
    assert_eq!(d.get_text("/healthz").await.trim(), "ok");
    // A push with a trailer, and a run asked for through the API, while it is down.
    repo.write(&file, &job(&name, "echo 2"));
    let c2 = repo.commit(&format!("run it\n\nOlo-Run: w/{name}"), WHO);
    let (s, body) = push(&d, &c2, "delivery-outage").await;
    assert_eq!(s, 503, "a delivery olo cannot record is refused: {body}");
    common::daemon::assert_error_shape(&body, "store_unavailable");
    let trigger = format!("/api/v1/workspaces/w/jobs/{name}/runs");
    let (s, body) = d
        .post(&trigger, Some(common::daemon::TOKEN), serde_json::json!({}))
        .await;
    assert_eq!(s, 503, "a run olo cannot record is not triggered: {body}");
    assert!(
        airflow_runs(&airflow, &password, &dag_id).await.is_empty(),
        "nothing reached Airflow while the store was down"
    );
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(down_at.elapsed())).await;
    assert!(
        d.running(),
        "olo serve exited while PostgreSQL was down:\n{}",
        d.log()
    );

    // PostgreSQL is back: GitHub redelivers, the caller retries.
    server.resume();
    d.wait_within(
        "/readyz to be ready again",
        Duration::from_secs(60),
        |d| async move {
            let r = reqwest::get(format!("{}/readyz", d.base)).await;
            r.is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    let (s, body) = push(&d, &c2, "delivery-outage").await;
    assert_eq!(s, 202, "the redelivery is new to olo: {body}");
    applied_everywhere(&[&d], &c2).await;
    let runs_path = format!("/api/v1/runs?job={name}");
    d.wait_within("the trailer's run", Duration::from_secs(200), |d| {
        let (path, c2) = (runs_path.clone(), c2.clone());
        async move { commit_runs(d, &path, &c2).await == 1 }
    })
    .await;
    let (s, body) = d
        .post(&trigger, Some(common::daemon::TOKEN), serde_json::json!({}))
        .await;
    assert_eq!(s, 201, "{body}");
    let (_, runs) = d.get(&runs_path).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 2, "{runs}");
    assert_eq!(
        airflow_runs(&airflow, &password, &dag_id).await.len(),
        2,
        "Airflow holds the trailer's run and the API's, once each"
    );
    assert_eq!(applies(&d).await, vec![c2, c1], "each commit applied once");
}

/// Airflow unreachable for 40 s while olo follows a run (a TCP proxy between olo and the shared
/// Airflow is cut; Airflow itself runs on and finishes the run): olo keeps the run's last known
/// state rather than calling it failed, says Airflow is unavailable (503) for a task log and a
/// new trigger, which leaves no run behind; a commit pushed meanwhile is written and stalls on
/// its parse check. Once Airflow is reachable again, without a restart or a new commit, olo's
/// retry finds the commit parsed (Ready), and olo catches up with the run's end and its task
/// instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airflow_unreachable_while_a_run_is_followed() {
    let airflow = env("OLO_TEST_AIRFLOW_URL");
    let dags = common::airflow::own_dag_folder("airflow_outage");
    let password = env("OLO_TEST_AIRFLOW_PASSWORD");
    let proxy = common::proxy::Proxy::start(airflow.trim_start_matches("http://")).await;
    let through = proxy.url();
    let shared = tempfile::tempdir().unwrap();
    let replica = Replica::on(None, shared.path(), &dags);
    let mut settings = replica.settings();
    // Airflow through the proxy; an apply waits 10 s for its parse.
    settings.extend(airflow_settings(&through, &password));
    settings.push(("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "10"));
    let name = format!("outage_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dag_id = format!("w__{name}");
    let repo = Repo::new();
    repo.write(
        &format!("workspaces/w/jobs/{name}.yaml"),
        &job(&name, "sleep 20 && echo done"),
    );
    let c1 = repo.commit("a slow job", WHO);
    let d = Daemon::start(&repo, &settings).await;
    applied_everywhere(&[&d], &c1).await;

    let trigger = format!("/api/v1/workspaces/w/jobs/{name}/runs");
    let (s, run) = d
        .post(&trigger, Some(common::daemon::TOKEN), serde_json::json!({}))
        .await;
    assert_eq!(s, 201, "{run}");
    let run_path = format!("/api/v1/runs/{}", run["id"]);
    d.wait_within(
        "olo to see the run running",
        Duration::from_secs(120),
        |d| {
            let path = run_path.clone();
            async move { d.get(&path).await.1["state"] == "running" }
        },
    )
    .await;

    proxy.cut();
    let cut_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (s, seen) = d.get(&run_path).await;
    assert_eq!(
        (s, seen["state"].as_str()),
        (200, Some("running")),
        "the last known state, not a failure: {seen}"
    );
    let (s, body) = d.get(&format!("{run_path}/tasks/a/logs/1")).await;
    assert_eq!(s, 503, "{body}");
    common::daemon::assert_error_shape(&body, "airflow_unavailable");
    let (s, body) = d
        .post(&trigger, Some(common::daemon::TOKEN), serde_json::json!({}))
        .await;
    assert_eq!(s, 503, "{body}");
    common::daemon::assert_error_shape(&body, "airflow_unavailable");
    let (_, runs) = d.get(&format!("/api/v1/runs?job={name}")).await;
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        1,
        "the refused trigger left no run: {runs}"
    );
    // A commit pushed meanwhile: its DAG file is written, but Airflow cannot be asked whether it
    // parsed it, so the branch stalls, saying so, and olo tries again with backoff.
    let file = format!("workspaces/w/jobs/{name}.yaml");
    repo.write(&file, &job(&name, "sleep 20 && echo changed"));
    let c2 = repo.commit("changed while Airflow is unreachable", WHO);
    assert_eq!(push(&d, &c2, "delivery-outage-c2").await.0, 202);
    d.wait_within(
        "the apply to stall on the unanswered parse check",
        Duration::from_secs(60),
        |d| async move {
            let s = status(d).await;
            s["sync"]["state"] == "Stalled"
                && s["sync"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Airflow did not answer"))
        },
    )
    .await;
    assert!(
        std::fs::read_to_string(std::path::Path::new(&dags).join(format!("{dag_id}.py")))
            .unwrap()
            .contains("echo changed")
    );
    // The run ends in Airflow meanwhile (it sleeps 20 s).
    tokio::time::sleep(Duration::from_secs(40).saturating_sub(cut_at.elapsed())).await;
    assert_eq!(d.get(&run_path).await.1["state"], "running");
    assert!(
        d.running(),
        "olo serve exited while Airflow was unreachable:\n{}",
        d.log()
    );

    proxy.restore();
    // No new commit, no request: the retry checks the parse again and the branch is Ready.
    d.wait_within(
        "the retry to find the commit parsed and the branch Ready",
        Duration::from_secs(150),
        |d| {
            let c2 = c2.clone();
            async move {
                let s = status(d).await;
                s["sync"]["state"] == "Ready" && s["sync"]["last_applied"] == c2
            }
        },
    )
    .await;
    d.wait_within(
        "olo to catch up with the run's end",
        Duration::from_secs(60),
        |d| {
            let path = run_path.clone();
            async move { d.get(&path).await.1["state"] == "success" }
        },
    )
    .await;
    let (_, tasks) = d.get(&format!("{run_path}/tasks")).await;
    let states: Vec<&str> = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["success"], "{tasks}");
    assert_eq!(airflow_runs(&airflow, &password, &dag_id).await.len(), 1);
}
