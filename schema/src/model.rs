//! The `olo/v1` spec as typed data. The JSON Schema files under `schema/json/` are the source of
//! truth for shape; these types are what a document becomes once it has passed them, and
//! `deny_unknown_fields` keeps the two in step (a field the schema allows but the model lacks
//! fails the example-repo tests).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::name::Name;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: Name,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Task defaults, at repository, workspace, job and (as plain fields) task level.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefaults {
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub retry_delay: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub owner: Option<String>,
}

impl TaskDefaults {
    /// `self` with every unset field taken from `base`.
    pub fn over(&self, base: &TaskDefaults) -> TaskDefaults {
        TaskDefaults {
            retries: self.retries.or(base.retries),
            retry_delay: self.retry_delay.or(base.retry_delay),
            timeout: self.timeout.or(base.timeout),
            owner: self.owner.clone().or_else(|| base.owner.clone()),
        }
    }
}

// ---------------------------------------------------------------- Repository (olo.yaml)

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepositoryDoc {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Option<RepositoryMetadata>,
    #[serde(default)]
    pub spec: RepositorySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryMetadata {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepositorySpec {
    #[serde(default)]
    pub admins: Vec<String>,
    #[serde(default)]
    pub defaults: TaskDefaults,
}

// ---------------------------------------------------------------- Workspace

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkspaceDoc {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: WorkspaceSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSpec {
    #[serde(default)]
    pub description: Option<String>,
    pub lakehouse: Lakehouse,
    #[serde(default)]
    pub access: Access,
    #[serde(default)]
    pub defaults: TaskDefaults,
    #[serde(default)]
    pub connections: Connections,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lakehouse {
    pub catalog: Name,
    pub warehouse: String,
    #[serde(default)]
    pub namespaces: Vec<Name>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub tables: Vec<TableDecl>,
}

/// An Iceberg table the workspace declares (`spec.lakehouse.tables[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableDecl {
    /// `<namespace>.<table>`
    pub name: String,
    pub columns: Vec<ColumnDecl>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub allow: Vec<AllowedChange>,
}

impl TableDecl {
    /// (`namespace`, `table`)
    pub fn split_name(&self) -> (&str, &str) {
        self.name.split_once('.').unwrap_or(("", &self.name))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub doc: Option<String>,
}

/// Destructive table changes a declaration may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedChange {
    DropColumn,
    Repartition,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub operator: Vec<String>,
    #[serde(default)]
    pub viewer: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    #[serde(default)]
    pub trino: Option<String>,
    #[serde(default)]
    pub spark: Option<String>,
}

// ---------------------------------------------------------------- Job

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobDoc {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: JobSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub catchup: bool,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub max_active_runs: Option<u32>,
    #[serde(default)]
    pub max_active_tasks: Option<u32>,
    #[serde(default)]
    pub run_timeout: Option<Duration>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    #[serde(default)]
    pub defaults: TaskDefaults,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, rename = "enum")]
    pub choices: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Object => "object",
        }
    }

    pub fn accepts(self, v: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        match self {
            ParamType::String => v.is_string(),
            ParamType::Integer => v.is_i64() || v.is_u64(),
            ParamType::Number => v.is_number(),
            ParamType::Boolean => v.is_boolean(),
            ParamType::Array => matches!(v, J::Array(_)),
            ParamType::Object => matches!(v, J::Object(_)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: Name,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<Name>,
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub retry_delay: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub trigger_rule: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub mlflow: Option<Mlflow>,
    // One of these is set: boxed, so a task holds one kind's fields rather than room for all
    // five (a 10,000-job repository's tasks took ~100 MB with them inline).
    #[serde(default)]
    pub bash: Option<Box<BashTask>>,
    #[serde(default)]
    pub python: Option<Box<PythonTask>>,
    #[serde(default)]
    pub spark: Option<Box<SparkTask>>,
    #[serde(default)]
    pub sql: Option<Box<SqlTask>>,
    #[serde(default)]
    pub dbt: Option<Box<DbtTask>>,
}

impl Task {
    /// The task's own retry/timeout/owner settings, as defaults over everything else.
    pub fn own_defaults(&self) -> TaskDefaults {
        TaskDefaults {
            retries: self.retries,
            retry_delay: self.retry_delay,
            timeout: self.timeout,
            owner: self.owner.clone(),
        }
    }

    /// What the task runs. The schema guarantees exactly one kind is set.
    pub fn kind(&self) -> TaskKind<'_> {
        if let Some(t) = &self.bash {
            TaskKind::Bash(t)
        } else if let Some(t) = &self.python {
            TaskKind::Python(t)
        } else if let Some(t) = &self.spark {
            TaskKind::Spark(t)
        } else if let Some(t) = &self.sql {
            TaskKind::Sql(t)
        } else if let Some(t) = &self.dbt {
            TaskKind::Dbt(t)
        } else {
            unreachable!("the job schema requires exactly one task kind")
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum TaskKind<'a> {
    Bash(&'a BashTask),
    Python(&'a PythonTask),
    Spark(&'a SparkTask),
    Sql(&'a SqlTask),
    Dbt(&'a DbtTask),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mlflow {
    pub experiment: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BashTask {
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PythonTask {
    pub module: String,
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SparkTask {
    pub application: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub conf: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTask {
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DbtTask {
    pub select: String,
    #[serde(default)]
    pub exclude: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default = "default_dbt_project_dir")]
    pub project_dir: String,
    #[serde(default)]
    pub full_refresh: bool,
}

fn default_dbt_project_dir() -> String {
    "dbt".to_string()
}
