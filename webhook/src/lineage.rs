//! Lineage in the server: OpenLineage ingest at `POST /api/v1/lineage` (the path Marquez uses,
//! so OpenLineage clients work unchanged: RunEvents, DatasetEvents and JobEvents, plain or
//! `Content-Encoding: gzip`), the graph at `GET /api/v1/lineage?nodeId=&depth=` in Marquez's
//! shape, and per job where declared and observed lineage differ.
//!
//! The graph itself, and its writer, are [`olo_reconciler::lineage::live::Lineage`]: each request
//! is answered once its event is durable.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use olo_reconciler::lineage::live::Failed;
use olo_reconciler::lineage::{self, NodeRef};
use olo_reconciler::openlineage;
use serde::Deserialize;
use serde_json::json;

use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::metrics::ResultLabels;
use crate::{auth, AppState};

/// Largest request body of the ingest endpoint.
pub const MAX_BODY: usize = openlineage::MAX_EVENT_BYTES;
/// Marquez's default depth.
pub const DEFAULT_DEPTH: usize = 20;
pub const MAX_DEPTH: usize = 100;
/// Most nodes in one graph answer (nearest first); the answer says when it was cut.
pub const MAX_NODES: usize = 5_000;

/// The body as sent, or gunzipped when `Content-Encoding: gzip` (openlineage-python's
/// `compression: gzip`); at most [`MAX_BODY`] bytes either way.
fn decoded(headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") | Some("") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid gzip: {e}")))?;
            if out.len() > MAX_BODY {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the event is more than {MAX_BODY} bytes once decompressed"),
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Encoding {other:?} is not supported; send the event plain or gzip"),
        )),
    }
}

/// `POST /api/v1/lineage`. With API tokens or OpenID Connect configured the sender needs an
/// identity (OpenLineage's HTTP transport sends a token as `Authorization: Bearer` with
/// `auth.type = api_key`); without any, the endpoint is open like a local Marquez. Refusals are
/// counted (`olo_lineage_events_total{result="unauthorized"}`), not audited: a misconfigured
/// transport would fill the audit log with one entry per event.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let auth_configured = !state.config.tokens.is_empty() || state.oidc.is_some();
    let who = auth::identify(&state, &axum::http::Method::POST, &headers).await;
    if auth_configured && !matches!(who, Ok(Some(_))) {
        state.metrics.lineage_result("unauthorized");
        return Err(ApiError::unauthorized(
            "lineage events need an API token here: set the OpenLineage transport's auth (type api_key) to a token from olo's settings ([[api.tokens]])",
        ));
    }
    let started = std::time::Instant::now();
    let body = decoded(&headers, body).inspect_err(|_| {
        state.metrics.lineage_result("invalid");
    })?;
    let (event, raw) = openlineage::parse(&body).map_err(|message| {
        state.metrics.lineage_result("invalid");
        ApiError::bad_request(format!("not a valid OpenLineage event: {message}"))
    })?;
    let new = state
        .lineage
        .record(&state.store, state.catalog().as_ref(), event, raw)
        .await
        .map_err(|f| match f {
            Failed::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the state store is not reachable; send the event again",
            ),
            Failed::Refused => {
                ApiError::internal(&"the state store refused a lineage event (see the log above)")
            }
            Failed::Stopped => ApiError::internal(&"the lineage writer stopped"),
        })?;
    state
        .metrics
        .lineage_result(if new { "recorded" } else { "duplicate" });
    state
        .metrics
        .lineage_ingest_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok((
        StatusCode::OK,
        Json(json!({ "status": if new { "recorded" } else { "duplicate" } })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQuery {
    pub node_id: Option<String>,
    pub depth: Option<String>,
}

/// The depth a query asks for (Marquez's default 20), at most [`MAX_DEPTH`].
pub fn depth(q: Option<&str>) -> Result<usize, String> {
    match q.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_DEPTH),
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DEPTH).contains(n))
            .ok_or_else(|| format!("`depth` must be a whole number from 1 to {MAX_DEPTH}")),
    }
}

/// The node a query names, or why not.
pub fn node(state: &AppState, id: Option<&str>) -> Result<NodeRef, ApiError> {
    let id = id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "`nodeId` is required: dataset:<namespace>:<name> or job:<namespace>:<name>",
        )
    })?;
    if !id.starts_with("dataset:") && !id.starts_with("job:") {
        return Err(ApiError::bad_request(format!(
            "`nodeId` must start with dataset: or job:, not {id:?}"
        )));
    }
    state
        .lineage
        .find(id)
        .ok_or_else(|| ApiError::not_found(format!("no lineage for {id}")))
}

/// `GET /api/v1/lineage?nodeId=&depth=`.
pub async fn graph(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<GraphQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    state.lineage.sync(state.catalog().as_ref());
    let depth = depth(q.depth.as_deref()).map_err(ApiError::bad_request)?;
    let start = node(&state, q.node_id.as_deref())?;
    let graph = state.lineage.read();
    let sub = graph
        .walk(&start, depth, MAX_NODES)
        .ok_or_else(|| ApiError::not_found(format!("no lineage for {}", start.id())))?;
    Ok(Json(lineage::marquez(&sub, &state.lineage.observed())))
}

/// `GET /api/v1/workspaces/{ws}/jobs/{job}/lineage`: the job's declared and observed datasets
/// where they differ, and what its outputs feed downstream.
pub async fn job_lineage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Viewer))
        .await?;
    let catalog = state
        .catalog()
        .ok_or_else(|| ApiError::not_found("no valid commit has been read yet"))?;
    if catalog.job(&ws, &job).is_none() {
        return Err(ApiError::not_found(format!(
            "no job `{ws}/{job}` in the live configuration"
        )));
    }
    state.lineage.sync(Some(&catalog));
    let node = NodeRef::job(&ws, &job);
    let graph = state.lineage.read();
    Ok(Json(json!({
        "node_id": node.id(),
        "mismatches": graph.mismatches(&node),
        "impact": graph.impact(&node, 5),
    })))
}

impl crate::metrics::Metrics {
    pub fn lineage_result(&self, result: &'static str) {
        self.lineage_events
            .get_or_create(&ResultLabels { result })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    fn encoded(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_ENCODING,
            encoding.parse().unwrap(),
        );
        h
    }

    #[test]
    fn gzip_bodies_are_decompressed_within_the_limit() {
        let event = br#"{"eventTime": "2026-11-27T04:30:00Z"}"#;
        let plain = decoded(&HeaderMap::new(), Bytes::from_static(event)).unwrap();
        assert_eq!(&plain[..], event);
        for encoding in ["gzip", "GZIP", "x-gzip"] {
            let body = decoded(&encoded(encoding), gzip(event)).unwrap();
            assert_eq!(&body[..], event, "{encoding}");
        }
        // A small body that inflates past the limit is refused, not decompressed whole.
        let bomb = gzip(&vec![b' '; MAX_BODY + 1]);
        assert!(bomb.len() < 64 * 1024);
        let e = decoded(&encoded("gzip"), bomb).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        let e = decoded(&encoded("gzip"), Bytes::from_static(b"not gzip")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = decoded(&encoded("br"), Bytes::from_static(event)).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn depths_are_bounded() {
        assert_eq!(depth(None), Ok(DEFAULT_DEPTH));
        assert_eq!(depth(Some("")), Ok(DEFAULT_DEPTH));
        assert_eq!(depth(Some("5")), Ok(5));
        for bad in ["0", "101", "-1", "x", "1.5"] {
            assert!(depth(Some(bad)).is_err(), "{bad}");
        }
    }
}
