//! Unit and snapshot tests of the dashboard: helpers, and pages rendered from fixed data.

use super::*;
use chrono::TimeZone as _;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

#[test]
fn every_template_parses() {
    for (name, _) in TEMPLATES {
        ENV.get_template(name).unwrap();
    }
}

#[test]
fn short_and_first_line() {
    assert_eq!(short_sha("0123456789abcdef"), "01234567");
    assert_eq!(short_sha("abc"), "abc");
    assert_eq!(first_line("fix: a\n\nbody"), "fix: a");
    assert_eq!(first_line(""), "");
}

#[test]
fn relative_times_and_durations_read_like_a_person_would_say_them() {
    assert_eq!(ago(at(0), at(10)), "just now");
    assert_eq!(ago(at(0), at(300)), "5 min ago");
    assert_eq!(ago(at(0), at(3 * 3600)), "3 h ago");
    assert_eq!(ago(at(0), at(2 * 86_400)), "2 d ago");
    assert_eq!(ago(at(600), at(0)), "in 10 min");
    assert_eq!(duration(0.25), "250 ms");
    assert_eq!(duration(42.0), "42.0 s");
    assert_eq!(duration(185.0), "3m 05s");
    assert_eq!(duration(7260.0), "2h 01m");
    assert_eq!(duration(-1.0), "—");
}

#[test]
fn states_get_a_tone() {
    assert_eq!(tone("Ready"), "ok");
    assert_eq!(tone("Stalled"), "bad");
    assert_eq!(tone("running"), "busy");
    assert_eq!(tone("up_for_retry"), "warn");
    assert_eq!(tone("<script>"), "muted");
}

#[test]
fn the_timeline_spans_first_start_to_last_end() {
    let ti = |id: &str, s: Option<i64>, e: Option<i64>| TaskInstanceRow {
        task_id: id.into(),
        map_index: -1,
        try_number: 1,
        state: Some("success".into()),
        started_at: s.map(at),
        ended_at: e.map(at),
        duration_seconds: None,
    };
    let tis = [
        ti("a", Some(0), Some(25)),
        ti("b", Some(25), Some(100)),
        ti("c", Some(50), None),
        ti("d", None, None),
    ];
    let (bars, total) = timeline(&tis, at(100));
    assert_eq!(total, 100.0);
    let geo: Vec<_> = bars.iter().map(|b| (b.left, b.width, b.started)).collect();
    assert_eq!(
        geo,
        [
            (0.0, 25.0, true),
            (25.0, 75.0, true),
            (50.0, 50.0, true),
            (0.0, 0.0, false)
        ]
    );
    assert_eq!(timeline(&[], at(0)), (vec![], 0.0));
}

#[test]
fn long_names_are_cut_in_the_middle() {
    assert_eq!(label("gold.revenue", 30), "gold.revenue");
    assert_eq!(label("abcdefghij", 5), "ab…ij");
    assert_eq!(label("ééééééé", 4), "é…éé");
}

#[test]
fn time_windows_are_the_offered_ones() {
    assert_eq!(since_window("24h"), Some(Duration::hours(24)));
    assert_eq!(since_window("7d"), Some(Duration::days(7)));
    assert_eq!(since_window("2h"), None);
    assert_eq!(since_window("'; drop"), None);
}

#[test]
fn file_links_need_a_repository_and_a_revision() {
    assert_eq!(
        file_url(Some("o/r"), Some("abc"), "workspaces/w/jobs/j.yaml").as_deref(),
        Some("https://github.com/o/r/blob/abc/workspaces/w/jobs/j.yaml")
    );
    assert_eq!(file_url(None, Some("abc"), "x"), None);
    assert_eq!(file_url(Some("o/r"), None, "x"), None);
}

fn snapshot_job() -> olo_reconciler::catalog::JobView {
    use olo_reconciler::catalog::{JobView, TaskView};
    let task = |id: &str, deps: &[&str], inputs: &[&str], outputs: &[&str]| TaskView {
        id: id.into(),
        kind: "bash".into(),
        depends_on: deps.iter().map(|s| s.to_string()).collect(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        mlflow_experiment: None,
    };
    JobView {
        name: "orders".into(),
        workspace: "sales".into(),
        dag_id: "sales__orders".into(),
        path: "workspaces/sales/jobs/orders.yaml".into(),
        description: Some("Orders <b>& refunds</b>".into()),
        schedule: Some("30 4 * * *".into()),
        start_date: Some("2026-01-01".into()),
        end_date: None,
        paused: false,
        tags: vec!["sales".into()],
        params: vec!["day".into()],
        param_types: Default::default(),
        tasks: vec![
            task("extract", &[], &[], &["raw.orders"]),
            task("load", &["extract"], &["raw.orders"], &["gold.orders"]),
        ],
    }
}

fn snapshot_run(id: i64, state: &str) -> olo_reconciler::store::Run {
    olo_reconciler::store::Run {
        id,
        workspace: "sales".into(),
        job: "orders".into(),
        dag_id: "sales__orders".into(),
        airflow_run_id: format!("olo__2026-11-27T04:30:00+00:00_{id}"),
        state: state.into(),
        trigger: olo_reconciler::store::RunTrigger::Api,
        triggered_by: Some("ci-bot".into()),
        revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
        conf: serde_json::json!({"day": "2026-11-26"}),
        logical_date: Some(at(0)),
        started_at: Some(at(5)),
        ended_at: (state != "running").then(|| at(185)),
        created_at: at(0),
        updated_at: at(190),
    }
}

#[test]
fn the_job_page_as_people_read_it() {
    let job = snapshot_job();
    let recent = [snapshot_run(2, "failed"), snapshot_run(1, "success")];
    // The newest run: extract failed once, then succeeded; load never ran.
    let ti = |try_number: i64, state: &str| TaskInstanceRow {
        task_id: "extract".into(),
        map_index: -1,
        try_number,
        state: Some(state.into()),
        started_at: None,
        ended_at: None,
        duration_seconds: None,
    };
    let latest = [ti(2, "success"), ti(1, "failed")];
    let html = render_at(
        "job.html",
        job_page(&JobPage {
            job: &job,
            revision: Some("0123456789abcdef0123456789abcdef01234567"),
            repository: Some("acme/lakehouse-config"),
            airflow_ui: Some("https://airflow.example.com"),
            spec: Some("apiVersion: olo/v1\nkind: Job\nmetadata: {name: orders}\n"),
            dag_source: Some("# Generated by olo\nwith DAG(dag_id='sales__orders'):\n    pass\n"),
            recent: &recent,
            latest: &latest,
            lineage: &olo_reconciler::lineage::Mismatches {
                observed_any: true,
                declared_not_observed: vec![olo_reconciler::lineage::DatasetEdge {
                    direction: "out",
                    dataset: "dataset:sales:gold.orders".into(),
                }],
                observed_not_declared: vec![olo_reconciler::lineage::DatasetEdge {
                    direction: "in",
                    dataset: "dataset:trino://t:8080:other.raw.x".into(),
                }],
            },
            now: at(3600),
            branch: "main",
            writes: "pull_request",
        }),
        at(3600),
    )
    .unwrap()
    .0;
    insta::assert_snapshot!(main_of(&html));
}

#[test]
fn the_run_page_as_people_read_it() {
    let ti = |task: &str, try_number, state: &str, s: i64, e: Option<i64>| TaskInstanceRow {
        task_id: task.into(),
        map_index: -1,
        try_number,
        state: Some(state.into()),
        started_at: Some(at(s)),
        ended_at: e.map(at),
        duration_seconds: e.map(|e| (e - s) as f64),
    };
    let tis = [
        ti("extract", 1, "success", 5, Some(65)),
        ti("load", 1, "failed", 65, Some(95)),
        ti("load", 2, "success", 125, Some(185)),
    ];
    let run = snapshot_run(7, "success");
    let html = render_at(
        "run.html",
        run_page(
            &run,
            &tis,
            Some("https://airflow.example.com"),
            &RunMlflow {
                experiments: &["forecast".to_string()],
                runs: Some(&[olo_reconciler::targets::mlflow::MlflowRun {
                    run_id: "4f1c".into(),
                    run_name: Some("train <v2>".into()),
                    experiment_id: "7".into(),
                    experiment: "forecast".into(),
                    status: "FINISHED".into(),
                    start_time: Some(at(10)),
                    end_time: Some(at(70)),
                    metrics: vec![("mae".into(), 0.5), ("rmse".into(), 0.25)],
                    url: "https://mlflow.example.com/#/experiments/7/runs/4f1c".into(),
                }]),
                problem: None,
            },
            false,
            at(3600),
        ),
        at(3600),
    )
    .unwrap()
    .0;
    insta::assert_snapshot!(main_of(&html));
}

/// The page's `<main>`: what changes per page (the frame is the same on every page).
fn main_of(html: &str) -> &str {
    let start = html.find("<main").expect("a <main>");
    let end = html.rfind("</main>").expect("a </main>") + "</main>".len();
    &html[start..end]
}

#[test]
fn values_are_escaped_as_html() {
    let html = render(
        "error.html",
        context! { nav => "", status => 404, title => "t", message => "<script>x</script>", sign_in => false },
    )
    .unwrap()
    .0;
    assert!(
        html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>x"), "{html}");
}

#[test]
fn the_sql_page_as_people_read_it() {
    let html = render_at("sql.html", sql_page::sql_context(true, 1000), at(0))
        .unwrap()
        .0;
    assert!(
        html.contains(r#"<script src="/assets/sql.js" defer></script>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"class="active" aria-current="page">SQL</a>"#),
        "{html}"
    );
    insta::assert_snapshot!(main_of(&html));
}

#[test]
fn the_sql_page_says_when_trino_is_not_configured() {
    let html = render_at("sql.html", sql_page::sql_context(false, 1000), at(0))
        .unwrap()
        .0;
    assert!(!html.contains("<script"), "{html}");
    insta::assert_snapshot!(main_of(&html));
}

#[test]
fn the_sql_script_never_writes_html() {
    let js = include_str!("sql.js");
    assert!(js.contains("textContent"));
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "sql.js uses {sink}");
    }
}

#[test]
fn a_page_that_needs_a_sign_in_offers_it() {
    let html = render(
        "error.html",
        context! {
            nav => "",
            status => 401,
            title => "Sign in required",
            message => "This page needs you to sign in.",
            sign_in => true,
        },
    )
    .unwrap()
    .0;
    insta::assert_snapshot!(main_of(&html));
}

/// A failed task's log: the long traceback folded under its exception line.
#[test]
fn a_task_log_folds_its_long_traceback() {
    let run = snapshot_run(2, "failed");
    let mut log = String::from("2026-01-01T00:00:00Z INFO starting\n2026-01-01T00:00:01Z ERROR Task failed\nTraceback (most recent call last):\n");
    for i in 0..8 {
        log.push_str(&format!(
            "  File \"/opt/airflow/job.py\", line {i}, in step_{i}\n"
        ));
    }
    log.push_str("ValueError: <b>bad</b> row\n2026-01-01T00:00:02Z INFO done\n");
    let html = render_at(
        "log.html",
        super::log_page(&run, "load", 1, Some(&log), None, true),
        at(3600),
    )
    .unwrap()
    .0;
    insta::assert_snapshot!(main_of(&html));
}

/// A run of a paused job waits in Airflow: its page says why, until the run ends.
#[test]
fn a_waiting_run_of_a_paused_job_says_why() {
    let mlflow = RunMlflow {
        experiments: &[],
        runs: None,
        problem: None,
    };
    let page = |state: &str, paused: bool| {
        let run = snapshot_run(3, state);
        render_at(
            "run.html",
            run_page(&run, &[], None, &mlflow, paused, at(60)),
            at(60),
        )
        .unwrap()
        .0
    };
    assert!(page("queued", true).contains(r#"id="run-paused""#));
    assert!(!page("queued", false).contains(r#"id="run-paused""#));
    assert!(!page("success", true).contains(r#"id="run-paused""#));
}

#[test]
fn a_plan_reads_as_counts_in_the_revisions_list() {
    let counts = |v: serde_json::Value| super::plan_counts(&v);
    assert_eq!(
        counts(
            serde_json::json!({"create": 2, "update": 1, "delete": 0, "keep": 0, "unchanged": 40})
        ),
        "2 created, 1 changed"
    );
    assert_eq!(
        counts(serde_json::json!({"delete": 1, "keep": 3, "unchanged": 2})),
        "1 deleted, 3 kept"
    );
    assert_eq!(counts(serde_json::json!({"unchanged": 7})), "no changes");
    assert_eq!(counts(serde_json::json!({})), "no changes");
}
