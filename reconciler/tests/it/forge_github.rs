//! The GitHub forge against a wiremock GitHub: every test states the exact requests it expects
//! (method, path, credentials, JSON body, how many) and fails on any other request.
//!
//! `fixtures/github-app-test-key.pem` (and its `.pub.pem`) is a throwaway 2048-bit RSA key made
//! with `openssl genrsa -traditional 2048` for these tests only; it belongs to no GitHub App.

use std::collections::BTreeMap;

use octocrab::jsonwebtoken::{self, Algorithm, DecodingKey, Validation};
use olo_reconciler::forge::{
    self, Forge, ForgeError, GitHub, GitHubAuth, GitHubSettings, PlanComment, PlanOutcome, RepoRef,
    StatusState, GITHUB_COMMENT_LIMIT, MARKER,
};
use olo_reconciler::plan::{self, Diffs};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{
    any, body_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ghp_olo_test_token";
const AUTH: &str = "Bearer ghp_olo_test_token";
const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const PR: u64 = 7;

fn repo() -> RepoRef {
    RepoRef::parse("o/r").unwrap()
}

fn github(api_url: &str) -> GitHub {
    GitHub::new(GitHubSettings {
        api_url: api_url.parse().unwrap(),
        auth: GitHubAuth::Token(SecretString::from(TOKEN)),
    })
    .unwrap()
}

/// A comment body as olo writes them.
fn part(i: usize, n: usize, text: &str) -> String {
    format!("{MARKER}\n<!-- olo-plan part {i}/{n} -->\n{text}\n")
}

fn comment(id: u64, login: &str, body: &str) -> Value {
    json!({ "id": id, "body": body, "user": { "login": login, "id": id + 1000 } })
}

/// Fails the test (when the server is dropped) on any request no other mock matched.
async fn nothing_else(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .named("a request no test expects")
        .with_priority(u8::MAX)
        .expect(0)
        .mount(server)
        .await;
}

async fn list_comments(server: &MockServer, prefix: &str, comments: Value) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/repos/o/r/issues/7/comments")))
        .and(query_param("per_page", "100"))
        .and(header("authorization", AUTH))
        .respond_with(ResponseTemplate::new(200).set_body_json(comments))
        .named("list comments")
        .expect(1)
        .mount(server)
        .await;
}

async fn expect_create(server: &MockServer, prefix: &str, body: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path(format!("{prefix}/repos/o/r/issues/7/comments")))
        .and(header("authorization", AUTH))
        .and(body_json(json!({ "body": body })))
        .respond_with(ResponseTemplate::new(201).set_body_json(comment(1, "olo[bot]", body)))
        .named("create comment")
        .expect(times)
        .mount(server)
        .await;
}

async fn expect_update(server: &MockServer, prefix: &str, id: u64, body: &str) {
    Mock::given(method("PATCH"))
        .and(path(format!("{prefix}/repos/o/r/issues/comments/{id}")))
        .and(header("authorization", AUTH))
        .and(body_json(json!({ "body": body })))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(id, "olo[bot]", body)))
        .named(format!("update comment {id}"))
        .expect(1)
        .mount(server)
        .await;
}

/// `GET /user`: the token's user is `olo[bot]` (asked once, when comments carry the marker).
async fn whoami(server: &MockServer, prefix: &str) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/user")))
        .and(header("authorization", AUTH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "login": "olo[bot]", "id": 9 })),
        )
        .named("the token's user")
        .expect(1)
        .mount(server)
        .await;
}

/// No request of any kind to comment `id`.
async fn untouched(server: &MockServer, id: u64) {
    Mock::given(path(format!("/repos/o/r/issues/comments/{id}")))
        .respond_with(ResponseTemplate::new(500))
        .named(format!("someone else's comment {id}"))
        .expect(0)
        .mount(server)
        .await;
}

#[tokio::test]
async fn first_plan_creates_one_comment_and_a_status() {
    let server = MockServer::start().await;
    // What the reconciler posts for a pull request that adds one job.
    let desired = BTreeMap::from([(
        "dags/sales__orders_daily.py".to_string(),
        b"with DAG(dag_id='sales__orders_daily'):\n    pass\n".to_vec(),
    )]);
    let plan = plan::diff(Some(SHA), &desired, &BTreeMap::new(), &[], true, Diffs::All);
    let owners = BTreeMap::from([(
        "dags/sales__orders_daily.py".to_string(),
        "sales".to_string(),
    )]);
    let outcome = PlanOutcome::Valid { plan: &plan };
    let bodies = forge::render(
        &PlanComment {
            head_sha: SHA,
            base_branch: "main",
            repo_html_url: "https://github.com/o/r",
            outcome,
            owners: &owners,
            impact: &Default::default(),
            unverified: None,
        },
        GITHUB_COMMENT_LIMIT,
    );
    let (state, description) = forge::status(&outcome, &owners);
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        description,
        "1 to create, 0 to change, 0 to delete in 1 workspace"
    );

    list_comments(&server, "", json!([])).await;
    expect_create(&server, "", &bodies[0], 1).await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/o/r/statuses/{SHA}")))
        .and(header("authorization", AUTH))
        .and(body_json(json!({
            "state": "success",
            "description": "1 to create, 0 to change, 0 to delete in 1 workspace",
            "context": "olo/plan",
            "target_url": "https://olo.example.com/revisions/ec26c3e",
        })))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "state": "success" })),
        )
        .named("set status")
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;

    let gh = github(&server.uri());
    gh.upsert_plan_comments(&repo(), PR, &bodies).await.unwrap();
    gh.set_status(
        &repo(),
        SHA,
        state,
        &description,
        Some("https://olo.example.com/revisions/ec26c3e"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn second_plan_edits_olo_comment_in_place_and_leaves_others_untouched() {
    let server = MockServer::start().await;
    let old = part(1, 1, "plan for 1111111");
    let new = part(1, 1, "plan for 2222222");
    list_comments(
        &server,
        "",
        json!([
            comment(100, "alice", "LGTM, but see the plan below"),
            comment(101, "olo[bot]", &old),
            // Quoting olo's comment does not make it olo's.
            comment(102, "bob", &format!("> {old}\nwhy 3 DAGs?")),
            comment(103, "carol", &format!("see {MARKER} here")),
        ]),
    )
    .await;
    whoami(&server, "").await;
    expect_update(&server, "", 101, &new).await;
    expect_create(&server, "", &new, 0).await;
    for id in [100, 102, 103] {
        untouched(&server, id).await;
    }
    nothing_else(&server).await;

    github(&server.uri())
        .upsert_plan_comments(&repo(), PR, &[new])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unchanged_plan_edits_nothing() {
    let server = MockServer::start().await;
    let body = part(1, 1, "plan for 1111111");
    list_comments(&server, "", json!([comment(101, "olo[bot]", &body)])).await;
    whoami(&server, "").await;
    untouched(&server, 101).await;
    nothing_else(&server).await;

    github(&server.uri())
        .upsert_plan_comments(&repo(), PR, &[body])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_two_part_plan_then_a_one_part_plan_deletes_the_surplus_part() {
    let server = MockServer::start().await;
    let gh = github(&server.uri());
    let first = [
        part(1, 2, "plan A, first half"),
        part(2, 2, "plan A, second half"),
    ];

    // The first plan: two new comments, in order.
    list_comments(&server, "", json!([])).await;
    expect_create(&server, "", &first[0], 1).await;
    expect_create(&server, "", &first[1], 1).await;
    nothing_else(&server).await;
    gh.upsert_plan_comments(&repo(), PR, &first).await.unwrap();
    let posted: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| r.body_json::<Value>().unwrap()["body"].clone())
        .collect();
    assert_eq!(posted, vec![json!(first[0]), json!(first[1])]);
    server.verify().await;
    server.reset().await;

    // The second plan fits one comment: part 1 is edited, part 2 deleted, dave's stays.
    let second = part(1, 1, "plan B");
    list_comments(
        &server,
        "",
        json!([
            comment(201, "olo[bot]", &first[0]),
            comment(202, "dave", "a question"),
            comment(203, "olo[bot]", &first[1]),
        ]),
    )
    .await;
    whoami(&server, "").await;
    expect_update(&server, "", 201, &second).await;
    Mock::given(method("DELETE"))
        .and(path("/repos/o/r/issues/comments/203"))
        .and(header("authorization", AUTH))
        .respond_with(ResponseTemplate::new(204))
        .named("delete comment 203")
        .expect(1)
        .mount(&server)
        .await;
    untouched(&server, 202).await;
    nothing_else(&server).await;
    gh.upsert_plan_comments(&repo(), PR, &[second])
        .await
        .unwrap();
}

#[tokio::test]
async fn ghe_base_url_with_a_path_prefix_and_a_second_page_of_comments() {
    let server = MockServer::start().await;
    let old = part(1, 1, "old plan");
    let new = part(1, 1, "new plan");
    let next = format!(
        "<{}/api/v3/repos/o/r/issues/7/comments?per_page=100&page=2>; rel=\"next\", \
         <{}/api/v3/repos/o/r/issues/7/comments?per_page=100&page=2>; rel=\"last\"",
        server.uri(),
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/o/r/issues/7/comments"))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("page"))
        .and(header("authorization", AUTH))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next.as_str())
                .set_body_json(json!([comment(300, "erin", "first!")])),
        )
        .named("comments, page 1")
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/o/r/issues/7/comments"))
        .and(query_param("page", "2"))
        .and(header("authorization", AUTH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([comment(301, "olo[bot]", &old)])),
        )
        .named("comments, page 2")
        .expect(1)
        .mount(&server)
        .await;
    whoami(&server, "/api/v3").await;
    expect_update(&server, "/api/v3", 301, &new).await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3/repos/o/r/statuses/{SHA}")))
        .and(header("authorization", AUTH))
        .and(body_json(json!({
            "state": "pending",
            "description": "planning",
            "context": "olo/plan",
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .named("set status")
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;

    let gh = github(&format!("{}/api/v3", server.uri()));
    gh.upsert_plan_comments(&repo(), PR, &[new]).await.unwrap();
    gh.set_status(&repo(), SHA, StatusState::Pending, "planning", None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_comment_by_someone_else_that_starts_with_the_marker_is_left_alone() {
    let server = MockServer::start().await;
    let old = [
        part(1, 2, "plan A, first half"),
        part(2, 2, "plan A, second half"),
    ];
    let new = part(1, 1, "plan B");
    list_comments(
        &server,
        "",
        json!([
            comment(401, "olo[bot]", &old[0]),
            // Planted by another user: olo's marker, even a plausible part header.
            comment(
                402,
                "mallory",
                &part(1, 2, "[approve here](https://evil.example)")
            ),
            comment(403, "olo[bot]", &old[1]),
            comment(404, "mallory", &part(2, 2, "more")),
        ]),
    )
    .await;
    whoami(&server, "").await;
    expect_update(&server, "", 401, &new).await;
    Mock::given(method("DELETE"))
        .and(path("/repos/o/r/issues/comments/403"))
        .and(header("authorization", AUTH))
        .respond_with(ResponseTemplate::new(204))
        .named("delete olo's surplus part 403")
        .expect(1)
        .mount(&server)
        .await;
    untouched(&server, 402).await;
    untouched(&server, 404).await;
    nothing_else(&server).await;

    let gh = github(&server.uri());
    gh.upsert_plan_comments(&repo(), PR, std::slice::from_ref(&new))
        .await
        .unwrap();
    // olo's login is asked once, not per pull request.
    server.verify().await;
    server.reset().await;
    list_comments(&server, "", json!([comment(401, "olo[bot]", &new)])).await;
    untouched(&server, 401).await;
    nothing_else(&server).await;
    gh.upsert_plan_comments(&repo(), PR, &[new]).await.unwrap();
}

#[tokio::test]
async fn an_app_finds_its_comments_by_its_bot_login() {
    let server = MockServer::start().await;
    const APP_AUTH: &str = "Bearer ghs_installation_token";
    Mock::given(method("POST"))
        .and(path("/app/installations/42/access_tokens"))
        .and(AppJwt { app_id: 12345 })
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_installation_token",
            "expires_at": "2099-01-01T00:00:00Z",
            "permissions": { "issues": "write" },
        })))
        .named("installation token")
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .and(AppJwt { app_id: 12345 })
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "id": 12345, "slug": "olo-lake" })),
        )
        .named("the App")
        .expect(1)
        .mount(&server)
        .await;
    let old = part(1, 1, "plan A");
    let new = part(1, 1, "plan B");
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues/7/comments"))
        .and(header("authorization", APP_AUTH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            comment(501, "olo-lake", &old),
            comment(502, "olo-lake[bot]", &old),
        ])))
        .named("list comments")
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/issues/comments/502"))
        .and(header("authorization", APP_AUTH))
        .and(body_json(json!({ "body": new })))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(502, "olo-lake[bot]", &new)))
        .named("update the App's comment")
        .expect(1)
        .mount(&server)
        .await;
    // A user named like the App's slug is not the App.
    untouched(&server, 501).await;
    nothing_else(&server).await;

    let gh = GitHub::new(GitHubSettings {
        api_url: server.uri().parse().unwrap(),
        auth: GitHubAuth::App {
            app_id: 12345,
            private_key_pem: SecretString::from(include_str!("fixtures/github-app-test-key.pem")),
            installation_id: 42,
        },
    })
    .unwrap();
    gh.upsert_plan_comments(&repo(), PR, &[new]).await.unwrap();
}

async fn status_error(answer: ResponseTemplate) -> ForgeError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/o/r/statuses/{SHA}")))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    nothing_else(&server).await;
    github(&server.uri())
        .set_status(&repo(), SHA, StatusState::Success, "ok", None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_temporary_other_client_errors_are_not() {
    let message = |m: &str| json!({ "message": m, "documentation_url": "https://docs.github.com" });

    let e = status_error(ResponseTemplate::new(502).set_body_string("Bad Gateway")).await;
    assert_eq!(e.status_code(), Some(502));
    assert!(e.is_temporary(), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("could not set the olo/plan status of o/r@{SHA}")
    );

    let e = status_error(ResponseTemplate::new(429).set_body_json(message("slow down"))).await;
    assert!(e.is_temporary(), "{e:?}");

    let e = status_error(
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .set_body_json(message("API rate limit exceeded")),
    )
    .await;
    assert!(e.is_temporary(), "{e:?}");

    let e =
        status_error(ResponseTemplate::new(422).set_body_json(message("Validation Failed"))).await;
    assert_eq!(e.status_code(), Some(422));
    assert!(!e.is_temporary(), "{e:?}");

    let e = status_error(
        ResponseTemplate::new(403).set_body_json(message("Resource not accessible by integration")),
    )
    .await;
    assert!(!e.is_temporary(), "{e:?}");

    let e = status_error(ResponseTemplate::new(404).set_body_json(message("Not Found"))).await;
    assert!(!e.is_temporary(), "{e:?}");
}

#[tokio::test]
async fn unreachable_github_is_temporary() {
    // A port nothing listens on (wiremock pools its servers, so a dropped one still answers).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = github(&uri)
        .upsert_plan_comments(&repo(), PR, &[part(1, 1, "plan")])
        .await
        .unwrap_err();
    assert_eq!(e.status_code(), None);
    assert!(e.is_temporary(), "{e:?}");
    assert_eq!(e.to_string(), "could not list the comments of o/r#7");
}

/// Matches a request whose bearer token is a JWT for GitHub App `app_id`, signed with the
/// fixture key and valid for at most GitHub's ten minutes.
struct AppJwt {
    app_id: u64,
}

impl Match for AppJwt {
    fn matches(&self, request: &Request) -> bool {
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: u64,
            iat: u64,
            exp: u64,
        }
        let Some(token) = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let key = DecodingKey::from_rsa_pem(include_bytes!("fixtures/github-app-test-key.pub.pem"))
            .unwrap();
        match jsonwebtoken::decode::<Claims>(token, &key, &Validation::new(Algorithm::RS256)) {
            Ok(data) => {
                let c = data.claims;
                c.iss == self.app_id && c.exp > c.iat && c.exp - c.iat <= 600
            }
            Err(_) => false,
        }
    }
}

#[tokio::test]
async fn app_auth_fetches_an_installation_token_once_and_uses_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app/installations/42/access_tokens"))
        .and(AppJwt { app_id: 12345 })
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_installation_token",
            "expires_at": "2099-01-01T00:00:00Z",
            "permissions": { "issues": "write", "statuses": "write" },
        })))
        .named("installation token")
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/o/r/statuses/{SHA}")))
        .and(header("authorization", "Bearer ghs_installation_token"))
        .and(body_json(json!({
            "state": "failure",
            "description": "invalid: 1 error",
            "context": "olo/plan",
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .named("set status")
        .expect(2)
        .mount(&server)
        .await;
    nothing_else(&server).await;

    let gh = GitHub::new(GitHubSettings {
        api_url: server.uri().parse().unwrap(),
        auth: GitHubAuth::App {
            app_id: 12345,
            private_key_pem: SecretString::from(include_str!("fixtures/github-app-test-key.pem")),
            installation_id: 42,
        },
    })
    .unwrap();
    for _ in 0..2 {
        gh.set_status(&repo(), SHA, StatusState::Failure, "invalid: 1 error", None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_bad_app_key_or_api_url_fails_at_construction() {
    let e = GitHub::new(GitHubSettings {
        api_url: "https://api.github.com".parse().unwrap(),
        auth: GitHubAuth::App {
            app_id: 12345,
            private_key_pem: SecretString::from("not a key"),
            installation_id: 42,
        },
    })
    .err()
    .unwrap();
    assert!(
        matches!(e, ForgeError::AppKey { app_id: 12345, .. }),
        "{e:?}"
    );
    assert!(!e.is_temporary());

    let e = GitHub::new(GitHubSettings {
        api_url: "ftp://ghe.example.com/api/v3".parse().unwrap(),
        auth: GitHubAuth::Token(SecretString::from(TOKEN)),
    })
    .err()
    .unwrap();
    assert!(matches!(e, ForgeError::ApiUrl(_)), "{e:?}");
}
