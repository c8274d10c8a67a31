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
    // The walk lists the tracked blobs; reading them (inflating each object) is most of the work
    // on a cold start, so it runs in parallel, each chunk with its own handle on the repository.
    let mut blobs: Vec<(String, git2::Oid, bool)> = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let Ok(name) = entry.name() else {
            return TreeWalkResult::Ok;
        };
        let path = format!("{dir}{name}");
        if entry.kind() == Some(ObjectType::Tree) {
            return if is_config_dir(&path) {
                TreeWalkResult::Ok
            } else {
                TreeWalkResult::Skip
            };
        }
        if entry.kind() == Some(ObjectType::Blob) && is_tracked(&path) {
            blobs.push((path, entry.id(), entry.filemode() == MODE_LINK));
        }
        TreeWalkResult::Ok
    })
    .map_err(|source| Error::Revision {
        rev: rev.to_string(),
        source,
    })?;
    let mut snapshot = Snapshot::new(Some(commit.id().to_string()));
    for (path, link, bytes) in read_blobs(&repo, blobs)? {
        if link {
            snapshot.insert_symlink(path, String::from_utf8_lossy(&bytes).into_owned());
        } else {
            snapshot.insert_file(path, bytes);
        }
    }
    Ok(snapshot)
}

/// The contents of `blobs` (path, object id, whether a symlink), in the same order. Chunks of at
/// least 256 objects are read in parallel, each through its own `Repository` (a handle is not
/// shared between threads).
fn read_blobs(
    repo: &Repository,
    blobs: Vec<(String, git2::Oid, bool)>,
) -> Result<Vec<(String, bool, Vec<u8>)>> {
    use rayon::prelude::*;
    let read = |repo: &Repository, (path, id, link): &(String, git2::Oid, bool)| {
        repo.find_blob(*id)
            .map(|blob| (path.clone(), *link, blob.content().to_vec()))
            .map_err(|source| Error::ReadObject {
                path: path.clone(),
                source,
            })
    };
    let chunk = (blobs.len() / (4 * rayon::current_num_threads())).max(256);
    if blobs.len() <= chunk {
        return blobs.iter().map(|b| read(repo, b)).collect();
    }
    let git_dir = repo.path();
    let chunks: Vec<Vec<(String, bool, Vec<u8>)>> = blobs
        .par_chunks(chunk)
        .map(|part| {
            let repo = Repository::open(git_dir).map_err(|source| Error::OpenRepo {
                path: git_dir.display().to_string(),
                source,
            })?;
            part.iter().map(|b| read(&repo, b)).collect()
        })
        .collect::<Result<_>>()?;
    Ok(chunks.into_iter().flatten().collect())
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
pub(super) fn open(repo_path: &Path) -> Result<Repository> {
    Repository::discover(repo_path).map_err(|source| Error::OpenRepo {
        path: repo_path.display().to_string(),
        source,
    })
}

/// The commit `rev` names.
pub(super) fn commit_of<'r>(repo: &'r Repository, rev: &str) -> Result<git2::Commit<'r>> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|source| Error::Revision {
            rev: rev.to_string(),
            source,
        })
}

pub(super) fn sub_path(repo: &Repository, path: &Path) -> String {
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

/// Moves `snapshot` (of an earlier commit of the same repository, `snapshot.revision`) to commit
/// `rev` in place, reading only what changed between the two trees: folders whose tree id is the
/// same in both commits are skipped without being read, so a commit that changes one job reads
/// the trees on the way to it and its file, whatever the size of the repository. Returns the
/// tracked paths that changed (added, removed or modified). Files that did not change keep
/// sharing their bytes, which is what the validation and render caches recognise. `Ok(None)`,
/// with `snapshot` untouched, when the earlier commit is unknown (the caller reads `rev` whole).
/// On an error `snapshot` may be half-moved: drop it.
pub fn update_to(
    repo_path: &Path,
    snapshot: &mut Snapshot,
    rev: &str,
) -> Result<Option<Vec<String>>> {
    let Some(prev_sha) = snapshot.revision.clone() else {
        return Ok(None);
    };
    let repo = open(repo_path)?;
    let new = commit_of(&repo, rev)?;
    let Ok(old) = commit_of(&repo, &prev_sha) else {
        return Ok(None);
    };
    let prefix = sub_path(&repo, repo_path);
    let (Some(old_tree), Some(new_tree)) = (
        config_tree(&repo, &old, &prefix),
        config_tree(&repo, &new, &prefix),
    ) else {
        return Ok(None);
    };
    let mut diff = TreeDiff::default();
    diff.trees(&repo, Some(&old_tree), Some(&new_tree), "")
        .map_err(|source| Error::Revision {
            rev: rev.to_string(),
            source,
        })?;
    snapshot.revision = Some(new.id().to_string());
    let mut changed = Vec::new();
    for dir in diff.removed_dirs {
        let below = format!("{dir}/");
        let gone: Vec<String> = snapshot
            .files
            .range(below.clone()..)
            .take_while(|(p, _)| p.starts_with(&below))
            .map(|(p, _)| p.clone())
            .collect();
        for path in gone {
            snapshot.files.remove(&path);
            changed.push(path);
        }
    }
    for (path, now) in diff.files {
        let Some((id, link)) = now else {
            if snapshot.files.remove(&path).is_some() {
                changed.push(path);
            }
            continue;
        };
        let blob = repo.find_blob(id).map_err(|source| Error::ReadObject {
            path: path.clone(),
            source,
        })?;
        if link {
            snapshot.insert_symlink(
                path.clone(),
                String::from_utf8_lossy(blob.content()).into_owned(),
            );
        } else {
            snapshot.insert_file(path.clone(), blob.content().to_vec());
        }
        changed.push(path);
    }
    changed.sort_unstable();
    changed.dedup();
    Ok(Some(changed))
}

/// The tree of the config repository in `commit` (a sub-folder of the git repository when
/// `prefix` names one); `None` when the commit has no such folder.
fn config_tree<'r>(
    repo: &'r Repository,
    commit: &git2::Commit<'r>,
    prefix: &str,
) -> Option<git2::Tree<'r>> {
    let tree = commit.tree().ok()?;
    if prefix.is_empty() {
        return Some(tree);
    }
    let entry = tree.get_path(Path::new(prefix)).ok()?;
    repo.find_tree(entry.id()).ok()
}

/// The difference of two trees, as far as olo reads them (`olo.yaml` and `workspaces/`).
#[derive(Default)]
struct TreeDiff {
    /// Tracked files added or changed (their blob, and whether a symbolic link), or removed.
    files: Vec<(String, Option<(git2::Oid, bool)>)>,
    /// Folders removed whole (or replaced by a file).
    removed_dirs: Vec<String>,
}

/// A tree entry: its id, whether a tree, its file mode.
type Node = (git2::Oid, bool, i32);

impl TreeDiff {
    /// Compares the entries of two trees (either may be absent) below `dir` (`""` or ending in
    /// `/`); descends only into sub-trees whose ids differ. Both trees list their entries in
    /// git's order, so one merge walk pairs them, and only the entries that differ are named: a
    /// commit that changes one job of 1,000 workspaces compares 1,000 ids, nothing more.
    fn trees(
        &mut self,
        repo: &Repository,
        old: Option<&git2::Tree<'_>>,
        new: Option<&git2::Tree<'_>>,
        dir: &str,
    ) -> std::result::Result<(), git2::Error> {
        let mut olds = old
            .into_iter()
            .flat_map(|t| t.iter())
            .filter_map(node)
            .peekable();
        let mut news = new
            .into_iter()
            .flat_map(|t| t.iter())
            .filter_map(node)
            .peekable();
        loop {
            use std::cmp::Ordering::{Equal, Greater, Less};
            // Which side goes next (Less: the old one alone), and whether it is a pair that did
            // not change.
            let (side, same) = match (olds.peek(), news.peek()) {
                (None, None) => return Ok(()),
                (Some(_), None) => (Less, false),
                (None, Some(_)) => (Greater, false),
                (Some(a), Some(b)) => {
                    let side = git_order(a, b);
                    (side, side == Equal && a.1 == b.1)
                }
            };
            let (was, now) = match side {
                Less => (olds.next(), None),
                Greater => (None, news.next()),
                Equal => (olds.next(), news.next()),
            };
            if same {
                continue;
            }
            let Some(name) = was.as_ref().or(now.as_ref()).and_then(|e| e.0.name().ok()) else {
                continue; // not UTF-8: never a config file
            };
            let path = format!("{dir}{name}");
            self.entry(repo, &path, was.map(|e| e.1), now.map(|e| e.1))?;
        }
    }

    /// One entry that differs between the old and the new tree (absent on one side, or another
    /// id or mode). The old side goes first: a folder replaced by a file (or the reverse) is a
    /// removal and an addition.
    fn entry(
        &mut self,
        repo: &Repository,
        path: &str,
        was: Option<Node>,
        now: Option<Node>,
    ) -> std::result::Result<(), git2::Error> {
        let wanted_dir = is_config_dir(path);
        match was {
            Some((_, true, _)) if wanted_dir && !matches!(now, Some((_, true, _))) => {
                self.removed_dirs.push(path.to_string());
            }
            Some((_, false, _)) if is_tracked(path) && !matches!(now, Some((_, false, _))) => {
                self.files.push((path.to_string(), None));
            }
            _ => {}
        }
        match now {
            Some((id, true, _)) if wanted_dir => {
                let new_tree = repo.find_tree(id)?;
                let old_tree = match was {
                    Some((old_id, true, _)) => Some(repo.find_tree(old_id)?),
                    _ => None,
                };
                self.trees(
                    repo,
                    old_tree.as_ref(),
                    Some(&new_tree),
                    &format!("{path}/"),
                )
            }
            Some((id, false, mode)) if is_tracked(path) => {
                self.files
                    .push((path.to_string(), Some((id, mode == MODE_LINK))));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Whether olo reads the folder at `path`: `workspaces/` and what is below it.
fn is_config_dir(path: &str) -> bool {
    path == "workspaces" || path.starts_with("workspaces/")
}

/// A tree entry worth comparing (a file, a link or a folder; not a submodule). The entry borrows
/// its name from the tree: nothing is copied until an entry differs.
fn node(e: git2::TreeEntry<'_>) -> Option<(git2::TreeEntry<'_>, Node)> {
    let is_tree = match e.kind()? {
        ObjectType::Tree => true,
        ObjectType::Blob => false,
        _ => return None, // submodules
    };
    let n = (e.id(), is_tree, e.filemode());
    Some((e, n))
}

/// Git's order of tree entries: by name, a folder's name read as if it ended in `/` (so `a!`
/// comes before the folder `a`). Two entries of the same name but not the same kind are two
/// different entries.
fn git_order(
    a: &(git2::TreeEntry<'_>, Node),
    b: &(git2::TreeEntry<'_>, Node),
) -> std::cmp::Ordering {
    fn key<'e>(e: &'e (git2::TreeEntry<'_>, Node)) -> impl Iterator<Item = &'e u8> {
        let slash: &'static [u8] = if e.1 .1 { b"/" } else { b"" };
        e.0.name_bytes().iter().chain(slash)
    }
    key(a).cmp(key(b))
}

#[cfg(test)]
pub(super) mod tests_support {
    use git2::Repository;

    /// Commits `files` (path, bytes) and `links` (path, target) as the whole tree; returns the sha.
    pub(in crate::snapshot) fn commit(
        repo: &Repository,
        files: &[(String, Vec<u8>)],
        links: &[(&str, &str)],
    ) -> String {
        let mut index = git2::Index::new().unwrap();
        let mut add = |path: &str, bytes: &[u8], mode: u32| {
            let id = repo.blob(bytes).unwrap();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode,
                uid: 0,
                gid: 0,
                file_size: bytes.len() as u32,
                id,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).unwrap();
        };
        for (path, bytes) in files {
            add(path, bytes, 0o100644);
        }
        for (path, target) in links {
            add(path, target.as_bytes(), 0o120000);
        }
        let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents)
            .unwrap()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::commit;
    use super::*;
    use olo_schema::Entry;

    #[test]
    fn a_commit_of_many_files_reads_whole_in_parallel_and_matches_the_incremental_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        // Enough files for several chunks read on separate threads.
        let mut files: Vec<(String, Vec<u8>)> = (0..1500)
            .map(|i| {
                (
                    format!("workspaces/ws{:02}/jobs/job{i:04}.yaml", i % 7),
                    format!("name: job{i}\n").into_bytes(),
                )
            })
            .collect();
        files.push(("olo.yaml".into(), b"kind: Settings\n".to_vec()));
        files.push(("README.md".into(), b"not olo's\n".to_vec()));
        let links = [("workspaces/ws00/jobs/alias.yaml", "job0000.yaml")];
        let first = commit(&repo, &files, &links);

        let snapshot = from_commit(dir.path(), &first).unwrap();
        assert_eq!(snapshot.revision.as_deref(), Some(first.as_str()));
        assert_eq!(
            snapshot.files.len(),
            1502,
            "1,500 jobs, olo.yaml and the link"
        );
        assert!(!snapshot.files.contains_key("README.md"));
        for (path, bytes) in files.iter().filter(|(p, _)| p != "README.md") {
            assert_eq!(
                snapshot.files.get(path),
                Some(&Entry::File(bytes.as_slice().into())),
                "{path}"
            );
        }
        assert_eq!(
            snapshot.files.get("workspaces/ws00/jobs/alias.yaml"),
            Some(&Entry::Symlink("job0000.yaml".into()))
        );

        // A second commit changes one file and removes another: the read from the first
        // snapshot and the whole read agree.
        files[3].1 = b"name: changed\n".to_vec();
        let removed = files.remove(10);
        let second = commit(&repo, &files, &links);
        let mut since = snapshot.clone();
        let changed = update_to(dir.path(), &mut since, &second).unwrap();
        assert_eq!(since, from_commit(dir.path(), &second).unwrap());
        assert_eq!(since.files.len(), 1501);
        assert_eq!(
            changed,
            Some(vec![files[3].0.clone(), removed.0]),
            "the changed and the removed file"
        );
        // An unknown earlier commit: nothing is moved, the caller reads the commit whole.
        let mut unknown = Snapshot::new(Some("0".repeat(40)));
        assert_eq!(update_to(dir.path(), &mut unknown, &second).unwrap(), None);

        // A third removes a workspace's folder, adds one, and turns a file into a folder: the
        // same again, and every path of the removed folder is named.
        let ws01 = files
            .iter()
            .filter(|(p, _)| p.starts_with("workspaces/ws01/"))
            .count();
        files.retain(|(p, _)| !p.starts_with("workspaces/ws01/"));
        files.push(("workspaces/new/jobs/a.yaml".into(), b"new\n".to_vec()));
        files.retain(|(p, _)| p != "olo.yaml");
        files.push(("olo.yaml/inside".into(), b"not tracked\n".to_vec()));
        let third = commit(&repo, &files, &links);
        let changed = update_to(dir.path(), &mut since, &third).unwrap().unwrap();
        assert_eq!(since, from_commit(dir.path(), &third).unwrap());
        assert_eq!(changed.len(), ws01 + 2, "{changed:?}");
        assert!(changed.contains(&"workspaces/new/jobs/a.yaml".to_string()));
        assert!(changed.contains(&"olo.yaml".to_string()));
    }

    /// The tree diff walks both trees in git's order, where a folder sorts as if its name ended
    /// in `/`: names that sort between `a` and `a/` (`a!`, `a.b`, `a-`), and a file and a folder
    /// trading one name, still pair up. Each step's read from the one before equals the whole
    /// read, and names exactly the files whose bytes differ.
    #[test]
    fn names_that_sort_around_a_folder_pair_up_in_the_tree_diff() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let f = |p: &str, body: &str| (format!("workspaces/{p}"), body.as_bytes().to_vec());
        let steps: Vec<Vec<(String, Vec<u8>)>> = vec![
            vec![
                f("a/jobs/j.yaml", "1"),
                f("a!/jobs/j.yaml", "1"),
                f("a.b", "1"),
            ],
            // `a` alone is left, unchanged: in git's order it comes after `a!`, by name before.
            vec![f("a/jobs/j.yaml", "1")],
            // The folder `a` becomes a file, `a-` appears, `a!` changes.
            vec![
                f("a", "2"),
                f("a!/jobs/j.yaml", "2"),
                f("a-/jobs/j.yaml", "2"),
                f("a.b", "1"),
            ],
            // And back: the file `a` becomes a folder again, `a.b` a folder.
            vec![
                f("a/jobs/j.yaml", "3"),
                f("a!/jobs/j.yaml", "2"),
                f("a.b/jobs/k.yaml", "3"),
            ],
            vec![],
        ];
        let tracked = |files: &[(String, Vec<u8>)]| -> std::collections::BTreeMap<String, Vec<u8>> {
            files
                .iter()
                .filter(|(p, _)| is_tracked(p))
                .cloned()
                .collect()
        };
        let mut before = tracked(&[]);
        let mut since: Option<Snapshot> = None;
        for (i, files) in steps.iter().enumerate() {
            let sha = commit(&repo, files, &[]);
            let whole = from_commit(dir.path(), &sha).unwrap();
            let now = tracked(files);
            if let Some(since) = &mut since {
                let changed = update_to(dir.path(), since, &sha).unwrap().unwrap();
                assert_eq!(*since, whole, "step {i}");
                let mut expected: Vec<String> = before
                    .keys()
                    .chain(now.keys())
                    .filter(|p| before.get(*p) != now.get(*p))
                    .cloned()
                    .collect();
                expected.sort();
                expected.dedup();
                assert_eq!(changed, expected, "step {i}");
            }
            since = Some(whole);
            before = now;
        }
    }
}

#[cfg(test)]
mod sub_folder_tests {
    use super::tests_support::commit;
    use super::*;

    /// olo follows a config repository in a sub-folder of a git repository: a commit read from
    /// the one before sees the sub-folder's changes (paths relative to it) and nothing else.
    #[test]
    fn a_config_repository_in_a_sub_folder_is_read_from_the_commit_before() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("config/olo.yaml".into(), b"kind: Settings\n".to_vec()),
            ("config/workspaces/w/jobs/a.yaml".into(), b"a: 1\n".to_vec()),
            (
                "workspaces/w/jobs/outside.yaml".into(),
                b"not this\n".to_vec(),
            ),
        ];
        let first = commit(&repo, &files, &[]);
        let config = dir.path().join("config");
        let mut snapshot = from_commit(&config, &first).unwrap();
        files[1].1 = b"a: 2\n".to_vec();
        files[2].1 = b"still not this\n".to_vec();
        files.push(("config/workspaces/w/jobs/b.yaml".into(), b"b: 1\n".to_vec()));
        let second = commit(&repo, &files, &[]);
        let changed = update_to(&config, &mut snapshot, &second).unwrap();
        assert_eq!(
            changed,
            Some(vec![
                "workspaces/w/jobs/a.yaml".to_string(),
                "workspaces/w/jobs/b.yaml".to_string()
            ])
        );
        assert_eq!(snapshot, from_commit(&config, &second).unwrap());
    }
}
