use std::path::Path;

use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};
use olo_schema::snapshot::is_tracked;
use olo_schema::Snapshot;

use crate::{Error, Result};

const MODE_LINK: i32 = 0o120000;

/// Reads the tracked files of one commit straight from git objects (never the working tree), so
/// a commit is seen whole or not at all. `rev` is anything `git rev-parse` accepts.
pub fn from_commit(repo_path: &Path, rev: &str) -> Result<Snapshot> {
    let repo = open(repo_path)?;
    let commit = commit_of(&repo, rev)?;
    // When PATH is a sub-folder of the git repository, read the config repo below it.
    let prefix = sub_path(&repo, repo_path);
    let mut tree = commit.tree().map_err(|source| Error::Revision {
        rev: rev.to_string(),
        source,
    })?;
    if !prefix.is_empty() {
        let entry = tree
            .get_path(Path::new(&prefix))
            .map_err(|source| Error::ReadObject {
                path: prefix.clone(),
                source,
            })?;
        tree = repo
            .find_tree(entry.id())
            .map_err(|source| Error::ReadObject {
                path: prefix.clone(),
                source,
            })?;
    }
    let mut snapshot = Snapshot::new(Some(commit.id().to_string()));
    let mut failure = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let Ok(name) = entry.name() else {
            return TreeWalkResult::Ok;
        };
        let path = format!("{dir}{name}");
        if entry.kind() == Some(ObjectType::Tree) {
            let wanted = path == "workspaces" || path.starts_with("workspaces/");
            return if wanted {
                TreeWalkResult::Ok
            } else {
                TreeWalkResult::Skip
            };
        }
        if entry.kind() != Some(ObjectType::Blob) || !is_tracked(&path) {
            return TreeWalkResult::Ok;
        }
        match repo.find_blob(entry.id()) {
            Ok(blob) => {
                if entry.filemode() == MODE_LINK {
                    snapshot
                        .insert_symlink(path, String::from_utf8_lossy(blob.content()).into_owned());
                } else {
                    snapshot.insert_file(path, blob.content().to_vec());
                }
                TreeWalkResult::Ok
            }
            Err(source) => {
                failure = Some(Error::ReadObject { path, source });
                TreeWalkResult::Abort
            }
        }
    })
    .ok();
    match failure {
        Some(e) => Err(e),
        None => Ok(snapshot),
    }
}

/// The bytes of one file of commit `rev` (a path relative to the config repo, which may be a
/// sub-folder of the git repository), read from git objects; `Ok(None)` when the commit has no
/// such file. Files larger than `max_bytes` are refused as missing.
pub fn read_file(
    repo_path: &Path,
    rev: &str,
    path: &str,
    max_bytes: usize,
) -> Result<Option<Vec<u8>>> {
    let repo = open(repo_path)?;
    let commit = commit_of(&repo, rev)?;
    let tree = commit.tree().map_err(|source| Error::Revision {
        rev: rev.to_string(),
        source,
    })?;
    let prefix = sub_path(&repo, repo_path);
    let full = if prefix.is_empty() {
        path.to_string()
    } else {
        format!("{prefix}/{path}")
    };
    let Ok(entry) = tree.get_path(Path::new(&full)) else {
        return Ok(None);
    };
    if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == MODE_LINK {
        return Ok(None);
    }
    let blob = repo
        .find_blob(entry.id())
        .map_err(|source| Error::ReadObject { path: full, source })?;
    Ok((blob.size() <= max_bytes).then(|| blob.content().to_vec()))
}

/// The git repository at or above `repo_path`.
fn open(repo_path: &Path) -> Result<Repository> {
    Repository::discover(repo_path).map_err(|source| Error::OpenRepo {
        path: repo_path.display().to_string(),
        source,
    })
}

/// The commit `rev` names.
fn commit_of<'r>(repo: &'r Repository, rev: &str) -> Result<git2::Commit<'r>> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|source| Error::Revision {
            rev: rev.to_string(),
            source,
        })
}

fn sub_path(repo: &Repository, path: &Path) -> String {
    let (Some(workdir), Ok(path)) = (repo.workdir(), path.canonicalize()) else {
        return String::new();
    };
    let Ok(workdir) = workdir.canonicalize() else {
        return String::new();
    };
    path.strip_prefix(&workdir)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default()
}

/// The snapshot of commit `rev`, built from the snapshot of an earlier commit of the same
/// repository (`previous.revision`) by reading only the files git says changed between the two
/// trees. Files that did not change keep sharing their bytes with `previous`, which is what the
/// validation and render caches recognise. Falls back to a full read when there is no usable
/// previous snapshot.
pub fn from_commit_since(repo_path: &Path, previous: &Snapshot, rev: &str) -> Result<Snapshot> {
    let Some(prev_sha) = previous.revision.as_deref() else {
        return from_commit(repo_path, rev);
    };
    let repo = Repository::open(repo_path).map_err(|source| Error::OpenRepo {
        path: repo_path.display().to_string(),
        source,
    })?;
    let rev_err = |r: &str| {
        let r = r.to_string();
        move |source| Error::Revision { rev: r, source }
    };
    let new = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(rev_err(rev))?;
    let Ok(old) = repo
        .revparse_single(prev_sha)
        .and_then(|o| o.peel_to_commit())
    else {
        return from_commit(repo_path, rev);
    };
    let (old_tree, new_tree) = (
        old.tree().map_err(rev_err(prev_sha))?,
        new.tree().map_err(rev_err(rev))?,
    );
    let diff = repo
        .diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)
        .map_err(rev_err(rev))?;
    let mut snapshot = previous.clone();
    snapshot.revision = Some(new.id().to_string());
    for delta in diff.deltas() {
        if let Some(old_path) = delta.old_file().path().and_then(|p| p.to_str()) {
            if is_tracked(old_path) {
                snapshot.files.remove(old_path);
            }
        }
        let file = delta.new_file();
        let Some(path) = file.path().and_then(|p| p.to_str()) else {
            continue;
        };
        if !is_tracked(path) || !file.exists() {
            continue;
        }
        let blob = repo
            .find_blob(file.id())
            .map_err(|source| Error::ReadObject {
                path: path.to_string(),
                source,
            })?;
        if file.mode() == git2::FileMode::Link {
            snapshot.insert_symlink(path, String::from_utf8_lossy(blob.content()).into_owned());
        } else if matches!(
            file.mode(),
            git2::FileMode::Blob | git2::FileMode::BlobExecutable
        ) {
            snapshot.insert_file(path, blob.content().to_vec());
        }
    }
    Ok(snapshot)
}
