//! The reconciler: snapshot (git), plan (pure diff), apply (sinks), the state store, sources of
//! commits, and the reconcile loop that ties them together.

pub mod adopt;
pub mod apply;
pub mod audit;
pub mod catalog;
pub mod content;
pub mod controller;
pub mod engine;
pub mod forge;
pub mod lakehouse;
pub mod leader;
pub mod lineage;
pub mod openlineage;
pub mod plan;
pub mod report;
pub mod runs;
pub mod signature;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod targets;
pub mod text;

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
    #[error("a blocking task of the reconcile stopped")]
    Blocking(#[source] tokio::task::JoinError),
    #[error("refusing to touch `{0}`: not a plain relative path")]
    UnsafePath(String),
    #[error("could not render the repository")]
    Render(#[from] olo_templates::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(
        "the state store {store} is empty, but {} olo rendered {} live, such as {example} (of \
         revision {revision}): the store lost olo's inventory, revisions and audit log, and olo \
         would never prune these files. Restore the store from a backup (olo restore --from FILE, \
         see docs/operations/backup-restore.md), or start once with --adopt to take every file \
         with olo's header back into the inventory",
        text::count(*files, "file"),
        if *files == 1 { "is" } else { "are" }
    )]
    StoreLost {
        store: String,
        files: usize,
        example: String,
        revision: String,
    },
    #[error(transparent)]
    Lakehouse(#[from] lakehouse::LakeError),
    /// A trusted key file is missing or unreadable (permanent: someone has to fix the file).
    #[error(transparent)]
    Keys(#[from] signature::keys::KeyError),
}

impl Error {
    /// Whether waiting helps ([`controller::error_policy`] decides by this):
    ///
    /// - fetching the source: temporary (the network, the git server);
    /// - writing the sink: by the I/O error. Permission denied, a read-only filesystem, an
    ///   invalid name, a file where a folder should be: permanent, someone has to fix the target
    ///   (then `POST /api/v1/reconcile`). A full disk or quota: temporary, space comes back
    ///   without a commit. Anything else (timeouts, interrupted calls, a vanished folder):
    ///   temporary;
    /// - the state store: temporary (its failure is never the commit's);
    /// - the lakehouse: as [`lakehouse::LakeError::is_temporary`] says;
    /// - the rest (an unreadable repository, an unsafe path, rendering): permanent.
    pub fn class(&self) -> controller::ErrorClass {
        use controller::ErrorClass::{Permanent, Temporary};
        use std::io::ErrorKind;
        match self {
            Error::Fetch { .. } | Error::Store(_) => Temporary,
            Error::Sink { source, .. } => match source.kind() {
                ErrorKind::PermissionDenied
                | ErrorKind::ReadOnlyFilesystem
                | ErrorKind::InvalidInput
                | ErrorKind::InvalidFilename
                | ErrorKind::NotADirectory
                | ErrorKind::IsADirectory => Permanent,
                _ => Temporary,
            },
            Error::Lakehouse(e) if e.is_temporary() => Temporary,
            _ => Permanent,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
