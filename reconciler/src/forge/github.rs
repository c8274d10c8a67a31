//! GitHub as the forge: olo's plan comments on a pull request and the `olo/plan` commit status,
//! through the REST API of github.com or GitHub Enterprise Server, as a token or as a GitHub App
//! installation.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use octocrab::models::{AppId, InstallationId};
use octocrab::{Octocrab, Page};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::comment::{cut, StatusState, MARKER, STATUS_DESCRIPTION_LIMIT};

/// The API of github.com; GitHub Enterprise Server's is `https://<host>/api/v3`.
pub const GITHUB_API_URL: &str = "https://api.github.com";

/// The context of olo's commit status.
pub const STATUS_CONTEXT: &str = "olo/plan";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const PER_PAGE: u32 = 100;
/// Pages of comments read at most (GitHub shows far fewer comments on one pull request).
const MAX_PAGES: usize = 100;

/// How to reach GitHub.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `https://api.github.com`, or GitHub Enterprise Server's `https://ghe.example.com/api/v3`.
    pub api_url: Url,
    pub auth: GitHubAuth,
}

/// Who olo is on GitHub.
#[derive(Debug, Clone)]
pub enum GitHubAuth {
    /// A personal access token (classic or fine-grained) or any other bearer token.
    Token(SecretString),
    /// A GitHub App installation: olo signs a JWT with the App's key and trades it for an
    /// installation token (renewed before it expires).
    App {
        app_id: u64,
        private_key_pem: SecretString,
        installation_id: u64,
    },
}

/// A repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    /// Parses `owner/name` (the payload's `repository.full_name`); `None` unless both halves are
    /// made of letters, digits, `-`, `_` and `.` (and are not `.` or `..`).
    pub fn parse(full_name: &str) -> Option<RepoRef> {
        let (owner, name) = full_name.split_once('/')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        (valid(owner) && valid(name)).then(|| RepoRef {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// `/repos/{owner}/{name}`, each segment percent-encoded.
    fn route(&self) -> String {
        format!("/repos/{}/{}", segment(&self.owner), segment(&self.name))
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Where olo reports on pull requests.
#[async_trait]
pub trait Forge: Send + Sync {
    /// Keeps olo's comments on the pull request equal to `bodies` (from
    /// [`render`](super::comment::render)): finds olo's earlier comments (reading every page of
    /// comments) by [`MARKER`] *and* by their author, olo's own login (the token's user, or the
    /// App's bot, asked of GitHub once), edits them in place part by part (skipping parts whose
    /// body is already right), creates missing parts and deletes surplus old parts. Never
    /// touches a comment that does not start with the marker or that someone else wrote.
    async fn upsert_plan_comments(
        &self,
        repo: &RepoRef,
        pr: u64,
        bodies: &[String],
    ) -> Result<(), ForgeError>;

    /// Sets the `olo/plan` status of commit `sha`. The description is cut to GitHub's 140
    /// characters.
    async fn set_status(
        &self,
        repo: &RepoRef,
        sha: &str,
        state: StatusState,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), ForgeError>;

    /// Opens a pull request from branch `head` (of `repo` itself) into `base`.
    async fn open_pull_request(
        &self,
        repo: &RepoRef,
        pull: &NewPullRequest,
    ) -> Result<PullRequest, ForgeError>;
}

/// A pull request to open: `POST /repos/{owner}/{repo}/pulls`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewPullRequest {
    pub title: String,
    /// The branch with the change (in the same repository).
    pub head: String,
    /// The branch it goes into: the tracked branch.
    pub base: String,
    pub body: String,
}

/// An opened pull request, as GitHub answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct PullRequest {
    pub number: u64,
    pub html_url: String,
}

/// What went wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("the GitHub API URL `{0}` is not an http(s) URL")]
    ApiUrl(String),
    #[error("could not read the private key of GitHub App {app_id}")]
    AppKey {
        app_id: u64,
        #[source]
        source: octocrab::Error,
    },
    #[error("could not set up the GitHub client")]
    Client(#[source] octocrab::Error),
    #[error("could not {action}")]
    Request {
        action: String,
        #[source]
        source: octocrab::Error,
    },
}

impl ForgeError {
    /// Temporary errors are worth retrying with backoff: GitHub's 5xx, 429 and rate-limit 403s,
    /// and failures to reach it at all. Every other 4xx, and bad settings, are permanent.
    pub fn is_temporary(&self) -> bool {
        match self {
            ForgeError::Request { source, .. } => is_temporary(source),
            ForgeError::ApiUrl(_) | ForgeError::AppKey { .. } | ForgeError::Client(_) => false,
        }
    }

    /// The HTTP status GitHub answered with, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ForgeError::Request {
                source: octocrab::Error::GitHub { source, .. },
                ..
            } => Some(source.status_code.as_u16()),
            _ => None,
        }
    }
}

fn is_temporary(error: &octocrab::Error) -> bool {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let code = source.status_code.as_u16();
            let rate_limited = source.headers.as_ref().is_some_and(|h| {
                h.contains_key("retry-after")
                    || h.get("x-ratelimit-remaining")
                        .is_some_and(|v| v.as_bytes() == b"0")
            });
            code >= 500 || code == 429 || (code == 403 && rate_limited)
        }
        // Could not connect, the connection broke, or a timeout.
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => true,
        _ => false,
    }
}

/// The GitHub REST API client.
pub struct GitHub {
    crab: Octocrab,
    /// A GitHub App's own client (its JWT): asks GitHub for the App's slug.
    app: Option<Octocrab>,
    /// olo's login, asked of GitHub the first time olo looks for its comments.
    login: tokio::sync::OnceCell<String>,
}

/// The fields of an issue comment olo reads.
#[derive(Debug, Deserialize)]
struct IssueComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Login>,
}

/// `GET /user` (and a comment's `user`).
#[derive(Debug, Deserialize)]
struct Login {
    login: String,
}

/// `GET /app`.
#[derive(Debug, Deserialize)]
struct App {
    slug: String,
}

impl GitHub {
    /// A client for `settings`. Call it inside a Tokio runtime: the HTTP client starts a task.
    /// Nothing is sent until the first call (an App fetches its installation token then).
    pub fn new(settings: GitHubSettings) -> Result<Self, ForgeError> {
        let url = settings.api_url;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ForgeError::ApiUrl(url.to_string()));
        }
        let builder = Octocrab::builder()
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(READ_TIMEOUT))
            .base_uri(url.as_str().trim_end_matches('/'))
            .map_err(|_| ForgeError::ApiUrl(url.to_string()))?;
        let (crab, app) = match settings.auth {
            GitHubAuth::Token(token) => (
                builder
                    .personal_token(token)
                    .build()
                    .map_err(ForgeError::Client)?,
                None,
            ),
            GitHubAuth::App {
                app_id,
                private_key_pem,
                installation_id,
            } => {
                let app = builder
                    .app_from_rsa_pem(AppId(app_id), private_key_pem.expose_secret().as_bytes())
                    .map_err(|source| ForgeError::AppKey { app_id, source })?
                    .build()
                    .map_err(ForgeError::Client)?;
                let installation = app
                    .installation(InstallationId(installation_id))
                    .map_err(ForgeError::Client)?;
                (installation, Some(app))
            }
        };
        Ok(GitHub {
            crab,
            app,
            login: tokio::sync::OnceCell::new(),
        })
    }

    /// The login olo's comments are written by: the token's user (`GET /user`), or an App's
    /// bot, `<slug>[bot]` (`GET /app`, with the App's JWT). Asked once.
    async fn login(&self) -> Result<&str, ForgeError> {
        let login = self
            .login
            .get_or_try_init(|| async {
                match &self.app {
                    Some(app) => app
                        .get::<App, _, _>("/app", None::<&()>)
                        .await
                        .map(|a| format!("{}[bot]", a.slug))
                        .map_err(|source| ForgeError::Request {
                            action: "read the GitHub App (GET /app)".into(),
                            source,
                        }),
                    None => self
                        .crab
                        .get::<Login, _, _>("/user", None::<&()>)
                        .await
                        .map(|u| u.login)
                        .map_err(|source| ForgeError::Request {
                            action: "read the token's user (GET /user)".into(),
                            source,
                        }),
                }
            })
            .await?;
        Ok(login)
    }

    /// olo's comments on the pull request, oldest first.
    async fn plan_comments(
        &self,
        repo: &RepoRef,
        pr: u64,
    ) -> Result<Vec<IssueComment>, ForgeError> {
        let failed = |source| ForgeError::Request {
            action: format!("list the comments of {repo}#{pr}"),
            source,
        };
        let route = format!("{}/issues/{pr}/comments", repo.route());
        let mut page: Page<IssueComment> = self
            .crab
            .get(&route, Some(&[("per_page", PER_PAGE)]))
            .await
            .map_err(failed)?;
        let mut comments = page.take_items();
        for _ in 1..MAX_PAGES {
            // Follow the `next` link by its path only: the client adds the API base, and with it
            // the credentials (an absolute URL would go without them to anything but github.com).
            let Some(next) = page
                .next
                .as_ref()
                .and_then(|u| u.path_and_query())
                .map(|pq| pq.as_str().to_string())
            else {
                break;
            };
            page = self.crab.get(next, None::<&()>).await.map_err(failed)?;
            comments.append(&mut page.take_items());
        }
        comments.retain(|c| c.body.as_deref().is_some_and(|b| b.starts_with(MARKER)));
        if !comments.is_empty() {
            // Anyone can write the marker: olo's are the ones olo wrote.
            let login = self.login().await?;
            comments.retain(|c| {
                let ours = c.user.as_ref().is_some_and(|u| u.login == login);
                if !ours {
                    tracing::warn!(
                        comment = c.id,
                        author = c.user.as_ref().map(|u| u.login.as_str()),
                        "a comment on {repo}#{pr} starts with olo's marker but is not olo's; \
                         left alone"
                    );
                }
                ours
            });
        }
        comments.sort_by_key(|c| c.id);
        Ok(comments)
    }

    async fn post(
        &self,
        route: String,
        body: serde_json::Value,
        action: impl FnOnce() -> String,
    ) -> Result<(), ForgeError> {
        let result = match self.crab._post(route, Some(&body)).await {
            Ok(response) => octocrab::map_github_error(response).await.map(drop),
            Err(e) => Err(e),
        };
        result.map_err(|source| ForgeError::Request {
            action: action(),
            source,
        })
    }

    async fn patch(
        &self,
        route: String,
        body: serde_json::Value,
        action: impl FnOnce() -> String,
    ) -> Result<(), ForgeError> {
        let result = match self.crab._patch(route, Some(&body)).await {
            Ok(response) => octocrab::map_github_error(response).await.map(drop),
            Err(e) => Err(e),
        };
        result.map_err(|source| ForgeError::Request {
            action: action(),
            source,
        })
    }

    async fn delete(
        &self,
        route: String,
        action: impl FnOnce() -> String,
    ) -> Result<(), ForgeError> {
        let result = match self.crab._delete(route, None::<&()>).await {
            Ok(response) => octocrab::map_github_error(response).await.map(drop),
            Err(e) => Err(e),
        };
        result.map_err(|source| ForgeError::Request {
            action: action(),
            source,
        })
    }
}

#[async_trait]
impl Forge for GitHub {
    #[tracing::instrument(
        name = "github",
        skip_all,
        fields(operation = "upsert_plan_comments", repo = %repo, pr = pr)
    )]
    async fn upsert_plan_comments(
        &self,
        repo: &RepoRef,
        pr: u64,
        bodies: &[String],
    ) -> Result<(), ForgeError> {
        let old = self.plan_comments(repo, pr).await?;
        let n = bodies.len();
        for (i, body) in bodies.iter().enumerate() {
            let part = i + 1;
            match old.get(i) {
                Some(c) if c.body.as_deref() == Some(body.as_str()) => {}
                // octocrab's `update_comment` sends POST; the API documents PATCH.
                Some(c) => {
                    self.patch(
                        format!("{}/issues/comments/{}", repo.route(), c.id),
                        json!({ "body": body }),
                        || {
                            format!(
                                "update plan comment {} (part {part}/{n}) on {repo}#{pr}",
                                c.id
                            )
                        },
                    )
                    .await?
                }
                None => {
                    self.post(
                        format!("{}/issues/{pr}/comments", repo.route()),
                        json!({ "body": body }),
                        || format!("post plan comment part {part}/{n} on {repo}#{pr}"),
                    )
                    .await?
                }
            }
        }
        // Surplus parts go last, so the pull request always shows a plan.
        for c in old.iter().skip(n) {
            self.delete(format!("{}/issues/comments/{}", repo.route(), c.id), || {
                format!("delete old plan comment {} on {repo}#{pr}", c.id)
            })
            .await?;
        }
        Ok(())
    }

    #[tracing::instrument(
        name = "github",
        skip_all,
        fields(operation = "set_status", repo = %repo, sha = sha, state = state.as_str())
    )]
    async fn set_status(
        &self,
        repo: &RepoRef,
        sha: &str,
        state: StatusState,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), ForgeError> {
        let mut body = json!({
            "state": state.as_str(),
            "description": cut(description, STATUS_DESCRIPTION_LIMIT),
            "context": STATUS_CONTEXT,
        });
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        self.post(
            format!("{}/statuses/{}", repo.route(), segment(sha)),
            body,
            || format!("set the {STATUS_CONTEXT} status of {repo}@{sha}"),
        )
        .await
    }

    async fn open_pull_request(
        &self,
        repo: &RepoRef,
        pull: &NewPullRequest,
    ) -> Result<PullRequest, ForgeError> {
        self.crab
            .post(format!("{}/pulls", repo.route()), Some(pull))
            .await
            .map_err(|source| ForgeError::Request {
                action: format!(
                    "open a pull request from {} into {} on {repo}",
                    pull.head, pull.base
                ),
                source,
            })
    }
}

/// Percent-encodes one path segment.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ref_parses_owner_slash_name() {
        assert_eq!(
            RepoRef::parse("Codertocat/Hello-World"),
            Some(RepoRef {
                owner: "Codertocat".into(),
                name: "Hello-World".into()
            })
        );
        assert_eq!(
            RepoRef::parse("acme/lakehouse.config_v2").map(|r| r.to_string()),
            Some("acme/lakehouse.config_v2".to_string())
        );
        for bad in [
            "acme",
            "acme/",
            "/repo",
            "a/b/c",
            "acme/..",
            "acme/re po",
            "acme/r?x=1",
            "",
        ] {
            assert_eq!(RepoRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("abc-1.2_x"), "abc-1.2_x");
        assert_eq!(segment("a/../b c"), "a%2F..%2Fb%20c");
    }
}
