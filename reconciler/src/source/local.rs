use std::path::{Path, PathBuf};

use git2::Repository;

use super::write::{commit_local, WriteError, WriteRequest, Written};
use super::{commit_revision, has_commit, import_worktree, missing_commit, Source, Tip};
use crate::{Error, Result};

/// A local config repository. When the path is the root of a git repository, olo follows the
/// tracked branch's commits (uncommitted edits are not live). Otherwise (a plain folder, such as
/// the bundled examples-repo inside olo's own checkout) olo imports the folder into its own
/// repository under the state folder as a new commit whenever its content changes, so every
/// reconcile still reads one commit whole.
pub struct LocalSource {
    path: PathBuf,
    branch: Option<String>,
    import_repo: PathBuf,
}

impl LocalSource {
    pub fn new(path: &Path, branch: Option<String>, state_dir: &Path) -> LocalSource {
        LocalSource {
            path: path.to_path_buf(),
            branch,
            import_repo: state_dir.join("local-source.git"),
        }
    }

    fn is_repo_root(&self) -> bool {
        self.path.join(".git").exists()
    }
}

impl Source for LocalSource {
    fn latest(&mut self) -> Result<Tip> {
        if self.is_repo_root() {
            let repo = Repository::open(&self.path).map_err(|source| Error::OpenRepo {
                path: self.path.display().to_string(),
                source,
            })?;
            let branch = match &self.branch {
                Some(b) => b.clone(),
                None => repo
                    .head()
                    .ok()
                    .and_then(|h| h.shorthand().ok().map(str::to_string))
                    .unwrap_or_else(|| "main".into()),
            };
            let oid = repo
                .revparse_single(&format!("refs/heads/{branch}"))
                .and_then(|o| o.peel_to_commit())
                .map_err(|source| Error::Revision {
                    rev: branch.clone(),
                    source,
                })?
                .id();
            let revision = commit_revision(&repo, &oid.to_string(), &branch)?;
            return Ok(Tip {
                repo: self.path.clone(),
                revision,
            });
        }
        let branch = self.branch.clone().unwrap_or_else(|| "main".into());
        let sha = import_worktree(&self.path, &self.import_repo, &branch)?;
        let repo = Repository::open_bare(&self.import_repo).map_err(|source| Error::OpenRepo {
            path: self.import_repo.display().to_string(),
            source,
        })?;
        let revision = commit_revision(&repo, &sha, &branch)?;
        Ok(Tip {
            repo: self.import_repo.clone(),
            revision,
        })
    }

    fn describe(&self) -> String {
        format!("local {}", self.path.display())
    }

    fn write(&mut self, request: &WriteRequest) -> std::result::Result<Written, WriteError> {
        if !self.is_repo_root() {
            // An imported folder is re-imported from its files: a commit would be undone.
            return Err(WriteError::Unsupported(format!(
                "the plain folder {} (not a git repository)",
                self.path.display()
            )));
        }
        commit_local(&self.path, request)
    }

    fn fetch_commit(&mut self, sha: &str, _refs: &[String]) -> Result<PathBuf> {
        // A local repository holds every commit it will be asked about; an imported folder
        // has no pull requests.
        let path = if self.is_repo_root() {
            self.path.clone()
        } else {
            self.import_repo.clone()
        };
        let repo = Repository::open(&path).map_err(|source| Error::OpenRepo {
            path: path.display().to_string(),
            source,
        })?;
        if has_commit(&repo, sha) {
            Ok(path)
        } else {
            Err(missing_commit(sha))
        }
    }
}
