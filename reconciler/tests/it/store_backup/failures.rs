//! Refusals and failures: a store holding rows is refused unless forced, and a restore failing half-way leaves the store as it was.

use olo_reconciler::store::backup::format::Line;
use olo_reconciler::store::backup::Backend;
use olo_reconciler::store::backup::BackupError;

use super::fixtures::*;
use super::support::*;

pub(crate) async fn restore_refuses_a_store_holding_rows_unless_forced(backend: Backend) {
    let (_dir, original, other, file) = backed_up(backend).await;

    rows_of_its_own(&other, 2).await;
    let before = view(&other).await;

    match restore(&other, &file, false).await {
        Err(err @ BackupError::NotEmpty { .. }) => {
            let BackupError::NotEmpty { rows } = &err else {
                unreachable!()
            };
            assert_eq!(
                rows,
                &[("audit_log".to_string(), 2), ("revisions".to_string(), 1)]
            );
            assert!(
                err.to_string()
                    .contains("(audit_log: 2 rows, revisions: 1 row)"),
                "{err}"
            );
        }
        other => panic!("expected NotEmpty, got {other:?}"),
    }
    assert_eq!(
        view(&other).await,
        before,
        "a refused restore changed the store"
    );

    restore(&other, &file, true).await.unwrap();
    assert_eq!(view(&other).await, view(&original).await);
    let update = other
        .execute("UPDATE audit_log SET actor = 'mallory'")
        .await;
    assert!(
        update.is_err(),
        "the audit log's triggers are back after --force"
    );
    original.finish().await;
    other.finish().await;
}

pub(crate) async fn a_restore_that_fails_half_way_leaves_the_store_as_it_was(backend: Backend) {
    let (dir, original, other, file) = backed_up(backend).await;
    // A well-formed backup whose last audit entry has the id of the first: its insert fails
    // after every other table was loaded.
    let mut lines = decoded(&file);
    let first_id = lines
        .iter()
        .find_map(|l| match l {
            Line::Row { table, row } if table == "audit_log" => Some(row["id"].clone()),
            _ => None,
        })
        .unwrap();
    let last_audit = lines
        .iter()
        .rposition(|l| matches!(l, Line::Row { table, .. } if table == "audit_log"))
        .unwrap();
    if let Line::Row { row, .. } = &mut lines[last_audit] {
        row.insert("id".to_string(), first_id);
    }
    let broken = dir.path().join("broken.jsonl");
    write_backup(&broken, &lines);

    rows_of_its_own(&other, 1).await;
    let before = view(&other).await;

    let err = restore(&other, &broken, true).await.unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::Query {
                what: "insert the rows",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(view(&other).await, before);
    let update = other
        .execute("UPDATE audit_log SET actor = 'mallory'")
        .await;
    assert!(update.is_err(), "the audit log's triggers were left off");
    original.finish().await;
    other.finish().await;
}
