//! One job -> one Airflow 3 DAG file. All decisions (defaults merged, Spark conf, environment)
//! are made here in Rust; the template only lays the file out.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use olo_schema::model::{TaskDefaults, TaskKind};
use olo_schema::{Job, Repo, Workspace};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::settings::RenderSettings;
use crate::{Error, Result};

const DAG_TEMPLATE: &str = include_str!("../files/dag.py.j2");

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .block_delimiters("<%", "%>")
                .variable_delimiters("<<", ">>")
                .comment_delimiters("<#", "#>")
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("valid delimiters"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // The one escaping path: every expression is written as a Python literal.
        env.set_formatter(|out, _state, value| {
            let mut literal = String::new();
            crate::python::write_template_value(&mut literal, value)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e))?;
            out.write_str(&literal).map_err(minijinja::Error::from)
        });
        env.add_template("dag.py", DAG_TEMPLATE)
            .expect("DAG template parses");
        env
    })
}

#[derive(Serialize)]
struct DagView {
    dag_id: String,
    description: Option<String>,
    doc_md: Option<String>,
    schedule: Option<String>,
    start_date: Option<[u32; 3]>,
    end_date: Option<[u32; 3]>,
    catchup: bool,
    paused: bool,
    max_active_runs: Option<u32>,
    max_active_tasks: Option<u32>,
    run_timeout: Option<u64>,
    tags: Vec<String>,
    params: Vec<ParamView>,
    defaults: DefaultsView,
    tasks: Vec<Value>,
    edges: Vec<(String, String)>,
    uses: Uses,
}

#[derive(Serialize)]
struct ParamView {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    has_default: bool,
    default: Value,
    description: Option<String>,
    choices: Option<Vec<Value>>,
}

#[derive(Serialize, Default)]
struct DefaultsView {
    owner: Option<String>,
    retries: Option<u32>,
    retry_delay: Option<u64>,
    timeout: Option<u64>,
}

#[derive(Serialize, Default)]
struct Uses {
    bash: bool,
    python_operator: bool,
    python_module: bool,
    subprocess: bool,
    spark: bool,
    sql: bool,
    dbt: bool,
    /// Some task declares inputs or outputs (rendered as OpenLineage inlets and outlets).
    lineage: bool,
}

/// Renders the DAG file body (without olo's header) of one job.
pub fn render_dag(
    repo: &Repo,
    ws: &Workspace,
    job: &Job,
    settings: &RenderSettings,
) -> Result<String> {
    let view = view(repo, ws, job, settings)?;
    environment()
        .get_template("dag.py")
        .and_then(|t| t.render(minijinja::value::Serde(&view)))
        .map(|mut body| {
            if !body.ends_with('\n') {
                body.push('\n');
            }
            body
        })
        .map_err(|source| Error::Template {
            what: format!("DAG {}", job.dag_id),
            source,
        })
}

fn date(s: &Option<String>) -> Option<[u32; 3]> {
    let s = s.as_deref()?;
    let mut parts = s.split('-').map(|p| p.parse::<u32>().unwrap_or(0));
    Some([parts.next()?, parts.next()?, parts.next()?])
}

fn view(repo: &Repo, ws: &Workspace, job: &Job, settings: &RenderSettings) -> Result<DagView> {
    let spec = &job.doc.spec;
    let defaults = spec
        .defaults
        .over(&ws.doc.spec.defaults.over(&repo.settings.defaults));
    let mut tags = vec!["olo".to_string(), format!("workspace:{}", ws.name)];
    tags.extend(spec.tags.iter().cloned());
    let params = spec
        .params
        .iter()
        .map(|(name, p)| ParamView {
            name: name.clone(),
            kind: p.kind.as_str(),
            has_default: p.default.is_some(),
            default: p.default.clone().unwrap_or(Value::Null),
            description: p.description.clone(),
            choices: p.choices.clone(),
        })
        .collect();
    let mut uses = Uses::default();
    let mut tasks = Vec::new();
    let mut edges = Vec::new();
    for t in &spec.tasks {
        for dep in &t.depends_on {
            edges.push((dep.to_string(), t.id.to_string()));
        }
        let mut env: BTreeMap<String, String> = t.env.clone();
        if let Some(m) = &t.mlflow {
            env.insert("MLFLOW_EXPERIMENT_NAME".into(), m.experiment.clone());
            env.insert("OLO_RUN_ID".into(), "{{ run_id }}".into());
            let tags = mlflow_tags();
            env.insert("OLO_MLFLOW_TAGS".into(), tags.clone());
            env.insert("MLFLOW_RUN_CONTEXT".into(), tags);
            if let Some(uri) = &settings.mlflow_tracking_uri {
                env.insert("MLFLOW_TRACKING_URI".into(), uri.clone());
            }
        }
        let own = t.own_defaults();
        let mut v = json!({
            "id": t.id.as_str(),
            "description": t.description,
            "owner": own.owner,
            "retries": own.retries,
            "retry_delay": own.retry_delay.map(|d| d.as_secs()),
            "timeout": own.timeout.map(|d| d.as_secs()),
            "pool": t.pool,
            "trigger_rule": t.trigger_rule,
            "env": env,
        });
        let extra = match t.kind() {
            TaskKind::Bash(b) => {
                uses.bash = true;
                json!({"kind": "bash", "command": bash_command(&b.command)})
            }
            TaskKind::Python(p) => {
                uses.python_operator = true;
                uses.python_module = true;
                uses.subprocess = true;
                json!({"kind": "python", "module": p.module, "args": p.args})
            }
            TaskKind::Spark(s) => {
                uses.spark = true;
                let path = format!("{}/{}", ws.name, s.application);
                let parts: Vec<&str> = path.split('/').collect();
                json!({
                    "kind": "spark",
                    "application": parts,
                    "conn_id": ws.doc.spec.connections.spark.clone().unwrap_or_else(|| "spark_default".into()),
                    "name": format!("{}.{}", job.dag_id, t.id),
                    "conf": spark_conf(ws, job, &s.conf, &s.packages, settings),
                    "conf_from_env": spark_conf_from_env(ws, &s.conf, settings),
                    "args": s.args,
                })
            }
            TaskKind::Sql(s) => {
                uses.sql = true;
                let full = format!("{}/{}", ws.folder(), s.file);
                let text = sql_text(repo, ws, &full)?;
                json!({
                    "kind": "sql",
                    "conn_id": trino_conn_id(ws),
                    "sql": text,
                })
            }
            TaskKind::Dbt(d) => {
                uses.dbt = true;
                uses.python_operator = true;
                uses.subprocess = true;
                let mut args = vec!["build".to_string(), "--select".into(), d.select.clone()];
                if let Some(x) = &d.exclude {
                    args.extend(["--exclude".into(), x.clone()]);
                }
                if let Some(x) = &d.target {
                    args.extend(["--target".into(), x.clone()]);
                }
                if d.full_refresh {
                    args.push("--full-refresh".into());
                }
                json!({
                    "kind": "dbt",
                    "project_dir": format!("{}/{}", ws.name, d.project_dir.trim_end_matches('/')),
                    "args": args,
                })
            }
        };
        if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
            v.extend(extra);
        }
        // Declared lineage, for the OpenLineage provider's manual lineage (operators without an
        // extractor of their own report these tables).
        let tables = |list: &[String]| -> Vec<(String, String)> {
            list.iter()
                .map(|d| olo_schema::dataset::lineage_name(ws.name.as_str(), d))
                .collect()
        };
        let (inlets, outlets) = (tables(&t.inputs), tables(&t.outputs));
        if !inlets.is_empty() || !outlets.is_empty() {
            uses.lineage = true;
        }
        v["inlets"] = json!(inlets);
        v["outlets"] = json!(outlets);
        tasks.push(v);
    }
    Ok(DagView {
        dag_id: job.dag_id.clone(),
        description: job
            .doc
            .metadata
            .description
            .clone()
            .or_else(|| spec.description.clone()),
        doc_md: spec.description.clone(),
        schedule: job.schedule.as_airflow().map(str::to_string),
        start_date: date(&spec.start_date),
        end_date: date(&spec.end_date),
        catchup: spec.catchup,
        paused: spec.paused,
        max_active_runs: spec.max_active_runs,
        max_active_tasks: spec.max_active_tasks,
        run_timeout: spec.run_timeout.map(|d| d.as_secs()),
        tags,
        params,
        defaults: defaults_view(&defaults),
        tasks,
        edges,
        uses,
    })
}

fn defaults_view(d: &TaskDefaults) -> DefaultsView {
    DefaultsView {
        owner: d.owner.clone(),
        retries: d.retries,
        retry_delay: d.retry_delay.map(|x| x.as_secs()),
        timeout: d.timeout.map(|x| x.as_secs()),
    }
}

/// The MLflow tags of a task's runs, as a JSON object that Airflow's templating completes:
/// `{"olo.run_id": <the run id>}`. MLflow applies `MLFLOW_RUN_CONTEXT` to every `start_run()`;
/// `OLO_MLFLOW_TAGS` holds the same for code that sets tags itself. The run id is written by Jinja's
/// `tojson`, so any run id (one given through the API may hold quotes) stays one JSON string.
fn mlflow_tags() -> String {
    let key = serde_json::to_string("olo.run_id").expect("a string serializes");
    format!("{{{key}: {{{{ run_id | tojson }}}}}}")
}

/// Airflow treats a `bash_command` ending in `.sh` or `.bash` as the path of a template file;
/// a trailing space (Airflow's documented workaround) keeps it a command.
fn bash_command(cmd: &str) -> String {
    if cmd.ends_with(".sh") || cmd.ends_with(".bash") {
        format!("{cmd} ")
    } else {
        cmd.to_string()
    }
}

fn sql_text(repo: &Repo, ws: &Workspace, path: &str) -> Result<String> {
    let within = format!("{}/", ws.folder());
    let (_, bytes) = repo
        .snapshot
        .resolve(path, &within)
        .map_err(|_| Error::MissingFile(path.to_string()))?;
    let mut text =
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::NotUtf8(path.to_string()))?;
    // Like bash commands, SQL ending in `.sql` would be read as a template file name.
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The Airflow connection sql tasks of a workspace use.
pub fn trino_conn_id(ws: &Workspace) -> String {
    ws.doc
        .spec
        .connections
        .trino
        .clone()
        .unwrap_or_else(|| format!("olo_trino_{}", ws.name))
}

/// Spark configuration: the workspace's Iceberg catalog, the OpenLineage listener and the jars
/// they need, then the task's own `conf` and `packages` (which win). Credentials are never values
/// here: [`spark_conf_from_env`] names the variables the worker reads them from when the task runs.
fn spark_conf(
    ws: &Workspace,
    job: &Job,
    own: &BTreeMap<String, Value>,
    packages: &[String],
    s: &RenderSettings,
) -> Map<String, Value> {
    let catalog = ws.doc.spec.lakehouse.catalog.as_str();
    let c = format!("spark.sql.catalog.{catalog}");
    let warehouse = s
        .iceberg_rest_warehouse
        .clone()
        .unwrap_or_else(|| catalog.to_string());
    let mut conf = Map::new();
    let mut set = |k: String, v: String| {
        conf.insert(k, Value::String(v));
    };
    set(
        "spark.sql.extensions".into(),
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions".into(),
    );
    set(c.clone(), "org.apache.iceberg.spark.SparkCatalog".into());
    set(format!("{c}.type"), "rest".into());
    set(format!("{c}.uri"), s.iceberg_rest_uri.clone());
    set(format!("{c}.warehouse"), warehouse);
    set(
        format!("{c}.io-impl"),
        "org.apache.iceberg.aws.s3.S3FileIO".into(),
    );
    set(format!("{c}.s3.endpoint"), s.s3_endpoint.clone());
    set(
        format!("{c}.s3.path-style-access"),
        s.s3_path_style.to_string(),
    );
    set(format!("{c}.client.region"), s.s3_region.clone());
    set(
        "spark.extraListeners".into(),
        "io.openlineage.spark.agent.OpenLineageSparkListener".into(),
    );
    set("spark.openlineage.transport.type".into(), "http".into());
    set(
        "spark.openlineage.transport.url".into(),
        s.openlineage_url.clone(),
    );
    set(
        "spark.openlineage.transport.endpoint".into(),
        "/api/v1/lineage".into(),
    );
    set("spark.openlineage.namespace".into(), ws.name.to_string());
    set("spark.openlineage.appName".into(), job.dag_id.clone());
    // Spark's UI and event log show the conf with values of matching keys redacted; the default
    // pattern misses the REST catalog's `credential` and the listener's `apiKey`.
    set("spark.redaction.regex".into(), SPARK_REDACTION_REGEX.into());
    let all_packages: Vec<&str> = s
        .spark_packages
        .iter()
        .chain(packages)
        .map(String::as_str)
        .collect();
    if !all_packages.is_empty() {
        set("spark.jars.packages".into(), all_packages.join(","));
    }
    if !s.spark_jars.is_empty() {
        set("spark.jars".into(), s.spark_jars.join(","));
    }
    for (k, v) in own {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        conf.insert(k.clone(), Value::String(v));
    }
    conf
}

/// Spark's default `spark.redaction.regex`, plus the credential keys olo sets.
const SPARK_REDACTION_REGEX: &str = "(?i)secret|password|token|access[.]key|credential|apikey";

/// Conf values the worker reads from its environment when a Spark task runs (the rendered
/// operator adds them then, so no secret is written into the DAG file or Airflow's database):
/// `{"key", "env", "required", "with"}`, where `with` is conf set along with a value that is
/// present. A key the task's own `conf` sets is left to it.
fn spark_conf_from_env(
    ws: &Workspace,
    own: &BTreeMap<String, Value>,
    s: &RenderSettings,
) -> Vec<Value> {
    let c = format!(
        "spark.sql.catalog.{}",
        ws.doc.spec.lakehouse.catalog.as_str()
    );
    let mut refs = vec![
        json!({"key": format!("{c}.s3.access-key-id"), "env": s.s3_access_key_env, "required": true, "with": {}}),
        json!({"key": format!("{c}.s3.secret-access-key"), "env": s.s3_secret_key_env, "required": true, "with": {}}),
    ];
    if let Some(env) = &s.iceberg_credential_env {
        // OAuth2 client credentials (`client_id:secret`), exchanged at the catalog's token endpoint.
        refs.push(
            json!({"key": format!("{c}.credential"), "env": env, "required": true, "with": {}}),
        );
    }
    if let Some(env) = &s.openlineage_api_key_env {
        refs.push(json!({
            "key": "spark.openlineage.transport.auth.apiKey",
            "env": env,
            "required": false,
            "with": {"spark.openlineage.transport.auth.type": "api_key"},
        }));
    }
    refs.retain(|r| !own.contains_key(r["key"].as_str().unwrap_or_default()));
    refs
}
