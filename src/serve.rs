//! `olo serve` and `olo apply`: the reconcile loop. One worker per tracked branch, so two
//! reconciles of a branch never overlap; triggers (poll interval, local file changes, later
//! webhooks and the API) only wake the worker, so a burst of them collapses into one reconcile
//! of the newest commit. Temporary errors are retried with capped, jittered backoff; an invalid
//! commit stalls the branch until the next commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::apply::{BranchSink, FolderSink, Sink};
use olo_reconciler::engine::{short, Engine, Outcome};
use olo_reconciler::source::{Credentials, LocalSource, RemoteSource, Source, Tip};
use olo_reconciler::store::Store;
use tokio::sync::mpsc;

use crate::settings::{Settings, SinkKind};

pub struct Runtime {
    pub engine: Engine,
    pub source: Arc<Mutex<Box<dyn Source>>>,
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&settings.state.dir)
        .with_context(|| format!("could not create {}", settings.state.dir.display()))?;
    let url = settings.database_url();
    let store = olo_reconciler::store::open(&url)
        .await
        .with_context(|| format!("could not open the state store {url}"))?;
    Ok(Arc::from(store))
}

pub fn make_sink(settings: &Settings) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match settings.apply.sink {
        SinkKind::Folder => Box::new(FolderSink::new(settings.layout())),
        SinkKind::Branch => {
            let repo = settings
                .apply
                .rendered_repo
                .as_ref()
                .context("apply.rendered_repo")?;
            Box::new(BranchSink::new(repo, &settings.apply.rendered_branch)?)
        }
    })
}

fn make_source(settings: &Settings) -> anyhow::Result<Box<dyn Source>> {
    let s = &settings.source;
    let secret = |var: &Option<String>| -> anyhow::Result<Option<String>> {
        match var {
            None => Ok(None),
            Some(v) => std::env::var(v).map(Some).with_context(|| {
                format!("environment variable {v} (named in the settings) is not set")
            }),
        }
    };
    Ok(match &s.url {
        Some(url) => {
            let credentials = if let Some(token) = secret(&s.token_env)? {
                Credentials::Token {
                    username: s.token_username.clone(),
                    token,
                }
            } else if let Some(key) = &s.ssh_key {
                Credentials::SshKey {
                    username: "git".into(),
                    key: key.clone(),
                    passphrase: secret(&s.ssh_passphrase_env)?,
                }
            } else {
                Credentials::None
            };
            let branch = s.branch.clone().unwrap_or_else(|| "main".into());
            Box::new(RemoteSource::new(
                url,
                &branch,
                &settings.state.dir,
                credentials,
            ))
        }
        None => Box::new(LocalSource::new(
            &s.path,
            s.branch.clone(),
            &settings.state.dir,
        )),
    })
}

pub async fn runtime(settings: &Settings) -> anyhow::Result<Runtime> {
    let store = open_store(settings).await?;
    Ok(Runtime {
        engine: Engine {
            store,
            sink: make_sink(settings)?,
            render: settings.render.clone(),
            prune: settings.apply.prune,
            last_full_observe: None,
            memo: None,
            inventory: None,
        },
        source: Arc::new(Mutex::new(make_source(settings)?)),
    })
}

async fn latest(source: &Arc<Mutex<Box<dyn Source>>>) -> anyhow::Result<Tip> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = source.lock().expect("source lock");
        s.latest()
            .with_context(|| format!("could not read {}", s.describe()))
    })
    .await?
}

fn progress(done: usize, total: usize) {
    if total >= 200 && (done.is_multiple_of((total / 10).max(1)) || done == total) {
        eprintln!("  applied {done}/{total} changes");
    }
}

/// One reconcile of the branch tip. Returns whether the branch is Ready afterwards.
pub async fn reconcile_once(rt: &mut Runtime) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let tip = latest(&rt.source).await?;
    let rev = &tip.revision;
    eprintln!(
        "reconciling {} {} by {} <{}>: {}",
        rev.branch,
        short(&rev.sha),
        rev.author.name,
        rev.author.email,
        rev.message.lines().next().unwrap_or_default()
    );
    match rt.engine.reconcile(&tip, &progress).await? {
        Outcome::Applied { plan } => {
            let s = plan.summary();
            eprintln!(
                "{} {}: Ready ({} created, {} updated, {} deleted, {} kept, {} unchanged) in {} ms",
                rev.branch,
                short(&rev.sha),
                s.create,
                s.update,
                s.delete,
                s.keep,
                s.unchanged,
                started.elapsed().as_millis()
            );
            Ok(true)
        }
        Outcome::Invalid { .. } => {
            let status = rt.engine.store.branch_status(&rev.branch).await?;
            if let Some(status) = status {
                if let Ok(diags) =
                    serde_json::from_value::<Vec<olo_schema::Diagnostic>>(status.diagnostics)
                {
                    eprint!("{}", olo_schema::diagnostic::to_text(&diags));
                }
                eprintln!(
                    "{}: Stalled: {}",
                    rev.branch,
                    status.message.unwrap_or_default()
                );
            }
            Ok(false)
        }
    }
}

/// Holds the per-branch reconcile lock of a state folder: never two reconciles of one branch at
/// once, also across processes (`olo apply` while `olo serve` runs). Released when dropped (and
/// by the OS when the process dies, so a kill -9 never leaves it stuck).
pub struct BranchLock {
    _file: std::fs::File,
}

pub fn lock_branch(settings: &Settings) -> anyhow::Result<BranchLock> {
    let branch = settings
        .source
        .branch
        .clone()
        .unwrap_or_else(|| "main".into());
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
    if file.try_lock().is_err() {
        eprintln!("another olo is reconciling {branch} with this state folder; waiting for it");
        file.lock()
            .with_context(|| format!("could not lock {}", path.display()))?;
    }
    Ok(BranchLock { _file: file })
}

/// The daemon loop (or one reconcile with `once`).
pub async fn serve(settings: &Settings, once: bool) -> anyhow::Result<bool> {
    let _lock = lock_branch(settings)?;
    let mut rt = runtime(settings).await?;
    let describe = rt.source.lock().expect("source lock").describe();
    eprintln!(
        "olo serve: {describe}, state {} (store {}), DAGs into {}",
        settings.state.dir.display(),
        settings.database_url(),
        settings.layout().dags.display()
    );
    if once {
        return reconcile_once(&mut rt).await;
    }

    // Triggers: a channel of capacity 1, so a burst leaves one pending wake-up.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let poll = Duration::from_secs(settings.source.poll_seconds);
    let ticker = tx.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(poll);
        loop {
            interval.tick().await;
            let _ = ticker.try_send(());
        }
    });
    let _watcher = if settings.source.url.is_none() {
        watch(&settings.source.path, tx.clone())
    } else {
        None
    };

    let mut last: Option<String> = None;
    let mut healthy = false;
    let mut backoff = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("olo serve: stopping");
                return Ok(healthy);
            }
            woke = rx.recv() => if woke.is_none() { return Ok(healthy) },
        }
        // Debounce: let a burst of file events settle, then take the newest commit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while rx.try_recv().is_ok() {}
        let tip = match latest(&rt.source).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e:#}");
                continue;
            }
        };
        if last.as_deref() == Some(tip.revision.sha.as_str()) {
            continue; // nothing new since the last reconcile (temporary failures leave `last` unset)
        }
        match reconcile_once(&mut rt).await {
            Ok(ok) => {
                healthy = ok;
                last = Some(tip.revision.sha.clone());
                backoff = Duration::from_secs(1);
            }
            Err(e) => {
                let temporary = e
                    .downcast_ref::<olo_reconciler::Error>()
                    .is_some_and(olo_reconciler::Error::is_temporary);
                eprintln!("error: {e:#}");
                healthy = false;
                if temporary {
                    // Capped, jittered backoff, then try again.
                    let jitter = Duration::from_millis(
                        u64::from(chrono::Utc::now().timestamp_subsec_millis()) % 500,
                    );
                    tokio::time::sleep(backoff + jitter).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    let _ = tx.try_send(());
                }
                // A permanent error is tried again at the next trigger (poll or change), never
                // left behind for good: `last` stays unset.
            }
        }
    }
}

/// Wakes the loop when files under a local source change.
fn watch(path: &std::path::Path, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.try_send(());
        }
    })
    .ok()?;
    watcher.watch(path, notify::RecursiveMode::Recursive).ok()?;
    Some(watcher)
}
