//! The span of each HTTP request and its request id.
//!
//! Every request gets an id: the caller's `X-Request-Id` when it is a plain token (1 to 128
//! letters, digits, `-`, `_`, `.`), else a new `req_…`. The id is a field of the request's span
//! (with the method, the route and the status), is echoed in the `X-Request-Id` response header,
//! and is in every JSON error body ([`crate::error::ApiError`]), so a user quoting an error
//! points at the server's log lines of that request.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The request id header, read and echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being served on this task (`None` outside a request).
pub fn request_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The caller's id when it is a plain token, else a new one.
fn id_of(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(
            || format!("req_{}", uuid::Uuid::new_v4().simple()),
            str::to_string,
        )
}

/// A span per request (method, route, status, request id): what the handlers log carries it; the
/// request itself is logged at debug level, or as a warning when it failed on the server's side.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let id = id_of(&request);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id = %id,
        status = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    let mut response = CURRENT
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    let status = response.status().as_u16();
    span.record("status", status);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if response.status().is_server_error() {
        tracing::warn!(parent: &span, elapsed_ms, "request failed");
    } else {
        tracing::debug!(parent: &span, elapsed_ms, "request served");
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt as _;

    use super::*;
    use crate::error::ApiError;

    fn app() -> Router {
        Router::new()
            .route(
                "/missing",
                get(|| async { Err::<(), _>(ApiError::not_found("nothing here")) }),
            )
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(trace_request))
    }

    async fn call(path: &str, id: Option<&str>) -> (Option<String>, serde_json::Value) {
        let mut request = axum::http::Request::get(path);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let header = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            header,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn an_error_body_and_the_response_header_carry_the_request_id() {
        // A new id when the caller gives none, the same in the header and the body.
        let (header, body) = call("/missing", None).await;
        let id = header.expect("x-request-id");
        assert!(id.starts_with("req_"), "{id}");
        assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
        assert_eq!(body["error"]["code"], "not_found");
        // The caller's id when it is a plain token.
        let (header, body) = call("/missing", Some("trace-42.a_b")).await;
        assert_eq!(header.as_deref(), Some("trace-42.a_b"));
        assert_eq!(body["error"]["request_id"], "trace-42.a_b");
        // Else a new one: nothing odd is echoed into a header, a body or a log.
        for odd in ["has space", "<script>", &"x".repeat(129)] {
            let (header, body) = call("/missing", Some(odd)).await;
            let id = header.unwrap();
            assert!(id.starts_with("req_"), "{odd:?} -> {id}");
            assert_eq!(body["error"]["request_id"], id.as_str());
        }
        // A success carries the header too.
        let (header, _) = call("/fine", Some("r1")).await;
        assert_eq!(header.as_deref(), Some("r1"));
    }

    #[test]
    fn outside_a_request_there_is_no_id() {
        assert_eq!(request_id(), None);
    }
}
