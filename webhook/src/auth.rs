//! Who is calling. Service accounts present API tokens: settings hold only SHA-256 hashes of
//! them (`olo token --name NAME` prints a token and its hash); a presented token is hashed and
//! compared in constant time. People present OpenID Connect tokens (a bearer JWT, or the
//! dashboard's session cookie holding the ID token of their sign-in), checked by [`crate::oidc`].
//! Tokens are never logged, nor echoed in errors.

use axum::http::{HeaderMap, Method};

use crate::access::Principal;
use crate::error::ApiError;
use crate::AppState;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it: the identity written to the audit log ("ci", "alice").
    pub name: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// The groups the holder is in, for the repository's `group:` roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

pub fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A new random token (`olo_` + 32 random bytes in hex) and its hash.
pub fn new_token() -> (String, String) {
    let token = format!(
        "olo_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let h = hash(&token);
    (token, h)
}

/// The credential of `Authorization: Bearer <credential>`, if any. The scheme's name is
/// case-insensitive (RFC 9110 section 11.1: `bearer`, `BEARER`).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, presented) = value.split_once(' ')?;
    let presented = presented.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !presented.is_empty()).then_some(presented)
}

/// The holder of the token presented as `Authorization: Bearer <token>`, if it is a known one.
pub fn caller<'t>(tokens: &'t [ApiToken], headers: &HeaderMap) -> Option<&'t ApiToken> {
    let presented = hash(bearer(headers)?);
    let mut found = None;
    // Compare with every token (no early exit) so timing says nothing about which matched.
    for t in tokens {
        if bool::from(t.sha256.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(t);
        }
    }
    found
}

/// The dashboard's session cookie: the ID token of the browser's sign-in.
pub const SESSION_COOKIE: &str = "olo_session";

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Who is calling: `Ok(None)` for an anonymous caller; a credential that is presented but not
/// good is a 401 with the reason (never anonymous). The session cookie counts only for reads
/// (GET, HEAD), so a page on another site cannot make a signed-in browser write (CSRF).
pub async fn identify(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(presented) = bearer(headers) {
        if let Some(t) = caller(&state.config.tokens, headers) {
            return Ok(Some(Principal {
                name: t.name.clone(),
                groups: t.groups.clone(),
                via: "token",
            }));
        }
        let Some(oidc) = &state.oidc else {
            return Err(ApiError::unauthorized(
                "the bearer token is not one of olo's API tokens ([[api.tokens]])",
            ));
        };
        if presented.split('.').count() != 3 {
            return Err(ApiError::unauthorized(
                "the bearer token is neither one of olo's API tokens nor a JWT",
            ));
        }
        let audience = oidc.config.audience.clone();
        return match oidc.verify(presented, &audience, None).await {
            Ok(p) => Ok(Some(p)),
            Err(crate::oidc::OidcError::Refused(why)) => Err(ApiError::unauthorized(why)),
            Err(e @ crate::oidc::OidcError::Unavailable(_)) => Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "oidc_unavailable",
                e.to_string(),
            )),
        };
    }
    let read = method == Method::GET || method == Method::HEAD;
    if let (true, Some(oidc), Some(session)) = (read, &state.oidc, cookie(headers, SESSION_COOKIE))
    {
        let client = oidc.config.client_id.clone();
        // An expired or foreign session is no identity: the page asks to sign in again.
        if let Ok(p) = oidc.verify(session, &client, None).await {
            return Ok(Some(Principal {
                via: "session",
                ..p
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn known_tokens_name_their_holder_and_others_do_not() {
        let (token, sha256) = new_token();
        assert!(token.starts_with("olo_") && token.len() == 68);
        let tokens = vec![ApiToken {
            name: "ci".into(),
            sha256,
            groups: vec![],
        }];
        assert_eq!(
            caller(&tokens, &headers(&format!("Bearer {token}"))).map(|t| t.name.as_str()),
            Some("ci")
        );
        for scheme in ["bearer", "BEARER", "beaRer"] {
            assert_eq!(
                caller(&tokens, &headers(&format!("{scheme} {token}"))).map(|t| t.name.as_str()),
                Some("ci"),
                "{scheme}"
            );
        }
        assert_eq!(caller(&tokens, &headers(&format!("Bearer{token}"))), None);
        assert_eq!(caller(&tokens, &headers("Bearer olo_wrong")), None);
        assert_eq!(caller(&tokens, &headers(&format!("Basic {token}"))), None);
        assert_eq!(caller(&tokens, &headers("Bearer ")), None);
        assert_eq!(caller(&tokens, &HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            "a=1; olo_session=tok".parse().unwrap(),
        );
        h.append(axum::http::header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&h, "olo_session"), Some("tok"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "olo"), None);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
