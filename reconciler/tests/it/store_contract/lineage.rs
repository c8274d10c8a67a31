//! Observed lineage: events and their edges.

use chrono::TimeZone;
use olo_reconciler::store::{NewLineageEvent, ObservedEdge, Store};

use super::fixtures::at;

fn lineage_event(key: &str, edges: &[(&str, &str, &str)]) -> NewLineageEvent {
    NewLineageEvent {
        dedupe_key: key.to_string(),
        run_id: Some("01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11".to_string()),
        event_type: Some("COMPLETE".to_string()),
        event_time: at(3),
        job_namespace: Some("default".to_string()),
        job_name: Some("sales__orders.load".to_string()),
        raw: serde_json::json!({"eventType": "COMPLETE", "key": key, "text": "naïve ✓"}),
        edges: edges
            .iter()
            .map(|(job, dataset, direction)| ObservedEdge {
                job_namespace: "sales".to_string(),
                job_name: job.to_string(),
                dataset_namespace: "sales".to_string(),
                dataset_name: dataset.to_string(),
                direction: direction.to_string(),
            })
            .collect(),
    }
}

pub async fn record_lineage_keeps_each_event_once_and_its_edges(store: &dyn Store) {
    assert_eq!(store.record_lineage(&[]).await.unwrap(), Vec::<bool>::new());
    assert!(store.observed_edges().await.unwrap().is_empty());
    let first = [
        lineage_event(
            "a",
            &[
                ("orders", "raw.orders", "in"),
                ("orders", "gold.orders", "out"),
            ],
        ),
        lineage_event("b", &[("orders", "raw.orders", "in")]),
        // The same event twice in one batch: the second is a repeat.
        lineage_event("a", &[("orders", "raw.refunds", "in")]),
    ];
    assert_eq!(
        store.record_lineage(&first).await.unwrap(),
        [true, true, false]
    );
    // Sent again later: nothing new, and the repeat's edges are not recorded.
    let again = [
        lineage_event("b", &[("orders", "raw.other", "in")]),
        lineage_event("c", &[]),
    ];
    assert_eq!(store.record_lineage(&again).await.unwrap(), [false, true]);
    assert_eq!(store.lineage_event_count().await.unwrap(), 3);
    // A DatasetEvent: no run, no job.
    let mut dataset_event = lineage_event("d", &[]);
    (
        dataset_event.run_id,
        dataset_event.job_namespace,
        dataset_event.job_name,
    ) = (None, None, None);
    assert_eq!(
        store.record_lineage(&[dataset_event]).await.unwrap(),
        [true]
    );
    // Read back as received, oldest first, after a cursor.
    let keys = |events: Vec<(i64, serde_json::Value)>| -> Vec<String> {
        events
            .into_iter()
            .map(|(_, raw)| raw["key"].as_str().unwrap().to_string())
            .collect()
    };
    let all = store.lineage_events_after(0, 100).await.unwrap();
    assert_eq!(all[0].1["text"], "naïve ✓");
    let first_id = all[0].0;
    assert_eq!(keys(all), ["a", "b", "c", "d"]);
    assert_eq!(
        keys(store.lineage_events_after(0, 2).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        keys(store.lineage_events_after(first_id, 100).await.unwrap()),
        ["b", "c", "d"]
    );
    let edges: Vec<(String, String)> = store
        .observed_edges()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.dataset_name, e.direction))
        .collect();
    assert_eq!(
        edges,
        [
            ("raw.orders".to_string(), "in".to_string()),
            ("gold.orders".to_string(), "out".to_string()),
        ]
    );
}

/// A `RunEvent` of run `run` at `2024-05-01T00:0<minute>:00Z`.
fn run_event(key: &str, minute: u32, run: Option<&str>) -> NewLineageEvent {
    let time = chrono::Utc
        .with_ymd_and_hms(2024, 5, 1, 0, minute, 0)
        .unwrap();
    NewLineageEvent {
        dedupe_key: key.to_string(),
        run_id: run.map(str::to_string),
        event_type: run.map(|_| "COMPLETE".to_string()),
        event_time: time,
        job_namespace: Some("default".to_string()),
        job_name: Some("sales__orders.load".to_string()),
        raw: serde_json::json!({"key": key}),
        edges: Vec::new(),
    }
}

pub async fn lineage_run_events_pages_by_event_time(store: &dyn Store) {
    use olo_reconciler::store::LineageEventPage;
    let run = Some("01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11");
    // Recorded out of time order; `c2` at the same time as `c`, after it; `job` is static
    // lineage (no run): never listed.
    let events = [
        run_event("c", 3, run),
        run_event("a", 1, run),
        run_event("job", 2, None),
        run_event("b", 2, run),
        run_event("c2", 3, run),
        run_event("d", 4, run),
    ];
    store.record_lineage(&events).await.unwrap();
    let minute = |m: u32| Some(chrono::Utc.with_ymd_and_hms(2024, 5, 1, 0, m, 0).unwrap());
    let page = |after, before, newest_first, limit, offset| LineageEventPage {
        after,
        before,
        newest_first,
        limit,
        offset,
    };
    let keys = |(events, total): (Vec<serde_json::Value>, u64)| -> (Vec<String>, u64) {
        let keys = events
            .into_iter()
            .map(|raw| raw["key"].as_str().unwrap().to_string())
            .collect();
        (keys, total)
    };
    let get =
        |p: LineageEventPage| async move { keys(store.lineage_run_events(&p).await.unwrap()) };
    assert_eq!(
        get(page(None, None, true, 100, 0)).await,
        (
            vec!["d".into(), "c2".into(), "c".into(), "b".into(), "a".into()],
            5
        )
    );
    assert_eq!(
        get(page(None, None, false, 2, 1)).await,
        (vec!["b".into(), "c".into()], 5)
    );
    // `after` is inclusive, `before` is not; the count is the window's.
    assert_eq!(
        get(page(minute(2), minute(4), false, 100, 0)).await,
        (vec!["b".into(), "c".into(), "c2".into()], 3)
    );
    assert_eq!(
        get(page(minute(2), minute(4), true, 1, 1)).await,
        (vec!["c".into()], 3)
    );
    assert_eq!(get(page(minute(5), None, true, 100, 0)).await, (vec![], 0));
    assert_eq!(get(page(None, None, true, 0, 0)).await, (vec![], 5));
    assert_eq!(get(page(None, None, true, 10, 99)).await, (vec![], 5));
}

pub async fn lineage_event_hours_count_run_events_by_hour_and_type(store: &dyn Store) {
    let at = |h: u32, m: u32| chrono::Utc.with_ymd_and_hms(2024, 5, 1, h, m, 0).unwrap();
    let event = |key: &str, h: u32, m: u32, kind: Option<&str>| NewLineageEvent {
        event_type: kind.map(str::to_string),
        event_time: at(h, m),
        run_id: kind.map(|_| format!("01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b{h:02}")),
        ..run_event(key, 0, None)
    };
    store
        .record_lineage(&[
            event("s1", 1, 5, Some("START")),
            event("c1", 1, 59, Some("COMPLETE")),
            event("s2", 1, 30, Some("START")),
            event("f2", 2, 0, Some("FAIL")),
            // Static lineage (no run) is not a run event; 04:00 is past the window.
            event("static", 2, 10, None),
            event("late", 4, 0, Some("START")),
            // Before the window.
            event("early", 0, 59, Some("ABORT")),
        ])
        .await
        .unwrap();
    let hours = store.lineage_event_hours(at(1, 0), at(4, 0)).await.unwrap();
    assert_eq!(
        hours,
        vec![
            (at(1, 0), "COMPLETE".to_string(), 1),
            (at(1, 0), "START".to_string(), 2),
            (at(2, 0), "FAIL".to_string(), 1),
        ]
    );
    assert!(store
        .lineage_event_hours(at(5, 0), at(6, 0))
        .await
        .unwrap()
        .is_empty());
}
