//! Spark with Iceberg for real, through the SparkSubmitOperator olo renders: the example's
//! `ingest` task of `sales/orders_daily` (its Spark application and its workspace's declared
//! `bronze.orders`, byte for byte; only the landing folder and the workspace name differ) runs in
//! a real Airflow 3.3 (scripts/airflow.sh), whose worker runs PySpark 3.5's `spark-submit` with
//! the Iceberg runtime, Iceberg AWS bundle and openlineage-spark jars (scripts/spark.sh). olo
//! creates the table in the real REST catalog and S3 server (Iceberg's reference
//! RESTCatalogServer and versitygw, scripts/lakehouse.sh); Spark MERGEs the landing files into it
//! with the S3 keys and the lineage API key read from the worker's environment; PyIceberg reads
//! the rows back; Spark's OpenLineage listener reports to olo with the API key (accepted: its
//! input, which only Spark knows, shows in the job's lineage, and olo counted no refused event).
//!
//! Needs what scripts/test.sh sets: OLO_TEST_AIRFLOW_URL/_DAGS/_PASSWORD, OLO_TEST_LINEAGE_PORT/
//! _TOKEN, OLO_TEST_ICEBERG_URL/_WAREHOUSE, OLO_TEST_S3_URL/_ACCESS_KEY/_SECRET_KEY,
//! OLO_TEST_SPARK_JARS, OLO_TEST_PYICEBERG_PYTHON, and an Airflow started with the Spark worker
//! environment (SPARK_HOME, PYSPARK_PYTHON, spark-submit on PATH, OLO_S3_ACCESS_KEY,
//! OLO_S3_SECRET_KEY, OLO_OPENLINEAGE_API_KEY). Without them it fails; it never skips.

mod common;

use std::path::Path;
use std::time::Duration;

use common::airflow::env;
use common::daemon::{Daemon, TOKEN, WHO};
use common::Repo;
use serde_json::{json, Value};

fn example(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples-repo/workspaces/sales")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with `from` replaced by `to`, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the example changed: {from:?} is gone; update this test"
    );
    text.replacen(from, to, 1)
}

/// The shop's order exports: two files, one order updated, one repeated row, one without an id.
fn landing_files(dir: &Path) {
    std::fs::write(
        dir.join("orders-1.json"),
        concat!(
            r#"{"id": 1001, "customer": 7, "status": "PAID", "currency": "eur", "total": "19.90", "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T10:00:00Z"}"#,
            "\n",
            r#"{"id": 1002, "customer": 8, "status": "pending", "currency": "usd", "total": 5, "created_at": "2026-01-02T11:30:00Z", "updated_at": "2026-01-02T11:30:00Z"}"#,
            "\n",
            r#"{"id": null, "customer": 9, "status": "paid", "currency": "eur", "total": 1, "created_at": "2026-01-02T12:00:00Z", "updated_at": "2026-01-02T12:00:00Z"}"#,
            "\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("orders-2.json"),
        concat!(
            r#"{"id": 1002, "customer": 8, "status": "Shipped", "currency": "usd", "total": 5, "created_at": "2026-01-02T11:30:00Z", "updated_at": "2026-01-03T08:00:00Z"}"#,
            "\n",
            r#"{"id": 1002, "customer": 8, "status": "Shipped", "currency": "usd", "total": 5, "created_at": "2026-01-02T11:30:00Z", "updated_at": "2026-01-03T08:00:00Z"}"#,
            "\n",
        ),
    )
    .unwrap();
}

/// Rows of a table, read by PyIceberg (tests/iceberg/check.py) from the REST catalog and S3.
fn pyiceberg_rows(iceberg: &str, warehouse: &str, table: &str) -> Vec<Value> {
    let python = env("OLO_TEST_PYICEBERG_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/iceberg/check.py");
    let out = std::process::Command::new(python)
        .args([script, "rest", "--uri", iceberg, "--warehouse", warehouse])
        .args(["rows", table])
        .output()
        .expect("PyIceberg's python runs");
    assert!(
        out.status.success(),
        "check.py rows {table} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_spark_task_merges_into_iceberg_and_reports_lineage_with_auth() {
    let airflow = env("OLO_TEST_AIRFLOW_URL");
    let dags = common::airflow::own_dag_folder("spark_e2e");
    let password = env("OLO_TEST_AIRFLOW_PASSWORD");
    let lineage_port = env("OLO_TEST_LINEAGE_PORT");
    let lineage_token = env("OLO_TEST_LINEAGE_TOKEN");
    let iceberg = env("OLO_TEST_ICEBERG_URL");
    let warehouse = env("OLO_TEST_ICEBERG_WAREHOUSE");
    let s3 = env("OLO_TEST_S3_URL");
    let jars = env("OLO_TEST_SPARK_JARS");
    for jar in jars.split(',') {
        assert!(
            Path::new(jar).is_file(),
            "{jar} is missing: run scripts/spark.sh"
        );
    }

    // Airflow's database and the catalog outlive a test run: fresh names every time.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let ws = format!("sp{suffix}");
    let dag_id = format!("{ws}__orders_daily");
    let conn_id = format!("olo_spark_{suffix}");
    // Spark runs in the Airflow worker (`local[2]`), through a connection of this test's own.
    let (code, conn) = common::airflow::post(
        &airflow,
        &password,
        "connections",
        json!({"connection_id": conn_id, "conn_type": "spark", "host": "local[2]"}),
    )
    .await;
    assert_eq!(code, 201, "creating the Spark connection: {conn}");

    let landing = tempfile::tempdir().unwrap();
    landing_files(landing.path());
    let landing_url = format!("file://{}/", landing.path().display());
    let table = format!("lake.{ws}.bronze.orders");

    // The example's sales workspace (its declared tables as they are), renamed, operated by the
    // tests' token, on this test's Spark connection.
    let workspace = example("workspace.yaml");
    let workspace = replaced(&workspace, "  name: sales\n", &format!("  name: {ws}\n"));
    let workspace = replaced(
        &workspace,
        "warehouse: s3://lakehouse/sales",
        &format!("warehouse: s3://lakehouse/{ws}"),
    );
    let workspace = replaced(
        &workspace,
        "      - group:sales-eng\n",
        "      - group:sales-eng\n      - user:ci-bot\n",
    );
    let workspace = replaced(
        &workspace,
        "  # connections:\n  #   trino: olo_trino_sales\n  #   spark: spark_default",
        &format!("  connections:\n    spark: {conn_id}"),
    );
    // orders_daily's `ingest` task, with the landing folder of this test and a small conf.
    let job = format!(
        r#"apiVersion: olo/v1
kind: Job
metadata: {{name: orders_daily}}
spec:
  paused: false
  tasks:
    - id: ingest
      description: Merge the raw order exports into the bronze Iceberg table.
      spark:
        application: spark/ingest_orders.py
        args: ["--source", "{landing_url}", "--table", "{table}"]
        conf:
          spark.driver.memory: 1g
          spark.sql.shuffle.partitions: 2
          spark.ui.enabled: false
      outputs: [bronze.orders]
      retries: 0
      timeout: 15m
"#
    );
    let repo = Repo::new();
    std::fs::remove_dir_all(repo.path().join("workspaces/w")).unwrap();
    repo.write(&format!("workspaces/{ws}/workspace.yaml"), &workspace);
    repo.write(
        &format!("workspaces/{ws}/spark/ingest_orders.py"),
        &example("spark/ingest_orders.py"),
    );
    repo.write(&format!("workspaces/{ws}/jobs/orders_daily.yaml"), &job);
    let c1 = repo.commit("the sales ingest task", WHO);

    let listen = format!("127.0.0.1:{lineage_port}");
    let lineage_url = format!("http://{listen}");
    let s3_key = env("OLO_TEST_S3_ACCESS_KEY");
    let s3_secret = env("OLO_TEST_S3_SECRET_KEY");
    let jars_toml = jars
        .split(',')
        .map(|j| format!("{j:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let d = Daemon::start_with_settings(
        &repo,
        &[
            ("OLO_SERVER__LISTEN", listen.as_str()),
            ("OLO_APPLY__DAGS_FOLDER", dags.as_str()),
            ("OLO_AIRFLOW__URL", airflow.as_str()),
            ("OLO_AIRFLOW__PASSWORD_ENV", "TEST_AIRFLOW_PASSWORD"),
            ("TEST_AIRFLOW_PASSWORD", password.as_str()),
            ("OLO_AIRFLOW__POLL_SECONDS", "1"),
            ("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "150"),
            ("OLO_LAKEHOUSE__CATALOG", "rest"),
            ("OLO_LAKEHOUSE__REST_URI", iceberg.as_str()),
            ("OLO_LAKEHOUSE__WAREHOUSE", "s3"),
            ("OLO_RENDER__ICEBERG_REST_URI", iceberg.as_str()),
            ("OLO_RENDER__ICEBERG_REST_WAREHOUSE", warehouse.as_str()),
            ("OLO_RENDER__S3_ENDPOINT", s3.as_str()),
            ("OLO_RENDER__OPENLINEAGE_URL", lineage_url.as_str()),
            // olo's own keys, for creating the table; Spark reads the worker's.
            ("OLO_S3_ACCESS_KEY", s3_key.as_str()),
            ("OLO_S3_SECRET_KEY", s3_secret.as_str()),
        ],
        &[("lineage", lineage_token.as_str())],
        // The jars from scripts/spark.sh's cache, as `spark.jars` (no Ivy fetch per run).
        &format!("[render]\nspark_packages = []\nspark_jars = [{jars_toml}]\n"),
    )
    .await;
    let (_, status) = d.get("/api/v1/status").await;
    assert_eq!(status["sync"]["state"], "Ready", "{status}\n{}", d.log());
    assert_eq!(status["sync"]["last_applied"], c1.as_str());

    // The DAG file names the variables, never their values.
    let dag_file = std::fs::read_to_string(Path::new(&dags).join(format!("{dag_id}.py"))).unwrap();
    for secret in [&s3_secret, &lineage_token] {
        assert!(
            !dag_file.contains(secret.as_str()),
            "a secret in {dag_id}.py"
        );
    }
    assert!(dag_file.contains("'OLO_S3_SECRET_KEY'"), "{dag_file}");

    let (code, run) = d
        .post(
            &format!("/api/v1/workspaces/{ws}/jobs/orders_daily/runs"),
            Some(TOKEN),
            json!({}),
        )
        .await;
    assert_eq!(code, 201, "{run}\n{}", d.log());
    let id = run["id"].as_i64().unwrap();
    let started = std::time::Instant::now();
    let log_of_ingest = || async {
        d.http
            .get(format!("{}/api/v1/runs/{id}/tasks/ingest/logs/1", d.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let mut state = Value::Null;
    while started.elapsed() < Duration::from_secs(600) {
        let (_, run) = d.get(&format!("/api/v1/runs/{id}")).await;
        state = run["state"].clone();
        if state == "success" || state == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let log = log_of_ingest().await;
    assert_eq!(
        state,
        "success",
        "the Spark task did not succeed; its log:\n{log}\nolo's log:\n{}",
        d.log()
    );
    eprintln!("the ingest run took {:?}", started.elapsed());
    // Airflow masked the secrets olo's operator read from the environment.
    assert!(
        !log.contains(s3_secret.as_str()),
        "the S3 secret in the task log:\n{log}"
    );
    assert!(
        !log.contains(lineage_token.as_str()),
        "the API key in the task log:\n{log}"
    );

    // What Spark wrote, read by another client: one row per order, its latest version, and the
    // table still exactly as olo declared it.
    let rows = pyiceberg_rows(&iceberg, &warehouse, &format!("{ws}.bronze.orders"));
    let summary: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!([
                r["order_id"],
                r["customer_id"],
                r["status"],
                r["currency"],
                r["amount"],
                r["updated_at"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            json!([
                "1001",
                "7",
                "paid",
                "EUR",
                "19.90",
                "2026-01-02 10:00:00+00:00"
            ]),
            json!([
                "1002",
                "8",
                "pending",
                "USD",
                "5.00",
                "2026-01-02 11:30:00+00:00"
            ]),
            json!([
                "1002",
                "8",
                "shipped",
                "USD",
                "5.00",
                "2026-01-03 08:00:00+00:00"
            ]),
        ],
        "{rows:#?}"
    );
    assert!(
        rows.iter().all(|r| r["source_file"]
            .as_str()
            .is_some_and(|f| f.contains(&landing.path().display().to_string()))),
        "{rows:#?}"
    );

    // Spark's listener reached olo with its API key: the landing folder, an input only Spark
    // knows (the task declares none), is a node of olo's lineage graph, and nothing was refused.
    // (Which olo job it hangs on is the name mapping's business: Spark's OpenLineage job name is
    // the snake-cased app name, `<ws>_orders_daily.<action>`.)
    let landing_node = format!(
        "/api/v1/lineage?nodeId=dataset:file:{}&depth=1",
        landing.path().display()
    );
    d.wait_within(
        "OpenLineage events from Spark",
        Duration::from_secs(60),
        |d| {
            let path = landing_node.clone();
            async move { d.get(&path).await.0 == 200 }
        },
    )
    .await;
    let (_, graph) = d.get(&landing_node).await;
    eprintln!("Spark's input in olo's lineage: {graph}");
    let metrics = d.get_text("/metrics").await;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("olo_lineage_events_total{result=\"unauthorized\"}")),
        "olo refused lineage events:\n{metrics}"
    );
}
