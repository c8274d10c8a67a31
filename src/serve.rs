//! `olo serve` and `olo apply`: wiring of the controller (`olo_reconciler::controller`), the
//! server and the replicas. One worker per tracked branch, so two reconciles of a branch never
//! overlap; triggers (poll interval, local file changes, webhooks and the API) only put work on
//! the controller's queue, so a burst of them collapses into one reconcile of the newest commit.
//! Pull requests are planned by the same worker, between reconciles. The controller decides
//! retries (by error class), the periodic drift check and what a trigger forces.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::controller::{chain, Queue, Reconciled, Step, Trigger};
use olo_reconciler::engine::Outcome;
use olo_reconciler::runs::Runs;
use olo_reconciler::targets::airflow::Airflow;
use tracing::{error, info};

use crate::components::Runtime;
use crate::settings::Settings;
use crate::StartArgs;

fn progress(done: usize, total: usize) {
    if total >= 200 && (done.is_multiple_of((total / 10).max(1)) || done == total) {
        info!(done, total, "applied {done}/{total} changes");
    }
}

/// The daemon loop (or one reconcile with `once`).
pub async fn serve(settings: &Settings, once: bool, start: StartArgs) -> anyhow::Result<bool> {
    // A daemon holds the branch for as long as it runs; a one-shot reconcile only while it runs,
    // and refuses at once beside a daemon (which would never let go).
    let _locks = if once {
        (None, crate::branch_lock::lock_branch_once(settings)?)
    } else {
        let (daemon, branch) = crate::branch_lock::lock_daemon(settings)?;
        (Some(daemon), branch)
    };
    let mut rt = crate::components::runtime(settings).await?;
    // A store that lost olo's earlier work is refused before anything reconciles.
    let engine = &rt.controller.engine;
    olo_reconciler::adopt::check(
        engine.store.as_ref(),
        &engine.sink,
        &olo_reconciler::store::redacted_url(&settings.database_url()),
        start.adopt,
    )
    .await?;
    let describe = rt.controller.source.lock().expect("source lock").describe();
    info!(
        "olo serve: {describe}, state {} (store {}), DAGs into {}",
        settings.state.dir.display(),
        olo_reconciler::store::redacted_url(&settings.database_url()),
        settings.layout().dags.display()
    );
    if once {
        rt.controller.drift_every = None;
        return match rt.controller.reconcile(Trigger::Api, &progress).await {
            Step::Reconciled(r) => {
                trailer_runs(&rt, &r).await;
                let ready = r.ready();
                r.result.map(|_| ready).map_err(anyhow::Error::from)
            }
            Step::NoTip { error, .. } => Err(error.into()),
            Step::UpToDate => unreachable!("an API trigger always reconciles"),
        };
    }

    let forge = crate::components::make_forge(settings)?;
    let (branch, repo) = match rt.controller.latest().await {
        Ok(tip) => (tip.revision.branch, Some(tip.repo)),
        Err(_) => (settings.tracked_branch(), None),
    };
    let state = crate::components::app_state(settings, &rt, branch, repo)?.with_writes(
        olo_server::writes::Writes {
            mode: settings.api.writes,
            source: rt.controller.source.clone(),
            forge: forge.clone(),
        },
    );
    // The live catalog's names first, so stored events replay onto olo's jobs and tables.
    state.lineage.sync(state.catalog().as_ref());
    let observed = state
        .lineage
        .load(state.store.as_ref())
        .await
        .context("could not read the lineage edges from the state store")?;
    if observed > 0 {
        info!(
            observed,
            "olo serve: {observed} observed lineage edges loaded"
        );
    }
    let state = Arc::new(state);
    raise_open_files_limit(settings.server.max_connections);
    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.server.listen))?;
    info!(
        "olo serve: listening on http://{} (API /api/v1, webhook /webhooks/github, /healthz, /readyz, /metrics)",
        listener.local_addr()?
    );
    let stop_rx = stop_on_signals()?;
    let mut stopping = stop_rx.clone();
    let server = tokio::spawn(olo_server::serve(listener, state.clone(), {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }));

    // Triggers only put work on the queue.
    let poll = Duration::from_secs(settings.source.poll_seconds);
    let ticker = state.queue.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(poll);
        loop {
            interval.tick().await;
            ticker.reconcile(Trigger::Poll);
        }
    });
    let _watcher = if settings.source.url.is_none() {
        watch(&settings.source.path, state.queue.clone())
    } else {
        None
    };
    // Several replicas on one PostgreSQL store elect a leader; one on SQLite does everything.
    let mut replicas = crate::replicas::Replicas::start(settings, &state).await?;
    let follow_runs = |airflow: &Arc<dyn Airflow>| {
        tokio::spawn(olo_reconciler::runs::follow(
            state.store.clone(),
            airflow.clone(),
            Duration::from_secs(settings.airflow.poll_seconds),
        ));
    };
    if replicas.is_none() {
        if let Some(airflow) = &rt.airflow {
            follow_runs(airflow);
        }
    }
    let mut beat = tokio::time::interval(crate::replicas::BEAT);
    // What a pull request's plan is shown against: the live catalog and lineage graph.
    let live = || {
        let catalog = state.catalog();
        state.lineage.sync(catalog.as_ref());
        let lineage = state.lineage.read().clone();
        olo_reconciler::controller::Live { catalog, lineage }
    };

    let mut healthy = false;
    loop {
        let mut pending = tokio::select! {
            _ = stopping.wait_for(|s| *s) => {
                info!("olo serve: stopping");
                if let Some(r) = replicas.as_mut() {
                    r.resign().await;
                }
                let _ = server.await;
                return Ok(healthy);
            }
            pending = state.queue.next() => pending,
            _ = beat.tick(), if replicas.is_some() => Default::default(),
        };
        if let Some(r) = replicas.as_mut() {
            match r.step(&rt, &state, &mut pending).await {
                crate::replicas::Step::Lead { took_over } => {
                    if took_over {
                        if let Some(airflow) = &rt.airflow {
                            follow_runs(airflow);
                        }
                    }
                }
                crate::replicas::Step::Follow => continue,
            }
        }
        // Local file changes come in bursts (an editor's save, a checkout): let them settle
        // before reading the commit. Webhooks and API calls name a commit that exists already;
        // requests arriving during a reconcile collapse into the next one anyway.
        if pending.reconcile == Some(Trigger::FileChange) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        pending.extend(state.queue.take());

        if let Some(trigger) = pending.reconcile {
            match rt.controller.reconcile(trigger, &progress).await {
                Step::UpToDate => state.set_ready(),
                Step::NoTip { error, .. } => {
                    error!(error = %chain(&error), "could not read the branch tip")
                }
                Step::Reconciled(r) => {
                    healthy = r.ready();
                    state.record_reconcile(&r, &rt.controller.engine);
                    let triggered = trailer_runs(&rt, &r).await;
                    state.metrics.runs_triggered.inc_by(triggered as u64);
                    state.set_ready();
                }
            }
            // Once the live commit is known, stored OpenLineage events are read again in its names.
            if let Err(e) = state
                .lineage
                .replay_with(state.catalog().as_ref(), state.store.as_ref())
                .await
            {
                error!("olo serve: could not read the lineage events back: {e}");
            }
        }

        for pr in pending.pulls.into_values() {
            let outcome = rt
                .controller
                .plan_pull_request(forge.as_deref(), &pr, &live)
                .await;
            let label = outcome.as_ref().map_or("error", |v| v.label());
            state.metrics.count_pull_request_plan(label);
            if let Err(e) = outcome {
                error!(
                    pull_request = pr.number,
                    repository = %pr.repository,
                    "pull request #{} of {}: {}",
                    pr.number,
                    pr.repository,
                    chain(&e)
                );
            }
        }
    }
}

/// Raises the soft limit of open files to the hard limit: every connection is a file, and at
/// the usual soft 1,024 a thousand idle sockets leave none for the state store or the DAG
/// folder. Warns when even the hard limit leaves less than `connections` plus a reserve.
fn raise_open_files_limit(connections: usize) {
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

/// `Olo-Run:` trailers of an applied commit trigger runs (with Airflow configured); returns how
/// many.
async fn trailer_runs(rt: &Runtime, r: &Reconciled) -> usize {
    let (Some(airflow), Ok(Outcome::Applied { .. })) = (&rt.airflow, &r.result) else {
        return 0;
    };
    let catalog = rt.controller.engine.catalog();
    Runs::new(rt.controller.engine.store.as_ref(), Some(airflow.as_ref()))
        .trigger_trailers(catalog.as_deref(), &r.tip.revision)
        .await
        .len()
}

/// Turns true on SIGINT (Ctrl-C) or SIGTERM (what `kill` and Kubernetes send): stop taking work,
/// let the server finish its requests, exit.
fn stop_on_signals() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
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

/// Wakes the loop when files under a local source change.
fn watch(path: &std::path::Path, queue: Arc<Queue>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            queue.reconcile(Trigger::FileChange);
        }
    })
    .ok()?;
    watcher.watch(path, notify::RecursiveMode::Recursive).ok()?;
    Some(watcher)
}
