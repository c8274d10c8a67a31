//! From a snapshot to parsed, schema-checked documents: which file holds which kind, one YAML
//! document each, every schema violation collected. Files are independent here, so they are
//! parsed in parallel.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::de::DeserializeOwned;

use crate::diagnostic::Diagnostic;
use crate::json_schema::{self, DocKind};
use crate::snapshot::{Entry, Snapshot};
use crate::yaml::{self, Node, Pos};

const TOP: Pos = Pos { line: 1, col: 1 };

/// A YAML file that olo reads, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Repository,
    /// `workspaces/<folder>/workspace.yaml`
    Workspace {
        folder: String,
    },
    /// `workspaces/<folder>/jobs/<stem>.yaml`
    Job {
        folder: String,
        stem: String,
    },
}

impl Role {
    fn kind(&self) -> DocKind {
        match self {
            Role::Repository => DocKind::Repository,
            Role::Workspace { .. } => DocKind::Workspace,
            Role::Job { .. } => DocKind::Job,
        }
    }
}

/// A document that passed YAML parsing and its schema, with its source tree kept for positions.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub path: String,
    pub role: Role,
    pub node: Node,
    pub doc: T,
}

/// Decides what each path is. Returns the files to parse and diagnostics for misplaced ones.
pub fn classify(snapshot: &Snapshot) -> (Vec<(String, Role)>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for (path, entry) in &snapshot.files {
        let yamlish = path.ends_with(".yaml") || path.ends_with(".yml");
        if path == "olo.yaml" {
            files.push((path.clone(), Role::Repository));
            continue;
        }
        if path == "olo.yml" {
            diags.push(Diagnostic::error(
                path,
                TOP,
                "repository settings must be named olo.yaml",
            ));
            continue;
        }
        let Some(rest) = path.strip_prefix("workspaces/") else {
            continue;
        };
        // Up to four parts: no pattern below is longer than three (`[_, "jobs", ..]` covers
        // every longer path the same way).
        let mut buf = [""; 4];
        let mut n = 0;
        for part in rest.split('/').take(4) {
            buf[n] = part;
            n += 1;
        }
        let parts = &buf[..n];
        let is_link = matches!(entry, Entry::Symlink(_));
        match parts {
            [_] | [_, "jobs"] if is_link => diags.push(Diagnostic::error(
                path,
                TOP,
                "this folder is a symbolic link; olo reads config files only from real folders",
            )),
            [_] => {}
            [folder, "workspace.yaml"] => files.push((
                path.clone(),
                Role::Workspace {
                    folder: folder.to_string(),
                },
            )),
            [_, "workspace.yml"] => diags.push(Diagnostic::error(
                path,
                TOP,
                "a workspace file must be named workspace.yaml",
            )),
            [folder, "jobs", file] if file.ends_with(".yaml") => files.push((
                path.clone(),
                Role::Job {
                    folder: folder.to_string(),
                    stem: file.trim_end_matches(".yaml").to_string(),
                },
            )),
            [_, "jobs", file] if file.ends_with(".yml") => diags.push(Diagnostic::error(
                path,
                TOP,
                format!(
                    "job files must end in .yaml: rename to {}",
                    file.trim_end_matches(".yml").to_string() + ".yaml"
                ),
            )),
            [_, "jobs", ..] if yamlish => diags.push(Diagnostic::error(
                path,
                TOP,
                "job files live directly in jobs/; olo does not read sub-folders",
            )),
            [_, _] if yamlish => diags.push(Diagnostic::warning(
                path,
                TOP,
                "olo ignores this file: a workspace folder holds workspace.yaml and jobs/<name>.yaml",
            )),
            _ => {}
        }
    }
    (files, diags)
}

/// Parses and schema-checks one file into a document of type `T`.
pub fn load_one<T: DeserializeOwned>(
    snapshot: &Snapshot,
    path: &str,
    role: Role,
) -> Result<Loaded<T>, Vec<Diagnostic>> {
    let one = |pos: Pos, msg: String| Err(vec![Diagnostic::error(path, pos, msg)]);
    let bytes = match snapshot.files.get(path) {
        Some(Entry::File(b)) => b,
        Some(Entry::Symlink(_)) => {
            return one(
                TOP,
                "config files must be regular files, not symbolic links".into(),
            )
        }
        None => return one(TOP, "file not found".into()),
    };
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return one(
            TOP,
            format!(
                "file is {} bytes; config files are limited to {} bytes",
                bytes.len(),
                yaml::MAX_FILE_BYTES
            ),
        );
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return one(
                byte_pos(bytes, e.valid_up_to()),
                "file is not valid UTF-8".into(),
            )
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => return one(e.pos, e.message),
    };
    match docs.len() {
        0 => return one(TOP, format!("file is empty; expected a `{}` document", role.kind().kind_name())),
        1 => {}
        n => {
            return one(
                docs[1].pos,
                format!("expected one YAML document, found {n} (`---` starts another): put each in its own file"),
            )
        }
    }
    let node = docs.remove(0);
    if matches!(node.value, yaml::Value::Null) {
        return one(
            TOP,
            format!(
                "file is empty; expected a `{}` document",
                role.kind().kind_name()
            ),
        );
    }
    let json = node.to_json();
    let errors = json_schema::check(role.kind(), path, &node, &json);
    if !errors.is_empty() {
        return Err(errors);
    }
    loaded(path, role, node, json)
}

/// A file that failed the schema check, with what the schema refused taken out
/// ([`json_schema::without_refused`]), when the rest still makes a document: for the semantic
/// checks only (such a document is never accepted). Positions stay those of the file.
pub fn load_repaired<T: DeserializeOwned>(
    snapshot: &Snapshot,
    path: &str,
    role: Role,
) -> Option<Loaded<T>> {
    let Some(Entry::File(bytes)) = snapshot.files.get(path) else {
        return None;
    };
    let text = std::str::from_utf8(bytes).ok()?;
    let mut docs = yaml::parse(text.strip_prefix('\u{feff}').unwrap_or(text)).ok()?;
    if docs.len() != 1 {
        return None;
    }
    let node = docs.remove(0);
    let json = json_schema::without_refused(role.kind(), &node.to_json())?;
    loaded(path, role, node, json).ok()
}

fn loaded<T: DeserializeOwned>(
    path: &str,
    role: Role,
    node: Node,
    json: serde_json::Value,
) -> Result<Loaded<T>, Vec<Diagnostic>> {
    let one = |pos: Pos, msg: String| Err(vec![Diagnostic::error(path, pos, msg)]);
    let mut node = node;
    match serde_json::from_value::<T>(json) {
        Ok(doc) => Ok(Loaded {
            path: path.to_string(),
            role,
            node: {
                node.strip_text();
                node
            },
            doc,
        }),
        Err(e) => one(TOP, format!("invalid document: {e}")),
    }
}

/// Parses many files in parallel, keeping the order given.
pub fn load_many<T: DeserializeOwned + Send>(
    snapshot: &Snapshot,
    files: Vec<(String, Role)>,
) -> (Vec<Loaded<T>>, Vec<Diagnostic>) {
    let results: Vec<_> = files
        .into_par_iter()
        .map(|(path, role)| load_one::<T>(snapshot, &path, role))
        .collect();
    let mut ok = Vec::new();
    let mut diags = Vec::new();
    for r in results {
        match r {
            Ok(l) => ok.push(l),
            Err(d) => diags.extend(d),
        }
    }
    (ok, diags)
}

/// Line and column of a byte offset (for errors found before the text is a `str`).
fn byte_pos(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u32
        + 1;
    Pos { line, col }
}

/// A parsed, schema-checked file, or its diagnostics.
pub type LoadResult<T> = Result<Loaded<T>, Vec<Diagnostic>>;

/// Load results by path, each with the bytes it was computed from: a file whose bytes are the
/// same (shared with the previous snapshot, or equal) is not parsed again.
pub struct DocCache<T> {
    entries: HashMap<String, Cached<T>>,
}

/// A load result and the bytes it was computed from.
type Cached<T> = (Arc<[u8]>, Arc<LoadResult<T>>);

impl<T> Default for DocCache<T> {
    fn default() -> Self {
        DocCache {
            entries: HashMap::new(),
        }
    }
}

/// Whether two shared byte buffers hold the same bytes (pointer first, then content).
pub fn same_bytes(a: &Arc<[u8]>, b: &Arc<[u8]>) -> bool {
    Arc::ptr_eq(a, b) || a[..] == b[..]
}

/// [`load_many`] through a cache: only new or changed files are parsed (in parallel).
pub fn load_many_cached<T: DeserializeOwned + Send + Sync>(
    snapshot: &Snapshot,
    files: Vec<(String, Role)>,
    cache: &mut DocCache<T>,
) -> Vec<Arc<LoadResult<T>>> {
    let bytes_of = |path: &str| match snapshot.files.get(path) {
        Some(Entry::File(b)) => Some(b.clone()),
        _ => None,
    };
    let mut results: Vec<Option<Arc<LoadResult<T>>>> = Vec::with_capacity(files.len());
    let mut misses = Vec::new();
    for (i, (path, _)) in files.iter().enumerate() {
        let hit = match (cache.entries.get(path), bytes_of(path)) {
            (Some((cached, r)), Some(now)) if same_bytes(cached, &now) => Some(r.clone()),
            _ => None,
        };
        if hit.is_none() {
            misses.push(i);
        }
        results.push(hit);
    }
    let computed: Vec<(usize, Arc<LoadResult<T>>)> = misses
        .into_par_iter()
        .map(|i| {
            let (path, role) = &files[i];
            (i, Arc::new(load_one::<T>(snapshot, path, role.clone())))
        })
        .collect();
    for (i, r) in computed {
        results[i] = Some(r);
    }
    let mut entries = HashMap::with_capacity(files.len());
    let results: Vec<Arc<LoadResult<T>>> =
        results.into_iter().map(|r| r.expect("filled")).collect();
    for ((path, _), r) in files.iter().zip(&results) {
        if let Some(b) = bytes_of(path) {
            entries.insert(path.clone(), (b, r.clone()));
        }
    }
    cache.entries = entries;
    results
}
