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
    let (file, path, branch) = lock_file(settings, "reconcile")?;
    if file.try_lock().is_err() {
        warn!("another olo is reconciling {branch} with this state folder; waiting for it");
        file.lock()
            .with_context(|| format!("could not lock {}", path.display()))?;
    }
    Ok(BranchLock { _file: file })
}

/// Held by `olo serve` for as long as it runs (besides the branch lock, which it holds too), so
/// that a one-shot reconcile can tell an idle daemon, which would never let go, from another
/// one-shot reconcile, which ends.
pub struct DaemonLock {
    _file: std::fs::File,
}

/// Takes the daemon lock of the tracked branch (waiting for another `olo serve` of the same state
/// folder to stop, as before), then its branch lock.
pub fn lock_daemon(settings: &Settings) -> anyhow::Result<(DaemonLock, BranchLock)> {
    let (file, path, branch) = lock_file(settings, "serve")?;
    if file.try_lock().is_err() {
        warn!("another olo serve follows {branch} with this state folder; waiting for it to stop");
        file.lock()
            .with_context(|| format!("could not lock {}", path.display()))?;
    }
    Ok((DaemonLock { _file: file }, lock_branch(settings)?))
}

/// How often a one-shot reconcile looks again while another one holds the branch.
const RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// The branch lock for one reconcile (`olo apply`, `olo serve --once`): waits while another
/// one-shot reconcile holds it, and refuses at once while an `olo serve` follows the branch with
/// this state folder (it holds the lock for as long as it runs; it reconciles on request).
pub fn lock_branch_once(settings: &Settings) -> anyhow::Result<BranchLock> {
    let (file, path, branch) = lock_file(settings, "reconcile")?;
    let (daemon, _, _) = lock_file(settings, "serve")?;
    let mut warned = false;
    loop {
        if file.try_lock().is_ok() {
            return Ok(BranchLock { _file: file });
        }
        if daemon.try_lock().is_err() {
            anyhow::bail!(
                "an olo serve follows {branch} with the state folder {}: it reconciles new \
                 commits itself; ask it for a reconcile with POST /api/v1/reconcile, or stop it \
                 first",
                settings.state.dir.display()
            );
        }
        // Free: no daemon; another one-shot reconcile holds the branch. Let go of the daemon
        // lock again at once so that an `olo serve` starting now is not kept waiting.
        let _ = daemon.unlock();
        if !warned {
            warn!(
                lock = %path.display(),
                "another olo is reconciling {branch} with this state folder; waiting for it"
            );
            warned = true;
        }
        std::thread::sleep(RETRY);
    }
}

/// [`lock_branch`] without waiting: `None` while another process holds the lock.
pub fn try_lock_branch(settings: &Settings) -> anyhow::Result<Option<BranchLock>> {
    let (file, _, _) = lock_file(settings, "reconcile")?;
    Ok(file
        .try_lock()
        .is_ok()
        .then_some(BranchLock { _file: file }))
}

/// The branch's lock file `<kind>-<branch>.lock` in the state folder (opened, not locked), its
/// path and the branch.
fn lock_file(
    settings: &Settings,
    kind: &str,
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
    let path = settings.state.dir.join(format!("{kind}-{safe}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    Ok((file, path, branch))
}
