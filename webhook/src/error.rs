//! The API's one error shape: `{"error": {"id", "code", "message"}}`. The id is in the server's
//! log beside the cause, so a user can quote it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    id: &'a str,
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// An internal failure: the cause is logged with the error id, the client sees the id only.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the cause under this error id",
        );
        e.message = format!("{} ({cause:#})", e.message);
        e
    }
}

impl From<olo_reconciler::store::StoreError> for ApiError {
    fn from(e: olo_reconciler::store::StoreError) -> ApiError {
        if e.is_temporary() {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the state store is not reachable; try again",
            )
        } else {
            ApiError::internal(&e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = format!("err_{}", uuid::Uuid::new_v4().simple());
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            // Keep causes (paths, SQL) out of responses; log them with the id.
            tracing::error!(error_id = %id, "error {id}: {}", self.message);
            "internal error; the server log has the cause under this error id".to_string()
        } else {
            self.message
        };
        let body = Body {
            error: Inner {
                id: &id,
                code: self.code,
                message: &message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
