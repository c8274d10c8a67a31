//! Signed GitHub `push` deliveries, as the webhook phases send them.

use serde_json::{json, Value};

pub(super) const SECRET: &str = "olo-bench-server webhook secret";
/// GitHub's real push payload, the one the end-to-end tests deliver (6.5 KB once compacted).
const PUSH_PAYLOAD: &str =
    include_str!("../../../../tests/fixtures/github-webhooks/push-payload.json");

pub(super) fn sign(body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// GitHub's push payload, pointed at `git_ref` and commit `after`.
pub(super) fn push_payload(git_ref: &str, after: &str) -> anyhow::Result<Vec<u8>> {
    let mut p: Value = serde_json::from_str(PUSH_PAYLOAD)?;
    p["ref"] = json!(git_ref);
    p["after"] = json!(after);
    p["deleted"] = json!(false);
    p["created"] = json!(false);
    Ok(serde_json::to_vec(&p)?)
}

pub(super) fn webhook(
    client: &reqwest::Client,
    base: &str,
    delivery: &str,
    body: Vec<u8>,
    signature: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/webhooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body)
}
