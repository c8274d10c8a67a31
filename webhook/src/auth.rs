//! API bearer tokens. Settings hold only SHA-256 hashes of tokens (`olo token --name NAME` prints a
//! token and its hash); a presented token is hashed and compared in constant time. Tokens are
//! never logged.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it: the identity written to the audit log ("ci", "alice").
    pub name: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
}

pub fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A new random token (`olo_` + 32 random bytes in hex) and its hash.
pub fn new_token() -> (String, String) {
    let token = format!(
        "olo_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let h = hash(&token);
    (token, h)
}

/// The name of the token presented as `Authorization: Bearer <token>`, if it is a known one.
pub fn caller(tokens: &[ApiToken], headers: &HeaderMap) -> Option<String> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    if presented.is_empty() {
        return None;
    }
    let presented = hash(presented);
    let mut found = None;
    // Compare with every token (no early exit) so timing says nothing about which matched.
    for t in tokens {
        if bool::from(t.sha256.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(t.name.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn known_tokens_name_their_holder_and_others_do_not() {
        let (token, sha256) = new_token();
        assert!(token.starts_with("olo_") && token.len() == 68);
        let tokens = vec![ApiToken {
            name: "ci".into(),
            sha256,
        }];
        assert_eq!(
            caller(&tokens, &headers(&format!("Bearer {token}"))),
            Some("ci".into())
        );
        assert_eq!(caller(&tokens, &headers("Bearer olo_wrong")), None);
        assert_eq!(caller(&tokens, &headers(&format!("Basic {token}"))), None);
        assert_eq!(caller(&tokens, &headers("Bearer ")), None);
        assert_eq!(caller(&tokens, &HeaderMap::new()), None);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
