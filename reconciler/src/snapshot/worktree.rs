use std::fs;
use std::path::Path;

use olo_schema::snapshot::is_tracked;
use olo_schema::Snapshot;

use crate::{Error, Result};

/// Reads the tracked files of a working tree (`olo.yaml`, `workspaces/**`). Symbolic links are
/// recorded with their target and never followed, so validation decides whether they stay
/// inside their workspace. Files larger than the YAML limit are still read (validation reports
/// them), but nothing outside the tracked paths is.
pub fn from_worktree(root: &Path) -> Result<Snapshot> {
    let mut snapshot = Snapshot::new(None);
    let err = |path: &Path, source| Error::ReadTree {
        path: path.display().to_string(),
        source,
    };
    let meta = fs::metadata(root).map_err(|e| err(root, e))?;
    if !meta.is_dir() {
        return Err(err(
            root,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    for name in ["olo.yaml", "olo.yml"] {
        let p = root.join(name);
        if let Ok(m) = fs::symlink_metadata(&p) {
            add(&mut snapshot, &p, name.to_string(), m.file_type()).map_err(|e| err(&p, e))?;
        }
    }
    let mut stack = vec![(root.join("workspaces"), "workspaces".to_string())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel == "workspaces" => continue,
            Err(e) => return Err(err(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| err(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                // Not UTF-8: cannot be a name olo accepts; record it so validation can say so.
                let lossy = name.to_string_lossy().into_owned();
                snapshot.insert_file(format!("{rel}/{lossy}"), Vec::new());
                continue;
            };
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| err(&path, e))?;
            let child = format!("{rel}/{name}");
            if ft.is_dir() {
                if !name.starts_with('.') {
                    stack.push((path, child));
                }
            } else if is_tracked(&child) {
                add(&mut snapshot, &path, child, ft).map_err(|e| err(&path, e))?;
            }
        }
    }
    Ok(snapshot)
}

fn add(snapshot: &mut Snapshot, path: &Path, rel: String, ft: fs::FileType) -> std::io::Result<()> {
    if ft.is_symlink() {
        let target = fs::read_link(path)?;
        snapshot.insert_symlink(rel, target.to_string_lossy().into_owned());
    } else if ft.is_file() {
        snapshot.insert_file(rel, fs::read(path)?);
    }
    Ok(())
}
