//! End to end: `olo serve` on a local folder: what it takes for a change, and what it leaves alone.

use std::time::Duration;

use crate::common;
use crate::common::daemon::{Daemon, WHO};
use crate::common::{job, Repo};

/// `olo_branch_reads_total`, from `/metrics`.
async fn branch_reads(d: &Daemon) -> u64 {
    let metrics = d.get_text("/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("olo_branch_reads_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no olo_branch_reads_total in:\n{metrics}"))
}

/// A daemon on a local folder reads it again when something in it changes, and only then:
/// olo's own import opens every file, and taking those reads for changes had an idle daemon
/// import its folder about three times a second, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_on_a_local_folder_leaves_it_alone_until_it_changes() {
    idle_daemon_leaves_its_folder_alone().await;
}

/// A plain (not git) folder with olo's state folder inside it, as `olo serve` run in a folder
/// with the default `./.olo` has it: each read of a plain folder imports it into a git
/// repository in the state folder, and taking those writes for changes had an idle daemon read
/// it again about three times a second. olo's own folders are left out of the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_folder_inside_the_watched_folder_is_not_a_change() {
    let folder = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = folder.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("workspaces/w/workspace.yaml", common::WORKSPACE);
    write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let olo = common::Olo::new(&folder.path().display().to_string())
        .set("OLO_SOURCE__POLL_SECONDS", "3600")
        .set(
            "OLO_STATE__DIR",
            &folder.path().join(".olo").display().to_string(),
        );
    let d = Daemon::resume(olo).await;
    assert_left_alone(&d).await;
    write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    d.wait_until("the new job to be served", |d| async move {
        d.get("/api/v1/workspaces/w/jobs/two").await.0 == 200
    })
    .await;
}

/// Once the start-up's own file events have settled (2 s), the daemon does not read its folder
/// again for 3 s while nothing changes. Returns its count of branch reads.
async fn assert_left_alone(d: &Daemon) -> u64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = branch_reads(d).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        branch_reads(d).await,
        idle,
        "the folder was read again with nothing changed"
    );
    idle
}

/// An idle daemon on a local git folder: see above.
async fn idle_daemon_leaves_its_folder_alone() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let olo = common::Olo::new(&repo.path().display().to_string())
        .set("OLO_SOURCE__POLL_SECONDS", "3600");
    let d = Daemon::resume(olo).await;
    let idle = assert_left_alone(&d).await;
    // A change is still taken (a git folder: olo follows the branch's commits).
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    repo.commit("two", WHO);
    d.wait_until("the new job to be served", |d| async move {
        d.get("/api/v1/workspaces/w/jobs/two").await.0 == 200
    })
    .await;
    assert!(branch_reads(&d).await > idle);
}
