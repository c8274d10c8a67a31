//! What the daemon asks of the operating system: stop signals, file change notices for a local
//! source, and an open-files limit that fits its connections.

use std::sync::Arc;

use anyhow::Context as _;
use olo_reconciler::controller::{Queue, Trigger};
use tracing::info;

/// Raises the soft limit of open files to the hard limit: every connection is a file, and at
/// the usual soft 1,024 a thousand idle sockets leave none for the state store or the DAG
/// folder. Warns when even the hard limit leaves less than `connections` plus a reserve.
pub fn raise_open_files_limit(connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open files limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    info!(
        before = ?before,
        now = ?now,
        "olo serve: open files limit {}",
        now.map_or("unlimited".to_string(), |n| n.to_string())
    );
    if now.is_some_and(|n| n < connections as u64 + 256) {
        tracing::warn!(
            "the open files limit ({}) leaves too little beside server.max_connections = \
             {connections}: lower it, or raise the hard limit (ulimit -Hn)",
            now.unwrap_or_default()
        );
    }
}

/// Turns true on SIGINT (Ctrl-C) or SIGTERM (what `kill` and Kubernetes send): stop taking work,
/// let the server finish its requests, exit.
pub fn stop_on_signals() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut interrupt = signal(SignalKind::interrupt()).context("could not listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    Ok(stop_rx)
}

/// Whether a file event is a change. Reading a file is not: olo's own import of the folder opens
/// every file, and taking those events as changes made an idle daemon import its folder again
/// about three times a second, for ever.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    use notify::EventKind;
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Wakes the loop when files under a local source change.
pub fn watch(
    path: &std::path::Path,
    olos_own: &[&std::path::Path],
    queue: Arc<Queue>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    // Canonical paths, so that the event paths (under the canonical root) and olo's own folders
    // compare whatever the settings spelled (`.`, `./.olo`, a symlink).
    let root = path.canonicalize().ok()?;
    let own: Vec<std::path::PathBuf> = olos_own
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .filter(|p| p.starts_with(&root))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| is_change(&e.kind) && !only_under(&e.paths, &own)) {
            queue.reconcile(Trigger::FileChange);
        }
    })
    .ok()?;
    watcher
        .watch(&root, notify::RecursiveMode::Recursive)
        .ok()?;
    Some(watcher)
}

/// Whether every path of an event is under one of `folders` (olo's own state or output inside
/// the watched folder: its writes there are not changes to the configuration, and taking them
/// for changes made a daemon whose state folder sat in its repository read it again and again).
fn only_under(paths: &[std::path::PathBuf], folders: &[std::path::PathBuf]) -> bool {
    !paths.is_empty()
        && paths
            .iter()
            .all(|p| folders.iter().any(|f| p.starts_with(f)))
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};
    use notify::EventKind;

    #[test]
    fn olos_own_writes_inside_the_watched_folder_are_not_changes() {
        use std::path::PathBuf;
        let own = [PathBuf::from("/repo/.olo")];
        assert!(super::only_under(
            &[PathBuf::from("/repo/.olo/state.db-wal")],
            &own
        ));
        assert!(!super::only_under(
            &[PathBuf::from("/repo/workspaces/w/jobs/a.yaml")],
            &own
        ));
        assert!(!super::only_under(
            &[
                PathBuf::from("/repo/.olo/x"),
                PathBuf::from("/repo/olo.yaml")
            ],
            &own
        ));
        assert!(!super::only_under(&[], &own));
    }

    #[test]
    fn reading_a_file_is_not_a_change() {
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Read)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
        ] {
            assert!(!super::is_change(&read), "{read:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::File),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Any,
        ] {
            assert!(super::is_change(&change), "{change:?}");
        }
    }
}
