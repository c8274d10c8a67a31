//! The times the store assigns: stamped by one clock, the application's, on both backends, and
//! kept to the microsecond so that a time read back is the time stored.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use olo_reconciler::store::{RunUpdate, Store};
use serde_json::json;

use super::fixtures::{audit_entry, new_run, revision, tick};

pub async fn stamps_are_the_application_clock_to_the_microsecond(store: &dyn Store) {
    // The store keeps microseconds: the clock's reading before, truncated, is a lower bound.
    let before = Utc::now().trunc_subsecs(6);
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    tick().await;
    let plan = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    store.finish_plan(plan, "applied", None).await.unwrap();
    tick().await;
    store
        .append_audit(&audit_entry("apply", "main"))
        .await
        .unwrap();
    tick().await;
    let run = store
        .insert_run(&new_run("sales", "orders", "r1"))
        .await
        .unwrap();
    tick().await;
    let update = RunUpdate {
        state: "running".to_string(),
        logical_date: None,
        started_at: None,
        ended_at: None,
    };
    store.update_run(run.id, &update).await.unwrap();
    let after = Utc::now();

    let seen_at = store.revision("main", "a1").await.unwrap().unwrap().seen_at;
    let plan = store.plans("main", "a1").await.unwrap().remove(0);
    let audit_at = store.audit(1, None).await.unwrap()[0].at;
    let run = store.run(run.id).await.unwrap().unwrap();
    let finished_at = plan.finished_at.expect("a finished plan has finished_at");

    let stamps: [(&str, DateTime<Utc>); 6] = [
        ("revision seen_at", seen_at),
        ("plan created_at", plan.created_at),
        ("plan finished_at", finished_at),
        ("audit at", audit_at),
        ("run created_at", run.created_at),
        ("run updated_at", run.updated_at),
    ];
    for (what, time) in stamps {
        assert!(
            before <= time && time <= after,
            "{what} = {time} is not between {before} and {after}: not this process's clock"
        );
        assert_eq!(
            time,
            time.trunc_subsecs(6),
            "{what} keeps more than microseconds"
        );
    }
    // One clock, read in call order.
    assert!(
        stamps.windows(2).all(|w| w[0].1 <= w[1].1),
        "stamps out of call order: {stamps:?}"
    );
    assert!(run.created_at < run.updated_at);

    // Read back exactly: each stamp is a cursor that excludes its own row and no other.
    let just_after = seen_at + Duration::microseconds(1);
    assert!(store
        .revisions("main", 10, Some(seen_at))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .revisions("main", 10, Some(just_after))
            .await
            .unwrap()
            .len(),
        1
    );
    let mut filter = olo_reconciler::store::RunFilter {
        since: Some(run.created_at),
        ..Default::default()
    };
    assert_eq!(store.count_runs(&filter).await.unwrap(), 1);
    filter.since = Some(run.created_at + Duration::microseconds(1));
    assert_eq!(store.count_runs(&filter).await.unwrap(), 0);
}
