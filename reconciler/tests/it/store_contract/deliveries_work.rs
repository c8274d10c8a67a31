//! Webhook deliveries and the work queue.

use olo_reconciler::store::Store;
use serde_json::json;

pub async fn record_delivery_is_true_once_per_delivery_id(store: &dyn Store) {
    assert!(store.record_delivery("d-1", "push", None).await.unwrap());
    assert!(!store.record_delivery("d-1", "push", None).await.unwrap());
    assert!(!store
        .record_delivery("d-1", "pull_request", None)
        .await
        .unwrap());
    assert!(store.record_delivery("d-2", "push", None).await.unwrap());
}

/// Pruning forgets the deliveries received before the cut, and only those: a pruned id is new
/// again, a kept one still a repeat.
pub async fn prune_deliveries_forgets_only_the_older_ones(store: &dyn Store) {
    assert!(store.record_delivery("p-old", "push", None).await.unwrap());
    let cut = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(store.record_delivery("p-new", "push", None).await.unwrap());
    assert_eq!(store.prune_deliveries(cut).await.unwrap(), 1);
    assert_eq!(store.prune_deliveries(cut).await.unwrap(), 0);
    assert!(store.record_delivery("p-old", "push", None).await.unwrap());
    assert!(!store.record_delivery("p-new", "push", None).await.unwrap());
}

/// A delivery and its work are one write: a new delivery queues its work, a redelivery queues
/// nothing more, and concurrent redeliveries queue it once.
pub async fn a_delivery_and_its_work_are_recorded_together(store: &dyn Store) {
    let plan = json!({ "number": 7, "head_sha": "abc" });
    assert!(store
        .record_delivery("w-1", "pull_request", Some(("plan", &plan)))
        .await
        .unwrap());
    assert!(!store
        .record_delivery("w-1", "pull_request", Some(("plan", &plan)))
        .await
        .unwrap());
    let push = json!({ "reason": "push" });
    let (a, b, c) = tokio::join!(
        store.record_delivery("w-2", "push", Some(("reconcile", &push))),
        store.record_delivery("w-2", "push", Some(("reconcile", &push))),
        store.record_delivery("w-2", "push", Some(("reconcile", &push))),
    );
    let new = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(new.iter().filter(|n| **n).count(), 1, "{new:?}");
    let work = store.take_work(10).await.unwrap();
    assert_eq!(
        work,
        [("plan".to_string(), plan), ("reconcile".to_string(), push)]
    );
}

pub async fn work_is_taken_once_oldest_first(store: &dyn Store) {
    assert!(store.take_work(10).await.unwrap().is_empty());
    for n in 0..25 {
        store
            .push_work(
                if n % 2 == 0 { "reconcile" } else { "plan" },
                &json!({ "n": n }),
            )
            .await
            .unwrap();
    }
    let first = store.take_work(5).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|(_, p)| p["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(first[0].0, "reconcile");
    assert_eq!(first[1].0, "plan");
    // Takers racing: every piece goes to exactly one of them.
    let (a, b, c) = tokio::join!(store.take_work(7), store.take_work(7), store.take_work(7));
    let mut seen: Vec<i64> = [a.unwrap(), b.unwrap(), c.unwrap()]
        .into_iter()
        .flatten()
        .map(|(_, p)| p["n"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (5..25).collect::<Vec<_>>());
    assert!(store.take_work(10).await.unwrap().is_empty());
}

pub async fn record_delivery_is_race_safe(store: &dyn Store) {
    for round in 0..5 {
        let id = format!("race-{round}");
        let id = id.as_str();
        let results = tokio::join!(
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
            store.record_delivery(id, "push", None),
        );
        let results = [
            results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
        ];
        let new = results
            .into_iter()
            .map(|r| r.expect("record_delivery"))
            .filter(|&new| new)
            .count();
        assert_eq!(
            new, 1,
            "exactly one of 8 concurrent deliveries of {id} is new"
        );
    }
}
