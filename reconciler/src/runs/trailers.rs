//! `Olo-Run: <workspace>/<job>` commit trailers: an applied commit asks for runs of its jobs.

use crate::catalog::Catalog;
use crate::engine::short;
use crate::store::{Revision, Run, RunFilter, RunTrigger};

use super::{RunRequest, Runs, TriggeredBy};

/// `Olo-Run: <workspace>/<job>` trailers of a commit message, in order, without repeats.
pub fn trailer_runs(message: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in message.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("olo-run") {
            continue;
        }
        let Some((ws, job)) = value.trim().split_once('/') else {
            continue;
        };
        let pair = (ws.trim().to_string(), job.trim().to_string());
        if !pair.0.is_empty() && !pair.1.is_empty() && !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}

impl Runs<'_> {
    /// Triggers the runs the trailers of `rev`, an applied commit of `catalog`, ask for, once
    /// per commit: a job that already has a run from this commit's trailers is not triggered
    /// again (after a restart, or a forced re-apply). Returns the runs triggered; a run that
    /// cannot be triggered is logged and skipped.
    pub async fn trigger_trailers(&self, catalog: Option<&Catalog>, rev: &Revision) -> Vec<Run> {
        let mut triggered = Vec::new();
        for (ws, job) in trailer_runs(&rev.message) {
            let done = self
                .store
                .runs(&RunFilter::job(&ws, &job), 50, None)
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
            let by = TriggeredBy {
                kind: RunTrigger::Commit,
                actor: &actor,
                revision: Some(&rev.sha),
            };
            match self
                .trigger(catalog, &ws, &job, RunRequest::default(), by)
                .await
            {
                Ok(run) => {
                    tracing::info!(
                        run = run.id,
                        airflow_run_id = %run.airflow_run_id,
                        "{} {}: Olo-Run {ws}/{job}: triggered run {} ({})",
                        rev.branch,
                        short(&rev.sha),
                        run.id,
                        run.airflow_run_id
                    );
                    triggered.push(run);
                }
                Err(e) => tracing::warn!(
                    "{} {}: Olo-Run {ws}/{job}: could not trigger: {}",
                    rev.branch,
                    short(&rev.sha),
                    crate::controller::chain(&e)
                ),
            }
        }
        triggered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_name_runs_once_each() {
        let msg = "Add orders job\n\nSome text: here\nOlo-Run: sales/orders_daily\nolo-run:  platform/smoke_test \nOlo-Run: sales/orders_daily\nOlo-Run: nojob\nSigned-off-by: A <a@b>\n";
        assert_eq!(
            trailer_runs(msg),
            [
                ("sales".to_string(), "orders_daily".to_string()),
                ("platform".to_string(), "smoke_test".to_string())
            ]
        );
        assert!(trailer_runs("no trailers").is_empty());
    }
}
