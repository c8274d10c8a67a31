//! apply(plan): acts on a plan computed beforehand, through a sink (the DAG folder, or a rendered
//! branch that Airflow's GitDagBundle tracks). Ordered (the plan's order), idempotent (a write of
//! the same bytes changes nothing), and safe to re-run after a crash: ownership is recorded
//! before a file is written, so a restart re-plans and finishes the job without losing track of
//! anything olo created.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{Repository, Signature};

use crate::content::Content;
use crate::plan::{Action, Plan};
use crate::store::{InventoryItem, Store};
use crate::{Error, Result};

/// Where rendered files go. Implementations: [`FolderSink`], [`BranchSink`].
pub trait Sink: Send {
    /// The inventory target name of this sink.
    fn target(&self) -> &str;
    /// The current bytes of each named resource that exists.
    fn observe(&self, names: &mut dyn Iterator<Item = &str>) -> Result<BTreeMap<String, Vec<u8>>>;
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Writes several, as `write` does each in turn (which is what this default does).
    fn write_all(&mut self, files: &[(&str, &dyn Content)]) -> Result<()> {
        for (name, content) in files {
            self.write(name, &content.bytes())?;
        }
        Ok(())
    }
    fn delete(&mut self, name: &str) -> Result<()>;
    /// Makes the writes visible together where the sink can (a commit); no-op for folders.
    fn finish(&mut self, message: &str) -> Result<()>;
    /// The names of the files directly in a rendered folder (`dags`, `trino/catalog`), sorted,
    /// hidden ones (`.name`) left out; none when the folder does not exist.
    fn list(&self, folder: &str) -> Result<Vec<String>>;
    /// Where a named resource lives, for people: a path, or a path on a branch.
    fn locate(&self, name: &str) -> String;
}

/// Rendered path prefixes and the folders they live in.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dags: PathBuf,
    pub trino: PathBuf,
    pub iceberg: PathBuf,
}

impl Layout {
    /// Everything under one folder: `<root>/dags`, `<root>/trino`, `<root>/iceberg`.
    pub fn under(root: &Path) -> Layout {
        Layout {
            dags: root.join("dags"),
            trino: root.join("trino"),
            iceberg: root.join("iceberg"),
        }
    }

    fn path_of(&self, name: &str) -> Result<PathBuf> {
        if !name.contains('/') {
            return Err(Error::UnsafePath(name.into()));
        }
        self.folder_of(name)
    }

    /// The folder (or file) a rendered path names: `dags` is the DAG folder itself.
    fn folder_of(&self, name: &str) -> Result<PathBuf> {
        let (head, rest) = name.split_once('/').unwrap_or((name, ""));
        let base = match head {
            "dags" => &self.dags,
            "trino" => &self.trino,
            "iceberg" => &self.iceberg,
            _ => return Err(Error::UnsafePath(name.into())),
        };
        if rest.is_empty() && !name.contains('/') {
            return Ok(base.clone());
        }
        let rel = Path::new(rest);
        if rest.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::UnsafePath(name.into()));
        }
        Ok(base.join(rel))
    }
}

/// Files in folders. Writes go to temporary files beside their targets; `finish` flushes them to
/// disk, then renames them into place in plan order, then flushes the folders: Airflow's DAG
/// processor sees the old file or the new one, never half of one, and a power loss cannot leave
/// an empty file behind a completed rename. (Flushing once per batch rather than once per file
/// is what makes a 10,000-file apply take seconds rather than minutes.) A temporary file that is
/// not renamed into place (a write failed, the disk is full, the apply stopped) is removed, so
/// that it does not hold the space the next attempt needs.
pub struct FolderSink {
    layout: Layout,
    pending: Vec<FolderOp>,
}

enum FolderOp {
    Write { tmp: PathBuf, dest: PathBuf },
    Delete(PathBuf),
}

impl FolderSink {
    pub fn new(layout: Layout) -> FolderSink {
        FolderSink {
            layout,
            pending: Vec::new(),
        }
    }
}

impl Drop for FolderSink {
    /// The writes of an apply that never reached `finish` (an error after them) leave nothing.
    fn drop(&mut self) {
        remove_temps(&self.pending);
    }
}

/// Removes the temporary files of writes that will not be renamed into place (best effort: a
/// file that cannot be removed is overwritten by the next write of its target).
fn remove_temps(ops: &[FolderOp]) {
    for op in ops {
        if let FolderOp::Write { tmp, .. } = op {
            let _ = fs::remove_file(tmp);
        }
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Sink {
        action,
        path: path.display().to_string(),
        source,
    }
}

impl Sink for FolderSink {
    fn target(&self) -> &str {
        "files"
    }

    fn observe(&self, names: &mut dyn Iterator<Item = &str>) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut out = BTreeMap::new();
        for name in names {
            let path = self.layout.path_of(name)?;
            match fs::read(&path) {
                Ok(bytes) => {
                    out.insert(name.to_string(), bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("read", &path)(e)),
            }
        }
        Ok(out)
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.layout.path_of(name)?;
        let dir = dest
            .parent()
            .ok_or_else(|| Error::UnsafePath(name.into()))?;
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let tmp = write_temp(&dest, bytes)?;
        self.pending.push(FolderOp::Write { tmp, dest });
        Ok(())
    }

    /// The temporary files are written on rayon's threads (unpacking included); the renames
    /// still happen in `finish`, in order.
    fn write_all(&mut self, files: &[(&str, &dyn Content)]) -> Result<()> {
        use rayon::prelude::*;
        let mut dests = Vec::with_capacity(files.len());
        let mut dirs = std::collections::BTreeSet::new();
        for (name, _) in files {
            let dest = self.layout.path_of(name)?;
            let dir = dest
                .parent()
                .ok_or_else(|| Error::UnsafePath((*name).into()))?;
            if !dirs.contains(dir) {
                fs::create_dir_all(dir).map_err(io_err("create", dir))?;
                dirs.insert(dir.to_path_buf());
            }
            dests.push(dest);
        }
        let temps: Vec<Result<PathBuf>> = dests
            .par_iter()
            .zip(files.par_iter())
            .map(|(dest, (_, content))| write_temp(dest, &content.bytes()))
            .collect();
        let mut failed = None;
        for (tmp, dest) in temps.into_iter().zip(dests) {
            match tmp {
                // Pending, so that `finish` renames it or dropping the sink removes it.
                Ok(tmp) => self.pending.push(FolderOp::Write { tmp, dest }),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    fn delete(&mut self, name: &str) -> Result<()> {
        let path = self.layout.path_of(name)?;
        self.pending.push(FolderOp::Delete(path));
        Ok(())
    }

    fn finish(&mut self, _message: &str) -> Result<()> {
        let temps: Vec<&Path> = self
            .pending
            .iter()
            .filter_map(|op| match op {
                FolderOp::Write { tmp, .. } => Some(tmp.as_path()),
                FolderOp::Delete(_) => None,
            })
            .collect();
        // On an error the pending writes stay pending: dropping the sink removes their files.
        flush(&temps)?;
        let mut dirs = std::collections::BTreeSet::new();
        let mut ops = std::mem::take(&mut self.pending).into_iter();
        while let Some(op) = ops.next() {
            match op {
                FolderOp::Write { tmp, dest } => {
                    if let Err(e) = fs::rename(&tmp, &dest) {
                        let _ = fs::remove_file(&tmp);
                        self.pending = ops.collect();
                        return Err(io_err("write", &dest)(e));
                    }
                    if let Some(d) = dest.parent() {
                        dirs.insert(d.to_path_buf());
                    }
                }
                FolderOp::Delete(path) => match fs::remove_file(&path) {
                    Ok(()) => {
                        if let Some(d) = path.parent() {
                            dirs.insert(d.to_path_buf());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        self.pending = ops.collect();
                        return Err(io_err("delete", &path)(e));
                    }
                },
            }
        }
        for dir in dirs {
            // Makes the renames durable; not every filesystem allows it, which is not an error.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn list(&self, folder: &str) -> Result<Vec<String>> {
        let dir = self.layout.folder_of(folder)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read", &dir))?;
            let is_file = entry
                .file_type()
                .map_err(io_err("read", &entry.path()))?
                .is_file();
            if let Some(name) = entry.file_name().to_str() {
                if is_file && !name.starts_with('.') {
                    names.push(format!("{folder}/{name}"));
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn locate(&self, name: &str) -> String {
        match self.layout.path_of(name) {
            Ok(path) => path.display().to_string(),
            Err(_) => name.to_string(),
        }
    }
}

/// Writes `bytes` to a temporary file beside `dest` (renamed into place by `finish`).
fn write_temp(dest: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let file_name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dest.with_file_name(format!(".{file_name}.olo-tmp"));
    let mut f = fs::File::create(&tmp).map_err(io_err("write", &tmp))?;
    if let Err(e) = f.write_all(bytes) {
        drop(f);
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", &tmp)(e));
    }
    Ok(tmp)
}

/// Forces the contents of freshly written files to disk before they are renamed into place:
/// one `syncfs` of their filesystem (one call instead of thousands of fsyncs), or, where that is
/// not available, an fsync per file.
pub fn flush(files: &[&Path]) -> Result<()> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    let file = fs::File::open(first).map_err(io_err("write", first))?;
    if rustix::fs::syncfs(&file).is_ok() {
        return Ok(());
    }
    for path in files {
        fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err("write", path))?;
    }
    Ok(())
}

/// A branch of a git repository holding the rendered files (`dags/…`, `trino/…`, `iceberg/…`),
/// one commit per apply whose message names the config commit: every Airflow DAG version
/// (GitDagBundle) maps to a config commit.
pub struct BranchSink {
    repo: PathBuf,
    branch: String,
    pending: BTreeMap<String, Option<Vec<u8>>>,
}

impl BranchSink {
    pub fn new(repo: &Path, branch: &str) -> Result<BranchSink> {
        if Repository::open(repo).is_err() {
            Repository::init_bare(repo).map_err(|source| Error::OpenRepo {
                path: repo.display().to_string(),
                source,
            })?;
        }
        Ok(BranchSink {
            repo: repo.to_path_buf(),
            branch: branch.to_string(),
            pending: BTreeMap::new(),
        })
    }

    fn open(&self) -> Result<Repository> {
        Repository::open(&self.repo).map_err(|source| Error::OpenRepo {
            path: self.repo.display().to_string(),
            source,
        })
    }

    fn git_err(&self) -> impl Fn(git2::Error) -> Error + '_ {
        |source| Error::RenderedBranch {
            branch: self.branch.clone(),
            source,
        }
    }
}

impl Sink for BranchSink {
    fn target(&self) -> &str {
        "rendered-branch"
    }

    fn observe(&self, names: &mut dyn Iterator<Item = &str>) -> Result<BTreeMap<String, Vec<u8>>> {
        let repo = self.open()?;
        let mut out = BTreeMap::new();
        let Ok(tip) = repo
            .find_reference(&format!("refs/heads/{}", self.branch))
            .and_then(|r| r.peel_to_tree())
        else {
            return Ok(out);
        };
        for name in names {
            if let Ok(entry) = tip.get_path(Path::new(name)) {
                let blob = repo.find_blob(entry.id()).map_err(self.git_err())?;
                out.insert(name.to_string(), blob.content().to_vec());
            }
        }
        Ok(out)
    }

    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        Layout::under(Path::new("/")).path_of(name)?;
        self.pending.insert(name.to_string(), Some(bytes.to_vec()));
        Ok(())
    }

    fn delete(&mut self, name: &str) -> Result<()> {
        Layout::under(Path::new("/")).path_of(name)?;
        self.pending.insert(name.to_string(), None);
        Ok(())
    }

    fn finish(&mut self, message: &str) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let repo = self.open()?;
        let refname = format!("refs/heads/{}", self.branch);
        let parent = repo
            .find_reference(&refname)
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let base = parent
            .as_ref()
            .map(|c| c.tree())
            .transpose()
            .map_err(self.git_err())?;
        let mut index = git2::Index::new().map_err(self.git_err())?;
        if let Some(tree) = &base {
            index.read_tree(tree).map_err(self.git_err())?;
        }
        for (name, content) in std::mem::take(&mut self.pending) {
            match content {
                Some(bytes) => {
                    let oid = repo.blob(&bytes).map_err(self.git_err())?;
                    let entry = git2::IndexEntry {
                        ctime: git2::IndexTime::new(0, 0),
                        mtime: git2::IndexTime::new(0, 0),
                        dev: 0,
                        ino: 0,
                        mode: 0o100644,
                        uid: 0,
                        gid: 0,
                        file_size: bytes.len() as u32,
                        id: oid,
                        flags: 0,
                        flags_extended: 0,
                        path: name.into_bytes(),
                    };
                    index.add(&entry).map_err(self.git_err())?;
                }
                None => {
                    let _ = index.remove_path(Path::new(&name));
                }
            }
        }
        let tree_id = index.write_tree_to(&repo).map_err(self.git_err())?;
        if base.as_ref().map(|t| t.id()) == Some(tree_id) {
            return Ok(());
        }
        let tree = repo.find_tree(tree_id).map_err(self.git_err())?;
        let sig = Signature::now("olo", "olo@localhost").map_err(self.git_err())?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some(&refname), &sig, &sig, message, &tree, &parents)
            .map_err(self.git_err())?;
        Ok(())
    }

    fn list(&self, folder: &str) -> Result<Vec<String>> {
        let repo = self.open()?;
        let Ok(tip) = repo
            .find_reference(&format!("refs/heads/{}", self.branch))
            .and_then(|r| r.peel_to_tree())
        else {
            return Ok(Vec::new());
        };
        let Ok(entry) = tip.get_path(Path::new(folder)) else {
            return Ok(Vec::new());
        };
        let Ok(tree) = repo.find_tree(entry.id()) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = tree
            .iter()
            .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
            .filter_map(|e| e.name().ok().map(str::to_string))
            .filter(|name| !name.starts_with('.'))
            .map(|name| format!("{folder}/{name}"))
            .collect();
        names.sort();
        Ok(names)
    }

    fn locate(&self, name: &str) -> String {
        format!(
            "{name} on branch {} of {}",
            self.branch,
            self.repo.display()
        )
    }
}

/// Progress of an apply, for people watching a long one.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// A sink shared with the blocking threads its file I/O runs on: the reconcile reads and writes
/// it through [`SharedSink::blocking`] (tokio's `spawn_blocking`), so a cold apply of thousands
/// of files never holds an async worker.
#[derive(Clone)]
pub struct SharedSink {
    sink: Arc<Mutex<Box<dyn Sink>>>,
    target: Arc<str>,
}

impl SharedSink {
    pub fn new(sink: Box<dyn Sink>) -> SharedSink {
        SharedSink {
            target: sink.target().into(),
            sink: Arc::new(Mutex::new(sink)),
        }
    }

    /// The inventory target name of the sink.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` with the sink on a blocking thread.
    pub async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Sink) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let sink = self.sink.clone();
        tokio::task::spawn_blocking(move || {
            // A sink that panicked holds nothing in memory worth distrusting: the next
            // reconcile reads the target back.
            let mut sink = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(sink.as_mut())
        })
        .await
        .map_err(Error::Blocking)?
    }

    /// Where a named resource lives, for people ([`Sink::locate`]).
    pub async fn locate(&self, name: &str) -> Result<String> {
        let name = name.to_string();
        self.blocking(move |sink| Ok(sink.locate(&name))).await
    }

    /// The current bytes of each named resource that exists, read on a blocking thread.
    pub async fn observe(&self, names: Vec<String>) -> Result<BTreeMap<String, Vec<u8>>> {
        self.blocking(move |sink| sink.observe(&mut names.iter().map(String::as_str)))
            .await
    }
}

/// Applies `plan`, computed from `rows`: `desired` paired with this sink's inventory
/// ([`crate::plan::rows`]). The sink's reads and writes run on blocking threads, in runs of up
/// to 256 (the desired bytes of a run are copied for it, packed as they are held).
pub async fn apply<C: Content + Clone + Send + 'static>(
    plan: &Plan,
    desired: &BTreeMap<String, C>,
    rows: &[crate::plan::Row<'_>],
    sink: &SharedSink,
    store: &dyn Store,
    progress: Progress<'_>,
) -> Result<InventoryChange> {
    let revision = plan
        .revision
        .clone()
        .unwrap_or_else(|| "working-tree".into());
    let target = sink.target().to_string();
    // 1. Claim ownership of everything desired before writing it, so that a crash between a
    //    write and its record can never leave a file olo created but does not know it owns.
    let claims: Vec<InventoryItem> = rows
        .iter()
        .filter_map(|row| {
            let hash = row.want_hash()?;
            (row.applied != Some(&*hash)).then(|| InventoryItem {
                target: target.clone(),
                name: row.name.to_string(),
                hash: hash.into_owned(),
                revision: revision.clone(),
            })
        })
        .collect();
    store.upsert_inventory_many(&claims).await?;

    // 2. Act, in the plan's order.
    let steps: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Delete))
        .filter(|c| !crate::lakehouse::is_resource(&c.name))
        .collect();
    // Writes go to the sink in runs of up to AT_ONCE (a folder writes a run in parallel);
    // deletes too.
    const AT_ONCE: usize = 256;
    let is_write = |c: &&crate::plan::Change| matches!(c.action, Action::Create | Action::Update);
    let mut deleted = Vec::new();
    let mut done = 0;
    while done < steps.len() {
        let writes = is_write(&steps[done]);
        let run = steps[done..]
            .iter()
            .take(AT_ONCE)
            .take_while(|c| is_write(c) == writes)
            .count();
        let names: Vec<String> = steps[done..done + run]
            .iter()
            .map(|change| change.name.clone())
            .collect();
        if writes {
            let files = names
                .into_iter()
                .map(|name| match desired.get(&name) {
                    Some(bytes) => Ok((name, bytes.clone())),
                    None => Err(Error::UnsafePath(name)),
                })
                .collect::<Result<Vec<_>>>()?;
            sink.blocking(move |sink| {
                let files: Vec<(&str, &dyn Content)> = files
                    .iter()
                    .map(|(name, bytes)| (name.as_str(), bytes as &dyn Content))
                    .collect();
                sink.write_all(&files)
            })
            .await?;
        } else {
            deleted.extend(
                sink.blocking(move |sink| {
                    for name in &names {
                        sink.delete(name)?;
                    }
                    Ok(names)
                })
                .await?,
            );
        }
        done += run;
        progress(done, steps.len());
    }
    let message = format!("olo: apply {revision}");
    sink.blocking(move |sink| sink.finish(&message)).await?;

    // 3. Forget what is gone: deleted now, or owned but already absent and not desired.
    let done: std::collections::HashSet<&str> = deleted.iter().map(String::as_str).collect();
    let gone: Vec<String> = rows
        .iter()
        .filter(|r| r.want.is_none() && !done.contains(r.name))
        .map(|r| r.name.to_string())
        .collect();
    let present = if gone.is_empty() {
        BTreeMap::new()
    } else {
        sink.observe(gone.clone()).await?
    };
    deleted.extend(gone.into_iter().filter(|name| !present.contains_key(name)));
    store.remove_inventory_many(&target, &deleted).await?;
    Ok(InventoryChange {
        upserted: claims,
        removed: deleted,
    })
}

/// What an apply changed in the inventory (so a caller holding it in memory can follow).
#[derive(Debug, Default)]
pub struct InventoryChange {
    pub upserted: Vec<InventoryItem>,
    pub removed: Vec<String>,
}

/// olo's inventory of one target held in memory, by name.
pub type Inventory = BTreeMap<String, InventoryItem>;

/// An inventory read from the store, by name.
pub fn inventory(items: Vec<InventoryItem>) -> Inventory {
    items.into_iter().map(|i| (i.name.clone(), i)).collect()
}

impl InventoryChange {
    /// Applies the change to an inventory held by name: a lookup per changed entry.
    pub fn apply_to(self, inventory: &mut Inventory) {
        for name in self.removed {
            inventory.remove(&name);
        }
        // The last upsert of a name wins.
        for item in self.upserted {
            inventory.insert(item.name.clone(), item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, hash: &str) -> InventoryItem {
        InventoryItem {
            target: "files".into(),
            name: name.into(),
            hash: hash.into(),
            revision: "r".into(),
        }
    }

    fn names_and_hashes(inventory: &[InventoryItem]) -> Vec<(&str, &str)> {
        inventory
            .iter()
            .map(|i| (i.name.as_str(), i.hash.as_str()))
            .collect()
    }

    #[test]
    fn inventory_change_applies_upserts_and_removals_by_name() {
        let mut inventory = inventory(vec![item("b", "1"), item("d", "1"), item("f", "1")]);
        InventoryChange {
            upserted: vec![
                item("g", "2"),
                item("a", "2"),
                item("d", "2"),
                item("d", "3"),
            ],
            removed: vec!["f".into(), "x".into()],
        }
        .apply_to(&mut inventory);
        let items: Vec<InventoryItem> = inventory.into_values().collect();
        assert_eq!(
            names_and_hashes(&items),
            [("a", "2"), ("b", "1"), ("d", "3"), ("g", "2")]
        );
    }

    #[test]
    fn an_upsert_wins_over_a_removal() {
        let mut inventory = inventory(vec![item("c", "1"), item("a", "1")]);
        InventoryChange {
            upserted: vec![item("c", "2")],
            removed: vec!["c".into(), "a".into()],
        }
        .apply_to(&mut inventory);
        let items: Vec<InventoryItem> = inventory.into_values().collect();
        assert_eq!(names_and_hashes(&items), [("c", "2")]);
    }

    /// A run written at once lands like one written file by file: packed and plain contents,
    /// folders made on the way, nothing visible before `finish`, no temporary file left after.
    #[test]
    fn a_folder_writes_a_run_of_files_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under(dir.path());
        let names: Vec<String> = (0..300)
            .map(|i| format!("dags/ws{}/job{i:03}.py", i % 3))
            .chain(["trino/catalog/lake.properties".to_string()])
            .collect();
        let packed: Vec<crate::content::Packed> = names
            .iter()
            .map(|n| crate::content::Packed::new(format!("# {n}\n").as_bytes()))
            .collect();
        let plain = b"connector.name=iceberg\n".to_vec();
        let mut files: Vec<(&str, &dyn Content)> = names[..300]
            .iter()
            .zip(&packed)
            .map(|(n, p)| (n.as_str(), p as &dyn Content))
            .collect();
        files.push((names[300].as_str(), &plain));

        let mut sink = FolderSink::new(layout.clone());
        sink.write_all(&files).unwrap();
        assert!(!dir.path().join("dags/ws0/job000.py").exists());
        sink.finish("apply").unwrap();
        for name in &names[..300] {
            let path = layout.path_of(name).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), format!("# {name}\n"));
        }
        assert_eq!(
            fs::read(dir.path().join("trino/catalog/lake.properties")).unwrap(),
            plain
        );
        let leftovers: Vec<_> = ["dags/ws0", "dags/ws1", "dags/ws2", "trino/catalog"]
            .iter()
            .flat_map(|d| fs::read_dir(dir.path().join(d)).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".olo-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // A name outside the layout refuses the whole run before anything is written.
        let bad: Vec<(&str, &dyn Content)> = vec![("dags/ok.py", &plain), ("../escape.py", &plain)];
        let mut sink = FolderSink::new(layout);
        assert!(matches!(sink.write_all(&bad), Err(Error::UnsafePath(_))));
        assert!(!dir.path().join("dags/.ok.py.olo-tmp").exists());
    }
}
