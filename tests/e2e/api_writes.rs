//! End to end: writes through the API become Git changes (`api.writes`). `olo serve` as a
//! process on a `file://` remote (a real git repository); GitHub, for the pull request path, is a
//! wiremock server.

use crate::common::daemon::{assert_error_shape, Daemon, TOKEN, WHO};
use crate::common::{job, Repo};
use serde_json::{json, Value};

const VIEWER: &str = "olo_test_token_of_a_viewer";
const OTHER_OPERATOR: &str = "olo_test_token_of_otto";
/// A second workspace, operated by `otto` (not by `ci-bot`).
const OTHER: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: other}\nspec:\n  lakehouse: {catalog: other, warehouse: 's3://lake-bucket/other', namespaces: [raw]}\n  access: {operator: ['user:otto']}\n";

/// The remote olo tracks: a bare repository (as a Git server holds them; libgit2 does not push
/// into a working tree), cloned from a work repository with workspace `w` and job `one`.
fn repo() -> (Repo, String) {
    let work = Repo::new();
    work.write("workspaces/other/workspace.yaml", OTHER);
    work.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let tip = work.commit("one", WHO);
    let bare = Repo {
        dir: tempfile::tempdir().unwrap(),
    };
    work.git(
        &["clone", "-q", "--bare", ".", bare.path().to_str().unwrap()],
        WHO,
    );
    (bare, tip)
}

async fn start(repo: &Repo, mode: &str, extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![("OLO_API__WRITES", mode)];
    env.extend_from_slice(extra);
    Daemon::start_with_tokens(repo, &env, &[("vera", VIEWER), ("otto", OTHER_OPERATOR)]).await
}

/// A request with a raw body: (status, JSON answer).
async fn send(
    d: &Daemon,
    method: reqwest::Method,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut r = d
        .http
        .request(method, format!("{}{path}", d.base))
        .bearer_auth(token);
    if let Some(rev) = if_match {
        r = r.header("If-Match", format!("\"{rev}\""));
    }
    if let Some((content_type, text)) = body {
        r = r
            .header("Content-Type", content_type)
            .body(text.to_string());
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn put_yaml(text: &str) -> Option<(&'static str, &str)> {
    Some(("application/yaml", text))
}

fn tip(repo: &Repo) -> String {
    repo.git(&["rev-parse", "refs/heads/main"], WHO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_commit_mode_a_job_written_through_the_api_is_a_commit_by_the_caller_and_is_applied() {
    let (repo, base) = repo();
    let d = start(&repo, "commit", &[]).await;
    assert_eq!(d.olo.dag_files(), ["w__one.py"]);

    // Created: one commit by the caller (committer olo) on main, with the text byte for byte.
    let two = format!("# the second job\n{}", job("two", "echo 2"));
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/w/jobs/two",
        TOKEN,
        Some(&base),
        put_yaml(&two),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["action"], "created");
    assert_eq!(answer["branch"], "main");
    assert_eq!(answer["base"], base.as_str());
    let c1 = answer["revision"].as_str().unwrap().to_string();
    assert_eq!(tip(&repo), c1);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%ae|%cn|%P|%s", &c1], WHO),
        format!("ci-bot|ci-bot@olo.invalid|olo|{base}|Create job w/two")
    );
    assert_eq!(
        repo.git(&["show", &format!("{c1}:workspaces/w/jobs/two.yaml")], WHO),
        two.trim_end()
    );
    // Then applied like a push.
    let c1_ref = c1.as_str();
    d.wait_until("the API's commit applied", |d| async move {
        d.last_applied().await.as_deref() == Some(c1_ref)
    })
    .await;
    assert_eq!(d.olo.dag_files(), ["w__one.py", "w__two.py"]);

    // Invalid: 422 with every diagnostic at its path:line:col; nothing written.
    let bad = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: bad}\nspec:\n  tasks:\n    - id: a\n      bash: {command: 'x'}\n      depends_on: [nope]\n";
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/w/jobs/bad",
        TOKEN,
        None,
        put_yaml(bad),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_error_shape(&answer, "invalid_change");
    let text = answer["diagnostics"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("workspaces/w/jobs/bad.yaml:8:") && text.contains("nope"),
        "{text}"
    );
    assert!(answer["error"]["message"].as_str().unwrap().contains(text));
    assert_eq!(tip(&repo), c1);

    // A stale If-Match: 409 naming the tip; nothing written.
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/w/jobs/two",
        TOKEN,
        Some(&base),
        put_yaml(&job("two", "echo 22")),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_error_shape(&answer, "revision_conflict");
    assert_eq!(answer["current_revision"], c1.as_str());
    assert!(answer["error"]["message"].as_str().unwrap().contains(&c1));
    assert_eq!(tip(&repo), c1);

    // A viewer, and an operator of another workspace: 403, audited, nothing written.
    for token in [VIEWER, OTHER_OPERATOR] {
        let (status, answer) = send(
            &d,
            reqwest::Method::PUT,
            "/api/v1/workspaces/w/jobs/two",
            token,
            None,
            put_yaml(&job("two", "echo 3")),
        )
        .await;
        assert_eq!(status, 403, "{answer}");
        assert_error_shape(&answer, "forbidden");
    }
    let (status, _) = send(
        &d,
        reqwest::Method::DELETE,
        "/api/v1/workspaces/w/jobs/two",
        VIEWER,
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(tip(&repo), c1);
    let audit = d.olo.audit();
    let denied: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e["action"] == "denied")
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        denied,
        [
            ("vera", "DELETE /api/v1/workspaces/w/jobs/two"),
            ("otto", "PUT /api/v1/workspaces/w/jobs/two"),
            ("vera", "PUT /api/v1/workspaces/w/jobs/two"),
        ]
    );
    // The 422 and the 409 reached the repository and were refused there: audited too, with
    // the diagnostics' first lines and the revisions, so the log shows who tried what.
    let refused: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "job_apply_refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    let (conflict, invalid) = (refused[0], refused[1]); // newest first
    assert_eq!(
        (&conflict["actor"], &conflict["target"]),
        (&json!("ci-bot"), &json!("w/two"))
    );
    assert_eq!(conflict["details"]["code"], "revision_conflict");
    assert_eq!(conflict["details"]["base"], base.as_str());
    assert_eq!(conflict["details"]["current_revision"], c1.as_str());
    assert_eq!(invalid["target"], "w/bad");
    assert_eq!(invalid["details"]["code"], "invalid_change");
    assert_eq!(invalid["details"]["errors"], 1);
    assert_eq!(invalid["details"]["diagnostics"][0], text);

    // JSON is stored as YAML.
    let three = json!({"apiVersion": "olo/v1", "kind": "Job", "metadata": {"name": "three"},
        "spec": {"tasks": [{"id": "a", "bash": {"command": "echo 3"}}]}});
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/w/jobs/three",
        TOKEN,
        Some(&c1),
        Some(("application/json", &three.to_string())),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let c2 = answer["revision"].as_str().unwrap().to_string();
    assert_eq!(
        repo.git(&["show", &format!("{c2}:workspaces/w/jobs/three.yaml")], WHO),
        "apiVersion: olo/v1\nkind: Job\nmetadata:\n  name: three\nspec:\n  tasks:\n    - id: a\n      bash:\n        command: echo 3"
    );

    // Delete: the file goes in a commit, then the DAG.
    let (status, answer) = send(
        &d,
        reqwest::Method::DELETE,
        "/api/v1/workspaces/w/jobs/two",
        TOKEN,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"], "deleted");
    let c3 = answer["revision"].as_str().unwrap().to_string();
    assert_eq!(tip(&repo), c3);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%P|%s", &c3], WHO),
        format!("ci-bot|{c2}|Delete job w/two")
    );
    assert_eq!(
        repo.git(
            &["ls-tree", "-r", "--name-only", &c3, "workspaces/w/jobs"],
            WHO
        ),
        "workspaces/w/jobs/one.yaml\nworkspaces/w/jobs/three.yaml"
    );
    let (status, answer) = send(
        &d,
        reqwest::Method::DELETE,
        "/api/v1/workspaces/w/jobs/two",
        TOKEN,
        None,
        None,
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    d.wait_until("the delete applied", |d| async move {
        d.olo.dag_files() == ["w__one.py", "w__three.py"]
    })
    .await;
    let audit = d.olo.audit();
    let writes: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|e| e["action"] == "job_apply" || e["action"] == "job_delete")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        writes,
        [
            ("job_delete", "w/two", "ci-bot"),
            ("job_apply", "w/three", "ci-bot"),
            ("job_apply", "w/two", "ci-bot"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olo_job_apply_and_delete_write_through_the_api_and_exit_2_on_a_refusal() {
    let (repo, _) = repo();
    let d = start(&repo, "commit", &[]).await;
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().join("workspaces/w/jobs");
    std::fs::create_dir_all(&dir).unwrap();
    let four = dir.join("four.yaml");
    std::fs::write(&four, job("four", "echo 4")).unwrap();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &d.base, "--token", TOKEN]);
        d.olo.command(&all).output().unwrap()
    };
    let out = cli(&["job", "apply", "-f", four.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c1 = tip(&repo);
    assert_eq!(
        stdout.trim(),
        format!(
            "created workspaces/w/jobs/four.yaml in commit {} on main; olo applies it",
            &c1[..12]
        )
    );
    // Invalid: exit 2, olo's diagnostics printed, nothing written.
    let bad = files.path().join("bad.yaml");
    std::fs::write(&bad, job("bad", "echo 5").replace("bash:", "bsh:")).unwrap();
    let out = cli(&[
        "job",
        "apply",
        "-f",
        bad.to_str().unwrap(),
        "--workspace",
        "w",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTP 422") && stderr.contains("workspaces/w/jobs/bad.yaml:"),
        "{stderr}"
    );
    assert_eq!(tip(&repo), c1);
    // A stale --if-match: exit 2 with the 409.
    let out = cli(&[
        "job",
        "delete",
        "w/four",
        "--if-match",
        "0000000",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTP 409") && stderr.contains(&c1),
        "{stderr}"
    );
    let out = cli(&[
        "job",
        "delete",
        "w/four",
        "--if-match",
        &c1,
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["action"], "deleted");
    assert_eq!(tip(&repo), answer["revision"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_writes_off_the_api_refuses_and_says_how_to_turn_them_on() {
    let (repo, base) = repo();
    let d = Daemon::start(&repo, &[]).await;
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/w/jobs/two",
        TOKEN,
        None,
        put_yaml(&job("two", "echo 2")),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_error_shape(&answer, "writes_off");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("source of truth")
            && message.contains("workspaces/w/jobs/two.yaml")
            && message.contains("api.writes"),
        "{message}"
    );
    // Without a token the answer is 401, as for any write (schemathesis found a 403 here).
    let anonymous = d
        .http
        .put(format!("{}/api/v1/workspaces/w/jobs/two", d.base))
        .header("content-type", "application/yaml")
        .body(job("two", "echo 2"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_error_shape(&anonymous.json().await.unwrap(), "unauthorized");
    assert_eq!(tip(&repo), base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_pull_request_mode_the_change_is_pushed_to_a_branch_and_a_pull_request_opened() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let (repo, base) = repo();
    let github = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/Codertocat/Hello-World/pulls"))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 9,
            "html_url": "https://github.com/Codertocat/Hello-World/pull/9",
            "state": "open"
        })))
        .expect(1)
        .mount(&github)
        .await;
    let d = start(
        &repo,
        "pull_request",
        &[
            ("OLO_GITHUB__API_URL", &github.uri()),
            ("OLO_GITHUB__TOKEN_ENV", "TEST_GITHUB_TOKEN"),
            ("TEST_GITHUB_TOKEN", "ghp_test"),
        ],
    )
    .await;
    let two = job("two", "echo 2");
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/w/jobs/two",
        TOKEN,
        Some(&base),
        put_yaml(&two),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["pull_request"]["number"], 9);
    assert_eq!(
        answer["pull_request"]["url"],
        "https://github.com/Codertocat/Hello-World/pull/9"
    );
    let branch = answer["branch"].as_str().unwrap().to_string();
    assert!(branch.starts_with("olo/api/w-two-"), "{branch}");
    let sha = answer["revision"].as_str().unwrap();
    // The branch is on the remote, the tracked branch is not touched.
    assert_eq!(
        repo.git(&["rev-parse", &format!("refs/heads/{branch}")], WHO),
        sha
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%cn|%P", sha], WHO),
        format!("ci-bot|olo|{base}")
    );
    assert_eq!(
        repo.git(&["show", &format!("{sha}:workspaces/w/jobs/two.yaml")], WHO),
        two.trim_end()
    );
    assert_eq!(tip(&repo), base);
    let requests = github.received_requests().await.unwrap();
    let pr: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(pr["head"], branch.as_str());
    assert_eq!(pr["base"], "main");
    assert_eq!(pr["title"], "Create job w/two");
    let audit = d.olo.audit();
    let entry = audit.iter().find(|e| e["action"] == "job_apply").unwrap();
    assert_eq!(entry["details"]["pull_request"]["number"], 9);
    assert_eq!(entry["revision"], sha);
}

/// The workspace routes: creating a workspace takes a platform admin, replacing or deleting one
/// takes an admin of it; each write is one commit by the caller, applied like a push, and a
/// refusal writes nothing and is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_written_through_the_api_are_commits_by_their_admins() {
    const ADA: &str = "olo_test_token_of_ada";
    let work = Repo::new();
    work.write(
        "olo.yaml",
        "apiVersion: olo/v1\nkind: Repository\nmetadata: {name: t}\nspec:\n  admins: ['user:ada']\n",
    );
    work.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let base = work.commit("one", WHO);
    let repo = Repo {
        dir: tempfile::tempdir().unwrap(),
    };
    work.git(
        &["clone", "-q", "--bare", ".", repo.path().to_str().unwrap()],
        WHO,
    );
    let d = Daemon::start_with_tokens(
        &repo,
        &[("OLO_API__WRITES", "commit")],
        &[("ada", ADA), ("vera", VIEWER)],
    )
    .await;
    let fresh = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: fresh}\nspec:\n  lakehouse: {catalog: fresh, warehouse: 's3://lake-bucket/fresh', namespaces: [raw]}\n  access: {admin: ['user:ci-bot']}\n";

    // A new workspace needs a platform admin: ci-bot (an operator of `w`) is refused.
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/fresh",
        TOKEN,
        Some(&base),
        put_yaml(fresh),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(tip(&repo), base);

    // Ada, a platform admin, creates it: one commit by her, applied.
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/fresh",
        ADA,
        Some(&base),
        put_yaml(fresh),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["action"], "created");
    let c1 = answer["revision"].as_str().unwrap().to_string();
    assert_eq!(tip(&repo), c1);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%cn|%P|%s", &c1], WHO),
        format!("ada|olo|{base}|Create workspace fresh")
    );
    assert_eq!(
        repo.git(
            &["show", &format!("{c1}:workspaces/fresh/workspace.yaml")],
            WHO
        ),
        fresh.trim_end()
    );
    let c1_ref = c1.as_str();
    d.wait_until("the new workspace applied", |d| async move {
        d.last_applied().await.as_deref() == Some(c1_ref)
    })
    .await;
    let (_, workspaces) = d.get("/api/v1/workspaces").await;
    assert!(workspaces.to_string().contains("\"fresh\""), "{workspaces}");

    // ci-bot is admin of `fresh` now: it may replace it (a namespace more); a viewer may not.
    let replaced = fresh.replace("namespaces: [raw]", "namespaces: [raw, gold]");
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/fresh",
        VIEWER,
        Some(&c1),
        put_yaml(&replaced),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/fresh",
        TOKEN,
        Some(&c1),
        put_yaml(&replaced),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"], "replaced");
    let c2 = answer["revision"].as_str().unwrap().to_string();
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%s", &c2], WHO),
        "ci-bot|Replace workspace fresh"
    );

    // Invalid (an unknown key): 422 at its line, nothing written.
    let (status, answer) = send(
        &d,
        reqwest::Method::PUT,
        "/api/v1/workspaces/fresh",
        TOKEN,
        Some(&c2),
        put_yaml(&format!("{replaced}  colour: blue\n")),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert_error_shape(&answer, "invalid_change");
    assert_eq!(tip(&repo), c2);

    // `w` still has a job: deleting it alone would leave the job without its workspace file.
    // ci-bot is only its operator: 403 before anything is looked at.
    let (status, _) = send(
        &d,
        reqwest::Method::DELETE,
        "/api/v1/workspaces/w",
        TOKEN,
        Some(&c2),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Ada deletes `fresh`: one commit removing its folder's workspace file.
    let (status, answer) = send(
        &d,
        reqwest::Method::DELETE,
        "/api/v1/workspaces/fresh",
        ADA,
        Some(&c2),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["action"], "deleted");
    let c3 = answer["revision"].as_str().unwrap().to_string();
    assert_eq!(tip(&repo), c3);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an|%s", &c3], WHO),
        "ada|Delete workspace fresh"
    );
    let c3_ref = c3.as_str();
    d.wait_until("the deletion applied", |d| async move {
        d.last_applied().await.as_deref() == Some(c3_ref)
    })
    .await;

    // The refusals are in the audit log, with who asked.
    let (_, audit) = d.get("/api/v1/audit?limit=100").await;
    let denied: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "denied")
        .collect();
    for actor in ["ci-bot", "vera"] {
        assert!(
            denied.iter().any(|e| e["actor"] == actor),
            "a denied entry for {actor}: {audit}"
        );
    }
}
