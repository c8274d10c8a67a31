//! Several `olo serve` replicas on one PostgreSQL state store.
//!
//! Exactly one leads ([`olo_reconciler::leader`]: a PostgreSQL advisory lock): it reconciles,
//! plans pull requests and follows runs in Airflow. Every replica serves the API, the webhooks and
//! the dashboard. A follower hands what it is asked for (a push, a pull request, an API reconcile
//! request) to the leader through the store's work queue, which the leader drains every second;
//! webhook deliveries are de-duplicated in the store, so a delivery retried at another replica is
//! still done once. A follower serves the revision the leader applied: when the store says a new
//! one is live, it fetches the source and reads that commit's workspaces and jobs.
//!
//! Observed lineage recorded by any replica is read by all every 5 seconds.
//!
//! With a SQLite store there is one replica and none of this runs.

use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::controller::{Pending, Trigger, Work};
use olo_reconciler::engine::short;
use olo_reconciler::leader::Election;
use olo_server::{AppState, Role};
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use crate::components::Runtime;
use crate::settings::Settings;

/// How often the main loop looks at the work queue and the applied revision.
pub const BEAT: Duration = Duration::from_secs(1);
/// How often a follower tries to take the lead, and the leader checks it still has it.
const ELECTION: Duration = Duration::from_secs(2);
/// Exit code of a leader whose lock session broke (a supervisor restarts it as a follower).
const LOST_LEAD: i32 = 3;
/// How often a replica reads the observed lineage other replicas took in.
const LINEAGE_RELOAD: Duration = Duration::from_secs(5);

/// What the main loop does after a [`Replicas::step`].
pub enum Step {
    /// Reconcile and plan as usual (`took_over`: this replica has just become the leader).
    Lead { took_over: bool },
    /// Nothing more this round: the leader does the work.
    Follow,
}

pub struct Replicas {
    leading: watch::Receiver<bool>,
    was_leading: bool,
    /// The applied revision whose workspaces and jobs this follower serves.
    loaded: Option<String>,
    resign: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    lineage_read: std::time::Instant,
}

impl Replicas {
    /// Joins the election when the store is PostgreSQL; `None` for a SQLite store.
    pub async fn start(settings: &Settings, state: &AppState) -> anyhow::Result<Option<Replicas>> {
        let url = settings.database_url();
        if !url.starts_with("postgres") {
            return Ok(None);
        }
        let mut election = Election::new(&url, &state.config.branch)
            .context("state.database is not a PostgreSQL URL olo can use for leader election")?;
        state.set_role(Role::Follower);
        // Try at once, so a replica alone (or the first one up) leads from its first round and,
        // like a single olo, is ready only after its first reconcile.
        let leads = match election.try_lead().await {
            Ok(leads) => leads,
            Err(e) => {
                warn!("olo serve: leader election: PostgreSQL did not answer ({e}); trying again");
                false
            }
        };
        if leads {
            info!("olo serve: this replica leads now");
        } else {
            info!("olo serve: PostgreSQL store: another replica leads (advisory lock); this one follows until it gets the lead");
        }
        let (tx, leading) = watch::channel(leads);
        let (resign, mut resigned) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                if election.is_leader() {
                    if !election.still_leading().await {
                        error!("olo serve: lost the lead (the PostgreSQL session holding the lock broke; another replica may lead already): exiting, a restart rejoins as a follower");
                        std::process::exit(LOST_LEAD);
                    }
                } else {
                    match election.try_lead().await {
                        Ok(true) => {
                            info!("olo serve: this replica leads now");
                            let _ = tx.send(true);
                        }
                        Ok(false) => {}
                        Err(e) => warn!(
                            "olo serve: leader election: PostgreSQL did not answer ({e}); trying again"
                        ),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(ELECTION) => {}
                    _ = &mut resigned => {
                        election.resign().await;
                        return;
                    }
                }
            }
        });
        Ok(Some(Replicas {
            leading,
            was_leading: false,
            loaded: None,
            resign: Some(resign),
            task: Some(task),
            lineage_read: std::time::Instant::now(),
        }))
    }

    /// Gives the lead up on shutdown, so another replica takes over without waiting.
    pub async fn resign(&mut self) {
        if let Some(r) = self.resign.take() {
            let _ = r.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// One round: the leader adds the work other replicas handed over to `pending`; a follower
    /// hands its `pending` over and serves the newest applied revision.
    pub async fn step(&mut self, rt: &Runtime, state: &AppState, pending: &mut Pending) -> Step {
        // OpenLineage events reach any replica; each adds what the others recorded (edges are
        // flags on a set: reading them again changes nothing).
        if self.lineage_read.elapsed() >= LINEAGE_RELOAD {
            self.lineage_read = std::time::Instant::now();
            if let Err(e) = state.lineage.load(state.store.as_ref()).await {
                warn!("olo serve: could not read the observed lineage: {e}");
            }
            let catalog = state.catalog();
            if let Err(e) = state
                .lineage
                .replay_with(catalog.as_ref(), state.store.as_ref())
                .await
            {
                warn!("olo serve: could not read the lineage events back: {e}");
            }
        }
        if *self.leading.borrow() {
            let took_over = !self.was_leading;
            if took_over {
                self.was_leading = true;
                state.set_role(Role::Leader);
                // Catch up with whatever the previous leader left undone.
                pending.ask(Trigger::TookOver);
            }
            match state.store.take_work(100).await {
                Ok(work) => {
                    for (kind, payload) in work {
                        match Work::from_row(&kind, payload) {
                            Ok(work) => pending.add(work),
                            Err(e) => error!(
                                "olo serve: {}, dropped",
                                olo_reconciler::controller::chain(&e)
                            ),
                        }
                    }
                }
                Err(e) => warn!("olo serve: could not read the work queue: {e}"),
            }
            return Step::Lead { took_over };
        }
        if let Some(reason) = pending.reconcile.take() {
            // Polls, retries and drift checks are the leader's own business.
            if reason.handed_to_leader() {
                self.hand_over(state, Work::Reconcile { reason }).await;
            }
        }
        for pr in std::mem::take(&mut pending.pulls).into_values() {
            self.hand_over(state, Work::Plan(pr)).await;
        }
        self.follow(rt, state).await;
        Step::Follow
    }

    async fn hand_over(&self, state: &AppState, work: Work) {
        let (kind, payload) = work.to_row();
        if let Err(e) = state.store.push_work(&kind, &payload).await {
            error!("olo serve: could not hand {kind} work to the leader: {e}");
        }
    }

    /// Serves the revision the leader applied last.
    async fn follow(&mut self, rt: &Runtime, state: &AppState) {
        let applied = match state.store.branch_status(&state.config.branch).await {
            Ok(status) => status.and_then(|s| s.last_applied),
            Err(e) => {
                warn!("olo serve: could not read the branch status: {e}");
                return;
            }
        };
        // Nothing applied yet: not ready, like a leader before its first reconcile.
        let Some(applied) = applied else { return };
        if self.loaded.as_deref() == Some(applied.as_str()) {
            return;
        }
        let tip = match rt.controller.latest().await {
            Ok(tip) => tip,
            Err(e) => {
                warn!("olo serve: {}", olo_reconciler::controller::chain(&e));
                return;
            }
        };
        match rt.controller.engine.view(&tip.repo, &applied).await {
            Ok(Some((catalog, lake))) => {
                state.set_catalog(Some(catalog));
                state.set_lake(lake);
                info!("olo serve: serving {} (applied by the leader)", short(&applied));
                self.loaded = Some(applied);
                state.set_ready();
            }
            Ok(None) => warn!(
                "olo serve: the applied commit {} is not valid with this replica's olo (a different version?)",
                short(&applied)
            ),
            Err(e) => warn!(
                "olo serve: could not read the applied commit {}: {e:#}",
                short(&applied)
            ),
        }
    }
}
