//! `olo job apply -f FILE` and `olo job delete WS/JOB`: a job written through a running olo's
//! API, which makes it a commit (or a pull request) in the config repository (`api.writes`).
//! Exit 0 when olo took the change, 2 when it refused (its reason printed: the diagnostics of an
//! invalid job, a moved branch, a missing role) or could not be reached.

use std::path::{Component, Path};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::client::{split_job, Api, ApiArgs};

/// The job's name: the document's `metadata.name` (YAML or JSON).
pub fn job_name(text: &str) -> anyhow::Result<String> {
    let docs = olo_schema::yaml::parse(text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let [doc] = docs.as_slice() else {
        bail!(
            "the file must hold exactly one document (it holds {})",
            docs.len()
        );
    };
    match doc.lookup(&["metadata", "name"]).map(|n| &n.value) {
        Some(olo_schema::yaml::Value::Str(name)) => Ok(name.clone()),
        _ => bail!("the document has no metadata.name"),
    }
}

/// The workspace of a job file at `workspaces/<ws>/jobs/<file>` (anywhere in the path).
pub fn workspace_of(path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect();
    parts
        .windows(4)
        .rev()
        .find(|w| w[0] == "workspaces" && w[2] == "jobs")
        .map(|w| w[1].clone())
}

fn summary(answer: &Value) -> String {
    let s = |k: &str| answer[k].as_str().unwrap_or("?").to_string();
    let short = |sha: String| sha.chars().take(12).collect::<String>();
    let mut line = format!(
        "{} {} in commit {} on {}",
        s("action"),
        s("path"),
        short(s("revision")),
        s("branch")
    );
    match answer["pull_request"]["url"].as_str() {
        Some(url) => line.push_str(&format!("; pull request {url} (olo plans it)")),
        None => line.push_str("; olo applies it"),
    }
    line
}

fn print(answer: &Value, json_out: bool) -> anyhow::Result<ExitCode> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        println!("{}", summary(answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// `olo job apply -f FILE [--workspace WS] [--if-match REV]`.
pub async fn apply(
    args: &ApiArgs,
    file: &Path,
    workspace: Option<&str>,
    if_match: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let job = job_name(&text).with_context(|| format!("{}", file.display()))?;
    let ws = match (workspace, workspace_of(file)) {
        (Some(ws), _) => ws.to_string(),
        (None, Some(ws)) => ws,
        (None, None) => bail!(
            "which workspace? {} is not under workspaces/<ws>/jobs/: pass --workspace",
            file.display()
        ),
    };
    let name = format!("{ws}/{job}");
    let (ws, job) = split_job(&name)?;
    let json = file.extension().is_some_and(|e| e == "json");
    let content_type = if json {
        "application/json"
    } else {
        "application/yaml"
    };
    let api = Api::new(args)?;
    let answer = api
        .send(
            reqwest::Method::PUT,
            &format!("/workspaces/{ws}/jobs/{job}"),
            if_match,
            Some((content_type, text.into_bytes())),
        )
        .await?;
    print(&answer, json_out)
}

/// `olo job delete WS/JOB [--if-match REV]`.
pub async fn delete(
    args: &ApiArgs,
    job: &str,
    if_match: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let (ws, job) = split_job(job)?;
    let api = Api::new(args)?;
    let answer = api
        .send(
            reqwest::Method::DELETE,
            &format!("/workspaces/{ws}/jobs/{job}"),
            if_match,
            None,
        )
        .await?;
    print(&answer, json_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_job_name_comes_from_the_document() {
        assert_eq!(
            job_name("apiVersion: olo/v1\nkind: Job\nmetadata: {name: orders}\n").unwrap(),
            "orders"
        );
        assert_eq!(job_name(r#"{"metadata": {"name": "j"}}"#).unwrap(), "j");
        assert!(job_name("kind: Job\n").is_err());
        assert!(job_name("a: [\n").is_err());
    }

    #[test]
    fn the_workspace_comes_from_the_path() {
        assert_eq!(
            workspace_of(Path::new("repo/workspaces/sales/jobs/orders.yaml")).as_deref(),
            Some("sales")
        );
        assert_eq!(
            workspace_of(Path::new("/x/workspaces/a/jobs/j.yaml")).as_deref(),
            Some("a")
        );
        assert_eq!(workspace_of(Path::new("orders.yaml")), None);
        assert_eq!(workspace_of(Path::new("workspaces/a/sql/x.yaml")), None);
    }

    #[test]
    fn the_summary_says_what_was_committed_and_where() {
        let commit = json!({"action": "created", "path": "workspaces/w/jobs/j.yaml",
            "revision": "0123456789abcdef0123", "branch": "main"});
        assert_eq!(
            summary(&commit),
            "created workspaces/w/jobs/j.yaml in commit 0123456789ab on main; olo applies it"
        );
        let mut pr = commit.clone();
        pr["branch"] = json!("olo/api/w-j-1a2b3c4d");
        pr["pull_request"] = json!({"number": 7, "url": "https://github.com/o/r/pull/7"});
        assert_eq!(
            summary(&pr),
            "created workspaces/w/jobs/j.yaml in commit 0123456789ab on olo/api/w-j-1a2b3c4d; pull request https://github.com/o/r/pull/7 (olo plans it)"
        );
    }
}
