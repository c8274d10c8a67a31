//! The desired state as people read it: workspaces and their jobs, taken from the last valid
//! commit. The REST API and the dashboard serve it; PR comments use it to group resources by
//! workspace. Pure: built from a validated repository, no I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The commit it was read from.
    pub revision: Option<String>,
    /// Platform admins (`spec.admins` of `olo.yaml`): admin of every workspace.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Shared between successive catalogs while no file of the workspace changed.
    pub workspaces: Vec<Arc<WorkspaceView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceView {
    pub name: String,
    pub description: Option<String>,
    /// `workspaces/<name>/workspace.yaml`
    pub path: String,
    pub owners: Vec<String>,
    pub catalog: String,
    pub warehouse: String,
    pub namespaces: Vec<String>,
    /// Declared Iceberg tables, `<namespace>.<table>`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Access roles (`spec.access`): who may administer, operate and view the workspace's data.
    pub roles: Roles,
    /// Shared between successive catalogs while the job's file is unchanged.
    pub jobs: Vec<Arc<JobView>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Roles {
    pub admin: Vec<String>,
    pub operator: Vec<String>,
    pub viewer: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub name: String,
    pub workspace: String,
    pub dag_id: String,
    /// `workspaces/<ws>/jobs/<name>.yaml`
    pub path: String,
    pub description: Option<String>,
    pub schedule: Option<String>,
    /// `YYYY-MM-DD` (UTC) as written.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub paused: bool,
    pub tags: Vec<String>,
    pub params: Vec<String>,
    /// The declared params (`spec.params`): type, default, description, allowed values. A run's
    /// conf is checked against them before it reaches Airflow ([`JobView::check_conf`]).
    #[serde(default)]
    pub param_types: BTreeMap<String, olo_schema::model::Param>,
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: String,
    /// bash, python, spark, sql or dbt
    pub kind: String,
    pub depends_on: Vec<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The MLflow experiment the task logs to (`mlflow.experiment`).
    pub mlflow_experiment: Option<String>,
}

fn task_kind(task: &olo_schema::model::Task) -> &'static str {
    if task.bash.is_some() {
        "bash"
    } else if task.python.is_some() {
        "python"
    } else if task.spark.is_some() {
        "spark"
    } else if task.sql.is_some() {
        "sql"
    } else if task.dbt.is_some() {
        "dbt"
    } else {
        "unknown"
    }
}

/// Job views of the previous catalog, by job file, with the validated job they were made from:
/// an unchanged job (the same `Arc`) keeps its view.
pub type ViewCache = HashMap<String, (Arc<olo_schema::Job>, Arc<JobView>)>;

fn workspace_view(ws: &olo_schema::Workspace, jobs: Vec<Arc<JobView>>) -> WorkspaceView {
    let spec = &ws.doc.spec;
    WorkspaceView {
        name: ws.name.to_string(),
        description: spec
            .description
            .clone()
            .or_else(|| ws.doc.metadata.description.clone()),
        path: ws.path.clone(),
        owners: ws.doc.metadata.owners.clone(),
        catalog: spec.lakehouse.catalog.to_string(),
        warehouse: spec.lakehouse.warehouse.clone(),
        namespaces: spec
            .lakehouse
            .namespaces
            .iter()
            .map(|n| n.to_string())
            .collect(),
        tables: spec
            .lakehouse
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect(),
        roles: Roles {
            admin: spec.access.admin.clone(),
            operator: spec.access.operator.clone(),
            viewer: spec.access.viewer.clone(),
        },
        jobs,
    }
}

fn job_view(job: &olo_schema::Job) -> JobView {
    let spec = &job.doc.spec;
    JobView {
        name: job.name.to_string(),
        workspace: job.workspace.to_string(),
        dag_id: job.dag_id.clone(),
        path: job.path.clone(),
        description: spec
            .description
            .clone()
            .or_else(|| job.doc.metadata.description.clone()),
        schedule: spec.schedule.clone(),
        start_date: spec.start_date.clone(),
        end_date: spec.end_date.clone(),
        paused: spec.paused,
        tags: spec.tags.clone(),
        params: spec.params.keys().cloned().collect(),
        param_types: spec
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tasks: spec
            .tasks
            .iter()
            .map(|t| TaskView {
                id: t.id.to_string(),
                kind: task_kind(t).into(),
                depends_on: t.depends_on.iter().map(|d| d.to_string()).collect(),
                inputs: t.inputs.clone(),
                outputs: t.outputs.clone(),
                mlflow_experiment: t.mlflow.as_ref().map(|m| m.experiment.clone()),
            })
            .collect(),
    }
}

impl JobView {
    /// Checks a run's conf against the declared params: a declared param must have its declared
    /// type and, with `enum`, one of its values. Keys that are not params pass (tasks read them
    /// from `dag_run.conf`). Every problem is returned, each naming its param, in the conf's order.
    pub fn check_conf(&self, conf: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in conf {
            let Some(param) = self.param_types.get(name) else {
                continue;
            };
            if !param.kind.accepts(value) {
                problems.push(format!(
                    "param `{name}` must be of type {}, got {} ({})",
                    param.kind.as_str(),
                    json_kind(value),
                    clip(&value.to_string(), 80),
                ));
            } else if let Some(choices) = &param.choices {
                if !choices.contains(value) {
                    let allowed: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
                    problems.push(format!(
                        "param `{name}` must be one of {}, got {}",
                        allowed.join(", "),
                        clip(&value.to_string(), 80),
                    ));
                }
            }
        }
        problems
    }

    /// The MLflow experiments the job's tasks log to, without repeats.
    pub fn mlflow_experiments(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self
            .tasks
            .iter()
            .filter_map(|t| t.mlflow_experiment.as_ref())
        {
            if !out.contains(e) {
                out.push(e.clone());
            }
        }
        out
    }

    /// When Airflow will next start a scheduled run of this job (`None`: manual, `@once`,
    /// `@continuous`, paused, or past its end date).
    pub fn next_run(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.paused {
            return None;
        }
        let schedule = olo_schema::schedule::Schedule::parse(self.schedule.as_deref()).ok()?;
        let date = |d: &Option<String>| d.as_deref().and_then(olo_schema::schedule::parse_date);
        schedule.next_run(now, date(&self.start_date), date(&self.end_date))
    }
}

impl Catalog {
    pub fn from_repo(repo: &olo_schema::Repo, revision: Option<&str>) -> Catalog {
        Catalog::from_repo_cached(repo, revision, &mut ViewCache::new())
    }

    /// [`Catalog::from_repo`], reusing the views of jobs that did not change since `cache` was
    /// filled (and leaving in it the views of this catalog).
    pub fn from_repo_cached(
        repo: &olo_schema::Repo,
        revision: Option<&str>,
        cache: &mut ViewCache,
    ) -> Catalog {
        let mut next = ViewCache::with_capacity(cache.len());
        let workspaces = repo
            .workspaces
            .values()
            .map(|ws| {
                let jobs = ws
                    .jobs
                    .values()
                    .map(|job| {
                        let view = match cache.remove(&job.path) {
                            Some((seen, view)) if Arc::ptr_eq(&seen, job) => view,
                            _ => Arc::new(job_view(job)),
                        };
                        next.insert(job.path.clone(), (job.clone(), view.clone()));
                        view
                    })
                    .collect();
                Arc::new(workspace_view(ws, jobs))
            })
            .collect();
        *cache = next;
        Catalog {
            revision: revision.map(str::to_string),
            admins: repo.settings.admins.clone(),
            workspaces,
        }
    }

    /// This catalog moved to `repo`, a commit that differs from this one's only in the job files
    /// `paths`: workspaces with none of them are shared as they are, the others list their jobs
    /// again (a workspace's jobs, not the repository's; views of unchanged jobs are reused).
    /// Returns the catalog and how many jobs it looked at.
    pub fn with_jobs(
        &self,
        repo: &olo_schema::Repo,
        revision: Option<&str>,
        paths: &std::collections::BTreeSet<String>,
        cache: &mut ViewCache,
    ) -> (Catalog, usize) {
        let folders: std::collections::BTreeSet<&str> = paths
            .iter()
            .filter_map(|p| p.strip_prefix("workspaces/")?.split('/').next())
            .collect();
        for path in paths {
            if repo.job_at(path).is_none() {
                cache.remove(path);
            }
        }
        let mut looked = 0;
        let workspaces = self
            .workspaces
            .iter()
            .map(|view| {
                // Untouched workspaces are shared without a lookup: one set probe each.
                if !folders.contains(view.name.as_str()) {
                    return view.clone();
                }
                let Some(ws) = repo.workspaces.get(view.name.as_str()) else {
                    return view.clone();
                };
                looked += ws.jobs.len();
                let jobs = ws
                    .jobs
                    .values()
                    .map(|job| match cache.get(&job.path) {
                        Some((seen, view)) if Arc::ptr_eq(seen, job) => view.clone(),
                        _ => {
                            let view = Arc::new(job_view(job));
                            cache.insert(job.path.clone(), (job.clone(), view.clone()));
                            view
                        }
                    })
                    .collect();
                Arc::new(WorkspaceView {
                    jobs,
                    ..WorkspaceView::clone(view)
                })
            })
            .collect();
        let catalog = Catalog {
            revision: revision.map(str::to_string),
            admins: self.admins.clone(),
            workspaces,
        };
        (catalog, looked)
    }

    pub fn workspace(&self, name: &str) -> Option<&WorkspaceView> {
        self.workspaces
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.as_ref())
    }

    pub fn job(&self, workspace: &str, job: &str) -> Option<&JobView> {
        self.workspace(workspace)?
            .jobs
            .iter()
            .find(|j| j.name == job)
            .map(|j| j.as_ref())
    }

    /// The job a DAG id belongs to. A DAG id is `<workspace>__<job>`; names may hold `__`
    /// themselves, so each split is tried (a handful), each a lookup in one workspace: the
    /// cost does not grow with the other workspaces' jobs.
    pub fn job_by_dag_id(&self, dag_id: &str) -> Option<&JobView> {
        dag_id.match_indices("__").find_map(|(at, _)| {
            self.job(&dag_id[..at], &dag_id[at + 2..])
                .filter(|j| j.dag_id == dag_id)
        })
    }

    /// Which workspace each rendered resource belongs to (DAG files, Trino catalog files, and
    /// the lakehouse's warehouses, namespaces and tables);
    /// shared resources (rules.json, namespaces.json, assets) are absent.
    pub fn owners(&self) -> BTreeMap<String, String> {
        let mut owners = BTreeMap::new();
        for ws in &self.workspaces {
            owners.insert(
                format!("trino/catalog/{}.properties", ws.catalog),
                ws.name.clone(),
            );
            // The lakehouse resources (docs/lakehouse.md).
            let lake = [
                format!("warehouse/{}", ws.name),
                format!("namespace/{}/{}", ws.catalog, ws.name),
            ];
            for name in lake.into_iter().chain(
                ws.namespaces
                    .iter()
                    .map(|n| format!("namespace/{}/{}.{n}", ws.catalog, ws.name)),
            ) {
                owners.insert(name, ws.name.clone());
            }
            for t in &ws.tables {
                owners.insert(
                    format!("table/{}/{}.{t}", ws.catalog, ws.name),
                    ws.name.clone(),
                );
            }
            for job in &ws.jobs {
                owners.insert(format!("dags/{}.py", job.dag_id), ws.name.clone());
            }
        }
        owners
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}

/// At most `max` characters of `text`, with `…` when cut (for echoing a caller's input).
fn clip(text: &str, max: usize) -> String {
    let kept = crate::text::first_chars(text, max);
    if kept.len() < text.len() {
        format!("{kept}…")
    } else {
        kept.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dag_id_finds_its_job_when_names_hold_double_underscores() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: String| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        for ws in ["a", "a__b"] {
            write(
                &format!("workspaces/{ws}/workspace.yaml"),
                format!("apiVersion: olo/v1\nkind: Workspace\nmetadata: {{name: {ws}}}\nspec:\n  lakehouse: {{catalog: c{}, warehouse: 's3://lake/{ws}', namespaces: [raw]}}\n", ws.len()),
            );
        }
        for (ws, job) in [("a", "x__y"), ("a__b", "c"), ("a", "b")] {
            write(
                &format!("workspaces/{ws}/jobs/{job}.yaml"),
                format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {job}}}\nspec:\n  tasks:\n    - id: t\n      bash: {{command: echo}}\n"),
            );
        }
        let snapshot = crate::snapshot::from_worktree(dir.path()).unwrap();
        let validated = olo_schema::validate(snapshot);
        let repo = validated.repo.expect("valid");
        let catalog = Catalog::from_repo(&repo, None);
        let found = |dag_id: &str| {
            catalog
                .job_by_dag_id(dag_id)
                .map(|j| format!("{}/{}", j.workspace, j.name))
        };
        assert_eq!(found("a__x__y").as_deref(), Some("a/x__y"));
        assert_eq!(found("a__b__c").as_deref(), Some("a__b/c"));
        assert_eq!(found("a__b").as_deref(), Some("a/b"));
        assert_eq!(found("a__nope"), None);
        assert_eq!(found("plain"), None);
    }

    #[test]
    fn the_example_repository_reads_as_workspaces_and_jobs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples-repo");
        let snapshot = crate::snapshot::from_worktree(&root).unwrap();
        let repo = olo_schema::validate(snapshot)
            .repo
            .expect("example repo is valid");
        let catalog = Catalog::from_repo(&repo, Some("abc"));
        let names: Vec<_> = catalog.workspaces.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["marketing", "platform", "sales"]);
        let smoke = catalog.job("platform", "smoke_test").unwrap();
        assert_eq!(smoke.dag_id, "platform__smoke_test");
        assert_eq!(smoke.schedule, None);
        assert_eq!(smoke.tasks.len(), 5);
        assert_eq!(smoke.tasks[1].kind, "python");
        assert_eq!(smoke.tasks[4].depends_on.len(), 3);
        assert_eq!(
            catalog
                .job_by_dag_id("sales__orders_daily")
                .map(|j| j.name.as_str()),
            Some("orders_daily")
        );
        assert_eq!(
            catalog
                .owners()
                .get("dags/sales__orders_daily.py")
                .map(String::as_str),
            Some("sales")
        );
        assert!(catalog.job("sales", "nope").is_none());
    }

    #[test]
    fn unchanged_jobs_keep_their_views() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples-repo");
        let mut validation = olo_schema::Cache::default();
        let mut views = ViewCache::new();
        let snapshot = crate::snapshot::from_worktree(&root).unwrap();
        let repo = olo_schema::validate_with(snapshot.clone(), &mut validation)
            .repo
            .unwrap();
        let first = Catalog::from_repo_cached(&repo, Some("a"), &mut views);
        let repo = olo_schema::validate_with(snapshot, &mut validation)
            .repo
            .unwrap();
        let second = Catalog::from_repo_cached(&repo, Some("b"), &mut views);
        assert_eq!(first.workspaces, second.workspaces);
        assert!(Arc::ptr_eq(
            &first.workspaces[0].jobs[0],
            &second.workspaces[0].jobs[0]
        ));
        assert_eq!(views.len(), 4);
        // A fresh cache makes new views of equal content.
        let third = Catalog::from_repo(&repo, Some("b"));
        assert!(!Arc::ptr_eq(
            &first.workspaces[0].jobs[0],
            &third.workspaces[0].jobs[0]
        ));
        assert_eq!(first.workspaces, third.workspaces);
    }

    #[test]
    fn a_runs_conf_is_checked_against_the_declared_params() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples-repo");
        let snapshot = crate::snapshot::from_worktree(&root).unwrap();
        let repo = olo_schema::validate(snapshot).repo.unwrap();
        let catalog = Catalog::from_repo(&repo, None);
        let job = catalog.job("sales", "orders_daily").unwrap();
        let conf = |v: serde_json::Value| v.as_object().unwrap().clone();
        // Right types, an allowed value, and a key that is no param.
        let ok = conf(serde_json::json!({
            "day": "2026-03-01", "forecast_days": 7, "channel": "sales-alerts", "extra": [1]
        }));
        assert_eq!(job.check_conf(&ok), Vec::<String>::new());
        let bad = conf(serde_json::json!({
            "day": 20260301, "forecast_days": "7", "channel": "general"
        }));
        assert_eq!(
            job.check_conf(&bad),
            [
                "param `day` must be of type string, got an integer (20260301)",
                "param `forecast_days` must be of type integer, got a string (\"7\")",
                "param `channel` must be one of \"sales-data\", \"sales-alerts\", got \"general\"",
            ]
        );
        // A long value is cut when echoed.
        let long = conf(serde_json::json!({ "forecast_days": "x".repeat(500) }));
        let problems = job.check_conf(&long);
        assert!(problems[0].chars().count() < 160, "{problems:?}");
        assert!(problems[0].ends_with("…)"), "{problems:?}");
    }
}
