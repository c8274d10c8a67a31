//! The SQL runner, `POST /api/v1/sql`: one read-only query on Trino, run as the caller.
//!
//! Every query needs an identity (an API token or an OpenID Connect token), even where reads are
//! open: it runs on Trino with `X-Trino-User` = the caller's name, so Trino's access rules (the rendered `rules.json`) decide
//! what that user may read. [`read_only`] refuses anything but a query before Trino is asked;
//! it is a first check for a clear message, Trino's rules are the guard. Each query that reaches
//! Trino is written to the audit log (`sql_query`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use olo_reconciler::store::NewAudit;
use olo_reconciler::targets::trino::{read_only, Column, QueryRequest, TrinoError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::metrics::ResultLabels;
use crate::AppState;

/// Rows one query returns when the settings say nothing (`trino.max_rows`).
pub const DEFAULT_MAX_ROWS: usize = 1000;

/// Characters of the SQL text the audit log keeps.
const AUDIT_SQL_CHARS: usize = 200;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    pub sql: String,
    /// The session's default catalog and schema, for unqualified names.
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Fewer rows than the server's limit.
    pub max_rows: Option<usize>,
}

/// The answer: the columns, the rows in Trino's JSON encoding, and whether rows were left out.
#[derive(Debug, Serialize)]
pub struct SqlAnswer {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
    pub query_id: String,
}

/// `POST /api/v1/sql`.
pub async fn run(
    State(state): State<Arc<AppState>>,
    // A credential that is not good is counted like a missing one, not only refused.
    caller: Result<Caller, ApiError>,
    body: Bytes,
) -> Result<Json<SqlAnswer>, ApiError> {
    let result = match &caller {
        Ok(caller) => query(&state, caller, &body).await,
        Err(e) => Err(ApiError::new(e.status, e.code, e.message.clone())),
    };
    // API error codes are a fixed set of constants: the labels stay bounded.
    let result_label = match &result {
        Ok(answer) if answer.truncated => "truncated",
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    state
        .metrics
        .sql_queries
        .get_or_create(&ResultLabels {
            result: result_label,
        })
        .inc();
    result.map(Json)
}

async fn query(state: &AppState, caller: &Caller, body: &[u8]) -> Result<SqlAnswer, ApiError> {
    caller.need(state, Need::SignedIn).await?;
    let user = caller.actor().to_string();
    let trino = state.trino.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "trino_not_configured",
            "olo has no Trino to run SQL on: set trino.url in olo's settings",
        )
    })?;
    let body: SqlBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let max_rows = match body.max_rows {
        None => state.sql_max_rows,
        Some(n) if (1..=state.sql_max_rows).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "max_rows must be between 1 and {} (trino.max_rows)",
                state.sql_max_rows
            )))
        }
    };
    let sql = read_only(&body.sql)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "not_read_only", message))?;
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let request = QueryRequest {
        user: user.clone(),
        sql: sql.to_string(),
        catalog: given(body.catalog),
        schema: given(body.schema),
        max_rows,
    };
    let result = trino.query(&request).await;
    let mut details = json!({
        "sql": body.sql.chars().take(AUDIT_SQL_CHARS).collect::<String>(),
        "catalog": request.catalog,
        "schema": request.schema,
    });
    match &result {
        Ok(page) => {
            details["rows"] = json!(page.rows.len());
            details["truncated"] = json!(page.truncated);
            details["query_id"] = json!(page.query_id);
        }
        Err(e) => details["error"] = json!(trino_error_code(e)),
    }
    state
        .store
        .append_audit(&NewAudit {
            actor: user,
            action: "sql_query".into(),
            target: "trino".into(),
            revision: None,
            details,
        })
        .await?;
    let page = result.map_err(trino_error)?;
    Ok(SqlAnswer {
        columns: page.columns,
        rows: page.rows,
        truncated: page.truncated,
        query_id: page.query_id,
    })
}

/// Trino's names for "this user may not do that".
fn is_access_denied(name: &str) -> bool {
    matches!(name, "PERMISSION_DENIED" | "ACCESS_DENIED")
}

/// The API error code of a failed query.
fn trino_error_code(e: &TrinoError) -> &'static str {
    match e {
        TrinoError::Query { kind, name, .. } if kind == "USER_ERROR" && is_access_denied(name) => {
            "access_denied"
        }
        TrinoError::Query { kind, .. } if kind == "USER_ERROR" => "query_failed",
        TrinoError::InvalidRequest(_) => "bad_request",
        e if e.is_temporary() => "trino_unavailable",
        _ => "trino_failed",
    }
}

/// A failed query as the API answers it: the user's mistakes 400 (403 when Trino's rules deny
/// it), Trino away or busy 503, anything else 502.
fn trino_error(e: TrinoError) -> ApiError {
    let code = trino_error_code(&e);
    match (code, e) {
        ("access_denied", TrinoError::Query { name, message, .. }) => ApiError::new(
            StatusCode::FORBIDDEN,
            code,
            format!("Trino denied the query: {name}: {message}"),
        ),
        ("query_failed", TrinoError::Query { name, message, .. }) => ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("the query failed: {name}: {message}"),
        ),
        ("bad_request", e) => ApiError::bad_request(e.to_string()),
        ("trino_unavailable", e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!("{e}; try again"),
        ),
        (_, e) => ApiError::new(StatusCode::BAD_GATEWAY, "trino_failed", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_error(name: &str, kind: &str) -> TrinoError {
        TrinoError::Query {
            name: name.into(),
            kind: kind.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn trino_errors_map_to_the_status_that_says_whose_fault_it_is() {
        let cases = [
            (
                query_error("PERMISSION_DENIED", "USER_ERROR"),
                403,
                "access_denied",
            ),
            (
                query_error("ACCESS_DENIED", "USER_ERROR"),
                403,
                "access_denied",
            ),
            (
                query_error("SYNTAX_ERROR", "USER_ERROR"),
                400,
                "query_failed",
            ),
            (
                query_error("EXCEEDED_TIME_LIMIT", "INSUFFICIENT_RESOURCES"),
                503,
                "trino_unavailable",
            ),
            (
                TrinoError::Unavailable {
                    reason: "could not connect".into(),
                    source: None,
                },
                503,
                "trino_unavailable",
            ),
            (
                TrinoError::Status {
                    status: 401,
                    body: String::new(),
                },
                502,
                "trino_failed",
            ),
            (TrinoError::Protocol("x".into()), 502, "trino_failed"),
            (TrinoError::InvalidRequest("x".into()), 400, "bad_request"),
        ];
        for (e, status, code) in cases {
            let what = format!("{e:?}");
            let api = trino_error(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code), "{what}");
        }
        assert_eq!(
            trino_error(query_error("SYNTAX_ERROR", "USER_ERROR")).message,
            "the query failed: SYNTAX_ERROR: m"
        );
    }
}
