//! Validating a commit from the one before it: when a commit changes job files only (the common
//! commit), only those files are parsed and checked, and the repository-wide outcome (which job
//! has which DAG id, the diagnostics, each workspace's jobs) is updated in place. Any other change
//! (olo.yaml, a workspace file, a file a job references) validates the whole commit again, as
//! every job's checks may read it.
//!
//! The outcome is the same as [`crate::validate`] of the whole commit; the tests compare the two
//! over random sequences of commits.

use std::collections::BTreeSet;
use std::sync::Arc;

use rayon::prelude::*;

use crate::checks::Context;
use crate::diagnostic::Diagnostic;
use crate::load::Role;
use crate::snapshot::{Entry, Snapshot};
use crate::validate::{check_job_file, clash, validate_whole, Cache, JobCheck, Repo};

/// A job file's bytes and the outcome of its checks.
type Checked = (Arc<[u8]>, Arc<JobCheck>);

/// What to validate.
pub enum Input {
    /// A commit read whole (the first one, or one unrelated to the last validated).
    Whole(Snapshot),
    /// The next commit: the previous [`Revalidation`]'s repository with its snapshot moved to
    /// the new commit; `since` is the commit validated before, `paths` the files that differ.
    Next {
        repo: Repo,
        since: String,
        paths: Vec<String>,
    },
}

/// A commit's validation, with what changed since the previous one.
#[derive(Debug)]
pub struct Revalidation {
    /// Every workspace, and every job that passed its own checks. Only a valid repository is
    /// rendered; an invalid one is kept to validate the next commit from.
    pub repo: Repo,
    /// Every diagnostic (warnings too), sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Job files whose accepted job may differ from the previous validation's: changed, added or
    /// removed, or winning or losing a DAG-id clash with one that did. `None`: any job may differ
    /// (the commit was validated whole).
    pub touched: Option<Vec<String>>,
    /// How many job files were parsed and checked (the others kept their outcome).
    pub checked: usize,
}

impl Revalidation {
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Validates a commit, from the previous one when `input` says how they differ and `cache` holds
/// the previous validation.
pub fn revalidate(input: Input, cache: &mut Cache) -> Revalidation {
    let (repo, since, paths) = match input {
        Input::Whole(snapshot) => return whole(snapshot, cache),
        Input::Next { repo, since, paths } => (repo, since, paths),
    };
    let incremental = cache.state.as_ref().is_some_and(|state| {
        state.revision.as_deref() == Some(since.as_str())
            && !state.linked_jobs
            && paths.iter().all(|p| {
                job_role(p).is_some()
                    && !matches!(repo.snapshot.files.get(p), Some(Entry::Symlink(_)))
            })
    });
    if !incremental {
        return whole(repo.snapshot, cache);
    }
    let Some(mut state) = cache.state.take() else {
        return whole(repo.snapshot, cache);
    };
    let Repo {
        snapshot,
        settings,
        mut workspaces,
    } = repo;
    let paths: BTreeSet<String> = paths.into_iter().collect();

    // The new outcome of each changed file (`None`: deleted).
    let ctx = Context {
        snapshot: &snapshot,
        workspaces: &workspaces,
        ws_folders: &state.ws_folders,
    };
    let check = |path: &String| -> (String, Option<Checked>) {
        let now = match (snapshot.files.get(path), job_role(path)) {
            (Some(Entry::File(bytes)), Some(role)) => {
                Some((bytes.clone(), Arc::new(check_job_file(&ctx, path, role))))
            }
            _ => None,
        };
        (path.clone(), now)
    };
    let fresh: Vec<_> = if paths.len() > 32 {
        paths.par_iter().map(check).collect()
    } else {
        paths.iter().map(check).collect()
    };
    let checked = fresh.iter().filter(|(_, now)| now.is_some()).count();

    // Out with the old outcomes, in with the new; DAG ids whose claims changed are settled after.
    let mut affected: BTreeSet<String> = BTreeSet::new();
    for (path, now) in fresh {
        if let Some((_, old)) = cache.checked.remove(&path) {
            if let Some(job) = &old.0 {
                if let Some(claims) = state.claims.get_mut(&job.dag_id) {
                    claims.retain(|p| *p != path);
                    if claims.is_empty() {
                        state.claims.remove(&job.dag_id);
                    }
                }
                affected.insert(job.dag_id.clone());
                if let Some(ws) = workspaces.get_mut(&job.workspace) {
                    if ws.jobs.get(&job.name).is_some_and(|j| j.path == path) {
                        ws.jobs.remove(&job.name);
                    }
                }
            }
        }
        state.job_diagnostics.remove(&path);
        state.clashes.remove(&path);
        let Some((bytes, check)) = now else { continue };
        if !check.1.is_empty() {
            state.job_diagnostics.insert(path.clone(), check.1.clone());
        }
        if let Some(job) = &check.0 {
            let claims = state.claims.entry(job.dag_id.clone()).or_default();
            let at = claims.partition_point(|p| *p < path);
            claims.insert(at, path.clone());
            affected.insert(job.dag_id.clone());
        }
        cache.checked.insert(path, (bytes, check));
    }

    // Each affected DAG id: the first job file (in path order) is accepted, the others clash.
    let mut touched = paths;
    for dag_id in &affected {
        let Some(claims) = state.claims.get(dag_id) else {
            continue;
        };
        for (i, path) in claims.iter().enumerate() {
            touched.insert(path.clone());
            let Some(job) = cache.checked.get(path).and_then(|(_, c)| c.0.clone()) else {
                continue;
            };
            let ws = workspaces.get_mut(&job.workspace);
            if i == 0 {
                state.clashes.remove(path);
                if let Some(ws) = ws {
                    ws.jobs.insert(job.name.clone(), job);
                }
            } else {
                state
                    .clashes
                    .insert(path.clone(), clash(dag_id, path, &claims[0]));
                if let Some(ws) = ws {
                    if ws.jobs.get(&job.name).is_some_and(|j| j.path == *path) {
                        ws.jobs.remove(&job.name);
                    }
                }
            }
        }
    }

    state.revision = snapshot.revision.clone();
    let diagnostics = state.diagnostics();
    cache.state = Some(state);
    Revalidation {
        repo: Repo {
            snapshot,
            settings,
            workspaces,
        },
        diagnostics,
        touched: Some(touched.into_iter().collect()),
        checked,
    }
}

fn whole(snapshot: Snapshot, cache: &mut Cache) -> Revalidation {
    let (repo, diagnostics, checked) = validate_whole(snapshot, cache);
    Revalidation {
        checked,
        repo,
        diagnostics,
        touched: None,
    }
}

/// The role of a job file's path (`workspaces/<folder>/jobs/<stem>.yaml`), as
/// [`crate::load::classify`] gives it; `None` for any other path.
pub fn job_role(path: &str) -> Option<Role> {
    let rest = path.strip_prefix("workspaces/")?;
    let mut parts = rest.split('/');
    let (folder, jobs, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || jobs != "jobs" || !file.ends_with(".yaml") {
        return None;
    }
    Some(Role::Job {
        folder: folder.to_string(),
        stem: file.trim_end_matches(".yaml").to_string(),
    })
}

#[cfg(test)]
#[path = "revalidate_tests.rs"]
mod tests;
