//! The Airflow side of the DAG sink: after olo wrote DAG files, Airflow must parse them. This
//! check waits until Airflow has parsed every created or updated DAG file since the apply; an
//! import error fails the apply with Airflow's stack trace, and a parsed DAG gets the pause
//! state its job declares (`paused:`).
//!
//! Before it waits, it asks Airflow to parse the files now (unless `reparse` is off), as Airflow
//! would otherwise notice them only on its own schedule (`[dag_processor] refresh_interval` for
//! a new file, 5 minutes by default; for a changed one, when the file's turn comes again in its
//! queue, `min_file_process_interval` apart). `PUT /api/v2/parseDagFile/{file_token}` names a
//! file Airflow already knows; the DAG processor parses it first and refreshes its DAG bundle on
//! the way, which is when it finds new files. So a changed file is requested by its own token, and
//! new files are found through the request of any other DAG file of olo that Airflow knows. Best
//! effort: a request that fails is logged and the check waits as before.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::engine::{AfterApply, CheckFailed};
use crate::plan::{Action, Plan};
use crate::targets::airflow::{Airflow, ImportError};

pub struct AirflowDags {
    airflow: Arc<dyn Airflow>,
    /// How long to wait for Airflow to parse the files.
    timeout: Duration,
    /// Time between looks.
    every: Duration,
    /// Ask Airflow to parse the changed files now rather than on its own schedule.
    reparse: bool,
}

impl AirflowDags {
    pub fn new(airflow: Arc<dyn Airflow>, timeout: Duration, reparse: bool) -> AirflowDags {
        AirflowDags {
            airflow,
            timeout,
            every: Duration::from_secs(1),
            reparse,
        }
    }
}

/// How many other DAGs of olo to try when a plan only adds DAGs Airflow does not know yet: one
/// request whose file Airflow knows is enough to make it look for new files.
const MAX_ANCHOR_TRIES: usize = 3;

/// DAG ids of the DAG files a plan creates or updates (not assets, not deletes).
pub fn changed_dags(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .filter_map(|c| {
            let file = c.name.strip_prefix("dags/")?;
            (!file.contains('/')).then_some(file.strip_suffix(".py")?.to_string())
        })
        .collect()
}

/// The import error of a DAG file, if Airflow reported one after `since`.
fn import_error_of<'e>(
    errors: &'e [ImportError],
    dag_id: &str,
    since: DateTime<Utc>,
) -> Option<&'e ImportError> {
    let file = format!("{dag_id}.py");
    errors.iter().find(|e| {
        let name = e.filename.rsplit('/').next().unwrap_or(&e.filename);
        name == file && e.timestamp.is_none_or(|t| t >= since)
    })
}

enum Seen {
    Parsed { paused: bool },
    Broken(String),
}

/// What olo asked of Airflow before waiting for its parse.
#[derive(Debug, Default, PartialEq)]
struct Requested {
    /// DAGs whose file Airflow was asked to parse.
    files: Vec<String>,
    /// Changed DAGs Airflow does not know yet: found by the DAG processor's bundle refresh.
    new: Vec<String>,
    /// The other DAG of olo whose file was requested only to make Airflow look for new files.
    anchor: Option<String>,
}

impl AirflowDags {
    /// Asks Airflow to parse the files of `dag_ids` now; for DAGs it does not know yet, makes sure
    /// at least one request went out (another DAG of olo's if need be), as the DAG processor
    /// looks for new files when it takes one. Never fails: what could not be asked is logged.
    async fn request_parse(&self, dag_ids: &[String], catalog: &Catalog) -> Requested {
        let mut requested = Requested::default();
        for dag_id in dag_ids {
            match self.request_one(dag_id).await {
                Some(true) => requested.files.push(dag_id.clone()),
                Some(false) => {}
                None => requested.new.push(dag_id.clone()),
            }
        }
        if !requested.new.is_empty() && requested.files.is_empty() {
            let others = catalog
                .workspaces
                .iter()
                .flat_map(|w| w.jobs.iter())
                .map(|j| &j.dag_id)
                .filter(|id| !dag_ids.contains(id))
                .take(MAX_ANCHOR_TRIES);
            for other in others {
                if self.request_one(other).await == Some(true) {
                    requested.anchor = Some(other.clone());
                    break;
                }
            }
            if requested.anchor.is_none() {
                tracing::info!(
                    new = requested.new.len(),
                    "Airflow knows no DAG file of olo to ask it to parse: new DAG files wait for \
                     its DAG processor's next look at the folder ([dag_processor] refresh_interval)"
                );
            }
        }
        tracing::info!(
            requested = requested.files.len(),
            new = requested.new.len(),
            anchor = requested.anchor.as_deref(),
            "asked Airflow to parse the changed DAG files"
        );
        requested
    }

    /// Asks Airflow to parse the file of one DAG: `Some(true)` when asked, `Some(false)` when the
    /// request failed (logged), `None` when Airflow does not know the DAG's file.
    async fn request_one(&self, dag_id: &str) -> Option<bool> {
        let token = match self.airflow.dag(dag_id).await {
            Ok(Some(dag)) => dag.file_token?,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(
                    dag_id,
                    error = %error,
                    "could not read a DAG to ask Airflow to parse its file; it parses it on its own schedule"
                );
                return Some(false);
            }
        };
        match self.airflow.reparse_dag_file(&token).await {
            Ok(()) => Some(true),
            Err(error) => {
                tracing::warn!(
                    dag_id,
                    error = %error,
                    "could not ask Airflow to parse a DAG file; it parses it on its own schedule"
                );
                Some(false)
            }
        }
    }

    async fn look(
        &self,
        dag_id: &str,
        since: DateTime<Utc>,
        errors: &[ImportError],
        unreachable: &mut Option<String>,
    ) -> Result<Option<Seen>, String> {
        if let Some(e) = import_error_of(errors, dag_id, since) {
            return Ok(Some(Seen::Broken(e.stack_trace.clone())));
        }
        match self.airflow.dag(dag_id).await {
            Ok(Some(dag)) if dag.last_parsed_time.is_some_and(|t| t >= since) => {
                Ok(Some(Seen::Parsed {
                    paused: dag.is_paused,
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.is_temporary() => {
                *unreachable = Some(e.to_string());
                Ok(None)
            }
            Err(e) => Err(format!("Airflow refused to describe DAG {dag_id}: {e}")),
        }
    }

    /// Waits until Airflow parsed every DAG the plan creates or updates. The failure is
    /// `unanswered` when nothing was refused or broken and Airflow did not answer the last look.
    async fn check(
        &self,
        plan: &Plan,
        catalog: &Catalog,
        since: DateTime<Utc>,
    ) -> Result<(), CheckFailed> {
        let refused = |message: String| CheckFailed {
            message,
            unanswered: false,
        };
        let mut waiting = changed_dags(plan);
        if self.reparse && !waiting.is_empty() {
            self.request_parse(&waiting, catalog).await;
        }
        let mut broken: Vec<(String, String)> = Vec::new();
        let deadline = tokio::time::Instant::now() + self.timeout;
        // The last temporary error, if Airflow did not answer.
        let mut unreachable: Option<String> = None;
        while !waiting.is_empty() {
            // Whether Airflow answered is about the last round of looks.
            unreachable = None;
            let errors = match self.airflow.import_errors().await {
                Ok(e) => e,
                Err(e) if e.is_temporary() => {
                    unreachable = Some(e.to_string());
                    Vec::new()
                }
                Err(e) => {
                    return Err(refused(format!(
                        "Airflow refused to list import errors: {e}"
                    )))
                }
            };
            let mut still = Vec::new();
            for dag_id in waiting {
                match self
                    .look(&dag_id, since, &errors, &mut unreachable)
                    .await
                    .map_err(refused)?
                {
                    None => still.push(dag_id),
                    Some(Seen::Broken(trace)) => broken.push((dag_id, trace)),
                    Some(Seen::Parsed { paused }) => {
                        let want = catalog.job_by_dag_id(&dag_id).map(|j| j.paused);
                        if let Some(want) = want.filter(|w| *w != paused) {
                            self.airflow.set_paused(&dag_id, want).await.map_err(|e| {
                                CheckFailed {
                                    message: format!(
                                        "could not set DAG {dag_id} paused={want}: {e}"
                                    ),
                                    unanswered: e.is_temporary(),
                                }
                            })?;
                        }
                    }
                }
            }
            waiting = still;
            if waiting.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.every).await;
        }
        let mut out = String::new();
        for (dag_id, trace) in &broken {
            out.push_str(&format!(
                "Airflow could not import DAG {dag_id} (dags/{dag_id}.py):\n{}\n",
                trace.trim_end()
            ));
        }
        if !waiting.is_empty() {
            let why = match &unreachable {
                Some(e) => format!("Airflow did not answer: {e}"),
                None => "is its DAG processor running and reading this DAG folder?".to_string(),
            };
            out.push_str(&format!(
                "Airflow did not parse {} within {} s: {} ({why})\n",
                if waiting.len() == 1 {
                    "this DAG"
                } else {
                    "these DAGs"
                },
                self.timeout.as_secs(),
                waiting.join(", ")
            ));
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(CheckFailed {
                message: out,
                unanswered: broken.is_empty() && unreachable.is_some(),
            })
        }
    }
}

#[async_trait::async_trait]
impl AfterApply for AirflowDags {
    async fn after_apply(
        &self,
        plan: &Plan,
        catalog: &Catalog,
        applied_since: DateTime<Utc>,
    ) -> Result<(), CheckFailed> {
        self.check(plan, catalog, applied_since).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;
    use crate::targets::airflow::{
        AirflowError, Backfill, Dag, DagRun, NewBackfill, NewDagRun, TaskInstance,
    };
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// An Airflow whose DAG processor parses only what it is asked to: a file it knows, by its
    /// token; a request also makes it find the files written since its last look (its bundle
    /// refresh) on its next loop, which comes after olo's requests (here: when olo first reads
    /// the import errors). Its own schedule never comes within a test.
    #[derive(Default)]
    struct FakeAirflow {
        state: Mutex<FakeState>,
        /// Requests to parse a file answer this error's status instead.
        refuse_with: Option<u16>,
    }

    #[derive(Default)]
    struct FakeState {
        /// Answers every read with 503 (Airflow down, or restarting).
        down: bool,
        /// The DAGs it knows, by id.
        known: BTreeMap<String, Dag>,
        /// Files written that it has not found yet.
        unseen: Vec<String>,
        /// The tokens it was asked to parse, in order.
        requests: Vec<String>,
        /// A request came: the next loop refreshes the bundle.
        refresh: bool,
    }

    fn token_of(dag_id: &str) -> String {
        format!("token-of-{dag_id}")
    }

    impl FakeAirflow {
        /// Knows `known` (parsed before the apply); `unseen` are new files it has not found.
        fn with(known: &[&str], unseen: &[&str]) -> FakeAirflow {
            let fake = FakeAirflow::default();
            {
                let mut state = fake.state.lock().unwrap();
                for id in known {
                    state
                        .known
                        .insert(id.to_string(), dag(id, Some(long_ago())));
                }
                state.unseen = unseen.iter().map(|s| s.to_string()).collect();
            }
            fake
        }

        fn requests(&self) -> Vec<String> {
            self.state.lock().unwrap().requests.clone()
        }

        fn parsed_since(&self, dag_id: &str, since: DateTime<Utc>) -> bool {
            let state = self.state.lock().unwrap();
            state
                .known
                .get(dag_id)
                .and_then(|d| d.last_parsed_time)
                .is_some_and(|t| t >= since)
        }
    }

    fn long_ago() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn dag(dag_id: &str, last_parsed_time: Option<DateTime<Utc>>) -> Dag {
        Dag {
            dag_id: dag_id.into(),
            is_paused: false,
            last_parsed_time,
            relative_fileloc: Some(format!("{dag_id}.py")),
            file_token: Some(token_of(dag_id)),
        }
    }

    #[async_trait::async_trait]
    impl Airflow for FakeAirflow {
        async fn trigger_run(&self, _: &str, _: &NewDagRun<'_>) -> Result<DagRun, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn dag_run(&self, _: &str, _: &str) -> Result<DagRun, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn task_instances(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Vec<TaskInstance>, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn task_log(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: i64,
            _: i64,
        ) -> Result<String, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn dag(&self, dag_id: &str) -> Result<Option<Dag>, AirflowError> {
            let state = self.state.lock().unwrap();
            if state.down {
                return Err(unavailable());
            }
            Ok(state.known.get(dag_id).cloned())
        }
        async fn set_paused(&self, _: &str, _: bool) -> Result<(), AirflowError> {
            Ok(())
        }
        async fn clear_failed_tasks(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<DagRun, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn cancel_run(&self, _: &str, _: &str, _: &str) -> Result<DagRun, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn create_backfill(
            &self,
            _: &str,
            _: &NewBackfill<'_>,
        ) -> Result<Backfill, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn backfill_runs(
            &self,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<DagRun>, AirflowError> {
            unreachable!("not used after an apply")
        }
        async fn import_errors(&self) -> Result<Vec<ImportError>, AirflowError> {
            let mut state = self.state.lock().unwrap();
            if state.down {
                return Err(unavailable());
            }
            if std::mem::take(&mut state.refresh) {
                for id in std::mem::take(&mut state.unseen) {
                    state.known.insert(id.clone(), dag(&id, Some(Utc::now())));
                }
            }
            Ok(Vec::new())
        }
        async fn reparse_dag_file(&self, file_token: &str) -> Result<(), AirflowError> {
            let mut state = self.state.lock().unwrap();
            state.requests.push(file_token.to_string());
            if let Some(status) = self.refuse_with {
                return Err(AirflowError::Status {
                    operation: "ask Airflow to parse a DAG file",
                    status,
                    body: String::new(),
                });
            }
            let now = Some(Utc::now());
            let asked = state
                .known
                .values_mut()
                .find(|d| d.file_token.as_deref() == Some(file_token))
                .expect("a token Airflow handed out");
            asked.last_parsed_time = now;
            state.refresh = true;
            Ok(())
        }
    }

    fn plan_of(changes: &[(&str, Action)]) -> Plan {
        Plan {
            revision: None,
            changes: changes
                .iter()
                .map(|(id, action)| change(&format!("dags/{id}.py"), *action))
                .collect(),
            unchanged: 0,
        }
    }

    /// A catalog of workspace `w` with these DAGs (`w__<job>`).
    fn catalog_of(dag_ids: &[&str]) -> Catalog {
        let jobs: Vec<serde_json::Value> = dag_ids
            .iter()
            .map(|id| {
                let job = id.strip_prefix("w__").unwrap();
                serde_json::json!({
                    "name": job, "workspace": "w", "dag_id": id,
                    "path": format!("workspaces/w/jobs/{job}.yaml"), "description": null,
                    "schedule": null, "start_date": null, "end_date": null, "paused": false,
                    "tags": [], "params": [], "tasks": []
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "revision": null,
            "workspaces": [{
                "name": "w", "description": null, "path": "workspaces/w/workspace.yaml",
                "owners": [], "catalog": "lake", "warehouse": "s3://lake/w", "namespaces": [],
                "roles": {"admin": [], "operator": [], "viewer": []}, "jobs": jobs
            }]
        }))
        .unwrap()
    }

    fn unavailable() -> AirflowError {
        AirflowError::Status {
            operation: "read",
            status: 503,
            body: String::new(),
        }
    }

    fn check_with(airflow: &Arc<FakeAirflow>, reparse: bool) -> AirflowDags {
        let mut dags = AirflowDags::new(airflow.clone(), Duration::from_millis(300), reparse);
        dags.every = Duration::from_millis(10);
        dags
    }

    #[tokio::test]
    async fn a_changed_dag_is_asked_for_and_a_new_one_found_on_the_way() {
        let airflow = Arc::new(FakeAirflow::with(&["w__a", "w__b"], &["w__new"]));
        let plan = plan_of(&[("w__a", Action::Update), ("w__new", Action::Create)]);
        let since = Utc::now();

        check_with(&airflow, true)
            .after_apply(&plan, &catalog_of(&["w__a", "w__b", "w__new"]), since)
            .await
            .expect("both parsed since the apply");

        assert_eq!(
            airflow.requests(),
            [token_of("w__a")],
            "one request: the changed file's; its bundle refresh finds the new file"
        );
        assert!(airflow.parsed_since("w__new", since));
    }

    #[tokio::test]
    async fn new_dags_alone_are_found_through_another_dag_of_olo() {
        let airflow = Arc::new(FakeAirflow::with(&["w__a"], &["w__new", "w__newer"]));
        let plan = plan_of(&[("w__new", Action::Create), ("w__newer", Action::Create)]);
        let catalog = catalog_of(&["w__new", "w__newer", "w__a"]);
        let dags = check_with(&airflow, true);

        let requested = dags.request_parse(&changed_dags(&plan), &catalog).await;

        assert_eq!(
            requested,
            Requested {
                files: vec![],
                new: vec!["w__new".into(), "w__newer".into()],
                anchor: Some("w__a".into()),
            }
        );
        assert_eq!(airflow.requests(), [token_of("w__a")]);
        dags.check(&plan, &catalog, Utc::now() - chrono::Duration::seconds(1))
            .await
            .expect("the new DAGs were parsed");
    }

    #[tokio::test]
    async fn with_reparse_off_olo_only_waits() {
        let airflow = Arc::new(FakeAirflow::with(&["w__a"], &["w__new"]));
        let plan = plan_of(&[("w__a", Action::Update), ("w__new", Action::Create)]);

        let error = check_with(&airflow, false)
            .after_apply(&plan, &catalog_of(&["w__a", "w__new"]), Utc::now())
            .await
            .expect_err("this Airflow parses only on request");

        assert_eq!(airflow.requests(), Vec::<String>::new());
        assert!(
            error
                .message
                .starts_with("Airflow did not parse these DAGs within 0 s: w__a, w__new"),
            "{}",
            error.message
        );
        // Airflow answered: it is its DAG processor that did not parse (no retry on its own).
        assert!(!error.unanswered);
    }

    /// An Airflow that does not answer fails the check as `unanswered` (retried with backoff);
    /// once it answers, the same check of the same apply passes.
    #[tokio::test]
    async fn an_airflow_that_does_not_answer_fails_the_check_as_unanswered() {
        let airflow = Arc::new(FakeAirflow::with(&["w__a"], &[]));
        airflow.state.lock().unwrap().down = true;
        let plan = plan_of(&[("w__a", Action::Update)]);
        let since = Utc::now();
        let catalog = catalog_of(&["w__a"]);
        let error = check_with(&airflow, false)
            .after_apply(&plan, &catalog, since)
            .await
            .expect_err("Airflow is down");
        assert!(error.unanswered, "{}", error.message);
        assert!(
            error.message.contains("Airflow did not answer"),
            "{}",
            error.message
        );

        {
            let mut state = airflow.state.lock().unwrap();
            state.down = false;
            state.known.get_mut("w__a").unwrap().last_parsed_time = Some(Utc::now());
        }
        check_with(&airflow, false)
            .after_apply(&plan, &catalog, since)
            .await
            .expect("Airflow is back and parsed the file");
    }

    #[tokio::test]
    async fn a_refused_request_does_not_fail_the_apply_and_the_wait_stays() {
        let airflow = Arc::new(FakeAirflow {
            refuse_with: Some(500),
            ..FakeAirflow::with(&["w__a"], &[])
        });
        let plan = plan_of(&[("w__a", Action::Update)]);
        let since = Utc::now();
        // Airflow parses the file on its own schedule meanwhile.
        let own_schedule = {
            let airflow = airflow.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut state = airflow.state.lock().unwrap();
                state.known.get_mut("w__a").unwrap().last_parsed_time = Some(Utc::now());
            })
        };

        check_with(&airflow, true)
            .after_apply(&plan, &catalog_of(&["w__a"]), since)
            .await
            .expect("the refused request is only logged");

        own_schedule.await.unwrap();
        assert_eq!(airflow.requests(), [token_of("w__a")]);
    }

    #[tokio::test]
    async fn with_no_dag_of_olo_known_nothing_is_asked() {
        let airflow = Arc::new(FakeAirflow::with(&["other__x"], &["w__new"]));
        let plan = plan_of(&[("w__new", Action::Create)]);
        let dags = check_with(&airflow, true);

        let requested = dags
            .request_parse(&changed_dags(&plan), &catalog_of(&["w__new"]))
            .await;

        assert_eq!(requested.anchor, None);
        assert_eq!(airflow.requests(), Vec::<String>::new());
    }

    fn change(name: &str, action: Action) -> Change {
        Change {
            name: name.into(),
            action,
            hash: String::new(),
            diff: None,
            reason: None,
        }
    }

    #[test]
    fn only_created_or_updated_dag_files_are_checked() {
        let plan = Plan {
            revision: None,
            changes: vec![
                change("dags/a__b.py", Action::Create),
                change("dags/c__d.py", Action::Update),
                change("dags/e__f.py", Action::Delete),
                change("dags/olo_assets/a/q.sql", Action::Create),
                change("trino/rules.json", Action::Update),
            ],
            unchanged: 0,
        };
        assert_eq!(changed_dags(&plan), ["a__b", "c__d"]);
    }

    #[test]
    fn import_errors_match_by_file_name_and_time() {
        let t0 = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let errors = vec![ImportError {
            filename: "/opt/airflow/dags/a__b.py".into(),
            stack_trace: "Traceback ...".into(),
            timestamp: Some(t0),
        }];
        assert!(import_error_of(&errors, "a__b", t0).is_some());
        assert!(import_error_of(&errors, "b", t0).is_none());
        let later = t0 + chrono::Duration::seconds(1);
        assert!(
            import_error_of(&errors, "a__b", later).is_none(),
            "an error older than the apply is about the previous file"
        );
    }
}
