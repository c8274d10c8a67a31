//! SSH signatures of commits (`gpg.format = ssh`): SSHSIG in namespace `git`, by a key of
//! git's allowed-signers file (`gpg.ssh.allowedSignersFile`, `man ssh-keygen`: ALLOWED
//! SIGNERS).

use chrono::NaiveDateTime;
use ssh_key::{HashAlg, PublicKey, SshSig};

use super::{Format, Verdict, Verification};

/// The namespace git signs commits in.
pub const NAMESPACE: &str = "git";

/// One line of an allowed-signers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigner {
    /// Who may sign with the key (e-mail addresses, or patterns as git writes them).
    pub principals: String,
    pub key: PublicKey,
    /// `namespaces="git,file"`: the namespaces the key may sign in (`None`: any).
    pub namespaces: Option<Vec<String>>,
    /// `valid-after` / `valid-before`, as seconds since the epoch (UTC).
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
}

/// Splits at whitespace outside double quotes.
fn fields(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (None, false);
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// Splits an options field at commas outside double quotes.
fn options(field: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in field.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&field[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&field[start..]);
    out
}

/// `YYYYMMDD[HHMM[SS]]` with an optional `Z`, read as UTC.
fn timestamp(text: &str) -> Option<i64> {
    let digits = text.trim_end_matches(['Z', 'z']);
    let full = match digits.len() {
        8 => format!("{digits}000000"),
        12 => format!("{digits}00"),
        14 => digits.to_string(),
        _ => return None,
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

fn is_key_type(field: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"]
        .iter()
        .any(|p| field.starts_with(p))
}

/// Reads an allowed-signers file: `principals [options] keytype base64 [comment]` a line,
/// `#` comments and blank lines skipped. An error names the line (1-based).
pub fn parse_allowed_signers(text: &str) -> Result<Vec<AllowedSigner>, (usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |m: String| (n + 1, m);
        let f = fields(line);
        let principals = f[0].trim_matches('"').to_string();
        let (opts, key_at) = match f.get(1) {
            Some(k) if is_key_type(k) => (None, 1),
            Some(o) => (Some(*o), 2),
            None => return Err(err("no key after the principals".into())),
        };
        let mut signer = AllowedSigner {
            principals,
            key: PublicKey::from_openssh(&f[key_at..].join(" "))
                .map_err(|e| err(format!("not an SSH public key: {e}")))?,
            namespaces: None,
            valid_after: None,
            valid_before: None,
        };
        for opt in opts.map(options).unwrap_or_default() {
            let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
            let value = value.trim_matches('"');
            match name.to_ascii_lowercase().as_str() {
                "namespaces" => {
                    signer.namespaces = Some(value.split(',').map(str::to_string).collect())
                }
                "valid-after" | "valid-before" => {
                    let at = timestamp(value).ok_or_else(|| {
                        err(format!("{name}={value:?} is not YYYYMMDD[HHMM[SS]]"))
                    })?;
                    if name.eq_ignore_ascii_case("valid-after") {
                        signer.valid_after = Some(at);
                    } else {
                        signer.valid_before = Some(at);
                    }
                }
                other => return Err(err(format!("option `{other}` is not supported"))),
            }
        }
        out.push(signer);
    }
    Ok(out)
}

impl AllowedSigner {
    fn allows_git(&self) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|n| n.iter().any(|ns| ns == NAMESPACE || ns == "*"))
    }
}

pub fn check(text: &str, payload: &[u8], signers: &[AllowedSigner], now: i64) -> Verification {
    let sig = match SshSig::from_pem(text.trim().as_bytes()) {
        Ok(sig) => sig,
        Err(e) => return Verification::bad(Some(Format::Ssh), format!("unreadable: {e}")),
    };
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let signer = signers
        .iter()
        .find(|s| s.key.key_data() == sig.public_key() && s.allows_git());
    let Some(signer) = signer else {
        return Verification {
            verdict: Verdict::UntrustedKey,
            format: Some(Format::Ssh),
            key: Some(fingerprint),
            identity: None,
            detail: None,
        };
    };
    let verification = |verdict| Verification {
        verdict,
        format: Some(Format::Ssh),
        key: Some(fingerprint.clone()),
        identity: Some(signer.principals.clone()),
        detail: None,
    };
    if sig.namespace() != NAMESPACE {
        return Verification {
            detail: Some(format!(
                "namespace {:?}, not {NAMESPACE:?}",
                sig.namespace()
            )),
            ..verification(Verdict::BadSignature)
        };
    }
    if let Err(e) = signer.key.verify(NAMESPACE, payload, &sig) {
        tracing::debug!(error = %e, "SSH signature does not verify");
        return verification(Verdict::BadSignature);
    }
    if signer.valid_before.is_some_and(|at| at <= now) {
        return verification(Verdict::ExpiredKey);
    }
    if signer.valid_after.is_some_and(|at| at > now) {
        return Verification {
            detail: Some("not valid yet (valid-after)".into()),
            ..verification(Verdict::UntrustedKey)
        };
    }
    verification(Verdict::Verified)
}
