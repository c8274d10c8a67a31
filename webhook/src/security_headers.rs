//! Headers every response carries so that a browser never runs, frames or sniffs what olo
//! serves in a way it did not mean: the dashboard loads only its own scripts and styles
//! (`/assets/…`), no page can be framed (clickjacking), and no response is content-sniffed.

use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The dashboard's scripts come from `/assets` only; style attributes stay allowed (the run
/// page's Gantt bars are placed by `style="left: …"`), inline scripts do not.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

pub async fn add(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ] {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
