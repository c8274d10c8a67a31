//! End to end: `olo serve` as a process, driven over HTTP. Real git repositories (a `file://`
//! remote, so only webhooks and the API trigger reconciles), SQLite state; GitHub is a wiremock
//! server that records the calls olo makes.

mod common;

use std::time::{Duration, Instant};

use common::{job, Olo, Repo, Running};
use serde_json::{json, Value};

const SECRET: &str = "test webhook secret";
const TOKEN: &str = "olo_test_token_for_writes";
const WHO: (&str, &str) = ("Ada", "ada@example.com");

/// A running `olo serve` and its address.
struct Daemon {
    olo: Olo,
    _process: Running,
    base: String,
    http: reqwest::Client,
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

fn sign(body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Daemon {
    /// Starts `olo serve` on a `file://` remote of `repo` (tracked branch main, polling once an
    /// hour: only webhooks and the API trigger), with a webhook secret and one API token.
    async fn start(repo: &Repo, extra: &[(&str, &str)]) -> Daemon {
        let url = format!("file://{}", repo.path().display());
        let mut olo = Olo::new("unused")
            .set("OLO_SOURCE__URL", &url)
            .set("OLO_SOURCE__BRANCH", "main")
            .set("OLO_SOURCE__POLL_SECONDS", "3600")
            .set("OLO_GITHUB__WEBHOOK_SECRET_ENV", "TEST_WEBHOOK_SECRET")
            .set("TEST_WEBHOOK_SECRET", SECRET)
            .set("OLO_GITHUB__REPOSITORY", "Codertocat/Hello-World");
        for (k, v) in extra {
            olo = olo.set(k, v);
        }
        let settings = olo.state.path().join("olo.toml");
        std::fs::write(
            &settings,
            format!(
                "[[api.tokens]]\nname = \"ci-bot\"\nsha256 = \"{}\"\n",
                sha256_hex(TOKEN)
            ),
        )
        .unwrap();
        olo = olo.set("OLO_CONFIG", &settings.display().to_string());
        let log = olo.state.path().join("serve.log");
        let process = Running(
            olo.command(&["serve"])
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "olo serve did not start:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let d = Daemon {
            olo,
            _process: process,
            base,
            http: reqwest::Client::new(),
        };
        d.wait_until("ready", |d| async move {
            d.http
                .get(format!("{}/readyz", d.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.olo.state.path().join("serve.log")).unwrap_or_default()
    }

    async fn wait_until<'a, F, Fut>(&'a self, what: &str, check: F)
    where
        F: Fn(&'a Daemon) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check(self).await {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; olo's log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn deliver(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: &str,
    ) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/webhooks/github", self.base))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", signature)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn last_applied(&self) -> Option<String> {
        let (_, status) = self.get("/api/v1/status").await;
        status["sync"]["last_applied"].as_str().map(str::to_string)
    }
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-webhooks")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// GitHub's real push payload, pointed at our branch and commit.
fn push_payload(git_ref: &str, after: &str) -> Vec<u8> {
    let mut p = fixture("push-payload.json");
    p["ref"] = json!(git_ref);
    p["after"] = json!(after);
    p["deleted"] = json!(false);
    p["created"] = json!(false);
    serde_json::to_vec(&p).unwrap()
}

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("err_")),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_applies_and_forged_or_repeated_deliveries_change_nothing() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = repo.commit("add one", WHO);
    let d = Daemon::start(&repo, &[]).await;
    assert_eq!(d.last_applied().await.as_deref(), Some(c1.as_str()));

    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c2 = repo.commit("add two", ("Grace", "grace@example.com"));
    let body = push_payload("refs/heads/main", &c2);

    // Forged: a signature made with another secret, and none at all.
    let (status, err) = d.deliver("push", "forged-1", &body, "sha256=00ff").await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    let (status, _) = d.deliver("push", "forged-2", &body, "").await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(d.last_applied().await.as_deref(), Some(c1.as_str()));
    assert!(!d.olo.dags().join("w__two.py").exists());

    // Signed: 202 at once, then the commit is applied.
    let (status, ack) = d.deliver("push", "delivery-1", &body, &sign(&body)).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (202, Some("reconcile queued"))
    );
    d.wait_until("the push to be applied", |d| {
        let c2 = c2.clone();
        async move { d.last_applied().await.as_deref() == Some(c2.as_str()) }
    })
    .await;
    assert!(d.olo.dags().join("w__two.py").exists());
    let audit = d.olo.audit();
    assert_eq!(audit[0]["action"], "apply");
    assert_eq!(audit[0]["actor"], "Grace <grace@example.com>");
    assert_eq!(audit[0]["revision"], c2.as_str());

    // The same delivery again: acknowledged, ignored.
    let (status, ack) = d.deliver("push", "delivery-1", &body, &sign(&body)).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (200, Some("duplicate delivery, ignored"))
    );
    // A push to another branch, and a ping.
    let other = push_payload("refs/heads/feature", &c2);
    let (status, ack) = d.deliver("push", "delivery-2", &other, &sign(&other)).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (202, Some("not the tracked branch, ignored"))
    );
    let ping = serde_json::to_vec(&fixture("ping-payload.json")).unwrap();
    let (status, ack) = d.deliver("ping", "delivery-3", &ping, &sign(&ping)).await;
    assert_eq!((status, ack["result"].as_str()), (200, Some("pong")));
    // A signed body that is not a push payload.
    let junk = b"{\"ref\": 7}".to_vec();
    let (status, err) = d.deliver("push", "delivery-4", &junk, &sign(&junk)).await;
    assert_eq!(status, 400);
    assert_error_shape(&err, "bad_request");
    // Over GitHub's 25 MB: refused before it is read whole.
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    let (status, _) = d.deliver("push", "delivery-5", &huge, &sign(&huge)).await;
    assert_eq!(status, 413);

    let metrics = d
        .http
        .get(format!("{}/metrics", d.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "olo_webhook_deliveries_total{event=\"push\",result=\"queued\"} 1",
        "olo_webhook_deliveries_total{event=\"push\",result=\"duplicate\"} 1",
        "olo_webhook_deliveries_total{event=\"other\",result=\"bad_signature\"} 2",
        "olo_webhook_deliveries_total{event=\"push\",result=\"ignored\"} 1",
        "olo_reconciles_total{outcome=\"applied\"} 2",
    ] {
        assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_live_state_pages_lists_and_guards_writes() {
    let repo = Repo::new();
    for name in ["a", "b", "c"] {
        repo.write(
            &format!("workspaces/w/jobs/{name}.yaml"),
            &job(name, "echo"),
        );
    }
    let c1 = repo.commit("three jobs", WHO);
    let d = Daemon::start(&repo, &[]).await;

    let (status, body) = d.get("/api/v1/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["sync"]["state"], "Ready");
    assert_eq!(body["catalog_revision"], c1.as_str());

    // Pages of jobs, one at a time.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/workspaces/w/jobs?limit=1&cursor={c}"),
            None => "/api/v1/workspaces/w/jobs?limit=1".to_string(),
        };
        let (status, page) = d.get(&q).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        names.push(page["items"][0]["name"].as_str().unwrap().to_string());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c"]);
    let (_, job) = d.get("/api/v1/workspaces/w/jobs/b").await;
    assert_eq!(job["dag_id"], "w__b");
    assert_eq!(job["recent_runs"], json!([]));

    let (status, err) = d.get("/api/v1/workspaces/nope").await;
    assert_eq!(status, 404);
    assert_error_shape(&err, "not_found");
    let (status, err) = d.get("/api/v1/runs?limit=0").await;
    assert_eq!(status, 400);
    assert_error_shape(&err, "bad_request");
    let (status, err) = d.get("/api/v1/audit?cursor=garbage").await;
    assert_eq!(status, 400);
    assert_error_shape(&err, "bad_request");

    // Writes need a token; the token's name is the audit identity.
    let (status, err) = d.post("/api/v1/reconcile", None, json!({})).await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    let (status, _) = d
        .post("/api/v1/reconcile", Some("olo_wrong"), json!({}))
        .await;
    assert_eq!(status, 401);
    let (status, ack) = d.post("/api/v1/reconcile", Some(TOKEN), json!({})).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (202, Some("reconcile queued"))
    );
    let (_, audit) = d.get("/api/v1/audit?limit=1").await;
    assert_eq!(audit["items"][0]["action"], "reconcile_request");
    assert_eq!(audit["items"][0]["actor"], "ci-bot");
    assert!(audit["next_cursor"].is_string());

    // Runs need Airflow, which this server has not got.
    let (status, err) = d
        .post(
            "/api/v1/workspaces/w/jobs/a/runs",
            Some(TOKEN),
            json!({"conf": {}}),
        )
        .await;
    assert_eq!(status, 503);
    assert_error_shape(&err, "airflow_not_configured");
    let (status, _) = d
        .post("/api/v1/workspaces/w/jobs/a/runs", None, json!({}))
        .await;
    assert_eq!(status, 401);
    let (status, runs) = d.get("/api/v1/runs").await;
    assert_eq!((status, runs["items"].clone()), (200, json!([])));

    // The OpenAPI document is served and names every route.
    let (status, doc) = d.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/runs/{id}/tasks/{task}/logs/{try_number}"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_can_require_a_token() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(&repo, &[("OLO_API__READ_REQUIRES_TOKEN", "true")]).await;
    let (status, err) = d.get("/api/v1/workspaces").await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    let r = d
        .http
        .get(format!("{}/api/v1/workspaces", d.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(d.get("/healthz").await.0, 200);
}
