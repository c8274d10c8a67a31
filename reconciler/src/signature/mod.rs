//! Verified authorship: whether a commit is signed, by which key, and whether olo trusts it.
//!
//! Git signs the commit object without its `gpgsig` header; the header holds an armored
//! OpenPGP signature (`gpg.format = openpgp`) or an SSHSIG in namespace `git`
//! (`gpg.format = ssh`). [`check`] takes the raw commit object and the trusted keys and says
//! what people see: "signed by KEY (identity), verified", "unsigned", "bad signature",
//! "untrusted key", "expired key", "revoked key". It is pure (bytes and keys in, a
//! [`Verification`] out); reading the commit from git and the keys from files is done by
//! [`commit`] and [`keys`].

pub mod commit;
pub mod keys;
mod openpgp;
mod ssh;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use keys::{KeyFiles, TrustedKeys};
pub use ssh::AllowedSigner;

/// `[verify] policy`: what olo does with a commit's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Signatures are not checked (only whether a commit carries one is recorded).
    #[default]
    Off,
    /// Checked and recorded; every commit is applied all the same.
    Audit,
    /// A commit that does not verify with a trusted key is refused like an invalid commit.
    Enforce,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Audit => "audit",
            Policy::Enforce => "enforce",
        }
    }
}

/// What a signature check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A good signature by a trusted key that is neither expired nor revoked.
    Verified,
    /// No `gpgsig` header.
    Unsigned,
    /// The signature does not match the commit (changed after signing), or cannot be read.
    BadSignature,
    /// Made by a key olo does not trust.
    UntrustedKey,
    /// Made by a trusted key that has expired (OpenPGP key expiry, SSH `valid-before`).
    ExpiredKey,
    /// Made by a trusted OpenPGP key that its owner revoked.
    RevokedKey,
}

/// The kind of signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Openpgp,
    Ssh,
}

/// The signature check of one commit, as stored with the revision and shown to people. Its
/// JSON form carries `text` too, the line people read ([`fmt::Display`]); it is not read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verification {
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The signing key: an OpenPGP fingerprint (hex) or an SSH key's `SHA256:…` fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Who the key belongs to: the OpenPGP primary user id, or the allowed-signers principals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Why, when it helps: the cryptographic error of a bad signature, the merged parents of
    /// a merge commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Serialize for Verification {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Stored<'a> {
            verdict: Verdict,
            #[serde(skip_serializing_if = "Option::is_none")]
            format: Option<Format>,
            #[serde(skip_serializing_if = "Option::is_none")]
            key: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            identity: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
            text: String,
        }
        Stored {
            verdict: self.verdict,
            format: self.format,
            key: self.key.as_deref(),
            identity: self.identity.as_deref(),
            detail: self.detail.as_deref(),
            text: self.to_string(),
        }
        .serialize(serializer)
    }
}

impl Verification {
    fn new(verdict: Verdict) -> Verification {
        Verification {
            verdict,
            format: None,
            key: None,
            identity: None,
            detail: None,
        }
    }

    pub fn unsigned() -> Verification {
        Verification::new(Verdict::Unsigned)
    }

    fn bad(format: Option<Format>, detail: impl Into<String>) -> Verification {
        Verification {
            format,
            detail: Some(detail.into()),
            ..Verification::new(Verdict::BadSignature)
        }
    }

    pub fn verified(&self) -> bool {
        self.verdict == Verdict::Verified
    }

    /// The short form: `verified`, `unsigned`, `bad signature`, `untrusted key`, …
    pub fn label(&self) -> &'static str {
        match self.verdict {
            Verdict::Verified => "verified",
            Verdict::Unsigned => "unsigned",
            Verdict::BadSignature => "bad signature",
            Verdict::UntrustedKey => "untrusted key",
            Verdict::ExpiredKey => "expired key",
            Verdict::RevokedKey => "revoked key",
        }
    }

    /// `KEY (identity)`, or `KEY`.
    fn signer(&self) -> Option<String> {
        let key = self.key.as_deref()?;
        Some(match &self.identity {
            Some(who) => format!("{key} ({who})"),
            None => key.to_string(),
        })
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signer = self.signer();
        match (self.verdict, &signer) {
            (Verdict::Verified, Some(s)) => write!(f, "signed by {s}, verified")?,
            (Verdict::Unsigned, _) => f.write_str("unsigned")?,
            (Verdict::BadSignature, Some(s)) => write!(f, "bad signature by {s}")?,
            (Verdict::UntrustedKey, Some(s)) => write!(f, "untrusted key {s}")?,
            (Verdict::ExpiredKey, Some(s)) => write!(f, "expired key {s}")?,
            (Verdict::RevokedKey, Some(s)) => write!(f, "revoked key {s}")?,
            _ => f.write_str(self.label())?,
        }
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

/// The keys olo trusts, read from the files the settings name.
#[derive(Debug, Default)]
pub struct Keyring {
    /// OpenPGP certificates whose keys may sign any commit.
    pub openpgp: Vec<pgp::composed::SignedPublicKey>,
    /// SSH keys (git's allowed-signers file).
    pub ssh: Vec<AllowedSigner>,
    /// OpenPGP certificates trusted for merge commits only (GitHub's web-flow key): the merged
    /// parents must then verify with the keys above.
    pub merge: Vec<pgp::composed::SignedPublicKey>,
}

impl Keyring {
    pub fn is_empty(&self) -> bool {
        self.openpgp.is_empty() && self.ssh.is_empty() && self.merge.is_empty()
    }
}

/// Which keys a signature may be made by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The keys trusted for every commit.
    Commits,
    /// The keys trusted for merge commits only.
    Merges,
}

/// Splits a raw commit object into its signature (the `gpgsig` header, continuation lines
/// unfolded) and the payload git signed: the object without that header, byte for byte.
/// `None` when the commit carries no signature.
pub fn split(commit: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    // The headers end at the first empty line; the message follows untouched.
    let headers_end = commit
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + 1)
        .unwrap_or(commit.len());
    let mut payload = Vec::with_capacity(commit.len());
    let mut signature: Option<Vec<u8>> = None;
    let mut in_signature = false;
    let mut pos = 0;
    while pos < headers_end {
        let end = commit[pos..headers_end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(headers_end);
        let line = &commit[pos..end];
        match (&mut signature, in_signature) {
            (Some(sig), true) if line.first() == Some(&b' ') => sig.extend_from_slice(&line[1..]),
            (None, _) if line.starts_with(b"gpgsig ") => {
                signature = Some(line[b"gpgsig ".len()..].to_vec());
                in_signature = true;
            }
            _ => {
                in_signature = false;
                payload.extend_from_slice(line);
            }
        }
        pos = end;
    }
    payload.extend_from_slice(&commit[headers_end..]);
    signature.map(|s| (s, payload))
}

/// Checks the signature of a raw commit object against `keys` (those of `trust`), at `now`
/// (seconds since the epoch): a key past its expiry verifies nothing, whenever the commit
/// says it was signed (its holder could backdate it).
pub fn check(commit: &[u8], keys: &Keyring, trust: Trust, now: i64) -> Verification {
    let Some((signature, payload)) = split(commit) else {
        return Verification::unsigned();
    };
    let Ok(text) = std::str::from_utf8(&signature) else {
        return Verification::bad(None, "the signature is not text");
    };
    let text = text.trim_start();
    let certs = match trust {
        Trust::Commits => &keys.openpgp[..],
        Trust::Merges => &keys.merge[..],
    };
    if text.starts_with("-----BEGIN PGP SIGNATURE-----") {
        openpgp::check(text, &payload, certs, now)
    } else if text.starts_with("-----BEGIN SSH SIGNATURE-----") {
        let signers: &[AllowedSigner] = match trust {
            Trust::Commits => &keys.ssh,
            Trust::Merges => &[],
        };
        ssh::check(text, &payload, signers, now)
    } else {
        Verification::bad(
            None,
            "not an OpenPGP or SSH signature (X.509 signatures are not supported)",
        )
    }
}

/// What the engine checks each commit with: the policy and the trusted keys.
#[derive(Debug)]
pub struct Verifier {
    pub policy: Policy,
    pub keys: TrustedKeys,
}

impl Verifier {
    /// Checks commit `sha` of the repository at `repo` with the keys as their files are now.
    pub fn verify(&self, repo: &std::path::Path, sha: &str) -> crate::Result<Verification> {
        let keys = self.keys.current()?;
        let git = git2::Repository::open(repo).map_err(|source| crate::Error::OpenRepo {
            path: repo.display().to_string(),
            source,
        })?;
        let err = |source| crate::Error::Revision {
            rev: sha.to_string(),
            source,
        };
        let oid = git2::Oid::from_str(sha).map_err(err)?;
        commit::verify(&git, oid, &keys, chrono::Utc::now().timestamp()).map_err(err)
    }
}

#[cfg(test)]
mod tests;
