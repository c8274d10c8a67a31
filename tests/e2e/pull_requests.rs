//! End to end: pull requests planned by `olo serve`, GitHub being a wiremock server that records
//! the calls olo makes (commit statuses, the one plan comment), on real git repositories.

use crate::common;
use crate::common::daemon::{fixture, sign, Daemon, WHO};
use crate::common::{job, Repo};
use serde_json::{json, Value};

/// GitHub's real pull_request payload, pointed at our repository's pull request 2.
fn pull_request_payload(action: &str, head_sha: &str) -> Vec<u8> {
    let mut p = fixture("pull_request-opened.json");
    p["action"] = json!(action);
    p["number"] = json!(2);
    p["pull_request"]["number"] = json!(2);
    p["pull_request"]["head"]["sha"] = json!(head_sha);
    p["pull_request"]["base"]["ref"] = json!("main");
    serde_json::to_vec(&p).unwrap()
}

/// `olo serve` on `repo` with `github` as GitHub's API (token `ghp_test`), which accepts every
/// commit status.
async fn daemon_with_github(repo: &Repo, github: &wiremock::MockServer) -> Daemon {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path_regex(
            "^/repos/Codertocat/Hello-World/statuses/[0-9a-f]{40}$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(github)
        .await;
    Daemon::start(
        repo,
        &[
            ("OLO_GITHUB__API_URL", &github.uri()),
            ("OLO_GITHUB__TOKEN_ENV", "TEST_GITHUB_TOKEN"),
            ("TEST_GITHUB_TOKEN", "ghp_test"),
        ],
    )
    .await
}

/// Delivers a signed `pull_request` event (`action`) for `head` and waits for its plan's two
/// commit statuses (pending, then the verdict); returns olo's answer and those statuses.
async fn plan_pull_request(
    d: &Daemon,
    github: &wiremock::MockServer,
    delivery: &str,
    action: &str,
    head: &str,
) -> ((u16, Value), Vec<Value>) {
    let body = pull_request_payload(action, head);
    let answer = d
        .deliver("pull_request", delivery, &body, &sign(&body))
        .await;
    let statuses = format!("/statuses/{head}");
    d.wait_until("the plan's final status", |_| async {
        github_calls(github, "POST", &statuses).await.len() == 2
    })
    .await;
    (answer, github_calls(github, "POST", &statuses).await)
}

async fn github_calls(server: &wiremock::MockServer, verb: &str, path_end: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path().ends_with(path_end))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_one_plan_comment_kept_up_to_date_and_a_status() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    // The pull request: changes `one`, adds `three`; GitHub keeps its head at refs/pull/2/head.
    repo.git(&["checkout", "-q", "-b", "feature"], WHO);
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 2"));
    repo.write("workspaces/w/jobs/three.yaml", &job("three", "echo 3"));
    let head1 = repo.commit("change one, add three", WHO);
    repo.git(&["update-ref", "refs/pull/2/head", &head1], WHO);

    let github = MockServer::start().await;
    let comments = "/repos/Codertocat/Hello-World/issues/2/comments";
    Mock::given(method("GET"))
        .and(path(comments))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 11, "body": ""})))
        .expect(1)
        .mount(&github)
        .await;
    let d = daemon_with_github(&repo, &github).await;
    let one_before = std::fs::read(d.olo.dags().join("w__one.py")).unwrap();

    let ((status, ack), statuses) = plan_pull_request(&d, &github, "pr-1", "opened", &head1).await;
    assert_eq!((status, ack["result"].as_str()), (202, Some("plan queued")));
    assert_eq!(statuses[0]["state"], "pending");
    assert_eq!(statuses[1]["state"], "success");
    assert_eq!(statuses[1]["context"], "olo/plan");
    assert_eq!(
        statuses[1]["description"],
        "1 to create, 1 to change, 0 to delete in 1 workspace"
    );
    let posted = github_calls(&github, "POST", comments).await;
    let text = posted[0]["body"].as_str().unwrap();
    assert!(text.starts_with("<!-- olo-plan -->"), "{text}");
    assert!(
        text.contains("dags/w__three.py") && text.contains("dags/w__one.py"),
        "{text}"
    );
    assert!(
        text.contains("-        bash_command='echo 1',")
            && text.contains("+        bash_command='echo 2',"),
        "{text}"
    );
    // Planning changed nothing live.
    assert_eq!(
        std::fs::read(d.olo.dags().join("w__one.py")).unwrap(),
        one_before
    );
    assert!(!d.olo.dags().join("w__three.py").exists());

    // A new push to the pull request, now invalid: the same comment is edited, not re-posted.
    Mock::given(method("GET"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 5, "body": "LGTM", "user": {"login": "grace"}},
            {"id": 11, "body": text, "user": {"login": "olo[bot]"}}
        ])))
        .with_priority(2)
        .mount(&github)
        .await;
    // olo's comments are the marked ones its token's user wrote: asked once.
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "olo[bot]"})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/Codertocat/Hello-World/issues/comments/11"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 11, "body": ""})))
        .expect(1)
        .mount(&github)
        .await;
    repo.write(
        "workspaces/w/jobs/three.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: three}\nspec:\n  shedule: '@daily'\n  tasks:\n    - id: a\n      bash: {command: echo}\n",
    );
    let head2 = repo.commit("typo", WHO);
    repo.git(&["update-ref", "refs/pull/2/head", &head2], WHO);
    let ((status, _), statuses) =
        plan_pull_request(&d, &github, "pr-2", "synchronize", &head2).await;
    assert_eq!(status, 202);
    assert_eq!(statuses[1]["state"], "failure");
    let description = statuses[1]["description"].as_str().unwrap();
    assert!(
        description.contains("workspaces/w/jobs/three.yaml:5:3"),
        "{description}"
    );
    let edited = github_calls(&github, "PATCH", "/issues/comments/11").await;
    let text = edited[0]["body"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "https://github.com/Codertocat/Hello-World/blob/{head2}/workspaces/w/jobs/three.yaml#L5"
        )),
        "{text}"
    );
    assert_eq!(github_calls(&github, "POST", comments).await.len(), 1);
    assert!(github_calls(&github, "PATCH", "/issues/comments/5")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_deleting_a_producer_flags_its_readers_in_other_workspaces() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    // w's `produce` writes raw.revenue; workspace m's `report` reads it.
    let repo = Repo::new();
    let task_job = |name: &str, lineage: &str| {
        format!(
            "apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n    - id: a\n      bash: {{command: echo}}\n      {lineage}\n"
        )
    };
    repo.write(
        "workspaces/w/jobs/produce.yaml",
        &task_job("produce", "outputs: [raw.revenue]"),
    );
    repo.write(
        "workspaces/m/workspace.yaml",
        &common::WORKSPACE
            .replace("{name: w}", "{name: m}")
            .replace("catalog: lake", "catalog: mkt")
            .replace("lake-bucket/w", "lake-bucket/m"),
    );
    repo.write(
        "workspaces/m/jobs/report.yaml",
        &task_job("report", "inputs: [w.raw.revenue]"),
    );
    repo.commit("produce and report", WHO);
    // The pull request deletes the producer.
    repo.git(&["checkout", "-q", "-b", "feature"], WHO);
    repo.git(&["rm", "-q", "workspaces/w/jobs/produce.yaml"], WHO);
    let head = repo.commit("drop produce", WHO);
    repo.git(&["update-ref", "refs/pull/2/head", &head], WHO);

    let github = MockServer::start().await;
    let comments = "/repos/Codertocat/Hello-World/issues/2/comments";
    Mock::given(method("GET"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 11, "body": ""})))
        .mount(&github)
        .await;
    let d = daemon_with_github(&repo, &github).await;
    let ((status, _), statuses) = plan_pull_request(&d, &github, "pr-1", "opened", &head).await;
    assert_eq!(status, 202);
    // The deleted DAG file belongs to w, in the live commit.
    assert_eq!(
        statuses[1]["description"],
        "0 to create, 0 to change, 1 to delete in 1 workspace"
    );
    let posted = github_calls(&github, "POST", comments).await;
    let text = posted[0]["body"].as_str().unwrap();
    assert!(text.contains("| w | 0 | 0 | 1 |"), "{text}");
    assert!(!text.contains("_shared_"), "{text}");
    assert!(
        text.contains("**Merging this breaks 1 reader in 1 workspace**")
            && text.contains("| w:raw.revenue | w:produce | m:report |"),
        "{text}"
    );
    // The deleted job's impact, on the live graph.
    assert!(
        text.contains("| w/produce | delete | w:raw.revenue | m:report | — |"),
        "{text}"
    );
}
