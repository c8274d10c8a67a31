//! The reconciler: reading a config repository at one revision (snapshot), and, as the product
//! grows, plan, apply, the state store and the forge.

pub mod snapshot;

/// Errors of the reconciler crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read the config repository at {path}")]
    ReadTree {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not open the git repository at {path}")]
    OpenRepo {
        path: String,
        #[source]
        source: git2::Error,
    },
    #[error("could not resolve revision `{rev}`")]
    Revision {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("could not read {path} from git")]
    ReadObject {
        path: String,
        #[source]
        source: git2::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
