//! `olo serve` and `olo apply`: wiring of the controller (`olo_reconciler::controller`), the
//! server and the replicas. One worker per tracked branch, so two reconciles of a branch never
//! overlap; triggers (poll interval, local file changes, webhooks and the API) only put work on
//! the controller's queue, so a burst of them collapses into one reconcile of the newest commit.
//! Pull requests are planned by the same worker, between reconciles. The controller decides
//! retries (by error class), the periodic drift check and what a trigger forces.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::controller::{chain, replicas, Replicas, Round, Step, Trigger};
use tracing::{error, info, warn};

use crate::process::{raise_open_files_limit, stop_on_signals, watch};
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
        engine.lakehouse.as_ref().and_then(|l| l.catalog.as_deref()),
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
                rt.controller.trailer_runs(rt.airflow.as_deref(), &r).await;
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
    tokio::spawn(olo_reconciler::store::housekeeping(state.store.clone()));
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
        let dags = settings.layout().dags;
        watch(
            &settings.source.path,
            &[&settings.state.dir, &dags],
            state.queue.clone(),
        )
    } else {
        None
    };
    // Several replicas on one PostgreSQL store elect a leader; one on SQLite does everything.
    let mut replicas = Replicas::start(
        &settings.database_url(),
        &state.config.branch,
        state.clone(),
        state.store.clone(),
        state.lineage.clone(),
    )
    .await?;
    // Runs are followed in Airflow by the one olo, or by the leader while it leads.
    let follow_runs = || {
        rt.airflow.as_ref().map(|airflow| {
            tokio::spawn(olo_reconciler::runs::follow(
                state.store.clone(),
                airflow.clone(),
                Duration::from_secs(settings.airflow.poll_seconds),
            ))
        })
    };
    let mut following_runs = if replicas.is_none() {
        follow_runs()
    } else {
        None
    };
    let mut beat = tokio::time::interval(replicas::BEAT);
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
            match r.step(&rt.controller, &mut pending).await {
                Round::Lead { took_over: true } => {
                    let new = follow_runs();
                    if let Some(old) = std::mem::replace(&mut following_runs, new) {
                        old.abort();
                    }
                }
                Round::Lead { took_over: false } => {}
                Round::Follow => continue,
                Round::SteppedDown => {
                    if let Some(old) = following_runs.take() {
                        old.abort();
                    }
                    rt.controller.step_down();
                    continue;
                }
            }
        }
        // A leader that loses the lead drops its reconcile at once (another replica may lead).
        let lost_lead = replicas.as_ref().map(|r| r.lost_lead());
        // Local file changes come in bursts (an editor's save, a checkout): let them settle
        // before reading the commit. Webhooks and API calls name a commit that exists already;
        // requests arriving during a reconcile collapse into the next one anyway.
        if pending.reconcile == Some(Trigger::FileChange) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        pending.extend(state.queue.take());

        if let Some(trigger) = pending.reconcile {
            state.metrics.branch_reads.inc();
            let reconciled = tokio::select! {
                step = rt.controller.reconcile(trigger, &progress) => step,
                () = async {
                    match lost_lead {
                        Some(lost) => lost.await,
                        None => std::future::pending().await,
                    }
                } => {
                    warn!("olo serve: dropped the reconcile of {trigger}: this replica no longer leads");
                    continue;
                }
            };
            match reconciled {
                Step::UpToDate => state.set_ready(),
                Step::NoTip { error, .. } => {
                    error!(error = %chain(&error), "could not read the branch tip")
                }
                Step::Reconciled(r) => {
                    healthy = r.ready();
                    state.record_reconcile(&r, &rt.controller.engine);
                    let triggered = rt.controller.trailer_runs(rt.airflow.as_deref(), &r).await;
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
