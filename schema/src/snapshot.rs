//! A config repository as plain data: every file under the tracked paths at one revision.
//!
//! Readers (a working tree, a git commit) live in the reconciler crate; everything in this crate
//! works on a [`Snapshot`], so a commit is judged whole, and tests build snapshots in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The paths olo reads: `olo.yaml` and everything under `workspaces/`.
pub fn is_tracked(path: &str) -> bool {
    path == "olo.yaml" || path == "olo.yml" || path.starts_with("workspaces/")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Shared bytes: snapshots of successive commits share the files that did not change, and
    /// caches recognise them without hashing.
    File(Arc<[u8]>),
    /// A symbolic link and its target, exactly as stored (never followed by readers).
    Symlink(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit the files come from, when they come from git.
    pub revision: Option<String>,
    /// Repository-relative paths with `/` separators.
    pub files: BTreeMap<String, Entry>,
}

impl Snapshot {
    pub fn new(revision: Option<String>) -> Snapshot {
        Snapshot {
            revision,
            files: BTreeMap::new(),
        }
    }

    pub fn insert_file(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let bytes: Vec<u8> = bytes.into();
        self.files
            .insert(path.into(), Entry::File(Arc::from(bytes)));
    }

    pub fn insert_symlink(&mut self, path: impl Into<String>, target: impl Into<String>) {
        self.files
            .insert(path.into(), Entry::Symlink(target.into()));
    }

    /// Resolves `path` (following symlinks inside the snapshot, at most 8 hops) to a file's bytes.
    /// Returns the final path too. `within` is a folder prefix every hop must stay inside.
    pub fn resolve(&self, path: &str, within: &str) -> Result<(String, &[u8]), ResolveError> {
        let mut current = path.to_string();
        for _ in 0..8 {
            if !current.starts_with(within) {
                return Err(ResolveError::Escapes(current));
            }
            match self.files.get(&current) {
                None => match self.through_linked_folder(&current) {
                    Some(next) => current = next.ok_or(ResolveError::Escapes(current.clone()))?,
                    None => return Err(ResolveError::Missing(current)),
                },
                Some(Entry::File(bytes)) => return Ok((current, bytes)),
                Some(Entry::Symlink(target)) => {
                    let dir = current.rsplit_once('/').map_or("", |(d, _)| d);
                    current = join_normalized(dir, target)
                        .ok_or(ResolveError::Escapes(target.clone()))?;
                }
            }
        }
        Err(ResolveError::Loop(path.to_string()))
    }

    /// When a folder on the way to `path` is a symbolic link: the path through the link's target
    /// (`Some(None)` when the target climbs above the repository root).
    fn through_linked_folder(&self, path: &str) -> Option<Option<String>> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let prefix = &path[..end + i];
            if let Some(Entry::Symlink(target)) = self.files.get(prefix) {
                let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
                let rest = &path[end + i + 1..];
                return Some(join_normalized(dir, target).map(|t| format!("{t}/{rest}")));
            }
            end += i + 1;
        }
        None
    }

    /// Paths of the files (and links) below `folder/`.
    pub fn list_below<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("{folder}/");
        self.files
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    Missing(String),
    Escapes(String),
    Loop(String),
}

/// Joins a relative path onto a folder, resolving `.` and `..`; `None` when the result would climb
/// above the repository root or the path is absolute.
pub fn join_normalized(dir: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.contains('\\') || rel.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links_inside_and_refuses_escapes() {
        let mut s = Snapshot::new(None);
        s.insert_file("workspaces/a/sql/x.sql", "select 1");
        s.insert_symlink("workspaces/a/sql/y.sql", "x.sql");
        s.insert_symlink("workspaces/a/sql/z.sql", "../../b/secret.sql");
        s.insert_symlink("workspaces/a/sql/loop.sql", "loop.sql");
        s.insert_file("workspaces/b/secret.sql", "select 2");
        assert_eq!(
            s.resolve("workspaces/a/sql/y.sql", "workspaces/a/")
                .unwrap()
                .1,
            b"select 1"
        );
        assert!(matches!(
            s.resolve("workspaces/a/sql/z.sql", "workspaces/a/"),
            Err(ResolveError::Escapes(_))
        ));
        assert!(matches!(
            s.resolve("workspaces/a/sql/loop.sql", "workspaces/a/"),
            Err(ResolveError::Loop(_))
        ));
        assert!(matches!(
            s.resolve("workspaces/a/sql/none.sql", "workspaces/a/"),
            Err(ResolveError::Missing(_))
        ));
    }

    #[test]
    fn resolve_follows_linked_folders() {
        let mut s = Snapshot::new(None);
        s.insert_file("workspaces/a/sql/x.sql", "select 1");
        s.insert_symlink("workspaces/a/queries", "sql");
        s.insert_symlink("workspaces/a/out", "../b");
        s.insert_file("workspaces/b/x.sql", "select 2");
        assert_eq!(
            s.resolve("workspaces/a/queries/x.sql", "workspaces/a/")
                .unwrap()
                .1,
            b"select 1"
        );
        assert!(matches!(
            s.resolve("workspaces/a/out/x.sql", "workspaces/a/"),
            Err(ResolveError::Escapes(_))
        ));
    }

    #[test]
    fn join() {
        assert_eq!(join_normalized("a/b", "../c").as_deref(), Some("a/c"));
        assert_eq!(join_normalized("a", "../../c"), None);
        assert_eq!(join_normalized("a", "/etc/passwd"), None);
    }
}
