//! Several `olo serve` replicas on one PostgreSQL state store.
//!
//! Exactly one leads ([`crate::leader`]: a PostgreSQL advisory lock): it reconciles, plans pull
//! requests and follows runs in Airflow. Every replica serves the API, the webhooks and the
//! dashboard. A follower hands what it is asked for (a push, a pull request, an API reconcile
//! request) to the leader through the store's work queue, which the leader drains every second;
//! webhook deliveries are de-duplicated in the store, so a delivery retried at another replica is
//! still done once. A follower serves the revision the leader applied: when the store says a new
//! one is live, it fetches the source and reads that commit's workspaces and jobs.
//!
//! Observed lineage recorded by any replica is read by all every 5 seconds.
//!
//! With a SQLite store there is one replica and none of this runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use super::{chain, Controller, Pending, Trigger, Work};
use crate::catalog::Catalog;
use crate::engine::short;
use crate::lakehouse::Desired;
use crate::leader::Election;
use crate::lineage::live::Lineage;
use crate::store::Store;

/// How often the main loop looks at the work queue and the applied revision.
pub const BEAT: Duration = Duration::from_secs(1);
/// How often a follower tries to take the lead, and the leader checks it still has it.
const ELECTION: Duration = Duration::from_secs(2);
/// Longest wait for PostgreSQL to answer an election query (a connection to a server that is
/// cut off may otherwise hang for minutes); a leader whose check times out stops leading.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a replica reads the observed lineage other replicas took in.
const LINEAGE_RELOAD: Duration = Duration::from_secs(5);

/// A replica's part when several `olo serve` share one PostgreSQL store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The only one (SQLite store): it does everything.
    Single = 0,
    /// Reconciles, plans pull requests, follows runs in Airflow; serves like every replica.
    Leader = 1,
    /// Serves the API, webhooks and dashboard; hands work to the leader through the store.
    Follower = 2,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// What a replica serves, as the controller sees it (the HTTP server's state).
pub trait Serving: Send + Sync {
    /// This replica's part (the server counts leadership changes from it).
    fn set_role(&self, role: Role);
    /// The catalog served now (`None` before the first valid commit).
    fn catalog(&self) -> Option<Arc<Catalog>>;
    /// Serves a revision the leader applied, and is ready from now on.
    fn serve(&self, catalog: Arc<Catalog>, lake: Arc<Desired>);
}

/// What the main loop does after a [`Replicas::step`].
pub enum Round {
    /// Reconcile and plan as usual (`took_over`: this replica has just become the leader).
    Lead { took_over: bool },
    /// Nothing more this round: the leader does the work.
    Follow,
    /// This replica led until its lock session broke (PostgreSQL stopped, or the network to it):
    /// stop everything only the leader does and forget the live state it held
    /// ([`Controller::step_down`]). It follows from the next round and leads again once it gets
    /// the lock back (when PostgreSQL is back, if no other replica took the lead meanwhile).
    SteppedDown,
}

/// Why a replica could not join the election.
#[derive(Debug, thiserror::Error)]
#[error("state.database is not a PostgreSQL URL olo can use for leader election")]
pub struct JoinError(#[from] sqlx::Error);

pub struct Replicas {
    /// The tracked branch, whose applied revision a follower serves.
    branch: String,
    serving: Arc<dyn Serving>,
    store: Arc<dyn Store>,
    lineage: Arc<Lineage>,
    leading: watch::Receiver<bool>,
    was_leading: bool,
    /// The applied revision whose workspaces and jobs this follower serves.
    loaded: Option<String>,
    resign: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    lineage_read: Instant,
}

impl Replicas {
    /// Joins the election of `branch` on the PostgreSQL store at `database_url`; `None` for a
    /// SQLite store (one replica, nothing to elect).
    pub async fn start(
        database_url: &str,
        branch: &str,
        serving: Arc<dyn Serving>,
        store: Arc<dyn Store>,
        lineage: Arc<Lineage>,
    ) -> Result<Option<Replicas>, JoinError> {
        if !database_url.starts_with("postgres") {
            return Ok(None);
        }
        let mut election = Election::new(database_url, branch)?;
        serving.set_role(Role::Follower);
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
        let (resign, resigned) = oneshot::channel::<()>();
        let task = tokio::spawn(campaign(election, tx, resigned));
        Ok(Some(Replicas {
            branch: branch.to_string(),
            serving,
            store,
            lineage,
            leading,
            was_leading: false,
            loaded: None,
            resign: Some(resign),
            task: Some(task),
            lineage_read: Instant::now(),
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

    /// Resolves when this replica, leading now, stops leading (its lock session broke): what it
    /// is doing as the leader (a reconcile) is to be dropped at once.
    pub fn lost_lead(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut leading = self.leading.clone();
        async move {
            let _ = leading.wait_for(|leads| !*leads).await;
        }
    }

    /// One round: the leader adds the work other replicas handed over to `pending`; a follower
    /// hands its `pending` over and serves the newest applied revision.
    pub async fn step(&mut self, controller: &Controller, pending: &mut Pending) -> Round {
        if self.was_leading && !*self.leading.borrow() {
            self.was_leading = false;
            self.loaded = None;
            self.serving.set_role(Role::Follower);
            return Round::SteppedDown;
        }
        // OpenLineage events reach any replica; each adds what the others recorded (edges are
        // flags on a set: reading them again changes nothing).
        if self.lineage_read.elapsed() >= LINEAGE_RELOAD {
            self.lineage_read = Instant::now();
            if let Err(e) = self.lineage.load(self.store.as_ref()).await {
                warn!("olo serve: could not read the observed lineage: {e}");
            }
            let catalog = self.serving.catalog();
            if let Err(e) = self
                .lineage
                .replay_with(catalog.as_ref(), self.store.as_ref())
                .await
            {
                warn!("olo serve: could not read the lineage events back: {e}");
            }
        }
        if *self.leading.borrow() {
            let took_over = !self.was_leading;
            if took_over {
                self.was_leading = true;
                self.serving.set_role(Role::Leader);
                // Catch up with whatever the previous leader left undone.
                pending.ask(Trigger::TookOver);
            }
            match self.store.take_work(100).await {
                Ok(work) => {
                    for (kind, payload) in work {
                        match Work::from_row(&kind, payload) {
                            Ok(work) => pending.add(work),
                            Err(e) => error!("olo serve: {}, dropped", chain(&e)),
                        }
                    }
                }
                Err(e) => warn!("olo serve: could not read the work queue: {e}"),
            }
            return Round::Lead { took_over };
        }
        if let Some(reason) = pending.reconcile.take() {
            // Polls, retries and drift checks are the leader's own business.
            if reason.handed_to_leader() {
                self.hand_over(Work::Reconcile { reason }).await;
            }
        }
        for pr in std::mem::take(&mut pending.pulls).into_values() {
            self.hand_over(Work::Plan(pr)).await;
        }
        self.follow(controller).await;
        Round::Follow
    }

    async fn hand_over(&self, work: Work) {
        let (kind, payload) = work.to_row();
        if let Err(e) = self.store.push_work(&kind, &payload).await {
            error!("olo serve: could not hand {kind} work to the leader: {e}");
        }
    }

    /// Serves the revision the leader applied last.
    async fn follow(&mut self, controller: &Controller) {
        let applied = match self.store.branch_status(&self.branch).await {
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
        let tip = match controller.latest().await {
            Ok(tip) => tip,
            Err(e) => {
                warn!("olo serve: {}", chain(&e));
                return;
            }
        };
        match controller.engine.view(&tip.repo, &applied).await {
            Ok(Some((catalog, lake))) => {
                self.serving.serve(catalog, lake);
                info!("olo serve: serving {} (applied by the leader)", short(&applied));
                self.loaded = Some(applied);
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

/// Holds the lead, or tries to take it, until told to resign. A leader whose lock session breaks
/// (or does not answer within [`ELECTION_TIMEOUT`]) stops leading at once and campaigns again.
async fn campaign(
    mut election: Election,
    leading: watch::Sender<bool>,
    mut resigned: oneshot::Receiver<()>,
) {
    use tokio::time::timeout;
    loop {
        if election.is_leader() {
            let alive = timeout(ELECTION_TIMEOUT, election.still_leading()).await;
            if alive != Ok(true) {
                election.abandon();
                let _ = leading.send(false);
                error!("olo serve: lost the lead (the PostgreSQL session holding the lock broke; another replica may lead already): stopped leading at once; this replica follows and leads again when it gets the lock back");
            }
        } else {
            match timeout(ELECTION_TIMEOUT, election.try_lead()).await {
                Ok(Ok(true)) => {
                    info!("olo serve: this replica leads now");
                    let _ = leading.send(true);
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    warn!(
                        "olo serve: leader election: PostgreSQL did not answer ({e}); trying again"
                    )
                }
                Err(_) => {
                    election.abandon();
                    warn!(
                        "olo serve: leader election: PostgreSQL did not answer within {} s; trying again",
                        ELECTION_TIMEOUT.as_secs()
                    )
                }
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
}
