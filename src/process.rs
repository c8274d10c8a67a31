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
pub fn watch(path: &std::path::Path, queue: Arc<Queue>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| is_change(&e.kind)) {
            queue.reconcile(Trigger::FileChange);
        }
    })
    .ok()?;
    watcher.watch(path, notify::RecursiveMode::Recursive).ok()?;
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};
    use notify::EventKind;

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
