//! Backup and restore of the state store (`store::backup`), on SQLite (files in a temp folder)
//! and on PostgreSQL (a fresh database per store, created on the server whose admin URL is in
//! `OLO_TEST_POSTGRES_URL`; without it the PostgreSQL tests fail, they do not skip), and from
//! one backend into the other.
//!
//! Test names are `sqlite::<check>`, `postgres::<check>` and `cross_backend::<check>`. A failed
//! PostgreSQL test leaves its databases (`olo_backup_…`) behind for inspection.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use olo_reconciler::store::backup::format::{Decoder, Encoder, Line};
use olo_reconciler::store::backup::{self, Backend, BackupError, FormatError, Progress};
use olo_reconciler::store::{
    self, BranchStatus, InventoryItem, NewAudit, NewLineageEvent, NewRun, ObservedEdge, Person,
    Revision, RevisionStatus, RunFilter, RunTrigger, RunUpdate, Store, SyncState, TaskInstanceRow,
};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, SqliteConnection};

const POSTGRES_URL_VAR: &str = "OLO_TEST_POSTGRES_URL";

// ---------------------------------------------------------------------------------------------
// Databases: a store URL per database, dropped when the test passed.

struct Db {
    url: String,
    /// A SQLite file's folder, or PostgreSQL's admin URL and the database's name.
    place: Place,
}

enum Place {
    Folder(tempfile::TempDir),
    Server { admin_url: String, name: String },
}

fn admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL backup tests need a server. Run \
             scripts/test.sh (it starts one), or `export {POSTGRES_URL_VAR}=$(scripts/postgres.sh)` \
             and run cargo test again."
        )
    })
}

impl Db {
    /// A database no olo has used: a SQLite file not made yet, or an empty PostgreSQL database.
    async fn new(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp folder");
                Db {
                    url: format!("sqlite:{}", dir.path().join("state.db").display()),
                    place: Place::Folder(dir),
                }
            }
            Backend::Postgres => {
                static SEQ: AtomicU32 = AtomicU32::new(0);
                let admin_url = admin_url();
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let name = format!(
                    "olo_backup_{}_{}_{nanos}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::Relaxed)
                );
                let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "could not connect to {POSTGRES_URL_VAR}={admin_url} ({e}): is it running?"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("could not create the database {name}: {e}"));
                let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
                let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
                let url = match query {
                    "" => format!("{server}/{name}"),
                    q => format!("{server}/{name}?{q}"),
                };
                Db {
                    url,
                    place: Place::Server { admin_url, name },
                }
            }
        }
    }

    fn backend(&self) -> Backend {
        match self.place {
            Place::Folder(_) => Backend::Sqlite,
            Place::Server { .. } => Backend::Postgres,
        }
    }

    async fn open(&self) -> Box<dyn Store> {
        store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("could not open the store at {}: {e:?}", self.url))
    }

    /// One SQL statement on a connection of its own.
    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        Ok(match self.place {
            Place::Folder(_) => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
        })
    }

    /// `SELECT COUNT(*)` of a table.
    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.place {
            Place::Folder(_) => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
            }
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Whether olo ever made its tables here.
    async fn has_tables(&self) -> bool {
        match self.place {
            Place::Folder(ref dir) => dir.path().join("state.db").exists(),
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar("SELECT to_regclass('revisions') IS NOT NULL")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }

    /// Applies this backend's migrations up to `version` only, as an older olo left the store.
    async fn migrate_up_to(&self, version: i64) {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(self.backend().as_str());
        let mut migrator = sqlx::migrate::Migrator::new(folder).await.unwrap();
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        match self.place {
            Place::Folder(_) => {
                let options: sqlx::sqlite::SqliteConnectOptions = self.url.parse().unwrap();
                let mut conn = SqliteConnection::connect_with(&options.create_if_missing(true))
                    .await
                    .unwrap();
                migrator.run(&mut conn).await.unwrap();
            }
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                migrator.run(&mut conn).await.unwrap();
            }
        }
    }

    /// Drops a PostgreSQL database (reached only when the test passed).
    async fn finish(self) {
        if let Place::Server { admin_url, name } = &self.place {
            let mut admin = PgConnection::connect(admin_url).await.unwrap();
            sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("could not drop the database {name}: {e}"));
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// Fixtures: a store with rows in every table, and everything the Store trait shows of it.

fn at(second: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, second).unwrap()
        + chrono::Duration::microseconds(i64::from(micros))
}

fn revision(branch: &str, sha: &str, signed: bool) -> Revision {
    Revision {
        sha: sha.to_string(),
        branch: branch.to_string(),
        author: Person {
            name: "Zoë \"Z\" O'Brien".to_string(),
            email: "zoe@example.com".to_string(),
            time: at(1, 123_456),
        },
        committer: Person {
            name: "Merge Bot".to_string(),
            email: "bot@example.com".to_string(),
            time: at(2, 1),
        },
        message: format!("Change {sha} ✓\n\nWith a body, a tab\tand a backslash \\."),
        signed,
    }
}

fn audit(action: &str, revision: Option<&str>, details: Value) -> NewAudit {
    NewAudit {
        actor: "Ada Lovelace <ada@example.com>".to_string(),
        action: action.to_string(),
        target: "main".to_string(),
        revision: revision.map(str::to_string),
        details,
    }
}

fn run(airflow_run_id: &str, conf: Value) -> NewRun {
    NewRun {
        workspace: "sales".to_string(),
        job: "orders".to_string(),
        dag_id: "sales__orders".to_string(),
        airflow_run_id: airflow_run_id.to_string(),
        state: "queued".to_string(),
        trigger: RunTrigger::Api,
        triggered_by: Some("api:deploy-bot".to_string()),
        revision: Some("a1".to_string()),
        conf,
    }
}

/// Rows in every table olo's migrations make, with the values that are easy to get wrong:
/// microseconds, floats that need 17 digits, JSON strings and nested JSON, NULLs, booleans,
/// quotes, newlines and non-ASCII text; and a deleted run, so that the runs' id generator is
/// ahead of the highest id.
async fn fill(db: &Db) {
    let store = db.open().await;
    store
        .record_revision(&revision("main", "a1", true))
        .await
        .unwrap();
    store
        .record_revision(&revision("main", "b2", false))
        .await
        .unwrap();
    store
        .record_revision(&revision("feature", "c3", false))
        .await
        .unwrap();
    store
        .set_revision_status("main", "a1", RevisionStatus::Applied, &json!([]))
        .await
        .unwrap();
    let diagnostics = json!([{"file": "w/job.yaml", "line": 3, "message": "bad \"quote\" ✓"}]);
    store
        .set_revision_status("main", "b2", RevisionStatus::Invalid, &diagnostics)
        .await
        .unwrap();
    let body = json!({"z": 1, "a": {"nested": [1, 2.5, null, true, "x"]}, "text": "line\nbreak"});
    let plan = store
        .insert_plan("main", "a1", &json!({"create": 2, "update": 0}), &body)
        .await
        .unwrap();
    store.finish_plan(plan, "applied", None).await.unwrap();
    let failed = store
        .insert_plan("main", "a1", &json!({"create": 1}), &json!({}))
        .await
        .unwrap();
    store
        .finish_plan(failed, "failed", Some("could not deploy DAG sales__orders"))
        .await
        .unwrap();
    store
        .insert_plan("feature", "c3", &json!({}), &json!([]))
        .await
        .unwrap();

    for (target, name) in [
        ("dags", "dags/sales__orders.py"),
        ("files", "trino/rules.json"),
    ] {
        store
            .upsert_inventory(&InventoryItem {
                target: target.to_string(),
                name: name.to_string(),
                hash: format!("sha256:{name}"),
                revision: "a1".to_string(),
            })
            .await
            .unwrap();
    }

    store
        .append_audit(&audit(
            "apply",
            Some("a1"),
            json!({"plan": {"create": 2}, "signed": true}),
        ))
        .await
        .unwrap();
    store
        .append_audit(&audit("invalid_commit", Some("b2"), diagnostics.clone()))
        .await
        .unwrap();
    // A JSON column holding a JSON string.
    store
        .append_audit(&audit("reconcile_request", None, json!("just a string")))
        .await
        .unwrap();

    store
        .set_branch_status(&BranchStatus {
            branch: "main".to_string(),
            state: SyncState::Stalled,
            last_attempted: Some("b2".to_string()),
            last_applied: Some("a1".to_string()),
            message: Some("b2 is invalid".to_string()),
            diagnostics,
            updated_at: at(30, 999_999),
        })
        .await
        .unwrap();
    assert!(store.record_delivery("delivery-1", "push").await.unwrap());

    let first = store
        .insert_run(&run("manual__1", json!({"k": "v", "n": [1, 2]})))
        .await
        .unwrap();
    store
        .update_run(
            first.id,
            &RunUpdate {
                state: "success".to_string(),
                logical_date: Some(at(40, 0)),
                started_at: Some(at(41, 500_000)),
                ended_at: Some(at(45, 7)),
            },
        )
        .await
        .unwrap();
    store
        .upsert_task_instances(
            first.id,
            &[
                TaskInstanceRow {
                    task_id: "extract".to_string(),
                    map_index: -1,
                    try_number: 1,
                    state: Some("success".to_string()),
                    started_at: Some(at(41, 500_000)),
                    ended_at: Some(at(42, 0)),
                    duration_seconds: Some(0.1 + 0.2),
                },
                TaskInstanceRow {
                    task_id: "load".to_string(),
                    map_index: 3,
                    try_number: 2,
                    state: None,
                    started_at: None,
                    ended_at: None,
                    duration_seconds: Some(1e-7),
                },
            ],
        )
        .await
        .unwrap();
    store
        .insert_run(&run("manual__2", json!({})))
        .await
        .unwrap();
    store
        .insert_run(&run("manual__3", json!({})))
        .await
        .unwrap();
    let deleted = db
        .execute("DELETE FROM runs WHERE airflow_run_id = 'manual__3'")
        .await
        .unwrap();
    assert_eq!(deleted, 1);

    let event = NewLineageEvent {
        dedupe_key: "k1".to_string(),
        run_id: "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11".to_string(),
        event_type: Some("COMPLETE".to_string()),
        event_time: at(50, 250),
        job_namespace: "olo".to_string(),
        job_name: "sales.orders".to_string(),
        raw: json!({"eventType": "COMPLETE", "inputs": [{"name": "raw.orders"}]}),
        edges: vec![ObservedEdge {
            job_namespace: "olo".to_string(),
            job_name: "sales.orders".to_string(),
            dataset_namespace: "s3://lake".to_string(),
            dataset_name: "sales/orders".to_string(),
            direction: "out".to_string(),
        }],
    };
    assert_eq!(store.record_lineage(&[event]).await.unwrap(), [true]);

    // Work handed to the leader and not taken yet.
    store
        .push_work("reconcile", &json!({"reason": "push"}))
        .await
        .unwrap();

    // No trait method writes the lease yet.
    db.execute(
        "INSERT INTO leader_lease (name, holder, acquired_at, renewed_at, expires_at) \
         VALUES ('reconciler', 'replica-1', '2024-05-01T12:00:00.000001Z', \
         '2024-05-01T12:00:05.000000Z', '2024-05-01T12:00:20.000000Z')",
    )
    .await
    .unwrap();
}

/// Everything the Store trait shows, plus the row counts of the tables it does not read.
async fn view(db: &Db) -> Value {
    let store = db.open().await;
    let mut revisions = serde_json::Map::new();
    for branch in ["main", "feature"] {
        let mut rows = Vec::new();
        for r in store.revisions(branch, 100, None).await.unwrap() {
            let plans = store.plans(branch, &r.revision.sha).await.unwrap();
            rows.push(json!({"revision": r, "plans": plans}));
        }
        revisions.insert(branch.to_string(), Value::Array(rows));
    }
    let mut runs = Vec::new();
    for r in store.runs(&RunFilter::default(), 100, None).await.unwrap() {
        let tasks = store.task_instances(r.id).await.unwrap();
        runs.push(json!({"run": r, "tasks": tasks}));
    }
    json!({
        "revisions": revisions,
        "audit": store.audit(100, None).await.unwrap(),
        "inventory": [
            store.inventory("dags").await.unwrap(),
            store.inventory("files").await.unwrap(),
        ],
        "branch_status": [
            store.branch_status("main").await.unwrap(),
            store.branch_status("feature").await.unwrap(),
        ],
        "runs": runs,
        "observed_edges": store.observed_edges().await.unwrap(),
        "lineage_events": store.lineage_event_count().await.unwrap(),
        "webhook_deliveries": db.count("webhook_deliveries").await,
        "leader_lease": db.count("leader_lease").await,
        "work_requests": db.count("work_requests").await,
    })
}

fn quiet(_: Progress<'_>) {}

/// A filled store, its backup, and a second database of the same backend (untouched).
async fn backed_up(backend: Backend) -> (tempfile::TempDir, Db, Db, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (original, second) = (Db::new(backend).await, Db::new(backend).await);
    fill(&original).await;
    let file = dir.path().join("b.jsonl");
    backup_of(&original, &file).await;
    (dir, original, second, file)
}

/// A revision and `audits` audit entries of a store's own, not the fixture's.
async fn rows_of_its_own(db: &Db, audits: usize) {
    let store = db.open().await;
    store
        .record_revision(&revision("main", "x9", false))
        .await
        .unwrap();
    for _ in 0..audits {
        store
            .append_audit(&audit("apply", Some("x9"), json!({})))
            .await
            .unwrap();
    }
}

async fn backup_of(db: &Db, file: &Path) -> backup::Summary {
    backup::backup(&db.url, file, &quiet)
        .await
        .unwrap_or_else(|e| panic!("backup of {}: {e:?}", db.url))
}

async fn restore(db: &Db, file: &Path, force: bool) -> Result<backup::Summary, BackupError> {
    backup::restore(&db.url, file, force, &quiet).await
}

/// The row lines of a backup (without header and trailer).
fn row_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// The lines of a backup file, decoded and checked.
fn decoded(file: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut decoder = Decoder::new();
    let lines = text
        .split_inclusive('\n')
        .map(|raw| decoder.line(raw).unwrap())
        .collect();
    decoder.finish().unwrap();
    lines
}

/// Writes a backup made of `lines` (a header, then rows), with a trailer that matches them.
fn write_backup(file: &Path, lines: &[Line]) {
    let Line::Header(header) = &lines[0] else {
        panic!("no header")
    };
    let (mut encoder, mut text) = Encoder::new(header);
    for line in &lines[1..] {
        if let Line::Row { table, row } = line {
            text += &encoder.row(table, row);
        }
    }
    text += &encoder.finish().0;
    std::fs::write(file, text).unwrap();
}

fn file_error(result: Result<backup::Summary, BackupError>) -> FormatError {
    match result {
        Err(BackupError::File { source, .. }) => source,
        other => panic!("expected a refused file, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

async fn a_restored_store_holds_every_row_of_the_backup(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (original, copy) = (Db::new(backend).await, Db::new(backend).await);
    fill(&original).await;
    let file = dir.path().join("olo.backup.jsonl");
    let reports = Mutex::new(Vec::new());
    let record = |p: Progress<'_>| {
        if p.done {
            reports.lock().unwrap().push((p.table.to_string(), p.rows));
        }
    };
    let taken = backup::backup(&original.url, &file, &record).await.unwrap();

    assert_eq!(taken.header.backend, backend);
    let tables: Vec<&str> = taken
        .header
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let mut sorted = tables.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "audit_log",
            "branch_status",
            "inventory",
            "leader_lease",
            "lineage_edges",
            "lineage_events",
            "plans",
            "revisions",
            "runs",
            "task_instances",
            "webhook_deliveries",
            "work_requests"
        ],
        "every table of the migrations but sqlx's own"
    );
    let position = |t: &str| tables.iter().position(|x| *x == t).unwrap();
    assert!(position("revisions") < position("plans"));
    assert!(position("runs") < position("task_instances"));
    assert!(
        taken.rows.values().all(|&n| n > 0),
        "the fixture fills every table: {:?}",
        taken.rows
    );
    assert_eq!(taken.rows["runs"], 2);
    assert_eq!(taken.rows["audit_log"], 3);
    // The runs' generator gave out the id of the deleted run.
    assert_eq!(taken.header.sequences["runs"], 3);
    // One report per table, with its rows, in the file's order.
    let reported = reports.into_inner().unwrap();
    assert_eq!(
        reported,
        tables
            .iter()
            .map(|t| (t.to_string(), taken.rows[*t]))
            .collect::<Vec<_>>()
    );
    assert_eq!(taken.bytes, std::fs::metadata(&file).unwrap().len());
    assert!(!dir.path().join("olo.backup.jsonl.partial").exists());

    let restored = restore(&copy, &file, false).await.unwrap();
    assert_eq!(restored.rows, taken.rows);
    assert_eq!(view(&copy).await, view(&original).await);

    // A backup of the copy holds the same rows, value for value.
    let again = dir.path().join("again.jsonl");
    let retaken = backup_of(&copy, &again).await;
    assert_eq!(row_lines(&again), row_lines(&file));
    assert_eq!(retaken.header.tables, taken.header.tables);
    assert_eq!(retaken.header.sequences, taken.header.sequences);
    assert_eq!(retaken.header.migrations, taken.header.migrations);
    original.finish().await;
    copy.finish().await;
}

/// Rows written while a backup runs (here: as soon as its first table is done, before it reads
/// the revisions, plans and runs) are not in it: it reads one snapshot.
async fn a_backup_is_one_snapshot_while_olo_writes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(backend).await;
    fill(&db).await;
    let url = db.url.clone();
    let wrote = Mutex::new(false);
    let write_once = |p: Progress<'_>| {
        let mut wrote = wrote.lock().unwrap();
        if !p.done || *wrote {
            return;
        }
        *wrote = true;
        // Another connection, on a thread and runtime of its own: the backup waits meanwhile.
        std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let store = store::open(&url).await.unwrap();
                    store
                        .record_revision(&revision("main", "late", false))
                        .await
                        .unwrap();
                    store
                        .insert_plan("main", "late", &json!({}), &json!({}))
                        .await
                        .unwrap();
                    store
                        .insert_run(&run("manual__late", json!({})))
                        .await
                        .unwrap();
                    store
                        .append_audit(&audit("apply", Some("late"), json!({})))
                        .await
                        .unwrap();
                });
            })
            .join()
            .unwrap();
        });
    };
    let file = dir.path().join("b.jsonl");
    let taken = backup::backup(&db.url, &file, &write_once).await.unwrap();
    assert!(
        *wrote.lock().unwrap(),
        "the writes happened during the backup"
    );
    assert_eq!(taken.header.tables[0].name, "audit_log");
    assert_eq!(taken.rows["revisions"], 3);
    assert_eq!(taken.rows["plans"], 3);
    assert_eq!(taken.rows["runs"], 2);
    assert_eq!(taken.rows["audit_log"], 3);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("late"));
    // They are in the store, for the next backup.
    let next = backup_of(&db, &dir.path().join("next.jsonl")).await;
    assert_eq!(
        (
            next.rows["revisions"],
            next.rows["plans"],
            next.rows["runs"],
            next.rows["audit_log"]
        ),
        (4, 4, 3, 4)
    );
    db.finish().await;
}

async fn new_rows_after_a_restore_get_fresh_ids_and_the_audit_log_stays_append_only(
    backend: Backend,
) {
    let (_dir, original, copy, file) = backed_up(backend).await;
    restore(&copy, &file, false).await.unwrap();

    let store = copy.open().await;
    let audit_ids: Vec<i64> = store
        .audit(100, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let id = store
        .append_audit(&audit("apply", None, json!({})))
        .await
        .unwrap();
    assert!(
        id > *audit_ids.iter().max().unwrap(),
        "audit id {id} given again"
    );
    let plan_ids: Vec<i64> = store
        .plans("main", "a1")
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    let plan = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    assert!(plan > *plan_ids.iter().max().unwrap());
    // Above the deleted run's id too, as in the original store.
    let next_run = store
        .insert_run(&run("manual__4", json!({})))
        .await
        .unwrap();
    assert_eq!(next_run.id, 4);
    // Every table's id generator, identity column or serial: the fixture's work request has id 1.
    store
        .push_work("reconcile", &json!({"reason": "after the restore"}))
        .await
        .unwrap();
    assert_eq!(store.take_work(10).await.unwrap().len(), 2);
    store
        .record_revision(&revision("main", "d4", false))
        .await
        .unwrap();
    assert_eq!(
        store.revisions("main", 10, None).await.unwrap()[0]
            .revision
            .sha,
        "d4"
    );

    let update = copy.execute("UPDATE audit_log SET actor = 'mallory'").await;
    assert!(
        update.is_err(),
        "UPDATE audit_log was allowed after a restore"
    );
    let delete = copy.execute("DELETE FROM audit_log").await;
    assert!(
        delete.is_err(),
        "DELETE FROM audit_log was allowed after a restore"
    );
    drop(store);
    original.finish().await;
    copy.finish().await;
}

async fn restore_refuses_a_store_holding_rows_unless_forced(backend: Backend) {
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

async fn a_restore_that_fails_half_way_leaves_the_store_as_it_was(backend: Backend) {
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

async fn restore_refuses_truncated_and_edited_files_before_touching_the_store(backend: Backend) {
    let (dir, original, copy, file) = backed_up(backend).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bad = |name: &str, content: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    };

    let cut_in_a_row = bad("cut.jsonl", text[..text.len() / 2].to_string());
    let without_trailer = bad("short.jsonl", lines[..lines.len() - 1].concat());
    let edited = bad(
        "edited.jsonl",
        text.replacen("\"sha\":\"a1\"", "\"sha\":\"a0\"", 1),
    );
    let appended = bad("appended.jsonl", format!("{text}{}", lines[1]));
    let not_a_backup = bad("other.jsonl", "{\"hello\":1}\n".to_string());

    assert_eq!(
        file_error(restore(&copy, &cut_in_a_row, false).await),
        FormatError::Truncated
    );
    assert_eq!(
        file_error(restore(&copy, &without_trailer, true).await),
        FormatError::Truncated
    );
    assert!(matches!(
        file_error(restore(&copy, &edited, false).await),
        FormatError::Checksum { .. }
    ));
    assert!(matches!(
        file_error(restore(&copy, &appended, false).await),
        FormatError::AfterTrailer { .. }
    ));
    assert_eq!(
        file_error(restore(&copy, &not_a_backup, false).await),
        FormatError::NotABackup
    );
    let err = restore(&copy, &edited, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("edited.jsonl is not a backup olo can restore"),
        "{err}"
    );
    assert!(!copy.has_tables().await, "a refused file reached the store");
    assert!(matches!(
        backup::check(&edited).await,
        Err(BackupError::File { .. })
    ));

    // The good file restores.
    assert_eq!(backup::check(&file).await.unwrap().rows["audit_log"], 3);
    restore(&copy, &file, false).await.unwrap();
    assert_eq!(view(&copy).await, view(&original).await);
    original.finish().await;
    copy.finish().await;
}

async fn restore_refuses_a_backup_of_a_newer_schema(backend: Backend) {
    let (dir, original, copy, file) = backed_up(backend).await;
    let taken = backup::check(&file).await.unwrap();
    let known = taken.header.migrations;
    let mut lines = decoded(&file);
    if let Line::Header(header) = &mut lines[0] {
        header.migrations = known + 1;
        header.olo = "9.9.9".to_string();
    }
    let newer = dir.path().join("newer.jsonl");
    write_backup(&newer, &lines);

    let err = restore(&copy, &newer, false).await.unwrap_err();
    match &err {
        BackupError::NewerSchema {
            backup, known: k, ..
        } => {
            assert_eq!((*backup, *k), (known + 1, known));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "the backup is at schema version {}, and this olo knows versions up to {known}: \
             restore it with olo 9.9.9 (which wrote it) or newer",
            known + 1
        )
    );
    assert!(matches!(
        backup::check(&newer).await,
        Err(BackupError::NewerSchema { .. })
    ));
    assert!(!copy.has_tables().await);
    original.finish().await;
    copy.finish().await;
}

/// A store an olo of schema version 1 left: a revision, a run and its task instance.
async fn fill_at_version_1(db: &Db) {
    db.migrate_up_to(1).await;
    for sql in [
        "INSERT INTO revisions (branch, sha, author_name, author_email, author_time, \
         committer_name, committer_email, committer_time, message, signed, seen_at) \
         VALUES ('main', 'a1', 'Ada', 'ada@example.com', '2024-05-01T00:00:00.000000Z', 'Bot', \
         'bot@example.com', '2024-05-01T00:00:00.000000Z', 'first', TRUE, \
         '2024-05-01T00:00:01.000000Z')",
        "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
         triggered_by, revision, logical_date, started_at, updated_at) \
         VALUES ('sales', 'orders', 'sales__orders', 'manual__1', 'success', 'api', 'ada', 'a1', \
         '2024-05-01T00:00:00.000000Z', '2024-05-01T00:00:01.000000Z', \
         '2024-05-01T00:00:05.000000Z')",
        "INSERT INTO task_instances (run_id, task_id, try_number, state, duration_seconds, \
         updated_at) SELECT id, 'extract', 1, 'success', 2.5, '2024-05-01T00:00:04.000000Z' \
         FROM runs",
    ] {
        assert_eq!(db.execute(sql).await.unwrap(), 1, "{sql}");
    }
}

async fn a_backup_of_an_older_schema_is_restored_then_upgraded(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (old, copy) = (Db::new(backend).await, Db::new(backend).await);
    fill_at_version_1(&old).await;
    let file = dir.path().join("v1.jsonl");
    let taken = backup_of(&old, &file).await;
    assert_eq!(
        taken.header.migrations, 1,
        "a backup does not migrate the store"
    );
    let runs = taken.header.table("runs").unwrap();
    assert!(!runs.columns.iter().any(|c| c.name == "conf"));

    restore(&copy, &file, false).await.unwrap();
    let applied = backup::open(&copy.url, false)
        .await
        .unwrap()
        .applied_migrations()
        .await
        .unwrap();
    let newest = backup::open(&copy.url, false)
        .await
        .unwrap()
        .known_migrations();
    assert!(newest > 1);
    assert_eq!(applied, Some(newest), "the restored store was upgraded");

    let store = copy.open().await;
    let runs = store.runs(&RunFilter::default(), 10, None).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].conf, json!({}));
    assert_eq!(Some(runs[0].created_at), runs[0].started_at);
    assert_eq!(
        store.task_instances(runs[0].id).await.unwrap()[0].duration_seconds,
        Some(2.5)
    );
    let revision = store.revision("main", "a1").await.unwrap().unwrap();
    assert!(revision.revision.signed);
    drop(store);
    old.finish().await;
    copy.finish().await;
}

async fn a_store_at_another_schema_version_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (old, current) = (Db::new(backend).await, Db::new(backend).await);
    fill_at_version_1(&old).await;
    let file = dir.path().join("v1.jsonl");
    backup_of(&old, &file).await;
    drop(current.open().await);

    let err = restore(&current, &file, true).await.unwrap_err();
    assert!(
        matches!(err, BackupError::SchemaDiffers { backup: 1, store } if store > 1),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("restore into a new, empty database"),
        "{err}"
    );
    old.finish().await;
    current.finish().await;
}

async fn audit_oldest_first_pages_from_the_oldest_entry(backend: Backend) {
    let db = Db::new(backend).await;
    let store = db.open().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            store
                .append_audit(&audit("apply", None, json!({ "n": n })))
                .await
                .unwrap(),
        );
    }
    let page = |limit, after| {
        let store = &store;
        async move {
            store
                .audit_oldest_first(limit, after)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(2, None).await, ids[..2]);
    assert_eq!(page(2, Some(ids[1])).await, ids[2..4]);
    assert_eq!(page(2, Some(ids[3])).await, ids[4..]);
    assert!(page(2, Some(ids[4])).await.is_empty());
    assert_eq!(page(100, None).await, ids);
    let entries = store.audit_oldest_first(1, None).await.unwrap();
    assert_eq!(entries[0].details, json!({"n": 0}));
    drop(store);
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Across backends.

mod cross_backend {
    use super::*;

    /// SQLite → PostgreSQL → SQLite: the values survive both conversions (JSON text and JSONB,
    /// 0/1 and booleans, timestamps as text and TIMESTAMPTZ), and each store gives fresh ids.
    #[tokio::test]
    async fn a_sqlite_backup_restores_into_postgres_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Db::new(Backend::Sqlite).await;
        let postgres = Db::new(Backend::Postgres).await;
        let back = Db::new(Backend::Sqlite).await;
        fill(&sqlite).await;
        let expected = view(&sqlite).await;

        let from_sqlite = dir.path().join("sqlite.jsonl");
        backup_of(&sqlite, &from_sqlite).await;
        restore(&postgres, &from_sqlite, false).await.unwrap();
        assert_eq!(view(&postgres).await, expected);

        let from_postgres = dir.path().join("postgres.jsonl");
        let taken = backup_of(&postgres, &from_postgres).await;
        assert_eq!(taken.header.backend, Backend::Postgres);
        assert_eq!(taken.header.sequences["runs"], 3);
        // TIMESTAMPTZ values are written in SQLite's one text form, so that SQLite's text order
        // stays time order.
        let mut timestamps = 0;
        for line in decoded(&from_postgres) {
            let Line::Row { table, row } = line else {
                continue;
            };
            for column in &taken.header.table(&table).unwrap().columns {
                if column.sql_type != "timestamp with time zone" || row[&column.name].is_null() {
                    continue;
                }
                let text = row[&column.name].as_str().unwrap();
                let form = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.6fZ");
                assert!(
                    form.is_ok() && text.len() == 27,
                    "{table}.{}: {text}",
                    column.name
                );
                timestamps += 1;
            }
        }
        assert!(timestamps > 20, "{timestamps} timestamps");
        restore(&back, &from_postgres, false).await.unwrap();
        assert_eq!(view(&back).await, expected);

        for db in [&postgres, &back] {
            let store = db.open().await;
            assert_eq!(
                store
                    .insert_run(&run("manual__4", json!({})))
                    .await
                    .unwrap()
                    .id,
                4
            );
            assert_eq!(
                store
                    .append_audit(&audit("apply", None, json!({})))
                    .await
                    .unwrap(),
                4
            );
        }
        sqlite.finish().await;
        postgres.finish().await;
        back.finish().await;
    }
}
