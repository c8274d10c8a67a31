//! What one commit changed in the config repository, file by file, against its first parent:
//! the revision page's "change in the config repository".

use std::path::Path;

use git2::{Delta, DiffOptions};
use serde::Serialize;

use super::git::{commit_of, open, sub_path};
use crate::{Error, Result};

/// One file a commit added, modified or deleted (a path relative to the config repository).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub change: &'static str,
    /// The unified diff; `None` for binary content or a side larger than the limit.
    pub diff: Option<String>,
}

/// The files commit `rev` changed below the config repository at `repo_path` (which may be a
/// sub-folder of the git repository), against its first parent (a root commit adds every
/// file), in path order; at most `max_files` of them, and the number left out. A side larger
/// than `max_bytes` is shown without a diff.
pub fn commit_diff(
    repo_path: &Path,
    rev: &str,
    max_files: usize,
    max_bytes: usize,
) -> Result<(Vec<FileDiff>, usize)> {
    let repo = open(repo_path)?;
    let commit = commit_of(&repo, rev)?;
    let revision = |source| Error::Revision {
        rev: rev.to_string(),
        source,
    };
    let new = commit.tree().map_err(revision)?;
    let old = match commit.parent(0) {
        Ok(parent) => Some(parent.tree().map_err(revision)?),
        Err(_) => None,
    };
    let prefix = sub_path(&repo, repo_path);
    let mut options = DiffOptions::new();
    if !prefix.is_empty() {
        options.pathspec(format!("{prefix}/"));
    }
    let diff = repo
        .diff_tree_to_tree(old.as_ref(), Some(&new), Some(&mut options))
        .map_err(revision)?;
    let strip = |p: &Path| -> String {
        let p = p.to_string_lossy().replace('\\', "/");
        match prefix.as_str() {
            "" => p,
            prefix => p
                .strip_prefix(prefix)
                .and_then(|p| p.strip_prefix('/'))
                .unwrap_or(&p)
                .to_string(),
        }
    };
    let blob = |id: git2::Oid| -> Option<Vec<u8>> {
        if id.is_zero() {
            return Some(Vec::new());
        }
        let blob = repo.find_blob(id).ok()?;
        (blob.size() <= max_bytes).then(|| blob.content().to_vec())
    };
    let mut files = Vec::new();
    let mut left_out = 0;
    for delta in diff.deltas() {
        let change = match delta.status() {
            Delta::Added => "added",
            Delta::Deleted => "deleted",
            Delta::Modified | Delta::Typechange => "modified",
            _ => continue,
        };
        if files.len() >= max_files {
            left_out += 1;
            continue;
        }
        let file = if change == "deleted" {
            delta.old_file()
        } else {
            delta.new_file()
        };
        let Some(path) = file.path().map(strip) else {
            continue;
        };
        let diff = blob(delta.old_file().id())
            .zip(blob(delta.new_file().id()))
            .and_then(|(old, new)| crate::plan::text_diff(&path, &old, &new));
        files.push(FileDiff { path, change, diff });
    }
    Ok((files, left_out))
}

#[cfg(test)]
mod tests {
    use super::super::git::tests_support::commit;
    use super::*;
    use git2::Repository;

    #[test]
    fn a_commit_shows_what_it_changed_in_the_config_repository_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let config = dir.path().join("config");
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (
                "config/workspaces/w/jobs/a.yaml".into(),
                b"schedule: '@daily'\n".to_vec(),
            ),
            (
                "config/workspaces/w/jobs/gone.yaml".into(),
                b"x: 1\n".to_vec(),
            ),
            ("README.md".into(), b"outside\n".to_vec()),
        ];
        let first = commit(&repo, &files, &[]);
        let (root, left_out) = commit_diff(&config, &first, 10, 1 << 20).unwrap();
        let added: Vec<(&str, &str)> = root.iter().map(|f| (f.path.as_str(), f.change)).collect();
        assert_eq!(
            (added, left_out),
            (
                vec![
                    ("workspaces/w/jobs/a.yaml", "added"),
                    ("workspaces/w/jobs/gone.yaml", "added")
                ],
                0
            )
        );

        files[0].1 = b"schedule: '30 4 * * *'\n".to_vec();
        files.remove(1);
        files[1].1 = b"outside, changed\n".to_vec();
        files.push((
            "config/workspaces/w/jobs/b.bin".into(),
            vec![0, 159, 146, 150],
        ));
        let second = commit(&repo, &files, &[]);
        let (changed, _) = commit_diff(&config, &second, 10, 1 << 20).unwrap();
        insta::assert_debug_snapshot!(changed);

        // At most `max_files`, and the number left out; a side over `max_bytes` has no diff.
        let (one, left_out) = commit_diff(&config, &second, 1, 4).unwrap();
        assert_eq!(left_out, 2);
        assert_eq!(one[0].path, "workspaces/w/jobs/a.yaml");
        assert_eq!(one[0].diff, None);
    }
}
