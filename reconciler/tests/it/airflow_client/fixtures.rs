//! Bodies Airflow 3.3.2 answered.

use olo_reconciler::targets::airflow::DagRun;
use serde_json::json;
use serde_json::Value;

use super::support::time;

pub(crate) const SMOKE_RUN_PATH: &str = "/api/v2/dags/platform__smoke_test/dagRuns/olo-test-1";

pub(crate) fn smoke_run() -> Value {
    json!({
        "dag_run_id": "olo-test-1", "dag_id": "platform__smoke_test", "logical_date": null,
        "queued_at": "2026-11-26T23:05:23.300146Z", "start_date": "2026-11-26T23:05:24.444599Z",
        "end_date": "2026-11-26T23:05:27.893383Z", "duration": 3.448784,
        "data_interval_start": null, "data_interval_end": null,
        "run_after": "2026-11-26T23:05:23.262874Z",
        "last_scheduling_decision": "2026-11-26T23:05:27.892210Z", "run_type": "manual",
        "state": "success", "triggered_by": "rest_api", "triggering_user_name": "admin",
        "conf": {"greeting": "hi"}, "note": null,
        "dag_versions": [{
            "id": "01a21a1b-1b3f-75e6-841b-48b49e087e51", "version_number": 1,
            "dag_id": "platform__smoke_test", "bundle_name": "dags-folder",
            "bundle_version": null, "created_at": "2026-11-26T23:05:13.791455Z",
            "dag_display_name": "platform__smoke_test", "bundle_url": null
        }],
        "bundle_version": null, "dag_display_name": "platform__smoke_test",
        "partition_key": null, "partition_date": null
    })
}

pub(crate) fn smoke_run_parsed() -> DagRun {
    DagRun {
        dag_id: "platform__smoke_test".into(),
        dag_run_id: "olo-test-1".into(),
        state: "success".into(),
        logical_date: None,
        start_date: time("2026-11-26T23:05:24.444599Z"),
        end_date: time("2026-11-26T23:05:27.893383Z"),
        conf: Some(json!({"greeting": "hi"})),
    }
}

/// The same run just after the trigger: queued, not started.
pub(crate) fn queued_smoke_run() -> Value {
    let mut run = smoke_run();
    run["state"] = json!("queued");
    run["start_date"] = Value::Null;
    run["end_date"] = Value::Null;
    run["duration"] = Value::Null;
    run["last_scheduling_decision"] = Value::Null;
    run
}

/// The `file_token` Airflow gave the smoke test's file: `{"bundle_name": "dags-folder",
/// "relative_fileloc": "platform__smoke_test.py"}` signed with its secret key.
pub(crate) const SMOKE_FILE_TOKEN: &str = "eyJidW5kbGVfbmFtZSI6ImRhZ3MtZm9sZGVyIiwicmVsYXRpdmVfZmlsZWxvYyI6InBsYXRmb3JtX19zbW9rZV90ZXN0LnB5In0.1oaZrxfkqNWHg1pXqbrhU_FrDQI";

pub(crate) fn smoke_dag(is_paused: bool) -> Value {
    json!({
        "dag_id": "platform__smoke_test", "dag_display_name": "platform__smoke_test",
        "is_paused": is_paused, "is_stale": false,
        "last_parsed_time": "2026-11-26T23:05:52.567686Z",
        "last_parse_duration": 0.07284621299913852, "last_expired": null,
        "bundle_name": "dags-folder", "bundle_version": null,
        "relative_fileloc": "platform__smoke_test.py",
        "fileloc": "/tmp/olo-airflow/dags/platform__smoke_test.py",
        "description": "Checks that olo-rendered DAGs parse, run and report in Airflow.",
        "timetable_summary": null, "timetable_description": "Never, external triggers only",
        "timetable_partitioned": false, "timetable_periodic": false,
        "tags": [
            {"name": "olo", "dag_id": "platform__smoke_test", "dag_display_name": "platform__smoke_test"},
            {"name": "workspace:platform", "dag_id": "platform__smoke_test", "dag_display_name": "platform__smoke_test"}
        ],
        "max_active_tasks": 16, "max_active_runs": 16, "max_consecutive_failed_dag_runs": 0,
        "has_task_concurrency_limits": false, "has_import_errors": false,
        "next_dagrun_logical_date": null, "next_dagrun_data_interval_start": null,
        "next_dagrun_data_interval_end": null, "next_dagrun_run_after": null,
        "allowed_run_types": null, "owners": ["data-platform"], "is_backfillable": false,
        "file_token": SMOKE_FILE_TOKEN
    })
}

/// A task instance of the smoke run as Airflow lists it.
pub(crate) fn smoke_task_instance(
    task_id: &str,
    operator: &str,
    (start, end, duration): (&str, &str, f64),
) -> Value {
    json!({
        "id": "01a21a1b-406f-7a3f-9068-770a37585330", "task_id": task_id,
        "dag_id": "platform__smoke_test", "dag_run_id": "olo-test-1", "map_index": -1,
        "logical_date": null, "run_after": "2026-11-26T23:05:23.262874Z",
        "start_date": start, "end_date": end, "duration": duration, "state": "success",
        "try_number": 1, "max_tries": 0, "task_display_name": task_id,
        "dag_display_name": "platform__smoke_test", "hostname": "vm", "unixname": "root",
        "pool": "default_pool", "pool_slots": 1, "queue": "default", "priority_weight": 1,
        "operator": operator, "operator_name": operator,
        "queued_when": "2026-11-26T23:05:24.469932Z", "scheduled_when": "2026-11-26T23:05:24.451463Z",
        "pid": 2143, "executor": null, "executor_config": "{}", "note": null,
        "rendered_map_index": null, "rendered_fields": {"env": {}, "cwd": null},
        "trigger": null, "triggerer_job": null,
        "dag_version": {
            "id": "01a21a1b-1b3f-75e6-841b-48b49e087e51", "version_number": 1,
            "dag_id": "platform__smoke_test", "bundle_name": "dags-folder", "bundle_version": null,
            "created_at": "2026-11-26T23:05:13.791455Z", "dag_display_name": "platform__smoke_test",
            "bundle_url": null
        }
    })
}

pub(crate) fn import_error(id: i64, filename: &str, stack_trace: &str) -> Value {
    json!({
        "import_error_id": id, "timestamp": "2026-11-26T23:31:07.410521Z",
        "filename": filename, "bundle_name": "dags-folder", "stack_trace": stack_trace
    })
}

/// One line of a task's structured log as the log endpoint returns it.
pub(crate) fn log_event(timestamp: &str, event: &str, logger: &str) -> Value {
    json!({
        "timestamp": timestamp, "event": event, "level": "info", "dag_id": "platform__smoke_test",
        "map_index": -1, "try_number": 1, "run_id": "olo-test-1",
        "ti_id": "01a21a1b-4073-7a55-901d-c38fe45d0f43", "task_id": "check", "logger": logger,
        "filename": "subprocess.py", "lineno": 92
    })
}

/// An error body Airflow's database error handlers answer with.
pub(crate) fn database_error(reason: &str) -> Value {
    json!({"detail": {
        "reason": reason, "statement": "hidden", "orig_error": "hidden",
        "message": "Serious error when handling your request. Check logs for more details - you will find it in api server when you look for ID KqJnFzYxRw"
    }})
}

/// Run `olo-test-1` for 2026-03-01 (midnight UTC) with this conf and no note.
pub(crate) fn new_run(conf: &Value) -> olo_reconciler::targets::airflow::NewDagRun<'_> {
    olo_reconciler::targets::airflow::NewDagRun {
        run_id: "olo-test-1",
        logical_date: time("2026-03-01T00:00:00Z").unwrap(),
        conf,
        note: None,
    }
}

/// A backfill of two days as Airflow 3.3.2 answered its creation (olo's e2e run).
pub(crate) fn daily_backfill() -> Value {
    json!({
        "id": 1, "dag_id": "e2e__daily", "from_date": "2026-02-01T00:00:00Z",
        "to_date": "2026-02-02T00:00:00Z",
        "dag_run_conf": {"greeting": "backfilled",
                         "olo": {"triggered_by": "ci-bot", "trigger": "backfill", "revision": null}},
        "is_paused": false, "reprocess_behavior": "none", "max_active_runs": 1,
        "created_at": "2026-12-07T17:12:19.837490Z", "completed_at": null,
        "updated_at": "2026-12-07T17:12:19.837490Z", "dag_display_name": "e2e__daily"
    })
}

/// One of that backfill's runs, just created (queued).
pub(crate) fn backfill_run(day: &str) -> Value {
    json!({
        "dag_run_id": format!("backfill__{day}T00:00:00+00:00"), "dag_id": "e2e__daily",
        "logical_date": format!("{day}T00:00:00Z"), "queued_at": "2026-12-07T17:12:19.843501Z",
        "start_date": null, "end_date": null, "duration": null,
        "data_interval_start": format!("{day}T00:00:00Z"),
        "data_interval_end": format!("{day}T00:00:00Z"), "run_after": format!("{day}T00:00:00Z"),
        "last_scheduling_decision": null, "run_type": "backfill", "state": "queued",
        "triggered_by": "backfill", "triggering_user_name": "admin",
        "conf": {"greeting": "backfilled"}, "note": null, "dag_versions": [],
        "bundle_version": null, "dag_display_name": "e2e__daily",
        "partition_key": null, "partition_date": null
    })
}
