//! Backup and restore of the state store (`store::backup`), on SQLite (files in a temp folder)
//! and on PostgreSQL (a fresh database per store, created on the server whose admin URL is in
//! `OLO_TEST_POSTGRES_URL`; without it the PostgreSQL tests fail, they do not skip), and from
//! one backend into the other.
//!
//! Test names are `store_backup::sqlite::<check>`, `store_backup::postgres::<check>` and
//! `store_backup::cross_backend::<check>`. A failed PostgreSQL test leaves its databases
//! (`olo_backup_…`) behind for inspection.
//!
//! The checks live in one module per concept; the harness (a database per store), the fixtures
//! and the backup helpers they share beside them. `on_both_backends!` below runs each check on
//! both backends.

mod cross_backend;
mod failures;
mod fixtures;
mod format;
mod harness;
mod round_trips;
mod schema_versions;
mod support;

use olo_reconciler::store::backup::Backend;

use failures::{
    a_restore_that_fails_half_way_leaves_the_store_as_it_was,
    restore_refuses_a_store_holding_rows_unless_forced,
};
use format::restore_refuses_truncated_and_edited_files_before_touching_the_store;
use round_trips::{
    a_backup_is_one_snapshot_while_olo_writes, a_restored_store_holds_every_row_of_the_backup,
    audit_oldest_first_pages_from_the_oldest_entry,
    new_rows_after_a_restore_get_fresh_ids_and_the_audit_log_stays_append_only,
};
use schema_versions::{
    a_backup_of_an_older_schema_is_restored_then_upgraded,
    a_store_at_another_schema_version_is_refused, restore_refuses_a_backup_of_a_newer_schema,
};

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends! {
    a_restored_store_holds_every_row_of_the_backup,
    a_backup_is_one_snapshot_while_olo_writes,
    new_rows_after_a_restore_get_fresh_ids_and_the_audit_log_stays_append_only,
    restore_refuses_a_store_holding_rows_unless_forced,
    a_restore_that_fails_half_way_leaves_the_store_as_it_was,
    restore_refuses_truncated_and_edited_files_before_touching_the_store,
    restore_refuses_a_backup_of_a_newer_schema,
    a_backup_of_an_older_schema_is_restored_then_upgraded,
    a_store_at_another_schema_version_is_refused,
    audit_oldest_first_pages_from_the_oldest_entry,
}
