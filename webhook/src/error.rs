//! The API's one error shape: `{"error": {"id", "code", "message", "request_id"}}`. The id is in
//! the server's log beside the cause, so a user can quote it; the request id names the request's
//! log lines ([`crate::trace`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use olo_reconciler::runs::RunError;
use olo_reconciler::targets::airflow::AirflowError;
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
    /// The request's id ([`crate::trace`]), also in the `X-Request-Id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
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

impl From<AirflowError> for ApiError {
    fn from(e: AirflowError) -> ApiError {
        if matches!(e, AirflowError::Conflict { .. }) {
            ApiError::new(StatusCode::CONFLICT, "run_exists", e.to_string())
        } else if e.is_temporary() {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "airflow_unavailable",
                format!("Airflow did not answer: {e}; try again"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "airflow_refused",
                format!("Airflow refused the request: {e}"),
            )
        }
    }
}

/// A run refused or failed (`olo_reconciler::runs`): what the caller asked for is wrong (400),
/// unknown (404) or at odds with the run or job (409); Airflow or the store failed (502, 503).
impl From<RunError> for ApiError {
    fn from(e: RunError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match e {
            RunError::Airflow(e) => return e.into(),
            RunError::Store(e) => return e.into(),
            RunError::UnknownJob { .. } => (StatusCode::NOT_FOUND, "not_found"),
            RunError::ReservedConf | RunError::NoteTooLong => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            RunError::InvalidConf { .. } => (StatusCode::BAD_REQUEST, "invalid_conf"),
            RunError::AirflowNotConfigured => {
                (StatusCode::SERVICE_UNAVAILABLE, "airflow_not_configured")
            }
            RunError::DagNotInAirflow { .. } => (StatusCode::CONFLICT, "dag_not_in_airflow"),
            RunError::JobPaused { .. } => (StatusCode::CONFLICT, "job_paused"),
            RunError::RunFinished { .. } => (StatusCode::CONFLICT, "run_finished"),
            RunError::RunNotFinished { .. } => (StatusCode::CONFLICT, "run_not_finished"),
            RunError::BackfillRange { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            RunError::BackfillRunning { .. } => (StatusCode::CONFLICT, "backfill_running"),
        };
        ApiError::new(status, code, message)
    }
}

/// Answers of the framework itself on API and webhook paths (an unreadable or oversized JSON
/// body, a bad path or query parameter, a method the route does not take: axum's rejections,
/// plain text or empty) in the API's error shape, with their text as the message.
pub async fn framework_rejections(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = {
        let path = req.uri().path();
        path.starts_with("/api/") || path.starts_with("/webhooks/")
    };
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let (parts, body) = response.into_parts();
    // Rejection texts are short; a body that is not is not repeated.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_string()
    } else {
        olo_reconciler::text::echo(&text, 500).into_owned()
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    answer
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
                request_id: crate::trace::request_id(),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
