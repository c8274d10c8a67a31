//! End to end: the SQL runner (`POST /api/v1/sql`) of `olo serve` against a fake Trino (wiremock)
//! that answers as Trino's client REST API does. Asserts who the query runs as, that refused
//! requests never reach Trino (`.expect(0)`, checked when the scoped mock drops), how Trino's
//! answers map to statuses, and the audit entry.

use crate::common;

use crate::common::daemon::{assert_error_shape, Daemon, TOKEN, WHO};
use crate::common::{job, Repo};
use serde_json::{json, Value};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ALICE: &str = "olo_alice_token_for_sql";

fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("add one", WHO);
    repo
}

/// A final `QueryResults` document with `columns` and `data`.
fn results(id: &str, columns: Value, data: Value) -> Value {
    json!({
        "id": id,
        "infoUri": format!("http://trino/ui/query.html?{id}"),
        "columns": columns,
        "data": data,
        "stats": {"state": "FINISHED"},
        "warnings": [],
    })
}

/// A `QueryResults` document of a failed query.
fn failed(id: &str, name: &str, kind: &str, message: &str) -> Value {
    json!({
        "id": id,
        "infoUri": format!("http://trino/ui/query.html?{id}"),
        "stats": {"state": "FAILED"},
        "error": {"message": message, "errorCode": 4, "errorName": name, "errorType": kind},
        "warnings": [],
    })
}

fn statement(sql: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/v1/statement"))
        .and(header("x-trino-source", "olo"))
        .and(body_string(sql))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_on_trino_as_the_token_user_and_refused_ones_never_reach_it() {
    let trino = MockServer::start().await;
    let repo = repo();
    let d = Daemon::start_with_tokens(
        &repo,
        &[
            ("OLO_TRINO__URL", trino.uri().as_str()),
            ("OLO_TRINO__MAX_ROWS", "50"),
        ],
        &[("alice", ALICE)],
    )
    .await;

    // Refused before Trino: no token, an unknown token, statements that write or come in twos.
    {
        let _never = Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .named("Trino, for refused requests")
            .mount_as_scoped(&trino)
            .await;
        let select = json!({"sql": "SELECT 1"});
        let (status, err) = d.post("/api/v1/sql", None, select.clone()).await;
        assert_eq!(status, 401, "{err}");
        assert_error_shape(&err, "unauthorized");
        let (status, err) = d.post("/api/v1/sql", Some("olo_not_a_token"), select).await;
        assert_eq!(status, 401, "{err}");
        for sql in ["DELETE FROM t", "SELECT 1; DROP TABLE t"] {
            let (status, err) = d
                .post("/api/v1/sql", Some(ALICE), json!({"sql": sql}))
                .await;
            assert_eq!(status, 400, "{sql}: {err}");
            assert_error_shape(&err, "not_read_only");
        }
        assert_eq!(
            d.post("/api/v1/sql", Some(ALICE), json!({"sql": "DELETE FROM t"}))
                .await
                .1["error"]["message"],
            "`DELETE` changes things or is not known; only a query can run here: a statement \
             starting with SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES (not EXPLAIN ANALYZE)"
        );
        let (status, err) = d
            .post(
                "/api/v1/sql",
                Some(ALICE),
                json!({"sql": "SELECT 1", "max_rows": 51}),
            )
            .await;
        assert_eq!(status, 400, "{err}");
        assert_error_shape(&err, "bad_request");
    }

    // A query by alice runs as alice, in the catalog and schema asked for, without its `;`.
    let columns = json!([
        {"name": "order_id", "type": "bigint"},
        {"name": "status", "type": "varchar(16)"}
    ]);
    statement("SELECT order_id, status FROM orders")
        .and(header("x-trino-user", "alice"))
        .and(header("x-trino-catalog", "lake"))
        .and(header("x-trino-schema", "sales"))
        .respond_with(ResponseTemplate::new(200).set_body_json(results(
            "q_orders",
            columns.clone(),
            json!([[1, "open"], [2, null]]),
        )))
        .expect(2)
        .mount(&trino)
        .await;
    let (status, answer) = d
        .post(
            "/api/v1/sql",
            Some(ALICE),
            json!({"sql": "SELECT order_id, status FROM orders;", "catalog": "lake", "schema": "sales"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({
            "columns": columns,
            "rows": [[1, "open"], [2, null]],
            "truncated": false,
            "query_id": "q_orders",
        })
    );
    // Asking for fewer rows than the query has: the first ones, marked truncated.
    let (status, answer) = d
        .post(
            "/api/v1/sql",
            Some(ALICE),
            json!({"sql": "SELECT order_id, status FROM orders", "catalog": "lake",
                   "schema": "sales", "max_rows": 1}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["rows"].clone(), answer["truncated"].clone()),
        (json!([[1, "open"]]), json!(true))
    );

    // Trino's access rules deny ci-bot the table: 403 with Trino's words.
    statement("SELECT * FROM hr.salaries")
        .and(header("x-trino-user", "ci-bot"))
        .respond_with(ResponseTemplate::new(200).set_body_json(failed(
            "q_denied",
            "PERMISSION_DENIED",
            "USER_ERROR",
            "Access Denied: Cannot select from table hr.public.salaries",
        )))
        .expect(1)
        .mount(&trino)
        .await;
    let (status, err) = d
        .post(
            "/api/v1/sql",
            Some(TOKEN),
            json!({"sql": "SELECT * FROM hr.salaries"}),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert_error_shape(&err, "access_denied");
    assert_eq!(
        err["error"]["message"],
        "Trino denied the query: PERMISSION_DENIED: Access Denied: Cannot select from table \
         hr.public.salaries"
    );

    // A mistake in the SQL: 400 with Trino's error name and message.
    statement("SELECT nope FROM orders")
        .respond_with(ResponseTemplate::new(200).set_body_json(failed(
            "q_bad",
            "COLUMN_NOT_FOUND",
            "USER_ERROR",
            "line 1:8: Column 'nope' cannot be resolved",
        )))
        .expect(1)
        .mount(&trino)
        .await;
    let (status, err) = d
        .post(
            "/api/v1/sql",
            Some(ALICE),
            json!({"sql": "SELECT nope FROM orders"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_error_shape(&err, "query_failed");
    assert_eq!(
        err["error"]["message"],
        "the query failed: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    );

    // The audit log has each query that reached Trino, newest first, by who ran it.
    let (_, audit) = d.get("/api/v1/audit?limit=20").await;
    let queries: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sql_query")
        .collect();
    assert_eq!(queries.len(), 4, "{audit}");
    let first = queries.last().unwrap();
    assert_eq!(first["actor"], "alice");
    assert_eq!(
        first["details"],
        json!({"sql": "SELECT order_id, status FROM orders;", "catalog": "lake",
               "schema": "sales", "rows": 2, "truncated": false, "query_id": "q_orders"})
    );
    assert_eq!(queries[1]["actor"], "ci-bot");
    assert_eq!(queries[1]["details"]["error"], "access_denied");

    let metrics = d.get_text("/metrics").await;
    for line in [
        r#"olo_sql_queries_total{result="ok"} 1"#,
        r#"olo_sql_queries_total{result="truncated"} 1"#,
        r#"olo_sql_queries_total{result="unauthorized"} 2"#,
        r#"olo_sql_queries_total{result="not_read_only"} 3"#,
        r#"olo_sql_queries_total{result="access_denied"} 1"#,
        r#"olo_sql_queries_total{result="query_failed"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_trino_is_unavailable_and_a_missing_one_is_not_configured() {
    // A port nothing listens on: bound, then let go.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let repo = repo();
    let d = Daemon::start(&repo, &[("OLO_TRINO__URL", dead.as_str())]).await;
    let (status, err) = d
        .post("/api/v1/sql", Some(TOKEN), json!({"sql": "SELECT 1"}))
        .await;
    assert_eq!(status, 503, "{err}");
    assert_error_shape(&err, "trino_unavailable");
    drop(d);

    let d = Daemon::start(&repo, &[]).await;
    let (status, err) = d
        .post("/api/v1/sql", Some(TOKEN), json!({"sql": "SELECT 1"}))
        .await;
    assert_eq!(status, 503, "{err}");
    assert_error_shape(&err, "trino_not_configured");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trino.url"),
        "{err}"
    );
    // The dashboard's SQL page says so too.
    let page = d.get_text("/sql").await;
    assert!(page.contains(r#"id="sql-not-configured""#), "{page}");
}

/// `olo apply` with `trino.catalogs = "dynamic"`: the workspace's catalog is created with
/// `CREATE CATALOG` as `trino.catalog_user`, once; secrets travel as `${ENV:…}` references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_catalogs_are_created_once_as_the_catalog_user() {
    let trino = MockServer::start().await;
    let repo = repo();
    let olo = common::Olo::new(&repo.path().display().to_string())
        .set("OLO_TRINO__URL", &trino.uri())
        .set("OLO_TRINO__CATALOGS", "dynamic")
        .set("OLO_TRINO__CATALOG_USER", "olo_admin")
        .set("OLO_S3_SECRET_KEY", "never-sent-to-trino");
    let catalogs = |names: &[&str]| {
        results(
            "q_show",
            json!([{"name": "Catalog", "type": "varchar(6)"}]),
            json!(names.iter().map(|n| [n]).collect::<Vec<_>>()),
        )
    };
    let create = Mock::given(method("POST"))
        .and(path("/v1/statement"))
        .and(header("x-trino-user", "olo_admin"))
        .and(wiremock::matchers::body_string_contains(
            "CREATE CATALOG \"lake\" USING iceberg WITH (",
        ))
        .and(wiremock::matchers::body_string_contains(
            "\"s3.aws-secret-key\" = '${ENV:OLO_S3_SECRET_KEY}'",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "q_create", "infoUri": "http://trino/ui", "stats": {"state": "FINISHED"},
            "updateType": "CREATE CATALOG", "warnings": []
        })))
        .expect(1)
        .named("CREATE CATALOG lake");
    {
        let _show = statement("SHOW CATALOGS")
            .and(header("x-trino-user", "olo_admin"))
            .respond_with(ResponseTemplate::new(200).set_body_json(catalogs(&["system"])))
            .mount_as_scoped(&trino)
            .await;
        let _create = create.mount_as_scoped(&trino).await;
        common::ok(&olo.apply());
    }
    // Applied: Trino now shows it, olo's inventory vouches for its properties, nothing to do.
    let _show = statement("SHOW CATALOGS")
        .respond_with(ResponseTemplate::new(200).set_body_json(catalogs(&["system", "lake"])))
        .mount_as_scoped(&trino)
        .await;
    let _never = Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("CATALOG \"lake\""))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount_as_scoped(&trino)
        .await;
    let plan = olo.run(&[
        "plan",
        &repo.path().display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    let all = trino.received_requests().await.unwrap_or_default();
    assert!(
        all.iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("never-sent-to-trino")),
        "a secret reached Trino"
    );
}
