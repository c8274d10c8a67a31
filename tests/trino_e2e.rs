//! olo's Trino files in a real Trino 476 (scripts/trino.sh), with the real Iceberg REST catalog and
//! S3 server of scripts/lakehouse.sh:
//!
//! - the example repository (examples-repo) applied by `olo apply` (namespaces and tables into the
//!   REST catalog, its catalogs created with `CREATE CATALOG`, rules.json written where Trino reads
//!   it), then each kind of user, in Trino itself, gets exactly the access the repository grants;
//!   `system` metadata works for everyone; the SQL runner (`POST /api/v1/sql`) runs as the caller
//!   under the same rules;
//! - dynamic catalogs: olo creates a workspace's catalog, leaves it alone when nothing changed, and
//!   drops it when the workspace leaves.
//!
//! scripts/test.sh starts both and sets OLO_TEST_TRINO_URL, OLO_TEST_TRINO_FOLDER (the folder Trino
//! reads catalogs and rules.json from) and the OLO_TEST_ICEBERG_* / OLO_TEST_S3_* variables; without
//! them these tests fail, never skip. Trino's users and groups (scripts/trino.sh, group.txt):
//! pat in data-platform (platform admin, admin of every workspace), sam in sales-eng (sales
//! operator), ann in analysts (sales and marketing viewer), mo in marketing-eng (marketing operator,
//! sales viewer), mia in marketing (marketing viewer), eve in interns (nothing); airflow is the
//! task user of Airflow's Trino connections (`render.trino_task_user`).

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{ok, Olo, Repo};
use serde_json::{json, Value};

/// The dynamic-catalog test creates and drops a workspace namespace in the shared REST catalog;
/// a schema or column listing of `lake` running meanwhile fails with "Namespace does not exist"
/// (seen on a loaded machine). They take turns.
static CATALOG_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three tests apply the example repository, each with an olo state of its own: run at once on a
/// Trino without `lake`, each olo sees it missing and the slower `CREATE CATALOG` fails with
/// ALREADY_EXISTS (seen in CI). One apply at a time: the later ones find `lake` there and leave it.
static EXAMPLE_APPLY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn need(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test.sh, which starts Trino \
             (scripts/trino.sh) and the lakehouse (scripts/lakehouse.sh)"
        )
    })
}

/// A name no earlier run used (Trino and the REST catalog outlive a test when reused).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// Trino's client protocol (`POST /v1/statement`, then `nextUri` until there is none).
struct Trino {
    url: String,
    http: reqwest::Client,
}

impl Trino {
    fn new() -> Trino {
        Trino {
            url: need("OLO_TEST_TRINO_URL"),
            http: reqwest::Client::new(),
        }
    }

    /// The rows, or `errorName: message`.
    async fn run(&self, user: &str, sql: &str) -> Result<Vec<Vec<Value>>, String> {
        let mut doc: Value = self
            .http
            .post(format!("{}/v1/statement", self.url))
            .header("X-Trino-User", user)
            .body(sql.to_string())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("Trino at {} does not answer: {e}", self.url))
            .json()
            .await
            .unwrap();
        let mut rows = Vec::new();
        loop {
            if let Some(data) = doc["data"].as_array() {
                rows.extend(data.iter().map(|r| r.as_array().unwrap().clone()));
            }
            if let Some(e) = doc.get("error") {
                return Err(format!("{}: {}", e["errorName"], e["message"]));
            }
            let Some(next) = doc["nextUri"].as_str() else {
                return Ok(rows);
            };
            doc = self
                .http
                .get(next)
                .header("X-Trino-User", user)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .unwrap()
                .json()
                .await
                .unwrap();
        }
    }

    async fn ok(&self, user: &str, sql: &str) -> Vec<Vec<Value>> {
        self.run(user, sql)
            .await
            .unwrap_or_else(|e| panic!("{user}: {sql}: expected to succeed, failed: {e}"))
    }

    async fn denied(&self, user: &str, sql: &str) {
        match self.run(user, sql).await {
            Err(e) if e.contains("PERMISSION_DENIED") && e.contains("Access Denied") => {}
            other => panic!("{user}: {sql}: expected Access Denied, got {other:?}"),
        }
    }
}

/// olo with the test lakehouse (REST catalog + S3) and the real Trino.
fn olo_on_the_lakehouse(repo: &Repo, trino_folder: &str) -> Olo {
    Olo::new(&repo.path().display().to_string())
        .set("OLO_LAKEHOUSE__CATALOG", "rest")
        .set("OLO_LAKEHOUSE__REST_URI", &need("OLO_TEST_ICEBERG_URL"))
        .set(
            "OLO_RENDER__ICEBERG_REST_URI",
            &need("OLO_TEST_ICEBERG_URL"),
        )
        .set(
            "OLO_RENDER__ICEBERG_REST_WAREHOUSE",
            &need("OLO_TEST_ICEBERG_WAREHOUSE"),
        )
        .set("OLO_LAKEHOUSE__WAREHOUSE", "s3")
        .set("OLO_RENDER__S3_ENDPOINT", &need("OLO_TEST_S3_URL"))
        .set("OLO_RENDER__S3_REGION", &need("OLO_TEST_S3_REGION"))
        .set("OLO_S3_ACCESS_KEY", &need("OLO_TEST_S3_ACCESS_KEY"))
        .set("OLO_S3_SECRET_KEY", &need("OLO_TEST_S3_SECRET_KEY"))
        .set("OLO_TRINO__URL", &need("OLO_TEST_TRINO_URL"))
        .set("OLO_TRINO__CATALOGS", "dynamic")
        .set("OLO_APPLY__TRINO_FOLDER", trino_folder)
}

/// The example repository as a git repository of its own.
fn example_repo() -> Repo {
    let repo = Repo::new();
    std::fs::remove_dir_all(repo.path().join("workspaces")).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples-repo/.");
    let out = std::process::Command::new("cp")
        .args(["-a", example])
        .arg(repo.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo.commit("the example repository", ("Ada", "ada@example.com"));
    repo
}

/// Applies the example repository to the lakehouse and to Trino, and waits until Trino enforces
/// the rules.json olo wrote (Trino re-reads it every second). Every test that needs the example's
/// rules calls this: they all write the same files, each with a new state store, into the one
/// folder Trino reads. So each adopts the catalogs an earlier test (or run) rendered there
/// (`--adopt`): olo refuses to start on an empty store beside files it rendered.
async fn example_applied(trino: &Trino) {
    let repo = example_repo();
    let olo = olo_on_the_lakehouse(&repo, &need("OLO_TEST_TRINO_FOLDER"))
        .set("OLO_RENDER__TRINO_TASK_USER", "airflow");
    {
        let _turn = EXAMPLE_APPLY.lock().await;
        ok(&olo.run(&["apply", "--adopt"]));
    }
    // Until Trino has loaded them, eve (no workspace names her) may still reach `lake`.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match trino.run("eve", "SHOW SCHEMAS FROM lake").await {
            Err(e) if e.contains("Access Denied") => return,
            other => assert!(
                Instant::now() < deadline,
                "Trino did not apply olo's rules.json within 60 s: eve still gets {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn count(rows: &[Vec<Value>]) -> i64 {
    rows[0][0].as_i64().unwrap()
}

/// A table made directly in the REST catalog by another client, as Spark or PyIceberg would make
/// it (the catalog places it), then found by Trino.
async fn rest_table(namespace: &str, table: &str) {
    let iceberg = need("OLO_TEST_ICEBERG_URL");
    let body = json!({
        "name": table,
        "schema": {"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "id", "required": false, "type": "long"},
            {"id": 2, "name": "note", "required": false, "type": "string"},
        ]},
    });
    let url = format!(
        "{iceberg}/v1/namespaces/{}/tables",
        namespace.replace('.', "%1F")
    );
    let response = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "POST {url}: {}",
        response.text().await.unwrap()
    );
}

/// The `location` property of a namespace, as the REST catalog holds it (olo sets it: the
/// workspace's warehouse, then the namespace's level).
async fn namespace_location(namespace: &str) -> String {
    let iceberg = need("OLO_TEST_ICEBERG_URL");
    let url = format!("{iceberg}/v1/namespaces/{}", namespace.replace('.', "%1F"));
    let body: Value = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap();
    body["properties"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{namespace} has no location: {body}"))
        .to_string()
}

/// `user` creates `table` in `schema` with Trino's own CREATE TABLE, as dbt's `table`
/// materialization does: Trino's access check passes, the REST catalog takes the location Trino
/// picks (its default: `<namespace location>/<table>-<random>`, in the workspace's warehouse),
/// and the new table takes a row, reads it back and is dropped again, all as `user`.
async fn creates(trino: &Trino, user: &str, schema: &str, table: &str) {
    let name = format!("lake.\"{schema}\".{table}");
    trino
        .ok(user, &format!("CREATE TABLE {name} (id bigint)"))
        .await;
    let listed = trino
        .ok(
            user,
            &format!(
                "SELECT table_name FROM lake.information_schema.tables \
                 WHERE table_schema = '{schema}' AND table_name = '{table}'"
            ),
        )
        .await;
    assert_eq!(listed, vec![vec![json!(table)]], "{user}: {name} is listed");
    let ddl = trino.ok(user, &format!("SHOW CREATE TABLE {name}")).await;
    let ddl = ddl[0][0].as_str().unwrap();
    let under = format!("location = '{}/{table}-", namespace_location(schema).await);
    assert!(
        ddl.contains(&under),
        "{user}: {name} is not under {under}: {ddl}"
    );
    trino
        .ok(user, &format!("INSERT INTO {name} VALUES (1), (2)"))
        .await;
    assert_eq!(
        count(
            &trino
                .ok(user, &format!("SELECT count(*) FROM {name} WHERE id > 0"))
                .await
        ),
        2
    );
    trino.ok(user, &format!("DROP TABLE {name}")).await;
    let gone = trino
        .run(user, &format!("SELECT count(*) FROM {name}"))
        .await;
    assert!(
        matches!(&gone, Err(e) if e.contains("TABLE_NOT_FOUND")),
        "{user}: {name} after DROP TABLE: {gone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_gets_in_trino_exactly_what_the_example_repository_grants() {
    let _turn = CATALOG_CHANGES.lock().await;
    let trino = Trino::new();
    example_applied(&trino).await;
    let t = unique("t");
    for namespace in ["sales.gold", "sales.silver", "marketing.raw"] {
        rest_table(namespace, &t).await;
    }
    let gold = format!("lake.\"sales.gold\".{t}");
    let silver = format!("lake.\"sales.silver\".{t}");
    let raw = format!("lake.\"marketing.raw\".{t}");
    let new_in = |schema: &str| format!("CREATE TABLE lake.\"{schema}\".{t}_new (id bigint)");

    // Admin of sales (a platform admin too): writes, reads, creates.
    trino
        .ok("pat", &format!("INSERT INTO {gold} VALUES (1, 'one')"))
        .await;
    assert_eq!(
        count(
            &trino
                .ok("pat", &format!("SELECT count(*) FROM {gold}"))
                .await
        ),
        1
    );
    creates(&trino, "pat", "sales.gold", &format!("{t}_new")).await;

    // Operator of sales: writes; creates, renames and drops tables as dbt's `table`
    // materialization does; nothing in marketing.
    trino
        .ok("sam", &format!("INSERT INTO {gold} VALUES (2, 'two')"))
        .await;
    trino
        .ok("sam", &format!("DELETE FROM {gold} WHERE id = 2"))
        .await;
    trino
        .ok("sam", &format!("INSERT INTO {gold} VALUES (2, 'two')"))
        .await;
    // Schemas are olo's: dbt creates only the schemas it does not find (information_schema),
    // and the operator finds the workspace's, so it needs no CREATE SCHEMA (which Trino checks
    // even with IF NOT EXISTS on an existing schema).
    let schemata = trino
        .ok(
            "sam",
            "SELECT schema_name FROM lake.information_schema.schemata ORDER BY 1",
        )
        .await;
    for schema in ["sales.bronze", "sales.gold", "sales.silver"] {
        assert!(schemata.contains(&vec![json!(schema)]), "{schemata:?}");
    }
    assert!(
        !schemata.contains(&vec![json!("marketing.raw")]),
        "{schemata:?}"
    );
    trino
        .denied("sam", "CREATE SCHEMA IF NOT EXISTS lake.\"sales.silver\"")
        .await;
    creates(&trino, "sam", "sales.silver", &format!("{t}_new")).await;
    trino
        .ok("sam", &format!("INSERT INTO {silver} SELECT * FROM {gold}"))
        .await;
    trino
        .ok(
            "sam",
            &format!("ALTER TABLE {silver} RENAME TO \"sales.silver\".{t}_renamed"),
        )
        .await;
    assert_eq!(
        count(
            &trino
                .ok("sam", &format!("SELECT count(*) FROM {silver}_renamed"))
                .await
        ),
        2
    );
    trino
        .ok("sam", &format!("DROP TABLE {silver}_renamed"))
        .await;
    trino.denied("sam", &new_in("marketing.raw")).await;
    trino
        .denied("sam", &format!("SELECT count(*) FROM {raw}"))
        .await;
    trino.denied("sam", &format!("DROP TABLE {raw}")).await;
    // Schemas stay the admins'.
    trino
        .denied("sam", &format!("CREATE SCHEMA lake.\"sales.{t}\""))
        .await;

    // Viewer of sales: reads; no write, create, rename or drop.
    assert_eq!(
        count(
            &trino
                .ok("ann", &format!("SELECT count(*) FROM {gold}"))
                .await
        ),
        2
    );
    trino
        .denied("ann", &format!("INSERT INTO {gold} VALUES (3, 'three')"))
        .await;
    trino.denied("ann", &new_in("sales.gold")).await;
    trino
        .denied(
            "ann",
            &format!("ALTER TABLE {gold} RENAME TO \"sales.gold\".{t}_x"),
        )
        .await;
    trino.denied("ann", &format!("DROP TABLE {gold}")).await;

    // Marketing's operator: reads sales.gold (a viewer there), works in marketing.
    assert_eq!(
        count(
            &trino
                .ok("mo", &format!("SELECT count(*) FROM {gold}"))
                .await
        ),
        2
    );
    trino
        .denied("mo", &format!("DELETE FROM {gold} WHERE id = 1"))
        .await;
    trino
        .ok("mo", &format!("INSERT INTO {raw} VALUES (7, 'x')"))
        .await;
    creates(&trino, "mo", "marketing.raw", &format!("{t}_new")).await;
    // A marketing viewer only: nothing of sales. Nobody: nothing.
    trino
        .denied("mia", &format!("SELECT count(*) FROM {gold}"))
        .await;
    trino
        .ok("mia", &format!("SELECT count(*) FROM {raw}"))
        .await;
    trino
        .denied("eve", &format!("SELECT count(*) FROM {gold}"))
        .await;
    trino
        .denied("eve", &format!("SELECT count(*) FROM {raw}"))
        .await;

    // Airflow's task user works as an operator in every workspace.
    trino
        .ok("airflow", &format!("INSERT INTO {gold} VALUES (4, 'four')"))
        .await;
    trino
        .ok(
            "airflow",
            &format!("INSERT INTO {raw} SELECT * FROM {gold}"),
        )
        .await;
    creates(&trino, "airflow", "marketing.curated", &format!("{t}_new")).await;
    trino.ok("mo", &format!("DROP TABLE {raw}")).await;
    trino.ok("pat", &format!("DROP TABLE {gold}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_metadata_works_for_everyone_and_queries_are_seen_by_their_owner_and_admins() {
    let trino = Trino::new();
    example_applied(&trino).await;
    // `system.jdbc.columns` lists every namespace of `lake`: not while the dynamic-catalog test
    // drops one (it failed with "Namespace does not exist" when the two overlapped).
    let _turn = CATALOG_CHANGES.lock().await;
    for user in ["eve", "ann", "sam", "mia", "pat"] {
        // What a JDBC driver and a BI tool read first.
        trino.ok(user, "SHOW CATALOGS").await;
        trino
            .ok(user, "SELECT count(*) FROM system.jdbc.tables")
            .await;
        trino
            .ok(user, "SELECT count(*) FROM system.jdbc.columns")
            .await;
        trino
            .ok(user, "SELECT catalog_name FROM system.metadata.catalogs")
            .await;
        trino
            .ok(
                user,
                "SELECT count(*) FROM system.information_schema.tables",
            )
            .await;
    }
    // Catalogs show as the rules allow: ann sees `lake`, eve does not.
    let catalogs = |rows: Vec<Vec<Value>>| -> Vec<String> {
        rows.iter()
            .map(|r| r[0].as_str().unwrap().to_string())
            .collect()
    };
    assert!(catalogs(trino.ok("ann", "SHOW CATALOGS").await).contains(&"lake".into()));
    assert!(!catalogs(trino.ok("eve", "SHOW CATALOGS").await).contains(&"lake".into()));
    // information_schema of a catalog shows each viewer what they may see.
    trino
        .ok(
            "ann",
            "SELECT count(*) FROM lake.information_schema.schemata WHERE schema_name = 'sales.gold'",
        )
        .await;

    // Queries: ann sees only her own; a platform admin sees ann's too.
    let marker = unique("q");
    trino.ok("ann", &format!("SELECT '{marker}'")).await;
    let owners = trino
        .ok(
            "ann",
            "SELECT DISTINCT \"user\" FROM system.runtime.queries",
        )
        .await;
    assert_eq!(owners, vec![vec![json!("ann")]]);
    let seen = trino
        .ok(
            "pat",
            &format!(
                "SELECT count(*) FROM system.runtime.queries WHERE \"user\" = 'ann' AND query LIKE '%{marker}%'"
            ),
        )
        .await;
    assert!(count(&seen) >= 1, "pat sees ann's query");
    let by_eve = trino
        .ok(
            "eve",
            &format!("SELECT count(*) FROM system.runtime.queries WHERE query LIKE '%{marker}%' AND \"user\" = 'ann'"),
        )
        .await;
    assert_eq!(count(&by_eve), 0, "eve does not see ann's query");
}

const ANN: &str = "olo_ann_token_for_trino_e2e";
const EVE: &str = "olo_eve_token_for_trino_e2e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_runner_runs_as_the_caller_under_the_rules() {
    let trino = Trino::new();
    example_applied(&trino).await;
    let t = unique("t");
    let gold = format!("lake.\"sales.gold\".{t}");
    rest_table("sales.gold", &t).await;
    trino
        .ok("pat", &format!("INSERT INTO {gold} VALUES (42, 'answer')"))
        .await;

    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &common::job("one", "echo 1"));
    repo.commit("add one", ("Ada", "ada@example.com"));
    let d = Daemon::start_with_tokens(
        &repo,
        &[("OLO_TRINO__URL", need("OLO_TEST_TRINO_URL").as_str())],
        &[("ann", ANN), ("eve", EVE)],
    )
    .await;
    let select = json!({"sql": format!("SELECT id AS answer FROM {gold}")});
    let (status, body) = d.post("/api/v1/sql", Some(ANN), select.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([[42]]));
    assert_eq!(body["columns"][0]["name"], "answer");
    let (status, body) = d.post("/api/v1/sql", Some(EVE), select).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "access_denied", "{body}");
    // System metadata through the runner, for anyone.
    let jdbc = json!({"sql": "SELECT count(*) FROM system.jdbc.catalogs"});
    let (status, body) = d.post("/api/v1/sql", Some(EVE), jdbc).await;
    assert_eq!(status, 200, "{body}");
    // Trino saw ann as the user of her query.
    let who = trino
        .ok(
            "pat",
            &format!("SELECT DISTINCT \"user\" FROM system.runtime.queries WHERE query = 'SELECT id AS answer FROM {gold}' AND state = 'FINISHED'"),
        )
        .await;
    assert_eq!(who, vec![vec![json!("ann")]]);
    trino.ok("pat", &format!("DROP TABLE {gold}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_catalogs_are_created_kept_and_dropped_in_trino() {
    let _turn = CATALOG_CHANGES.lock().await;
    let trino = Trino::new();
    let ws = unique("dyn");
    let catalog = format!("{ws}_cat");
    let repo = Repo::new();
    std::fs::remove_dir_all(repo.path().join("workspaces/w")).unwrap();
    repo.write(
        &format!("workspaces/{ws}/workspace.yaml"),
        &format!(
            "apiVersion: olo/v1\nkind: Workspace\nmetadata: {{name: {ws}}}\nspec:\n  lakehouse: \
             {{catalog: {catalog}, warehouse: 's3://lakehouse/{ws}', namespaces: [raw]}}\n  \
             access: {{operator: ['group:data-platform']}}\n"
        ),
    );
    repo.commit(
        "a workspace with its own catalog",
        ("Ada", "ada@example.com"),
    );
    // Its files go to a folder of its own: Trino's rules.json stays the example's.
    let files = tempfile::tempdir().unwrap();
    let olo = olo_on_the_lakehouse(&repo, &files.path().display().to_string());
    ok(&olo.apply());

    let catalogs = |rows: Vec<Vec<Value>>| -> Vec<String> {
        rows.iter()
            .map(|r| r[0].as_str().unwrap().to_string())
            .collect()
    };
    assert!(catalogs(trino.ok("pat", "SHOW CATALOGS").await).contains(&catalog));
    // The catalog reaches the REST catalog with the rendered properties: olo's namespaces show.
    let schemas = catalogs(
        trino
            .ok("pat", &format!("SHOW SCHEMAS FROM \"{catalog}\""))
            .await,
    );
    assert!(schemas.contains(&format!("{ws}.raw")), "{schemas:?}");
    let created = trino
        .ok(
            "pat",
            &format!("SELECT count(*) FROM system.runtime.queries WHERE query LIKE 'CREATE CATALOG \"{catalog}\"%'"),
        )
        .await;
    assert_eq!(count(&created), 1, "created once, as the catalog user");

    // Nothing changed: the next plan is empty.
    let out = olo.run(&["plan", &repo.path().display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The workspace leaves: its catalog is dropped (pruning is on by default).
    std::fs::remove_dir_all(repo.path().join(format!("workspaces/{ws}"))).unwrap();
    repo.commit("the workspace leaves", ("Ada", "ada@example.com"));
    ok(&olo.apply());
    assert!(!catalogs(trino.ok("pat", "SHOW CATALOGS").await).contains(&catalog));
}
