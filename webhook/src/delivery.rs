//! GitHub's webhook deliveries at `POST /webhooks/github`: the body read within its limits,
//! the signature checked, the delivery recorded once, and push and pull-request work handed to
//! the controller's queue (or, among replicas, to the leader through the store).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::metrics::DeliveryLabels;
use crate::{connections, error, github, AppState, Role};
use olo_reconciler::controller::{PullRequestPlan, Trigger, Work};

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn answer(status: StatusCode, delivery: &str, result: &str) -> Response {
    (
        status,
        Json(json!({ "delivery": delivery, "result": result })),
    )
        .into_response()
}

/// Reads a delivery's body: refused (413) past [`github::MAX_BODY`], at most
/// [`connections::Limits::large_bodies`] large ones at once (503), within the body-read deadline
/// (408). Returns the permit of a large body with it: held until the delivery is handled.
async fn read_delivery(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), error::ApiError> {
    let length = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    if length.is_some_and(|l| l > github::MAX_BODY) {
        return Err(too_large());
    }
    let permit = if length.is_none_or(|l| l > github::LARGE_BODY) {
        let wait = state.config.limits.body_read;
        match tokio::time::timeout(wait, state.large_bodies.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                return Err(error::ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many large webhook deliveries are being read; GitHub redelivers later",
                ))
            }
        }
    } else {
        None
    };
    match axum::body::to_bytes(body, github::MAX_BODY).await {
        Ok(bytes) => Ok((bytes, permit)),
        Err(e) if connections::is_body_timeout(&e) => Err(error::ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            e.to_string(),
        )),
        Err(e) if is_length_limit(&e) => Err(too_large()),
        Err(_) => Err(error::ApiError::bad_request(
            "the request body could not be read",
        )),
    }
}

fn too_large() -> error::ApiError {
    error::ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "webhook bodies are at most {} MiB (GitHub's cap)",
            github::MAX_BODY >> 20
        ),
    )
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `POST /webhooks/github`: verify, record, enqueue, 202.
pub(crate) async fn github_webhook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let count = |event: &'static str, result: &'static str| {
        state
            .metrics
            .webhook_deliveries
            .get_or_create(&DeliveryLabels { event, result })
            .inc();
    };
    let Some(secret) = &state.config.webhook_secret else {
        return error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook_not_configured",
            "the GitHub webhook secret is not configured (github.webhook_secret_env)",
        )
        .into_response();
    };
    let event = header(&headers, "x-github-event").unwrap_or_default();
    // One of a fixed set, so an unverified header can name it too.
    let event_label: &'static str = match event {
        "ping" => "ping",
        "push" => "push",
        "pull_request" => "pull_request",
        _ => "other",
    };
    let (body, _large) = match read_delivery(&state, &headers, body).await {
        Ok(read) => read,
        Err(e) => {
            count(event_label, "unreadable");
            return e.into_response();
        }
    };
    // Signature first: nothing of an unsigned body is parsed or stored.
    if !github::signature_ok(
        secret.expose_secret().as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        count(event_label, "bad_signature");
        return error::ApiError::unauthorized(
            "X-Hub-Signature-256 is missing or does not match the body and the webhook secret",
        )
        .into_response();
    }
    let delivery = header(&headers, "x-github-delivery").unwrap_or_default();
    if delivery.is_empty() || delivery.len() > 100 || event.is_empty() {
        count(event_label, "bad_payload");
        return error::ApiError::bad_request("X-GitHub-Event and X-GitHub-Delivery are required")
            .into_response();
    }
    // Parsed before it is recorded: a payload olo cannot read is refused again when resent.
    let parsed = match github::parse(event, &body) {
        Ok(p) => p,
        Err(e) => {
            count(event_label, "bad_payload");
            return error::ApiError::bad_request(format!("unreadable {event} payload: {e}"))
                .into_response();
        }
    };
    let (status, result, label, work) = github_work(&state, parsed);
    // Among replicas the delivery's work goes to the leader through the store, in the same
    // transaction as the delivery: a replica that stops right after answering loses nothing,
    // and GitHub's redelivery of it is a duplicate for good reason.
    let via_store = state.role() != Role::Single;
    let row = work.as_ref().filter(|_| via_store).map(Work::to_row);
    let row = row.as_ref().map(|(kind, payload)| (kind.as_str(), payload));
    match state.store.record_delivery(delivery, event, row).await {
        Ok(true) => {}
        Ok(false) => {
            count(event_label, "duplicate");
            return answer(StatusCode::OK, delivery, "duplicate delivery, ignored");
        }
        Err(e) => return error::ApiError::from(e).into_response(),
    }
    if let Some(work) = work.filter(|_| !via_store) {
        state.queue.add(work);
    }
    count(event_label, label);
    answer(status, delivery, result)
}

/// What a verified delivery asks of olo: the answer (status, message, metric label) and the
/// work, if any.
fn github_work(
    state: &AppState,
    parsed: github::Event,
) -> (StatusCode, &'static str, &'static str, Option<Work>) {
    let other_repo = |full_name: &str| {
        state
            .config
            .repository
            .as_deref()
            .is_some_and(|r| !r.eq_ignore_ascii_case(full_name))
    };
    let tracked = format!("refs/heads/{}", state.config.branch);
    match parsed {
        github::Event::Ping => (StatusCode::OK, "pong", "queued", None),
        github::Event::Other(_) => (StatusCode::ACCEPTED, "event ignored", "ignored", None),
        github::Event::Push(push) => {
            if other_repo(&push.repository.full_name) {
                (
                    StatusCode::ACCEPTED,
                    "other repository, ignored",
                    "ignored",
                    None,
                )
            } else if push.git_ref != tracked || push.deleted {
                (
                    StatusCode::ACCEPTED,
                    "not the tracked branch, ignored",
                    "ignored",
                    None,
                )
            } else {
                (
                    StatusCode::ACCEPTED,
                    "reconcile queued",
                    "queued",
                    Some(Work::Reconcile {
                        reason: Trigger::Push,
                    }),
                )
            }
        }
        github::Event::PullRequest(pr) => {
            let wanted = matches!(pr.action.as_str(), "opened" | "synchronize" | "reopened");
            if other_repo(&pr.repository.full_name) {
                (
                    StatusCode::ACCEPTED,
                    "other repository, ignored",
                    "ignored",
                    None,
                )
            } else if !wanted || pr.pull_request.base.git_ref != state.config.branch {
                (
                    StatusCode::ACCEPTED,
                    "action or base branch not planned, ignored",
                    "ignored",
                    None,
                )
            } else if !github::is_sha(&pr.pull_request.head.sha) {
                (
                    StatusCode::BAD_REQUEST,
                    "head sha is not a sha",
                    "bad_payload",
                    None,
                )
            } else {
                let plan = PullRequestPlan {
                    repository: pr.repository.full_name,
                    html_url: pr.repository.html_url,
                    number: pr.number,
                    head_sha: pr.pull_request.head.sha,
                    base_ref: pr.pull_request.base.git_ref,
                };
                (
                    StatusCode::ACCEPTED,
                    "plan queued",
                    "queued",
                    Some(Work::Plan(plan)),
                )
            }
        }
    }
}
