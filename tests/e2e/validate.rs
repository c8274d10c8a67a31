//! `olo validate` against fixture repositories: every invalid fixture's exact diagnostics are
//! snapshotted, the example repository validates cleanly, and hostile input is refused quickly.

use std::path::{Path, PathBuf};

use olo_schema::{diagnostic, validate, Snapshot};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(dir: &Path) -> Snapshot {
    olo_reconciler::snapshot::from_worktree(dir).expect("fixture readable")
}

#[test]
fn every_invalid_fixture_has_its_exact_diagnostics() {
    let root = fixtures().join("invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "expected at least 40 invalid fixtures, found {}",
        cases.len()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let validation = validate(load(&case));
        assert!(
            validation.repo.is_none(),
            "fixture {name} should be invalid but validated"
        );
        insta::assert_snapshot!(name, diagnostic::to_text(&validation.diagnostics));
    }
}

#[test]
fn example_repo_is_valid() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo");
    let validation = validate(load(&repo));
    assert_eq!(diagnostic::to_text(&validation.diagnostics), "");
    let repo = validation.repo.expect("valid");
    let jobs: Vec<String> = repo
        .workspaces
        .values()
        .flat_map(|w| w.jobs.values().map(|j| j.dag_id.clone()))
        .collect();
    assert!(
        jobs.contains(&"sales__orders_daily".to_string()),
        "{jobs:?}"
    );
    assert!(
        jobs.contains(&"platform__smoke_test".to_string()),
        "{jobs:?}"
    );
}

fn minimal_workspace(snapshot: &mut Snapshot) {
    snapshot.insert_file(
        "workspaces/w/workspace.yaml",
        "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w'}\n",
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let mut s = Snapshot::new(None);
    minimal_workspace(&mut s);
    let mut big =
        String::from("apiVersion: olo/v1\nkind: Job\nmetadata: {name: big}\nspec:\n  tasks:\n");
    while big.len() <= olo_schema::yaml::MAX_FILE_BYTES {
        big.push_str("  # padding padding padding padding padding padding padding padding\n");
    }
    s.insert_file("workspaces/w/jobs/big.yaml", big);
    let v = validate(s);
    assert_eq!(v.diagnostics.len(), 1, "{:?}", v.diagnostics);
    assert!(v.diagnostics[0]
        .message
        .contains("config files are limited to 1048576 bytes"));
}

#[test]
fn deeply_nested_and_alias_bomb_documents_are_refused() {
    let mut s = Snapshot::new(None);
    minimal_workspace(&mut s);
    s.insert_file(
        "workspaces/w/jobs/deep.yaml",
        format!("a: {}", "[".repeat(100_000)),
    );
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s.insert_file("workspaces/w/jobs/bomb.yaml", bomb);
    let v = validate(s);
    let text = diagnostic::to_text(&v.diagnostics);
    assert!(
        text.contains("workspaces/w/jobs/bomb.yaml:") && text.contains("alias bomb"),
        "{text}"
    );
    assert!(
        text.contains("workspaces/w/jobs/deep.yaml:") && text.contains("nesting too deep"),
        "{text}"
    );
}

#[test]
fn a_file_reached_through_a_linked_folder_inside_the_workspace_is_accepted() {
    let mut s = Snapshot::new(None);
    minimal_workspace(&mut s);
    s.insert_file("workspaces/w/sql/clean.sql", "select 1\n");
    s.insert_symlink("workspaces/w/queries", "sql");
    s.insert_file(
        "workspaces/w/jobs/j.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  tasks:\n    - id: q\n      sql: {file: queries/clean.sql}\n",
    );
    let v = validate(s);
    assert_eq!(diagnostic::to_text(&v.diagnostics), "");
    assert!(v.repo.is_some());
}

/// The example repository agrees with itself: every table a task of the example writes is
/// declared with exactly the columns (names, in order) the task's code produces, and every
/// `alias.column` an example query reads from a declared table is one of its declared columns.
///
/// The columns are read from the example's own files the way a reviewer would, not by a SQL
/// parser: a Spark application's `.alias("x")` names, a MERGE's `INSERT (...)` list, and the
/// outermost select list of a dbt model or `CREATE TABLE ... AS`. That reading is enough for the
/// sample (the test fails when it finds nothing to compare).
#[test]
fn example_tables_are_declared_as_the_example_code_writes_and_reads_them() {
    use olo_schema::model::TaskKind;
    use std::collections::BTreeMap;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo");
    let repo = validate(load(&root)).repo.expect("valid");
    // "<workspace>.<namespace>.<table>" -> declared column names
    let mut declared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ws in repo.workspaces.values() {
        for t in &ws.doc.spec.lakehouse.tables {
            let cols = t.columns.iter().map(|c| c.name.clone()).collect();
            declared.insert(format!("{}.{}", ws.name, t.name), cols);
        }
    }
    let full = |ws: &str, d: &str| {
        if d.matches('.').count() == 2 {
            d.to_string()
        } else {
            format!("{ws}.{d}")
        }
    };

    let mut problems = Vec::new();
    let mut writes_checked = 0;
    let mut reads_checked = 0;
    for ws in repo.workspaces.values() {
        for job in ws.jobs.values() {
            for task in &job.doc.spec.tasks {
                let file = match task.kind() {
                    TaskKind::Spark(s) => s.application.clone(),
                    TaskKind::Sql(s) => s.file.clone(),
                    TaskKind::Dbt(d) => format!("{}/models/{}.sql", d.project_dir, d.select),
                    _ => continue,
                };
                let path = root.join(ws.folder()).join(&file);
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let code = strip_comments(&text);
                let what = format!("{} task {} ({file})", job.dag_id, task.id.as_str());
                for out in &task.outputs {
                    let table = full(ws.name.as_str(), out);
                    let Some(cols) = declared.get(&table) else {
                        problems.push(format!(
                            "{what} writes {table}, which no workspace declares"
                        ));
                        continue;
                    };
                    let produced = if file.ends_with(".py") {
                        spark_aliases(&code)
                    } else {
                        merge_insert_columns(&code).unwrap_or_else(|| select_list(&code))
                    };
                    writes_checked += 1;
                    if &produced != cols {
                        problems.push(format!(
                            "{what} writes {produced:?} into {table}, declared as {cols:?}"
                        ));
                    }
                }
                for (table, column) in qualified_reads(&code, ws.name.as_str()) {
                    if let Some(cols) = declared.get(&table) {
                        reads_checked += 1;
                        if !cols.contains(&column) {
                            problems.push(format!(
                                "{what} reads {table}.{column}; {table} declares {cols:?}"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every writing task of the sample (ingest, clean, revenue, upsert_customers, customer_summary,
    // build_report) and the cross-workspace read of sales.gold.revenue were compared.
    assert_eq!(writes_checked, 6);
    assert!(
        reads_checked >= 10,
        "only {reads_checked} column reads compared"
    );
}

/// The text without `--` comments and Jinja `{{ config(...) }}` / `{# #}` blocks (sources stay:
/// [`qualified_reads`] reads them).
fn strip_comments(text: &str) -> String {
    let no_lines: String = text
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let config = regex::Regex::new(r"(?s)\{\{\s*config\(.*?\)\s*\}\}").unwrap();
    config.replace_all(&no_lines, "").into_owned()
}

fn spark_aliases(code: &str) -> Vec<String> {
    let alias = regex::Regex::new(r#"\.alias\("(\w+)"\)"#).unwrap();
    alias
        .captures_iter(code)
        .map(|c| c[1].to_string())
        .collect()
}

/// The column list of a MERGE's `INSERT (...)`, if the statement has one.
fn merge_insert_columns(code: &str) -> Option<Vec<String>> {
    let insert = regex::Regex::new(r"(?i)\bINSERT\s*\(([^)]*)\)").unwrap();
    let list = insert.captures_iter(code).last()?;
    Some(list[1].split(',').map(|c| c.trim().to_string()).collect())
}

/// The output names of the first `select` list: each item's alias, else its column name.
fn select_list(code: &str) -> Vec<String> {
    let lower = code.to_lowercase();
    let start = lower.find("select").expect("a select") + "select".len();
    let mut items = Vec::new();
    let (mut depth, mut item) = (0, String::new());
    let rest = &code[start..];
    let mut i = 0;
    while i < rest.len() {
        let c = rest[i..].chars().next().unwrap();
        if depth == 0 && rest[i..].to_lowercase().starts_with("from") {
            break;
        }
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                i += 1;
                continue;
            }
            _ => {}
        }
        item.push(c);
        i += c.len_utf8();
    }
    items.push(item);
    let as_word = regex::Regex::new(r"(?i)\bas\s+(\w+)\s*$").unwrap();
    items
        .iter()
        .map(|it| {
            let it = it.trim();
            match as_word.captures(it) {
                Some(c) => c[1].to_string(),
                None => it.rsplit('.').next().unwrap_or(it).trim().to_string(),
            }
        })
        .collect()
}

/// (`<workspace>.<namespace>.<table>`, column) for every `alias.column` whose alias names a
/// table: `lake."ws.ns".table AS alias`, or a dbt `{{ source('ns', 'table') }} as alias` (a
/// source of the task's own workspace).
fn qualified_reads(code: &str, ws: &str) -> Vec<(String, String)> {
    let from = regex::Regex::new(
        r#"(?i)(?:\w+\."(\w+)\.(\w+)"\.(\w+)|\{\{\s*source\('(\w+)',\s*'(\w+)'\)\s*\}\})\s+as\s+(\w+)"#,
    )
    .unwrap();
    let mut reads = Vec::new();
    for c in from.captures_iter(code) {
        let table = match (c.get(1), c.get(4)) {
            (Some(w), _) => format!("{}.{}.{}", w.as_str(), &c[2], &c[3]),
            (None, Some(ns)) => format!("{ws}.{}.{}", ns.as_str(), &c[5]),
            _ => continue,
        };
        let column = regex::Regex::new(&format!(r"\b{}\.(\w+)", &c[6])).unwrap();
        for col in column.captures_iter(code) {
            reads.push((table.clone(), col[1].to_string()));
        }
    }
    reads
}

/// The cron forms olo's validation takes are the ones Airflow's own parser (croniter, in the
/// Airflow venv of scripts/python-env.sh airflow, `OLO_TEST_AIRFLOW_PYTHON`) takes, form by form:
/// olo never passes a schedule Airflow would refuse to import. A few forms croniter reads and
/// olo's parser (croner) does not are refused by olo: listed, so that a change either way shows.
#[test]
fn cron_forms_agree_with_airflows_own_parser() {
    const FORMS: &[&str] = &[
        "0 0 1W,15 * *",
        "0 0 15W * *",
        "0 0 1-5W * *",
        "0 0 W * *",
        "0 0 L * *",
        "0 0 L-2 * *",
        "0 0 15W/2 * *",
        "0 0 ? * 1",
        "0 0 * * ?",
        "0 0 * * 5#3",
        "0 0 * * 5#5",
        "0 0 * * MON#2",
        "0 0 * * 1#1,3#3",
        "0 0 * * 5#6",
        "0 0 * * 5#0",
        "*/0 * * * *",
        "0/15 * * * *",
        "1-5/2 * * * *",
        "5-1 * * * *",
        "0 0 * * 7",
        "0 0 * * 0-7",
        "0 0 * * SUN-SAT",
        "0 0 * * MON-FRI/2",
        "0 0 1,15W * *",
        "0 0 31W * *",
        "0 0 L,15 * *",
        "0 0 15,L * *",
        "0 0 * JAN-DEC/3 *",
        "0 0 1 1 * 2026",
        "@daily",
        "@hourly",
        "@yearly",
        "@annually",
        "@midnight",
        "@reboot",
        "0 0 LW * *",
        "0 0 * * L",
        "0 0 * * 5L",
        "0 0 15W,L * *",
        "0 0 1-15W * *",
        "0 0 W15 * *",
        "0 0 * * 1-5#2",
        "0 0 * * 5#3,1",
        "0 0 * * 5#L",
        "*/5 * * * *",
        "0 12 * * MON-FRI",
        "0 0 1-31/2 * *",
    ];
    /// croniter reads these; olo refuses them (croner does not take them).
    const OLO_STRICTER: &[&str] = &[
        "0/15 * * * *",
        "5-1 * * * *",
        "@annually",
        "@midnight",
        "0 0 W15 * *",
    ];
    let python = std::env::var("OLO_TEST_AIRFLOW_PYTHON").expect(
        "OLO_TEST_AIRFLOW_PYTHON must name the python of Airflow's venv (scripts/test.sh sets it: $(scripts/python-env.sh airflow)/bin/python)",
    );
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom croniter import croniter\nprint(json.dumps([croniter.is_valid(e) for e in json.load(sys.stdin)]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(serde_json::to_string(FORMS).unwrap().as_bytes())?;
            child.wait_with_output()
        })
        .expect("running croniter");
    assert!(out.status.success(), "{out:?}");
    let airflow: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    let mut disagree = Vec::new();
    for (form, airflow_takes) in FORMS.iter().zip(airflow) {
        let olo_takes = olo_schema::schedule::Schedule::parse(Some(form)).is_ok();
        assert!(
            !olo_takes || airflow_takes,
            "olo passes `{form}`, which Airflow refuses to import"
        );
        if olo_takes != airflow_takes {
            disagree.push(*form);
        }
    }
    assert_eq!(disagree, OLO_STRICTER);
}
