//! Inventory, the audit log and branch status.

use olo_reconciler::store::{self, BranchStatus, NewAudit, Store, SyncState};
use serde_json::json;

use super::fixtures::{assert_recent, at, audit_entry, branch_status, item, revision, tick};
use super::harness::TestDb;

// ---------------------------------------------------------------------------------------------
// Inventory.

pub async fn inventory_is_per_target_and_sorted_by_name_bytewise(store: &dyn Store) {
    let names = [
        "dags/sales__orders_daily.py",
        "dags/B.py",
        "dags/a_b.py",
        "dags/a-b.py",
        "dags/a.py",
        "dags/ä.py",
        "dags/Z.py",
    ];
    for name in names {
        store
            .upsert_inventory(&item("dags", name, "h1", "a1"))
            .await
            .unwrap();
    }
    store
        .upsert_inventory(&item("files", "data/seed.csv", "h2", "a1"))
        .await
        .unwrap();

    let dags = store.inventory("dags").await.unwrap();
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort(); // byte order, whatever the database's locale
    let listed: Vec<&str> = dags.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(listed, expected);
    assert!(dags.iter().all(|i| i.target == "dags"));

    assert_eq!(
        store.inventory("files").await.unwrap(),
        [item("files", "data/seed.csv", "h2", "a1")]
    );
    assert!(store.inventory("nope").await.unwrap().is_empty());
}

pub async fn upsert_inventory_replaces_hash_and_revision(store: &dyn Store) {
    store
        .upsert_inventory(&item("dags", "dags/x.py", "h1", "a1"))
        .await
        .unwrap();
    store
        .upsert_inventory(&item("dags", "dags/x.py", "h2", "b2"))
        .await
        .unwrap();
    assert_eq!(
        store.inventory("dags").await.unwrap(),
        [item("dags", "dags/x.py", "h2", "b2")]
    );
}

pub async fn remove_inventory_deletes_one_item_and_is_idempotent(store: &dyn Store) {
    for name in ["dags/x.py", "dags/y.py"] {
        store
            .upsert_inventory(&item("dags", name, "h", "a1"))
            .await
            .unwrap();
    }
    store
        .upsert_inventory(&item("files", "dags/x.py", "h", "a1"))
        .await
        .unwrap();

    store.remove_inventory("dags", "dags/x.py").await.unwrap();
    assert_eq!(
        store.inventory("dags").await.unwrap(),
        [item("dags", "dags/y.py", "h", "a1")]
    );
    assert_eq!(store.inventory("files").await.unwrap().len(), 1);

    // Removing what is already gone (a retried prune) is not an error.
    store.remove_inventory("dags", "dags/x.py").await.unwrap();
    assert_eq!(store.inventory("dags").await.unwrap().len(), 1);
}

pub async fn inventory_many_upserts_and_removes_thousands_at_once(store: &dyn Store) {
    // More items than one statement takes on SQLite, a name given twice (the last one wins, as
    // if upserted one by one), and an existing item whose hash changes.
    store
        .upsert_inventory(&item("dags", "dags/j0001.py", "old", "a0"))
        .await
        .unwrap();
    let mut items: Vec<_> = (0..2500)
        .map(|n| item("dags", &format!("dags/j{n:04}.py"), "h1", "a1"))
        .collect();
    items.push(item("dags", "dags/j0007.py", "h2", "a2"));
    items.push(item("files", "dags/j0007.py", "h3", "a1"));
    store.upsert_inventory_many(&items).await.unwrap();
    let dags = store.inventory("dags").await.unwrap();
    assert_eq!(dags.len(), 2500);
    assert_eq!(dags[1], item("dags", "dags/j0001.py", "h1", "a1"));
    assert_eq!(dags[7], item("dags", "dags/j0007.py", "h2", "a2"));
    assert_eq!(dags[2499], item("dags", "dags/j2499.py", "h1", "a1"));
    assert_eq!(
        store.inventory("files").await.unwrap(),
        [item("files", "dags/j0007.py", "h3", "a1")]
    );

    // Removing 2,000 of them (and a name that is not there) leaves the other 500, and the
    // same name under another target.
    let mut gone: Vec<String> = (0..2000).map(|n| format!("dags/j{n:04}.py")).collect();
    gone.push("dags/never.py".into());
    store.remove_inventory_many("dags", &gone).await.unwrap();
    let left = store.inventory("dags").await.unwrap();
    assert_eq!(left.len(), 500);
    assert_eq!(left[0].name, "dags/j2000.py");
    assert_eq!(store.inventory("files").await.unwrap().len(), 1);
    store.upsert_inventory_many(&[]).await.unwrap();
    store.remove_inventory_many("dags", &[]).await.unwrap();
    assert_eq!(store.inventory("dags").await.unwrap().len(), 500);
}

// ---------------------------------------------------------------------------------------------
// Audit log.

pub async fn append_audit_returns_increasing_ids(store: &dyn Store) {
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(
            store
                .append_audit(&audit_entry("apply", &format!("job{n}")))
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
}

pub async fn audit_is_newest_first_with_limit_and_before_id(store: &dyn Store) {
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            store
                .append_audit(&audit_entry("apply", &format!("t{n}")))
                .await
                .unwrap(),
        );
        tick().await;
    }
    let targets = |entries: &[store::AuditEntry]| {
        entries.iter().map(|e| e.target.clone()).collect::<Vec<_>>()
    };

    let all = store.audit(100, None).await.unwrap();
    assert_eq!(targets(&all), ["t4", "t3", "t2", "t1", "t0"]);
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at));

    let page1 = store.audit(2, None).await.unwrap();
    assert_eq!(targets(&page1), ["t4", "t3"]);
    let page2 = store.audit(2, Some(page1[1].id)).await.unwrap();
    assert_eq!(targets(&page2), ["t2", "t1"]);
    let page3 = store.audit(2, Some(page2[1].id)).await.unwrap();
    assert_eq!(targets(&page3), ["t0"]);
    assert!(store.audit(2, Some(ids[0])).await.unwrap().is_empty());
    assert!(store.audit(0, None).await.unwrap().is_empty());
}

pub async fn last_audit_is_the_newest_entry_of_an_action(store: &dyn Store) {
    assert_eq!(store.last_audit("drift_repaired").await.unwrap(), None);
    store
        .append_audit(&audit_entry("drift_repaired", "a"))
        .await
        .unwrap();
    let newest = store
        .append_audit(&audit_entry("drift_repaired", "b"))
        .await
        .unwrap();
    store
        .append_audit(&audit_entry("apply", "c"))
        .await
        .unwrap();
    let last = store.last_audit("drift_repaired").await.unwrap().unwrap();
    assert_eq!((last.id, last.target.as_str()), (newest, "b"));
    assert_eq!(
        store.last_audit("apply").await.unwrap().unwrap().target,
        "c"
    );
    assert_eq!(store.last_audit("Apply").await.unwrap(), None);
}

pub async fn audit_keeps_every_field(store: &dyn Store) {
    let entry = NewAudit {
        actor: "api:deploy-bot".to_string(),
        action: "run_trigger".to_string(),
        target: "sales/orders_daily".to_string(),
        revision: Some("a1b2c3".to_string()),
        details: json!({"conf": {"full_refresh": true}}),
    };
    let id = store.append_audit(&entry).await.unwrap();
    store
        .append_audit(&audit_entry("denied", "main"))
        .await
        .unwrap();

    let entries = store.audit(10, None).await.unwrap();
    let read = entries.iter().find(|e| e.id == id).unwrap();
    assert_eq!(read.actor, entry.actor);
    assert_eq!(read.action, entry.action);
    assert_eq!(read.target, entry.target);
    assert_eq!(read.revision, entry.revision);
    assert_eq!(read.details, entry.details);
    assert_recent(read.at, "at");
    assert_eq!(entries[0].revision, None);
}

pub async fn audit_log_refuses_update_and_delete(db: &TestDb) {
    let store = db.open().await;
    store
        .append_audit(&audit_entry("apply", "main"))
        .await
        .unwrap();

    let update = db.execute("UPDATE audit_log SET actor = 'mallory'").await;
    assert!(update.is_err(), "UPDATE audit_log was allowed: {update:?}");
    let delete = db.execute("DELETE FROM audit_log").await;
    assert!(
        delete.is_err(),
        "DELETE FROM audit_log was allowed: {delete:?}"
    );

    let entries = store.audit(10, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "Ada Lovelace <ada@example.com>");
}

// ---------------------------------------------------------------------------------------------
// Emptiness: what `olo serve` asks before it starts (olo_reconciler::adopt).

pub async fn is_empty_until_a_revision_an_inventory_item_or_an_audit_entry(db: &TestDb) {
    let store = db.open().await;
    let empty = || async { store.is_empty().await.unwrap() };
    assert!(empty().await, "a new store");
    // What a daemon records before it reconciles anything does not count.
    store.record_delivery("d1", "push", None).await.unwrap();
    store
        .set_branch_status(&branch_status("main", SyncState::Reconciling))
        .await
        .unwrap();
    assert!(empty().await, "deliveries and branch status");

    store
        .upsert_inventory(&item("files", "dags/x.py", "h1", "a1"))
        .await
        .unwrap();
    assert!(!empty().await, "an inventory item");
    store.remove_inventory("files", "dags/x.py").await.unwrap();
    assert!(empty().await, "the item removed");

    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    assert!(!empty().await, "a revision");
    db.execute("DELETE FROM revisions").await.unwrap();
    assert!(empty().await, "the revision deleted");

    store
        .append_audit(&audit_entry("adopt", "files"))
        .await
        .unwrap();
    assert!(!empty().await, "an audit entry");
}

// ---------------------------------------------------------------------------------------------
// Branch status.

pub async fn branch_status_is_none_until_set(store: &dyn Store) {
    assert_eq!(store.branch_status("main").await.unwrap(), None);
    let status = branch_status("main", SyncState::Reconciling);
    store.set_branch_status(&status).await.unwrap();
    assert_eq!(store.branch_status("main").await.unwrap(), Some(status));
}

pub async fn a_pending_check_is_kept_per_branch_until_forgotten(store: &dyn Store) {
    use olo_reconciler::store::PendingCheck;
    assert_eq!(store.pending_check("main").await.unwrap(), None);
    let first = PendingCheck {
        sha: "a1".to_string(),
        plan: json!({"revision": "a1", "changes": [{"name": "dags/w__one.py", "action": "create", "hash": "h"}], "unchanged": 0}),
        since: at(10),
    };
    store.set_pending_check("main", Some(&first)).await.unwrap();
    assert_eq!(
        store.pending_check("main").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.pending_check("dev").await.unwrap(), None);
    // Replaced by a newer commit's, then forgotten; forgetting again is no error.
    let second = PendingCheck {
        sha: "b2".to_string(),
        since: at(20),
        ..first
    };
    store
        .set_pending_check("main", Some(&second))
        .await
        .unwrap();
    assert_eq!(store.pending_check("main").await.unwrap(), Some(second));
    store.set_pending_check("main", None).await.unwrap();
    store.set_pending_check("main", None).await.unwrap();
    assert_eq!(store.pending_check("main").await.unwrap(), None);
}

pub async fn set_branch_status_upserts(store: &dyn Store) {
    let mut status = branch_status("main", SyncState::Ready);
    status.last_attempted = Some("a1".to_string());
    status.last_applied = Some("a1".to_string());
    store.set_branch_status(&status).await.unwrap();

    let stalled = BranchStatus {
        branch: "main".to_string(),
        state: SyncState::Stalled,
        last_attempted: Some("b2".to_string()),
        last_applied: Some("a1".to_string()),
        message: Some("jobs/orders.yaml:3:7: error: unknown field `shedule`".to_string()),
        diagnostics: json!([{"file": "jobs/orders.yaml", "line": 3}]),
        updated_at: at(45),
    };
    store.set_branch_status(&stalled).await.unwrap();
    assert_eq!(
        store.branch_status("main").await.unwrap(),
        Some(stalled.clone())
    );

    // Fields go back to empty too: the row is replaced, not merged.
    let ready = BranchStatus {
        state: SyncState::Ready,
        message: None,
        diagnostics: json!([]),
        last_attempted: None,
        ..stalled
    };
    store.set_branch_status(&ready).await.unwrap();
    assert_eq!(store.branch_status("main").await.unwrap(), Some(ready));
}

pub async fn branch_status_is_per_branch(store: &dyn Store) {
    let main = branch_status("main", SyncState::Ready);
    let staging = branch_status("staging", SyncState::Stalled);
    store.set_branch_status(&main).await.unwrap();
    store.set_branch_status(&staging).await.unwrap();
    assert_eq!(store.branch_status("main").await.unwrap(), Some(main));
    assert_eq!(store.branch_status("staging").await.unwrap(), Some(staging));
}
