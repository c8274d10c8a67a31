//! `olo run`, `olo backfill`, `olo cancel` and `olo clear`: the CLI side of a running olo's API.
//! Trigger a job's run or a backfill, follow it to the end (task states as they change, task
//! logs), stop it. Exit 0 when the run
//! succeeded, 1 when it failed, 2 when olo refused or could not be reached.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::cli_config;

/// Where the API is and who calls it: these flags (or their variables), else the CLI config
/// file (`~/.config/olo/cli.toml`, see `crate::cli_config`).
#[derive(clap::Args, Clone)]
pub struct ApiArgs {
    /// Base URL of a running olo [default: the CLI config's `server`, else
    /// http://127.0.0.1:8080].
    #[arg(long, env = "OLO_SERVER")]
    pub server: Option<String>,
    /// An API token (`olo token`) or an OpenID Connect access token [default: the CLI config's
    /// `token` or `token_file`]. The CLI config is ~/.config/olo/cli.toml (or
    /// $XDG_CONFIG_HOME/olo/cli.toml, or the file OLO_CLI_CONFIG names).
    #[arg(long, env = "OLO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// What `olo run` asks for.
pub struct RunArgs {
    /// `<workspace>/<job>`
    pub job: String,
    pub conf: Option<String>,
    pub logical_date: Option<String>,
    pub note: Option<String>,
    pub wait: bool,
    pub logs: bool,
    pub json: bool,
}

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub(crate) fn new(args: &ApiArgs) -> anyhow::Result<Api> {
        let env = |k: &str| std::env::var(k).ok();
        // The file is read only when a flag leaves something to fill in.
        let file = match (&args.server, &args.token) {
            (Some(_), Some(_)) => None,
            _ => match cli_config::path(env) {
                Some(path) => cli_config::load(&path, env("OLO_CLI_CONFIG").is_some())?,
                None => None,
            },
        };
        let (server, token) = cli_config::resolve(
            args.server.as_deref(),
            args.token.as_deref(),
            file,
            env("HOME").as_deref(),
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("could not set up the HTTP client")?;
        Ok(Api {
            http,
            base: server.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.answer(request).await
    }

    /// Like [`Api::call`], with a raw body of a content type and an `If-Match` revision.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(rev) = if_match {
            request = request.header(reqwest::header::IF_MATCH, format!("\"{rev}\""));
        }
        if let Some((content_type, bytes)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        self.answer(request).await
    }

    /// Sends `request`: its JSON answer, or olo's reason as the error.
    async fn answer(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| {
            format!(
                "could not reach olo at {} (is `olo serve` running? set --server or OLO_SERVER)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("could not read olo's answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                " (pass --token or set OLO_TOKEN)"
            } else {
                ""
            };
            bail!("olo answered HTTP {}: {message}{hint}", status.as_u16());
        }
        Ok(value)
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.context("could not reach olo")?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("could not read olo's answer")?;
        if !status.is_success() {
            bail!("olo answered HTTP {} for {path}: {text}", status.as_u16());
        }
        Ok(text)
    }
}

/// The request body of a trigger, from the command line's flags.
fn trigger_body(args: &RunArgs) -> anyhow::Result<Value> {
    let mut body = json!({});
    if let Some(conf) = &args.conf {
        body["conf"] = conf_flag(conf)?;
    }
    if let Some(date) = &args.logical_date {
        body["logical_date"] = json!(date);
    }
    if let Some(note) = &args.note {
        body["note"] = json!(note);
    }
    Ok(body)
}

pub(crate) fn split_job(job: &str) -> anyhow::Result<(&str, &str)> {
    match job.split_once('/') {
        Some((ws, name)) if is_name(ws) && is_name(name) => Ok((ws, name)),
        _ => bail!("name the job as <workspace>/<job>, e.g. sales/orders_daily (got `{job}`)"),
    }
}

/// Workspace and job names are identifiers (docs/spec.md); anything else would not be a plain
/// URL path segment.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// `olo run`.
pub async fn run(api: &ApiArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (ws, job) = split_job(&args.job)?;
    let body = trigger_body(&args)?;
    let api = Api::new(api)?;
    let run = api
        .call(
            reqwest::Method::POST,
            &format!("/workspaces/{ws}/jobs/{job}/runs"),
            Some(&body),
        )
        .await?;
    if !args.json {
        let id = run["id"].as_i64().context("olo's answer has no run id")?;
        println!(
            "run {id} of {ws}/{job}: {} (Airflow run {}, logical date {})",
            run["state"].as_str().unwrap_or("?"),
            run["airflow_run_id"].as_str().unwrap_or("?"),
            run["logical_date"].as_str().unwrap_or("none"),
        );
    }
    finish(&api, run, args.wait, args.logs, args.json).await
}

/// Prints the run (json) or follows it to its end (--wait), then its logs (--logs); the exit
/// code says how it ended.
async fn finish(
    api: &Api,
    run: Value,
    wait: bool,
    logs: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !wait {
        if json {
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = run["id"].as_i64().context("olo's answer has no run id")?;
    let run = follow(api, id, json).await?;
    if logs {
        print_logs(api, &run).await?;
    }
    let state = run["state"].as_str().unwrap_or("?");
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        println!(
            "run {id} of {}/{}: {state}",
            run["workspace"].as_str().unwrap_or("?"),
            run["job"].as_str().unwrap_or("?")
        );
    }
    Ok(if state == "success" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `olo clear`: re-run the failed tasks of a finished run, optionally following it again.
pub async fn clear(
    api: &ApiArgs,
    id: i64,
    wait: bool,
    logs: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let api = Api::new(api)?;
    let run = api
        .call(reqwest::Method::POST, &format!("/runs/{id}/clear"), None)
        .await?;
    if !json {
        println!(
            "run {id} of {}/{}: failed tasks cleared, {}",
            run["workspace"].as_str().unwrap_or("?"),
            run["job"].as_str().unwrap_or("?"),
            run["state"].as_str().unwrap_or("?")
        );
    }
    finish(&api, run, wait, logs, json).await
}

/// Polls the run until it finished, printing each task's state when it changes. On a terminal a
/// status line under them counts the finished tasks and the time, redrawn in place; piped, only
/// the plain lines.
async fn follow(api: &Api, id: i64, quiet: bool) -> anyhow::Result<Value> {
    use std::io::{IsTerminal as _, Write as _};
    let live = !quiet
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let started = std::time::Instant::now();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut last_state = String::new();
    let mut out = std::io::stdout();
    loop {
        let run = api.get(&format!("/runs/{id}")).await?;
        let state = run["state"].as_str().unwrap_or("?").to_string();
        let tasks = task_states(&run);
        if !quiet {
            if live {
                // Clear the status line before printing lines above it.
                print!("\r\x1b[2K");
            }
            for (task, task_state) in &tasks {
                if seen.get(task) != Some(task_state) {
                    println!("  {task}: {task_state}");
                    seen.insert(task.clone(), task_state.clone());
                }
            }
            if state != last_state && !matches!(state.as_str(), "success" | "failed") {
                println!("run {id}: {state}");
            }
            if live && !matches!(state.as_str(), "success" | "failed") {
                print!("{}", status_line(id, &state, &tasks, started.elapsed()));
            }
            out.flush().ok();
        }
        last_state = state;
        if matches!(last_state.as_str(), "success" | "failed") {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The live line under a followed run: `run 7 running · 2/5 tasks done · 1 running · 0:42`.
fn status_line(id: i64, state: &str, tasks: &[(String, String)], elapsed: Duration) -> String {
    let done = tasks
        .iter()
        .filter(|(_, s)| {
            matches!(
                s.as_str(),
                "success" | "failed" | "skipped" | "upstream_failed"
            )
        })
        .count();
    let running = tasks.iter().filter(|(_, s)| s == "running").count();
    let secs = elapsed.as_secs();
    let mut line = format!("run {id} {state} · {done}/{} tasks done", tasks.len());
    if running > 0 {
        line.push_str(&format!(" · {running} running"));
    }
    line.push_str(&format!(" · {}:{:02}", secs / 60, secs % 60));
    line
}

/// Each task's state at its newest try (`task_id[map_index]` for mapped tasks).
fn task_states(run: &Value) -> Vec<(String, String)> {
    let mut newest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for t in run["task_instances"].as_array().into_iter().flatten() {
        let mut name = t["task_id"].as_str().unwrap_or("?").to_string();
        if let Some(i) = t["map_index"].as_i64().filter(|i| *i >= 0) {
            name = format!("{name}[{i}]");
        }
        let try_number = t["try_number"].as_i64().unwrap_or(0);
        let state = t["state"].as_str().unwrap_or("none").to_string();
        let entry = newest.entry(name).or_insert((try_number, state.clone()));
        if try_number >= entry.0 {
            *entry = (try_number, state);
        }
    }
    newest.into_iter().map(|(k, (_, s))| (k, s)).collect()
}

async fn print_logs(api: &Api, run: &Value) -> anyhow::Result<()> {
    let id = run["id"].as_i64().unwrap_or_default();
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for t in run["task_instances"].as_array().into_iter().flatten() {
        if t["map_index"].as_i64().unwrap_or(-1) >= 0 {
            continue;
        }
        let task = t["task_id"].as_str().unwrap_or("?").to_string();
        let try_number = t["try_number"].as_i64().unwrap_or(1);
        let entry = newest.entry(task).or_insert(try_number);
        *entry = (*entry).max(try_number);
    }
    for (task, try_number) in newest {
        println!("==> {task} (try {try_number})");
        match api
            .text(&format!("/runs/{id}/tasks/{task}/logs/{try_number}"))
            .await
        {
            Ok(log) => println!("{}", log.trim_end()),
            Err(e) => println!("(no log: {e:#})"),
        }
    }
    Ok(())
}

/// What `olo backfill` asks for.
pub struct BackfillArgs {
    /// `<workspace>/<job>`
    pub job: String,
    pub from: String,
    pub to: String,
    pub conf: Option<String>,
    pub reprocess: String,
    pub max_active_runs: u32,
    pub backwards: bool,
    pub wait: bool,
    pub json: bool,
}

/// `olo backfill`: a run for each interval of the job's schedule in a date range; with --wait
/// follows them all (exit 0 when every run succeeded, 1 otherwise).
pub async fn backfill(api: &ApiArgs, args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let (ws, job) = split_job(&args.job)?;
    let mut body = json!({
        "from_date": args.from,
        "to_date": args.to,
        "reprocess": args.reprocess,
        "max_active_runs": args.max_active_runs,
        "run_backwards": args.backwards,
    });
    if let Some(conf) = &args.conf {
        body["conf"] = conf_flag(conf)?;
    }
    let api = Api::new(api)?;
    let answer = api
        .call(
            reqwest::Method::POST,
            &format!("/workspaces/{ws}/jobs/{job}/backfills"),
            Some(&body),
        )
        .await?;
    let runs: Vec<Value> = answer["runs"].as_array().cloned().unwrap_or_default();
    if !args.json {
        println!(
            "backfill {} of {ws}/{job}, {} to {}: {} run{}",
            answer["backfill"]["id"],
            answer["backfill"]["from_date"].as_str().unwrap_or("?"),
            answer["backfill"]["to_date"].as_str().unwrap_or("?"),
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
        );
        for run in &runs {
            println!(
                "  run {}: logical date {}, {}",
                run["id"],
                run["logical_date"].as_str().unwrap_or("none"),
                run["state"].as_str().unwrap_or("?"),
            );
        }
    }
    if !args.wait {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    // One run after another: the exit code needs them all, and Airflow runs them in order.
    let mut finished = Vec::new();
    let mut all_succeeded = true;
    for run in &runs {
        let id = run["id"]
            .as_i64()
            .context("olo's answer has a run without id")?;
        let run = follow(&api, id, args.json).await?;
        let state = run["state"].as_str().unwrap_or("?").to_string();
        all_succeeded &= state == "success";
        if !args.json {
            println!(
                "run {id} ({}): {state}",
                run["logical_date"].as_str().unwrap_or("none")
            );
        }
        finished.push(run);
    }
    if args.json {
        let mut answer = answer;
        answer["runs"] = Value::Array(finished);
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--conf`'s JSON object.
fn conf_flag(conf: &str) -> anyhow::Result<Value> {
    let conf: Value = serde_json::from_str(conf)
        .context("--conf must be a JSON object, e.g. --conf '{\"day\": \"2026-03-01\"}'")?;
    if !conf.is_object() {
        bail!("--conf must be a JSON object, e.g. --conf '{{\"day\": \"2026-03-01\"}}'");
    }
    Ok(conf)
}

/// `olo cancel`.
pub async fn cancel(api: &ApiArgs, id: i64, json_out: bool) -> anyhow::Result<ExitCode> {
    let api = Api::new(api)?;
    let run = api
        .call(reqwest::Method::POST, &format!("/runs/{id}/cancel"), None)
        .await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        println!(
            "run {id} of {}/{}: {}",
            run["workspace"].as_str().unwrap_or("?"),
            run["job"].as_str().unwrap_or("?"),
            run["state"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_counts_finished_and_running_tasks_and_the_time() {
        let tasks = |states: &[&str]| -> Vec<(String, String)> {
            states
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("t{i}"), s.to_string()))
                .collect()
        };
        assert_eq!(
            status_line(
                7,
                "running",
                &tasks(&["success", "running", "none", "skipped"]),
                Duration::from_secs(62)
            ),
            "run 7 running · 2/4 tasks done · 1 running · 1:02"
        );
        assert_eq!(
            status_line(3, "queued", &[], Duration::from_secs(5)),
            "run 3 queued · 0/0 tasks done · 0:05"
        );
    }

    #[test]
    fn jobs_are_named_workspace_slash_job() {
        assert_eq!(
            split_job("sales/orders_daily").unwrap(),
            ("sales", "orders_daily")
        );
        for bad in ["sales", "/x", "x/", "a/b/c", "a/b?c", "a/../b"] {
            let e = split_job(bad).unwrap_err().to_string();
            assert!(e.contains("<workspace>/<job>"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_trigger_body_carries_only_what_was_given() {
        let args = |conf: Option<&str>| RunArgs {
            job: "w/j".into(),
            conf: conf.map(str::to_string),
            logical_date: Some("2026-03-01".into()),
            note: None,
            wait: false,
            logs: false,
            json: false,
        };
        assert_eq!(
            trigger_body(&args(Some(r#"{"days": 3}"#))).unwrap(),
            json!({"conf": {"days": 3}, "logical_date": "2026-03-01"})
        );
        let e = trigger_body(&args(Some("[1]"))).unwrap_err().to_string();
        assert!(e.contains("--conf must be a JSON object"), "{e}");
        let e = format!("{:#}", trigger_body(&args(Some("{nope"))).unwrap_err());
        assert!(e.contains("--conf must be a JSON object"), "{e}");
    }

    #[test]
    fn task_states_show_each_tasks_newest_try() {
        let run = json!({"task_instances": [
            {"task_id": "a", "map_index": -1, "try_number": 1, "state": "failed"},
            {"task_id": "a", "map_index": -1, "try_number": 2, "state": "running"},
            {"task_id": "b", "map_index": 0, "try_number": 1, "state": "success"},
            {"task_id": "c", "map_index": -1, "try_number": 1, "state": null},
        ]});
        assert_eq!(
            task_states(&run),
            [
                ("a".to_string(), "running".to_string()),
                ("b[0]".to_string(), "success".to_string()),
                ("c".to_string(), "none".to_string()),
            ]
        );
    }
}
