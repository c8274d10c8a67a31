//! The reconciler: snapshot (git), plan (pure diff), apply (sinks), the state store, sources of
//! commits, and the reconcile loop that ties them together.

pub mod apply;
pub mod catalog;
pub mod content;
pub mod engine;
pub mod forge;
pub mod lakehouse;
pub mod leader;
pub mod lineage;
pub mod openlineage;
pub mod plan;
pub mod report;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod targets;

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
    #[error("could not fetch {url}")]
    Fetch {
        url: String,
        #[source]
        source: git2::Error,
    },
    #[error("could not {action} {path}")]
    Sink {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not commit the rendered files to {branch}")]
    RenderedBranch {
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error("refusing to touch `{0}`: not a plain relative path")]
    UnsafePath(String),
    #[error("could not render the repository")]
    Render(#[from] olo_templates::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Lakehouse(#[from] lakehouse::LakeError),
}

impl Error {
    /// Temporary errors are retried with backoff; permanent ones stall until the next commit.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Fetch { .. } | Error::Sink { .. } => true,
            Error::Store(e) => e.is_temporary(),
            Error::Lakehouse(e) => e.is_temporary(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
