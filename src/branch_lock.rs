//! The per-branch reconcile lock of a state folder.

use anyhow::Context as _;
use tracing::warn;

use crate::settings::Settings;

/// Holds the per-branch reconcile lock of a state folder: never two reconciles of one branch at
/// once, also across processes (`olo apply` while `olo serve` runs). Released when dropped (and
/// by the OS when the process dies, so a kill -9 never leaves it stuck).
pub struct BranchLock {
    _file: std::fs::File,
}

pub fn lock_branch(settings: &Settings) -> anyhow::Result<BranchLock> {
    let (file, path, branch) = branch_lock_file(settings)?;
    if file.try_lock().is_err() {
        warn!("another olo is reconciling {branch} with this state folder; waiting for it");
        file.lock()
            .with_context(|| format!("could not lock {}", path.display()))?;
    }
    Ok(BranchLock { _file: file })
}

/// [`lock_branch`] without waiting: `None` while another process holds the lock.
pub fn try_lock_branch(settings: &Settings) -> anyhow::Result<Option<BranchLock>> {
    let (file, _, _) = branch_lock_file(settings)?;
    Ok(file
        .try_lock()
        .is_ok()
        .then_some(BranchLock { _file: file }))
}

/// The branch's lock file in the state folder (opened, not locked), its path and the branch.
fn branch_lock_file(
    settings: &Settings,
) -> anyhow::Result<(std::fs::File, std::path::PathBuf, String)> {
    let branch = settings.tracked_branch();
    let safe: String = branch
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::create_dir_all(&settings.state.dir)?;
    let path = settings.state.dir.join(format!("reconcile-{safe}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    Ok((file, path, branch))
}
