//! `olo serve` as a process, driven over HTTP: start it, deliver signed webhooks, call the API.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Olo, Repo, Running};

pub const SECRET: &str = "test webhook secret";
pub const TOKEN: &str = "olo_test_token_for_writes";
pub const WHO: (&str, &str) = ("Ada", "ada@example.com");

/// A running `olo serve` and its address.
pub struct Daemon {
    pub olo: Olo,
    _process: Running,
    pub base: String,
    pub http: reqwest::Client,
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub fn sign(body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Daemon {
    /// Starts `olo serve` on a `file://` remote of `repo` (tracked branch main, polling once an
    /// hour: only webhooks and the API trigger), with a webhook secret and one API token.
    pub async fn start(repo: &Repo, extra: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_tokens(repo, extra, &[]).await
    }

    /// [`Daemon::start`] with more API tokens: `(name, token)`.
    pub async fn start_with_tokens(
        repo: &Repo,
        extra: &[(&str, &str)],
        tokens: &[(&str, &str)],
    ) -> Daemon {
        Daemon::start_with_settings(repo, extra, tokens, "").await
    }

    /// [`Daemon::start_with_tokens`] with more of the settings file (TOML, after the tokens).
    pub async fn start_with_settings(
        repo: &Repo,
        extra: &[(&str, &str)],
        tokens: &[(&str, &str)],
        more_toml: &str,
    ) -> Daemon {
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
        let mut toml = String::new();
        for (name, token) in [("ci-bot", TOKEN)].iter().chain(tokens) {
            toml.push_str(&format!(
                "[[api.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
                sha256_hex(token)
            ));
        }
        toml.push_str(more_toml);
        std::fs::write(&settings, toml).unwrap();
        olo = olo.set("OLO_CONFIG", &settings.display().to_string());
        Daemon::launch(olo).await
    }

    /// Stops this daemon and starts another on the same settings and state.
    #[allow(dead_code)]
    pub async fn restart(self) -> Daemon {
        let Daemon { olo, _process, .. } = self;
        drop(_process);
        Daemon::launch(olo).await
    }

    /// Stops this daemon (the process is killed and reaped); its settings and state stay.
    #[allow(dead_code)]
    pub fn stop(self) -> Olo {
        let Daemon { olo, _process, .. } = self;
        drop(_process);
        olo
    }

    /// Starts a daemon on the settings and state of one stopped with [`Daemon::stop`].
    #[allow(dead_code)]
    pub async fn resume(olo: Olo) -> Daemon {
        Daemon::launch(olo).await
    }

    async fn launch(olo: Olo) -> Daemon {
        let log = olo.state.path().join("serve.log");
        let _ = std::fs::remove_file(&log);
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
        d.wait_within("ready", Duration::from_secs(240), |d| async move {
            d.http
                .get(format!("{}/readyz", d.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        d
    }

    /// The daemon's process id (to signal it).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self._process.0.id()
    }

    /// Whether the process is still running (not exited, not a zombie).
    #[allow(dead_code)]
    pub fn running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .is_ok_and(|stat| !stat.contains(") Z "))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.olo.state.path().join("serve.log")).unwrap_or_default()
    }

    pub async fn wait_until<'a, F, Fut>(&'a self, what: &str, check: F)
    where
        F: Fn(&'a Daemon) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.wait_within(what, Duration::from_secs(60), check).await
    }

    pub async fn wait_within<'a, F, Fut>(&'a self, what: &str, within: Duration, check: F)
    where
        F: Fn(&'a Daemon) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        while !check(self).await {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; olo's log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn deliver(
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

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A page or any other text the server answers (no token).
    #[allow(dead_code)]
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn last_applied(&self) -> Option<String> {
        let (_, status) = self.get("/api/v1/status").await;
        status["sync"]["last_applied"].as_str().map(str::to_string)
    }
}

pub fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-webhooks")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// GitHub's real push payload, pointed at our branch and commit.
pub fn push_payload(git_ref: &str, after: &str) -> Vec<u8> {
    let mut p = fixture("push-payload.json");
    p["ref"] = json!(git_ref);
    p["after"] = json!(after);
    p["deleted"] = json!(false);
    p["created"] = json!(false);
    serde_json::to_vec(&p).unwrap()
}

pub fn assert_error_shape(body: &Value, code: &str) {
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
