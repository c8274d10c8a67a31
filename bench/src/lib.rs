//! Synthetic config repositories for tests and benchmarks: N workspaces × M jobs of realistic
//! shape (5–10 tasks of mixed kinds, dependencies, lineage, params), deterministic for a seed.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub struct SynthOptions {
    pub workspaces: usize,
    pub jobs_per_workspace: usize,
    pub seed: u64,
    /// Only `bash` tasks (6–8, a chain with a fan-out), two string params: the shape used to
    /// compare Airflow parse cost with dag-factory.
    pub bash_only: bool,
}

/// A tiny deterministic generator (SplitMix64); good enough to vary shapes reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn workspace_name(i: usize) -> String {
    format!("ws{i:04}")
}

pub fn job_name(i: usize) -> String {
    format!("job{i:05}")
}

/// All files of the synthetic repository, as (relative path, contents).
pub fn generate(opts: &SynthOptions) -> Vec<(String, String)> {
    let mut rng = Rng(opts.seed);
    let mut files = vec![(
        "olo.yaml".to_string(),
        "apiVersion: olo/v1\nkind: Repository\nspec:\n  admins: [group:platform]\n  defaults: { retries: 1, retry_delay: 5m }\n".to_string(),
    )];
    for w in 0..opts.workspaces {
        let ws = workspace_name(w);
        files.push((
            format!("workspaces/{ws}/workspace.yaml"),
            format!(
                "apiVersion: olo/v1\nkind: Workspace\nmetadata:\n  name: {ws}\n  owners: [{ws}-eng@example.com]\nspec:\n  description: Synthetic workspace {ws}.\n  lakehouse:\n    catalog: lake\n    warehouse: s3://lakehouse/{ws}\n    namespaces: [bronze, silver, gold]\n  access:\n    admin: [group:{ws}-admins]\n    operator: [group:{ws}-eng]\n    viewer: [group:analysts]\n  defaults: {{ retries: 2, retry_delay: 5m, owner: {ws}-eng, timeout: 1h }}\n"
            ),
        ));
        if !opts.bash_only {
            files.push((
                format!("workspaces/{ws}/sql/transform.sql"),
                "INSERT INTO lake.\"silver\".t SELECT * FROM lake.\"bronze\".t\n".into(),
            ));
            files.push((
                format!("workspaces/{ws}/spark/ingest.py"),
                "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()\n".into(),
            ));
            files.push((
                format!("workspaces/{ws}/dbt/dbt_project.yml"),
                "name: synth\nversion: '1.0'\nprofile: synth\n".into(),
            ));
        }
        for j in 0..opts.jobs_per_workspace {
            let name = job_name(j);
            let body = if opts.bash_only {
                bash_job(&name, &mut rng)
            } else {
                mixed_job(&name, &mut rng)
            };
            files.push((format!("workspaces/{ws}/jobs/{name}.yaml"), body));
        }
    }
    files
}

fn header(out: &mut String, name: &str, rng: &mut Rng) {
    let hour = rng.below(24);
    let minute = rng.below(60);
    let _ = write!(
        out,
        "apiVersion: olo/v1\nkind: Job\nmetadata:\n  name: {name}\n  description: Synthetic job {name}.\n  labels: {{ tier: synthetic }}\nspec:\n  description: |\n    A synthetic job used by benchmarks and tests.\n    It has the shape of a real pipeline.\n  schedule: \"{minute} {hour} * * *\"\n  start_date: 2026-01-01\n  catchup: false\n  max_active_runs: 1\n  tags: [synthetic, bench]\n  params:\n    day: {{ type: string, default: \"\", description: Day to process }}\n    mode: {{ type: string, default: full, enum: [full, incremental] }}\n"
    );
}

fn bash_job(name: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    header(&mut out, name, rng);
    let n = 6 + rng.below(3);
    out.push_str("  tasks:\n");
    for t in 0..n {
        let _ = writeln!(out, "    - id: step_{t}");
        let _ = writeln!(
            out,
            "      bash: {{ command: \"echo step {t} of {name} for {{{{ ds }}}}\" }}"
        );
        if t > 0 {
            // A chain with a fan-out: the last two steps both follow the third-to-last.
            let dep = if t == n - 1 { n - 3 } else { t - 1 };
            let _ = writeln!(out, "      depends_on: [step_{dep}]");
        }
    }
    out
}

fn mixed_job(name: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    header(&mut out, name, rng);
    let _ = writeln!(out, "  defaults: {{ retries: 3 }}");
    out.push_str("  tasks:\n");
    let n = 5 + rng.below(6);
    for t in 0..n {
        let id = format!("t{t}");
        let _ = writeln!(out, "    - id: {id}");
        let _ = writeln!(out, "      description: Task {t} of {name}.");
        match (t, rng.below(5)) {
            (0, _) | (_, 0) => {
                let _ = writeln!(out, "      spark:\n        application: spark/ingest.py\n        conf: {{ spark.executor.memory: 2g }}\n        args: [\"--day\", \"{{{{ ds }}}}\"]");
                let _ = writeln!(out, "      outputs: [bronze.t{t}]");
            }
            (_, 1) => {
                let _ = writeln!(out, "      sql: {{ file: sql/transform.sql }}");
                let _ = writeln!(
                    out,
                    "      inputs: [bronze.t{}]\n      outputs: [silver.t{t}]",
                    t - 1
                );
            }
            (_, 2) => {
                let _ = writeln!(out, "      dbt: {{ select: model_{t} }}");
            }
            (_, 3) => {
                let _ = writeln!(out, "      python: {{ module: jobs.task_{t}, args: [\"--day\", \"{{{{ ds }}}}\"] }}");
                let _ = writeln!(out, "      mlflow: {{ experiment: {name} }}");
            }
            _ => {
                let _ = writeln!(out, "      bash: {{ command: \"echo {name} {t}\" }}");
                let _ = writeln!(out, "      timeout: 10m");
            }
        }
        if t > 0 {
            let a = rng.below(t);
            let b = rng.below(t);
            if a == b {
                let _ = writeln!(out, "      depends_on: [t{a}]");
            } else {
                let _ = writeln!(out, "      depends_on: [t{}, t{}]", a.min(b), a.max(b));
            }
        }
    }
    out
}

/// The same bash-only jobs written for dag-factory 1.1 (one YAML file per DAG, plus the loader
/// module dag-factory needs), for the Airflow parse-cost comparison.
///
/// Each DAG carries what `olo render` puts into the DAG file of the same job (checked attribute
/// by attribute in Airflow by `bench/airflow_parse.py`): description, doc_md, schedule, a UTC
/// start date, catchup, max_active_runs, is_paused_upon_creation, tags, typed params, the
/// workspace defaults as default_args (owner, retries, retry_delay, execution_timeout), and per
/// task the bash command, `env: {}` and `append_env: true`. dag-factory itself adds a
/// `dagfactory` tag and appends the YAML to `doc_md`.
pub fn dag_factory(opts: &SynthOptions) -> Vec<(String, String)> {
    let mut rng = Rng(opts.seed);
    // Airflow's DAG-discovery heuristic only opens .py files that mention both "airflow" and
    // "dag": without the comment, the DagBag skips the loader and finds no DAG at all.
    let mut files = vec![(
        "load_dags.py".to_string(),
        "# Airflow DAG loader: dag-factory builds one DAG per file in configs/.\nimport os\nfrom dagfactory import load_yaml_dags\n\nload_yaml_dags(globals_dict=globals(), dags_folder=os.path.join(os.path.dirname(__file__), \"configs\"))\n".to_string(),
    )];
    for w in 0..opts.workspaces {
        let ws = workspace_name(w);
        for j in 0..opts.jobs_per_workspace {
            let name = job_name(j);
            // Draw exactly what `header` and `bash_job` draw, in the same order.
            let hour = rng.below(24);
            let minute = rng.below(60);
            let n = 6 + rng.below(3);
            let dag_id = format!("{ws}__{name}");
            let mut y = String::new();
            let _ = write!(
                y,
                "{dag_id}:\n  description: Synthetic job {name}.\n  doc_md: |\n    A synthetic job used by benchmarks and tests.\n    It has the shape of a real pipeline.\n  schedule: \"{minute} {hour} * * *\"\n  start_date: 2026-01-01\n  catchup: false\n  max_active_runs: 1\n  is_paused_upon_creation: false\n  tags: [olo, \"workspace:{ws}\", synthetic, bench]\n  params:\n    day:\n      __type__: airflow.sdk.definitions.param.Param\n      default: \"\"\n      type: string\n      description: Day to process\n    mode:\n      __type__: airflow.sdk.definitions.param.Param\n      default: full\n      type: string\n      enum: [full, incremental]\n  default_args:\n    owner: {ws}-eng\n    retries: 2\n    retry_delay:\n      __type__: datetime.timedelta\n      seconds: 300\n    execution_timeout:\n      __type__: datetime.timedelta\n      seconds: 3600\n  tasks:\n"
            );
            for t in 0..n {
                let _ = write!(
                    y,
                    "    step_{t}:\n      operator: airflow.providers.standard.operators.bash.BashOperator\n      bash_command: \"echo step {t} of {name} for {{{{ ds }}}}\"\n      env: {{}}\n      append_env: true\n"
                );
                if t > 0 {
                    let dep = if t == n - 1 { n - 3 } else { t - 1 };
                    let _ = writeln!(y, "      dependencies: [step_{dep}]");
                }
            }
            files.push((format!("configs/{dag_id}.yml"), y));
        }
    }
    files
}

pub fn write_files(dir: &Path, files: &[(String, String)]) -> std::io::Result<()> {
    for (rel, body) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(files: Vec<(String, String)>) -> olo_schema::Snapshot {
        let mut s = olo_schema::Snapshot::new(None);
        for (p, b) in files {
            s.insert_file(p, b);
        }
        s
    }

    #[test]
    fn synthetic_repos_are_valid() {
        for bash_only in [false, true] {
            let opts = SynthOptions {
                workspaces: 3,
                jobs_per_workspace: 20,
                seed: 7,
                bash_only,
            };
            let v = olo_schema::validate(snapshot(generate(&opts)));
            assert_eq!(olo_schema::diagnostic::to_text(&v.diagnostics), "");
            let repo = v.repo.expect("valid");
            assert_eq!(
                repo.workspaces
                    .values()
                    .map(|w| w.jobs.len())
                    .sum::<usize>(),
                60
            );
        }
    }

    #[test]
    fn dag_factory_has_the_same_dags_tasks_and_dependencies() {
        let opts = SynthOptions {
            workspaces: 2,
            jobs_per_workspace: 7,
            seed: 3,
            bash_only: true,
        };
        let olo = generate(&opts);
        let df = dag_factory(&opts);
        // Airflow's discovery heuristic skips .py files that do not mention "airflow" and "dag".
        let loader = df[0].1.to_lowercase();
        assert!(loader.contains("airflow") && loader.contains("dag"));
        let jobs: Vec<&(String, String)> =
            olo.iter().filter(|(p, _)| p.contains("/jobs/")).collect();
        assert_eq!(jobs.len(), df.len() - 1);
        for ((job_path, job), (df_path, config)) in jobs.iter().zip(&df[1..]) {
            let parts: Vec<&str> = job_path.split('/').collect();
            let dag_id = format!("{}__{}", parts[1], parts[3].trim_end_matches(".yaml"));
            assert_eq!(df_path, &format!("configs/{dag_id}.yml"));
            assert!(config.starts_with(&format!("{dag_id}:\n")));
            let schedule = job.lines().find(|l| l.contains("schedule:")).unwrap();
            assert!(config.contains(&format!("{}\n", schedule)), "{dag_id}");
            // Task ids and dependencies, in order: `- id: X` + `depends_on: [Y]` in olo,
            // `X:` + `dependencies: [Y]` in dag-factory.
            let olo_tasks: Vec<String> = job
                .lines()
                .filter_map(|l| {
                    let l = l.trim();
                    l.strip_prefix("- id: ")
                        .map(|t| format!("task {t}"))
                        .or_else(|| l.strip_prefix("depends_on: ").map(|d| format!("after {d}")))
                })
                .collect();
            let df_tasks: Vec<String> = config
                .lines()
                .filter_map(|l| {
                    let t = l.trim();
                    if l.starts_with("    step_") {
                        Some(format!("task {}", t.trim_end_matches(':')))
                    } else {
                        t.strip_prefix("dependencies: ")
                            .map(|d| format!("after {d}"))
                    }
                })
                .collect();
            assert_eq!(olo_tasks, df_tasks, "{dag_id}");
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let opts = SynthOptions {
            workspaces: 2,
            jobs_per_workspace: 5,
            seed: 1,
            bash_only: false,
        };
        assert_eq!(generate(&opts), generate(&opts));
    }
}
