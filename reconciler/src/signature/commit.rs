//! A commit's signature, read from git: the raw commit object, and for a merge commit signed
//! by a key trusted for merges, the merged parents' signatures.

use git2::{Oid, Repository};

use super::{check, Keyring, Trust, Verification};
use crate::engine::short;

/// Checks commit `oid` of `repo` against `keys` at `now` (seconds since the epoch).
///
/// A merge commit (two parents or more) made with a key trusted for merge commits only (the
/// forge's key, e.g. GitHub's web-flow) verifies when each merged parent (every parent but
/// the first, which is the branch before the merge) verifies with the keys trusted for
/// commits.
pub fn verify(
    repo: &Repository,
    oid: Oid,
    keys: &Keyring,
    now: i64,
) -> Result<Verification, git2::Error> {
    let odb = repo.odb()?;
    let raw = odb.read(oid)?;
    let own = check(raw.data(), keys, Trust::Commits, now);
    if own.verified() || keys.merge.is_empty() {
        return Ok(own);
    }
    let commit = repo.find_commit(oid)?;
    if commit.parent_count() < 2 {
        return Ok(own);
    }
    let merge = check(raw.data(), keys, Trust::Merges, now);
    if !merge.verified() {
        return Ok(own);
    }
    let mut merged = Vec::new();
    for parent in commit.parent_ids().skip(1) {
        let p = check(odb.read(parent)?.data(), keys, Trust::Commits, now);
        if !p.verified() {
            return Ok(Verification {
                detail: Some(format!("merged commit {}", short(&parent.to_string()))),
                ..p
            });
        }
        merged.push(format!("{} {p}", short(&parent.to_string())));
    }
    Ok(Verification {
        detail: Some(format!("merge of {}", merged.join("; "))),
        ..merge
    })
}
