//! `olo serve` and `olo apply`: wiring of the controller (`olo_reconciler::controller`), the
//! server and the replicas. One worker per tracked branch, so two reconciles of a branch never
//! overlap; triggers (poll interval, local file changes, webhooks and the API) only put work on
//! the controller's queue, so a burst of them collapses into one reconcile of the newest commit.
//! Pull requests are planned by the same worker, between reconciles. The controller decides
//! retries (by error class), the periodic drift check and what a trigger forces.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::apply::{BranchSink, FolderSink, Sink};
use olo_reconciler::controller::{
    chain, Controller, PullRequestPlan, Queue, Reconciled, SharedSource, Step, Trigger,
};
use olo_reconciler::engine::{short, Engine, Outcome, Preview};
use olo_reconciler::forge::{self, Forge};
use olo_reconciler::source::{Credentials, LocalSource, RemoteSource, Source, Tip};
use olo_reconciler::store::{RunTrigger, Store};
use olo_reconciler::targets::airflow::{Airflow, AirflowClient};
use olo_reconciler::targets::dags::AirflowDags;
use olo_server::metrics::OutcomeLabels;
use olo_server::AppState;
use secrecy::ExposeSecret as _;
use tracing::{error, info, warn};

use crate::settings::{Settings, SinkKind};

pub struct Runtime {
    /// The engine, the source and the queue of the tracked branch.
    pub controller: Controller,
    pub airflow: Option<Arc<dyn Airflow>>,
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&settings.state.dir)
        .with_context(|| format!("could not create {}", settings.state.dir.display()))?;
    let url = settings.database_url();
    let store = olo_reconciler::store::open(&url).await.with_context(|| {
        format!(
            "could not open the state store {}",
            olo_reconciler::store::redacted_url(&url)
        )
    })?;
    Ok(Arc::from(store))
}

/// The dashboard's view of the config repository (git objects of the source's local repository)
/// and of the sink (its own handle: reads only).
struct DashboardFiles {
    repo: std::path::PathBuf,
    sink: Mutex<Box<dyn Sink>>,
}

/// Largest file the dashboard shows (the validator refuses larger config files anyway).
const SHOWN_FILE_MAX: usize = 1 << 20;

impl olo_server::Files for DashboardFiles {
    fn spec(&self, revision: &str, path: &str) -> Option<String> {
        olo_reconciler::snapshot::read_file(&self.repo, revision, path, SHOWN_FILE_MAX)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    fn deployed(&self, name: &str) -> Option<String> {
        let sink = self.sink.lock().ok()?;
        let mut names = std::iter::once(name);
        let mut found = sink.observe(&mut names).ok()?;
        found
            .remove(name)
            .filter(|b| b.len() <= SHOWN_FILE_MAX)
            .and_then(|b| String::from_utf8(b).ok())
    }
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
        Ok(Settings::secret(var)?.map(|s| s.expose_secret().to_string()))
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

pub fn make_airflow(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Airflow>>> {
    let a = &settings.airflow;
    let Some(url) = &a.url else {
        return Ok(None);
    };
    let password = Settings::secret(&a.password_env)?.context("airflow.password_env")?;
    let client = AirflowClient::new(olo_reconciler::targets::airflow::AirflowSettings {
        url: url
            .parse()
            .with_context(|| format!("airflow.url = {url:?} is not a URL"))?,
        username: a.username.clone(),
        password,
        timeout: Duration::from_secs(a.timeout_seconds),
    })
    .context("could not set up the Airflow client")?;
    Ok(Some(Arc::new(client)))
}

/// The SQL runner's Trino client, from `[trino]` (`None` without `trino.url`).
pub fn make_trino(
    settings: &Settings,
) -> anyhow::Result<Option<Arc<dyn olo_reconciler::targets::trino::Trino>>> {
    use olo_reconciler::targets::trino::{TrinoAuth, TrinoClient};
    let t = &settings.trino;
    let Some(url) = &t.url else {
        return Ok(None);
    };
    let auth = if let Some(token) = Settings::secret(&t.token_env)? {
        Some(TrinoAuth::Bearer(token))
    } else if let (Some(username), Some(password)) =
        (&t.username, Settings::secret(&t.password_env)?)
    {
        Some(TrinoAuth::Basic {
            username: username.clone(),
            password,
        })
    } else {
        None
    };
    let client =
        TrinoClient::new(url, Duration::from_secs(t.timeout_seconds), auth).context("trino.url")?;
    Ok(Some(Arc::new(client)))
}

pub fn make_forge(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Forge>>> {
    let g = &settings.github;
    let auth = if let Some(token) = Settings::secret(&g.token_env)? {
        forge::GitHubAuth::Token(token)
    } else if let (Some(app_id), Some(installation_id), Some(key)) =
        (g.app_id, g.installation_id, &g.private_key_file)
    {
        let pem = std::fs::read_to_string(key)
            .with_context(|| format!("could not read github.private_key_file {}", key.display()))?;
        forge::GitHubAuth::App {
            app_id,
            private_key_pem: pem.into(),
            installation_id,
        }
    } else {
        return Ok(None);
    };
    let github = forge::GitHub::new(forge::GitHubSettings {
        api_url: g
            .api_url
            .parse()
            .with_context(|| format!("github.api_url = {:?} is not a URL", g.api_url))?,
        auth,
    })
    .context("could not set up the GitHub client")?;
    Ok(Some(Arc::new(github)))
}

pub async fn runtime(settings: &Settings) -> anyhow::Result<Runtime> {
    let store = open_store(settings).await?;
    let airflow = make_airflow(settings)?;
    let after_apply = airflow.clone().map(|a| {
        Arc::new(AirflowDags::new(
            a,
            Duration::from_secs(settings.airflow.parse_timeout_seconds),
        )) as Arc<dyn olo_reconciler::engine::AfterApply>
    });
    let engine = Engine {
        store,
        sink: make_sink(settings)?,
        render: settings.render.clone(),
        prune: settings.apply.prune,
        last_full_observe: None,
        memo: None,
        inventory: None,
        after_apply,
        lakehouse: crate::lakehouse::make_lakehouse(settings).await?,
        lake_inventory: None,
        phases: Default::default(),
    };
    let source: SharedSource = Arc::new(Mutex::new(make_source(settings)?));
    Ok(Runtime {
        controller: Controller::new(engine, source, Arc::new(Queue::default())),
        airflow,
    })
}

pub(crate) async fn latest(source: &SharedSource) -> anyhow::Result<Tip> {
    Ok(olo_reconciler::controller::latest(source).await?)
}

fn progress(done: usize, total: usize) {
    if total >= 200 && (done.is_multiple_of((total / 10).max(1)) || done == total) {
        info!(done, total, "applied {done}/{total} changes");
    }
}

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

/// The daemon loop (or one reconcile with `once`).
pub async fn serve(settings: &Settings, once: bool) -> anyhow::Result<bool> {
    let _lock = lock_branch(settings)?;
    let mut rt = runtime(settings).await?;
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
                if let (Some(airflow), Ok(Outcome::Applied { .. })) = (&rt.airflow, &r.result) {
                    trigger_trailer_runs(&rt, airflow, &r.tip).await;
                }
                let ready = r.ready();
                r.result.map(|_| ready).map_err(anyhow::Error::from)
            }
            Step::NoTip { error, .. } => Err(error.into()),
            Step::UpToDate => unreachable!("an API trigger always reconciles"),
        };
    }

    let forge = make_forge(settings)?;
    let (branch, repo) = match rt.controller.latest().await {
        Ok(tip) => (tip.revision.branch, Some(tip.repo)),
        Err(_) => (settings.tracked_branch(), None),
    };
    let config = olo_server::ServerConfig {
        branch,
        webhook_secret: Settings::secret(&settings.github.webhook_secret_env)?,
        repository: settings.github.repository.clone(),
        tokens: settings.api.tokens.clone(),
        read_requires_token: settings.api.read_requires_token,
        airflow_ui: settings
            .airflow
            .ui_url
            .clone()
            .or_else(|| settings.airflow.url.clone()),
    };
    let mut state = AppState::new(
        rt.controller.engine.store.clone(),
        config,
        rt.airflow.clone(),
    );
    state.queue = rt.controller.queue.clone();
    if let Some(oidc) = settings.oidc()? {
        info!(
            "olo serve: OpenID Connect tokens from {} accepted{}",
            oidc.config.issuer,
            if oidc.config.redirect_url.is_some() {
                "; dashboard sign-in at /auth/login"
            } else {
                ""
            }
        );
        state = state.with_oidc(Arc::new(oidc));
    }
    if let Some(url) = &settings.mlflow.url {
        let client = olo_reconciler::targets::mlflow::MlflowClient::new(
            url,
            settings.mlflow.ui_url.as_deref(),
            Duration::from_secs(settings.mlflow.timeout_seconds),
        )
        .context("[mlflow] url")?;
        state = state.with_mlflow(Arc::new(client));
    }
    if let Some(trino) = make_trino(settings)? {
        state = state.with_trino(trino, settings.trino.max_rows);
    }
    state = state.with_lakehouse(rt.controller.engine.lakehouse.clone());
    state = state.with_writes(olo_server::writes::Writes {
        mode: settings.api.writes,
        source: rt.controller.source.clone(),
        forge: forge.clone(),
    });
    if let Some(repo) = repo {
        state = state.with_files(Arc::new(DashboardFiles {
            repo,
            sink: Mutex::new(make_sink(settings)?),
        }));
    }
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
    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.server.listen))?;
    info!(
        "olo serve: listening on http://{} (API /api/v1, webhook /webhooks/github, /healthz, /readyz, /metrics)",
        listener.local_addr()?
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // One long-lived listener for SIGINT (Ctrl-C) and SIGTERM (what `kill` and Kubernetes send):
    // stop taking work, let the server finish its requests, exit.
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("could not listen for SIGINT")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = stop_tx.send(true);
        });
    }
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
        tokio::spawn(olo_server::runs::follow(
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
                    record(&rt, &state, &r);
                    if let (Some(airflow), Ok(Outcome::Applied { .. })) = (&rt.airflow, &r.result) {
                        trigger_trailer_runs_for(&state, airflow, &r.tip).await;
                    }
                    state.set_ready();
                }
            }
        }

        for pr in pending.pulls.into_values() {
            let outcome = plan_pull_request(&rt, forge.as_deref(), &pr, &state).await;
            let label = match &outcome {
                Ok(true) => "planned",
                Ok(false) => "invalid",
                Err(_) => "error",
            };
            state
                .metrics
                .pull_request_plans
                .get_or_create(&OutcomeLabels { outcome: label })
                .inc();
            if let Err(e) = outcome {
                error!(
                    pull_request = pr.number,
                    repository = %pr.repository,
                    "pull request #{} of {}: {e:#}",
                    pr.number,
                    pr.repository
                );
            }
        }
    }
}

/// The server's view of a reconcile: its metrics, and the workspaces, jobs and lakehouse the API
/// serves.
fn record(rt: &Runtime, state: &AppState, r: &Reconciled) {
    state
        .metrics
        .reconcile_seconds
        .observe(r.elapsed.as_secs_f64());
    for (phase, elapsed) in rt.controller.engine.phases.laps() {
        state
            .metrics
            .reconcile_phase_seconds
            .get_or_create(&olo_server::metrics::PhaseLabels { phase })
            .observe(elapsed.as_secs_f64());
    }
    state.set_catalog(rt.controller.engine.catalog());
    state.set_lake(rt.controller.engine.lake());
    state
        .metrics
        .reconciles
        .get_or_create(&OutcomeLabels {
            outcome: r.outcome_label(),
        })
        .inc();
}

/// `olo apply`: trailers of the applied commit trigger runs too.
async fn trigger_trailer_runs(rt: &Runtime, airflow: &Arc<dyn Airflow>, tip: &Tip) {
    let state = AppState::new(
        rt.controller.engine.store.clone(),
        olo_server::ServerConfig::default(),
        Some(airflow.clone()),
    );
    state.set_catalog(rt.controller.engine.catalog());
    trigger_trailer_runs_for(&state, airflow, tip).await;
}

/// `Olo-Run: <workspace>/<job>` trailers of an applied commit trigger runs (once per commit:
/// a revision that already has runs from trailers is not triggered again after a restart).
async fn trigger_trailer_runs_for(state: &AppState, _airflow: &Arc<dyn Airflow>, tip: &Tip) {
    let rev = &tip.revision;
    for (ws, job) in olo_server::runs::trailer_runs(&rev.message) {
        let done = state
            .store
            .runs(
                &olo_reconciler::store::RunFilter {
                    workspace: Some(ws.clone()),
                    job: Some(job.clone()),
                    state: None,
                    since: None,
                    workspaces: None,
                },
                50,
                None,
            )
            .await
            .map(|runs| {
                runs.iter().any(|r| {
                    r.trigger == RunTrigger::Commit && r.revision.as_deref() == Some(&rev.sha)
                })
            })
            .unwrap_or(false);
        if done {
            continue;
        }
        let actor = format!("{} <{}>", rev.author.name, rev.author.email);
        match olo_server::runs::trigger(
            state,
            &ws,
            &job,
            olo_server::runs::RunRequest::default(),
            olo_server::runs::Trigger {
                kind: RunTrigger::Commit,
                actor: &actor,
                revision: Some(&rev.sha),
            },
        )
        .await
        {
            Ok(run) => info!(
                "{} {}: Olo-Run {ws}/{job}: triggered run {} ({})",
                rev.branch,
                short(&rev.sha),
                run.id,
                run.airflow_run_id
            ),
            Err(e) => warn!(
                "{} {}: Olo-Run {ws}/{job}: could not trigger: {}",
                rev.branch,
                short(&rev.sha),
                e.message
            ),
        }
    }
}

/// Plans a pull request's head against the live state and reports it on the pull request
/// (one upserted comment, a commit status). `Ok(false)` when the head is invalid.
async fn plan_pull_request(
    rt: &Runtime,
    forge: Option<&dyn Forge>,
    pr: &PullRequestPlan,
    state: &AppState,
) -> anyhow::Result<bool> {
    let repo_ref = forge::RepoRef::parse(&pr.repository)
        .with_context(|| format!("`{}` is not owner/name", pr.repository))?;
    if let Some(f) = forge {
        f.set_status(
            &repo_ref,
            &pr.head_sha,
            forge::StatusState::Pending,
            "olo is planning this commit",
            None,
        )
        .await?;
    }
    let repo_path = {
        let source = rt.controller.source.clone();
        let sha = pr.head_sha.clone();
        let refs = vec![format!("refs/pull/{}/head", pr.number)];
        tokio::task::spawn_blocking(move || {
            source
                .lock()
                .expect("source lock")
                .fetch_commit(&sha, &refs)
        })
        .await?
    };
    let preview = match repo_path {
        Ok(path) => rt
            .controller
            .engine
            .preview(&path, &pr.head_sha)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::Error::from(e)),
    };
    let empty = std::collections::BTreeMap::new();
    let (valid, owners, message);
    let mut impact = Vec::new();
    let outcome = match &preview {
        Ok(Preview::Valid { plan, catalog, .. }) => {
            valid = true;
            owners = catalog.owners();
            let live = state.catalog();
            state.lineage.sync(live.as_ref());
            impact = olo_reconciler::lineage::plan_impact(
                plan,
                catalog,
                live.as_deref(),
                &state.lineage.read(),
            );
            forge::PlanOutcome::Valid { plan }
        }
        Ok(Preview::Invalid { diagnostics }) => {
            valid = false;
            owners = empty.clone();
            forge::PlanOutcome::Invalid { diagnostics }
        }
        Err(e) => {
            valid = false;
            owners = empty.clone();
            message = format!("{e:#}");
            forge::PlanOutcome::Error { message: &message }
        }
    };
    let (state, description) = forge::comment::status(&outcome, &owners);
    info!(
        "pull request #{} ({}) at {}: {description}",
        pr.number,
        pr.repository,
        short(&pr.head_sha)
    );
    if let Some(f) = forge {
        let bodies = forge::comment::render(
            &forge::PlanComment {
                head_sha: &pr.head_sha,
                base_branch: &pr.base_ref,
                repo_html_url: &pr.html_url,
                outcome,
                owners: &owners,
                impact: &impact,
            },
            forge::comment::GITHUB_COMMENT_LIMIT,
        );
        f.upsert_plan_comments(&repo_ref, pr.number, &bodies)
            .await?;
        f.set_status(&repo_ref, &pr.head_sha, state, &description, None)
            .await?;
    }
    preview?;
    Ok(valid)
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
