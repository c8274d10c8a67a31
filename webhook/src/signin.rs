//! The dashboard's OpenID Connect sign-in: the authorization-code flow with PKCE (RFC 7636).
//!
//! `GET /auth/login?return_to=/runs` sends the browser to the provider with a fresh `state`,
//! `nonce` and PKCE challenge, and keeps them (with the verifier and where to return) in a
//! short-lived, HttpOnly cookie scoped to `/auth`: nothing is kept on the server, so any replica
//! can finish a sign-in another one started. `GET /auth/callback` checks `state`, trades the code
//! (with the verifier) for the ID token, verifies it (signature, issuer, audience = the client id,
//! expiry, nonce) and sets the session cookie to it (HttpOnly, SameSite=Lax, Secure on https,
//! expiring with the token). The session counts only for reads, so it cannot be used for CSRF.
//! `GET /auth/logout` clears it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::auth::{cookie, SESSION_COOKIE};
use crate::error::ApiError;
use crate::oidc::{Oidc, OidcError};
use crate::AppState;

const FLOW_COOKIE: &str = "olo_signin";
/// Seconds a browser has to come back from the provider.
const FLOW_SECONDS: u32 = 600;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", get(logout))
}

fn oidc(state: &AppState) -> Result<&Arc<Oidc>, ApiError> {
    state.oidc.as_ref().ok_or_else(|| {
        ApiError::not_found("sign-in is off: olo has no OpenID provider configured ([oidc])")
    })
}

fn unavailable(e: OidcError) -> ApiError {
    match e {
        OidcError::Refused(why) => ApiError::unauthorized(format!("sign-in refused: {why}")),
        e => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "oidc_unavailable",
            e.to_string(),
        ),
    }
}

/// A path on this server (`/runs?state=failed`), never another site (`//evil`, `https:`).
fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

fn secure(oidc: &Oidc) -> &'static str {
    match oidc.config.redirect_url.as_deref() {
        Some(u) if u.starts_with("https://") => "; Secure",
        _ => "",
    }
}

fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

async fn login(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let oidc = oidc(&state)?;
    let (flow_state, nonce, verifier) = (random(), random(), random());
    let url = oidc
        .authorize_url(&flow_state, &nonce, &verifier)
        .await
        .map_err(unavailable)?;
    let return_to = local_path(q.return_to.as_deref());
    let value = format!(
        "{flow_state}.{nonce}.{verifier}.{}",
        hex::encode(return_to.as_bytes())
    );
    let cookie = format!(
        "{FLOW_COOKIE}={value}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age={FLOW_SECONDS}{}",
        secure(oidc)
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let oidc = oidc(&state)?;
    if let Some(error) = q.error {
        let error: String = error.chars().take(100).collect();
        return Err(ApiError::unauthorized(format!(
            "the provider did not sign you in ({error}); try /auth/login again"
        )));
    }
    let flow = cookie(&headers, FLOW_COOKIE).ok_or_else(|| {
        ApiError::bad_request("no sign-in in progress in this browser (or it took over 10 minutes); start at /auth/login")
    })?;
    let parts: Vec<&str> = flow.split('.').collect();
    let [flow_state, nonce, verifier, return_to] = parts[..] else {
        return Err(ApiError::bad_request(
            "the sign-in cookie is damaged; start at /auth/login",
        ));
    };
    let given = q.state.unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(flow_state.as_bytes())) {
        return Err(ApiError::bad_request(
            "the sign-in answer does not belong to this browser's sign-in (state); start at /auth/login",
        ));
    }
    let code = q
        .code
        .ok_or_else(|| ApiError::bad_request("the provider sent no code"))?;
    let (id_token, who) = oidc
        .exchange(&code, verifier, nonce)
        .await
        .map_err(unavailable)?;
    let max_age = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&id_token)
        .ok()
        .and_then(|d| d.claims.get("exp").and_then(serde_json::Value::as_i64))
        .map(|exp| (exp - chrono::Utc::now().timestamp()).max(0))
        .unwrap_or(0);
    tracing::info!(
        "olo: dashboard sign-in of user:{} via OpenID Connect",
        who.name
    );
    let return_to = hex::decode(return_to)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let session = format!(
        "{SESSION_COOKIE}={id_token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        secure(oidc)
    );
    let clear = format!("{FLOW_COOKIE}=; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((
        AppendHeaders([(header::SET_COOKIE, session), (header::SET_COOKIE, clear)]),
        Redirect::to(&local_path(return_to.as_deref())),
    )
        .into_response())
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/runs?state=failed")), "/runs?state=failed");
        for bad in [
            "//evil.example.com",
            "https://evil.example.com",
            "/\\evil",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
