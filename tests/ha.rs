//! Three `olo serve` replicas on one real PostgreSQL store (a throwaway database on the server
//! scripts/test.sh starts), sharing the folders they apply to, as pods sharing a volume would:
//! exactly one leads; followers serve the API and take webhooks, which reach the leader through
//! the store; kill -9 the leader and a follower takes over within 15 s; a SIGTERM'd leader hands
//! over at once; no commit is applied twice and no webhook delivery is lost or done twice.

mod common;

use std::time::Duration;

use common::daemon::{push_payload, sign, Daemon, WHO};
use common::pg::PgDatabase;
use common::{job, Repo};
use serde_json::Value;

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
    let folder = |name: &str| shared.path().join(name).display().to_string();
    let (dags, trino, iceberg) = (folder("dags"), folder("trino"), folder("iceberg"));
    let settings = [
        ("OLO_STATE__DATABASE", db.url.as_str()),
        ("OLO_APPLY__DAGS_FOLDER", dags.as_str()),
        ("OLO_APPLY__TRINO_FOLDER", trino.as_str()),
        ("OLO_APPLY__ICEBERG_FOLDER", iceberg.as_str()),
        // The embedded lakehouse is a file per replica; several replicas need a shared
        // catalog (REST, or the SQL catalog on PostgreSQL), which this test does not run.
        ("OLO_LAKEHOUSE__CATALOG", "off"),
        ("OLO_LAKEHOUSE__WAREHOUSE", "off"),
    ];
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
