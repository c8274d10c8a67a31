//! The state store contract: one suite of checks, written once against `&dyn Store`, run on
//! SQLite (a file in a temp folder) and on PostgreSQL (a fresh database per test, created on the
//! server whose admin URL is in `OLO_TEST_POSTGRES_URL`; `scripts/test.sh` starts one).
//!
//! Test names are `store_contract::sqlite::<check>` and `store_contract::postgres::<check>`. A
//! failed PostgreSQL test leaves its database (`olo_test_…`) behind for inspection; a passing one
//! drops it.
//!
//! The checks live in one module per table family; the harness (a database per test) and the
//! fixtures they share beside them. The `contract!` list below runs each check on both backends.

mod deliveries_work;
mod fixtures;
mod harness;
mod inventory_audit;
mod lineage;
mod migrations;
mod open;
mod revisions;
mod runs;
mod timestamps;

use harness::{with_database, TestDb};

/// Declares every check once per backend: `store` checks take a `&dyn Store` on a fresh
/// database, `database` checks take the `TestDb` (to reopen it or to reach it with raw SQL).
/// Checks are listed by the module that holds them; a test is named `<backend>::<check>`.
macro_rules! contract {
    (
        store: { $($family:ident: [$($check:ident),* $(,)?]),* $(,)? },
        database: { $($db_family:ident: [$($db_check:ident),* $(,)?]),* $(,)? } $(,)?
    ) => {
        contract!(
            @backend sqlite, sqlite,
            [$($family: [$($check),*]),*],
            [$($db_family: [$($db_check),*]),*]
        );
        contract!(
            @backend postgres, postgres,
            [$($family: [$($check),*]),*],
            [$($db_family: [$($db_check),*]),*]
        );
    };
    (
        @backend $module:ident, $new:ident,
        [$($family:ident: [$($check:ident),*]),*],
        [$($db_family:ident: [$($db_check:ident),*]),*]
    ) => {
        mod $module {
            $($(
                #[tokio::test]
                async fn $check() {
                    let db = super::TestDb::$new().await;
                    let store = db.open().await;
                    super::$family::$check(&*store).await;
                    drop(store);
                    db.finish().await;
                }
            )*)*
            $($(
                #[tokio::test]
                async fn $db_check() {
                    let db = super::TestDb::$new().await;
                    super::$db_family::$db_check(&db).await;
                    db.finish().await;
                }
            )*)*
        }
    };
}

contract! {
    store: {
        revisions: [
            record_revision_stores_every_field,
            record_revision_is_idempotent_and_keeps_first_seen_at_and_status,
            same_sha_on_two_branches_is_two_revisions,
            unknown_revision_is_none,
            set_revision_status_sets_status_and_diagnostics,
            set_revision_status_of_unknown_revision_fails,
            revisions_are_newest_first_with_limit_and_before_cursor,
            revisions_are_per_branch,
            timestamps_keep_microseconds,
            insert_plan_returns_increasing_ids_and_plans_are_newest_first,
            finish_plan_sets_outcome_error_and_finished_at,
            finish_plan_of_unknown_plan_fails,
            finish_plan_refuses_unknown_outcome,
            insert_plan_for_unrecorded_revision_fails,
            plans_are_per_revision,
            newest_plans_give_each_commit_its_newest_plan_in_one_call,
            json_values_round_trip,
        ],
        inventory_audit: [
            inventory_is_per_target_and_sorted_by_name_bytewise,
            upsert_inventory_replaces_hash_and_revision,
            remove_inventory_deletes_one_item_and_is_idempotent,
            inventory_many_upserts_and_removes_thousands_at_once,
            append_audit_returns_increasing_ids,
            audit_is_newest_first_with_limit_and_before_id,
            audit_keeps_every_field,
            last_audit_is_the_newest_entry_of_an_action,
            branch_status_is_none_until_set,
            set_branch_status_upserts,
            branch_status_is_per_branch,
            a_pending_check_is_kept_per_branch_until_forgotten,
        ],
        deliveries_work: [
            record_delivery_is_true_once_per_delivery_id,
            record_delivery_is_race_safe,
            a_delivery_and_its_work_are_recorded_together,
            prune_deliveries_forgets_only_the_older_ones,
            work_is_taken_once_oldest_first,
        ],
        runs: [
            insert_run_stores_every_field,
            insert_run_is_idempotent_on_dag_id_and_airflow_run_id,
            insert_run_refuses_a_conf_that_is_not_an_object,
            unknown_run_is_none,
            delete_run_removes_that_run_only,
            update_run_replaces_state_and_times,
            update_run_of_unknown_run_fails,
            runs_are_newest_first_with_limit_and_before_id,
            runs_filters_are_anded,
            runs_since_is_a_lower_bound_on_created_at,
            active_runs_are_the_non_terminal_ones_oldest_first,
            run_counts_are_per_state_sorted_bytewise,
            upsert_task_instances_updates_a_try_and_adds_new_ones,
            upsert_task_instances_of_unknown_run_fails_and_writes_nothing,
            task_instances_are_sorted_by_start_then_task_map_index_and_try,
        ],
        lineage: [
            record_lineage_keeps_each_event_once_and_its_edges,
            lineage_run_events_pages_by_event_time,
            lineage_event_hours_count_run_events_by_hour_and_type,
        ],
        timestamps: [stamps_are_the_application_clock_to_the_microsecond],
        open: [ping_answers],
    },
    database: {
        revisions: [revisions_with_equal_seen_at_are_newest_inserted_first],
        inventory_audit: [
            audit_log_refuses_update_and_delete,
            is_empty_until_a_revision_an_inventory_item_or_an_audit_entry,
        ],
        migrations: [
            reopening_runs_migrations_once_and_keeps_data,
            schema_holds_runs_task_instances_lineage_and_lease,
            migration_0002_keeps_runs_and_task_instances_and_their_ids,
        ],
    },
}

#[test]
fn with_database_replaces_only_the_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:55432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:55432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h:1/db?sslmode=disable", "t2"),
        "postgres://u:p@h:1/t2?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
}
