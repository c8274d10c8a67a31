//! The API commands' config file (`olo run`, `olo jobs`, `olo job apply`, ...): where olo runs
//! and which token to send, so they need not be typed each time.
//!
//! ```toml
//! # ~/.config/olo/cli.toml (or $XDG_CONFIG_HOME/olo/cli.toml, or the file OLO_CLI_CONFIG names)
//! server = "https://olo.example.com"
//! token_file = "~/.config/olo/token"   # or: token = "olo_..." (then the file must be private)
//! ```
//!
//! A flag or its environment variable (`--server`/`OLO_SERVER`, `--token`/`OLO_TOKEN`) wins over
//! the file; without either, the server is `http://127.0.0.1:8080` and no token is sent.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// Where olo is when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The file's settings.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CliFile {
    pub server: Option<String>,
    pub token: Option<String>,
    /// A file holding the token (its first line); `~/` is the home folder.
    pub token_file: Option<PathBuf>,
}

/// The file to read: `OLO_CLI_CONFIG`, else `$XDG_CONFIG_HOME/olo/cli.toml`, else
/// `~/.config/olo/cli.toml`. `None` when no home is known.
pub fn path(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("OLO_CLI_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(dir) = env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("olo/cli.toml"));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".config/olo/cli.toml"))
}

/// Reads the file at `path`: `None` when there is none (unless `required`, as a path named by
/// `OLO_CLI_CONFIG` is). A token in a file others can read is refused, as ssh refuses such a key.
pub fn load(path: &Path, required: bool) -> anyhow::Result<Option<CliFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let file: CliFile = toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid olo CLI config (keys: server, token, token_file)",
            path.display()
        )
    })?;
    if file.token.is_some() {
        refuse_if_shared(path)?;
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn refuse_if_shared(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("could not read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} holds a token and others may read it (mode {:o}): run `chmod 600 {}`, or use \
             token_file",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_shared(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// The server and token: the flag (or its environment variable), else the file, else the
/// default server and no token.
pub fn resolve(
    server: Option<&str>,
    token: Option<&str>,
    file: Option<CliFile>,
    home: Option<&str>,
) -> anyhow::Result<(String, Option<String>)> {
    let file = file.unwrap_or_default();
    let server = server
        .map(str::to_string)
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let token = match (token, file.token, file.token_file) {
        (Some(t), _, _) => Some(t.to_string()),
        (None, Some(_), Some(_)) => {
            bail!("the CLI config sets both token and token_file: keep one")
        }
        (None, Some(t), None) => Some(t),
        (None, None, Some(f)) => {
            let f = match (f.strip_prefix("~"), home) {
                (Ok(rest), Some(home)) => Path::new(home).join(rest),
                _ => f,
            };
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("could not read the token file {}", f.display()))?;
            let token = text.lines().next().unwrap_or_default().trim().to_string();
            if token.is_empty() {
                bail!("the token file {} is empty", f.display());
            }
            Some(token)
        }
        (None, None, None) => None,
    };
    Ok((server, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_file_is_named_by_olo_cli_config_then_xdg_then_home() {
        assert_eq!(
            path(env(&[("OLO_CLI_CONFIG", "/x/c.toml"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/c.toml"))
        );
        assert_eq!(
            path(env(&[("XDG_CONFIG_HOME", "/cfg"), ("HOME", "/h")])),
            Some(PathBuf::from("/cfg/olo/cli.toml"))
        );
        assert_eq!(
            path(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/olo/cli.toml"))
        );
        assert_eq!(path(env(&[])), None);
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let file = || CliFile {
            server: Some("https://olo.example.com".into()),
            token: Some("from-file".into()),
            token_file: None,
        };
        assert_eq!(
            resolve(Some("http://flag"), Some("flag-token"), Some(file()), None).unwrap(),
            ("http://flag".to_string(), Some("flag-token".to_string()))
        );
        assert_eq!(
            resolve(None, None, Some(file()), None).unwrap(),
            (
                "https://olo.example.com".to_string(),
                Some("from-file".to_string())
            )
        );
        assert_eq!(
            resolve(None, None, None, None).unwrap(),
            (DEFAULT_SERVER.to_string(), None)
        );
    }

    #[test]
    fn a_token_file_is_read_from_home_and_must_hold_a_token() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "olo_secret\n").unwrap();
        let file = |name: &str| CliFile {
            token_file: Some(PathBuf::from(format!("~/{name}"))),
            ..CliFile::default()
        };
        let home_s = home.path().to_str();
        assert_eq!(
            resolve(None, None, Some(file("token")), home_s).unwrap().1,
            Some("olo_secret".to_string())
        );
        std::fs::write(home.path().join("empty"), "\n").unwrap();
        let err = resolve(None, None, Some(file("empty")), home_s).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let err = resolve(None, None, Some(file("missing")), home_s).unwrap_err();
        assert!(
            err.to_string().contains("could not read the token file"),
            "{err}"
        );
        let both = CliFile {
            token: Some("t".into()),
            ..file("token")
        };
        assert!(resolve(None, None, Some(both), home_s).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_token_in_a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cli.toml");
        std::fs::write(&p, "server = \"http://olo\"\ntoken = \"secret\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&p, false).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load(&p, false).unwrap().unwrap().token.as_deref(),
            Some("secret")
        );
        // Without a token, the file's mode does not matter; a missing file is no file.
        std::fs::write(&p, "server = \"http://olo\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&p, false).unwrap().is_some());
        assert!(load(&dir.path().join("none.toml"), false)
            .unwrap()
            .is_none());
        assert!(load(&dir.path().join("none.toml"), true).is_err());
        std::fs::write(&p, "sever = \"typo\"\n").unwrap();
        let err = load(&p, false).unwrap_err();
        assert!(format!("{err:#}").contains("sever"), "{err:#}");
    }
}
