//! Access control end to end: `olo serve` with roles from the repository and a local OpenID
//! provider that this test builds from a freshly generated RSA key pair: real RS256-signed JWTs,
//! a real discovery document and JWKS over HTTP, and a real authorization-code + PKCE sign-in
//! (the provider checks the verifier against the challenge). Verification is never turned off.

use std::sync::Arc;

use crate::common::daemon::{Daemon, TOKEN};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

mod provider;

use provider::*;

#[tokio::test(flavor = "multi_thread")]
async fn roles_from_the_repository_govern_every_route_for_oidc_and_token_callers() {
    let key = Arc::new(Key::generate("k1"));
    let provider = Provider::start(key.clone()).await;
    let repo = repo();
    let d = start(&provider, &repo).await;

    let erin = provider.token(&key, "erin@example.com", &["sales-eng"]);
    let ann = provider.token(&key, "ann@example.com", &["analysts"]);
    let mo = provider.token(&key, "mo@example.com", &[]);
    let nobody = provider.token(&key, "nobody@example.com", &["sales"]);
    let root = provider.token(&key, "root@example.com", &["platform"]);

    // Anonymous: nothing (reads need an identity here).
    for path in ["/api/v1/workspaces", "/api/v1/status", "/api/v1/runs"] {
        assert_eq!(call(&d, "GET", path, None).await.0, 401, "{path}");
    }
    // Lists hold only what the caller may see.
    let (s, list) = call(&d, "GET", "/api/v1/workspaces", Some(&erin)).await;
    assert_eq!((s, names(&list)), (200, vec!["sales"]));
    let (_, list) = call(&d, "GET", "/api/v1/workspaces", Some(&mo)).await;
    assert_eq!(names(&list), vec!["marketing"]);
    let (_, list) = call(&d, "GET", "/api/v1/workspaces", Some(&root)).await;
    assert_eq!(names(&list), vec!["marketing", "sales"]);
    let (s, list) = call(&d, "GET", "/api/v1/workspaces", Some(&nobody)).await;
    assert_eq!((s, names(&list)), (200, Vec::<&str>::new()));

    // A workspace the caller has no role in answers exactly like one that does not exist.
    let (s1, hidden) = call(&d, "GET", "/api/v1/workspaces/marketing", Some(&erin)).await;
    let (s2, missing) = call(&d, "GET", "/api/v1/workspaces/nope", Some(&erin)).await;
    assert_eq!((s1, s2), (403, 403));
    assert_eq!(hidden["error"]["code"], "forbidden");
    assert_eq!(
        hidden["error"]["message"]
            .as_str()
            .unwrap()
            .replace("marketing", "X"),
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nope", "X")
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/workspaces/marketing/jobs", Some(&erin))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/workspaces/sales/jobs/load", Some(&ann))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/runs?workspace=marketing", Some(&erin))
            .await
            .0,
        403
    );
    // A platform admin gets the real 404.
    assert_eq!(
        call(&d, "GET", "/api/v1/workspaces/nope", Some(&root))
            .await
            .0,
        404
    );

    // A viewer trying every write route: 403.
    for (verb, path) in [
        ("POST", "/api/v1/workspaces/sales/jobs/load/runs"),
        ("POST", "/api/v1/reconcile"),
        ("POST", "/api/v1/workspaces/marketing/jobs/load/runs"),
    ] {
        let (s, body) = call(&d, verb, path, Some(&ann)).await;
        assert_eq!(s, 403, "{verb} {path}: {body}");
    }
    // An operator of one workspace cannot trigger another workspace's job; in its own, the
    // trigger gets past the roles (and stops at Airflow, which this test does not run).
    let (s, _) = call(
        &d,
        "POST",
        "/api/v1/workspaces/marketing/jobs/load/runs",
        Some(&erin),
    )
    .await;
    assert_eq!(s, 403);
    let (s, body) = call(
        &d,
        "POST",
        "/api/v1/workspaces/sales/jobs/load/runs",
        Some(&erin),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (503, Some("airflow_not_configured")),
        "{body}"
    );
    assert_eq!(
        call(&d, "POST", "/api/v1/reconcile", Some(&erin)).await.0,
        202
    );
    // The old write token has no role in this repository any more.
    assert_eq!(
        call(&d, "POST", "/api/v1/reconcile", Some(TOKEN)).await.0,
        403
    );

    // The audit log: platform admins only (a token holder in group platform too), and it holds
    // the denied attempts with who tried what.
    assert_eq!(call(&d, "GET", "/api/v1/audit", Some(&erin)).await.0, 403);
    let (s, audit) = call(
        &d,
        "GET",
        "/api/v1/audit?limit=100",
        Some("olo_platform_bot_token"),
    )
    .await;
    assert_eq!(s, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    let denied = |actor: &str, target: &str| {
        items.iter().any(|e| {
            e["action"] == "denied" && e["actor"] == actor && e["target"].as_str() == Some(target)
        })
    };
    assert!(
        denied(
            "ann@example.com",
            "POST /api/v1/workspaces/sales/jobs/load/runs"
        ),
        "{audit}"
    );
    assert!(
        denied(
            "erin@example.com",
            "POST /api/v1/workspaces/marketing/jobs/load/runs"
        ),
        "{audit}"
    );
    assert!(denied(
        "erin@example.com",
        "GET /api/v1/workspaces/marketing"
    ));
    assert!(denied("ci-bot", "POST /api/v1/reconcile"));
    assert!(items
        .iter()
        .any(|e| e["action"] == "reconcile_request" && e["actor"] == "erin@example.com"));

    // The dashboard applies the same roles.
    let page = |token: String, path: &'static str| {
        let d = &d;
        async move {
            let r = d
                .http
                .get(format!("{}{path}", d.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = page(erin.clone(), "/workspaces").await;
    assert_eq!(s, 200);
    assert!(html.contains("/workspaces/sales") && !html.contains("/workspaces/marketing"));
    assert_eq!(page(erin.clone(), "/workspaces/marketing").await.0, 403);
    assert_eq!(page(erin.clone(), "/audit").await.0, 403);
    assert_eq!(page(root.clone(), "/audit").await.0, 200);

    // Tokens never reach the log.
    let log = d.log();
    for secret in [&erin, &ann, &mo, &root, &nobody] {
        assert!(!log.contains(secret.as_str()), "a token is in olo's log");
    }
    assert!(!log.contains("olo_platform_bot_token") && !log.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_are_refused_with_the_reason() {
    let key = Arc::new(Key::generate("k1"));
    let provider = Provider::start(key.clone()).await;
    let repo = repo();
    let d = start(&provider, &repo).await;
    let root = |f: &dyn Fn(&mut Value)| {
        let mut c = provider.claims("root@example.com", &["platform"]);
        f(&mut c);
        c
    };
    let good = sign(&key, &root(&|_| {}));
    assert_eq!(call(&d, "GET", "/api/v1/status", Some(&good)).await.0, 200);

    // Signed by a key of the same id that the provider never published.
    let forger = Key::generate("k1");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            sign(
                &key,
                &root(&|c| {
                    c["exp"] = json!(now() - 120);
                }),
            ),
            "expired",
        ),
        (
            "wrong audience",
            sign(
                &key,
                &root(&|c| {
                    c["aud"] = json!("someone-else");
                }),
            ),
            "aud",
        ),
        (
            "wrong issuer",
            sign(
                &key,
                &root(&|c| {
                    c["iss"] = json!("https://evil.example.com");
                }),
            ),
            "issuer",
        ),
        (
            "not yet valid",
            sign(
                &key,
                &root(&|c| {
                    c["nbf"] = json!(now() + 3600);
                }),
            ),
            "not valid yet",
        ),
        ("wrongly signed", sign(&forger, &root(&|_| {})), "signature"),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(root(&|_| {}).to_string().as_bytes())
            ),
            "alg none",
        ),
        (
            "HS256 keyed with the public key",
            jsonwebtoken::encode(
                &Header {
                    kid: Some("k1".into()),
                    ..Header::new(Algorithm::HS256)
                },
                &root(&|_| {}),
                &EncodingKey::from_secret(key.jwk["n"].as_str().unwrap().as_bytes()),
            )
            .unwrap(),
            "asymmetric",
        ),
        (
            "unknown key id",
            {
                let other = Key::generate("k-unknown");
                sign(&other, &root(&|_| {}))
            },
            "JWKS does not hold",
        ),
        (
            "an unverified email",
            sign(
                &key,
                &root(&|c| {
                    c["email_verified"] = json!(false);
                }),
            ),
            "email_verified",
        ),
        ("garbage", "a.b.c".to_string(), "not a signed JWT"),
        ("not a JWT", "olo_not_a_token".to_string(), "neither"),
    ];
    for (what, token, reason) in &cases {
        for (verb, path) in [("GET", "/api/v1/status"), ("POST", "/api/v1/reconcile")] {
            let (s, body) = call(&d, verb, path, Some(token)).await;
            assert_eq!(s, 401, "{what}: {verb} {path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(reason), "{what}: {message}");
            assert!(!message.contains(token.as_str()), "{what}: echoed");
        }
    }
    // Refused writes are audited as unauthenticated attempts.
    let admin = sign(&key, &root(&|_| {}));
    let (_, audit) = call(&d, "GET", "/api/v1/audit?limit=200", Some(&admin)).await;
    let refused = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "denied"
                && e["actor"] == "unauthenticated"
                && e["target"] == "POST /api/v1/reconcile"
        })
        .count();
    // One row for the first; the rest are counted (the summary comes when the interval ends).
    assert_eq!(refused, 1);
    let metrics = d.get_text("/metrics").await;
    let counted = format!(
        "olo_denied_requests_total{{caller=\"unauthenticated\"}} {}",
        cases.len()
    );
    assert!(metrics.contains(&counted), "no `{counted}` in:\n{metrics}");
    let log = d.log();
    for (what, token, _) in &cases {
        assert!(
            token.len() < 8 || !log.contains(token.as_str()),
            "{what}: token in the log"
        );
    }
}

/// Rows of the audit log (newest first), read as a platform admin.
async fn audit_rows(d: &Daemon, key: &Key, provider: &Provider) -> Vec<Value> {
    let admin = provider.token(key, "root@example.com", &["platform"]);
    let (status, audit) = call(d, "GET", "/api/v1/audit?limit=500", Some(&admin)).await;
    assert_eq!(status, 200, "{audit}");
    audit["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_bogus_tokens_cannot_grow_the_audit_log() {
    let key = Arc::new(Key::generate("k1"));
    let provider = Provider::start(key.clone()).await;
    let repo = repo();
    let d = start(&provider, &repo).await;
    let before = audit_rows(&d, &key, &provider).await.len();

    let jwt_with_kid = |kid: String| {
        jsonwebtoken::encode(
            &Header {
                kid: Some(kid),
                ..Header::new(Algorithm::RS256)
            },
            &provider.claims("root@example.com", &["platform"]),
            &key.encoding,
        )
        .unwrap()
    };
    // A JWT whose key id is 250 KB is over the headers olo reads (32 KiB): 431 before anyone
    // looks at it, and nothing audited.
    let (status, body) = call(
        &d,
        "POST",
        "/api/v1/reconcile",
        Some(&jwt_with_kid("k".repeat(250 * 1024))),
    )
    .await;
    assert_eq!(status, 431, "{body}");
    assert!(body.to_string().len() < 2_000, "the answer echoes the kid");
    assert_eq!(audit_rows(&d, &key, &provider).await.len(), before);
    // One of 20 KB, sent anonymously: refused, and its kid is echoed nowhere whole, neither in
    // the answer nor in the audit log.
    let (status, body) = call(
        &d,
        "POST",
        "/api/v1/reconcile",
        Some(&jwt_with_kid("k".repeat(20 * 1024))),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().len() < 2_000, "the answer echoes the kid");
    let rows = audit_rows(&d, &key, &provider).await;
    assert_eq!(rows.len(), before + 1);
    assert_eq!(rows[0]["action"], "denied");
    assert!(
        rows[0].to_string().len() < 2_000,
        "the audit row holds the kid: {} bytes",
        rows[0].to_string().len()
    );
    let reason = rows[0]["details"]["reason"].as_str().unwrap();
    assert!(
        reason.chars().count() <= 200 && reason.contains("JWKS"),
        "{reason}"
    );

    // 1,000 more bogus tokens from the same source: counted, not one row each.
    let forger = Key::generate("k1");
    let bogus = sign(&forger, &provider.claims("root@example.com", &["platform"]));
    for i in 0..1_000 {
        let token = if i % 2 == 0 {
            bogus.as_str()
        } else {
            "olo_bogus_token"
        };
        assert_eq!(
            call(&d, "POST", "/api/v1/reconcile", Some(token)).await.0,
            401
        );
    }
    let rows = audit_rows(&d, &key, &provider).await;
    assert_eq!(
        rows.len(),
        before + 1,
        "one row per source and interval: {:?}",
        &rows[..3]
    );
    let metrics = d.get_text("/metrics").await;
    assert!(
        metrics.contains("olo_denied_requests_total{caller=\"unauthenticated\"} 1001"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_keys_are_fetched_and_retired_keys_refused() {
    let k1 = Arc::new(Key::generate("k1"));
    let provider = Provider::start(k1.clone()).await;
    let repo = repo();
    let d = start(&provider, &repo).await;
    let old = provider.token(&k1, "root@example.com", &["platform"]);
    assert_eq!(call(&d, "GET", "/api/v1/status", Some(&old)).await.0, 200);
    let fetches = provider.jwks_fetches().await;
    // Cached: the same key again does not fetch the JWKS.
    assert_eq!(call(&d, "GET", "/api/v1/status", Some(&old)).await.0, 200);
    assert_eq!(provider.jwks_fetches().await, fetches);

    // The provider rotates: k2 signs, k1 is retired.
    let k2 = Arc::new(Key::generate("k2"));
    *provider.jwks.lock().unwrap() = vec![k2.jwk.clone()];
    *provider.signer.lock().unwrap() = Some(k2.clone());
    // Fetches are at most one a second (forged key ids cannot hammer the provider).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new = provider.token(&k2, "root@example.com", &["platform"]);
    assert_eq!(call(&d, "GET", "/api/v1/status", Some(&new)).await.0, 200);
    assert_eq!(provider.jwks_fetches().await, fetches + 1);
    let (s, body) = call(&d, "GET", "/api/v1/status", Some(&old)).await;
    assert_eq!(s, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not hold"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_signs_in_with_the_authorization_code_flow_and_pkce() {
    let key = Arc::new(Key::generate("k1"));
    let provider = Provider::start(key.clone()).await;
    *provider.user.lock().unwrap() = json!({"sub": "s-erin", "email": "erin@example.com", "email_verified": true, "groups": ["sales-eng"]});
    let repo = repo();
    let d = start(&provider, &repo).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Not signed in: the page says so and offers the sign-in.
    let r = http
        .get(format!("{}/workspaces", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("/auth/login"));

    // 1. olo sends the browser to the provider, keeping state, nonce and verifier in a cookie.
    let r = http
        .get(format!("{}/auth/login?return_to=/workspaces", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_provider = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to_provider.starts_with(&format!("{}/authorize?", provider.issuer())));
    let flow_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(flow_cookie.contains("HttpOnly") && flow_cookie.contains("Path=/auth"));
    let flow_cookie = flow_cookie.split(';').next().unwrap().to_string();

    // 2. The provider signs the user in and sends the browser back with a code.
    let r = http.get(&to_provider).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let back = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/auth/callback");
    let callback = format!("{}/auth/callback?{}", d.base, back.query().unwrap());

    // A callback whose state is not this browser's is refused.
    let forged = callback.replace("state=", "state=x");
    let r = http
        .get(&forged)
        .header("Cookie", &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // 3. olo trades the code (with the PKCE verifier) for the ID token and sets the session.
    let r = http
        .get(&callback)
        .header("Cookie", &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["location"], "/workspaces");
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("olo_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    let session = session.split(';').next().unwrap().to_string();

    // Signed in: the pages show what erin may see, and nothing else.
    let r = http
        .get(format!("{}/workspaces", d.base))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("/workspaces/sales") && !html.contains("/workspaces/marketing"));
    let r = http
        .get(format!("{}/workspaces/marketing", d.base))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The session cookie is for reading: a write with it alone is not signed in (no CSRF).
    let r = http
        .post(format!("{}/api/v1/reconcile", d.base))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signing out clears the cookie.
    let r = http
        .get(format!("{}/auth/logout", d.base))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}
