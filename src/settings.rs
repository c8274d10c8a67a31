//! olo's own settings: one typed struct, from defaults, then a TOML file, then `OLO_` environment
//! variables (`OLO_SOURCE__URL`, `OLO_APPLY__PRUNE`, …: sections and keys joined by `__`).
//! Validated once at start and passed down; nothing reads the environment later.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::Figment;
use olo_templates::RenderSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub source: SourceSettings,
    pub state: StateSettings,
    pub apply: ApplySettings,
    pub render: RenderSettings,
    pub server: ServerSettings,
    pub api: ApiSettings,
    pub github: GitHubSettings,
    pub airflow: AirflowSettings,
    pub mlflow: MlflowSettings,
    pub lakehouse: LakehouseSettings,
    pub trino: TrinoSettings,
    pub oidc: OidcSettings,
    pub log: LogSettings,
    pub verify: VerifySettings,
}

/// `[verify]`: verified authorship. Whether each commit's signature is checked, and against
/// which keys (docs/reconciler.md, "Verified authorship").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySettings {
    /// `off` (the default), `audit` (check and record, apply anyway) or `enforce` (refuse a
    /// commit whose signature does not verify with a trusted key).
    pub policy: olo_reconciler::signature::Policy,
    /// Armored OpenPGP public keys: files, or folders whose every (not hidden) file is one.
    pub openpgp_keys: Vec<PathBuf>,
    /// SSH keys in git's allowed-signers format (`gpg.ssh.allowedSignersFile`).
    pub allowed_signers: Option<PathBuf>,
    /// Armored OpenPGP public keys trusted for merge commits only (GitHub's web-flow key):
    /// a merge commit they sign verifies when its merged parents verify with the keys above.
    pub merge_commit_keys: Vec<PathBuf>,
}

impl VerifySettings {
    /// The engine's verifier (`None` with policy `off`); the keys are read once here, so a
    /// missing or broken key file stops `olo serve` at start.
    pub fn verifier(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<olo_reconciler::signature::Verifier>>> {
        use olo_reconciler::signature::{KeyFiles, Policy, TrustedKeys, Verifier};
        if self.policy == Policy::Off {
            return Ok(None);
        }
        let keys = TrustedKeys::new(KeyFiles {
            openpgp: self.openpgp_keys.clone(),
            allowed_signers: self.allowed_signers.clone(),
            merge_openpgp: self.merge_commit_keys.clone(),
        });
        keys.current().context("[verify]")?;
        Ok(Some(std::sync::Arc::new(Verifier {
            policy: self.policy,
            keys,
        })))
    }
}

/// What olo's logs look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, with the current span and its parents.
    Json,
}

impl LogFormat {
    /// The short form of `OLO_LOG__FORMAT`; it wins over the file and over `OLO_LOG__FORMAT`.
    pub const ENV: &'static str = "OLO_LOG_FORMAT";

    /// `text` or `json`, in any case.
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// `OLO_LOG_FORMAT` for commands that read no settings file (text when unset or unknown).
    pub fn from_env() -> LogFormat {
        std::env::var(LogFormat::ENV)
            .ok()
            .and_then(|v| LogFormat::parse(&v))
            .unwrap_or_default()
    }
}

/// `[log]`: olo's own logs (stderr). `RUST_LOG` filters them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` (the default) or `json`.
    pub format: LogFormat,
}

/// Where the Iceberg namespaces go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogKind {
    /// Iceberg's JDBC-catalog tables in SQLite (or PostgreSQL): the embedded default.
    Sql,
    /// An Iceberg REST catalog.
    Rest,
    /// olo leaves namespaces alone.
    Off,
}

/// Where warehouse locations are bootstrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarehouseKind {
    /// `s3://bucket/prefix` warehouses live in a local folder (`local_warehouse`): the embedded
    /// default, for trying olo without an object store.
    Local,
    /// On the S3-compatible store of `render.s3_*` (bucket created when missing, a marker
    /// object under each prefix).
    S3,
    Off,
}

/// The lakehouse target: each workspace's Iceberg namespaces and warehouse location.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakehouseSettings {
    pub catalog: CatalogKind,
    /// For `catalog = "sql"`: the database (default `sqlite://<state.dir>/iceberg-catalog.db`;
    /// `postgres://…` works too).
    pub sql_database: Option<String>,
    /// For `catalog = "rest"`: the catalog's base URI as olo reaches it (default
    /// `render.iceberg_rest_uri`). The warehouse asked of `/v1/config` is
    /// `render.iceberg_rest_warehouse`, or each workspace's catalog name.
    pub rest_uri: Option<String>,
    /// Environment variable holding a bearer token for the REST catalog.
    pub rest_token_env: Option<String>,
    /// Environment variable holding OAuth2 client credentials `client_id:secret` (default
    /// `render.iceberg_credential_env`).
    pub rest_credential_env: Option<String>,
    /// OAuth2 token endpoint (default `<rest_uri>/v1/oauth/tokens`).
    pub rest_oauth_server: Option<String>,
    pub rest_scope: String,
    pub warehouse: WarehouseKind,
    /// For `warehouse = "local"` (default `<state.dir>/warehouse`).
    pub local_warehouse: Option<PathBuf>,
    /// Seconds per request to the catalog or the object store.
    pub timeout_seconds: u64,
}

impl Default for LakehouseSettings {
    fn default() -> Self {
        LakehouseSettings {
            catalog: CatalogKind::Sql,
            sql_database: None,
            rest_uri: None,
            rest_token_env: None,
            rest_credential_env: None,
            rest_oauth_server: None,
            rest_scope: "catalog".into(),
            warehouse: WarehouseKind::Local,
            local_warehouse: None,
            timeout_seconds: 30,
        }
    }
}

/// The MLflow tracking server olo reads to link MLflow runs to its runs (tasks get their own
/// tracking URI from `render.mlflow_tracking_uri`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlflowSettings {
    /// Where olo reaches MLflow's REST API, e.g. `http://mlflow:5000` (unset: no MLflow links).
    pub url: Option<String>,
    /// MLflow's UI as people reach it, for links (default: `url`).
    pub ui_url: Option<String>,
    /// Seconds per HTTP request.
    pub timeout_seconds: u64,
}

impl Default for MlflowSettings {
    fn default() -> Self {
        MlflowSettings {
            url: None,
            ui_url: None,
            timeout_seconds: 10,
        }
    }
}

/// An OpenID Connect provider whose tokens the API accepts and through which the dashboard
/// signs people in (authorization code + PKCE). Unset `issuer`: no OpenID Connect.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// The provider's issuer URL, exactly as its tokens' `iss` (discovery is read from
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// olo's client at the provider (the `aud` of the dashboard's ID tokens).
    pub client_id: Option<String>,
    /// The `aud` API bearer tokens must hold (default: `client_id`).
    pub audience: Option<String>,
    /// Environment variable holding the client secret (unset: a public client, PKCE only).
    pub client_secret_env: Option<String>,
    /// `https://olo.example.com/auth/callback`, registered at the provider (unset: no
    /// dashboard sign-in, bearer tokens only).
    pub redirect_url: Option<String>,
    /// The claim holding the caller's groups (`group:` roles); dots reach into objects.
    pub groups_claim: String,
    /// The claim naming the caller (`user:` roles); `sub` when the token lacks it.
    pub username_claim: String,
    /// With `username_claim = "email"`, refuse tokens whose `email_verified` claim is not true.
    pub require_email_verified: bool,
    pub scopes: String,
    /// Seconds per request to the provider.
    pub timeout_seconds: u64,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            issuer: None,
            client_id: None,
            audience: None,
            client_secret_env: None,
            redirect_url: None,
            groups_claim: "groups".into(),
            username_claim: "email".into(),
            require_email_verified: true,
            scopes: "openid profile email".into(),
            timeout_seconds: 10,
        }
    }
}

/// Most rows one query of the SQL runner may return, whatever `trino.max_rows` says.
pub const TRINO_MAX_ROWS_CAP: usize = 10_000;

/// The Trino the SQL runner (`POST /api/v1/sql`, the dashboard's SQL page) sends queries to, as
/// the calling token's name (`X-Trino-User`), so Trino's access rules decide what it may read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrinoSettings {
    /// Trino's coordinator, e.g. `http://trino:8080` (unset: no SQL runner).
    pub url: Option<String>,
    /// For Trino's password authentication: the user olo logs in as, and the environment
    /// variable holding its password.
    pub username: Option<String>,
    pub password_env: Option<String>,
    /// Or the environment variable holding a bearer token (JWT or OAuth 2.0).
    pub token_env: Option<String>,
    /// Seconds per HTTP request to Trino.
    pub timeout_seconds: u64,
    /// Most rows a query returns (a request may ask for fewer); at most 10,000.
    pub max_rows: usize,
    /// How the workspaces' Iceberg catalogs reach Trino: `files` (catalog files in
    /// `apply.trino_folder`, read by a Trino with static catalogs) or `dynamic` (`CREATE CATALOG`
    /// / `DROP CATALOG` on a Trino with `catalog.management=dynamic`, as `catalog_user`).
    pub catalogs: TrinoCatalogs,
    /// The Trino user olo manages catalogs as (`catalogs = "dynamic"`).
    pub catalog_user: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrinoCatalogs {
    Files,
    Dynamic,
}

impl Default for TrinoSettings {
    fn default() -> Self {
        TrinoSettings {
            url: None,
            username: None,
            password_env: None,
            token_env: None,
            timeout_seconds: 60,
            max_rows: 1000,
            catalogs: TrinoCatalogs::Files,
            catalog_user: "olo".into(),
        }
    }
}

/// The HTTP server of `olo serve` (webhook, API, health, metrics).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on (`0.0.0.0:8080` to accept connections from other hosts).
    pub listen: String,
    /// Seconds a client has to send a request's headers; idle keep-alive connections are
    /// closed after it too.
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's body (408 after it).
    pub body_timeout_seconds: u64,
    /// Connections served at once (more wait in the kernel's accept queue).
    pub max_connections: usize,
    /// Webhook deliveries over 1 MiB read at once; more wait their turn for at most the body
    /// timeout (503 when none frees by then; GitHub redelivers).
    pub max_large_bodies: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        let limits = olo_server::connections::Limits::default();
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            header_timeout_seconds: limits.header_read.as_secs(),
            body_timeout_seconds: limits.body_read.as_secs(),
            max_connections: limits.max_connections,
            max_large_bodies: limits.large_bodies,
        }
    }
}

impl ServerSettings {
    pub fn limits(&self) -> olo_server::connections::Limits {
        olo_server::connections::Limits {
            header_read: std::time::Duration::from_secs(self.header_timeout_seconds),
            body_read: std::time::Duration::from_secs(self.body_timeout_seconds),
            max_connections: self.max_connections,
            large_bodies: self.max_large_bodies,
        }
    }
}

/// The REST API's tokens. Only SHA-256 hashes are configured (`olo token --name NAME` makes a token
/// and prints its hash); writes (trigger, reconcile) always need a token.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    pub tokens: Vec<olo_server::ApiToken>,
    /// Whether reads need a token too.
    pub read_requires_token: bool,
    /// What `PUT`/`DELETE` of jobs and workspaces through the API become: refused (`off`, the
    /// default), a commit on the tracked branch (`commit`) or a pull request (`pull_request`).
    pub writes: olo_server::writes::Mode,
}

/// GitHub: the webhook secret, and how olo posts plan comments and commit statuses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubSettings {
    /// Environment variable holding the webhook secret (without it the webhook refuses all).
    pub webhook_secret_env: Option<String>,
    /// `owner/name`: deliveries about other repositories are ignored.
    pub repository: Option<String>,
    /// API base URL (GitHub Enterprise: `https://HOST/api/v3`).
    pub api_url: String,
    /// Environment variable holding a token that may comment and set statuses.
    pub token_env: Option<String>,
    /// Or a GitHub App: its id, installation id and private key file (PEM).
    pub app_id: Option<u64>,
    pub installation_id: Option<u64>,
    pub private_key_file: Option<PathBuf>,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        GitHubSettings {
            webhook_secret_env: None,
            repository: None,
            api_url: "https://api.github.com".into(),
            token_env: None,
            app_id: None,
            installation_id: None,
            private_key_file: None,
        }
    }
}

/// The Airflow 3 that runs the rendered DAGs (runs, task logs, pause state, import errors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AirflowSettings {
    /// Base URL, e.g. `http://127.0.0.1:8080` (unset: olo writes DAG files and nothing else).
    pub url: Option<String>,
    /// Airflow's web UI as people reach it, for the dashboard's links (default: `url`).
    pub ui_url: Option<String>,
    pub username: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// Seconds between polls of active runs.
    pub poll_seconds: u64,
    /// After an apply, how long to wait for Airflow to parse changed DAG files (import errors
    /// fail the apply; new DAGs get their pause state).
    pub parse_timeout_seconds: u64,
    /// After an apply, ask Airflow to parse the changed DAG files now (`PUT
    /// /api/v2/parseDagFile`) instead of waiting for its DAG processor's own schedule.
    pub reparse: bool,
    /// Seconds per HTTP request.
    pub timeout_seconds: u64,
}

impl Default for AirflowSettings {
    fn default() -> Self {
        AirflowSettings {
            url: None,
            ui_url: None,
            username: "admin".into(),
            password_env: None,
            poll_seconds: 5,
            parse_timeout_seconds: 120,
            reparse: true,
            timeout_seconds: 30,
        }
    }
}

/// Where the config repository comes from: a local path, or a remote URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// A local folder: a git repository (its branch's commits are followed) or a plain folder
    /// (imported as a commit whenever it changes). Used when `url` is not set.
    pub path: PathBuf,
    /// A remote repository (https://, ssh://, git@…, file://).
    pub url: Option<String>,
    /// The tracked branch (default: the local repository's current branch, or `main`).
    pub branch: Option<String>,
    /// Seconds between polls for new commits (webhooks and local file changes also trigger).
    pub poll_seconds: u64,
    /// Environment variable holding an HTTPS token for `url`.
    pub token_env: Option<String>,
    /// User name sent with the token (GitHub: `x-access-token`).
    pub token_username: String,
    /// Private key file for ssh `url`s, and the variable holding its passphrase.
    pub ssh_key: Option<PathBuf>,
    pub ssh_passphrase_env: Option<String>,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            path: PathBuf::from("examples-repo"),
            url: None,
            branch: None,
            poll_seconds: 30,
            token_env: None,
            token_username: "x-access-token".into(),
            ssh_key: None,
            ssh_passphrase_env: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    /// olo's folder: state database (SQLite default), source mirrors, rendered files.
    pub dir: PathBuf,
    /// State store URL: `sqlite:PATH` or `postgres://…` (default `sqlite:<dir>/state.db`).
    pub database: Option<String>,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            dir: PathBuf::from(".olo"),
            database: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Files in folders (`dags_folder`, `trino_folder`, `iceberg_folder`).
    Folder,
    /// A branch of a git repository that Airflow's GitDagBundle tracks.
    Branch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplySettings {
    /// Delete resources olo created when they leave the repository.
    pub prune: bool,
    pub sink: SinkKind,
    /// Airflow's DAG folder (default `<state.dir>/dags`).
    pub dags_folder: Option<PathBuf>,
    /// Folder Trino reads catalogs and rules.json from (default `<state.dir>/trino`).
    pub trino_folder: Option<PathBuf>,
    /// Folder for the Iceberg namespace description (default `<state.dir>/iceberg`).
    pub iceberg_folder: Option<PathBuf>,
    /// For `sink = "branch"`: the repository (created bare if missing) and branch.
    pub rendered_repo: Option<PathBuf>,
    pub rendered_branch: String,
}

impl Default for ApplySettings {
    fn default() -> Self {
        ApplySettings {
            prune: true,
            sink: SinkKind::Folder,
            dags_folder: None,
            trino_folder: None,
            iceberg_folder: None,
            rendered_repo: None,
            rendered_branch: "olo/rendered".into(),
        }
    }
}

const SECTIONS: &[&str] = &[
    "log",
    "source",
    "state",
    "apply",
    "render",
    "server",
    "api",
    "github",
    "airflow",
    "mlflow",
    "lakehouse",
    "trino",
    "verify",
];

impl Settings {
    /// Defaults, then `file` (if given), then `OLO_` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("settings file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(
            Env::prefixed("OLO_")
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    SECTIONS.iter().any(|s| k.starts_with(&format!("{s}__")))
                })
                .split("__"),
        );
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("invalid settings")?;
        settings.log_format_from(std::env::var(LogFormat::ENV).ok())?;
        // olo's catalog user must be let manage catalogs by the rules.json olo renders.
        if settings.trino.catalogs == TrinoCatalogs::Dynamic {
            let r = &mut settings.render;
            r.trino_catalog_manager
                .get_or_insert_with(|| settings.trino.catalog_user.clone());
        }
        settings.check()?;
        Ok(settings)
    }

    /// `OLO_LOG_FORMAT` (`value`), when set, replaces `[log] format`.
    fn log_format_from(&mut self, value: Option<String>) -> anyhow::Result<()> {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            self.log.format = LogFormat::parse(&value).with_context(|| {
                format!("{} = {value:?}: expected text or json", LogFormat::ENV)
            })?;
        }
        Ok(())
    }

    fn check(&self) -> anyhow::Result<()> {
        let s = &self.server;
        if s.header_timeout_seconds == 0 || s.body_timeout_seconds == 0 {
            bail!(
                "server.header_timeout_seconds and server.body_timeout_seconds must be at least 1"
            );
        }
        if s.max_connections == 0 || s.max_large_bodies == 0 {
            bail!("server.max_connections and server.max_large_bodies must be at least 1");
        }
        if self.source.poll_seconds == 0 {
            bail!("source.poll_seconds must be at least 1");
        }
        if self.apply.sink == SinkKind::Branch && self.apply.rendered_repo.is_none() {
            bail!("apply.sink = \"branch\" needs apply.rendered_repo");
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "server.listen = {:?} is not an address such as 127.0.0.1:8080",
                self.server.listen
            );
        }
        if self.api.writes == olo_server::writes::Mode::PullRequest
            && (self.github.repository.is_none()
                || (self.github.token_env.is_none() && self.github.app_id.is_none()))
        {
            bail!("api.writes = \"pull_request\" needs GitHub: github.repository and github.token_env (or a GitHub App)");
        }
        if self.api.writes == olo_server::writes::Mode::PullRequest && self.source.url.is_none() {
            bail!(
                "api.writes = \"pull_request\" needs source.url: the change's branch is pushed there for GitHub to open the pull request from; a local source.path ({}) has nowhere to push it (use api.writes = \"commit\" with a local folder)",
                self.source.path.display()
            );
        }
        for t in &self.api.tokens {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "api.tokens: the token `{}` needs `sha256` = 64 hex digits (`olo token --name NAME` prints one)",
                    t.name
                );
            }
        }
        if self.airflow.url.is_some() && self.airflow.password_env.is_none() {
            bail!("airflow.url is set: set airflow.password_env too (the variable holding the password)");
        }
        if self.trino.catalogs == TrinoCatalogs::Dynamic && self.trino.url.is_none() {
            bail!("trino.catalogs = \"dynamic\" needs trino.url (the coordinator olo sends CREATE CATALOG to)");
        }
        let v = &self.verify;
        if v.policy == olo_reconciler::signature::Policy::Enforce
            && v.openpgp_keys.is_empty()
            && v.allowed_signers.is_none()
        {
            bail!("verify.policy = \"enforce\" needs trusted keys: verify.openpgp_keys (OpenPGP) or verify.allowed_signers (SSH)");
        }
        if self.lakehouse.timeout_seconds == 0 {
            bail!("lakehouse.timeout_seconds must be at least 1");
        }
        if self.lakehouse.rest_token_env.is_some() && self.lakehouse.rest_credential_env.is_some() {
            bail!("lakehouse: set rest_token_env or rest_credential_env, not both");
        }
        let t = &self.trino;
        if t.timeout_seconds == 0 {
            bail!("trino.timeout_seconds must be at least 1");
        }
        if !(1..=TRINO_MAX_ROWS_CAP).contains(&t.max_rows) {
            bail!("trino.max_rows must be between 1 and {TRINO_MAX_ROWS_CAP}");
        }
        if t.token_env.is_some() && (t.username.is_some() || t.password_env.is_some()) {
            bail!("trino: set username and password_env, or token_env, not both");
        }
        if t.username.is_some() != t.password_env.is_some() {
            bail!("trino: username and password_env go together (Trino's password authentication)");
        }
        if self.airflow.poll_seconds == 0 {
            bail!("airflow.poll_seconds must be at least 1");
        }
        if self.github.app_id.is_some()
            && (self.github.installation_id.is_none() || self.github.private_key_file.is_none())
        {
            bail!("github.app_id needs github.installation_id and github.private_key_file");
        }
        let oidc = &self.oidc;
        if let Some(issuer) = &oidc.issuer {
            if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
                bail!("oidc.issuer must be the provider's https:// issuer URL");
            }
            if oidc.client_id.is_none() {
                bail!("oidc.issuer is set: set oidc.client_id too (olo's client at the provider)");
            }
            if oidc.timeout_seconds == 0 {
                bail!("oidc.timeout_seconds must be at least 1");
            }
            if let Some(r) = &oidc.redirect_url {
                if !r.ends_with("/auth/callback") {
                    bail!("oidc.redirect_url must end in /auth/callback (olo's sign-in callback), e.g. https://olo.example.com/auth/callback");
                }
            }
        } else if oidc.client_id.is_some() || oidc.redirect_url.is_some() {
            bail!("oidc.client_id / oidc.redirect_url are set without oidc.issuer");
        }
        Ok(())
    }

    /// The OpenID Connect verifier, when `oidc.issuer` is set.
    pub fn oidc(&self) -> anyhow::Result<Option<olo_server::oidc::Oidc>> {
        let o = &self.oidc;
        let (Some(issuer), Some(client_id)) = (&o.issuer, &o.client_id) else {
            return Ok(None);
        };
        let config = olo_server::oidc::OidcConfig {
            issuer: issuer.clone(),
            audience: o.audience.clone().unwrap_or_else(|| client_id.clone()),
            client_id: client_id.clone(),
            client_secret: Settings::secret(&o.client_secret_env)?,
            redirect_url: o.redirect_url.clone(),
            groups_claim: o.groups_claim.clone(),
            username_claim: o.username_claim.clone(),
            require_email_verified: o.require_email_verified,
            scopes: o.scopes.clone(),
            timeout: std::time::Duration::from_secs(o.timeout_seconds),
        };
        Ok(Some(olo_server::oidc::Oidc::new(config).context("[oidc]")?))
    }

    /// Reads a secret from the environment variable a setting names.
    pub fn secret(var: &Option<String>) -> anyhow::Result<Option<secrecy::SecretString>> {
        match var {
            None => Ok(None),
            Some(v) => std::env::var(v)
                .map(|s| Some(secrecy::SecretString::from(s)))
                .with_context(|| {
                    format!("environment variable {v} (named in the settings) is not set")
                }),
        }
    }

    pub fn tracked_branch(&self) -> String {
        self.source.branch.clone().unwrap_or_else(|| "main".into())
    }

    pub fn database_url(&self) -> String {
        self.state
            .database
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.state.dir.join("state.db").display()))
    }

    /// The state folder as an absolute path (warehouse locations must be absolute).
    pub fn state_dir_absolute(&self) -> anyhow::Result<PathBuf> {
        let d = &self.state.dir;
        if d.is_absolute() {
            return Ok(d.clone());
        }
        Ok(std::env::current_dir()
            .context("could not read the current folder")?
            .join(d))
    }

    /// The SQL catalog's database URL.
    pub fn iceberg_sql_database(&self) -> anyhow::Result<String> {
        match &self.lakehouse.sql_database {
            Some(url) => Ok(url.clone()),
            None => Ok(format!(
                "sqlite://{}?mode=rwc",
                self.state_dir_absolute()?
                    .join("iceberg-catalog.db")
                    .display()
            )),
        }
    }

    /// Who can reach the lakehouse olo manages, when the engines olo renders settings for cannot:
    /// the rendered Trino catalogs and Spark conf always name the REST catalog
    /// (`render.iceberg_rest_uri`) and the S3 store (`render.s3_endpoint`), so namespaces in olo's
    /// SQL catalog, or warehouses kept on olo's disk, are out of their reach. `None` when olo
    /// manages the REST catalog and S3 (or nothing).
    pub fn lakehouse_reach(&self) -> Option<String> {
        let (l, r) = (&self.lakehouse, &self.render);
        let sql = l.catalog == CatalogKind::Sql;
        let local = l.warehouse == WarehouseKind::Local;
        if !sql && !local {
            return None;
        }
        let what = match (sql, local) {
            (true, true) => "namespaces in olo's own Iceberg SQL catalog and warehouses on olo's disk (the embedded default): PyIceberg's SqlCatalog and Java's JdbcCatalog read them;",
            (true, false) => "namespaces in olo's own Iceberg SQL catalog (lakehouse.catalog = \"sql\"): PyIceberg's SqlCatalog and Java's JdbcCatalog read it;",
            _ => "warehouses on olo's disk (lakehouse.warehouse = \"local\"):",
        };
        Some(format!(
            "lakehouse: {what} Trino and Spark cannot, their rendered settings use the REST catalog {} and S3 at {}. For them, set lakehouse.catalog = \"rest\" and lakehouse.warehouse = \"s3\" (docs/lakehouse.md)",
            r.iceberg_rest_uri, r.s3_endpoint
        ))
    }

    pub fn layout(&self) -> olo_reconciler::apply::Layout {
        let d = &self.state.dir;
        olo_reconciler::apply::Layout {
            dags: self
                .apply
                .dags_folder
                .clone()
                .unwrap_or_else(|| d.join("dags")),
            trino: self
                .apply
                .trino_folder
                .clone()
                .unwrap_or_else(|| d.join("trino")),
            iceberg: self
                .apply
                .iceberg_folder
                .clone()
                .unwrap_or_else(|| d.join("iceberg")),
        }
    }
}

#[cfg(test)]
mod tests;
