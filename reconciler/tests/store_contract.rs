//! The state store contract: one suite of checks, written once against `&dyn Store`, run on
//! SQLite (a file in a temp folder) and on PostgreSQL (a fresh database per test, created on the
//! server whose admin URL is in `OLO_TEST_POSTGRES_URL`; `scripts/test.sh` starts one).
//!
//! Test names are `sqlite::<check>` and `postgres::<check>`. A failed PostgreSQL test leaves its
//! database (`olo_test_…`) behind for inspection; a passing one drops it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use olo_reconciler::store::{
    self, is_terminal_run_state, BranchStatus, InventoryItem, NewAudit, NewLineageEvent, NewRun,
    ObservedEdge, Person, PostgresStore, Revision, RevisionStatus, Run, RunFilter, RunTrigger,
    RunUpdate, SqliteStore, Store, StoreError, SyncState, TaskInstanceRow,
};
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

const POSTGRES_URL_VAR: &str = "OLO_TEST_POSTGRES_URL";

// ---------------------------------------------------------------------------------------------
// The harness: a database per test.

/// One test's database, and the way to clean it up.
struct TestDb {
    url: String,
    kind: Kind,
}

enum Kind {
    /// The temp folder goes when the test ends, pass or fail.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL half of the store contract needs a \
             server. Run scripts/test.sh (it starts one), or start one yourself with \
             `export {POSTGRES_URL_VAR}=$(scripts/postgres.sh)` and run cargo test again."
        )
    })
}

/// `postgres://user@host:port/db?params` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base
        .split_once("://")
        .unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not a postgres:// URL: {url}"));
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{query}")
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp folder");
        let url = format!("sqlite:{}", dir.path().join("state.db").display());
        TestDb {
            url,
            kind: Kind::Sqlite { _dir: dir },
        }
    }

    async fn postgres() -> TestDb {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let admin_url = postgres_admin_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "olo_test_{}_{}_{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "could not connect to PostgreSQL at {POSTGRES_URL_VAR}={admin_url} ({e}); \
                 is it running? scripts/test.sh starts one"
            )
        });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("could not create the test database {name}: {e}"));
        admin.close().await.ok();
        TestDb {
            url: with_database(&admin_url, &name),
            kind: Kind::Postgres { admin_url, name },
        }
    }

    async fn open(&self) -> Box<dyn Store> {
        store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("could not open the store at {}: {e:?}", self.url))
    }

    /// Runs one SQL statement on a connection of its own, beside the store.
    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let done = match self.kind {
            Kind::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
            Kind::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
        };
        Ok(done)
    }

    /// This backend's migrations folder, `reconciler/migrations/<backend>/`.
    fn migrations_dir(&self) -> std::path::PathBuf {
        let backend = match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
        };
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend)
    }

    /// How many migrations this backend has (files in `reconciler/migrations/<backend>/`).
    fn migration_files(&self) -> u64 {
        let files = std::fs::read_dir(self.migrations_dir()).expect("migrations folder");
        files
            .filter(|f| f.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
            .count() as u64
    }

    /// Applies the migrations up to `version` only, leaving the database as an older olo did.
    async fn migrate_up_to(&self, version: i64) {
        let mut migrator = sqlx::migrate::Migrator::new(self.migrations_dir())
            .await
            .expect("read the migrations");
        let older: Vec<_> = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect();
        assert!(!older.is_empty(), "no migration up to {version}");
        migrator.migrations = older.into();
        let done = match self.kind {
            Kind::Sqlite { .. } => {
                let options: SqliteConnectOptions = self.url.parse().expect("SQLite URL");
                let mut conn = SqliteConnection::connect_with(&options.create_if_missing(true))
                    .await
                    .expect("create the SQLite file");
                migrator.run(&mut conn).await
            }
            Kind::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                migrator.run(&mut conn).await
            }
        };
        done.unwrap_or_else(|e| panic!("could not migrate up to {version}: {e}"));
    }

    /// Drops a PostgreSQL test database (only reached when the test passed).
    async fn finish(self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let mut admin = PgConnection::connect(admin_url)
                .await
                .expect("connect to drop the test database");
            sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("could not drop the test database {name}: {e}"));
        }
    }
}

/// Declares every check once per backend: `store` checks take a `&dyn Store` on a fresh
/// database, `database` checks take the `TestDb` (to reopen it or to reach it with raw SQL).
macro_rules! contract {
    (store: [$($check:ident),* $(,)?], database: [$($db_check:ident),* $(,)?] $(,)?) => {
        contract!(@backend sqlite, sqlite, [$($check),*], [$($db_check),*]);
        contract!(@backend postgres, postgres, [$($check),*], [$($db_check),*]);
    };
    (@backend $module:ident, $new:ident, [$($check:ident),*], [$($db_check:ident),*]) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $check() {
                    let db = super::TestDb::$new().await;
                    let store = db.open().await;
                    super::$check(&*store).await;
                    drop(store);
                    db.finish().await;
                }
            )*
            $(
                #[tokio::test]
                async fn $db_check() {
                    let db = super::TestDb::$new().await;
                    super::$db_check(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

contract! {
    store: [
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
        json_values_round_trip,
        inventory_is_per_target_and_sorted_by_name_bytewise,
        upsert_inventory_replaces_hash_and_revision,
        remove_inventory_deletes_one_item_and_is_idempotent,
        append_audit_returns_increasing_ids,
        audit_is_newest_first_with_limit_and_before_id,
        audit_keeps_every_field,
        last_audit_is_the_newest_entry_of_an_action,
        branch_status_is_none_until_set,
        set_branch_status_upserts,
        branch_status_is_per_branch,
        record_delivery_is_true_once_per_delivery_id,
        record_delivery_is_race_safe,
        work_is_taken_once_oldest_first,
        insert_run_stores_every_field,
        insert_run_is_idempotent_on_dag_id_and_airflow_run_id,
        insert_run_refuses_a_conf_that_is_not_an_object,
        unknown_run_is_none,
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
        record_lineage_keeps_each_event_once_and_its_edges,
        ping_answers,
    ],
    database: [
        reopening_runs_migrations_once_and_keeps_data,
        revisions_with_equal_seen_at_are_newest_inserted_first,
        audit_log_refuses_update_and_delete,
        schema_holds_runs_task_instances_lineage_and_lease,
        migration_0002_keeps_runs_and_task_instances_and_their_ids,
    ],
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, second).unwrap()
}

fn revision(branch: &str, sha: &str) -> Revision {
    Revision {
        sha: sha.to_string(),
        branch: branch.to_string(),
        author: Person {
            name: "Ada Lovelace".to_string(),
            email: "ada@example.com".to_string(),
            time: at(1),
        },
        committer: Person {
            name: "Grace Hopper".to_string(),
            email: "grace@example.com".to_string(),
            time: at(2),
        },
        message: format!("Change {sha}\n\nWith a body."),
        signed: false,
    }
}

fn item(target: &str, name: &str, hash: &str, revision: &str) -> InventoryItem {
    InventoryItem {
        target: target.to_string(),
        name: name.to_string(),
        hash: hash.to_string(),
        revision: revision.to_string(),
    }
}

fn audit_entry(action: &str, target: &str) -> NewAudit {
    NewAudit {
        actor: "Ada Lovelace <ada@example.com>".to_string(),
        action: action.to_string(),
        target: target.to_string(),
        revision: None,
        details: json!({}),
    }
}

fn branch_status(branch: &str, state: SyncState) -> BranchStatus {
    BranchStatus {
        branch: branch.to_string(),
        state,
        last_attempted: None,
        last_applied: None,
        message: None,
        diagnostics: json!([]),
        updated_at: at(30),
    }
}

/// Asserts `time` is the store's clock reading of about now (same machine: a few seconds).
fn assert_recent(time: DateTime<Utc>, what: &str) {
    let drift = (Utc::now() - time).num_seconds().abs();
    assert!(drift < 30, "{what} = {time} is not about now");
}

/// Lets the clock move on, so consecutive writes get distinct timestamps.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

fn shas(rows: &[store::RevisionRow]) -> Vec<&str> {
    rows.iter().map(|r| r.revision.sha.as_str()).collect()
}

/// A queued API run of `workspace`/`job`, DAG `<workspace>__<job>`.
fn new_run(workspace: &str, job: &str, airflow_run_id: &str) -> NewRun {
    NewRun {
        workspace: workspace.to_string(),
        job: job.to_string(),
        dag_id: format!("{workspace}__{job}"),
        airflow_run_id: airflow_run_id.to_string(),
        state: "queued".to_string(),
        trigger: RunTrigger::Api,
        triggered_by: Some("api:deploy-bot".to_string()),
        revision: Some("a1".to_string()),
        conf: json!({}),
    }
}

/// A run of `sales`/`orders` in `state`.
async fn run_in_state(store: &dyn Store, airflow_run_id: &str, state: &str) -> Run {
    let run = store
        .insert_run(&new_run("sales", "orders", airflow_run_id))
        .await
        .unwrap();
    let update = RunUpdate {
        state: state.to_string(),
        logical_date: None,
        started_at: None,
        ended_at: None,
    };
    store.update_run(run.id, &update).await.unwrap();
    store.run(run.id).await.unwrap().unwrap()
}

fn run_ids(runs: &[Run]) -> Vec<&str> {
    runs.iter().map(|r| r.airflow_run_id.as_str()).collect()
}

fn task_instance(task_id: &str, map_index: i64, try_number: i64) -> TaskInstanceRow {
    TaskInstanceRow {
        task_id: task_id.to_string(),
        map_index,
        try_number,
        state: None,
        started_at: None,
        ended_at: None,
        duration_seconds: None,
    }
}

fn assert_query_error<T: std::fmt::Debug>(result: store::StoreResult<T>, method: &str) {
    match result {
        Err(StoreError::Query { what, .. }) => assert_eq!(what, method),
        other => panic!("expected StoreError::Query from {method}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Revisions.

async fn record_revision_stores_every_field(store: &dyn Store) {
    let mut rev = revision("main", "a1");
    rev.signed = true;
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

async fn record_revision_is_idempotent_and_keeps_first_seen_at_and_status(store: &dyn Store) {
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
}

async fn same_sha_on_two_branches_is_two_revisions(store: &dyn Store) {
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

async fn unknown_revision_is_none(store: &dyn Store) {
    store
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    assert_eq!(store.revision("main", "b2").await.unwrap(), None);
    assert_eq!(store.revision("other", "a1").await.unwrap(), None);
}

async fn set_revision_status_sets_status_and_diagnostics(store: &dyn Store) {
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

async fn set_revision_status_of_unknown_revision_fails(store: &dyn Store) {
    let result = store
        .set_revision_status("main", "nope", RevisionStatus::Applied, &json!([]))
        .await;
    assert_query_error(result, "set_revision_status");
}

async fn revisions_are_newest_first_with_limit_and_before_cursor(store: &dyn Store) {
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

async fn revisions_are_per_branch(store: &dyn Store) {
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

async fn timestamps_keep_microseconds(store: &dyn Store) {
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

// ---------------------------------------------------------------------------------------------
// Plans.

async fn insert_plan_returns_increasing_ids_and_plans_are_newest_first(store: &dyn Store) {
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

async fn finish_plan_sets_outcome_error_and_finished_at(store: &dyn Store) {
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

async fn finish_plan_of_unknown_plan_fails(store: &dyn Store) {
    assert_query_error(
        store.finish_plan(424242, "applied", None).await,
        "finish_plan",
    );
}

async fn finish_plan_refuses_unknown_outcome(store: &dyn Store) {
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

async fn insert_plan_for_unrecorded_revision_fails(store: &dyn Store) {
    let result = store
        .insert_plan("main", "never-recorded", &json!({}), &json!({}))
        .await;
    assert_query_error(result, "insert_plan");
}

async fn plans_are_per_revision(store: &dyn Store) {
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

async fn json_values_round_trip(store: &dyn Store) {
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

// ---------------------------------------------------------------------------------------------
// Inventory.

async fn inventory_is_per_target_and_sorted_by_name_bytewise(store: &dyn Store) {
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

async fn upsert_inventory_replaces_hash_and_revision(store: &dyn Store) {
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

async fn remove_inventory_deletes_one_item_and_is_idempotent(store: &dyn Store) {
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

// ---------------------------------------------------------------------------------------------
// Audit log.

async fn append_audit_returns_increasing_ids(store: &dyn Store) {
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

async fn audit_is_newest_first_with_limit_and_before_id(store: &dyn Store) {
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

async fn last_audit_is_the_newest_entry_of_an_action(store: &dyn Store) {
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

async fn audit_keeps_every_field(store: &dyn Store) {
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

// ---------------------------------------------------------------------------------------------
// Branch status.

async fn branch_status_is_none_until_set(store: &dyn Store) {
    assert_eq!(store.branch_status("main").await.unwrap(), None);
    let status = branch_status("main", SyncState::Reconciling);
    store.set_branch_status(&status).await.unwrap();
    assert_eq!(store.branch_status("main").await.unwrap(), Some(status));
}

async fn set_branch_status_upserts(store: &dyn Store) {
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

async fn branch_status_is_per_branch(store: &dyn Store) {
    let main = branch_status("main", SyncState::Ready);
    let staging = branch_status("staging", SyncState::Stalled);
    store.set_branch_status(&main).await.unwrap();
    store.set_branch_status(&staging).await.unwrap();
    assert_eq!(store.branch_status("main").await.unwrap(), Some(main));
    assert_eq!(store.branch_status("staging").await.unwrap(), Some(staging));
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries.

async fn record_delivery_is_true_once_per_delivery_id(store: &dyn Store) {
    assert!(store.record_delivery("d-1", "push").await.unwrap());
    assert!(!store.record_delivery("d-1", "push").await.unwrap());
    assert!(!store.record_delivery("d-1", "pull_request").await.unwrap());
    assert!(store.record_delivery("d-2", "push").await.unwrap());
}

async fn work_is_taken_once_oldest_first(store: &dyn Store) {
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

async fn record_delivery_is_race_safe(store: &dyn Store) {
    for round in 0..5 {
        let id = format!("race-{round}");
        let id = id.as_str();
        let results = tokio::join!(
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
            store.record_delivery(id, "push"),
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

// ---------------------------------------------------------------------------------------------
// Runs and task instances.

async fn insert_run_stores_every_field(store: &dyn Store) {
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

async fn insert_run_is_idempotent_on_dag_id_and_airflow_run_id(store: &dyn Store) {
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

async fn insert_run_refuses_a_conf_that_is_not_an_object(store: &dyn Store) {
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

async fn unknown_run_is_none(store: &dyn Store) {
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    assert_eq!(store.run(run.id + 1).await.unwrap(), None);
    assert_eq!(store.run(-1).await.unwrap(), None);
}

async fn update_run_replaces_state_and_times(store: &dyn Store) {
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

async fn update_run_of_unknown_run_fails(store: &dyn Store) {
    let update = RunUpdate {
        state: "running".to_string(),
        logical_date: None,
        started_at: None,
        ended_at: None,
    };
    assert_query_error(store.update_run(424242, &update).await, "update_run");
}

async fn runs_are_newest_first_with_limit_and_before_id(store: &dyn Store) {
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

async fn runs_filters_are_anded(store: &dyn Store) {
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

async fn runs_since_is_a_lower_bound_on_created_at(store: &dyn Store) {
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

fn lineage_event(key: &str, edges: &[(&str, &str, &str)]) -> NewLineageEvent {
    NewLineageEvent {
        dedupe_key: key.to_string(),
        run_id: "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11".to_string(),
        event_type: Some("COMPLETE".to_string()),
        event_time: at(3),
        job_namespace: "default".to_string(),
        job_name: "sales__orders.load".to_string(),
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

async fn record_lineage_keeps_each_event_once_and_its_edges(store: &dyn Store) {
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

async fn active_runs_are_the_non_terminal_ones_oldest_first(store: &dyn Store) {
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

async fn run_counts_are_per_state_sorted_bytewise(store: &dyn Store) {
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

async fn upsert_task_instances_updates_a_try_and_adds_new_ones(store: &dyn Store) {
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

async fn upsert_task_instances_of_unknown_run_fails_and_writes_nothing(store: &dyn Store) {
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

async fn task_instances_are_sorted_by_start_then_task_map_index_and_try(store: &dyn Store) {
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

async fn ping_answers(store: &dyn Store) {
    store.ping().await.expect("a fresh store answers");
    let run = store
        .insert_run(&new_run("sales", "orders", "manual__1"))
        .await
        .unwrap();
    store.ping().await.expect("the store answers after a write");
    assert!(store.run(run.id).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Checks that reopen the database or reach it with raw SQL.

async fn reopening_runs_migrations_once_and_keeps_data(db: &TestDb) {
    let first = db.open().await;
    first
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let audit_id = first
        .append_audit(&audit_entry("apply", "main"))
        .await
        .unwrap();
    drop(first);

    let second = db.open().await;
    let third = db.open().await;
    assert!(second.revision("main", "a1").await.unwrap().is_some());
    assert_eq!(third.audit(10, None).await.unwrap()[0].id, audit_id);
    let next = third
        .append_audit(&audit_entry("apply", "main"))
        .await
        .unwrap();
    assert!(next > audit_id);

    // A no-op UPDATE counts the rows of sqlx's bookkeeping table on both backends.
    let applied = db
        .execute("UPDATE _sqlx_migrations SET description = description")
        .await
        .expect("the migrations table exists");
    assert_eq!(applied, db.migration_files(), "each migration applied once");
}

async fn revisions_with_equal_seen_at_are_newest_inserted_first(db: &TestDb) {
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

async fn audit_log_refuses_update_and_delete(db: &TestDb) {
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

/// The tables later features write (no trait methods yet) exist, with their keys and checks.
async fn schema_holds_runs_task_instances_lineage_and_lease(db: &TestDb) {
    drop(db.open().await);
    let run = "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
               triggered_by, revision, logical_date, started_at, updated_at) \
               VALUES ('sales', 'orders_daily', 'sales__orders_daily', 'manual__1', 'running', \
               'api', 'ada', 'a1', '2024-05-01T00:00:00.000000Z', \
               '2024-05-01T00:00:01.000000Z', '2024-05-01T00:00:01.000000Z')";
    assert_eq!(db.execute(run).await.unwrap(), 1);
    assert!(
        db.execute(run).await.is_err(),
        "(dag_id, airflow_run_id) is unique"
    );
    let bad_trigger = run
        .replace("'api'", "'cron'")
        .replace("manual__1", "manual__2");
    assert!(
        db.execute(&bad_trigger).await.is_err(),
        "trigger is api|commit|schedule"
    );

    let task = "INSERT INTO task_instances (run_id, task_id, try_number, state, started_at, \
                ended_at, duration_seconds, updated_at) \
                SELECT id, 'extract', 1, 'success', '2024-05-01T00:00:01.000000Z', \
                '2024-05-01T00:00:03.500000Z', 2.5, '2024-05-01T00:00:04.000000Z' FROM runs";
    assert_eq!(db.execute(task).await.unwrap(), 1);
    assert!(
        db.execute(task).await.is_err(),
        "one row per (run, task, map index, try)"
    );
    assert!(
        db.execute(
            "INSERT INTO task_instances (run_id, task_id, try_number, updated_at) \
             VALUES (999999, 'orphan', 1, '2024-05-01T00:00:04.000000Z')"
        )
        .await
        .is_err(),
        "task instances belong to a run"
    );

    let event = "INSERT INTO lineage_events (dedupe_key, event_id, run_id, event_type, \
                 event_time, job_namespace, job_name, raw, received_at) \
                 VALUES ('k1', 'e1', 'r1', 'COMPLETE', '2024-05-01T00:00:05.000000Z', 'olo', \
                 'sales.orders_daily', '{\"eventType\": \"COMPLETE\"}', \
                 '2024-05-01T00:00:06.000000Z')";
    assert_eq!(db.execute(event).await.unwrap(), 1);
    assert!(db.execute(event).await.is_err(), "dedupe_key is unique");

    let edge = |direction: &str, source: &str| {
        format!(
            "INSERT INTO lineage_edges (job_namespace, job_name, dataset_namespace, dataset_name, \
             direction, source, first_seen_at, last_seen_at) \
             VALUES ('olo', 'sales.orders_daily', 's3://lake', 'sales/orders', '{direction}', \
             '{source}', '2024-05-01T00:00:05.000000Z', '2024-05-01T00:00:05.000000Z')"
        )
    };
    assert_eq!(db.execute(&edge("out", "declared")).await.unwrap(), 1);
    assert_eq!(db.execute(&edge("out", "observed")).await.unwrap(), 1);
    assert!(
        db.execute(&edge("out", "declared")).await.is_err(),
        "edges are unique"
    );
    assert!(db.execute(&edge("sideways", "declared")).await.is_err());
    assert!(db.execute(&edge("in", "guessed")).await.is_err());

    let lease = "INSERT INTO leader_lease (name, holder, acquired_at, renewed_at, expires_at) \
                 VALUES ('reconciler', 'replica-1', '2024-05-01T00:00:00.000000Z', \
                 '2024-05-01T00:00:00.000000Z', '2024-05-01T00:00:15.000000Z')";
    assert_eq!(db.execute(lease).await.unwrap(), 1);
    assert!(
        db.execute(lease).await.is_err(),
        "one holder per lease name"
    );
}

/// Runs and task instances an older olo recorded survive migration 0002 (SQLite rebuilds the
/// table), and ids of deleted runs are not given again.
async fn migration_0002_keeps_runs_and_task_instances_and_their_ids(db: &TestDb) {
    db.migrate_up_to(1).await;
    for (airflow_run_id, started_at) in [
        ("manual__1", "'2024-05-01T00:00:01.000000Z'"),
        ("manual__2", "NULL"),
        ("manual__3", "NULL"),
    ] {
        let insert = format!(
            "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
             triggered_by, revision, logical_date, started_at, updated_at) \
             VALUES ('sales', 'orders', 'sales__orders', '{airflow_run_id}', 'running', 'api', \
             'ada', 'a1', '2024-05-01T00:00:00.000000Z', {started_at}, \
             '2024-05-01T00:00:05.000000Z')"
        );
        assert_eq!(db.execute(&insert).await.unwrap(), 1);
    }
    let task = "INSERT INTO task_instances (run_id, task_id, try_number, state, started_at, \
                duration_seconds, updated_at) \
                SELECT id, 'extract', 1, 'success', '2024-05-01T00:00:01.000000Z', 2.5, \
                '2024-05-01T00:00:04.000000Z' FROM runs WHERE airflow_run_id = 'manual__1'";
    assert_eq!(db.execute(task).await.unwrap(), 1);
    let deleted = "DELETE FROM runs WHERE airflow_run_id = 'manual__3'";
    assert_eq!(db.execute(deleted).await.unwrap(), 1);

    let store = db.open().await;
    let runs = store.runs(&RunFilter::default(), 10, None).await.unwrap();
    assert_eq!(run_ids(&runs), ["manual__2", "manual__1"]);
    let (second, first) = (&runs[0], &runs[1]);
    assert_eq!(first.conf, json!({}));
    assert_eq!(first.trigger, RunTrigger::Api);
    assert_eq!(first.triggered_by.as_deref(), Some("ada"));
    let midnight = |second| Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, second).unwrap();
    assert_eq!(first.logical_date, Some(midnight(0)));
    // Created no later than it started; without a start, when it was last updated.
    assert_eq!(first.created_at, first.started_at.unwrap());
    assert_eq!(second.created_at, second.updated_at);
    assert_eq!(
        store.task_instances(first.id).await.unwrap(),
        [TaskInstanceRow {
            state: Some("success".to_string()),
            started_at: Some(midnight(1)),
            duration_seconds: Some(2.5),
            ..task_instance("extract", -1, 1)
        }]
    );

    let next = store
        .insert_run(&new_run("sales", "orders", "manual__4"))
        .await
        .unwrap();
    assert!(
        next.id > second.id + 1,
        "run id {} was given again (the deleted run had id {})",
        next.id,
        second.id + 1
    );
    assert_recent(next.created_at, "created_at");
    // The task instances still belong to their run.
    let deleted = "DELETE FROM runs WHERE airflow_run_id = 'manual__1'";
    assert_eq!(db.execute(deleted).await.unwrap(), 1);
    assert!(store.task_instances(first.id).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Opening.

mod open {
    use super::*;

    #[tokio::test]
    async fn unsupported_url_is_a_url_error() {
        for url in [
            "mysql://localhost/olo",
            "state.db",
            "",
            "sqlite",
            "postgres:/x",
        ] {
            match store::open(url).await {
                Err(StoreError::Url(u)) => assert_eq!(u, url),
                Err(other) => panic!("{url}: expected StoreError::Url, got {other:?}"),
                Ok(_) => panic!("{url}: expected StoreError::Url, got a store"),
            }
        }
    }

    #[tokio::test]
    async fn each_backend_refuses_the_other_scheme() {
        assert!(matches!(
            SqliteStore::open("postgres://localhost/olo").await,
            Err(StoreError::Url(_))
        ));
        assert!(matches!(
            PostgresStore::open("sqlite:state.db").await,
            Err(StoreError::Url(_))
        ));
    }

    #[tokio::test]
    async fn sqlite_bad_url_is_an_open_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}?mode=bogus", dir.path().join("s.db").display());
        match SqliteStore::open(&url).await {
            Err(err @ StoreError::Open { .. }) => {
                assert!(err.to_string().contains(&url), "{err}");
                assert!(!err.is_temporary());
            }
            other => panic!("expected StoreError::Open, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn sqlite_creates_missing_folders_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.db");
        let store = store::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        store
            .record_revision(&revision("main", "a1"))
            .await
            .unwrap();
        assert!(path.is_file());
    }

    #[tokio::test]
    async fn sqlite_in_memory_keeps_data_across_calls() {
        let store = store::open("sqlite::memory:").await.unwrap();
        for sha in ["a", "b", "c", "d", "e", "f"] {
            store.record_revision(&revision("main", sha)).await.unwrap();
        }
        let (a, b) = tokio::join!(
            store.revisions("main", 10, None),
            store.record_delivery("d", "push")
        );
        assert_eq!(a.unwrap().len(), 6);
        assert!(b.unwrap());
    }

    #[tokio::test]
    async fn postgres_open_error_hides_the_password() {
        let admin_url = postgres_admin_url();
        let (scheme, rest) = admin_url.split_once("://").unwrap();
        let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let url = with_database(
            &format!("{scheme}://olo:hunter2@{host_and_path}"),
            "no_such_database",
        );
        let err = match PostgresStore::open(&url).await {
            Err(err) => err,
            Ok(_) => panic!("opened a database that does not exist"),
        };
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let mut messages = vec![err.to_string()];
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            messages.push(cause.to_string());
            source = cause.source();
        }
        let text = messages.join(": ");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("olo:***@"), "{text}");
        assert!(
            !err.is_temporary(),
            "a missing database is not worth retrying"
        );
    }
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
