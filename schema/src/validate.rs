//! Semantic checks over the whole repository, all in one pass, and the validated [`Repo`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use crate::diagnostic::{self, Diagnostic};
use std::sync::Arc;

use crate::checks::{check_defaults, check_job, check_workspace, pos, Context};
use crate::load::{self, same_bytes, DocCache, LoadResult, Role};
use crate::model::{JobDoc, RepositoryDoc, RepositorySpec, WorkspaceDoc};
use crate::name::Name;
use crate::schedule::Schedule;
use crate::snapshot::{Entry, Snapshot};
use crate::yaml::Pos;

const TOP: Pos = Pos { line: 1, col: 1 };

/// A repository that passed every check: what render and plan work from.
#[derive(Debug, Clone)]
pub struct Repo {
    pub snapshot: Snapshot,
    pub settings: RepositorySpec,
    pub workspaces: BTreeMap<Name, Workspace>,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub name: Name,
    /// `workspaces/<name>/workspace.yaml`
    pub path: String,
    pub doc: WorkspaceDoc,
    /// Shared, so that successive validations reuse the jobs that did not change.
    pub jobs: BTreeMap<Name, Arc<Job>>,
}

impl Repo {
    /// The accepted job of a job file (`workspaces/<ws>/jobs/<name>.yaml`) and its workspace.
    pub fn job_at(&self, path: &str) -> Option<(&Workspace, &Arc<Job>)> {
        let Role::Job { folder, stem } = crate::revalidate::job_role(path)? else {
            return None;
        };
        let ws = self.workspaces.get(folder.as_str())?;
        let job = ws.jobs.get(stem.as_str())?;
        (job.path == path).then_some((ws, job))
    }
}

impl Workspace {
    /// The workspace folder, `workspaces/<name>`.
    pub fn folder(&self) -> String {
        format!("workspaces/{}", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub name: Name,
    pub workspace: Name,
    /// `workspaces/<ws>/jobs/<name>.yaml`
    pub path: String,
    pub doc: JobDoc,
    pub schedule: Schedule,
    /// `<workspace>__<job>`
    pub dag_id: String,
}

/// The outcome of validating a snapshot: a repo when there is no error, and every diagnostic
/// (warnings too) sorted by file and position.
#[derive(Debug)]
pub struct Validation {
    pub repo: Option<Repo>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// Validates a whole snapshot: YAML, schema and semantic checks; every problem at once.
pub fn validate(snapshot: Snapshot) -> Validation {
    validate_with(snapshot, &mut Cache::default())
}

/// What validating one snapshot leaves for the next: parsed files by content, and per-job check
/// results while everything a job check reads besides the job file (workspaces, olo.yaml, the
/// files jobs reference) is unchanged. A daemon that validates commit after commit re-parses and
/// re-checks only what changed.
#[derive(Default)]
pub struct Cache {
    repository: DocCache<RepositoryDoc>,
    workspaces: DocCache<WorkspaceDoc>,
    context: Vec<(String, Entry)>,
    /// Per job file: the bytes it was checked from and the outcome. The parsed YAML tree is not
    /// kept (it is most of the memory of a large repository); a job is parsed again only when
    /// its file or its context changes.
    pub(crate) checked: foldhash::HashMap<String, (Arc<[u8]>, Arc<JobCheck>)>,
    /// What the last validation decided, for an incremental validation of the next commit.
    pub(crate) state: Option<State>,
}

/// The repository-wide outcome of the last validation besides its [`Repo`]: what a commit that
/// changes only job files updates in place ([`crate::revalidate`]).
pub(crate) struct State {
    /// The commit validated.
    pub(crate) revision: Option<String>,
    /// Diagnostics of everything but job files (olo.yaml, workspace files, misplaced files).
    pub(crate) others: Vec<Diagnostic>,
    /// Per DAG id: the job files that pass their own checks and have it, in path order; the
    /// first one is accepted, the others are errors.
    pub(crate) claims: HashMap<String, Vec<String>>,
    /// The error of each job file that loses a DAG-id clash.
    pub(crate) clashes: BTreeMap<String, Diagnostic>,
    /// The diagnostics of each job file whose own checks gave any.
    pub(crate) job_diagnostics: BTreeMap<String, Vec<Diagnostic>>,
    /// Folders under `workspaces/` that have a workspace.yaml.
    pub(crate) ws_folders: BTreeSet<String>,
    /// Whether a job file is a symbolic link (its outcome follows another file: every commit is
    /// validated whole).
    pub(crate) linked_jobs: bool,
}

impl State {
    /// Every diagnostic, sorted by file and position.
    pub(crate) fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut diags = self.others.clone();
        for d in self.job_diagnostics.values() {
            diags.extend(d.iter().cloned());
        }
        diags.extend(self.clashes.values().cloned());
        diagnostic::sort(&mut diags);
        diags
    }
}

pub(crate) type JobCheck = (Option<Arc<Job>>, Vec<Diagnostic>);
/// A job file's path, the bytes it was checked from, the outcome, and whether it was checked
/// now (not taken from the cache).
type JobOutcome = (String, Option<Arc<[u8]>>, Arc<JobCheck>, bool);

fn same_entry(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (Entry::File(x), Entry::File(y)) => same_bytes(x, y),
        (Entry::Symlink(x), Entry::Symlink(y)) => x == y,
        _ => false,
    }
}

/// The schema errors `schema` of a job file, and the semantic checks' errors of what the schema did
/// not refuse, so that one round shows every error of the file (a misspelled `depends_on` beside
/// an unknown field). The job itself is never accepted. A semantic error at the position of a
/// schema error says the same thing again, and is left out.
fn with_semantic_errors(
    ctx: &Context<'_>,
    snapshot: &Snapshot,
    path: &str,
    role: Role,
    mut schema: Vec<Diagnostic>,
) -> Vec<Diagnostic> {
    let Some(loaded) = load::load_repaired::<JobDoc>(snapshot, path, role) else {
        return schema;
    };
    let taken: BTreeSet<(u32, u32)> = schema.iter().map(|d| (d.line, d.column)).collect();
    let (_, semantic) = check_job(ctx, loaded);
    schema.extend(
        semantic
            .into_iter()
            .filter(|d| !taken.contains(&(d.line, d.column))),
    );
    schema
}

/// Parses and checks one job file (its schema, then its semantics).
pub(crate) fn check_job_file(ctx: &Context<'_>, path: &str, role: Role) -> JobCheck {
    match load::load_one::<JobDoc>(ctx.snapshot, path, role.clone()) {
        Ok(loaded) => {
            let (job, d) = check_job(ctx, loaded);
            (job.map(Arc::new), d)
        }
        Err(d) => (None, with_semantic_errors(ctx, ctx.snapshot, path, role, d)),
    }
}

/// [`validate`] with a cache from earlier snapshots.
pub fn validate_with(snapshot: Snapshot, cache: &mut Cache) -> Validation {
    let (repo, diagnostics, _) = validate_whole(snapshot, cache);
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    Validation {
        repo: ok.then_some(repo),
        diagnostics,
    }
}

/// Validates every file of `snapshot` (reusing what `cache` holds of unchanged files), and leaves
/// in `cache` what an incremental validation of the next commit starts from. The repository holds
/// every workspace and job that passed its own checks, whether or not the whole is valid. Also
/// returns how many job files were parsed and checked (not taken from the cache).
pub(crate) fn validate_whole(
    snapshot: Snapshot,
    cache: &mut Cache,
) -> (Repo, Vec<Diagnostic>, usize) {
    let (files, mut diags) = load::classify(&snapshot);
    let mut repo_files = Vec::new();
    let mut ws_files = Vec::new();
    let mut job_files = Vec::new();
    for (path, role) in files {
        match role {
            Role::Repository => repo_files.push((path, role)),
            Role::Workspace { .. } => ws_files.push((path, role)),
            Role::Job { .. } => job_files.push((path, role)),
        }
    }
    // Everything a job check may read besides its own file (both lists are in path order).
    let mut job_paths = job_files.iter().map(|(p, _)| p.as_str()).peekable();
    let context: Vec<(String, Entry)> = snapshot
        .files
        .iter()
        .filter(|(p, _)| job_paths.next_if(|j| j == p).is_none())
        .map(|(p, e)| (p.clone(), e.clone()))
        .collect();
    let context_same = context.len() == cache.context.len()
        && context
            .iter()
            .zip(&cache.context)
            .all(|((p, e), (q, f))| p == q && same_entry(e, f));
    cache.context = context;
    if !context_same {
        cache.checked.clear();
    }

    let repo_docs =
        load::load_many_cached::<RepositoryDoc>(&snapshot, repo_files, &mut cache.repository);
    let ws_docs =
        load::load_many_cached::<WorkspaceDoc>(&snapshot, ws_files, &mut cache.workspaces);
    collect_errors(&repo_docs, &mut diags);
    collect_errors(&ws_docs, &mut diags);

    // Folders that have a workspace.yaml, whether or not it validated (so a broken workspace file
    // does not also make every job of the workspace an error).
    let ws_folders: BTreeSet<String> = snapshot
        .files
        .keys()
        .filter_map(|p| {
            p.strip_prefix("workspaces/")?
                .strip_suffix("/workspace.yaml")
                .map(str::to_string)
        })
        .collect();

    let repo_doc = repo_docs.iter().find_map(|r| r.as_ref().as_ref().ok());
    if let Some(l) = repo_doc {
        let timeout = &l.doc.spec.defaults.timeout;
        check_defaults(&l.path, &l.node, &["spec", "defaults"], timeout, &mut diags);
    }
    let settings = repo_doc.map(|l| l.doc.spec.clone()).unwrap_or_default();

    let mut workspaces: BTreeMap<Name, Workspace> = BTreeMap::new();
    let mut warehouses: HashMap<String, String> = HashMap::new();
    for l in ws_docs.iter().filter_map(|r| r.as_ref().as_ref().ok()) {
        let Role::Workspace { folder } = &l.role else {
            continue;
        };
        diags.extend(check_workspace(l, folder));
        let name = l.doc.metadata.name.clone();
        if let Some(other) =
            warehouses.insert(l.doc.spec.lakehouse.warehouse.clone(), name.to_string())
        {
            diags.push(Diagnostic::error(
                &l.path,
                pos(&l.node, &["spec", "lakehouse", "warehouse"]),
                format!("warehouse is also the warehouse of workspace `{other}`; each workspace needs its own location"),
            ));
        }
        if Name::parse(folder).is_ok() && folder == name.as_str() {
            workspaces.insert(
                name.clone(),
                Workspace {
                    name,
                    path: l.path.clone(),
                    doc: l.doc.clone(),
                    jobs: BTreeMap::new(),
                },
            );
        }
    }

    // Per-job checks are independent of each other: reuse what the cache holds, run the rest in
    // parallel.
    let ctx = Context {
        snapshot: &snapshot,
        workspaces: &workspaces,
        ws_folders: &ws_folders,
    };
    // Each job file is parsed, checked and its tree dropped in one step, so trees never pile
    // up; unchanged files in an unchanged context reuse their outcome.
    let job_results: Vec<JobOutcome> = job_files
        .into_par_iter()
        .map(|(path, role)| {
            let bytes = match snapshot.files.get(&path) {
                Some(Entry::File(b)) => Some(b.clone()),
                _ => None,
            };
            let cached = match (&bytes, cache.checked.get(&path)) {
                (Some(now), Some((then, check))) if same_bytes(now, then) => Some(check.clone()),
                _ => None,
            };
            let fresh = cached.is_none();
            let check = cached.unwrap_or_else(|| Arc::new(check_job_file(&ctx, &path, role)));
            (path, bytes, check, fresh)
        })
        .collect();
    // The cache follows in place: new outcomes in, files that are gone out.
    for (path, bytes, check, fresh) in &job_results {
        match bytes {
            Some(bytes) if *fresh => {
                cache
                    .checked
                    .insert(path.clone(), (bytes.clone(), check.clone()));
            }
            Some(_) => {}
            None => {
                cache.checked.remove(path);
            }
        }
    }
    let kept = job_results.iter().filter(|r| r.1.is_some()).count();
    if cache.checked.len() != kept {
        let paths: foldhash::HashSet<&str> = job_results.iter().map(|r| r.0.as_str()).collect();
        cache.checked.retain(|p, _| paths.contains(p.as_str()));
    }

    let mut state = State {
        revision: snapshot.revision.clone(),
        others: diags,
        claims: HashMap::with_capacity(job_results.len()),
        clashes: BTreeMap::new(),
        job_diagnostics: BTreeMap::new(),
        ws_folders: ws_folders.clone(),
        linked_jobs: false,
    };
    let mut accepted: Vec<Arc<Job>> = Vec::with_capacity(job_results.len());
    for (path, bytes, check, _) in &job_results {
        state.linked_jobs |= bytes.is_none();
        if !check.1.is_empty() {
            state.job_diagnostics.insert(path.clone(), check.1.clone());
        }
        let Some(job) = &check.0 else { continue };
        let claims = state.claims.entry(job.dag_id.clone()).or_default();
        claims.push(job.path.clone());
        if let [first, ..] = &claims[..] {
            if first != &job.path {
                state
                    .clashes
                    .insert(job.path.clone(), clash(&job.dag_id, &job.path, first));
                continue;
            }
        }
        accepted.push(job.clone());
    }
    // Each workspace's jobs in one sorted batch (a bulk build, not 10,000 inserts).
    accepted.sort_by(|a, b| (&a.workspace, &a.name).cmp(&(&b.workspace, &b.name)));
    let mut accepted = accepted.into_iter().peekable();
    while let Some(first) = accepted.peek() {
        let folder = first.workspace.clone();
        let mut batch = Vec::new();
        while let Some(job) = accepted.next_if(|j| j.workspace == folder) {
            batch.push((job.name.clone(), job));
        }
        if let Some(ws) = workspaces.get_mut(&folder) {
            ws.jobs = batch.into_iter().collect();
        }
    }
    let checked = job_results.iter().filter(|r| r.3).count();
    drop(job_results);
    let diagnostics = state.diagnostics();
    cache.state = Some(state);
    (
        Repo {
            snapshot,
            settings,
            workspaces,
        },
        diagnostics,
        checked,
    )
}

/// The error of a job file whose DAG id an earlier job file (in path order) already has.
pub(crate) fn clash(dag_id: &str, path: &str, first: &str) -> Diagnostic {
    Diagnostic::error(
        path,
        TOP,
        format!(
            "DAG id `{dag_id}` is also the DAG id of {first}; rename one of the jobs or workspaces"
        ),
    )
}

fn collect_errors<T>(docs: &[Arc<LoadResult<T>>], diags: &mut Vec<Diagnostic>) {
    for d in docs {
        if let Err(e) = d.as_ref() {
            diags.extend(e.iter().cloned());
        }
    }
}
