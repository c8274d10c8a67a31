//! The controller in process: a real git repository (a local source), a SQLite state store and a
//! folder sink in temporary folders; the sink can be told to fail like a full disk or a folder
//! without write permission. Drives the queue and the controller as `olo serve`'s worker does.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use olo_reconciler::apply::{FolderSink, Layout, SharedSink, Sink};
use olo_reconciler::content::Content;
use olo_reconciler::controller::{Action, Backoff, Controller, Queue, Reconciled, Step, Trigger};
use olo_reconciler::engine::{AfterApply, CheckFailed, Engine, Outcome};
use olo_reconciler::source::LocalSource;

const WORKSPACE: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w', namespaces: [raw]}\n  access: {operator: ['user:ci-bot']}\n";

fn job(name: &str, command: &str) -> String {
    format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n    - id: a\n      bash: {{command: \"{command}\"}}\n")
}

/// A folder sink whose writes fail with `fail` while it is set, and whose next write waits for
/// an answer when `gate` is set.
struct FailingSink {
    inner: FolderSink,
    fail: Arc<Mutex<Option<std::io::ErrorKind>>>,
    gate: Arc<Mutex<Option<Gate>>>,
}

/// Said when the sink's write has started; the write goes on once it hears back (or fails as
/// timed out after 5 s).
type Gate = (
    tokio::sync::oneshot::Sender<()>,
    std::sync::mpsc::Receiver<()>,
);

impl FailingSink {
    fn check(&self, name: &str) -> olo_reconciler::Result<()> {
        match *self.fail.lock().unwrap() {
            Some(kind) => Err(olo_reconciler::Error::Sink {
                action: "write",
                path: name.to_string(),
                source: kind.into(),
            }),
            None => Ok(()),
        }
    }
}

impl Sink for FailingSink {
    fn target(&self) -> &str {
        self.inner.target()
    }
    fn observe(
        &self,
        names: &mut dyn Iterator<Item = &str>,
    ) -> olo_reconciler::Result<std::collections::BTreeMap<String, Vec<u8>>> {
        self.inner.observe(names)
    }
    fn write(&mut self, name: &str, bytes: &[u8]) -> olo_reconciler::Result<()> {
        self.check(name)?;
        self.inner.write(name, bytes)
    }
    fn write_all(&mut self, files: &[(&str, &dyn Content)]) -> olo_reconciler::Result<()> {
        if let Some((name, _)) = files.first() {
            self.check(name)?;
            if let Some((started, answer)) = self.gate.lock().unwrap().take() {
                let _ = started.send(());
                if answer.recv_timeout(Duration::from_secs(5)).is_err() {
                    return Err(olo_reconciler::Error::Sink {
                        action: "write",
                        path: name.to_string(),
                        source: std::io::ErrorKind::TimedOut.into(),
                    });
                }
            }
        }
        self.inner.write_all(files)
    }
    fn delete(&mut self, name: &str) -> olo_reconciler::Result<()> {
        self.inner.delete(name)
    }
    fn finish(&mut self, message: &str) -> olo_reconciler::Result<()> {
        self.inner.finish(message)
    }
    fn list(&self, folder: &str) -> olo_reconciler::Result<Vec<String>> {
        self.inner.list(folder)
    }
    fn locate(&self, name: &str) -> String {
        self.inner.locate(name)
    }
}

struct Setup {
    repo: tempfile::TempDir,
    out: tempfile::TempDir,
    _state: tempfile::TempDir,
    queue: Arc<Queue>,
    controller: Controller,
    fail: Arc<Mutex<Option<std::io::ErrorKind>>>,
    gate: Arc<Mutex<Option<Gate>>>,
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Setup {
    async fn new() -> Setup {
        Setup::build(
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            None,
        )
        .await
    }

    /// A controller on `repo` (a new git repository when empty), a SQLite store in `state` and
    /// a folder sink in `out`, with `after_apply` as its after-apply check.
    async fn build(
        repo: tempfile::TempDir,
        out: tempfile::TempDir,
        state: tempfile::TempDir,
        after_apply: Option<Arc<dyn AfterApply>>,
    ) -> Setup {
        if !repo.path().join(".git").exists() {
            git(repo.path(), &["init", "-q", "-b", "main"]);
        }
        let store = olo_reconciler::store::open(&format!(
            "sqlite:{}",
            state.path().join("state.db").display()
        ))
        .await
        .unwrap();
        let fail = Arc::new(Mutex::new(None));
        let gate = Arc::new(Mutex::new(None));
        let engine = Engine {
            store: Arc::from(store),
            sink: SharedSink::new(Box::new(FailingSink {
                inner: FolderSink::new(Layout::under(out.path())),
                fail: fail.clone(),
                gate: gate.clone(),
            })),
            render: Default::default(),
            prune: true,
            last_full_observe: None,
            memo: None,
            inventory: None,
            after_apply,
            lakehouse: None,
            lake_inventory: None,
            lake_unchanged: None,
            phases: Default::default(),
            verify: None,
            unchecked: None,
            unchecked_read: false,
        };
        let source = LocalSource::new(repo.path(), Some("main".into()), state.path());
        let queue = Arc::new(Queue::default());
        let controller = Controller::new(
            engine,
            Arc::new(Mutex::new(Box::new(source))),
            queue.clone(),
        )
        .with_backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
        Setup {
            repo,
            out,
            _state: state,
            queue,
            controller,
            fail,
            gate,
        }
    }

    /// Another olo process on the same repository, store and sink (this one stopped).
    async fn restart(self, after_apply: Option<Arc<dyn AfterApply>>) -> Setup {
        let Setup {
            repo, out, _state, ..
        } = self;
        Setup::build(repo, out, _state, after_apply).await
    }

    fn commit(&self, name: &str, command: &str) -> String {
        let p = self.repo.path();
        std::fs::create_dir_all(p.join("workspaces/w/jobs")).unwrap();
        std::fs::write(p.join("workspaces/w/workspace.yaml"), WORKSPACE).unwrap();
        std::fs::write(
            p.join(format!("workspaces/w/jobs/{name}.yaml")),
            job(name, command),
        )
        .unwrap();
        git(p, &["add", "-A"]);
        git(p, &["commit", "-qm", &format!("{name}: {command}")]);
        git(p, &["rev-parse", "HEAD"])
    }

    fn dag(&self, name: &str) -> std::path::PathBuf {
        self.out.path().join(format!("dags/w__{name}.py"))
    }

    /// What `olo serve`'s worker does with the next pending work (waiting at most a minute).
    async fn work(&mut self) -> Step {
        let pending = tokio::time::timeout(Duration::from_secs(60), self.queue.next())
            .await
            .expect("work within a minute");
        let trigger = pending.reconcile.expect("a reconcile is pending");
        self.controller.reconcile(trigger, &|_, _| {}).await
    }
}

fn reconciled(step: Step) -> Box<Reconciled> {
    match step {
        Step::Reconciled(r) => r,
        other => panic!("no reconcile ran: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_collapses_into_one_reconcile_and_an_unchanged_commit_is_not_reapplied() {
    let mut s = Setup::new().await;
    let c1 = s.commit("one", "echo 1");
    for t in [
        Trigger::Push,
        Trigger::Poll,
        Trigger::FileChange,
        Trigger::Push,
    ] {
        s.queue.reconcile(t);
    }
    let r = reconciled(s.work().await);
    assert_eq!(
        (r.trigger, r.tip.revision.sha.as_str()),
        (Trigger::Push, c1.as_str())
    );
    assert!(r.ready(), "{:?}", r.result);
    assert!(s.queue.take().is_empty(), "one reconcile for the burst");
    assert!(s.dag("one").exists());

    s.queue.reconcile(Trigger::Poll);
    assert!(matches!(s.work().await, Step::UpToDate));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_reconcile_always_reapplies_alone_and_after_a_pending_poll() {
    let mut s = Setup::new().await;
    s.commit("one", "echo 1");
    s.queue.reconcile(Trigger::Poll);
    assert!(reconciled(s.work().await).ready());

    // Alone: the unchanged commit is reconciled again, and a file removed by hand comes back.
    std::fs::remove_file(s.dag("one")).unwrap();
    s.queue.reconcile(Trigger::Api);
    let r = reconciled(s.work().await);
    assert_eq!(r.trigger, Trigger::Api);
    match &r.result {
        Ok(Outcome::Applied { plan }) => assert_eq!(plan.summary().drift, 1, "{plan:?}"),
        other => panic!("{other:?}"),
    }
    assert!(s.dag("one").exists());

    // Behind a poll (and a push) already pending: still reconciled.
    s.queue.reconcile(Trigger::Poll);
    s.queue.reconcile(Trigger::Push);
    s.queue.reconcile(Trigger::Api);
    let r = reconciled(s.work().await);
    assert_eq!(r.trigger, Trigger::Api);
    assert!(r.ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_from_the_sink_is_restored_by_the_drift_reconcile_with_no_new_commit() {
    let mut s = Setup::new().await;
    s.controller.drift_every = Some(Duration::from_millis(200));
    s.commit("one", "echo 1");
    s.queue.reconcile(Trigger::Poll);
    let r = reconciled(s.work().await);
    assert_eq!(
        r.action,
        Action::RequeueAfter(Duration::from_millis(200), Trigger::Drift)
    );
    std::fs::remove_file(s.dag("one")).unwrap();

    // Nothing else is asked for: the controller's own requeue comes due.
    let r = reconciled(s.work().await);
    assert_eq!(r.trigger, Trigger::Drift);
    match &r.result {
        Ok(Outcome::Applied { plan }) => {
            let summary = plan.summary();
            assert_eq!((summary.create, summary.drift), (1, 1), "{plan:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.dag("one").exists(), "restored without a new commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_error_is_retried_with_backoff_and_a_permanent_one_waits_for_the_next_change() {
    let mut s = Setup::new().await;
    s.commit("one", "echo 1");

    // A full disk: temporary, retried by the controller with no trigger from outside.
    *s.fail.lock().unwrap() = Some(std::io::ErrorKind::StorageFull);
    s.queue.reconcile(Trigger::Poll);
    let r = reconciled(s.work().await);
    assert_eq!(r.outcome_label(), "temporary_error");
    assert!(
        matches!(r.action, Action::RequeueAfter(_, Trigger::Retry)),
        "{:?}",
        r.action
    );
    let r = reconciled(s.work().await);
    assert_eq!(
        (r.trigger, r.outcome_label()),
        (Trigger::Retry, "temporary_error")
    );
    *s.fail.lock().unwrap() = None;
    let r = reconciled(s.work().await);
    assert_eq!(r.trigger, Trigger::Retry);
    assert!(r.ready(), "{:?}", r.result);
    assert!(
        s.dag("one").exists(),
        "the retry wrote what the failed apply did not"
    );

    // Permission denied: permanent. Nothing is scheduled, polls skip the commit.
    *s.fail.lock().unwrap() = Some(std::io::ErrorKind::PermissionDenied);
    s.commit("two", "echo 2");
    s.queue.reconcile(Trigger::Poll);
    let r = reconciled(s.work().await);
    assert_eq!(
        (r.outcome_label(), r.action),
        ("permanent_error", Action::AwaitChange)
    );
    assert_eq!(s.queue.scheduled(), None);
    s.queue.reconcile(Trigger::Poll);
    assert!(matches!(s.work().await, Step::UpToDate));

    // Fixed, then the next commit applies.
    *s.fail.lock().unwrap() = None;
    let c3 = s.commit("three", "echo 3");
    s.queue.reconcile(Trigger::Poll);
    let r = reconciled(s.work().await);
    assert_eq!(r.tip.revision.sha, c3);
    assert!(r.ready(), "{:?}", r.result);
    assert!(s.dag("two").exists() && s.dag("three").exists());
}

/// The sink's writes (like git reads, validation and rendering) run on blocking threads: on a
/// runtime with a single thread, a task still runs while a write waits for it. Written inline,
/// the write would hold that thread and time out.
#[tokio::test(flavor = "current_thread")]
async fn a_reconcile_leaves_the_async_thread_free_while_the_sink_writes() {
    let mut s = Setup::new().await;
    let (started, write_started) = tokio::sync::oneshot::channel();
    let (answer, answered) = std::sync::mpsc::channel();
    *s.gate.lock().unwrap() = Some((started, answered));
    tokio::spawn(async move {
        write_started.await.expect("the write starts");
        answer.send(()).unwrap();
    });
    s.commit("one", "echo 1");
    s.queue.reconcile(Trigger::Push);
    let r = reconciled(s.work().await);
    assert!(r.ready(), "{:?}", r.result);
    assert!(s.dag("one").exists());
}

/// Writes `workspaces` workspaces of 10 jobs each (`ws<i>/jobs/j<k>.yaml`) and commits them.
fn commit_many(repo: &Path, workspaces: usize) {
    for i in 0..workspaces {
        let ws = format!("ws{i:03}");
        let dir = repo.join(format!("workspaces/{ws}/jobs"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            repo.join(format!("workspaces/{ws}/workspace.yaml")),
            WORKSPACE
                .replace("{name: w}", &format!("{{name: {ws}}}"))
                .replace("lake-bucket/w", &format!("lake-bucket/{ws}")),
        )
        .unwrap();
        for k in 0..10 {
            std::fs::write(
                dir.join(format!("j{k}.yaml")),
                job(&format!("j{k}"), "echo 1"),
            )
            .unwrap();
        }
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "generated"]);
}

/// What each of a series of commits (change a job, add one, remove one, change two jobs of two
/// workspaces, an invalid one, its fix) made the engine visit, in a repository of `workspaces`
/// workspaces of 10 jobs.
async fn work_of_commits(workspaces: usize) -> Vec<olo_reconciler::engine::Work> {
    let mut s = Setup::new().await;
    let repo = s.repo.path().to_path_buf();
    commit_many(&repo, workspaces);
    s.queue.reconcile(Trigger::Poll);
    assert!(reconciled(s.work().await).ready());
    let cold = s.controller.engine.work().unwrap();
    assert_eq!(
        cold.checked,
        workspaces * 10,
        "a cold reconcile checks every job"
    );
    let job_file = |ws: usize, k: usize| repo.join(format!("workspaces/ws{ws:03}/jobs/j{k}.yaml"));
    let mut work = Vec::new();
    let steps: [&dyn Fn(); 6] = [
        &|| std::fs::write(job_file(1, 1), job("j1", "echo 2")).unwrap(),
        &|| std::fs::write(job_file(1, 10), job("j10", "echo new")).unwrap(),
        &|| std::fs::remove_file(job_file(2, 3)).unwrap(),
        &|| {
            std::fs::write(job_file(0, 0), job("j0", "echo 3")).unwrap();
            std::fs::write(job_file(2, 0), job("j0", "echo 3")).unwrap();
        },
        &|| {
            std::fs::write(
                job_file(1, 1),
                "apiVersion: olo/v1\nkind: Job\nmetadata: {name: j1}\nspec: {tasks: []}\n",
            )
            .unwrap()
        },
        &|| std::fs::write(job_file(1, 1), job("j1", "echo fixed")).unwrap(),
    ];
    for (n, step) in steps.iter().enumerate() {
        step();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", &format!("step {n}")]);
        s.queue.reconcile(Trigger::Poll);
        reconciled(s.work().await);
        work.push(s.controller.engine.work().unwrap());
    }
    work
}

/// The cost of a reconcile follows the change, not the repository: each commit of the series
/// visits exactly as much at 40 jobs as at 400 (files read, jobs checked, catalog entries, jobs
/// looked at, files rendered, plan rows), while a cold reconcile visits every job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_of_a_commit_follows_the_change_not_the_repository() {
    let small = work_of_commits(4).await;
    let large = work_of_commits(40).await;
    assert_eq!(
        small, large,
        "the same commits visit the same at 40 and at 400 jobs"
    );
    let one = small[0];
    assert_eq!(
        (one.read, one.checked, one.looked, one.rendered, one.planned),
        (1, 1, 1, 1, 1),
        "one changed job: one file read, checked, looked at, rendered, planned"
    );
    assert_eq!(
        one.cataloged, 10,
        "the API catalog lists its workspace's jobs again"
    );
    assert_eq!(small[3].rendered, 2, "two changed jobs");
    assert_eq!(small[4].rendered, 0, "an invalid commit renders nothing");
    assert_eq!(
        (small[5].checked, small[5].rendered, small[5].planned),
        (1, 1, 1),
        "the fix of an invalid commit renders what changed since the last valid one"
    );
}

/// An after-apply check (Airflow's import errors, in olo) that does not answer while `down`;
/// `seen` has the names each check was asked about.
#[derive(Default)]
struct FakeCheck {
    down: std::sync::atomic::AtomicBool,
    seen: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl AfterApply for FakeCheck {
    async fn after_apply(
        &self,
        plan: &olo_reconciler::plan::Plan,
        _catalog: &olo_reconciler::catalog::Catalog,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), CheckFailed> {
        let names = plan.changes.iter().map(|c| c.name.clone()).collect();
        self.seen.lock().unwrap().push(names);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CheckFailed {
                message: "Airflow did not answer".into(),
                unanswered: true,
            });
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_airflow_did_not_answer_is_run_again_after_a_restart() {
    let down = Arc::new(FakeCheck::default());
    down.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut s = Setup::build(
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        Some(down.clone()),
    )
    .await;
    s.commit("one", "echo 1");
    s.queue.reconcile(Trigger::Poll);
    let r = reconciled(s.work().await);
    assert!(
        matches!(r.result, Ok(Outcome::Failed { retry: true, .. })),
        "{:?}",
        r.result
    );
    assert!(s.dag("one").exists(), "written before the check");

    // olo stops before its retry; the next one starts with Airflow answering. The commit's
    // files are written (its plan is empty), and still the check of what wrote them runs.
    let up = Arc::new(FakeCheck::default());
    let mut s = s.restart(Some(up.clone())).await;
    s.queue.reconcile(Trigger::Poll);
    let r = reconciled(s.work().await);
    assert!(r.ready(), "{:?}", r.result);
    let first = down.seen.lock().unwrap()[0].clone();
    assert!(first.contains(&"dags/w__one.py".to_string()), "{first:?}");
    assert_eq!(
        *up.seen.lock().unwrap(),
        vec![first],
        "the restarted olo checked the files the first one wrote"
    );

    // Answered, so forgotten: the restart after that checks nothing again.
    let again = Arc::new(FakeCheck::default());
    let mut s = s.restart(Some(again.clone())).await;
    s.queue.reconcile(Trigger::Poll);
    assert!(reconciled(s.work().await).ready());
    assert!(again.seen.lock().unwrap().is_empty());
}
