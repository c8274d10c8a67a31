//! The SQL page: a form that runs read-only queries through `POST /api/v1/sql` with the API
//! token the user pastes, and shows the answer as a table. The page itself holds no data; its
//! script is embedded and served at [`SCRIPT`] (the dashboard has no inline scripts; `sql.html`
//! names the same path).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::{context, Value};

use super::error::gate;
use super::{render, PageResult};
use crate::caller::{Caller, Need};
use crate::AppState;

/// Where the SQL page's script is served.
pub const SCRIPT: &str = "/assets/sql.js";
const JS: &str = include_str!("sql.js");

/// The page itself is a form: the query it sends needs an identity (`POST /api/v1/sql`). Like
/// every page it is closed to anonymous callers when reads need a token.
pub(super) async fn sql_page(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    gate(&state, &caller, Need::Member).await?;
    render(
        "sql.html",
        sql_context(state.trino.is_some(), state.sql_max_rows),
    )
}

/// What the SQL page shows: whether Trino is configured, and the row limit.
pub(super) fn sql_context(configured: bool, max_rows: usize) -> Value {
    context! { nav => "sql", configured => configured, max_rows => max_rows }
}

pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        JS,
    )
        .into_response()
}
