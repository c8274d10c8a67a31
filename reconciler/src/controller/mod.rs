//! The controller: when to reconcile the tracked branch, and what to do after.
//!
//! Modelled on kube-runtime's controller. Triggers (the poll interval, file changes, webhooks,
//! the API, this controller's own requeues) only put a [`Trigger`] on the [`Queue`]; a burst
//! collapses into one reconcile of the newest commit ([`Trigger::merge`]). One worker takes the
//! queue's work and calls [`Controller::reconcile`], so two reconciles of a branch never overlap.
//!
//! A reconcile returns an [`Action`]: after a Ready reconcile the controller asks for a
//! [`Trigger::Drift`] reconcile after [`Controller::drift_every`], which reads the whole target
//! back and puts back what was changed there by hand, with no new commit. An error goes to
//! [`error_policy`], which decides by the error's [`ErrorClass`]: a temporary error is retried
//! with capped, jittered backoff; a permanent one waits for the next change (a new commit, or a
//! forced [`Trigger::Api`] once someone fixed what was wrong).

pub mod pull_request;
pub mod queue;
pub mod replicas;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use pull_request::{Live, LiveOf, PullRequestError, Verdict};
pub use queue::{Pending, PullRequestPlan, Queue, Trigger, Work};
pub use replicas::{Replicas, Role, Round, Serving};

use tracing::Instrument as _;

use crate::apply::Progress;
use crate::engine::{short, Engine, Outcome};
use crate::source::{Source, Tip};
use crate::store::StoreError;

/// A source shared by the controller and the parts of the server that read commits.
pub type SharedSource = Arc<Mutex<Box<dyn Source>>>;

/// What the controller does after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Done; nothing is scheduled (used when the controller has no periodic check).
    Ready,
    /// Reconcile again by `trigger` once the duration has passed, even with no change.
    RequeueAfter(Duration, Trigger),
    /// Wait for the next change: a new commit, or a forced trigger.
    AwaitChange,
}

/// Whether waiting helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retried with capped, jittered backoff (a network blip, a busy store, a full disk).
    Temporary,
    /// Waits for the next change (an unreadable repository, a target that refuses olo for good
    /// until someone changes its permissions).
    Permanent,
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read {source_name}")]
    Source {
        source_name: String,
        #[source]
        source: crate::Error,
    },
    #[error(transparent)]
    Reconcile(#[from] crate::Error),
    #[error("could not read the branch status")]
    Store(#[from] StoreError),
    #[error("the source task stopped")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Source { source, .. } | Error::Reconcile(source) => source.class(),
            // The state store's failure is never the commit's fault: try again.
            Error::Store(_) => ErrorClass::Temporary,
            Error::Task(_) => ErrorClass::Permanent,
        }
    }
}

/// What the controller does after `error`: a temporary one is tried again after `backoff`,
/// a permanent one waits for the next change.
pub fn error_policy(error: &Error, backoff: &mut Backoff) -> Action {
    match error.class() {
        ErrorClass::Temporary => Action::RequeueAfter(backoff.next_wait(), Trigger::Retry),
        ErrorClass::Permanent => Action::AwaitChange,
    }
}

/// Capped exponential backoff with jitter: 1 s, 2 s, 4 s, … up to 60 s, each plus up to
/// 500 ms at random; back to 1 s after a reconcile that ends without an error.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    pub first: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_secs(1),
            first: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Starts at `first`, doubles up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            next: first,
            first,
            cap,
        }
    }

    /// The wait before the next retry (and doubles the one after, up to the cap).
    pub fn next_wait(&mut self) -> Duration {
        use std::hash::{BuildHasher as _, Hasher as _};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let jitter = Duration::from_millis(random % 500);
        let wait = self.next + jitter;
        self.next = (self.next * 2).min(self.cap);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The result of one [`Controller::reconcile`].
#[derive(Debug)]
pub enum Step {
    /// The newest commit is the one reconciled last and the trigger does not force a re-apply.
    UpToDate,
    /// The branch tip could not be read; `action` is what the error policy decided.
    NoTip { error: Error, action: Action },
    /// A reconcile ran.
    Reconciled(Box<Reconciled>),
}

/// One reconcile that ran.
#[derive(Debug)]
pub struct Reconciled {
    pub trigger: Trigger,
    pub tip: Tip,
    pub result: Result<Outcome, Error>,
    pub action: Action,
    pub elapsed: Duration,
}

impl Reconciled {
    /// Whether the branch is Ready afterwards.
    pub fn ready(&self) -> bool {
        matches!(self.result, Ok(Outcome::Applied { .. }))
    }

    /// The `outcome` label of the `olo_reconciles_total` metric.
    pub fn outcome_label(&self) -> &'static str {
        match &self.result {
            Ok(Outcome::Applied { .. }) => "applied",
            Ok(Outcome::Invalid { .. }) => "invalid",
            Ok(Outcome::Failed { .. }) => "target_refused",
            Ok(Outcome::Unverified { .. }) => "unverified",
            Err(e) if e.class() == ErrorClass::Temporary => "temporary_error",
            Err(_) => "permanent_error",
        }
    }
}

/// The controller of one tracked branch: decides whether a trigger reconciles, runs the
/// reconcile, and schedules what comes next on its queue.
pub struct Controller {
    pub engine: Engine,
    pub source: SharedSource,
    pub queue: Arc<Queue>,
    /// How long after a Ready reconcile the whole target is read back (drift repair), when
    /// nothing else reconciled in between; `None`: never (`olo apply`).
    pub drift_every: Option<Duration>,
    /// The commit of the last reconcile that settled (Ready, or Stalled on an invalid commit, a
    /// refused apply or a permanent error): a trigger that does not force skips it.
    last: Option<String>,
    backoff: Backoff,
}

impl Controller {
    pub fn new(engine: Engine, source: SharedSource, queue: Arc<Queue>) -> Controller {
        Controller {
            engine,
            source,
            queue,
            drift_every: Some(crate::engine::FULL_OBSERVE_EVERY),
            last: None,
            backoff: Backoff::default(),
        }
    }

    /// With `backoff` for temporary errors instead of 1 s to 60 s.
    pub fn with_backoff(mut self, backoff: Backoff) -> Controller {
        self.backoff = backoff;
        self
    }

    /// Forgets what this replica knew of the live state as the leader (its held inventories,
    /// when it last read the targets back, the commit it settled last): another replica may lead
    /// and apply before this one leads again, so its next reconcile reads everything back.
    pub fn step_down(&mut self) {
        self.last = None;
        let engine = &mut self.engine;
        engine.last_full_observe = None;
        engine.inventory = None;
        engine.lake_inventory = None;
        engine.lake_unchanged = None;
        engine.memo = None;
        // The leader after this one may have run or kept a check: read the store's again.
        engine.unchecked = None;
        engine.unchecked_read = false;
    }

    /// Reads the branch tip (fetching a remote source first), off the async workers.
    pub async fn latest(&self) -> Result<Tip, Error> {
        latest(&self.source).await
    }

    /// Handles one (merged) trigger: reads the branch tip and reconciles it unless it was
    /// reconciled last and `trigger` does not force a re-apply; then schedules the next
    /// reconcile by the [`Action`] (a reconcile's own, or the error policy's).
    pub async fn reconcile(&mut self, trigger: Trigger, progress: Progress<'_>) -> Step {
        let tip = match self.latest().await {
            Ok(tip) => tip,
            Err(error) => {
                let action = error_policy(&error, &mut self.backoff);
                self.schedule(action);
                return Step::NoTip { error, action };
            }
        };
        if !trigger.forces() && self.last.as_deref() == Some(tip.revision.sha.as_str()) {
            return Step::UpToDate;
        }
        let rev = &tip.revision;
        let span = tracing::info_span!(
            "reconcile",
            branch = %rev.branch,
            sha = %short(&rev.sha),
            %trigger
        );
        let started = std::time::Instant::now();
        let result = self
            .reconcile_tip(&tip, trigger, progress)
            .instrument(span.clone())
            .await;
        let action = match &result {
            // Written, but the target did not answer its check: the same commit again, with
            // backoff (its check runs again, [`crate::engine::Unchecked`]).
            Ok(Outcome::Failed { retry: true, .. }) => {
                self.last = None;
                Action::RequeueAfter(self.backoff.next_wait(), Trigger::Retry)
            }
            Ok(outcome) => {
                self.backoff.reset();
                self.last = Some(tip.revision.sha.clone());
                match (outcome, self.drift_every) {
                    (Outcome::Applied { .. }, Some(every)) => {
                        Action::RequeueAfter(every, Trigger::Drift)
                    }
                    (Outcome::Applied { .. }, None) => Action::Ready,
                    // Stalled: a new commit (or a forced reconcile) is needed.
                    _ => Action::AwaitChange,
                }
            }
            Err(error) => {
                // A failed apply leaves olo's inventory ahead of the target (ownership is
                // recorded before a file is written): the next reconcile reads everything back
                // rather than trusting it.
                self.engine.last_full_observe = None;
                let action = error_policy(error, &mut self.backoff);
                // A permanent error waits for the next change: this commit counts as done.
                self.last = match action {
                    Action::AwaitChange => Some(tip.revision.sha.clone()),
                    _ => None,
                };
                action
            }
        };
        self.schedule(action);
        if let Err(e) = &result {
            let next = match action {
                Action::RequeueAfter(after, _) => format!("retry in {:.1} s", after.as_secs_f64()),
                _ => "wait for the next change".to_string(),
            };
            tracing::error!(
                parent: &span,
                error = %chain(e),
                next = %next,
                "{} {}: {}",
                rev.branch,
                short(&rev.sha),
                chain(e)
            );
        }
        Step::Reconciled(Box::new(Reconciled {
            trigger,
            tip,
            result,
            action,
            elapsed: started.elapsed(),
        }))
    }

    /// The reconcile of `tip`, logged.
    async fn reconcile_tip(
        &mut self,
        tip: &Tip,
        trigger: Trigger,
        progress: Progress<'_>,
    ) -> Result<Outcome, Error> {
        let rev = &tip.revision;
        tracing::info!(
            author = %rev.author.email,
            "reconciling {} {} by {} <{}>: {}",
            rev.branch,
            short(&rev.sha),
            rev.author.name,
            rev.author.email,
            rev.message.lines().next().unwrap_or_default()
        );
        if trigger.forces() {
            // Read the whole target back: what was changed there by hand is put back.
            self.engine.last_full_observe = None;
        }
        let started = std::time::Instant::now();
        let outcome = self.engine.reconcile(tip, progress).await?;
        match &outcome {
            Outcome::Applied { plan } => {
                let s = plan.summary();
                tracing::info!(
                    created = s.create,
                    updated = s.update,
                    deleted = s.delete,
                    kept = s.keep,
                    unchanged = s.unchanged,
                    drift = s.drift,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "{} {}: Ready ({} created, {} updated, {} deleted, {} kept, {} unchanged) in {:.1} ms",
                    rev.branch,
                    short(&rev.sha),
                    s.create,
                    s.update,
                    s.delete,
                    s.keep,
                    s.unchanged,
                    started.elapsed().as_secs_f64() * 1e3
                );
                tracing::info!(phases = %self.engine.phases, "took: {}", self.engine.phases);
            }
            Outcome::Failed { error, .. } => tracing::warn!(
                "{} {}: Stalled: the files were written but a target refused them:\n{error}",
                rev.branch,
                short(&rev.sha)
            ),
            Outcome::Unverified { signature } => {
                let status = self.engine.store.branch_status(&rev.branch).await?;
                tracing::warn!(
                    verdict = signature.label(),
                    "{}: Stalled: {}",
                    rev.branch,
                    status.and_then(|s| s.message).unwrap_or_default()
                );
            }
            Outcome::Invalid { errors } => {
                if let Some(status) = self.engine.store.branch_status(&rev.branch).await? {
                    let diagnostics =
                        serde_json::from_value::<Vec<olo_schema::Diagnostic>>(status.diagnostics)
                            .map(|d| olo_schema::diagnostic::to_text(&d))
                            .unwrap_or_default();
                    tracing::warn!(
                        errors,
                        "{diagnostics}{}: Stalled: {}",
                        rev.branch,
                        status.message.unwrap_or_default()
                    );
                }
            }
        }
        Ok(outcome)
    }

    /// Triggers the runs an applied commit's `Olo-Run:` trailers ask for (with Airflow
    /// configured); returns how many.
    pub async fn trailer_runs(
        &self,
        airflow: Option<&dyn crate::targets::airflow::Airflow>,
        r: &Reconciled,
    ) -> usize {
        let (Some(airflow), Ok(Outcome::Applied { .. })) = (airflow, &r.result) else {
            return 0;
        };
        let catalog = self.engine.catalog();
        crate::runs::Runs::new(self.engine.store.as_ref(), Some(airflow))
            .trigger_trailers(catalog.as_deref(), &r.tip.revision)
            .await
            .len()
    }

    fn schedule(&self, action: Action) {
        match action {
            Action::RequeueAfter(after, trigger) => self.queue.schedule(after, trigger),
            Action::AwaitChange => self.queue.unschedule(),
            Action::Ready => {}
        }
    }
}

pub use crate::text::chain;

/// Reads the branch tip of `source` (fetching a remote source first), off the async workers.
pub async fn latest(source: &SharedSource) -> Result<Tip, Error> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = source.lock().expect("source lock");
        s.latest().map_err(|e| Error::Source {
            source_name: s.describe(),
            source: e,
        })
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<_> = (0..9).map(|_| b.next_wait()).collect();
        for (wait, base) in waits.iter().zip([1, 2, 4, 8, 16, 32, 60, 60, 60]) {
            let base = Duration::from_secs(base);
            assert!(
                *wait >= base && *wait < base + Duration::from_millis(500),
                "{waits:?}"
            );
        }
        b.reset();
        assert!(b.next_wait() < Duration::from_secs(2));
    }

    fn sink_error(kind: std::io::ErrorKind) -> Error {
        Error::Reconcile(crate::Error::Sink {
            action: "write",
            path: "dags/w__one.py".into(),
            source: kind.into(),
        })
    }

    #[test]
    fn the_error_policy_retries_temporary_errors_and_waits_after_permanent_ones() {
        use std::io::ErrorKind;
        let mut b = Backoff::default();
        for kind in [
            ErrorKind::StorageFull,
            ErrorKind::QuotaExceeded,
            ErrorKind::TimedOut,
            ErrorKind::Interrupted,
        ] {
            assert!(
                matches!(
                    error_policy(&sink_error(kind), &mut b),
                    Action::RequeueAfter(_, Trigger::Retry)
                ),
                "{kind:?}"
            );
        }
        for kind in [ErrorKind::PermissionDenied, ErrorKind::ReadOnlyFilesystem] {
            assert_eq!(
                error_policy(&sink_error(kind), &mut b),
                Action::AwaitChange,
                "{kind:?}"
            );
        }
        // A store error is retried, whatever sqlx said.
        let store = Error::Store(StoreError::Query {
            what: "read the branch status",
            source: sqlx::Error::RowNotFound,
        });
        assert_eq!(store.class(), ErrorClass::Temporary);
        let store_in_reconcile = Error::Reconcile(crate::Error::Store(StoreError::Query {
            what: "record the revision",
            source: sqlx::Error::RowNotFound,
        }));
        assert_eq!(store_in_reconcile.class(), ErrorClass::Temporary);
        assert_eq!(
            Error::Reconcile(crate::Error::UnsafePath("../x".into())).class(),
            ErrorClass::Permanent
        );
    }
}
