//! GitHub webhook deliveries as olo's receiver reads them: the `X-Hub-Signature-256` check,
//! then the payload of a push or pull request, then what olo keeps of it (the repository name
//! it calls back, the work row a follower replica hands to the leader).
//!
//! The input's first byte picks the event type; the rest is the body.
//!
//! Checked: nothing panics; a body signed with the secret verifies, and the same signature
//! fails once a byte of the body, or of the signature, changes; a header that is not exactly
//! the signature fails; work made of a delivery reads back from its store row unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use olo_reconciler::controller::{PullRequestPlan, Work};
use olo_reconciler::forge::github::RepoRef;
use olo_server::github::{self, Event};

const SECRET: &[u8] = b"fuzz-webhook-secret";
const EVENTS: [&str; 5] = ["push", "pull_request", "ping", "issues", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let event = EVENTS[pick as usize % EVENTS.len()];

    // The signature.
    let good = github::sign(SECRET, body);
    assert!(github::signature_ok(SECRET, body, Some(&good)));
    assert!(!github::signature_ok(SECRET, body, None));
    assert!(!github::signature_ok(b"another secret", body, Some(&good)));
    if !body.is_empty() {
        let mut tampered = body.to_vec();
        let i = pick as usize % tampered.len();
        tampered[i] ^= 1 + (pick >> 1);
        assert!(!github::signature_ok(SECRET, &tampered, Some(&good)));
    }
    let mut forged = good.clone().into_bytes();
    let i = 7 + pick as usize % (forged.len() - 7);
    forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
    assert!(!github::signature_ok(
        SECRET,
        body,
        Some(std::str::from_utf8(&forged).unwrap())
    ));
    // The body read as a header: only the exact signature passes.
    if let Ok(header) = std::str::from_utf8(body) {
        let ok = github::signature_ok(SECRET, b"payload", Some(header));
        let expected = github::sign(SECRET, b"payload");
        let same = header
            .strip_prefix("sha256=")
            .map(|h| h.trim().eq_ignore_ascii_case(&expected["sha256=".len()..]))
            .unwrap_or(false);
        assert_eq!(ok, same, "{header:?}");
    }

    // The payload.
    let Ok(parsed) = github::parse(event, body) else {
        return;
    };
    let work = match parsed {
        Event::Ping | Event::Other(_) => return,
        Event::Push(push) => {
            let _ = RepoRef::parse(&push.repository.full_name);
            let _ = github::is_sha(&push.after);
            Work::Reconcile {
                reason: olo_reconciler::controller::Trigger::Push,
            }
        }
        Event::PullRequest(pr) => {
            if let Some(r) = RepoRef::parse(&pr.repository.full_name) {
                assert!(!r.owner.contains('/') && !r.name.contains('/'));
                assert!(r.owner != ".." && r.name != "..");
            }
            if !github::is_sha(&pr.pull_request.head.sha) {
                return;
            }
            Work::Plan(PullRequestPlan {
                repository: pr.repository.full_name,
                html_url: pr.repository.html_url,
                number: pr.number,
                head_sha: pr.pull_request.head.sha,
                base_ref: pr.pull_request.base.git_ref,
            })
        }
    };
    let (kind, payload) = work.to_row();
    assert_eq!(Work::from_row(&kind, payload).unwrap(), work);
});
