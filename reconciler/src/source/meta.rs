use chrono::{DateTime, TimeZone, Utc};
use git2::{Oid, Repository, Signature};

use crate::store::{Person, Revision};
use crate::{Error, Result};

fn person(sig: &Signature<'_>) -> Person {
    let t = sig.when();
    let time: DateTime<Utc> = Utc
        .timestamp_opt(t.seconds(), 0)
        .single()
        .unwrap_or_default();
    Person {
        name: String::from_utf8_lossy(sig.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(sig.email_bytes()).into_owned(),
        time,
    }
}

/// Author, committer, message and whether the commit is signed (a `gpgsig` header).
pub fn commit_revision(repo: &Repository, sha: &str, branch: &str) -> Result<Revision> {
    let err = |source| Error::Revision {
        rev: sha.to_string(),
        source,
    };
    let oid = Oid::from_str(sha).map_err(err)?;
    let commit = repo.find_commit(oid).map_err(err)?;
    let (author, committer) = (commit.author(), commit.committer());
    let revision = Revision {
        sha: commit.id().to_string(),
        branch: branch.to_string(),
        author: person(&author),
        committer: person(&committer),
        message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
        signed: commit.header_field_bytes("gpgsig").is_ok(),
        signature: None,
    };
    Ok(revision)
}
