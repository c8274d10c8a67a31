//! A small W3C WebDriver client over reqwest, driving headless Chromium through chromedriver
//! (`OLO_TEST_CHROMEDRIVER`; scripts/chromium.sh installs it), and the checks every dashboard
//! page gets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Running;

pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Running,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let driver = std::env::var("OLO_TEST_CHROMEDRIVER").expect(
            "OLO_TEST_CHROMEDRIVER must name chromedriver (scripts/chromium.sh installs it and \
             prints its path); the dashboard is tested in a real browser",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Running(
            std::process::Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("could not start {driver}: {e}")),
        );
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1366,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"args": args},
                "goog:loggingPrefs": {"browser": "ALL"},
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not open a session: {r}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _driver: process,
            _profile: profile,
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(
            v["value"].get("error").is_none(),
            "WebDriver {path} failed: {v}"
        );
        v["value"].clone()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_string()
    }

    /// Waits for a navigation (a click on a link or a form's submit) to reach a URL that
    /// ends with `part`, and for that page to finish loading.
    pub async fn wait_for_url(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if url.ends_with(part) && self.js("return document.readyState").await == "complete" {
                return url;
            }
            assert!(Instant::now() < deadline, "still on {url}, expected {part}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn js(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    pub async fn text(&self) -> String {
        self.js("return document.body.innerText")
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn all(&self, css: &str) -> Vec<String> {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn click(&self, css: &str) {
        let found = self.all(css).await;
        let el = found
            .first()
            .unwrap_or_else(|| panic!("no element {css} on the page"));
        // As a person would: scrolled to the middle of the window, clear of the sticky top bar.
        self.post(
            "/execute/sync",
            json!({
                "script": "arguments[0].scrollIntoView({block: 'center'})",
                "args": [{ ELEMENT: el }],
            }),
        )
        .await;
        self.post(&format!("/element/{el}/click"), json!({})).await;
    }

    /// Types `text` into a form field, as a person would.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self
            .all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css} on the page"));
        self.post(&format!("/element/{el}/clear"), json!({})).await;
        self.post(&format!("/element/{el}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let el = self.all(css).await.into_iter().next()?;
        self.get(&format!("/element/{el}/attribute/{name}"))
            .await
            .as_str()
            .map(str::to_string)
    }

    /// Entries of the browser's console and network log since the last call.
    pub async fn log(&self) -> Vec<Value> {
        self.post("/se/log", json!({"type": "browser"}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        // The whole page, not only the viewport: Chromium's own capture through CDP.
        let metrics = self
            .post(
                "/goog/cdp/execute",
                json!({"cmd": "Page.getLayoutMetrics", "params": {}}),
            )
            .await;
        let size = &metrics["cssContentSize"];
        let shot = self
            .post(
                "/goog/cdp/execute",
                json!({"cmd": "Page.captureScreenshot", "params": {
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
                }}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Checks what every page must be: loaded with olo's stylesheet, no console errors, no
/// resources from another origin, no horizontal scrolling at laptop width; then saves a
/// screenshot.
pub async fn check_page(b: &Browser, base: &str, name: &str) -> String {
    let errors: Vec<Value> = b
        .log()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "{name}: console errors: {errors:?}");
    let styled = b
        .js("return getComputedStyle(document.querySelector('.topbar')).position")
        .await;
    assert_eq!(styled, "sticky", "{name}: the stylesheet did not load");
    let foreign = b
        .js(&format!(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('{base}'))"
        ))
        .await;
    assert_eq!(foreign, json!([]), "{name}: fetched from elsewhere");
    let overflow = b
        .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(overflow, 0, "{name}: scrolls sideways at 1366 px");
    let shot = b.screenshot(name).await;
    eprintln!("screenshot {}", shot.display());
    b.text().await
}
