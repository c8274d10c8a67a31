use std::path::Path;

use git2::{Repository, Signature};
use olo_schema::Entry;

use crate::{Error, Result};

const LINK_MODE: i32 = 0o120000;
const FILE_MODE: i32 = 0o100644;

/// Imports the tracked files of a plain folder into a bare repository as a commit on `branch`
/// (only when the content differs from the branch tip). Returns the tip's sha.
pub fn import_worktree(folder: &Path, bare: &Path, branch: &str) -> Result<String> {
    let snapshot = crate::snapshot::from_worktree(folder)?;
    let open_err = |source| Error::OpenRepo {
        path: bare.display().to_string(),
        source,
    };
    let repo = match Repository::open_bare(bare) {
        Ok(r) => r,
        Err(_) => Repository::init_bare(bare).map_err(open_err)?,
    };
    let write_err = |source| Error::ReadObject {
        path: bare.display().to_string(),
        source,
    };
    // Build the tree bottom-up from the flat path list.
    let mut root = Dir::default();
    for (path, entry) in &snapshot.files {
        let (oid, mode) = match entry {
            Entry::File(b) => (repo.blob(b).map_err(write_err)?, FILE_MODE),
            Entry::Symlink(t) => (repo.blob(t.as_bytes()).map_err(write_err)?, LINK_MODE),
        };
        root.insert(path, oid, mode);
    }
    let tree_id = root.write(&repo).map_err(write_err)?;
    let refname = format!("refs/heads/{branch}");
    let parent = repo
        .find_reference(&refname)
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    if let Some(p) = &parent {
        if p.tree_id() == tree_id {
            return Ok(p.id().to_string());
        }
    }
    let tree = repo.find_tree(tree_id).map_err(write_err)?;
    let sig = Signature::now("olo (local folder)", "olo@localhost").map_err(write_err)?;
    let message = format!("Import of {}", folder.display());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo
        .commit(Some(&refname), &sig, &sig, &message, &tree, &parents)
        .map_err(write_err)?;
    Ok(oid.to_string())
}

#[derive(Default)]
struct Dir {
    files: Vec<(String, git2::Oid, i32)>,
    dirs: std::collections::BTreeMap<String, Dir>,
}

impl Dir {
    fn insert(&mut self, path: &str, oid: git2::Oid, mode: i32) {
        match path.split_once('/') {
            None => self.files.push((path.to_string(), oid, mode)),
            Some((head, rest)) => self
                .dirs
                .entry(head.to_string())
                .or_default()
                .insert(rest, oid, mode),
        }
    }

    fn write(&self, repo: &Repository) -> std::result::Result<git2::Oid, git2::Error> {
        let mut builder = repo.treebuilder(None)?;
        for (name, oid, mode) in &self.files {
            builder.insert(name, *oid, *mode)?;
        }
        for (name, dir) in &self.dirs {
            let oid = dir.write(repo)?;
            builder.insert(name, oid, 0o040000)?;
        }
        builder.write()
    }
}
