//! Revisions and their plans.

use chrono::{TimeZone, Utc};
use olo_reconciler::signature::{Format, Verdict, Verification};
use olo_reconciler::store::{self, NewAudit, RevisionStatus, Store, SyncState};
use serde_json::{json, Value};

use super::fixtures::{
    assert_query_error, assert_recent, audit_entry, branch_status, revision, shas, tick,
};
use super::harness::TestDb;

// ---------------------------------------------------------------------------------------------
// Revisions.

pub async fn record_revision_stores_every_field(store: &dyn Store) {
    let mut rev = revision("main", "a1");
    rev.signed = true;
    rev.signature = Some(signature(Verdict::Verified));
    store.record_revision(&rev).await.unwrap();

    let row = store
        .revision("main", "a1")
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(row.revision, rev);
    assert_eq!(row.status, RevisionStatus::Seen);
    assert_eq!(row.diagnostics, json!([]));
    assert_recent(row.seen_at, "seen_at");
}

pub async fn record_revision_is_idempotent_and_keeps_first_seen_at_and_status(store: &dyn Store) {
    let rev = revision("main", "a1");
    store.record_revision(&rev).await.unwrap();
    let first = store.revision("main", "a1").await.unwrap().unwrap();
    store
        .set_revision_status("main", "a1", RevisionStatus::Applied, &json!([]))
        .await
        .unwrap();

    tick().await;
    let mut again = rev.clone();
    again.message = "a different message".to_string();
    store.record_revision(&again).await.unwrap();

    let row = store.revision("main", "a1").await.unwrap().unwrap();
    assert_eq!(row.seen_at, first.seen_at);
    assert_eq!(row.status, RevisionStatus::Applied);
    assert_eq!(row.revision, rev, "the first record wins");
    assert_eq!(store.revisions("main", 10, None).await.unwrap().len(), 1);

    // Only the signature check follows a later record (the keys changed since).
    again.signature = Some(signature(Verdict::UntrustedKey));
    store.record_revision(&again).await.unwrap();
    let row = store.revision("main", "a1").await.unwrap().unwrap();
    assert_eq!(row.revision.signature, again.signature);
    assert_eq!(row.revision.message, rev.message);
    assert_eq!(row.status, RevisionStatus::Applied);
    assert_eq!(row.seen_at, first.seen_at);
}

fn signature(verdict: Verdict) -> Verification {
    Verification {
        verdict,
        format: Some(Format::Openpgp),
        key: Some("C7257FC515CE66E8C214A91F5D38333DB788BF0F".into()),
        identity: Some("Ada Lovelace <ada@example.com>".into()),
        detail: None,
    }
}

pub async fn same_sha_on_two_branches_is_two_revisions(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    store
        .record_revision(&revision("staging", "a1"))
        .await
        .unwrap();
    store
        .set_revision_status("staging", "a1", RevisionStatus::Invalid, &json!(["bad"]))
        .await
        .unwrap();

    let main = store.revision("main", "a1").await.unwrap().unwrap();
    let staging = store.revision("staging", "a1").await.unwrap().unwrap();
    assert_eq!(main.revision.branch, "main");
    assert_eq!(main.status, RevisionStatus::Seen);
    assert_eq!(staging.revision.branch, "staging");
    assert_eq!(staging.status, RevisionStatus::Invalid);
}

pub async fn unknown_revision_is_none(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    assert_eq!(store.revision("main", "b2").await.unwrap(), None);
    assert_eq!(store.revision("other", "a1").await.unwrap(), None);
}

pub async fn set_revision_status_sets_status_and_diagnostics(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let diagnostics = json!([
        {"file": "jobs/orders.yaml", "line": 3, "column": 7, "message": "unknown field `shedule`"}
    ]);
    store
        .set_revision_status("main", "a1", RevisionStatus::Invalid, &diagnostics)
        .await
        .unwrap();
    let row = store.revision("main", "a1").await.unwrap().unwrap();
    assert_eq!(row.status, RevisionStatus::Invalid);
    assert_eq!(row.diagnostics, diagnostics);

    for status in [
        RevisionStatus::Applying,
        RevisionStatus::Failed,
        RevisionStatus::Skipped,
        RevisionStatus::Applied,
        RevisionStatus::Seen,
    ] {
        store
            .set_revision_status("main", "a1", status, &json!([]))
            .await
            .unwrap();
        let row = store.revision("main", "a1").await.unwrap().unwrap();
        assert_eq!(row.status, status);
        assert_eq!(row.diagnostics, json!([]));
    }
}

pub async fn set_revision_status_of_unknown_revision_fails(store: &dyn Store) {
    let result = store
        .set_revision_status("main", "nope", RevisionStatus::Applied, &json!([]))
        .await;
    assert_query_error(result, "set_revision_status");
}

pub async fn revisions_are_newest_first_with_limit_and_before_cursor(store: &dyn Store) {
    for sha in ["a", "b", "c", "d", "e"] {
        store.record_revision(&revision("main", sha)).await.unwrap();
        tick().await;
    }

    let all = store.revisions("main", 10, None).await.unwrap();
    assert_eq!(shas(&all), ["e", "d", "c", "b", "a"]);
    assert!(all.windows(2).all(|w| w[0].seen_at > w[1].seen_at));

    let page1 = store.revisions("main", 2, None).await.unwrap();
    assert_eq!(shas(&page1), ["e", "d"]);
    let page2 = store
        .revisions("main", 2, Some(page1[1].seen_at))
        .await
        .unwrap();
    assert_eq!(shas(&page2), ["c", "b"]);
    let page3 = store
        .revisions("main", 2, Some(page2[1].seen_at))
        .await
        .unwrap();
    assert_eq!(shas(&page3), ["a"]);
    let page4 = store
        .revisions("main", 2, Some(page3[0].seen_at))
        .await
        .unwrap();
    assert!(page4.is_empty());

    assert!(store.revisions("main", 0, None).await.unwrap().is_empty());
}

pub async fn revisions_are_per_branch(store: &dyn Store) {
    store
        .record_revision(&revision("main", "m1"))
        .await
        .unwrap();
    store
        .record_revision(&revision("staging", "s1"))
        .await
        .unwrap();
    store
        .record_revision(&revision("main", "m2"))
        .await
        .unwrap();

    let main = store.revisions("main", 10, None).await.unwrap();
    assert_eq!(shas(&main), ["m2", "m1"]);
    let staging = store.revisions("staging", 10, None).await.unwrap();
    assert_eq!(shas(&staging), ["s1"]);
    assert!(store.revisions("nope", 10, None).await.unwrap().is_empty());
}

pub async fn timestamps_keep_microseconds(store: &dyn Store) {
    let mut rev = revision("main", "a1");
    rev.author.time = Utc.timestamp_opt(1_714_564_801, 123_456_789).unwrap();
    rev.committer.time = Utc.timestamp_opt(1_714_564_802, 999_999_999).unwrap();
    store.record_revision(&rev).await.unwrap();

    let row = store.revision("main", "a1").await.unwrap().unwrap();
    assert_eq!(
        row.revision.author.time,
        Utc.timestamp_opt(1_714_564_801, 123_456_000).unwrap()
    );
    assert_eq!(
        row.revision.committer.time,
        Utc.timestamp_opt(1_714_564_802, 999_999_000).unwrap()
    );

    let mut status = branch_status("main", SyncState::Ready);
    status.updated_at = Utc.timestamp_opt(1_714_564_803, 5_000).unwrap();
    store.set_branch_status(&status).await.unwrap();
    let read = store.branch_status("main").await.unwrap().unwrap();
    assert_eq!(read.updated_at, status.updated_at);

    // What the store returns it takes back: a cursor read from a row excludes exactly that row.
    let rows = store
        .revisions("main", 10, Some(row.seen_at))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

pub async fn revisions_with_equal_seen_at_are_newest_inserted_first(db: &TestDb) {
    let store = db.open().await;
    for sha in ["a", "b", "c"] {
        store.record_revision(&revision("main", sha)).await.unwrap();
        tick().await;
    }
    db.execute(
        "UPDATE revisions SET seen_at = (SELECT seen_at FROM revisions WHERE sha = 'a') \
         WHERE sha IN ('b', 'c')",
    )
    .await
    .expect("set equal seen_at");

    let all = store.revisions("main", 10, None).await.unwrap();
    assert_eq!(shas(&all), ["c", "b", "a"]);
    assert!(all.iter().all(|r| r.seen_at == all[0].seen_at));
    assert_eq!(
        shas(&store.revisions("main", 2, None).await.unwrap()),
        ["c", "b"]
    );
}

// ---------------------------------------------------------------------------------------------
// Plans.

pub async fn insert_plan_returns_increasing_ids_and_plans_are_newest_first(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let summary = json!({"create": n, "update": 0, "delete": 0, "unchanged": 1});
        let body = json!({"actions": [], "n": n});
        ids.push(
            store
                .insert_plan("main", "a1", &summary, &body)
                .await
                .unwrap(),
        );
        tick().await;
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");

    let plans = store.plans("main", "a1").await.unwrap();
    let listed: Vec<i64> = plans.iter().map(|p| p.id).collect();
    assert_eq!(listed, ids.iter().rev().copied().collect::<Vec<_>>());
    assert!(plans.windows(2).all(|w| w[0].created_at >= w[1].created_at));

    let newest = &plans[0];
    assert_eq!(newest.branch, "main");
    assert_eq!(newest.sha, "a1");
    assert_eq!(
        newest.summary,
        json!({"create": 2, "update": 0, "delete": 0, "unchanged": 1})
    );
    assert_eq!(newest.body, json!({"actions": [], "n": 2}));
    assert_recent(newest.created_at, "created_at");
    assert_eq!(newest.outcome, None);
    assert_eq!(newest.error, None);
    assert_eq!(newest.finished_at, None);
}

pub async fn finish_plan_sets_outcome_error_and_finished_at(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let failed = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    let applied = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    tick().await;
    store
        .finish_plan(
            failed,
            "failed",
            Some("could not deploy DAG sales__orders_daily"),
        )
        .await
        .unwrap();
    store.finish_plan(applied, "applied", None).await.unwrap();

    let plans = store.plans("main", "a1").await.unwrap();
    let get = |id| plans.iter().find(|p| p.id == id).unwrap();
    let failed = get(failed);
    assert_eq!(failed.outcome.as_deref(), Some("failed"));
    assert_eq!(
        failed.error.as_deref(),
        Some("could not deploy DAG sales__orders_daily")
    );
    let finished_at = failed.finished_at.expect("finished_at set");
    assert!(finished_at > failed.created_at);
    assert_recent(finished_at, "finished_at");

    let applied = get(applied);
    assert_eq!(applied.outcome.as_deref(), Some("applied"));
    assert_eq!(applied.error, None);
    assert!(applied.finished_at.is_some());
}

pub async fn finish_plan_of_unknown_plan_fails(store: &dyn Store) {
    assert_query_error(
        store.finish_plan(424242, "applied", None).await,
        "finish_plan",
    );
}

pub async fn finish_plan_refuses_unknown_outcome(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let id = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    assert_query_error(store.finish_plan(id, "exploded", None).await, "finish_plan");
    let plans = store.plans("main", "a1").await.unwrap();
    assert_eq!(plans[0].outcome, None);
}

pub async fn insert_plan_for_unrecorded_revision_fails(store: &dyn Store) {
    let result = store
        .insert_plan("main", "never-recorded", &json!({}), &json!({}))
        .await;
    assert_query_error(result, "insert_plan");
}

pub async fn plans_are_per_revision(store: &dyn Store) {
    for (branch, sha) in [("main", "a1"), ("main", "b2"), ("staging", "a1")] {
        store.record_revision(&revision(branch, sha)).await.unwrap();
    }
    let a1 = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    let b2 = store
        .insert_plan("main", "b2", &json!({}), &json!({}))
        .await
        .unwrap();

    let ids = |plans: Vec<store::PlanRow>| plans.iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(store.plans("main", "a1").await.unwrap()), [a1]);
    assert_eq!(ids(store.plans("main", "b2").await.unwrap()), [b2]);
    assert!(store.plans("staging", "a1").await.unwrap().is_empty());
}

pub async fn newest_plans_give_each_commit_its_newest_plan_in_one_call(store: &dyn Store) {
    for (branch, sha) in [
        ("main", "a1"),
        ("main", "b2"),
        ("main", "c3"),
        ("staging", "a1"),
    ] {
        store.record_revision(&revision(branch, sha)).await.unwrap();
    }
    let old = store
        .insert_plan("main", "a1", &json!({"create": 9}), &json!({}))
        .await
        .unwrap();
    store
        .finish_plan(old, "failed", Some("boom"))
        .await
        .unwrap();
    let newer = store
        .insert_plan("main", "a1", &json!({"create": 1}), &json!({}))
        .await
        .unwrap();
    store.finish_plan(newer, "applied", None).await.unwrap();
    store
        .insert_plan("main", "b2", &json!({"update": 2}), &json!({}))
        .await
        .unwrap();
    store
        .insert_plan("staging", "a1", &json!({"delete": 3}), &json!({}))
        .await
        .unwrap();

    let shas: Vec<String> = ["a1", "b2", "c3", "unknown"].map(String::from).into();
    let mut briefs = store.newest_plans("main", &shas).await.unwrap();
    briefs.sort_by(|a, b| a.sha.cmp(&b.sha));
    let seen: Vec<(&str, Value, Option<&str>)> = briefs
        .iter()
        .map(|b| (b.sha.as_str(), b.summary.clone(), b.outcome.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("a1", json!({"create": 1}), Some("applied")),
            ("b2", json!({"update": 2}), None),
        ]
    );
    assert!(store.newest_plans("main", &[]).await.unwrap().is_empty());
}

pub async fn json_values_round_trip(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let body = json!({
        "text": "naïve — \"quoted\" \\ back\nslash ✓ 🦀",
        "empty": "",
        "null": null,
        "flags": [true, false],
        "numbers": [0, -7, 9_007_199_254_740_993_i64, 1.5, -0.25],
        "nested": {"a": {"b": [[], {}, [1, [2, [3]]]]}},
    });
    let id = store
        .insert_plan("main", "a1", &json!({"create": 1}), &body)
        .await
        .unwrap();
    let plan = store.plans("main", "a1").await.unwrap();
    assert_eq!(plan[0].id, id);
    assert_eq!(plan[0].body, body);

    let entry = NewAudit {
        details: body.clone(),
        ..audit_entry("apply", "main")
    };
    store.append_audit(&entry).await.unwrap();
    assert_eq!(store.audit(1, None).await.unwrap()[0].details, body);
}
