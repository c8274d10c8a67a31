//! The runs pages: the filtered list, a run with its task timeline and MLflow runs, and a task's
//! log from Airflow.

use super::*;

/// The time windows offered by the runs filter: query value, label, length in hours.
pub(super) const WINDOWS: &[(&str, &str, i64)] = &[
    ("1h", "last hour", 1),
    ("24h", "last 24 hours", 24),
    ("7d", "last 7 days", 24 * 7),
    ("30d", "last 30 days", 24 * 30),
];

/// The length of a runs filter time window (`24h`), `None` for one the page does not offer.
pub(super) fn since_window(w: &str) -> Option<Duration> {
    WINDOWS
        .iter()
        .find(|(k, _, _)| *k == w)
        .map(|(_, _, hours)| Duration::hours(*hours))
}

/// The run states offered by the filter (Airflow's DAG run states).
pub(super) const RUN_STATES: &[&str] = &["queued", "running", "success", "failed"];

pub(super) async fn runs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> PageResult {
    match given(&q.workspace) {
        Some(ws) => gate(&state, &caller, Need::Workspace(&ws, Role::Viewer)).await?,
        None => gate(&state, &caller, Need::Read).await?,
    }
    let before = id_cursor(&q)?;
    let window = given(&q.since);
    let since = match window.as_deref() {
        None => None,
        Some(w) => Some(
            Utc::now()
                - since_window(w).ok_or_else(|| PageError {
                    status: StatusCode::BAD_REQUEST,
                    title: "Bad request",
                    message: format!(
                        "Unknown time window {w:?}; choose one of {}.",
                        WINDOWS
                            .iter()
                            .map(|(k, _, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    sign_in: false,
                })?,
        ),
    };
    let filter = RunFilter {
        workspace: given(&q.workspace),
        job: given(&q.job),
        state: given(&q.state),
        since,
        workspaces: None,
    };
    let visible = caller.visible_workspaces();
    let query = RunFilter {
        workspaces: visible.clone(),
        ..filter.clone()
    };
    let rows = state.store.runs(&query, PAGE, before).await?;
    let next = (rows.len() as u32 == PAGE)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let workspaces: Vec<String> = match visible {
        Some(v) => v,
        None => state
            .catalog()
            .map(|c| c.workspaces.iter().map(|w| w.name.clone()).collect())
            .unwrap_or_default(),
    };
    render(
        "runs.html",
        context! {
            nav => "runs",
            rows => ser(&rows),
            next => next,
            first_page => before.is_none(),
            filter => ser(&filter),
            window => window,
            windows => WINDOWS.iter().map(|(k, label, _)| (*k, *label)).collect::<Vec<_>>(),
            workspaces => workspaces,
            states => ser(&RUN_STATES),
        },
    )
}

pub(super) fn run_id(id: &str) -> Result<i64, PageError> {
    id.parse::<i64>()
        .map_err(|_| PageError::not_found(format!("There is no run {id}.")))
}

/// A run the caller may see (a viewer of its workspace).
pub(super) async fn find_run(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<olo_reconciler::store::Run, PageError> {
    gate(state, caller, Need::Member).await?;
    let n = run_id(id)?;
    let run = state
        .store
        .run(n)
        .await?
        .ok_or_else(|| PageError::not_found(format!("There is no run {n}.")))?;
    gate(state, caller, Need::Workspace(&run.workspace, Role::Viewer)).await?;
    Ok(run)
}

pub(super) async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> PageResult {
    let run = find_run(&state, &caller, &id).await?;
    let tis = state.store.task_instances(run.id).await?;
    let experiments = state.mlflow_experiments(&run);
    let (runs, problem) = match state.mlflow_runs(&run, &experiments).await {
        None if experiments.is_empty() => (None, None),
        None => (
            None,
            Some(
                "MLflow is not configured in olo's settings ([mlflow] url), so the MLflow runs \
                 of this run cannot be shown."
                    .to_string(),
            ),
        ),
        Some(Ok(runs)) => (Some(runs), None),
        Some(Err(e)) => (None, Some(format!("MLflow could not be asked: {e}"))),
    };
    let mlflow = RunMlflow {
        experiments: &experiments,
        runs: runs.as_deref(),
        problem: problem.as_deref(),
    };
    let paused = state
        .catalog()
        .and_then(|c| c.job(&run.workspace, &run.job).map(|j| j.paused))
        .unwrap_or(false);
    render(
        "run.html",
        run_page(
            &run,
            &tis,
            airflow_ui(&state).as_deref(),
            &mlflow,
            paused,
            Utc::now(),
        ),
    )
}

/// The MLflow part of a run's page.
pub(super) struct RunMlflow<'a> {
    /// The experiments the run's job logs to (none: no MLflow section).
    pub experiments: &'a [String],
    pub runs: Option<&'a [olo_reconciler::targets::mlflow::MlflowRun]>,
    /// Why the runs could not be read.
    pub problem: Option<&'a str>,
}

pub(super) fn run_page(
    run: &olo_reconciler::store::Run,
    tis: &[TaskInstanceRow],
    airflow_ui: Option<&str>,
    mlflow: &RunMlflow<'_>,
    // Whether the run's job is paused in the live configuration (its runs wait).
    paused: bool,
    now: DateTime<Utc>,
) -> Value {
    let (bars, total) = timeline(tis, now);
    let conf = match &run.conf {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        c => serde_json::to_string_pretty(c).unwrap_or_default(),
    };
    context! {
        nav => "runs",
        run => ser(run),
        tasks => ser(&tis),
        bars => ser(&bars),
        total_seconds => total,
        conf => conf,
        finished => is_terminal_run_state(&run.state),
        paused => paused,
        airflow_ui => airflow_ui,
        experiments => mlflow.experiments.to_vec(),
        mlflow => mlflow.runs.map(|r| ser(&r)),
        mlflow_problem => mlflow.problem,
    }
}

pub(super) async fn task_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, task, try_number)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let run = find_run(&state, &caller, &id).await?;
    let try_number = try_number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| PageError::not_found(format!("There is no try {try_number}.")))?;
    let tis = state.store.task_instances(run.id).await?;
    let map_index = tis
        .iter()
        .find(|t| t.task_id == task && t.try_number == try_number)
        .map_or(-1, |t| t.map_index);
    let finished = is_terminal_run_state(&run.state);
    let (status, log, problem) = match &state.airflow {
        None => (
            StatusCode::OK,
            None,
            Some(
                "Airflow is not configured in olo's settings ([airflow] url, username, \
                 password_env), and task logs are read from Airflow, so there is no log to show."
                    .to_string(),
            ),
        ),
        Some(airflow) => match airflow
            .task_log(
                &run.dag_id,
                &run.airflow_run_id,
                &task,
                try_number,
                map_index,
            )
            .await
        {
            Ok(text) => (StatusCode::OK, Some(text), None),
            Err(AirflowError::NotFound { .. }) => (
                StatusCode::NOT_FOUND,
                None,
                Some(format!(
                    "Airflow has no log for task {task}, try {try_number} of this run (yet)."
                )),
            ),
            Err(e) if e.is_temporary() => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Some(format!("Airflow did not answer: {e}. Try again.")),
            ),
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                None,
                Some(format!("Airflow refused the request: {e}")),
            ),
        },
    };
    let html = render(
        "log.html",
        log_page(&run, &task, try_number, log.as_deref(), problem, finished),
    )?;
    Ok((status, html).into_response())
}

/// What the log page shows: the log with its long stack traces folded, or why there is none.
pub(super) fn log_page(
    run: &olo_reconciler::store::Run,
    task: &str,
    try_number: i64,
    log: Option<&str>,
    problem: Option<String>,
    finished: bool,
) -> Value {
    context! {
        nav => "runs",
        run => ser(run),
        task => task,
        try_number => try_number,
        segments => ser(&log.map(log_fold::segments)),
        log => log,
        problem => problem,
        refresh => (!finished).then_some(LOG_REFRESH_SECONDS),
    }
}
