//! What one reconcile leaves for the next: the snapshot, the validation cache, the rendered files
//! and their hashes, so that a commit changing one job redoes the work of that job only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use olo_templates::RenderSettings;

use crate::catalog::Catalog;
use crate::content::Packed;
use crate::lakehouse::{self, apply::Lakehouse};
use crate::plan;
use crate::Result;

/// The previous reconcile's commit, validation and rendered files. A commit that changes one job
/// reads, parses, checks and renders that job only, and walks nothing of the other jobs: each
/// phase updates its state in place from the changed paths ([`Work`] counts what it visited).
pub struct Memo {
    pub(super) repo_path: std::path::PathBuf,
    /// The last commit read and validated, valid or not (what validated of it): the next commit
    /// is read as a tree diff from it and validated from it.
    pub(super) current: Option<olo_schema::Repo>,
    pub(super) validation: olo_schema::Cache,
    /// The desired files of the last valid commit, packed against a sample DAG file: the
    /// 10,000 DAG files of the benchmark (11.1 KB each) take 8.8 MB instead of 111 MB (47 MB
    /// with plain LZ4).
    pub(super) files: BTreeMap<String, Packed>,
    /// Content hash of each of `files`, computed when it was rendered.
    pub(super) hashes: BTreeMap<String, String>,
    /// Per job file: the job its DAG file was rendered from (shared with the validation: the
    /// same `Arc` means the same job file, workspace, settings and referenced files), the DAG
    /// file's path, and the last full walk that saw the job.
    pub(super) dag_jobs: std::collections::HashMap<String, (Arc<olo_schema::Job>, String, u64)>,
    /// Counts full walks (marks which jobs the current one saw).
    pub(super) round: u64,
    /// What changed since the last render (across invalid commits, which render nothing): the
    /// job files whose job may differ (`None`: any), and whether any other file changed.
    pub(super) pending_jobs: Option<BTreeSet<String>>,
    pub(super) pending_others: bool,
    /// Desired files added, changed or removed since the last apply that succeeded (`None`: not
    /// known, e.g. before the first render): what an incremental plan looks at.
    pub(super) dirty: Option<BTreeSet<String>>,
    /// Whether what the lakehouse should hold may have changed since the last apply that
    /// succeeded.
    pub(super) lake_dirty: bool,
    /// Paths rendered by `render_shared` last time.
    pub(super) shared: Vec<String>,
    /// Workspaces and jobs of the last valid commit.
    pub(super) catalog: Option<Arc<Catalog>>,
    /// The job views of that catalog, reused for unchanged jobs.
    pub(super) views: crate::catalog::ViewCache,
    /// What the last valid commit wants of the lakehouse (shared with the API).
    pub(super) lake: Arc<lakehouse::Desired>,
    /// What the last update visited.
    pub(super) work: Work,
}

/// What one reconcile visited, phase by phase: on the incremental path each count follows the
/// change, not the size of the repository (tests compare them at two sizes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Files read from git (the changed ones, or every file of a commit read whole).
    pub read: usize,
    /// Job files parsed and checked.
    pub checked: usize,
    /// Jobs looked at for the API catalog.
    pub cataloged: usize,
    /// Jobs looked at for their DAG file.
    pub looked: usize,
    /// Files rendered (DAG files and shared files).
    pub rendered: usize,
    /// Rows of the plan: desired files and inventory entries paired and compared.
    pub planned: usize,
}

impl Memo {
    pub(super) fn new(repo: &std::path::Path) -> Memo {
        Memo {
            repo_path: repo.to_path_buf(),
            current: None,
            validation: olo_schema::Cache::default(),
            files: BTreeMap::new(),
            hashes: BTreeMap::new(),
            dag_jobs: std::collections::HashMap::new(),
            round: 0,
            pending_jobs: None,
            pending_others: true,
            dirty: None,
            lake_dirty: true,
            shared: Vec::new(),
            catalog: None,
            views: crate::catalog::ViewCache::new(),
            lake: Arc::default(),
            work: Work::default(),
        }
    }

    /// What the last update visited.
    pub fn work(&self) -> Work {
        self.work
    }

    /// The desired files are live: the next plan starts from here.
    pub(super) fn applied(&mut self) {
        self.dirty = Some(BTreeSet::new());
    }

    fn mark(&mut self, path: &str) {
        if let Some(dirty) = &mut self.dirty {
            dirty.insert(path.to_string());
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
        self.work = Work::default();
        let previous = self.current.take().filter(|_| self.repo_path == repo_path);
        self.repo_path = repo_path.to_path_buf();
        let mut moved = None;
        if let Some(mut repo) = previous {
            if let Some(since) = repo.snapshot.revision.clone() {
                if let Some(paths) = crate::snapshot::update_to(repo_path, &mut repo.snapshot, sha)?
                {
                    moved = Some(olo_schema::Input::Next { repo, since, paths });
                }
            }
        }
        let input = match moved {
            Some(input) => input,
            None => olo_schema::Input::Whole(crate::snapshot::from_commit(repo_path, sha)?),
        };
        match &input {
            olo_schema::Input::Next { paths, .. } => {
                self.work.read = paths.len();
                self.pending_others |= paths.iter().any(|p| !is_job_file(p));
            }
            olo_schema::Input::Whole(snapshot) => {
                self.work.read = snapshot.files.len();
                self.pending_others = true;
            }
        }
        phases.lap("snapshot");
        let validated = olo_schema::revalidate(input, &mut self.validation);
        phases.lap("validate");
        self.work.checked = validated.checked;
        match (&mut self.pending_jobs, &validated.touched) {
            (Some(pending), Some(touched)) => pending.extend(touched.iter().cloned()),
            (pending, None) => *pending = None,
            (None, Some(_)) => {}
        }
        if !validated.is_valid() {
            self.current = Some(validated.repo);
            return Ok(Err(validated.diagnostics));
        }
        let rendered = self.render(&validated.repo, sha, settings, lake, phases);
        self.current = Some(validated.repo);
        rendered.map(Ok)
    }

    /// The catalog and the desired files of a valid commit, re-rendering only what changed.
    fn render(
        &mut self,
        repo: &olo_schema::Repo,
        sha: &str,
        settings: &RenderSettings,
        lake: Option<&Lakehouse>,
        phases: &mut super::Phases,
    ) -> Result<()> {
        // Shared files (Trino catalogs and rules, Iceberg namespaces, task assets) come from
        // everything but the job files, and from jobs with Spark or dbt tasks (their assets).
        let others = std::mem::take(&mut self.pending_others) || self.shared.is_empty();
        let mut shared_dirty = others;
        let pending = self.pending_jobs.replace(BTreeSet::new());
        let touched = pending.filter(|_| !others);
        let catalog = match (&self.catalog, &touched) {
            (Some(previous), Some(paths)) => {
                let (catalog, looked) = previous.with_jobs(repo, Some(sha), paths, &mut self.views);
                self.work.cataloged = looked;
                catalog
            }
            _ => {
                self.work.cataloged = self.views.len();
                Catalog::from_repo_cached(repo, Some(sha), &mut self.views)
            }
        };
        self.catalog = Some(Arc::new(catalog));
        phases.lap("catalog");
        let stale = match &touched {
            Some(paths) => self.stale_of(repo, paths, &mut shared_dirty),
            None => self.stale_of_all(repo, &mut shared_dirty),
        };
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
        self.work.rendered = rendered.len();
        for (path, bytes, hash) in rendered {
            self.put(path, bytes, hash);
        }
        phases.lap("render");
        if !shared_dirty {
            return Ok(());
        }
        let before: Vec<String> = std::mem::take(&mut self.shared);
        let mut old: BTreeMap<String, String> = BTreeMap::new();
        for path in before {
            self.files.remove(&path);
            if let Some(hash) = self.hashes.remove(&path) {
                old.insert(path, hash);
            }
        }
        for (path, (_, bytes)) in olo_templates::render::render_shared(repo, settings)? {
            self.work.rendered += 1;
            self.shared.push(path.clone());
            let hash = plan::content_hash(&bytes);
            if old.remove(&path).as_ref() != Some(&hash) {
                self.mark(&path);
            }
            self.hashes.insert(path.clone(), hash);
            self.files.insert(path, Packed::new(&bytes));
        }
        for path in old.keys() {
            self.mark(path);
        }
        // Workspaces live in non-job files: the lakehouse changes only with the shared files.
        self.lake = Arc::new(lake.map(|l| l.desired(repo)).unwrap_or_default());
        self.lake_dirty = true;
        phases.lap("render shared");
        Ok(())
    }

    /// Holds a rendered file, marking it changed when its content is new.
    fn put(&mut self, path: String, bytes: Packed, hash: String) {
        if self.hashes.get(&path) != Some(&hash) {
            self.mark(&path);
        }
        self.hashes.insert(path.clone(), hash);
        self.files.insert(path, bytes);
    }

    /// Drops the DAG file of a job that is gone.
    fn drop_dag(&mut self, job_path: &str, shared_dirty: &mut bool) {
        if let Some((job, file, _)) = self.dag_jobs.remove(job_path) {
            *shared_dirty |= has_assets(&job);
            self.files.remove(&file);
            self.hashes.remove(&file);
            self.mark(&file);
        }
    }

    /// The jobs of `paths` (job files that may have changed) whose DAG file must be rendered
    /// again; DAG files of jobs that are gone are dropped. Looks at nothing else.
    fn stale_of<'r>(
        &mut self,
        repo: &'r olo_schema::Repo,
        paths: &BTreeSet<String>,
        shared_dirty: &mut bool,
    ) -> Vec<(&'r olo_schema::Workspace, &'r Arc<olo_schema::Job>)> {
        self.work.looked = paths.len();
        // Gone first: a job that takes over a DAG id takes over its file too.
        for path in paths {
            if repo.job_at(path).is_none() {
                self.drop_dag(path, shared_dirty);
            }
        }
        let mut stale = Vec::new();
        for path in paths {
            let Some((ws, job)) = repo.job_at(path) else {
                continue;
            };
            // The DAG file's name follows from the job file's path, so an entry keeps its file.
            match self.dag_jobs.get_mut(path) {
                Some(entry) if Arc::ptr_eq(&entry.0, job) && self.files.contains_key(&entry.1) => {}
                Some(entry) => {
                    *shared_dirty |= asset_refs(&entry.0) != asset_refs(job);
                    entry.0 = job.clone();
                    stale.push((ws, job));
                }
                None => {
                    *shared_dirty |= has_assets(job);
                    let file = format!("dags/{}.py", job.dag_id);
                    self.dag_jobs
                        .insert(path.clone(), (job.clone(), file, self.round));
                    stale.push((ws, job));
                }
            }
        }
        stale
    }

    /// [`Memo::stale_of`] for every job of `repo` (a commit validated whole).
    fn stale_of_all<'r>(
        &mut self,
        repo: &'r olo_schema::Repo,
        shared_dirty: &mut bool,
    ) -> Vec<(&'r olo_schema::Workspace, &'r Arc<olo_schema::Job>)> {
        // DAG files: keep those whose job is the very same (shared) job as last time.
        self.round += 1;
        let round = self.round;
        let mut stale = Vec::new();
        for ws in repo.workspaces.values() {
            for job in ws.jobs.values() {
                self.work.looked += 1;
                match self.dag_jobs.get_mut(&job.path) {
                    Some(entry) => {
                        if !Arc::ptr_eq(&entry.0, job) || !self.files.contains_key(&entry.1) {
                            // Asset files themselves are covered by the other files' changes;
                            // a changed job matters only if it references other ones.
                            *shared_dirty |= asset_refs(&entry.0) != asset_refs(job);
                            stale.push((ws, job));
                            entry.0 = job.clone();
                        }
                        entry.2 = round;
                    }
                    None => {
                        *shared_dirty |= has_assets(job);
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
            self.drop_dag(&path, shared_dirty);
        }
        stale
    }
}

/// Whether a job file (`workspaces/<ws>/jobs/<name>.yaml`): a change to any other file may
/// change every job's outcome and the shared files.
fn is_job_file(path: &str) -> bool {
    olo_schema::revalidate::job_role(path).is_some()
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
