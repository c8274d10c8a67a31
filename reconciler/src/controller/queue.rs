//! Work handed from the request path to the one worker of the tracked branch. Requests never
//! reconcile inline: they record what is wanted here and wake the worker. A burst collapses: many
//! reconcile requests leave one pending reconcile (its [`Trigger`] chosen by
//! [`Trigger::merge`]), and many pushes to one pull request leave one pending plan of its newest
//! head. The controller's own requeue (a retry, the periodic drift check) is one scheduled
//! trigger that [`Queue::next`] hands out when it is due.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a reconcile of the tracked branch was asked for.
///
/// The merge rule ([`Trigger::merge`]): triggers that arrive before the worker takes them
/// collapse into one. The first trigger of a burst names the reconcile, unless a later one
/// [forces](Trigger::forces) a re-apply and the first does not: then the forcing one wins, so a
/// forced request is never lost behind a pending poll, push or retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Trigger {
    /// The source's poll interval.
    #[serde(rename = "poll")]
    Poll,
    /// Files under a local source changed.
    #[serde(rename = "change")]
    FileChange,
    /// A push webhook for the tracked branch.
    #[serde(rename = "push")]
    Push,
    /// `POST /api/v1/reconcile`: re-apply the newest commit even if nothing changed.
    #[serde(rename = "api")]
    Api,
    /// The retry of a reconcile that failed with a temporary error.
    #[serde(rename = "retry")]
    Retry,
    /// This replica has just become the leader: catch up with what the previous one left.
    #[serde(rename = "leader")]
    TookOver,
    /// The periodic full read-back of the target: puts back what was changed there by hand.
    #[serde(rename = "drift")]
    Drift,
}

impl Trigger {
    /// The name in logs and in the replicas' work queue.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::FileChange => "change",
            Trigger::Push => "push",
            Trigger::Api => "api",
            Trigger::Retry => "retry",
            Trigger::TookOver => "leader",
            Trigger::Drift => "drift",
        }
    }

    /// Whether this trigger reconciles the newest commit even when it is the commit reconciled
    /// last, reading the whole target back (so drift is found and repaired). Other triggers
    /// reconcile only a commit not reconciled yet.
    pub fn forces(self) -> bool {
        matches!(self, Trigger::Api | Trigger::Drift)
    }

    /// Whether a follower replica hands this trigger to the leader (polls, retries and drift
    /// checks are the leader's own business).
    pub fn handed_to_leader(self) -> bool {
        matches!(self, Trigger::Push | Trigger::Api)
    }

    /// One trigger for `self` and a `later` one of the same burst (the merge rule above).
    pub fn merge(self, later: Trigger) -> Trigger {
        if later.forces() && !self.forces() {
            later
        } else {
            self
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pull request whose head commit should be planned (not applied).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PullRequestPlan {
    /// `owner/name` of the base repository.
    pub repository: String,
    /// `https://github.com/owner/name`
    pub html_url: String,
    pub number: u64,
    pub head_sha: String,
    pub base_ref: String,
}

/// Work a follower replica hands to the leader through the store's work queue. In the store a
/// piece of work is a kind (`reconcile`, `plan`) and a JSON payload ([`Work::to_row`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Work {
    /// Reconcile the tracked branch.
    Reconcile { reason: Trigger },
    /// Plan a pull request's head.
    Plan(PullRequestPlan),
}

/// A row of the store's work queue that is no [`Work`] (written by another version of olo?).
#[derive(Debug, thiserror::Error)]
#[error("unreadable {kind:?} work in the work queue")]
pub struct UnreadableWork {
    pub kind: String,
    #[source]
    pub source: serde_json::Error,
}

impl Work {
    /// The kind and payload the store keeps.
    pub fn to_row(&self) -> (String, serde_json::Value) {
        let mut row = serde_json::to_value(self).expect("work serializes");
        let kind = row["kind"].as_str().unwrap_or_default().to_string();
        (kind, row["payload"].take())
    }

    /// The work of a store row.
    pub fn from_row(kind: &str, payload: serde_json::Value) -> Result<Work, UnreadableWork> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload })).map_err(
            |source| UnreadableWork {
                kind: kind.to_string(),
                source,
            },
        )
    }
}

/// What the worker has to do next.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Why a reconcile of the tracked branch was asked for (merged by [`Trigger::merge`]).
    pub reconcile: Option<Trigger>,
    /// Pull requests to plan, newest head per pull request.
    pub pulls: BTreeMap<(String, u64), PullRequestPlan>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.reconcile.is_none() && self.pulls.is_empty()
    }

    /// Asks for a reconcile, merged with one already pending.
    pub fn ask(&mut self, trigger: Trigger) {
        self.reconcile = Some(match self.reconcile {
            Some(first) => first.merge(trigger),
            None => trigger,
        });
    }

    /// Adds a plan of a pull request's head (replacing an older head of the same one).
    pub fn plan(&mut self, pr: PullRequestPlan) {
        self.pulls.insert((pr.repository.clone(), pr.number), pr);
    }

    /// Adds one piece of work.
    pub fn add(&mut self, work: Work) {
        match work {
            Work::Reconcile { reason } => self.ask(reason),
            Work::Plan(pr) => self.plan(pr),
        }
    }

    /// Adds the work of `later`, pending after this.
    pub fn extend(&mut self, later: Pending) {
        if let Some(t) = later.reconcile {
            self.ask(t);
        }
        self.pulls.extend(later.pulls);
    }
}

#[derive(Debug, Default)]
struct Inner {
    pending: Pending,
    /// The controller's requeue: a trigger and when it is due (one at a time, the newest wins).
    scheduled: Option<(Instant, Trigger)>,
}

#[derive(Debug, Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    wake: Notify,
}

impl Queue {
    /// Asks for a reconcile of the tracked branch.
    pub fn reconcile(&self, trigger: Trigger) {
        self.inner.lock().expect("queue lock").pending.ask(trigger);
        self.wake.notify_one();
    }

    /// Adds a piece of work (a reconcile or a plan).
    pub fn add(&self, work: Work) {
        self.inner.lock().expect("queue lock").pending.add(work);
        self.wake.notify_one();
    }

    /// Asks for a plan of a pull request's head (replacing an older head of the same one).
    pub fn plan_pull(&self, pr: PullRequestPlan) {
        self.inner.lock().expect("queue lock").pending.plan(pr);
        self.wake.notify_one();
    }

    /// Asks for a reconcile by `trigger` once `after` has passed, replacing what was scheduled.
    pub fn schedule(&self, after: Duration, trigger: Trigger) {
        self.inner.lock().expect("queue lock").scheduled = Some((Instant::now() + after, trigger));
        self.wake.notify_one();
    }

    /// Drops the scheduled reconcile, if any.
    pub fn unschedule(&self) {
        self.inner.lock().expect("queue lock").scheduled = None;
    }

    /// When the scheduled reconcile is due, and its trigger.
    pub fn scheduled(&self) -> Option<(Instant, Trigger)> {
        self.inner.lock().expect("queue lock").scheduled
    }

    /// Takes everything pending, waiting until something is (or the scheduled reconcile is due).
    pub async fn next(&self) -> Pending {
        loop {
            let due = {
                let mut inner = self.inner.lock().expect("queue lock");
                Self::move_due(&mut inner);
                if !inner.pending.is_empty() {
                    return std::mem::take(&mut inner.pending);
                }
                inner.scheduled.map(|(at, _)| at)
            };
            match due {
                Some(at) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// Takes what is pending now (a due scheduled reconcile too), without waiting.
    pub fn take(&self) -> Pending {
        let mut inner = self.inner.lock().expect("queue lock");
        Self::move_due(&mut inner);
        std::mem::take(&mut inner.pending)
    }

    fn move_due(inner: &mut Inner) {
        if let Some((at, trigger)) = inner.scheduled {
            if at <= Instant::now() {
                inner.scheduled = None;
                inner.pending.ask(trigger);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(number: u64, sha: &str) -> PullRequestPlan {
        PullRequestPlan {
            repository: "o/r".into(),
            html_url: "https://github.com/o/r".into(),
            number,
            head_sha: sha.into(),
            base_ref: "main".into(),
        }
    }

    #[tokio::test]
    async fn a_burst_collapses_into_one_reconcile_and_the_newest_head_per_pull_request() {
        let q = Queue::default();
        q.reconcile(Trigger::Push);
        q.reconcile(Trigger::Poll);
        q.plan_pull(pr(1, "a"));
        q.plan_pull(pr(1, "b"));
        q.plan_pull(pr(2, "c"));
        let p = q.next().await;
        assert_eq!(p.reconcile, Some(Trigger::Push));
        let heads: Vec<_> = p.pulls.values().map(|p| p.head_sha.as_str()).collect();
        assert_eq!(heads, ["b", "c"]);
        assert!(q.take().is_empty());
    }

    #[tokio::test]
    async fn a_forced_reconcile_is_never_lost_behind_a_pending_one() {
        for first in [
            Trigger::Poll,
            Trigger::FileChange,
            Trigger::Push,
            Trigger::Retry,
            Trigger::TookOver,
        ] {
            let q = Queue::default();
            q.reconcile(first);
            q.reconcile(Trigger::Api);
            q.reconcile(Trigger::Poll);
            assert_eq!(
                q.next().await.reconcile,
                Some(Trigger::Api),
                "after {first}"
            );
        }
        // Two forced ones: the first names the reconcile.
        let q = Queue::default();
        q.reconcile(Trigger::Drift);
        q.reconcile(Trigger::Api);
        assert_eq!(q.take().reconcile, Some(Trigger::Drift));
    }

    #[tokio::test]
    async fn next_waits_for_work() {
        let q = std::sync::Arc::new(Queue::default());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        q.reconcile(Trigger::Api);
        assert_eq!(waiter.await.unwrap().reconcile, Some(Trigger::Api));
    }

    #[tokio::test]
    async fn a_scheduled_reconcile_is_handed_out_when_due_and_the_newest_schedule_wins() {
        let q = Queue::default();
        q.schedule(Duration::from_secs(3600), Trigger::Drift);
        assert!(q.take().is_empty(), "not due yet");
        q.schedule(Duration::from_millis(20), Trigger::Retry);
        assert_eq!(q.next().await.reconcile, Some(Trigger::Retry));
        assert_eq!(q.scheduled(), None, "handed out once");

        q.schedule(Duration::from_millis(1), Trigger::Drift);
        q.unschedule();
        q.reconcile(Trigger::Poll);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(q.next().await.reconcile, Some(Trigger::Poll));
        assert!(q.take().is_empty());
    }

    #[test]
    fn handed_over_work_keeps_the_store_format_and_joins_the_pending_work() {
        let work = Work::Reconcile {
            reason: Trigger::Api,
        };
        let (kind, payload) = work.to_row();
        assert_eq!(
            (kind.as_str(), payload.clone()),
            ("reconcile", serde_json::json!({"reason": "api"}))
        );
        assert_eq!(Work::from_row(&kind, payload).unwrap(), work);
        let (kind, _) = Work::Plan(pr(7, "a")).to_row();
        assert_eq!(kind, "plan");

        let mut p = Pending::default();
        let row = |reason: &str| {
            Work::from_row("reconcile", serde_json::json!({ "reason": reason })).unwrap()
        };
        p.add(row("push"));
        assert_eq!(p.reconcile, Some(Trigger::Push));
        p.add(row("api"));
        assert_eq!(
            p.reconcile,
            Some(Trigger::Api),
            "an API request forces a re-apply"
        );
        p.add(row("push"));
        assert_eq!(p.reconcile, Some(Trigger::Api));
        for (kind, payload) in [
            Work::Plan(pr(7, "a")).to_row(),
            Work::Plan(pr(7, "b")).to_row(),
        ] {
            p.add(Work::from_row(&kind, payload).unwrap());
        }
        assert!(Work::from_row("plan", serde_json::json!({"not": "a plan"})).is_err());
        assert!(Work::from_row("bogus", serde_json::json!({})).is_err());
        assert_eq!(p.pulls.len(), 1);
        assert_eq!(p.pulls[&("o/r".to_string(), 7)].head_sha, "b");
    }
}
