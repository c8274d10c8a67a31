use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, FetchOptions, RemoteCallbacks, Repository};

use super::write::{commit_and_push, WriteError, WriteRequest, Written};
use super::{commit_revision, has_commit, missing_commit, Source, Tip};
use crate::{Error, Result};

/// How to authenticate to a remote repository. Secrets are read from the environment variable
/// or file the settings name, when needed, and never logged.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    /// HTTPS with a token (GitHub: a PAT or an installation token) as the password.
    Token { username: String, token: String },
    /// SSH with a private key file (and optional passphrase).
    SshKey {
        username: String,
        key: PathBuf,
        passphrase: Option<String>,
    },
}

/// A remote repository (https, ssh or file://) mirrored into a bare repository under the state
/// folder; `latest` fetches the tracked branch.
pub struct RemoteSource {
    url: String,
    branch: String,
    mirror: PathBuf,
    credentials: Credentials,
}

impl RemoteSource {
    pub fn new(
        url: &str,
        branch: &str,
        state_dir: &Path,
        credentials: Credentials,
    ) -> RemoteSource {
        RemoteSource {
            url: url.to_string(),
            branch: branch.to_string(),
            mirror: state_dir.join("remote-source.git"),
            credentials,
        }
    }

    fn open(&self) -> Result<Repository> {
        match Repository::open_bare(&self.mirror) {
            Ok(r) => Ok(r),
            Err(_) => Repository::init_bare(&self.mirror).map_err(|source| Error::OpenRepo {
                path: self.mirror.display().to_string(),
                source,
            }),
        }
    }

    fn fetch(&self, repo: &Repository) -> std::result::Result<(), git2::Error> {
        let refspec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        self.fetch_refspecs(repo, &[refspec])
    }

    fn fetch_refspecs(
        &self,
        repo: &Repository,
        refspecs: &[String],
    ) -> std::result::Result<(), git2::Error> {
        fetch_with(repo, &self.url, &self.credentials, refspecs)
    }
}

/// Callbacks that answer the remote's credential requests from `creds` (three attempts at most).
pub(super) fn callbacks<'a>(creds: Credentials) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let mut attempts = 0;
    callbacks.credentials(move |_url, username, allowed| {
        attempts += 1;
        if attempts > 3 {
            return Err(git2::Error::from_str("authentication failed"));
        }
        match &creds {
            Credentials::Token { username, token }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, token)
            }
            Credentials::SshKey {
                username: u,
                key,
                passphrase,
            } if allowed.contains(CredentialType::SSH_KEY) => {
                Cred::ssh_key(username.unwrap_or(u), None, key, passphrase.as_deref())
            }
            _ => Cred::default(),
        }
    });
    callbacks
}

/// Fetches `refspecs` from `url` into `repo`.
pub(super) fn fetch_with(
    repo: &Repository,
    url: &str,
    credentials: &Credentials,
    refspecs: &[String],
) -> std::result::Result<(), git2::Error> {
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(credentials.clone()));
    let mut remote = repo.remote_anonymous(url)?;
    remote.fetch(refspecs, Some(&mut options), None)
}

impl Source for RemoteSource {
    fn latest(&mut self) -> Result<Tip> {
        let repo = self.open()?;
        self.fetch(&repo).map_err(|source| Error::Fetch {
            url: self.url.clone(),
            source,
        })?;
        let oid = repo
            .revparse_single(&format!("refs/heads/{}", self.branch))
            .and_then(|o| o.peel_to_commit())
            .map_err(|source| Error::Revision {
                rev: self.branch.clone(),
                source,
            })?
            .id();
        let revision = commit_revision(&repo, &oid.to_string(), &self.branch)?;
        Ok(Tip {
            repo: self.mirror.clone(),
            revision,
        })
    }

    fn describe(&self) -> String {
        format!("remote {} ({})", self.url, self.branch)
    }

    fn write(&mut self, request: &WriteRequest) -> std::result::Result<Written, WriteError> {
        commit_and_push(&self.mirror, &self.url, &self.credentials, request)
    }

    fn fetch_commit(&mut self, sha: &str, refs: &[String]) -> Result<PathBuf> {
        let repo = self.open()?;
        if !has_commit(&repo, sha) {
            // Fetched under refs/olo/ so they never shadow the tracked branch.
            let refspecs: Vec<String> = refs
                .iter()
                .filter(|r| r.starts_with("refs/") && !r.contains(':') && !r.contains(".."))
                .map(|r| format!("+{r}:refs/olo/{}", r.trim_start_matches("refs/")))
                .collect();
            if !refspecs.is_empty() {
                self.fetch_refspecs(&repo, &refspecs)
                    .map_err(|source| Error::Fetch {
                        url: self.url.clone(),
                        source,
                    })?;
            }
        }
        if has_commit(&repo, sha) {
            Ok(self.mirror.clone())
        } else {
            Err(missing_commit(sha))
        }
    }
}
