//! OpenPGP signatures of commits (`gpg.format = openpgp`), checked with rPGP.

use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

use super::{Format, Verdict, Verification};

/// Reads every certificate of an armored public key file (one or several key blocks), each
/// with its self-signatures checked.
pub fn parse_keys(text: &str) -> Result<Vec<SignedPublicKey>, pgp::errors::Error> {
    let (certs, _) = SignedPublicKey::from_string_many(text)?;
    let mut out = Vec::new();
    for cert in certs {
        let cert = cert?;
        cert.verify_bindings()?;
        out.push(cert);
    }
    Ok(out)
}

/// The fingerprint people compare with `gpg --list-keys`: upper-case hex.
fn hex(key: &impl KeyDetails) -> String {
    format!("{:X}", key.fingerprint())
}

fn primary_user(cert: &SignedPublicKey) -> Option<String> {
    let users = &cert.details.users;
    users
        .iter()
        .find(|u| u.is_primary())
        .or(users.first())
        .and_then(|u| u.id.as_str().map(str::to_string))
}

/// Whether `sig` names `key` as its issuer (by fingerprint, or by the older key id).
fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let fingerprints = sig.issuer_fingerprint();
    if !fingerprints.is_empty() {
        return fingerprints.iter().any(|f| **f == key.fingerprint());
    }
    sig.issuer_key_id()
        .iter()
        .any(|id| **id == key.legacy_key_id())
}

/// When a key expires: its creation plus the key expiration time of the newest of `sigs`
/// (self-signatures that carry one); `None`: never.
fn expires_at(created: u32, sigs: &[&Signature]) -> Option<i64> {
    let newest = sigs
        .iter()
        .filter(|s| s.created().is_some())
        .max_by_key(|s| s.created())?;
    let after = newest.key_expiration_time()?.as_secs();
    (after > 0).then(|| i64::from(created) + i64::from(after))
}

/// The self-signatures of the primary key: its user ids' certifications and direct-key
/// signatures.
fn primary_self_signatures(cert: &SignedPublicKey) -> Vec<&Signature> {
    cert.details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(cert.details.direct_signatures.iter())
        .collect()
}

pub fn check(text: &str, payload: &[u8], certs: &[SignedPublicKey], now: i64) -> Verification {
    let sig = match DetachedSignature::from_string(text) {
        Ok((sig, _)) => sig.signature,
        Err(e) => return Verification::bad(Some(Format::Openpgp), format!("unreadable: {e}")),
    };
    let issuer = sig
        .issuer_fingerprint()
        .first()
        .map(|f| format!("{f:X}"))
        .or_else(|| {
            sig.issuer_key_id()
                .first()
                .map(|id| id.to_string().to_uppercase())
        });
    for cert in certs {
        let identity = primary_user(cert);
        let verification = |verdict| Verification {
            verdict,
            format: Some(Format::Openpgp),
            key: Some(hex(&cert.primary_key)),
            identity: identity.clone(),
            detail: None,
        };
        let primary_expiry = expires_at(
            cert.primary_key.created_at().as_secs(),
            &primary_self_signatures(cert),
        );
        let revoked = !cert.details.revocation_signatures.is_empty();
        let outcome = if issued_by(&sig, &cert.primary_key) {
            Some((
                sig.verify(&cert.primary_key, payload),
                primary_expiry,
                revoked,
            ))
        } else {
            cert.public_subkeys
                .iter()
                .find(|sub| issued_by(&sig, &sub.key))
                .map(|sub| {
                    let bindings: Vec<&Signature> = sub
                        .signatures
                        .iter()
                        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                        .collect();
                    let expiry = [
                        primary_expiry,
                        expires_at(sub.key.created_at().as_secs(), &bindings),
                    ]
                    .into_iter()
                    .flatten()
                    .min();
                    let sub_revoked = sub
                        .signatures
                        .iter()
                        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
                    (
                        sig.verify(&sub.key, payload),
                        expiry,
                        revoked || sub_revoked,
                    )
                })
        };
        let Some((verified, expiry, revoked)) = outcome else {
            continue;
        };
        return match verified {
            Err(e) => {
                tracing::debug!(error = %e, "OpenPGP signature does not verify");
                verification(Verdict::BadSignature)
            }
            Ok(()) if revoked => verification(Verdict::RevokedKey),
            Ok(()) if expiry.is_some_and(|at| at <= now) => verification(Verdict::ExpiredKey),
            Ok(()) => verification(Verdict::Verified),
        };
    }
    Verification {
        verdict: Verdict::UntrustedKey,
        format: Some(Format::Openpgp),
        key: issuer,
        identity: None,
        detail: None,
    }
}
