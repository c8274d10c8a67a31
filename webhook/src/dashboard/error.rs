//! The dashboard's error pages, and the gate every page passes: the caller's roles.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use olo_reconciler::store::StoreError;

use super::render;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::AppState;

/// A page that could not be shown, rendered as an HTML error page with its status.
#[derive(Debug)]
pub struct PageError {
    pub(super) status: StatusCode,
    pub(super) title: &'static str,
    pub(super) message: String,
    /// Offer the OpenID Connect sign-in (a 401 where it is configured).
    pub(super) sign_in: bool,
}

impl PageError {
    pub(super) fn not_found(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: message.into(),
            sign_in: false,
        }
    }

    pub(super) fn internal(cause: &dyn std::fmt::Display) -> PageError {
        let id = format!("err_{}", uuid::Uuid::new_v4().simple());
        // The cause (paths, SQL) goes to the log, not to the page.
        tracing::error!(error_id = %id, "error {id}: dashboard: {cause:#}");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Internal error",
            message: format!(
                "The page could not be made; the server log has the cause under {id}."
            ),
            sign_in: false,
        }
    }

    pub(super) fn not_ready() -> PageError {
        PageError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "No configuration yet",
            message: "olo has not read a valid commit yet; the overview shows why.".into(),
            sign_in: false,
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        if e.is_temporary() {
            PageError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "State store unavailable",
                message: "The state store is not reachable; try again.".into(),
                sign_in: false,
            }
        } else {
            PageError::internal(&e)
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = render(
            "error.html",
            context! {
                nav => "",
                status => self.status.as_u16(),
                title => self.title,
                message => self.message,
                sign_in => self.sign_in,
            },
        );
        match body {
            Ok(html) => (self.status, html).into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// `Ok` when the caller may see the page; else 401 (with a sign-in link where OpenID Connect
/// is configured) or 403, the same page whether what was asked for exists or not.
pub(super) async fn gate(
    state: &AppState,
    caller: &Caller,
    need: Need<'_>,
) -> Result<(), PageError> {
    caller.need(state, need).await.map_err(|e: ApiError| {
        let sign_in = e.status == StatusCode::UNAUTHORIZED;
        PageError {
            status: e.status,
            title: if sign_in { "Sign in required" } else { "Not allowed" },
            message: if sign_in {
                if state.oidc.is_some() {
                    "This page needs you to sign in.".into()
                } else {
                    "This server requires an identity for reads (api.read_requires_token) and has no \
                     OpenID Connect sign-in configured: use the API with a token."
                        .into()
                }
            } else {
                e.message
            },
            sign_in: sign_in && state.oidc.is_some(),
        }
    })
}
