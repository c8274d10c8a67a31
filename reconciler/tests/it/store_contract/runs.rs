//! Runs and task instances.

use chrono::{DateTime, TimeZone, Utc};
use olo_reconciler::store::{
    is_terminal_run_state, NewRun, Run, RunFilter, RunTrigger, RunUpdate, Store, TaskInstanceRow,
};
use serde_json::json;

use super::fixtures::{
    assert_query_error, assert_recent, at, new_run, run_ids, run_in_state, task_instance, tick,
};

pub async fn insert_run_stores_every_field(store: &dyn Store) {
    let conf = json!({
        "full_refresh": true,
        "date": "2024-05-01",
        "tables": ["orders", "refunds"],
        "limits": {"rows": 9_007_199_254_740_993_i64, "ratio": 0.25},
        "note": "naïve — \"quoted\" ✓",
    });
    let new = NewRun {
        trigger: RunTrigger::Commit,
        triggered_by: Some("Ada Lovelace <ada@example.com>".to_string()),
        revision: Some("b2c3".to_string()),
        conf: conf.clone(),
        ..new_run("sales", "orders", "manual__2024-05-01T12:00:00+00:00")
    };
    let run = store.insert_run(&new).await.unwrap();

    assert_eq!(run.workspace, "sales");
    assert_eq!(run.job, "orders");
    assert_eq!(run.dag_id, "sales__orders");
    assert_eq!(run.airflow_run_id, "manual__2024-05-01T12:00:00+00:00");
    assert_eq!(run.state, "queued");
    assert_eq!(run.trigger, RunTrigger::Commit);
    assert_eq!(run.triggered_by, new.triggered_by);
    assert_eq!(run.revision, new.revision);
    assert_eq!(run.conf, conf);
    assert_eq!(
        (run.logical_date, run.started_at, run.ended_at),
        (None, None, None)
    );
    assert_recent(run.created_at, "created_at");
    assert_eq!(run.updated_at, run.created_at);
    assert_eq!(store.run(run.id).await.unwrap(), Some(run.clone()));

    let scheduled = NewRun {
        trigger: RunTrigger::Schedule,
        triggered_by: None,
        revision: None,
        ..new_run("sales", "orders", "scheduled__2024-05-01T00:00:00+00:00")
    };
    let second = store.insert_run(&scheduled).await.unwrap();
    assert!(second.id > run.id, "ids {} then {}", run.id, second.id);
    let read = store.run(second.id).await.unwrap().unwrap();
    assert_eq!(read.trigger, RunTrigger::Schedule);
    assert_eq!(read.triggered_by, None);
    assert_eq!(read.revision, None);
    assert_eq!(read.conf, json!({}));

    let api = store
        .insert_run(&new_run("sales", "orders", "manual__3"))
        .await
        .unwrap();
    assert_eq!(api.trigger, RunTrigger::Api);
}

pub async fn insert_run_is_idempotent_on_dag_id_and_airflow_run_id(store: &dyn Store) {
    let first = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    let running = RunUpdate {
        state: "running".to_string(),
        logical_date: Some(at(5)),
        started_at: Some(at(6)),
        ended_at: None,
    };
    store.update_run(first.id, &running).await.unwrap();
    let stored = store.run(first.id).await.unwrap().unwrap();

    tick().await;
    let again = NewRun {
        workspace: "ops".to_string(),
        job: "other".to_string(),
        state: "success".to_string(),
        trigger: RunTrigger::Schedule,
        triggered_by: None,
        revision: Some("ffff".to_string()),
        conf: json!({"full_refresh": true}),
        ..new_run("sales", "orders", "manual__1")
    };
    assert_eq!(store.insert_run(&again).await.unwrap(), stored);
    assert_eq!(store.run(first.id).await.unwrap(), Some(stored));
    assert_eq!(
        store
            .runs(&RunFilter::default(), 10, None)
            .await
            .unwrap()
            .len(),
        1
    );

    // The same Airflow run id in another DAG is another run.
    let other_dag = store
        .insert_run(&new_run("sales", "refunds", "manual__1"))
        .await
        .unwrap();
    assert_ne!(other_dag.id, first.id);
    assert_eq!(other_dag.dag_id, "sales__refunds");
    assert_eq!(other_dag.state, "queued");
}

pub async fn insert_run_refuses_a_conf_that_is_not_an_object(store: &dyn Store) {
    for conf in [json!([1, 2]), json!("x"), json!(null), json!(3)] {
        let run = NewRun {
            conf: conf.clone(),
            ..new_run("sales", "orders", "manual__1")
        };
        assert_query_error(store.insert_run(&run).await, "insert_run");
    }
    assert!(store
        .runs(&RunFilter::default(), 10, None)
        .await
        .unwrap()
        .is_empty());
}

pub async fn unknown_run_is_none(store: &dyn Store) {
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    assert_eq!(store.run(run.id + 1).await.unwrap(), None);
    assert_eq!(store.run(-1).await.unwrap(), None);
}

/// A run Airflow refused to start is removed; the others stay.
pub async fn delete_run_removes_that_run_only(store: &dyn Store) {
    let kept = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    let refused = store
        .insert_run(&new_run("sales", "orders", "manual__2"))
        .await
        .unwrap();
    store.delete_run(refused.id).await.unwrap();
    assert_eq!(store.run(refused.id).await.unwrap(), None);
    assert_eq!(store.run(kept.id).await.unwrap(), Some(kept));
}

pub async fn update_run_replaces_state_and_times(store: &dyn Store) {
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    let other = store
        .insert_run(&new_run("sales", "orders", "manual__2"))
        .await
        .unwrap();
    tick().await;

    let running = RunUpdate {
        state: "running".to_string(),
        logical_date: Some(at(0)),
        // Stored to the microsecond, as every timestamp.
        started_at: Some(Utc.timestamp_opt(1_714_564_801, 123_456_789).unwrap()),
        ended_at: None,
    };
    store.update_run(run.id, &running).await.unwrap();
    let read = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(read.state, "running");
    assert_eq!(read.logical_date, Some(at(0)));
    assert_eq!(
        read.started_at,
        Some(Utc.timestamp_opt(1_714_564_801, 123_456_000).unwrap())
    );
    assert_eq!(read.ended_at, None);
    assert_eq!(read.created_at, run.created_at);
    assert!(read.updated_at > run.updated_at, "updated_at moved on");
    assert_recent(read.updated_at, "updated_at");
    // Everything else is as inserted.
    let unchanged = Run {
        state: run.state.clone(),
        logical_date: None,
        started_at: None,
        updated_at: run.updated_at,
        ..read.clone()
    };
    assert_eq!(unchanged, run);

    tick().await;
    let succeeded = RunUpdate {
        state: "success".to_string(),
        ended_at: Some(at(9)),
        ..running.clone()
    };
    store.update_run(run.id, &succeeded).await.unwrap();
    let done = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(done.state, "success");
    assert_eq!(done.ended_at, Some(at(9)));
    assert!(done.updated_at > read.updated_at);

    // The update replaces: times it leaves out are cleared.
    let cleared = RunUpdate {
        state: "queued".to_string(),
        logical_date: None,
        started_at: None,
        ended_at: None,
    };
    store.update_run(run.id, &cleared).await.unwrap();
    let done = store.run(run.id).await.unwrap().unwrap();
    assert_eq!(done.state, "queued");
    assert_eq!(
        (done.logical_date, done.started_at, done.ended_at),
        (None, None, None)
    );

    assert_eq!(store.run(other.id).await.unwrap(), Some(other));
}

pub async fn update_run_of_unknown_run_fails(store: &dyn Store) {
    let update = RunUpdate {
        state: "running".to_string(),
        logical_date: None,
        started_at: None,
        ended_at: None,
    };
    assert_query_error(store.update_run(424242, &update).await, "update_run");
}

pub async fn runs_are_newest_first_with_limit_and_before_id(store: &dyn Store) {
    for n in 0..5 {
        store
            .insert_run(&new_run("sales", "orders", &format!("r{n}")))
            .await
            .unwrap();
    }
    let all = RunFilter::default();

    let listed = store.runs(&all, 10, None).await.unwrap();
    assert_eq!(run_ids(&listed), ["r4", "r3", "r2", "r1", "r0"]);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id));

    let page1 = store.runs(&all, 2, None).await.unwrap();
    assert_eq!(run_ids(&page1), ["r4", "r3"]);
    let page2 = store.runs(&all, 2, Some(page1[1].id)).await.unwrap();
    assert_eq!(run_ids(&page2), ["r2", "r1"]);
    let page3 = store.runs(&all, 2, Some(page2[1].id)).await.unwrap();
    assert_eq!(run_ids(&page3), ["r0"]);
    assert!(store
        .runs(&all, 2, Some(page3[0].id))
        .await
        .unwrap()
        .is_empty());
    assert!(store.runs(&all, 0, None).await.unwrap().is_empty());
}

pub async fn runs_filters_are_anded(store: &dyn Store) {
    let runs = [
        ("sales", "orders", "s-o-1", "success"),
        ("sales", "refunds", "s-r-1", "failed"),
        ("ops", "orders", "o-o-1", "success"),
        ("sales", "orders", "s-o-2", "running"),
        ("ops", "cleanup", "o-c-1", "running"),
        ("sales", "orders", "s-o-3", "success"),
    ];
    for (workspace, job, airflow_run_id, state) in runs {
        let run = store
            .insert_run(&new_run(workspace, job, airflow_run_id))
            .await
            .unwrap();
        let update = RunUpdate {
            state: state.to_string(),
            logical_date: None,
            started_at: None,
            ended_at: None,
        };
        store.update_run(run.id, &update).await.unwrap();
    }
    let filter = |workspace: Option<&str>, job: Option<&str>, state: Option<&str>| RunFilter {
        workspace: workspace.map(str::to_string),
        job: job.map(str::to_string),
        state: state.map(str::to_string),
        ..RunFilter::default()
    };
    let list = |filter: RunFilter| async move { store.runs(&filter, 10, None).await.unwrap() };

    assert_eq!(
        run_ids(&list(filter(Some("sales"), None, None)).await),
        ["s-o-3", "s-o-2", "s-r-1", "s-o-1"]
    );
    assert_eq!(
        run_ids(&list(filter(Some("sales"), Some("orders"), None)).await),
        ["s-o-3", "s-o-2", "s-o-1"]
    );
    // A job name alone matches it in every workspace.
    assert_eq!(
        run_ids(&list(filter(None, Some("orders"), None)).await),
        ["s-o-3", "s-o-2", "o-o-1", "s-o-1"]
    );
    // Runs of any of some workspaces (what a caller may see), none of none.
    let among = |workspaces: &[&str]| RunFilter {
        workspaces: Some(workspaces.iter().map(|w| w.to_string()).collect()),
        job: Some("orders".into()),
        ..RunFilter::default()
    };
    assert_eq!(
        run_ids(&list(among(&["sales", "nowhere"])).await),
        ["s-o-3", "s-o-2", "s-o-1"]
    );
    assert_eq!(
        run_ids(&list(among(&["sales", "ops"])).await),
        ["s-o-3", "s-o-2", "o-o-1", "s-o-1"]
    );
    assert!(list(among(&[])).await.is_empty());
    assert_eq!(store.count_runs(&among(&["sales"])).await.unwrap(), 3);
    assert_eq!(
        run_ids(&list(filter(None, None, Some("running"))).await),
        ["o-c-1", "s-o-2"]
    );
    assert_eq!(
        run_ids(&list(filter(Some("sales"), Some("orders"), Some("success"))).await),
        ["s-o-3", "s-o-1"]
    );
    assert_eq!(
        run_ids(&list(filter(Some("ops"), None, Some("success"))).await),
        ["o-o-1"]
    );
    assert!(list(filter(Some("ops"), Some("refunds"), None))
        .await
        .is_empty());
    assert!(list(filter(Some("Sales"), None, None)).await.is_empty());

    // Counts follow the same filter.
    assert_eq!(
        store
            .count_runs(&filter(Some("sales"), None, None))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store
            .count_runs(&filter(None, Some("orders"), Some("success")))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .count_runs(&filter(Some("nope"), None, None))
            .await
            .unwrap(),
        0
    );

    // The cursor pages within the filter.
    let sales_orders = filter(Some("sales"), Some("orders"), None);
    let page1 = store.runs(&sales_orders, 2, None).await.unwrap();
    assert_eq!(run_ids(&page1), ["s-o-3", "s-o-2"]);
    let page2 = store
        .runs(&sales_orders, 2, Some(page1[1].id))
        .await
        .unwrap();
    assert_eq!(run_ids(&page2), ["s-o-1"]);
}

pub async fn runs_since_is_a_lower_bound_on_created_at(store: &dyn Store) {
    for n in 0..2 {
        store
            .insert_run(&new_run("sales", "orders", &format!("old{n}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let boundary = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for n in 0..2 {
        store
            .insert_run(&new_run("sales", "orders", &format!("new{n}")))
            .await
            .unwrap();
    }
    let since = |t: DateTime<Utc>, state: Option<&str>| RunFilter {
        since: Some(t),
        state: state.map(str::to_string),
        ..RunFilter::default()
    };
    let listed = store.runs(&since(boundary, None), 10, None).await.unwrap();
    assert_eq!(run_ids(&listed), ["new1", "new0"]);
    assert!(listed.iter().all(|r| r.created_at >= boundary));
    let all = store
        .runs(
            &since(boundary - chrono::Duration::hours(1), None),
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(run_ids(&all), ["new1", "new0", "old1", "old0"]);
    let future = boundary + chrono::Duration::hours(1);
    assert!(store
        .runs(&since(future, None), 10, None)
        .await
        .unwrap()
        .is_empty());
    // ANDed with the other fields, and paged within the window.
    assert!(store
        .runs(&since(boundary, Some("failed")), 10, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.count_runs(&since(boundary, None)).await.unwrap(), 2);
    assert_eq!(store.count_runs(&RunFilter::default()).await.unwrap(), 4);
    assert_eq!(store.count_runs(&since(future, None)).await.unwrap(), 0);
    let page1 = store.runs(&since(boundary, None), 1, None).await.unwrap();
    let page2 = store
        .runs(&since(boundary, None), 1, Some(page1[0].id))
        .await
        .unwrap();
    assert_eq!(run_ids(&page2), ["new0"]);
    assert!(store
        .runs(&since(boundary, None), 1, Some(page2[0].id))
        .await
        .unwrap()
        .is_empty());
}

pub async fn active_runs_are_the_non_terminal_ones_oldest_first(store: &dyn Store) {
    assert!(store.active_runs().await.unwrap().is_empty());
    let states = ["running", "success", "queued", "failed", "", "running"];
    let mut runs = Vec::new();
    for (n, state) in states.into_iter().enumerate() {
        runs.push(run_in_state(store, &format!("r{n}"), state).await);
    }

    let active = store.active_runs().await.unwrap();
    assert_eq!(run_ids(&active), ["r0", "r2", "r4", "r5"]);
    assert!(active.iter().all(|r| !is_terminal_run_state(&r.state)));
    assert_eq!(active[0], runs[0], "whole rows");

    // A run that ends is no longer followed.
    let ended = RunUpdate {
        state: "failed".to_string(),
        logical_date: None,
        started_at: Some(at(1)),
        ended_at: Some(at(2)),
    };
    store.update_run(runs[2].id, &ended).await.unwrap();
    assert_eq!(
        run_ids(&store.active_runs().await.unwrap()),
        ["r0", "r4", "r5"]
    );
}

pub async fn run_counts_are_per_state_sorted_bytewise(store: &dyn Store) {
    assert!(store.run_counts().await.unwrap().is_empty());
    // "Unknown" sorts before "failed" by bytes, after "success" in an ICU locale.
    let states = [
        "success", "running", "success", "failed", "queued", "Unknown", "running", "", "success",
    ];
    for (n, state) in states.into_iter().enumerate() {
        run_in_state(store, &format!("r{n}"), state).await;
    }

    let counts = store.run_counts().await.unwrap();
    let expected: Vec<(String, i64)> = [
        ("", 1),
        ("Unknown", 1),
        ("failed", 1),
        ("queued", 1),
        ("running", 2),
        ("success", 3),
    ]
    .into_iter()
    .map(|(state, n)| (state.to_string(), n))
    .collect();
    assert_eq!(counts, expected);
}

pub async fn upsert_task_instances_updates_a_try_and_adds_new_ones(store: &dyn Store) {
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    let other = store
        .insert_run(&new_run("sales", "orders", "manual__2"))
        .await
        .unwrap();

    let extract = TaskInstanceRow {
        state: Some("running".to_string()),
        started_at: Some(at(1)),
        ..task_instance("extract", -1, 1)
    };
    let load = task_instance("load", -1, 1);
    store
        .upsert_task_instances(run.id, &[extract.clone(), load.clone()])
        .await
        .unwrap();
    store
        .upsert_task_instances(other.id, &[task_instance("extract", -1, 1)])
        .await
        .unwrap();
    assert_eq!(
        store.task_instances(run.id).await.unwrap(),
        [extract.clone(), load.clone()]
    );

    // The first try failed (updated in place) and a second one started (added).
    let failed = TaskInstanceRow {
        state: Some("failed".to_string()),
        ended_at: Some(Utc.timestamp_opt(1_714_564_803, 500_000_999).unwrap()),
        duration_seconds: Some(2.5),
        ..extract.clone()
    };
    let retry = TaskInstanceRow {
        try_number: 2,
        started_at: Some(at(4)),
        ..extract.clone()
    };
    store
        .upsert_task_instances(run.id, &[failed.clone(), retry.clone()])
        .await
        .unwrap();

    let read = store.task_instances(run.id).await.unwrap();
    let failed_read = TaskInstanceRow {
        ended_at: Some(Utc.timestamp_opt(1_714_564_803, 500_000_000).unwrap()),
        ..failed
    };
    assert_eq!(read, [failed_read, retry, load]);

    // Fields go back to empty too: the row is replaced, not merged.
    let reset = task_instance("extract", -1, 1);
    store
        .upsert_task_instances(run.id, std::slice::from_ref(&reset))
        .await
        .unwrap();
    let read = store.task_instances(run.id).await.unwrap();
    assert_eq!(read.len(), 3);
    assert!(read.contains(&reset), "{read:?}");

    // Nothing to write is not an error; other runs are untouched.
    store.upsert_task_instances(run.id, &[]).await.unwrap();
    assert_eq!(store.task_instances(run.id).await.unwrap().len(), 3);
    assert_eq!(
        store.task_instances(other.id).await.unwrap(),
        [task_instance("extract", -1, 1)]
    );
}

pub async fn upsert_task_instances_of_unknown_run_fails_and_writes_nothing(store: &dyn Store) {
    let tis = [
        task_instance("extract", -1, 1),
        task_instance("load", -1, 1),
    ];
    assert_query_error(
        store.upsert_task_instances(424242, &tis).await,
        "upsert_task_instances",
    );
    assert!(store.task_instances(424242).await.unwrap().is_empty());
}

pub async fn task_instances_are_sorted_by_start_then_task_map_index_and_try(store: &dyn Store) {
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    let started = |task_id: &str, map_index, try_number, second| TaskInstanceRow {
        started_at: Some(at(second)),
        ..task_instance(task_id, map_index, try_number)
    };
    // In the order they are expected back.
    let expected = [
        started("transform", -1, 1, 1),
        started("extract", -1, 2, 2),
        started("load", -1, 1, 2),
        started("map", 2, 1, 2),
        started("map", 10, 1, 2),
        task_instance("B_report", -1, 1),
        task_instance("a_notify", -1, 1),
        task_instance("map", -1, 1),
        task_instance("map", 3, 1),
        task_instance("map", 3, 2),
        task_instance("map", 3, 10),
        task_instance("ä_archive", -1, 1),
    ];
    let mut scrambled = expected.to_vec();
    scrambled.reverse();
    scrambled.swap(0, 5);
    scrambled.swap(2, 9);
    store
        .upsert_task_instances(run.id, &scrambled)
        .await
        .unwrap();

    assert_eq!(store.task_instances(run.id).await.unwrap(), expected);
}
