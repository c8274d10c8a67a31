//! Names of workspaces, jobs, tasks, namespaces: `^[a-z][a-z0-9_]{0,62}$`.
//!
//! They become DAG ids, file names and catalog names, so nothing else is ever allowed; code that
//! builds a path or an id from a name takes a [`Name`], which only [`Name::parse`] makes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 63;

    pub fn parse(s: &str) -> Result<Name, String> {
        let mut bytes = s.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if first_ok && rest_ok && s.len() <= Self::MAX_LEN {
            Ok(Name(s.to_string()))
        } else {
            Err(format!(
                "`{}` is not a valid name: use 1 to 63 characters of a-z, 0-9 and _, starting with a letter",
                s.escape_debug()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        assert!(Name::parse("orders_daily").is_ok());
        assert!(Name::parse("a").is_ok());
        assert!(Name::parse(&"a".repeat(63)).is_ok());
        for bad in [
            "",
            "A",
            "1a",
            "_a",
            "a-b",
            "a.b",
            "../x",
            "a/b",
            &"a".repeat(64),
            "é",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
    }
}
