//! Work handed from the request path to the one worker of the tracked branch. Requests never
//! reconcile inline: they record what is wanted here and wake the worker. A burst collapses: many
//! reconcile requests leave one pending reconcile, and many pushes to one pull request leave one
//! pending plan of its newest head.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::Notify;

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

/// What the worker has to do next.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Why a reconcile of the tracked branch was asked for (the first reason of a burst).
    pub reconcile: Option<&'static str>,
    /// Pull requests to plan, newest head per pull request.
    pub pulls: BTreeMap<(String, u64), PullRequestPlan>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.reconcile.is_none() && self.pulls.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Queue {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Queue {
    /// Asks for a reconcile of the tracked branch.
    pub fn reconcile(&self, reason: &'static str) {
        let mut p = self.pending.lock().expect("queue lock");
        p.reconcile.get_or_insert(reason);
        drop(p);
        self.wake.notify_one();
    }

    /// Asks for a plan of a pull request's head (replacing an older head of the same one).
    pub fn plan_pull(&self, pr: PullRequestPlan) {
        let mut p = self.pending.lock().expect("queue lock");
        p.pulls.insert((pr.repository.clone(), pr.number), pr);
        drop(p);
        self.wake.notify_one();
    }

    /// Takes everything pending, waiting until something is.
    pub async fn next(&self) -> Pending {
        loop {
            {
                let mut p = self.pending.lock().expect("queue lock");
                if !p.is_empty() {
                    return std::mem::take(&mut *p);
                }
            }
            self.wake.notified().await;
        }
    }

    /// Takes what is pending now, without waiting.
    pub fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().expect("queue lock"))
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
        q.reconcile("push");
        q.reconcile("poll");
        q.plan_pull(pr(1, "a"));
        q.plan_pull(pr(1, "b"));
        q.plan_pull(pr(2, "c"));
        let p = q.next().await;
        assert_eq!(p.reconcile, Some("push"));
        let heads: Vec<_> = p.pulls.values().map(|p| p.head_sha.as_str()).collect();
        assert_eq!(heads, ["b", "c"]);
        assert!(q.take().is_empty());
    }

    #[tokio::test]
    async fn next_waits_for_work() {
        let q = std::sync::Arc::new(Queue::default());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        q.reconcile("api");
        assert_eq!(waiter.await.unwrap().reconcile, Some("api"));
    }
}
