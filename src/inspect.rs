//! `olo jobs`, `olo runs`, `olo logs`, `olo sql` and `olo lineage`: what a running olo knows, read
//! through its API (the same answers the dashboard shows), as aligned text tables or as JSON.
//! Read-only: nothing here changes anything.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::client::{split_job, Api, ApiArgs};

/// A table as text: a header line and one line per row, columns padded to their widest cell.
/// The last column is not padded (no trailing spaces). An empty table says so in `empty`.
pub fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("{empty}\n");
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// One query-string or path segment value, percent-encoded.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rows of `olo jobs`: one per job of each workspace listing.
pub fn jobs_table(jobs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                format!("{}/{}", text(&j["workspace"]), text(&j["name"])),
                text(&j["schedule"]),
                if j["paused"].as_bool() == Some(true) {
                    "paused".into()
                } else {
                    "active".into()
                },
                j["tasks"].as_array().map_or(0, Vec::len).to_string(),
                text(&j["description"]),
            ]
        })
        .collect();
    table(
        &["JOB", "SCHEDULE", "STATE", "TASKS", "DESCRIPTION"],
        &rows,
        "no jobs",
    )
}

/// The rows of `olo runs`.
pub fn runs_table(runs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                text(&r["id"]),
                format!("{}/{}", text(&r["workspace"]), text(&r["job"])),
                text(&r["state"]),
                text(&r["logical_date"]),
                text(&r["trigger"]),
                text(&r["triggered_by"]),
            ]
        })
        .collect();
    table(
        &["RUN", "JOB", "STATE", "LOGICAL DATE", "TRIGGER", "BY"],
        &rows,
        "no runs",
    )
}

/// `olo sql`'s answer (`columns` with names, `rows` as arrays) as a table.
pub fn sql_table(answer: &Value) -> String {
    let headers: Vec<String> = answer["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| text(&c["name"]))
        .collect();
    let rows: Vec<Vec<String>> = answer["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_array().into_iter().flatten().map(text).collect())
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut out = table(&headers, &rows, "(no rows)");
    if answer["truncated"].as_bool() == Some(true) {
        out.push_str("(more rows than olo returns: narrow the query or add LIMIT)\n");
    }
    out
}

/// A job's lineage as `olo lineage` prints it: where its declaration and its OpenLineage events
/// differ, then what its outputs feed downstream.
pub fn lineage_text(job: &str, doc: &Value) -> String {
    let mut out = String::new();
    let m = &doc["mismatches"];
    let list = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let direction = if e["direction"] == "in" {
                    "reads"
                } else {
                    "writes"
                };
                format!("{direction} {}", text(&e["dataset"]))
            })
            .collect()
    };
    if m["observed_any"].as_bool() != Some(true) {
        out.push_str(&format!(
            "{job} has reported no lineage yet (no OpenLineage event names it)\n"
        ));
    } else {
        let (declared, observed) = (list("declared_not_observed"), list("observed_not_declared"));
        if declared.is_empty() && observed.is_empty() {
            out.push_str(&format!(
                "{job}: what it declares matches what its events show\n"
            ));
        }
        for d in declared {
            out.push_str(&format!("declared, not observed: {d}\n"));
        }
        for o in observed {
            out.push_str(&format!("observed, not declared: {o}\n"));
        }
    }
    let names = |key: &str| -> String {
        let v: Vec<String> = doc["impact"][key]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    };
    out.push_str(&format!("writes: {}\n", names("writes")));
    out.push_str(&format!("downstream jobs: {}\n", names("downstream_jobs")));
    out.push_str(&format!(
        "downstream datasets: {}\n",
        names("downstream_datasets")
    ));
    out
}

fn print(json_out: bool, value: &Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// Every item of a paged listing (`items`, `next_cursor`).
async fn all_pages(api: &Api, path: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=500&cursor={}", enc(c)),
            None => format!("{path}{sep}limit=500"),
        };
        let page = api.get(&url).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(items),
        }
    }
}

/// `olo jobs [WORKSPACE]`.
pub async fn jobs(
    args: &ApiArgs,
    workspace: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let api = Api::new(args)?;
    let workspaces: Vec<String> = match workspace {
        Some(ws) => vec![ws.to_string()],
        None => all_pages(&api, "/workspaces")
            .await?
            .iter()
            .filter_map(|w| w["name"].as_str().map(str::to_string))
            .collect(),
    };
    let mut jobs = Vec::new();
    for ws in &workspaces {
        jobs.extend(all_pages(&api, &format!("/workspaces/{}/jobs", enc(ws))).await?);
    }
    print(json_out, &json!(jobs), || jobs_table(&jobs))?;
    Ok(ExitCode::SUCCESS)
}

/// `olo runs [--job W/J] [--state S] [--limit N]`: newest first.
pub async fn runs(
    args: &ApiArgs,
    job: Option<&str>,
    state: Option<&str>,
    limit: u32,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let api = Api::new(args)?;
    let mut query = vec![format!("limit={limit}")];
    if let Some(job) = job {
        let (ws, name) = split_job(job)?;
        query.push(format!("workspace={ws}"));
        query.push(format!("job={name}"));
    }
    if let Some(state) = state {
        query.push(format!("state={}", enc(state)));
    }
    let page = api.get(&format!("/runs?{}", query.join("&"))).await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    print(json_out, &json!(items), || runs_table(&items))?;
    Ok(ExitCode::SUCCESS)
}

/// `olo logs RUN [TASK] [--try N]`: one task's log, or every task's newest try.
pub async fn logs(
    args: &ApiArgs,
    run: i64,
    task: Option<&str>,
    try_number: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let api = Api::new(args)?;
    let doc = api.get(&format!("/runs/{run}")).await?;
    let mut newest: std::collections::BTreeMap<String, i64> = Default::default();
    for t in doc["task_instances"].as_array().into_iter().flatten() {
        let id = t["task_id"].as_str().unwrap_or("?").to_string();
        let n = t["try_number"].as_i64().unwrap_or(1).max(1);
        let entry = newest.entry(id).or_insert(n);
        *entry = (*entry).max(n);
    }
    let wanted: Vec<(String, i64)> = match task {
        Some(task) => {
            let newest_try = newest.get(task).copied().with_context(|| {
                format!(
                    "run {run} has no task `{task}` (its tasks: {})",
                    newest.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            vec![(task.to_string(), try_number.unwrap_or(newest_try))]
        }
        None => newest.into_iter().collect(),
    };
    for (task, n) in wanted {
        println!("==> {task} (try {n})");
        let log = api
            .text(&format!("/runs/{run}/tasks/{}/logs/{n}", enc(&task)))
            .await?;
        println!("{}", log.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// `olo sql "SELECT ..."`: runs as the caller in Trino, with the repository's rules applied.
pub async fn sql(args: &ApiArgs, sql: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let api = Api::new(args)?;
    let answer = api
        .call(reqwest::Method::POST, "/sql", Some(&json!({ "sql": sql })))
        .await?;
    print(json_out, &answer, || sql_table(&answer))?;
    Ok(ExitCode::SUCCESS)
}

/// `olo lineage W/J`: the job's lineage and its mismatches.
pub async fn lineage(args: &ApiArgs, job: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let (ws, name) = split_job(job)?;
    let api = Api::new(args)?;
    let doc = api
        .get(&format!("/workspaces/{ws}/jobs/{name}/lineage"))
        .await?;
    print(json_out, &doc, || lineage_text(job, &doc))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pads_every_column_but_the_last() {
        let t = table(
            &["RUN", "JOB", "STATE"],
            &[
                vec!["7".into(), "sales/orders_daily".into(), "success".into()],
                vec!["12".into(), "w/j".into(), "failed".into()],
            ],
            "no runs",
        );
        insta::assert_snapshot!(t, @r"
        RUN  JOB                 STATE
        7    sales/orders_daily  success
        12   w/j                 failed
        ");
        assert_eq!(table(&["A"], &[], "no runs"), "no runs\n");
    }

    #[test]
    fn jobs_runs_and_sql_answers_read_as_tables() {
        let jobs = [
            json!({"workspace": "sales", "name": "orders_daily", "schedule": "0 3 * * *",
                           "paused": false, "tasks": [{}, {}, {}], "description": "Orders to gold."}),
            json!({"workspace": "sales", "name": "adhoc", "schedule": null, "paused": true,
                           "tasks": [{}], "description": null}),
        ];
        insta::assert_snapshot!(jobs_table(&jobs), @r"
        JOB                 SCHEDULE   STATE   TASKS  DESCRIPTION
        sales/orders_daily  0 3 * * *  active  3      Orders to gold.
        sales/adhoc         -          paused  1      -
        ");
        let runs = [
            json!({"id": 3, "workspace": "sales", "job": "orders_daily", "state": "running",
                           "logical_date": "2026-01-03T00:00:00Z", "trigger": "api",
                           "triggered_by": "alice@example.com"}),
        ];
        insta::assert_snapshot!(runs_table(&runs), @r"
        RUN  JOB                 STATE    LOGICAL DATE          TRIGGER  BY
        3    sales/orders_daily  running  2026-01-03T00:00:00Z  api      alice@example.com
        ");
        let answer = json!({"columns": [{"name": "day", "type": "date"}, {"name": "revenue", "type": "decimal(14,2)"}],
                            "rows": [["2026-01-02", "50.00"], ["2026-01-03", null]], "truncated": true});
        insta::assert_snapshot!(sql_table(&answer), @r"
        day         revenue
        2026-01-02  50.00
        2026-01-03  -
        (more rows than olo returns: narrow the query or add LIMIT)
        ");
    }

    #[test]
    fn lineage_says_where_declaration_and_events_differ() {
        let doc = json!({
            "node_id": "job:sales:orders_daily",
            "mismatches": {"observed_any": true, "declared_not_observed": [],
                           "observed_not_declared": [{"direction": "out", "dataset": "dataset:sales:tmp.scratch"}]},
            "impact": {"writes": ["dataset:sales:gold.revenue"], "downstream_jobs": ["job:marketing:campaign_report"], "downstream_datasets": []}
        });
        insta::assert_snapshot!(lineage_text("sales/orders_daily", &doc), @r"
        observed, not declared: writes dataset:sales:tmp.scratch
        writes: dataset:sales:gold.revenue
        downstream jobs: job:marketing:campaign_report
        downstream datasets: none
        ");
        let quiet = json!({"mismatches": {"observed_any": false}, "impact": {}});
        assert!(lineage_text("w/j", &quiet).starts_with("w/j has reported no lineage yet"));
    }
}
