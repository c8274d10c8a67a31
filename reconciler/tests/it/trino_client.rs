//! The Trino client against a fake Trino (wiremock) following Trino's client REST API: the
//! requests it sends (method, path, `X-Trino-*` headers, `Authorization`, SQL body), how often
//! (`.expect(n)`, checked when the server drops), and how it reads and classifies the answers.
//! Bodies follow the `QueryResults` documents Trino answers (`id`, `infoUri`, `nextUri`,
//! `columns`, `data`, `stats`, `error`, `updateType`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use olo_reconciler::targets::trino::{
    create_catalog_sql, drop_catalog_sql, show_catalogs, Column, QueryRequest, Trino, TrinoAuth,
    TrinoClient, TrinoError,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const USER: &str = "analyst";
const QUERY_ID: &str = "20261127_043000_00042_x7k2p";

fn client(server: &MockServer) -> TrinoClient {
    TrinoClient::new(&server.uri(), Duration::from_secs(5), None).unwrap()
}

/// A request of the query by [`USER`], with the headers Trino needs on each one.
fn trino(verb: &str, raw_path: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(raw_path))
        .and(header("x-trino-user", USER))
        .and(header("x-trino-source", "olo"))
}

fn submit(sql: &str) -> MockBuilder {
    trino("POST", "/v1/statement")
        .and(header("content-type", "text/plain; charset=utf-8"))
        .and(body_string(sql))
}

fn page_path(state: &str, token: u32) -> String {
    format!("/v1/statement/{state}/{QUERY_ID}/y{token}/{token}")
}

/// A `QueryResults` document in `state`, pointing on to `next` (a path on `server`) if any.
fn results(server: &MockServer, state: &str, next: Option<&str>) -> Value {
    let mut doc = json!({
        "id": QUERY_ID,
        "infoUri": format!("{}/ui/query.html?{QUERY_ID}", server.uri()),
        "stats": {"state": state, "queued": state == "QUEUED", "scheduled": state != "QUEUED",
                  "nodes": 1, "totalSplits": 4, "queuedSplits": 0, "runningSplits": 0,
                  "completedSplits": 4, "cpuTimeMillis": 12, "wallTimeMillis": 15,
                  "queuedTimeMillis": 1, "elapsedTimeMillis": 40, "processedRows": 0,
                  "processedBytes": 0, "physicalInputBytes": 0, "peakMemoryBytes": 0,
                  "spilledBytes": 0},
        "warnings": [],
    });
    if let Some(next) = next {
        doc["nextUri"] = json!(format!("{}{next}", server.uri()));
        doc["partialCancelUri"] = json!(format!("{}/v1/stage/{QUERY_ID}.0", server.uri()));
    }
    doc
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn orders_columns() -> Value {
    json!([
        {"name": "order_id", "type": "bigint",
         "typeSignature": {"rawType": "bigint", "arguments": []}},
        {"name": "status", "type": "varchar(16)",
         "typeSignature": {"rawType": "varchar", "arguments": [{"kind": "LONG", "value": 16}]}}
    ])
}

#[tokio::test]
async fn a_query_over_many_pages_returns_every_row_in_order() {
    let server = MockServer::start().await;
    let sql = "SELECT order_id, status FROM orders ORDER BY order_id";
    submit(sql)
        .and(header("x-trino-catalog", "lake"))
        .and(header("x-trino-schema", "sales"))
        .respond_with(ok(results(
            &server,
            "QUEUED",
            Some(&page_path("queued", 1)),
        )))
        .expect(1)
        .mount(&server)
        .await;
    // Columns come on the second page, rows on the third and fourth.
    let mut columns = results(&server, "RUNNING", Some(&page_path("executing", 2)));
    columns["columns"] = orders_columns();
    let mut rows_1 = results(&server, "RUNNING", Some(&page_path("executing", 3)));
    rows_1["columns"] = orders_columns();
    rows_1["data"] = json!([[1, "shipped"], [2, "open"]]);
    let mut rows_2 = results(&server, "FINISHED", None);
    rows_2["columns"] = orders_columns();
    rows_2["data"] = json!([[3, null]]);
    for (page, body) in [
        (page_path("queued", 1), columns),
        (page_path("executing", 2), rows_1),
        (page_path("executing", 3), rows_2),
    ] {
        trino("GET", &page)
            .respond_with(ok(body))
            .expect(1)
            .mount(&server)
            .await;
    }

    let request = QueryRequest {
        catalog: Some("lake".into()),
        schema: Some("sales".into()),
        ..QueryRequest::new(USER, sql, 100)
    };
    let page = client(&server).query(&request).await.unwrap();

    assert_eq!(page.query_id, QUERY_ID);
    assert_eq!(
        page.columns,
        [
            Column {
                name: "order_id".into(),
                type_name: "bigint".into()
            },
            Column {
                name: "status".into(),
                type_name: "varchar(16)".into()
            },
        ]
    );
    assert_eq!(
        page.rows,
        [
            vec![json!(1), json!("shipped")],
            vec![json!(2), json!("open")],
            vec![json!(3), Value::Null],
        ]
    );
    assert!(!page.truncated);
    assert_eq!(page.update_type, None);
}

#[tokio::test]
async fn a_failed_query_is_a_query_error_with_trinos_name_and_message() {
    let server = MockServer::start().await;
    let message = "line 1:15: mismatched input 'FORM'. Expecting: ',', 'FROM', <EOF>";
    submit("SELECT order_id FORM orders")
        .respond_with(ok(results(
            &server,
            "QUEUED",
            Some(&page_path("queued", 1)),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let mut failed = results(&server, "FAILED", None);
    failed["error"] = json!({
        "message": message, "errorCode": 1, "errorName": "SYNTAX_ERROR",
        "errorType": "USER_ERROR", "errorLocation": {"lineNumber": 1, "columnNumber": 15},
        "failureInfo": {"type": "io.trino.sql.parser.ParsingException", "message": message,
                        "suppressed": [], "stack": []}
    });
    trino("GET", &page_path("queued", 1))
        .respond_with(ok(failed))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .query(&QueryRequest::new(USER, "SELECT order_id FORM orders", 10))
        .await
        .unwrap_err();
    match &err {
        TrinoError::Query {
            name,
            kind,
            message: got,
        } => assert_eq!(
            (name.as_str(), kind.as_str(), got.as_str()),
            ("SYNTAX_ERROR", "USER_ERROR", message)
        ),
        other => panic!("expected a query error, got {other:?}"),
    }
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn a_503_on_a_next_uri_is_retried_on_the_same_uri() {
    let server = MockServer::start().await;
    submit("SELECT 1")
        .respond_with(ok(results(
            &server,
            "QUEUED",
            Some(&page_path("queued", 1)),
        )))
        .expect(1)
        .mount(&server)
        .await;
    // Mounted first, so it answers the first GET only.
    trino("GET", &page_path("queued", 1))
        .respond_with(ResponseTemplate::new(503).set_body_string("no healthy upstream"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let mut done = results(&server, "FINISHED", None);
    done["columns"] = json!([{"name": "_col0", "type": "integer"}]);
    done["data"] = json!([[1]]);
    trino("GET", &page_path("queued", 1))
        .respond_with(ok(done))
        .expect(1)
        .mount(&server)
        .await;

    let page = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap();
    assert_eq!(page.rows, [vec![json!(1)]]);
}

#[tokio::test]
async fn a_gateway_that_stays_down_is_unavailable_after_five_attempts() {
    let server = MockServer::start().await;
    submit("SELECT 1")
        .respond_with(ResponseTemplate::new(503))
        .expect(5)
        .mount(&server)
        .await;

    let err = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TrinoError::Unavailable { reason, .. } if reason == "HTTP 503 on each of 5 attempts"),
        "{err:?}"
    );
    assert!(err.is_temporary());
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let server = MockServer::start().await;
    submit("SELECT 1")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let mut done = results(&server, "FINISHED", None);
    done["columns"] = json!([{"name": "_col0", "type": "integer"}]);
    done["data"] = json!([[1]]);
    submit("SELECT 1")
        .respond_with(ok(done))
        .expect(1)
        .mount(&server)
        .await;

    let started = Instant::now();
    let page = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap();
    assert_eq!(page.rows, [vec![json!(1)]]);
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[tokio::test]
async fn other_statuses_fail_at_once() {
    let server = MockServer::start().await;
    submit("SELECT 1")
        .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TrinoError::Status { status: 401, body } if body == "Unauthorized"),
        "{err:?}"
    );
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn more_rows_than_max_rows_cancel_the_query() {
    let server = MockServer::start().await;
    let sql = "SELECT order_id, status FROM orders";
    let mut first = results(&server, "RUNNING", Some(&page_path("executing", 1)));
    first["columns"] = orders_columns();
    first["data"] = json!([[1, "a"], [2, "b"]]);
    submit(sql)
        .respond_with(ok(first))
        .expect(1)
        .mount(&server)
        .await;
    let mut second = results(&server, "RUNNING", Some(&page_path("executing", 2)));
    second["columns"] = orders_columns();
    second["data"] = json!([[3, "c"], [4, "d"]]);
    trino("GET", &page_path("executing", 1))
        .respond_with(ok(second))
        .expect(1)
        .mount(&server)
        .await;
    trino("DELETE", &page_path("executing", 2))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    trino("GET", &page_path("executing", 2))
        .respond_with(ok(results(&server, "FINISHED", None)))
        .expect(0)
        .mount(&server)
        .await;

    let page = client(&server)
        .query(&QueryRequest::new(USER, sql, 3))
        .await
        .unwrap();
    assert!(page.truncated);
    let ids: Vec<&Value> = page.rows.iter().map(|row| &row[0]).collect();
    assert_eq!(ids, [&json!(1), &json!(2), &json!(3)]);
}

#[tokio::test]
async fn exactly_max_rows_is_not_truncated() {
    let server = MockServer::start().await;
    let mut first = results(&server, "RUNNING", Some(&page_path("executing", 1)));
    first["columns"] = orders_columns();
    first["data"] = json!([[1, "a"], [2, "b"]]);
    submit("SELECT 1")
        .respond_with(ok(first))
        .expect(1)
        .mount(&server)
        .await;
    let mut last = results(&server, "FINISHED", None);
    last["columns"] = orders_columns();
    trino("GET", &page_path("executing", 1))
        .respond_with(ok(last))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;

    let page = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 2))
        .await
        .unwrap();
    assert!(!page.truncated);
    assert_eq!(page.rows.len(), 2);
}

#[tokio::test]
async fn a_dead_server_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = TrinoClient::new(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
        None,
    )
    .unwrap();

    let err = dead
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            TrinoError::Unavailable {
                source: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_temporary());
}

#[tokio::test]
async fn an_answer_that_is_not_query_results_is_a_protocol_error() {
    let server = MockServer::start().await;
    submit("SELECT 1")
        .respond_with(
            ResponseTemplate::new(200).set_body_string("<html><body>Sign in</body></html>"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap_err();
    assert!(matches!(err, TrinoError::Protocol(_)), "{err:?}");
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn a_next_uri_on_another_origin_is_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&elsewhere)
        .await;
    submit("SELECT 1")
        .respond_with(ok(results(
            &elsewhere,
            "QUEUED",
            Some(&page_path("queued", 1)),
        )))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TrinoError::Protocol(m) if m.contains("leaves")),
        "{err:?}"
    );
}

#[tokio::test]
async fn credentials_go_with_every_request() {
    let server = MockServer::start().await;
    // "olo:s3cr3t-Pa55"
    let basic = "Basic b2xvOnMzY3IzdC1QYTU1";
    submit("SELECT 1")
        .and(header("authorization", basic))
        .respond_with(ok(results(
            &server,
            "QUEUED",
            Some(&page_path("queued", 1)),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let mut done = results(&server, "FINISHED", None);
    done["columns"] = json!([{"name": "_col0", "type": "integer"}]);
    done["data"] = json!([[1]]);
    trino("GET", &page_path("queued", 1))
        .and(header("authorization", basic))
        .respond_with(ok(done))
        .expect(1)
        .mount(&server)
        .await;
    let auth = TrinoAuth::Basic {
        username: "olo".into(),
        password: SecretString::from("s3cr3t-Pa55"),
    };
    let client = TrinoClient::new(&server.uri(), Duration::from_secs(5), Some(auth)).unwrap();

    let page = client
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap();
    assert_eq!(page.rows, [vec![json!(1)]]);

    let token = MockServer::start().await;
    let mut done = results(&token, "FINISHED", None);
    done["columns"] = json!([{"name": "_col0", "type": "integer"}]);
    done["data"] = json!([[1]]);
    submit("SELECT 1")
        .and(header("authorization", "Bearer eyJhbGciOi.token"))
        .respond_with(ok(done))
        .expect(1)
        .mount(&token)
        .await;
    let auth = TrinoAuth::Bearer(SecretString::from("eyJhbGciOi.token"));
    let client = TrinoClient::new(&token.uri(), Duration::from_secs(5), Some(auth)).unwrap();
    client
        .query(&QueryRequest::new(USER, "SELECT 1", 10))
        .await
        .unwrap();
}

#[tokio::test]
async fn catalogs_are_created_and_dropped_with_the_exact_statements() {
    let server = MockServer::start().await;
    let create = concat!(
        r#"CREATE CATALOG "lake" USING iceberg WITH ("iceberg.catalog.type" = 'rest', "#,
        r#""iceberg.rest-catalog.oauth2.credential" = '${ENV:LAKEKEEPER_CREDENTIAL}', "#,
        r#""iceberg.rest-catalog.uri" = 'http://lakekeeper:8181/catalog', "#,
        r#""iceberg.rest-catalog.warehouse" = 'sales')"#
    );
    for (sql, update_type) in [
        (create, "CREATE CATALOG"),
        (r#"DROP CATALOG "lake""#, "DROP CATALOG"),
    ] {
        let mut done = results(&server, "FINISHED", None);
        done["columns"] = json!([{"name": "result", "type": "boolean"}]);
        done["data"] = json!([[true]]);
        done["updateType"] = json!(update_type);
        submit(sql)
            .respond_with(ok(done))
            .expect(1)
            .mount(&server)
            .await;
    }
    let properties = BTreeMap::from([
        ("iceberg.catalog.type".to_string(), "rest".to_string()),
        (
            "iceberg.rest-catalog.uri".to_string(),
            "http://lakekeeper:8181/catalog".to_string(),
        ),
        (
            "iceberg.rest-catalog.warehouse".to_string(),
            "sales".to_string(),
        ),
        (
            "iceberg.rest-catalog.oauth2.credential".to_string(),
            "${ENV:LAKEKEEPER_CREDENTIAL}".to_string(),
        ),
    ]);
    let client = client(&server);

    let sql = create_catalog_sql("lake", "iceberg", &properties).unwrap();
    let created = client
        .query(&QueryRequest::new(USER, sql, 1))
        .await
        .unwrap();
    assert_eq!(created.update_type.as_deref(), Some("CREATE CATALOG"));

    let sql = drop_catalog_sql("lake").unwrap();
    let dropped = client
        .query(&QueryRequest::new(USER, sql, 1))
        .await
        .unwrap();
    assert_eq!(dropped.update_type.as_deref(), Some("DROP CATALOG"));
}

#[tokio::test]
async fn show_catalogs_lists_the_names() {
    let server = MockServer::start().await;
    let mut done = results(&server, "FINISHED", None);
    done["columns"] = json!([{"name": "Catalog", "type": "varchar(6)"}]);
    done["data"] = json!([["lake"], ["system"], ["tpch"]]);
    submit("SHOW CATALOGS")
        .and(|r: &Request| {
            !r.headers.contains_key("x-trino-catalog") && !r.headers.contains_key("x-trino-schema")
        })
        .respond_with(ok(done))
        .expect(1)
        .mount(&server)
        .await;

    let catalogs = show_catalogs(&client(&server), USER).await.unwrap();
    assert_eq!(catalogs, ["lake", "system", "tpch"]);
}
