//! Proof in a real Airflow: every DAG olo renders loads in Airflow 3.3's own DagBag with zero
//! import errors, and what Airflow parsed (task ids, dependencies, operators, schedule, start
//! date, params, tags, and the exact value of every string that came from YAML) is what the spec
//! says. Strings built to break out of a Python literal never execute.
//!
//! Needs the Airflow venv that `scripts/test.sh` installs (`OLO_AIRFLOW_PYTHON`, or the cached
//! venv under ~/.cache/olo). Without it these tests fail; they never skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use olo_schema::model::TaskKind;
use olo_schema::{validate, Repo, Snapshot};
use serde_json::{json, Value};

fn airflow_python() -> PathBuf {
    if let Some(p) = std::env::var_os("OLO_AIRFLOW_PYTHON") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/olo/venv-airflow/bin/python");
    assert!(
        cached.exists(),
        "Apache Airflow is not installed: run scripts/test.sh (it creates the venv with scripts/python-env.sh airflow)"
    );
    cached
}

fn load(dir: &Path) -> Snapshot {
    olo_reconciler::snapshot::from_worktree(dir).expect("readable repo")
}

/// Renders through the `olo render` binary, end to end.
fn render_with_cli(repo: &Path, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_olo"))
        .arg("render")
        .arg(repo)
        .arg("--out")
        .arg(out)
        .status()
        .expect("olo runs");
    assert!(status.success(), "olo render failed");
}

fn operator(kind: TaskKind<'_>) -> &'static str {
    match kind {
        TaskKind::Bash(_) => "BashOperator",
        TaskKind::Python(_) | TaskKind::Dbt(_) => "PythonOperator",
        // The rendered subclass that adds credentials from the worker's environment.
        TaskKind::Spark(_) => "_OloSparkSubmitOperator",
        TaskKind::Sql(_) => "SQLExecuteQueryOperator",
    }
}

/// What Airflow should parse, derived from the validated spec (not from the rendered text).
fn expectations(repo: &Repo) -> Value {
    let mut dags = serde_json::Map::new();
    for ws in repo.workspaces.values() {
        for job in ws.jobs.values() {
            let spec = &job.doc.spec;
            let tasks: serde_json::Map<String, Value> = spec
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.id.to_string(),
                        json!({"upstream": t.depends_on, "operator": operator(t.kind())}),
                    )
                })
                .collect();
            let params: BTreeMap<&str, Value> = spec
                .params
                .iter()
                .map(|(k, p)| (k.as_str(), p.default.clone().unwrap_or(Value::Null)))
                .collect();
            let mut tags = vec!["olo".to_string(), format!("workspace:{}", ws.name)];
            tags.extend(spec.tags.iter().cloned());
            dags.insert(
                job.dag_id.clone(),
                json!({
                    "tasks": tasks,
                    "schedule": job.schedule.as_airflow(),
                    "start_date": spec.start_date,
                    "catchup": spec.catchup,
                    "params": params,
                    "tags": tags,
                }),
            );
        }
    }
    json!({ "dags": dags })
}

struct Checked {
    import_errors: Value,
    dag_ids: Vec<String>,
    mismatches: Vec<String>,
    marker_exists: bool,
}

fn check_in_airflow(dags: &Path, expect: &Value, work: &Path) -> Checked {
    let expect_path = work.join("expect.json");
    std::fs::write(&expect_path, serde_json::to_vec(expect).unwrap()).unwrap();
    let home = work.join("airflow-home");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/airflow/check_dags.py");
    let output = Command::new(airflow_python())
        .arg(&script)
        .arg(dags)
        .arg(&expect_path)
        .env("AIRFLOW_HOME", &home)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("AIRFLOW__CORE__DAGS_FOLDER", dags)
        .env("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        .output()
        .expect("the Airflow venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "check_dags.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let v: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("bad checker output {last:?}: {e}"));
    Checked {
        import_errors: v["import_errors"].clone(),
        dag_ids: serde_json::from_value(v["dag_ids"].clone()).unwrap(),
        mismatches: serde_json::from_value(v["mismatches"].clone()).unwrap(),
        marker_exists: v["marker_exists"].as_bool().unwrap(),
    }
}

fn assert_loads_as_specified(repo_dir: &Path, extra_values: Vec<Value>, marker: Option<&Path>) {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    render_with_cli(repo_dir, &out);
    let validation = validate(load(repo_dir));
    let repo = validation.repo.expect("the repo is valid");
    let mut expect = expectations(&repo);
    expect["values"] = Value::Array(extra_values);
    if let Some(m) = marker {
        expect["marker"] = json!(m);
    }
    let checked = check_in_airflow(&out.join("dags"), &expect, work.path());
    assert_eq!(checked.import_errors, json!({}), "Airflow import errors");
    let mut want: Vec<String> = expect["dags"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    want.sort();
    assert_eq!(checked.dag_ids, want, "DAG ids Airflow loaded");
    assert!(
        checked.mismatches.is_empty(),
        "Airflow differs from the spec:\n{}",
        checked.mismatches.join("\n")
    );
    assert!(
        !checked.marker_exists,
        "a payload ran while Airflow loaded the DAGs"
    );
}

#[test]
fn example_repo_dags_load_in_airflow_as_specified() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo");
    assert_loads_as_specified(&repo, Vec::new(), None);
}

#[test]
fn a_generated_300_job_repo_loads_in_airflow_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let opts = olo_bench::SynthOptions {
        workspaces: 3,
        jobs_per_workspace: 100,
        seed: 300,
        bash_only: false,
    };
    olo_bench::write_files(dir.path(), &olo_bench::generate(&opts)).unwrap();
    assert_loads_as_specified(dir.path(), Vec::new(), None);
}

/// Strings made to end a Python literal early, smuggle code, or confuse templates.
fn hostile(marker: &Path) -> Vec<String> {
    let touch = format!("__import__('os').system('touch {}')", marker.display());
    vec![
        "it's \"quoted\" and 'single'".to_string(),
        "'''triple''' \"\"\"triple\"\"\" ''' \"\"\"".to_string(),
        "back\\slash\\ \\n \\x41 \\u0041 \\".to_string(),
        "line\nbreak\r\nand\ttab".to_string(),
        "line\u{2028}separator\u{2029}paragraph\u{85}next".to_string(),
        "{{ macros.ds_add(ds, 1) }} {% if true %}x{% endif %} {# c #}".to_string(),
        "%s %(name)s {0} {name} $HOME `id` $(id)".to_string(),
        format!("'); {touch}; ('"),
        format!("\"\"\"); {touch} #"),
        format!("\\'); {touch} #"),
        format!("'''+{touch}+'''"),
        "NUL\u{0}bell\u{7}esc\u{1b}[31m".to_string(),
        "unicode é ü ß 漢字 😀 \u{1D518}".to_string(),
    ]
}

fn yaml_str(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(s).unwrap()
}

#[test]
fn hostile_strings_reach_airflow_exactly_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let marker = dir.path().join("PWNED");
    let ws = root.join("workspaces/evil");
    std::fs::create_dir_all(ws.join("jobs")).unwrap();
    std::fs::create_dir_all(ws.join("sql")).unwrap();
    std::fs::create_dir_all(ws.join("spark")).unwrap();
    std::fs::create_dir_all(ws.join("dbt")).unwrap();
    std::fs::write(ws.join("spark/app.py"), "print('spark')\n").unwrap();
    std::fs::write(ws.join("dbt/dbt_project.yml"), "name: evil\n").unwrap();
    std::fs::write(
        ws.join("workspace.yaml"),
        "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: evil}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/evil', namespaces: [raw]}\n",
    )
    .unwrap();
    let mut values = Vec::new();
    for (i, h) in hostile(&marker).iter().enumerate() {
        let job = format!("hostile_{i:02}");
        let dag = format!("evil__{job}");
        let y = yaml_str(h);
        let sql = format!("q_{i:02}.sql");
        let sql_text = format!("{h}\n");
        std::fs::write(ws.join("sql").join(&sql), &sql_text).unwrap();
        let doc = format!(
            "apiVersion: olo/v1\nkind: Job\nmetadata:\n  name: {job}\n  description: {y}\nspec:\n  description: {y}\n  tags: [{y}]\n  params:\n    p: {{ type: string, default: {y}, enum: [{y}, other], description: {y} }}\n  defaults: {{ owner: {y} }}\n  tasks:\n    - id: b\n      description: {y}\n      bash: {{ command: {y} }}\n      env: {{ X: {y} }}\n    - id: p\n      python: {{ module: json.tool, args: [{y}, {y}] }}\n      env: {{ Y: {y} }}\n      mlflow: {{ experiment: {y} }}\n      depends_on: [b]\n    - id: s\n      spark: {{ application: spark/app.py, args: [{y}], conf: {{ my.conf: {y} }} }}\n    - id: q\n      sql: {{ file: sql/{sql} }}\n    - id: d\n      dbt: {{ select: {y}, exclude: {y} }}\n"
        );
        std::fs::write(ws.join("jobs").join(format!("{job}.yaml")), doc).unwrap();
        let mut check = |task: Option<&str>, path: &[&str], expected: Value| {
            values.push(json!({"dag": dag, "task": task, "path": path, "expected": expected}));
        };
        check(None, &["description"], json!(h));
        check(None, &["doc_md"], json!(h));
        check(None, &["params", "p", "description"], json!(h));
        check(Some("b"), &["bash_command"], json!(h));
        check(Some("b"), &["env", "X"], json!(h));
        check(Some("b"), &["doc_md"], json!(h));
        check(Some("b"), &["owner"], json!(h));
        check(Some("p"), &["op_kwargs", "args"], json!([h, h]));
        check(Some("p"), &["op_kwargs", "env", "Y"], json!(h));
        check(
            Some("p"),
            &["op_kwargs", "env", "MLFLOW_EXPERIMENT_NAME"],
            json!(h),
        );
        check(Some("s"), &["application_args"], json!([h]));
        check(Some("s"), &["conf", "my.conf"], json!(h));
        check(Some("q"), &["sql"], json!(sql_text));
        check(
            Some("d"),
            &["op_kwargs", "args"],
            json!(["build", "--select", h, "--exclude", h]),
        );
    }
    let v = validate(load(&root));
    assert_eq!(
        olo_schema::diagnostic::to_text(&v.diagnostics),
        "",
        "hostile repo must be valid"
    );
    assert_loads_as_specified(&root, values, Some(&marker));
    assert!(!marker.exists(), "a payload ran");
}

#[test]
fn the_example_smoke_test_job_really_runs_in_airflow() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    render_with_cli(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo"),
        &out,
    );
    let home = work.path().join("airflow-home");
    let python = airflow_python();
    let airflow = python.with_file_name("airflow");
    let env = |c: &mut Command| {
        c.env("AIRFLOW_HOME", &home)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", out.join("dags"))
            .env("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING");
    };
    let mut migrate = Command::new(&airflow);
    migrate.args(["db", "migrate"]);
    env(&mut migrate);
    let m = migrate.output().expect("airflow db migrate runs");
    assert!(
        m.status.success(),
        "airflow db migrate failed: {}",
        String::from_utf8_lossy(&m.stderr)
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/airflow/run_dag.py");
    let mut run = Command::new(&python);
    run.arg(&script)
        .arg(out.join("dags"))
        .arg("platform__smoke_test");
    env(&mut run);
    let output = run.output().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        v,
        json!({
            "state": "success",
            "tasks": {
                "hello": "success",
                "python_platform": "success",
                "python_calendar": "success",
                "python_timeit": "success",
                "check": "success"
            }
        })
    );
}

/// Every cron expression `olo validate` accepts loads in Airflow: its own timetable
/// (`CronTriggerTimetable`, croniter underneath) parses it and finds a next run. The table holds
/// Quartz forms that croner (olo's parser) knows and croniter does not (`5L`, `LW`, `5#L`): olo
/// refuses those. olo may refuse more than Airflow (`L5`, `1-L`), never less.
#[test]
fn every_cron_expression_olo_accepts_loads_in_airflow() {
    let expressions = [
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 * * 5L",
        "0 0 * * 5#3",
        "0 0 15W * *",
        "0 0 * * L",
        "0 0 L-2 * *",
        "0 0 1W * *",
        "0 0 L,15 * *",
        "0 0 * * L5",
        "0 0 * * FRIL",
        "0 0 * * 5#L",
        "0 0 * * SUN#2",
        "0 0 * * 1#1,5#3",
        "0 0 1-L * *",
        "0 0 ? * *",
        "0 0 * * 7",
        "*/5 1-3 * JAN,FEB MON-FRI",
        "0 0 29 2 *",
    ];
    let accepted: Vec<&str> = expressions
        .iter()
        .copied()
        .filter(|e| olo_schema::schedule::Schedule::parse(Some(e)).is_ok())
        .collect();
    for refused in ["0 0 LW * *", "0 0 * * 5L", "0 0 * * L", "0 0 * * 5#L"] {
        assert!(!accepted.contains(&refused), "olo accepts {refused}");
    }
    let script = r#"
import json, sys
import pendulum
from airflow.timetables.trigger import CronTriggerTimetable
out = {}
for e in json.loads(sys.argv[1]):
    try:
        t = CronTriggerTimetable(e, timezone="UTC")
        out[e] = str(t._get_next(pendulum.datetime(2026, 1, 1, tz="UTC")))
    except Exception as ex:
        out[e] = "refused: " + type(ex).__name__
print(json.dumps(out))
"#;
    let run = Command::new(airflow_python())
        .args(["-c", script, &serde_json::to_string(&accepted).unwrap()])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let airflow: BTreeMap<String, String> = serde_json::from_slice(
        String::from_utf8_lossy(&run.stdout)
            .lines()
            .last()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(airflow.len(), accepted.len());
    for (expr, next) in &airflow {
        assert!(
            !next.starts_with("refused"),
            "olo accepts `{expr}`, Airflow {next}"
        );
    }
}
