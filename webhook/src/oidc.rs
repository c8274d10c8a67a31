//! OpenID Connect: verifying ID and access tokens (JWTs) an identity provider signed, and the
//! dashboard's sign-in (authorization-code flow with PKCE).
//!
//! The provider's discovery document (`<issuer>/.well-known/openid-configuration`) names its
//! JWKS; keys are cached and fetched again when a token names a key id the cache does not hold
//! (key rotation), at most once a second so forged key ids cannot make olo hammer the provider,
//! and at least hourly. A token is accepted only when it is signed with an asymmetric algorithm
//! by a key of the JWKS of that type, its `iss` is the issuer, its `aud` holds the expected
//! audience, it has not expired (30 s leeway), and `nbf` has passed. `alg: none` and HMAC are
//! refused, whatever the header says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::access::Principal;

/// What olo needs to know of the provider (settings `[oidc]`).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its tokens' `iss`.
    pub issuer: String,
    /// The `aud` that API bearer tokens must hold (default: the client id).
    pub audience: String,
    /// The dashboard's client (its ID tokens have it as `aud`).
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// Where the provider sends the browser back: `https://olo.example.com/auth/callback`.
    pub redirect_url: Option<String>,
    /// The claim holding the caller's groups; a dotted path reaches into objects
    /// (`realm_access.roles`).
    pub groups_claim: String,
    /// The claim naming the caller (`user:<name>` in the roles); `sub` when it is missing.
    pub username_claim: String,
    /// With `username_claim = "email"`: refuse a token whose `email_verified` is not true (an
    /// address anyone can type at some providers is not an identity).
    pub require_email_verified: bool,
    pub scopes: String,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The token is not acceptable: the message says why (never the token).
    #[error("{0}")]
    Refused(String),
    /// The provider could not be asked (discovery, JWKS or token endpoint).
    #[error("the OpenID provider is not reachable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

#[derive(Default)]
struct Keys {
    keys: Vec<Jwk>,
    /// The last good fetch.
    fetched: Option<Instant>,
    /// The last try (good or not): fetches are at least [`MIN_REFRESH`] apart.
    tried: Option<Instant>,
}

const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_AGE: Duration = Duration::from_secs(3600);
const LEEWAY_SECONDS: u64 = 30;

/// Algorithms olo accepts: asymmetric only.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    discovery: tokio::sync::Mutex<Option<Arc<Discovery>>>,
    /// Held across a fetch, so fetches never overlap.
    keys: tokio::sync::Mutex<Keys>,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Oidc, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        Ok(Oidc {
            config,
            http,
            discovery: tokio::sync::Mutex::default(),
            keys: tokio::sync::Mutex::default(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Unavailable(format!("GET {url}: unreadable answer: {e}")))
    }

    /// The provider's discovery document (fetched once, again after a failure).
    pub async fn discovery(&self) -> Result<Arc<Discovery>, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer != self.config.issuer {
            return Err(OidcError::Unavailable(format!(
                "the discovery document names the issuer {:?}, not the configured {:?} (oidc.issuer must be the provider's issuer exactly)",
                d.issuer, self.config.issuer
            )));
        }
        let d = Arc::new(d);
        *cached = Some(d.clone());
        Ok(d)
    }

    /// The key a token names, fetching the JWKS when it is not cached (rotation) or old.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, OidcError> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|t| t.elapsed() > MAX_AGE);
        let may_fetch = keys.tried.is_none_or(|t| t.elapsed() >= MIN_REFRESH);
        if (stale || find(&keys.keys, kid).is_none()) && may_fetch {
            keys.tried = Some(Instant::now());
            let discovery = self.discovery().await?;
            let set: Value = self.get_json(&discovery.jwks_uri).await?;
            keys.keys = parse_jwks(&set);
            keys.fetched = Some(Instant::now());
        }
        find(&keys.keys, kid).cloned().ok_or_else(|| {
            OidcError::Refused(match kid {
                Some(kid) => format!(
                    "the token is signed with key {:?}, which the provider's JWKS does not hold",
                    olo_reconciler::text::echo(kid, 64)
                ),
                None => "the token names no key id and the provider's JWKS holds more than one key"
                    .into(),
            })
        })
    }

    /// Verifies a token and returns who it names. `audience`: the API's audience for bearer
    /// tokens, the client id for the dashboard's ID tokens; `nonce`: the sign-in's nonce.
    pub async fn verify(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<Principal, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            OidcError::Refused(format!(
                "the token is not a signed JWT olo accepts ({e}); alg none and HMAC are refused"
            ))
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::Refused(format!(
                "the token is signed with {:?}; olo accepts only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA)",
                header.alg
            )));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        if !fits(&jwk, header.alg) {
            return Err(OidcError::Refused(format!(
                "the token's algorithm {:?} does not fit the provider's key {:?}",
                header.alg,
                jwk.common.key_id.as_deref().unwrap_or("")
            )));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::Unavailable(format!("unusable key in the JWKS: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data =
            jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| refusal(&e))?;
        let claims = data.claims;
        if let Some(nonce) = nonce {
            if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
                return Err(OidcError::Refused(
                    "the ID token's nonce is not the sign-in's".into(),
                ));
            }
        }
        principal(&claims, &self.config, "oidc")
    }

    /// Where the dashboard sends a browser to sign in.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let redirect = self.redirect_url()?;
        let mut url = url::Url::parse(&d.authorization_endpoint).map_err(|e| {
            OidcError::Unavailable(format!("authorization_endpoint is not a URL: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", &self.config.scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce_challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    pub fn redirect_url(&self) -> Result<&str, OidcError> {
        self.config.redirect_url.as_deref().ok_or_else(|| {
            OidcError::Unavailable("oidc.redirect_url is not set: dashboard sign-in is off".into())
        })
    }

    /// Trades an authorization code for the ID token (checked, nonce included).
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<(String, Principal), OidcError> {
        let d = self.discovery().await?;
        let redirect = self.redirect_url()?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ];
        let mut request = self.http.post(&d.token_endpoint);
        match &self.config.client_secret {
            Some(secret) => {
                request = request.basic_auth(&self.config.client_id, Some(secret.expose_secret()))
            }
            None => form.push(("client_id", &self.config.client_id)),
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("");
            return Err(OidcError::Refused(format!(
                "the provider refused the sign-in (HTTP {status} {error})"
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Refused("the provider sent no id_token".into()))?
            .to_string();
        let who = self
            .verify(&id_token, &self.config.client_id, Some(nonce))
            .await?;
        Ok((
            id_token,
            Principal {
                via: "session",
                ..who
            },
        ))
    }
}

fn find<'k>(keys: &'k [Jwk], kid: Option<&str>) -> Option<&'k Jwk> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

/// The signing keys of a JWKS: asymmetric keys for signatures; others (and keys of unknown
/// types) are left out, not fatal.
fn parse_jwks(set: &Value) -> Vec<Jwk> {
    set.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .filter(|k| {
                    !matches!(k.algorithm, AlgorithmParameters::OctetKey(_))
                        && !matches!(k.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a token's algorithm fits the key: the key's type, and its `alg` when it has one.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => jsonwebtoken::AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => jsonwebtoken::AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => jsonwebtoken::AlgorithmFamily::Ed,
        AlgorithmParameters::OctetKey(_) => return false,
    };
    let key_alg_ok = jwk
        .common
        .key_algorithm
        .is_none_or(|ka| serde_json::to_value(ka).ok() == serde_json::to_value(alg).ok());
    family.algorithms().contains(&alg) && key_alg_ok
}

fn refusal(e: &jsonwebtoken::errors::Error) -> OidcError {
    use jsonwebtoken::errors::ErrorKind as K;
    OidcError::Refused(
        match e.kind() {
            K::ExpiredSignature => "the token has expired",
            K::ImmatureSignature => "the token is not valid yet (nbf)",
            K::InvalidSignature => "the token's signature does not verify",
            K::InvalidIssuer => "the token's issuer is not the configured OpenID provider",
            K::InvalidAudience => "the token is not meant for olo (aud)",
            K::MissingRequiredClaim(_) => "the token lacks exp, iss or aud",
            K::InvalidAlgorithm => "the token's algorithm does not fit the key",
            _ => "the token is malformed",
        }
        .to_string(),
    )
}

/// The caller a verified token names.
pub fn principal(
    claims: &Value,
    config: &OidcConfig,
    via: &'static str,
) -> Result<Principal, OidcError> {
    let name = claim(claims, &config.username_claim)
        .and_then(Value::as_str)
        .or_else(|| claims.get("sub").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            OidcError::Refused(format!(
                "the token has neither the {:?} claim nor sub",
                config.username_claim
            ))
        })?;
    if config.username_claim == "email"
        && config.require_email_verified
        && claim(claims, "email").and_then(Value::as_str) == Some(name)
        && !email_verified(claims)
    {
        return Err(OidcError::Refused(
            "the token's email is not verified (its email_verified claim is not true)".into(),
        ));
    }
    let groups = match claim(claims, &config.groups_claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(Principal {
        name: name.to_string(),
        groups,
        via,
    })
}

/// `email_verified: true` (some providers send the string `"true"`).
fn email_verified(claims: &Value) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

fn claim<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    claims.get(path).or_else(|| {
        path.split('.')
            .try_fold(claims, |v, part| v.get(part))
            .filter(|_| path.contains('.'))
    })
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636's S256.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://idp.example.com".into(),
            audience: "olo".into(),
            client_id: "olo".into(),
            client_secret: None,
            redirect_url: None,
            groups_claim: "realm_access.roles".into(),
            username_claim: "email".into(),
            require_email_verified: true,
            scopes: "openid".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn an_email_name_needs_a_verified_email() {
        let c = config();
        let claims = |verified: Value| json!({"sub": "1", "email": "a@example.com", "email_verified": verified});
        for refused in [json!(false), json!("false"), Value::Null, json!(1)] {
            let e = principal(&claims(refused.clone()), &c, "oidc").unwrap_err();
            assert!(e.to_string().contains("email_verified"), "{refused}: {e}");
        }
        assert!(principal(&json!({"sub": "1", "email": "a@example.com"}), &c, "oidc").is_err());
        for accepted in [json!(true), json!("true")] {
            assert_eq!(
                principal(&claims(accepted), &c, "oidc").unwrap().name,
                "a@example.com"
            );
        }
        // Named by sub (no email): nothing to verify.
        assert_eq!(
            principal(&json!({"sub": "1"}), &c, "oidc").unwrap().name,
            "1"
        );
        // Relaxed by the setting, or another username claim.
        let relaxed = OidcConfig {
            require_email_verified: false,
            ..config()
        };
        assert!(principal(&claims(json!(false)), &relaxed, "oidc").is_ok());
        let by_name = OidcConfig {
            username_claim: "preferred_username".into(),
            ..config()
        };
        let p = principal(
            &json!({"sub": "1", "preferred_username": "ada", "email_verified": false}),
            &by_name,
            "oidc",
        )
        .unwrap();
        assert_eq!(p.name, "ada");
    }

    #[test]
    fn names_and_groups_come_from_the_configured_claims() {
        let c = config();
        let p = principal(
            &json!({"sub": "123", "email": "ada@example.com", "email_verified": true, "realm_access": {"roles": ["a", 7, "b"]}}),
            &c,
            "oidc",
        )
        .unwrap();
        assert_eq!(p.name, "ada@example.com");
        assert_eq!(p.groups, vec!["a", "b"]);
        let p = principal(
            &json!({"sub": "123", "realm_access": {"roles": "solo"}}),
            &c,
            "oidc",
        )
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.groups),
            ("123", vec!["solo".to_string()])
        );
        assert!(principal(&json!({"email": ""}), &c, "oidc").is_err());
        // A flat claim whose name has a dot is read as is.
        let c = OidcConfig {
            groups_claim: "https://example.com/groups".into(),
            ..config()
        };
        let p = principal(
            &json!({"sub": "s", "https://example.com/groups": ["g"]}),
            &c,
            "oidc",
        )
        .unwrap();
        assert_eq!(p.groups, vec!["g"]);
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used_for_signatures() {
        let set = json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "enc", "use": "enc", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "kid": "sig", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"}
        ]});
        let keys = parse_jwks(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].common.key_id.as_deref(), Some("sig"));
        assert!(fits(&keys[0], Algorithm::EdDSA));
        assert!(!fits(&keys[0], Algorithm::ES256));
        assert!(!fits(&keys[0], Algorithm::HS256));
        assert!(find(&keys, Some("h")).is_none());
        assert!(find(&keys, None).is_some());
    }
}
