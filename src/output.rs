//! Writing a rendered tree to a folder: atomic per file (temporary file, flush, rename),
//! idempotent, and removing only files an earlier render wrote (listed in its manifest.json).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path};

use anyhow::{bail, Context as _};

pub struct Written {
    pub changed: usize,
    pub removed: usize,
}

pub fn write_tree(out: &Path, files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Written> {
    let manifest = out.join("manifest.json");
    let previous: Vec<String> = if manifest.exists() {
        let text = fs::read_to_string(&manifest)
            .with_context(|| format!("could not read {}", manifest.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an olo manifest", manifest.display()))?;
        v["files"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["path"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        if out.exists() && fs::read_dir(out)?.next().is_some() {
            bail!(
                "{} is not empty and was not written by `olo render` (no manifest.json); choose an empty or new folder",
                out.display()
            );
        }
        Vec::new()
    };
    // Temporary files first, flushed together, then renamed into place: readers see old or new
    // files, never partial ones, and one flush per batch keeps 10,000 files fast.
    let mut staged = Vec::new();
    for (rel, bytes) in files {
        let path = safe_join(out, rel)?;
        if fs::read(&path).ok().as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        staged.push((stage(&path, bytes)?, path));
    }
    let temps: Vec<&Path> = staged.iter().map(|(tmp, _)| tmp.as_path()).collect();
    olo_reconciler::apply::flush(&temps)?;
    for (tmp, path) in &staged {
        fs::rename(tmp, path).with_context(|| format!("could not write {}", path.display()))?;
    }
    let changed = staged.len();
    let mut removed = 0;
    for rel in previous {
        if !files.contains_key(&rel) {
            let path = safe_join(out, &rel)?;
            if path.exists() {
                fs::remove_file(&path)
                    .with_context(|| format!("could not remove {}", path.display()))?;
                removed += 1;
            }
        }
    }
    Ok(Written { changed, removed })
}

/// `out/rel`, refusing anything but plain relative components.
fn safe_join(out: &Path, rel: &str) -> anyhow::Result<std::path::PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("refusing to write outside the output folder: {rel:?}");
    }
    Ok(out.join(p))
}

/// Writes `bytes` to a temporary file beside `path` and returns the temporary file's path.
fn stage(path: &Path, bytes: &[u8]) -> anyhow::Result<std::path::PathBuf> {
    let dir = path.parent().context("file has no parent folder")?;
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.olo-tmp"));
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("could not write {}", tmp.display()))?;
    f.write_all(bytes)?;
    Ok(tmp)
}
