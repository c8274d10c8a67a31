//! The lakehouse target end to end with real components: `olo apply` writes each workspace's
//! namespaces and warehouse, and an independent client reads them back.
//!
//! - the embedded default: Iceberg's SQL catalog in SQLite and warehouse folders on the local
//!   disk, read back with PyIceberg's `SqlCatalog`;
//! - Apache Iceberg's reference REST catalog server 1.10.1 (RESTCatalogServer on a SQLite
//!   JdbcCatalog) and an S3 server (versitygw 1.8.0), read back with PyIceberg's REST client and
//!   curl's SigV4 signing.
//!
//! scripts/test.sh installs (cached) and starts them, and sets OLO_TEST_PYICEBERG_PYTHON and the
//! OLO_TEST_ICEBERG_* / OLO_TEST_S3_* variables; without them these tests fail, never skip.

mod common;

use std::process::Command;

use common::{ok, Olo, Repo};
use serde_json::Value;

fn need(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts the lakehouse")
    })
}

/// A workspace name no earlier run used (the REST catalog outlives a test run when reused).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}_{}", std::process::id(), nanos % 1_000_000_000)
}

fn workspace(name: &str, warehouse: &str, namespaces: &[&str], team: &str) -> String {
    workspace_with_tables(name, warehouse, namespaces, team, "")
}

/// `tables`: YAML of `spec.lakehouse.tables` items, indented by four spaces.
fn workspace_with_tables(
    name: &str,
    warehouse: &str,
    namespaces: &[&str],
    team: &str,
    tables: &str,
) -> String {
    let mut text = workspace_plain(name, warehouse, namespaces, team);
    if !tables.is_empty() {
        text.push_str("    tables:\n");
        text.push_str(tables);
    }
    text
}

fn field_names(table: &Value) -> Vec<String> {
    table["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

fn workspace_plain(name: &str, warehouse: &str, namespaces: &[&str], team: &str) -> String {
    format!(
        "apiVersion: olo/v1\nkind: Workspace\nmetadata:\n  name: {name}\n  owners: [data@example.com]\n\
         spec:\n  lakehouse:\n    catalog: lake\n    warehouse: '{warehouse}'\n    namespaces: [{}]\n\
         \x20   properties: {{team: {team}}}\n",
        namespaces.join(", ")
    )
}

/// A config repository without the common test workspace `w`
/// (each test has its own workspace).
fn only_workspace(ws: &str) -> Repo {
    let repo = Repo::new();
    std::fs::remove_dir_all(repo.path().join("workspaces/w")).unwrap();
    assert!(!ws.is_empty());
    repo
}

/// PyIceberg, through tests/iceberg/check.py.
fn pyiceberg(catalog: &[&str], command: &[&str]) -> Value {
    let python = need("OLO_TEST_PYICEBERG_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/iceberg/check.py");
    let out = Command::new(python)
        .arg(script)
        .args(catalog)
        .args(command)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "check.py {catalog:?} {command:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The namespaces under `ws` as PyIceberg lists them: dotted name -> properties.
fn namespaces_of(catalog: &[&str], ws: &str) -> std::collections::BTreeMap<String, Value> {
    pyiceberg(catalog, &["namespaces"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["namespace"][0] == ws)
        .map(|n| {
            let name: Vec<&str> = n["namespace"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            (name.join("."), n["properties"].clone())
        })
        .collect()
}

fn plan_json(olo: &Olo, repo: &Repo) -> (Option<i32>, Value) {
    let out = olo.run(&[
        "plan",
        &repo.path().display().to_string(),
        "--format",
        "json",
    ]);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(2),
        "olo plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

fn change<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no change for {name} in {plan:#}"))
}

#[test]
fn the_embedded_sql_catalog_and_local_warehouse_as_pyiceberg_reads_them() {
    let ws = unique("sq");
    let repo = only_workspace(&ws);
    let path = format!("workspaces/{ws}/workspace.yaml");
    let events = "    - name: raw.events\n      columns:\n        - {name: id, type: long, required: true}\n        - {name: ts, type: timestamptz}\n      partition_by: [day(ts)]\n";
    repo.write(
        &path,
        &workspace_with_tables(
            &ws,
            &format!("s3://bkt/{ws}"),
            &["raw", "clean"],
            "a",
            events,
        ),
    );
    repo.commit("lakehouse", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string());
    ok(&olo.apply());

    let state = olo.state.path();
    let db = state.join("iceberg-catalog.db");
    let sql = [
        "sql",
        "--uri",
        &format!("sqlite:///{}", db.display()),
        "--catalog",
        "lake",
    ];
    let sql: Vec<&str> = sql.iter().map(|s| &**s).collect();
    let got = namespaces_of(&sql, &ws);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        vec![ws.clone(), format!("{ws}.clean"), format!("{ws}.raw")]
    );
    let raw = &got[&format!("{ws}.raw")];
    assert_eq!(raw["team"], "a");
    assert_eq!(raw["olo.managed-by"], "olo");
    assert_eq!(raw["owner"], "data@example.com");
    let warehouse = state.join("warehouse").join("bkt").join(&ws);
    assert_eq!(
        raw["location"],
        format!("file://{}/raw", warehouse.display())
    );
    assert!(warehouse.is_dir(), "the warehouse folder was created");
    // The declared table, as PyIceberg reads it from the metadata file olo wrote.
    let table = pyiceberg(&sql, &["table", &format!("{ws}.raw.events")]);
    assert_eq!(field_names(&table), vec!["id", "ts"]);
    assert_eq!(table["fields"][0]["required"], true);
    assert_eq!(table["fields"][1]["type"], "timestamptz");
    assert_eq!(table["partition_spec"][0]["transform"], "day");
    assert_eq!(table["partition_spec"][0]["source_name"], "ts");
    assert_eq!(
        table["location"],
        format!("file://{}/raw/events", warehouse.display())
    );
    // Applied means in sync: nothing left to do.
    let (code, _) = plan_json(&olo, &repo);
    assert_eq!(code, Some(0));

    // Another client sets a property of its own and creates a table in `raw`.
    pyiceberg(
        &sql,
        &["set-properties", &format!("{ws}.raw"), "retention=30d"],
    );
    pyiceberg(&sql, &["create-table", &format!("{ws}.raw.orders")]);

    // `clean` leaves the repository, `team` changes, the table gains two columns.
    let events2 = events.replace(
        "      partition_by",
        "        - {name: extra, type: int}\n        - {name: note, type: string, doc: free text}\n      partition_by",
    );
    repo.write(
        &path,
        &workspace_with_tables(&ws, &format!("s3://bkt/{ws}"), &["raw"], "b", &events2),
    );
    repo.commit("drop clean", ("Ada", "ada@example.com"));
    let (code, plan) = plan_json(&olo, &repo);
    assert_eq!(code, Some(2));
    assert_eq!(
        change(&plan, &format!("namespace/lake/{ws}.clean"))["action"],
        "delete"
    );
    let update = change(&plan, &format!("namespace/lake/{ws}.raw"));
    assert_eq!(update["action"], "update");
    let diff = update["diff"].as_str().unwrap();
    assert!(diff.contains("-team = a\n+team = b"), "{diff}");
    assert!(!diff.contains("retention"), "{diff}");
    ok(&olo.apply());
    let got = namespaces_of(&sql, &ws);
    assert!(!got.contains_key(&format!("{ws}.clean")), "{got:?}");
    let raw = &got[&format!("{ws}.raw")];
    assert_eq!(raw["team"], "b");
    assert_eq!(raw["retention"], "30d", "a property olo did not set stays");
    let table = pyiceberg(&sql, &["table", &format!("{ws}.raw.events")]);
    assert_eq!(field_names(&table), vec!["id", "ts", "extra", "note"]);
    assert_eq!(table["fields"][3]["doc"], "free text");
    assert_eq!(table["fields"][3]["id"], 4);

    // `raw` leaves too, but it holds a table: kept, and the plan says why.
    repo.write(&path, &workspace(&ws, &format!("s3://bkt/{ws}"), &[], "b"));
    repo.commit("drop raw", ("Ada", "ada@example.com"));
    let (_, plan) = plan_json(&olo, &repo);
    let keep = change(&plan, &format!("namespace/lake/{ws}.raw"));
    assert_eq!(keep["action"], "keep");
    assert!(
        keep["reason"].as_str().unwrap().contains("holds 2 tables"),
        "{keep}"
    );
    let forgotten = change(&plan, &format!("table/lake/{ws}.raw.events"));
    assert!(
        forgotten["reason"]
            .as_str()
            .unwrap()
            .contains("never drops tables"),
        "{forgotten}"
    );
    ok(&olo.apply());
    assert!(namespaces_of(&sql, &ws).contains_key(&format!("{ws}.raw")));
    let table = pyiceberg(&sql, &["table", &format!("{ws}.raw.orders")]);
    assert_eq!(table["fields"][0]["name"], "id");
}

fn curl_s3(url: &str) -> (u16, String) {
    let key = need("OLO_TEST_S3_ACCESS_KEY");
    let secret = need("OLO_TEST_S3_SECRET_KEY");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &format!("{key}:{secret}"),
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            url,
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn a_rest_catalog_and_an_s3_warehouse_as_pyiceberg_and_curl_read_them() {
    let iceberg = need("OLO_TEST_ICEBERG_URL");
    let warehouse = need("OLO_TEST_ICEBERG_WAREHOUSE");
    let s3 = need("OLO_TEST_S3_URL");
    let ws = unique("rs");
    let repo = only_workspace(&ws);
    let path = format!("workspaces/{ws}/workspace.yaml");
    let location = format!("s3://lakehouse/teams/{ws}");
    let revenue = "    - name: gold.revenue\n      columns:\n        - {name: day, type: date, required: true}\n        - {name: amount, type: 'decimal(12, 2)'}\n      partition_by: [month(day)]\n      properties: {write.format.default: parquet}\n";
    repo.write(
        &path,
        &workspace_with_tables(&ws, &location, &["bronze", "gold"], "a", revenue),
    );
    repo.commit("lakehouse", ("Ada", "ada@example.com"));
    let olo = Olo::new(&repo.path().display().to_string())
        .set("OLO_LAKEHOUSE__CATALOG", "rest")
        .set("OLO_LAKEHOUSE__REST_URI", &iceberg)
        .set("OLO_RENDER__ICEBERG_REST_WAREHOUSE", &warehouse)
        .set("OLO_LAKEHOUSE__WAREHOUSE", "s3")
        .set("OLO_RENDER__S3_ENDPOINT", &s3)
        .set("OLO_S3_ACCESS_KEY", &need("OLO_TEST_S3_ACCESS_KEY"))
        .set("OLO_S3_SECRET_KEY", &need("OLO_TEST_S3_SECRET_KEY"));
    ok(&olo.apply());

    let rest = ["rest", "--uri", &iceberg, "--warehouse", &warehouse];
    let rest: Vec<&str> = rest.iter().map(|s| &**s).collect();
    let got = namespaces_of(&rest, &ws);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        vec![ws.clone(), format!("{ws}.bronze"), format!("{ws}.gold")]
    );
    let gold = &got[&format!("{ws}.gold")];
    assert_eq!(gold["location"], format!("{location}/gold"));
    assert_eq!(gold["olo.workspace"], ws.as_str());
    assert_eq!(got[&ws]["location"], location.as_str());

    // The bucket exists and the prefix carries olo's marker, as another S3 client sees it.
    let (code, body) = curl_s3(&format!("{s3}/lakehouse/teams/{ws}/.olo-warehouse"));
    assert_eq!(code, 200, "{body}");
    let marker: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(marker["workspace"], ws.as_str());
    let (code, _) = plan_json(&olo, &repo);
    assert_eq!(code, Some(0), "applied means in sync");

    // Someone edits a property olo owns by hand: the next plan puts it back as drift.
    pyiceberg(
        &rest,
        &["set-properties", &format!("{ws}.gold"), "team=rogue"],
    );
    let (code, plan) = plan_json(&olo, &repo);
    assert_eq!(code, Some(2));
    let fix = change(&plan, &format!("namespace/lake/{ws}.gold"));
    assert_eq!(fix["action"], "update");
    assert!(
        fix["reason"].as_str().unwrap().starts_with("drift"),
        "{fix}"
    );
    ok(&olo.apply());
    assert_eq!(
        namespaces_of(&rest, &ws)[&format!("{ws}.gold")]["team"],
        "a"
    );

    // The declared table, as PyIceberg reads it through the REST catalog.
    let table = pyiceberg(&rest, &["table", &format!("{ws}.gold.revenue")]);
    assert_eq!(field_names(&table), vec!["day", "amount"]);
    assert_eq!(table["fields"][1]["type"], "decimal(12, 2)");
    assert_eq!(table["partition_spec"][0]["transform"], "month");
    assert_eq!(table["properties"]["write.format.default"], "parquet");
    // Under its namespace's location, in the workspace's warehouse (left to itself, Iceberg's
    // reference server would put it under the catalog's warehouse, `{warehouse}/{ws}/gold/revenue`).
    assert_eq!(
        table["location"],
        format!("{location}/gold/revenue"),
        "{table}"
    );

    // Dropping `amount` is refused (no `allow`), adding `currency` applies; the plan says so.
    let evolved = revenue.replace(
        "        - {name: amount, type: 'decimal(12, 2)'}\n",
        "        - {name: currency, type: string}\n",
    );
    repo.write(
        &path,
        &workspace_with_tables(&ws, &location, &["bronze", "gold"], "a", &evolved),
    );
    repo.commit("evolve revenue", ("Ada", "ada@example.com"));
    let (_, plan) = plan_json(&olo, &repo);
    let evolve = change(&plan, &format!("table/lake/{ws}.gold.revenue"));
    assert_eq!(evolve["action"], "update");
    assert!(
        evolve["reason"]
            .as_str()
            .unwrap()
            .contains("dropping column `amount` is destructive: add `allow: [drop_column]`"),
        "{evolve}"
    );
    ok(&olo.apply());
    let table = pyiceberg(&rest, &["table", &format!("{ws}.gold.revenue")]);
    assert_eq!(field_names(&table), vec!["day", "currency", "amount"]);
    // Allowed, it goes.
    let allowed = evolved.replace(
        "      properties:",
        "      allow: [drop_column]\n      properties:",
    );
    repo.write(
        &path,
        &workspace_with_tables(&ws, &location, &["bronze", "gold"], "a", &allowed),
    );
    repo.commit("drop amount", ("Ada", "ada@example.com"));
    ok(&olo.apply());
    let table = pyiceberg(&rest, &["table", &format!("{ws}.gold.revenue")]);
    assert_eq!(field_names(&table), vec!["day", "currency"]);
    let (code, _) = plan_json(&olo, &repo);
    assert_eq!(code, Some(0), "converged");

    // A table in bronze, then bronze leaves the repository: kept, with the reason.
    pyiceberg(&rest, &["create-table", &format!("{ws}.bronze.orders")]);
    repo.write(
        &path,
        &workspace_with_tables(&ws, &location, &["gold"], "a", &allowed),
    );
    repo.commit("drop bronze", ("Ada", "ada@example.com"));
    let (_, plan) = plan_json(&olo, &repo);
    let keep = change(&plan, &format!("namespace/lake/{ws}.bronze"));
    assert_eq!(keep["action"], "keep");
    assert!(
        keep["reason"].as_str().unwrap().contains("holds 1 table"),
        "{keep}"
    );
    ok(&olo.apply());
    let table = pyiceberg(&rest, &["table", &format!("{ws}.bronze.orders")]);
    assert_eq!(table["fields"][1]["name"], "name");
}

/// `olo serve` shows each workspace's lakehouse as it is now: the API and the workspace page
/// read the catalog, so a property edited by another client shows as `differs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_page_and_api_show_the_live_lakehouse() {
    let ws = unique("lv");
    let repo = only_workspace(&ws);
    let events = "    - name: raw.events\n      columns:\n        - {name: id, type: long, required: true}\n        - {name: ts, type: timestamptz}\n";
    repo.write(
        &format!("workspaces/{ws}/workspace.yaml"),
        &workspace_with_tables(&ws, &format!("s3://bkt/{ws}"), &["raw"], "a", events),
    );
    repo.commit("lakehouse", ("Ada", "ada@example.com"));
    let d = common::daemon::Daemon::start(&repo, &[]).await;
    d.wait_until("the first apply", |d| async move {
        d.last_applied().await.is_some()
    })
    .await;

    let (code, live) = d.get(&format!("/api/v1/workspaces/{ws}/lakehouse")).await;
    assert_eq!(code, 200, "{live}");
    assert!(
        live["catalog"].as_str().unwrap().contains("SQL catalog"),
        "{live}"
    );
    assert_eq!(live["warehouse"]["exists"], true, "{live}");
    let states: Vec<(&str, &str)> = live["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap(),
                n["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![(ws.as_str(), "in_sync"), (&format!("{ws}.raw"), "in_sync")]
    );
    assert_eq!(live["tables"][0]["table"], "raw.events");
    assert_eq!(live["tables"][0]["state"], "in_sync");
    assert_eq!(live["tables"][0]["columns"], 2);

    // Another client edits a property olo manages: the page says so before the next reconcile.
    let db = d.olo.state.path().join("iceberg-catalog.db");
    let sql = [
        "sql",
        "--uri",
        &format!("sqlite:///{}", db.display()),
        "--catalog",
        "lake",
    ];
    let sql: Vec<&str> = sql.iter().map(|s| &**s).collect();
    pyiceberg(
        &sql,
        &["set-properties", &format!("{ws}.raw"), "team=rogue"],
    );
    let (_, live) = d.get(&format!("/api/v1/workspaces/{ws}/lakehouse")).await;
    assert_eq!(live["namespaces"][1]["state"], "differs", "{live}");
    assert_eq!(live["namespaces"][1]["properties"]["team"], "rogue");

    let page = d.get_text(&format!("/workspaces/{ws}")).await;
    assert!(page.contains("id=\"live-namespaces\""), "{page}");
    assert!(page.contains(">differs<"), "{page}");
    assert!(page.contains("id=\"live-tables\""), "{page}");
    assert!(page.contains("raw.events"), "{page}");

    let (code, err) = d.get("/api/v1/workspaces/nope/lakehouse").await;
    assert_eq!(code, 404, "{err}");
}
