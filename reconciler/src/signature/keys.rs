//! The trusted keys, read from the files the settings name and read again when a file changes:
//! each check stats the files (and lists the folders), which costs microseconds, and parses
//! them again only when a name, size, inode or modification time differs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{openpgp, ssh, Keyring};

/// Where the trusted keys are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFiles {
    /// Armored OpenPGP public keys: files, or folders whose every file is one.
    pub openpgp: Vec<PathBuf>,
    /// Git's allowed-signers file of SSH keys.
    pub allowed_signers: Option<PathBuf>,
    /// Armored OpenPGP public keys trusted for merge commits only (files or folders).
    pub merge_openpgp: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not read the trusted keys in {path}")]
pub struct KeyError {
    pub path: PathBuf,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

fn key_error(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> KeyError {
    KeyError {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// What a file looked like when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Result<Stamp, KeyError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).map_err(|e| key_error(path, e))?;
    Ok(Stamp {
        path: path.to_path_buf(),
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: meta.ino(),
    })
}

/// The files of `paths`: a file as it is, a folder's files (not hidden, sorted by name).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, KeyError> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| key_error(path, e))? {
            let entry = entry.map_err(|e| key_error(path, e))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.path().is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

fn read_openpgp(files: &[PathBuf]) -> Result<Vec<pgp::composed::SignedPublicKey>, KeyError> {
    let mut certs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| key_error(file, e))?;
        certs.extend(openpgp::parse_keys(&text).map_err(|e| key_error(file, e))?);
    }
    Ok(certs)
}

struct Loaded {
    stamps: Vec<Stamp>,
    keyring: Arc<Keyring>,
}

/// The trusted keys of the settings, cached until a file changes.
pub struct TrustedKeys {
    files: KeyFiles,
    loaded: Mutex<Option<Loaded>>,
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKeys")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TrustedKeys {
    pub fn new(files: KeyFiles) -> TrustedKeys {
        TrustedKeys {
            files,
            loaded: Mutex::new(None),
        }
    }

    pub fn files(&self) -> &KeyFiles {
        &self.files
    }

    /// The keys as the files hold them now (read again only when one changed).
    pub fn current(&self) -> Result<Arc<Keyring>, KeyError> {
        let openpgp = expand(&self.files.openpgp)?;
        let merge = expand(&self.files.merge_openpgp)?;
        let stamps = openpgp
            .iter()
            .chain(&merge)
            .chain(&self.files.allowed_signers)
            .map(|p| stamp(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = loaded.as_ref().filter(|l| l.stamps == stamps) {
            return Ok(l.keyring.clone());
        }
        let ssh = match &self.files.allowed_signers {
            Some(file) => {
                let text = std::fs::read_to_string(file).map_err(|e| key_error(file, e))?;
                ssh::parse_allowed_signers(&text)
                    .map_err(|(line, m)| key_error(file, format!("line {line}: {m}")))?
            }
            None => Vec::new(),
        };
        let keyring = Arc::new(Keyring {
            openpgp: read_openpgp(&openpgp)?,
            ssh,
            merge: read_openpgp(&merge)?,
        });
        tracing::info!(
            openpgp = keyring.openpgp.len(),
            ssh = keyring.ssh.len(),
            merge = keyring.merge.len(),
            "trusted keys read: {} OpenPGP, {} SSH, {} for merge commits",
            keyring.openpgp.len(),
            keyring.ssh.len(),
            keyring.merge.len()
        );
        *loaded = Some(Loaded {
            stamps,
            keyring: keyring.clone(),
        });
        Ok(keyring)
    }
}
