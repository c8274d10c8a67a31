//! The local OpenID provider of the access tests: an RSA key pair made per test, RS256 JWTs,
//! discovery, JWKS and an authorization-code + PKCE token endpoint over HTTP (wiremock), and
//! the repository with roles the daemon under test reads.

use std::sync::{Arc, Mutex};

use crate::common::daemon::{Daemon, WHO};
use crate::common::Repo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub(super) const CLIENT: &str = "olo-dashboard";
pub(super) const AUDIENCE: &str = "olo-api";

pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) struct Key {
    pub(super) kid: String,
    pub(super) encoding: EncodingKey,
    pub(super) jwk: Value,
}

impl Key {
    pub(super) fn generate(kid: &str) -> Key {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        Key {
            kid: kid.into(),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": b64(&private.n().to_bytes_be()),
                "e": b64(&private.e().to_bytes_be()),
            }),
        }
    }
}

/// The provider: its keys (what the JWKS serves), and the sign-in in progress.
pub(super) struct Provider {
    pub(super) server: MockServer,
    pub(super) jwks: Arc<Mutex<Vec<Value>>>,
    pub(super) signer: Arc<Mutex<Option<Arc<Key>>>>,
    /// The claims of who signs in on the dashboard.
    pub(super) user: Arc<Mutex<Value>>,
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(super) fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

pub(super) struct Jwks(pub(super) Arc<Mutex<Vec<Value>>>);
impl Respond for Jwks {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({ "keys": *self.0.lock().unwrap() }))
    }
}

pub(super) struct Authorize(pub(super) Arc<Mutex<Option<(String, String)>>>);
impl Respond for Authorize {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], CLIENT);
        assert_eq!(q["code_challenge_method"], "S256");
        *self.0.lock().unwrap() = Some((q["code_challenge"].clone(), q["nonce"].clone()));
        let back = format!(
            "{}?code=the-code&state={}",
            q["redirect_uri"],
            urlencode(&q["state"])
        );
        ResponseTemplate::new(302).insert_header("Location", back.as_str())
    }
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) struct TokenEndpoint {
    pub(super) pending: Arc<Mutex<Option<(String, String)>>>,
    pub(super) signer: Arc<Mutex<Option<Arc<Key>>>>,
    pub(super) user: Arc<Mutex<Value>>,
    pub(super) issuer: String,
}
impl Respond for TokenEndpoint {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        use sha2::Digest as _;
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&req.body)
                .into_owned()
                .collect();
        let Some((challenge, nonce)) = self.pending.lock().unwrap().take() else {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}));
        };
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        // PKCE (RFC 7636 S256): the verifier must hash to the challenge /authorize was given.
        if b64(&sha2::Sha256::digest(verifier.as_bytes())) != challenge
            || form.get("code").map(String::as_str) != Some("the-code")
            || form.get("grant_type").map(String::as_str) != Some("authorization_code")
        {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}));
        }
        let key = self.signer.lock().unwrap().clone().unwrap();
        let mut claims = self.user.lock().unwrap().clone();
        claims["iss"] = json!(self.issuer);
        claims["aud"] = json!(CLIENT);
        claims["exp"] = json!(now() + 600);
        claims["iat"] = json!(now());
        claims["nonce"] = json!(nonce);
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "opaque", "token_type": "Bearer", "id_token": sign(&key, &claims)
        }))
    }
}

impl Provider {
    pub(super) async fn start(key: Arc<Key>) -> Provider {
        use wiremock::matchers::{method, path};
        let server = MockServer::start().await;
        let issuer = server.uri();
        let jwks = Arc::new(Mutex::new(vec![key.jwk.clone()]));
        let signer = Arc::new(Mutex::new(Some(key)));
        // What /authorize saw (code challenge, nonce), for /token.
        let pending = Arc::new(Mutex::new(None));
        let user = Arc::new(Mutex::new(json!({})));
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "jwks_uri": format!("{issuer}/jwks"),
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(Jwks(jwks.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/authorize"))
            .respond_with(Authorize(pending.clone()))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(TokenEndpoint {
                pending: pending.clone(),
                signer: signer.clone(),
                user: user.clone(),
                issuer: issuer.clone(),
            })
            .mount(&server)
            .await;
        Provider {
            server,
            jwks,
            signer,
            user,
        }
    }

    pub(super) fn issuer(&self) -> String {
        self.server.uri()
    }

    /// An access token for the API, as the provider would issue it.
    pub(super) fn token(&self, key: &Key, who: &str, groups: &[&str]) -> String {
        sign(key, &self.claims(who, groups))
    }

    pub(super) fn claims(&self, who: &str, groups: &[&str]) -> Value {
        json!({
            "iss": self.issuer(), "aud": AUDIENCE, "sub": format!("sub-{who}"),
            "email": who, "email_verified": true, "groups": groups, "exp": now() + 600,
            "iat": now(),
        })
    }

    pub(super) async fn jwks_fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/jwks")
            .count()
    }
}

/// Two workspaces with roles, platform admins by group.
pub(super) fn repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "olo.yaml",
        "apiVersion: olo/v1\nkind: Repository\nspec:\n  admins: ['group:platform']\n",
    );
    for (ws, access) in [
        (
            "sales",
            "admin: ['user:sally@example.com']\n    operator: ['group:sales-eng']\n    viewer: ['group:analysts']",
        ),
        ("marketing", "operator: ['user:mo@example.com']"),
    ] {
        repo.write(
            &format!("workspaces/{ws}/workspace.yaml"),
            &format!("apiVersion: olo/v1\nkind: Workspace\nmetadata: {{name: {ws}}}\nspec:\n  lakehouse: {{catalog: lake, warehouse: 's3://lake-bucket/{ws}', namespaces: [raw]}}\n  access:\n    {access}\n"),
        );
        repo.write(
            &format!("workspaces/{ws}/jobs/load.yaml"),
            &crate::common::job("load", "echo load"),
        );
    }
    std::fs::remove_dir_all(repo.path().join("workspaces/w")).unwrap();
    repo.commit("two workspaces with roles", WHO);
    repo
}

pub(super) async fn start(provider: &Provider, repo: &Repo) -> Daemon {
    let issuer = provider.issuer();
    Daemon::start_with_settings(
        repo,
        &[
            ("OLO_API__READ_REQUIRES_TOKEN", "true"),
            ("OLO_LAKEHOUSE__CATALOG", "off"),
            ("OLO_LAKEHOUSE__WAREHOUSE", "off"),
        ],
        &[],
        &format!(
            "[[api.tokens]]\nname = \"platform-bot\"\nsha256 = \"{}\"\ngroups = [\"platform\"]\n\n\
             [oidc]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT}\"\naudience = \"{AUDIENCE}\"\n\
             redirect_url = \"http://olo.invalid/auth/callback\"\n",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                b"olo_platform_bot_token"
            ))
        ),
    )
    .await
}

pub(super) async fn call(d: &Daemon, verb: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = d
        .http
        .request(verb.parse().unwrap(), format!("{}{path}", d.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if verb == "POST" {
        r = r.json(&json!({}));
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(super) fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect()
}
