//! GitHub webhook deliveries: signature check and the few payload fields olo reads. Pure.

use hmac::{KeyInit as _, Mac as _};
use serde::Deserialize;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// GitHub's payload cap: larger bodies are refused before they are read whole.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// Deliveries larger than this (or of unknown length) count against
/// [`crate::connections::Limits::large_bodies`]: few are read at once.
pub const LARGE_BODY: usize = 1024 * 1024;

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) against the body in constant time.
pub fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// `sha256=<hex>` for a body (what GitHub sends; used by tests and the benchmark).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Deserialize)]
pub struct Repository {
    pub full_name: String,
    pub html_url: String,
}

#[derive(Debug, Deserialize)]
pub struct Push {
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The new tip (all zeros when the branch was deleted).
    pub after: String,
    pub repository: Repository,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub number: u64,
    pub pull_request: PullRequest,
    pub repository: Repository,
}

#[derive(Debug, Deserialize)]
pub struct PullRequest {
    pub head: GitRef,
    pub base: GitRef,
}

#[derive(Debug, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

/// A delivery olo acts on.
#[derive(Debug)]
pub enum Event {
    Ping,
    Push(Push),
    PullRequest(PullRequestEvent),
    /// Any other event type: acknowledged, nothing done.
    Other(String),
}

pub fn parse(event: &str, body: &[u8]) -> Result<Event, serde_json::Error> {
    Ok(match event {
        "ping" => Event::Ping,
        "push" => Event::Push(serde_json::from_slice(body)?),
        "pull_request" => Event::PullRequest(serde_json::from_slice(body)?),
        other => Event::Other(other.to_string()),
    })
}

/// Whether a git sha looks like one (40 or 64 hex digits).
pub fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    #[test]
    fn accepts_githubs_documented_example_signature() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_ok(SECRET, b"Hello, World!", Some(header)));
        assert_eq!(sign(SECRET, b"Hello, World!"), header);
    }

    #[test]
    fn refuses_forged_missing_or_malformed_signatures() {
        let body = b"{\"zen\":\"hi\"}";
        let good = sign(SECRET, body);
        assert!(signature_ok(SECRET, body, Some(&good)));
        assert!(!signature_ok(b"another secret", body, Some(&good)));
        assert!(!signature_ok(SECRET, b"{\"zen\":\"ho\"}", Some(&good)));
        assert!(!signature_ok(SECRET, body, None));
        assert!(!signature_ok(SECRET, body, Some("sha1=abcdef")));
        assert!(!signature_ok(SECRET, body, Some("sha256=zz")));
        assert!(!signature_ok(SECRET, body, Some(&good[..good.len() - 2])));
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/github-webhooks")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn reads_real_push_and_pull_request_payloads() {
        let Event::Push(push) = parse("push", &fixture("push-payload.json")).unwrap() else {
            panic!("not a push");
        };
        // GitHub's example push deletes a tag: `after` is all zeros.
        assert_eq!(push.git_ref, "refs/tags/simple-tag");
        assert!(push.deleted && is_sha(&push.after));
        let Event::PullRequest(pr) =
            parse("pull_request", &fixture("pull_request-opened.json")).unwrap()
        else {
            panic!("not a pull request");
        };
        assert_eq!(pr.action, "opened");
        assert!(is_sha(&pr.pull_request.head.sha));
        assert!(pr.repository.html_url.starts_with("https://"));
        assert!(matches!(parse("ping", b"{}").unwrap(), Event::Ping));
        assert!(matches!(parse("issues", b"{}").unwrap(), Event::Other(_)));
        assert!(parse("push", b"{\"ref\": 1}").is_err());
    }
}
