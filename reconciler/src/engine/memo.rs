//! What one reconcile leaves for the next: the snapshot, the validation cache, the rendered files
//! and their hashes, so that a commit changing one job redoes the work of that job only.

use std::collections::BTreeMap;
use std::sync::Arc;

use olo_templates::RenderSettings;

use crate::catalog::Catalog;
use crate::content::Packed;
use crate::lakehouse::{self, apply::Lakehouse};
use crate::plan;
use crate::Result;

/// The previous reconcile's snapshot, validation cache and rendered files. A commit that changes
/// one job re-reads, re-parses, re-checks and re-renders that job only.
pub struct Memo {
    pub(super) repo: std::path::PathBuf,
    pub(super) snapshot: olo_schema::Snapshot,
    pub(super) validation: olo_schema::Cache,
    /// The desired files of the last valid commit, packed: 10,000 DAG files take 33 MB instead
    /// of 77 MB.
    pub(super) files: BTreeMap<String, Packed>,
    /// Content hash of each of `files`, computed when it was rendered.
    pub(super) hashes: BTreeMap<String, String>,
    /// Per job file: the job its DAG file was rendered from (shared with the validation cache:
    /// the same `Arc` means the same job file, workspace, settings and referenced files), the
    /// DAG file's path, and the last update that saw the job. Updated in place, so an unchanged
    /// job costs one lookup per reconcile.
    pub(super) dag_jobs: std::collections::HashMap<String, (Arc<olo_schema::Job>, String, u64)>,
    /// Counts updates (marks which jobs the current one saw).
    pub(super) round: u64,
    /// Paths rendered by `render_shared` last time.
    pub(super) shared: Vec<String>,
    /// Workspaces and jobs of the last valid commit.
    pub(super) catalog: Option<Arc<Catalog>>,
    /// The job views of that catalog, reused for unchanged jobs.
    pub(super) views: crate::catalog::ViewCache,
    /// What the last valid commit wants of the lakehouse.
    pub(super) lake: lakehouse::Desired,
}

impl Memo {
    pub(super) fn new(repo: &std::path::Path) -> Memo {
        Memo {
            repo: repo.to_path_buf(),
            snapshot: olo_schema::Snapshot::default(),
            validation: olo_schema::Cache::default(),
            files: BTreeMap::new(),
            hashes: BTreeMap::new(),
            dag_jobs: std::collections::HashMap::new(),
            round: 0,
            shared: Vec::new(),
            catalog: None,
            views: crate::catalog::ViewCache::new(),
            lake: lakehouse::Desired::default(),
        }
    }

    /// Reads `sha`, validates it and updates the desired files, reusing all that did not change.
    /// `Err(diagnostics)` for an invalid commit (the files stay those of the last valid one).
    pub(super) fn update(
        &mut self,
        repo_path: &std::path::Path,
        sha: &str,
        settings: &RenderSettings,
        lake: Option<&Lakehouse>,
        phases: &mut super::Phases,
    ) -> Result<std::result::Result<(), Vec<olo_schema::Diagnostic>>> {
        let snapshot = if self.repo == repo_path && self.snapshot.revision.is_some() {
            crate::snapshot::from_commit_since(repo_path, &self.snapshot, sha)?
        } else {
            crate::snapshot::from_commit(repo_path, sha)?
        };
        phases.lap("snapshot");
        // Shared files (Trino catalogs and rules, Iceberg namespaces, task assets) come from
        // everything but the job files, and from jobs with Spark or dbt tasks (their assets).
        // Compared with the last *valid* snapshot, which the files were rendered from: after an
        // invalid commit the next valid one must see every change since then.
        let shared_dirty = self.shared.is_empty() || other_files_changed(&self.snapshot, &snapshot);
        let validation = olo_schema::validate_with(snapshot, &mut self.validation);
        phases.lap("validate");
        let Some(repo) = validation.repo else {
            return Ok(Err(validation.diagnostics));
        };
        let rendered = self.render(&repo, sha, settings, lake, shared_dirty, phases);
        // The next commit is read as a diff from this one (moved, not cloned: 10,000 paths).
        self.snapshot = repo.snapshot;
        self.repo = repo_path.to_path_buf();
        rendered.map(Ok)
    }

    /// The catalog and the desired files of a valid commit, re-rendering only what changed.
    fn render(
        &mut self,
        repo: &olo_schema::Repo,
        sha: &str,
        settings: &RenderSettings,
        lake: Option<&Lakehouse>,
        mut shared_dirty: bool,
        phases: &mut super::Phases,
    ) -> Result<()> {
        self.catalog = Some(Arc::new(Catalog::from_repo_cached(
            repo,
            Some(sha),
            &mut self.views,
        )));
        phases.lap("catalog");
        // DAG files: keep those whose job is the very same (shared) job as last time.
        self.round += 1;
        let round = self.round;
        let mut stale: Vec<(&olo_schema::Workspace, &Arc<olo_schema::Job>)> = Vec::new();
        for ws in repo.workspaces.values() {
            for job in ws.jobs.values() {
                match self.dag_jobs.get_mut(&job.path) {
                    Some(entry) => {
                        if !Arc::ptr_eq(&entry.0, job) || !self.files.contains_key(&entry.1) {
                            // Asset files themselves are covered by `other_files_changed`;
                            // a changed job matters only if it references other ones.
                            shared_dirty |= asset_refs(&entry.0) != asset_refs(job);
                            stale.push((ws, job));
                            entry.0 = job.clone();
                            entry.1 = format!("dags/{}.py", job.dag_id);
                        }
                        entry.2 = round;
                    }
                    None => {
                        shared_dirty |= has_assets(job);
                        stale.push((ws, job));
                        self.dag_jobs.insert(
                            job.path.clone(),
                            (job.clone(), format!("dags/{}.py", job.dag_id), round),
                        );
                    }
                }
            }
        }
        // Jobs that are gone take their DAG files with them.
        let gone: Vec<String> = self
            .dag_jobs
            .iter()
            .filter(|(_, entry)| entry.2 != round)
            .map(|(path, _)| path.clone())
            .collect();
        for path in gone {
            if let Some((job, file, _)) = self.dag_jobs.remove(&path) {
                shared_dirty |= has_assets(&job);
                self.files.remove(&file);
                self.hashes.remove(&file);
            }
        }
        let rendered: Vec<(String, Packed, String)> = {
            use rayon::prelude::*;
            stale
                .par_iter()
                .map(|(ws, job)| {
                    olo_templates::render::render_dag_file(repo, ws, job, settings).map(
                        |(path, bytes)| {
                            let hash = plan::content_hash(&bytes);
                            (path, Packed::new(&bytes), hash)
                        },
                    )
                })
                .collect::<std::result::Result<_, _>>()?
        };
        for (path, bytes, hash) in rendered {
            self.hashes.insert(path.clone(), hash);
            self.files.insert(path, bytes);
        }
        phases.lap("render");
        if !shared_dirty {
            return Ok(());
        }
        for path in std::mem::take(&mut self.shared) {
            self.files.remove(&path);
            self.hashes.remove(&path);
        }
        for (path, (_, bytes)) in olo_templates::render::render_shared(repo, settings)? {
            self.shared.push(path.clone());
            self.hashes.insert(path.clone(), plan::content_hash(&bytes));
            self.files.insert(path, Packed::new(&bytes));
        }
        // Workspaces live in non-job files: the lakehouse changes only with the shared files.
        self.lake = lake.map(|l| l.desired(repo)).unwrap_or_default();
        phases.lap("render shared");
        Ok(())
    }
}

/// Whether a job file's YAML (`workspaces/<ws>/jobs/….yaml`).
fn is_job_file(path: &str) -> bool {
    path.starts_with("workspaces/")
        && path.contains("/jobs/")
        && (path.ends_with(".yaml") || path.ends_with(".yml"))
}

/// Whether a job has tasks whose files are rendered beside the DAGs (Spark, dbt).
fn has_assets(job: &olo_schema::Job) -> bool {
    job.doc
        .spec
        .tasks
        .iter()
        .any(|t| t.spark.is_some() || t.dbt.is_some())
}

/// The task files a job has rendered beside the DAGs: Spark applications and dbt project
/// folders, as written in the job.
fn asset_refs(job: &olo_schema::Job) -> Vec<&str> {
    let mut refs: Vec<&str> = job
        .doc
        .spec
        .tasks
        .iter()
        .filter_map(|t| {
            t.spark
                .as_ref()
                .map(|s| s.application.as_str())
                .or_else(|| t.dbt.as_ref().map(|d| d.project_dir.as_str()))
        })
        .collect();
    refs.sort_unstable();
    refs
}

/// Whether any file other than a job's YAML was added, removed or changed between two snapshots
/// (unchanged files share their bytes, so this is one walk of both sorted lists, no hashing).
fn other_files_changed(old: &olo_schema::Snapshot, new: &olo_schema::Snapshot) -> bool {
    use olo_schema::Entry;
    let same = |a: &Entry, b: &Entry| match (a, b) {
        (Entry::File(x), Entry::File(y)) => Arc::ptr_eq(x, y) || x == y,
        (Entry::Symlink(x), Entry::Symlink(y)) => x == y,
        _ => false,
    };
    let mut a = old.files.iter().filter(|(p, _)| !is_job_file(p));
    let mut b = new.files.iter().filter(|(p, _)| !is_job_file(p));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return false,
            (Some((pa, ea)), Some((pb, eb))) if pa == pb && same(ea, eb) => continue,
            _ => return true,
        }
    }
}
