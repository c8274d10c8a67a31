//! The parts olo's settings describe, built once at start-up: the state store, the source of
//! commits, the sink, the clients of Airflow, Trino, GitHub and MLflow, the controller of the
//! tracked branch and the server's state. `olo serve`, `olo apply` and the read-only commands
//! take what they need from here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::apply::{BranchSink, FolderSink, Sink};
use olo_reconciler::controller::{Controller, Queue, SharedSource};
use olo_reconciler::engine::Engine;
use olo_reconciler::forge::{self, Forge};
use olo_reconciler::source::{Credentials, LocalSource, RemoteSource, Source};
use olo_reconciler::store::Store;
use olo_reconciler::targets::airflow::{Airflow, AirflowClient};
use olo_reconciler::targets::dags::AirflowDags;
use olo_server::AppState;
use secrecy::ExposeSecret as _;
use tracing::info;

use crate::settings::{Settings, SinkKind};

/// What `olo serve` and `olo apply` run: the controller of the tracked branch, and Airflow.
pub struct Runtime {
    /// The engine, the source and the queue of the tracked branch.
    pub controller: Controller,
    pub airflow: Option<Arc<dyn Airflow>>,
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if settings.state.database.is_none() {
        // The default store lives in the state folder.
        std::fs::create_dir_all(&settings.state.dir)
            .with_context(|| format!("could not create {}", settings.state.dir.display()))?;
    }
    let url = settings.database_url();
    let store = olo_reconciler::store::open(&url).await.with_context(|| {
        format!(
            "could not open the state store {}",
            olo_reconciler::store::redacted_url(&url)
        )
    })?;
    Ok(Arc::from(store))
}

/// The dashboard's view of the config repository (git objects of the source's local repository)
/// and of the sink (its own handle: reads only).
struct DashboardFiles {
    repo: std::path::PathBuf,
    sink: Mutex<Box<dyn Sink>>,
}

/// Largest file the dashboard shows (the validator refuses larger config files anyway).
const SHOWN_FILE_MAX: usize = 1 << 20;

/// Most files of one commit the revision page shows.
const SHOWN_COMMIT_FILES: usize = 100;

impl olo_server::Files for DashboardFiles {
    fn spec(&self, revision: &str, path: &str) -> Option<String> {
        olo_reconciler::snapshot::read_file(&self.repo, revision, path, SHOWN_FILE_MAX)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    fn commit_diff(
        &self,
        revision: &str,
    ) -> Option<(Vec<olo_reconciler::snapshot::FileDiff>, usize)> {
        olo_reconciler::snapshot::commit_diff(
            &self.repo,
            revision,
            SHOWN_COMMIT_FILES,
            SHOWN_FILE_MAX,
        )
        .ok()
    }

    fn deployed(&self, name: &str) -> Option<String> {
        let sink = self.sink.lock().ok()?;
        let mut names = std::iter::once(name);
        let mut found = sink.observe(&mut names).ok()?;
        found
            .remove(name)
            .filter(|b| b.len() <= SHOWN_FILE_MAX)
            .and_then(|b| String::from_utf8(b).ok())
    }
}

pub fn make_sink(settings: &Settings) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match settings.apply.sink {
        SinkKind::Folder => Box::new(FolderSink::new(settings.layout())),
        SinkKind::Branch => {
            let repo = settings
                .apply
                .rendered_repo
                .as_ref()
                .context("apply.rendered_repo")?;
            Box::new(BranchSink::new(repo, &settings.apply.rendered_branch)?)
        }
    })
}

pub fn make_source(settings: &Settings) -> anyhow::Result<Box<dyn Source>> {
    let s = &settings.source;
    let secret = |var: &Option<String>| -> anyhow::Result<Option<String>> {
        Ok(Settings::secret(var)?.map(|s| s.expose_secret().to_string()))
    };
    Ok(match &s.url {
        Some(url) => {
            let credentials = if let Some(token) = secret(&s.token_env)? {
                Credentials::Token {
                    username: s.token_username.clone(),
                    token,
                }
            } else if let Some(key) = &s.ssh_key {
                Credentials::SshKey {
                    username: "git".into(),
                    key: key.clone(),
                    passphrase: secret(&s.ssh_passphrase_env)?,
                }
            } else {
                Credentials::None
            };
            let branch = s.branch.clone().unwrap_or_else(|| "main".into());
            Box::new(RemoteSource::new(
                url,
                &branch,
                &settings.state.dir,
                credentials,
            ))
        }
        None => Box::new(LocalSource::new(
            &s.path,
            s.branch.clone(),
            &settings.state.dir,
        )),
    })
}

pub fn make_airflow(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Airflow>>> {
    let a = &settings.airflow;
    let Some(url) = &a.url else {
        return Ok(None);
    };
    let password = Settings::secret(&a.password_env)?.context("airflow.password_env")?;
    let client = AirflowClient::new(olo_reconciler::targets::airflow::AirflowSettings {
        url: url
            .parse()
            .with_context(|| format!("airflow.url = {url:?} is not a URL"))?,
        username: a.username.clone(),
        password,
        timeout: Duration::from_secs(a.timeout_seconds),
    })
    .context("could not set up the Airflow client")?;
    Ok(Some(Arc::new(client)))
}

/// The SQL runner's Trino client, from `[trino]` (`None` without `trino.url`).
pub fn make_trino(
    settings: &Settings,
) -> anyhow::Result<Option<Arc<dyn olo_reconciler::targets::trino::Trino>>> {
    use olo_reconciler::targets::trino::{TrinoAuth, TrinoClient};
    let t = &settings.trino;
    let Some(url) = &t.url else {
        return Ok(None);
    };
    let auth = if let Some(token) = Settings::secret(&t.token_env)? {
        Some(TrinoAuth::Bearer(token))
    } else if let (Some(username), Some(password)) =
        (&t.username, Settings::secret(&t.password_env)?)
    {
        Some(TrinoAuth::Basic {
            username: username.clone(),
            password,
        })
    } else {
        None
    };
    let client =
        TrinoClient::new(url, Duration::from_secs(t.timeout_seconds), auth).context("trino.url")?;
    Ok(Some(Arc::new(client)))
}

pub fn make_forge(settings: &Settings) -> anyhow::Result<Option<Arc<dyn Forge>>> {
    let g = &settings.github;
    let auth = if let Some(token) = Settings::secret(&g.token_env)? {
        forge::GitHubAuth::Token(token)
    } else if let (Some(app_id), Some(installation_id), Some(key)) =
        (g.app_id, g.installation_id, &g.private_key_file)
    {
        let pem = std::fs::read_to_string(key)
            .with_context(|| format!("could not read github.private_key_file {}", key.display()))?;
        forge::GitHubAuth::App {
            app_id,
            private_key_pem: pem.into(),
            installation_id,
        }
    } else {
        return Ok(None);
    };
    let github = forge::GitHub::new(forge::GitHubSettings {
        api_url: g
            .api_url
            .parse()
            .with_context(|| format!("github.api_url = {:?} is not a URL", g.api_url))?,
        auth,
    })
    .context("could not set up the GitHub client")?;
    Ok(Some(Arc::new(github)))
}

/// The MLflow client, from `[mlflow]` (`None` without `mlflow.url`).
pub fn make_mlflow(
    settings: &Settings,
) -> anyhow::Result<Option<Arc<dyn olo_reconciler::targets::mlflow::Mlflow>>> {
    let Some(url) = &settings.mlflow.url else {
        return Ok(None);
    };
    let client = olo_reconciler::targets::mlflow::MlflowClient::new(
        url,
        settings.mlflow.ui_url.as_deref(),
        Duration::from_secs(settings.mlflow.timeout_seconds),
    )
    .context("[mlflow] url")?;
    Ok(Some(Arc::new(client)))
}

/// The tracked repository as people may see it: a URL without its user and password, or the
/// local folder.
fn shown_source(settings: &Settings) -> String {
    match &settings.source.url {
        Some(url) => match url::Url::parse(url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            // scp-like `git@host:path` names no secret.
            Err(_) => url.clone(),
        },
        None => std::path::absolute(&settings.source.path)
            .unwrap_or_else(|_| settings.source.path.clone())
            .display()
            .to_string(),
    }
}

/// The server's state for `rt`: its settings, the controller's store and queue, and the clients
/// the API and the dashboard read (OpenID Connect, MLflow, Trino, the lakehouse, the files of
/// the config repository at `repo` when the branch could be read).
pub fn app_state(
    settings: &Settings,
    rt: &Runtime,
    branch: String,
    repo: Option<std::path::PathBuf>,
) -> anyhow::Result<AppState> {
    let config = olo_server::ServerConfig {
        branch,
        source: shown_source(settings),
        webhook_secret: Settings::secret(&settings.github.webhook_secret_env)?,
        repository: settings.github.repository.clone(),
        tokens: settings.api.tokens.clone(),
        read_requires_token: settings.api.read_requires_token,
        airflow_ui: settings
            .airflow
            .ui_url
            .clone()
            .or_else(|| settings.airflow.url.clone()),
        limits: settings.server.limits(),
    };
    let mut state = AppState::new(
        rt.controller.engine.store.clone(),
        config,
        rt.airflow.clone(),
    );
    state.queue = rt.controller.queue.clone();
    if let Some(oidc) = settings.oidc()? {
        info!(
            "olo serve: OpenID Connect tokens from {} accepted{}",
            oidc.config.issuer,
            if oidc.config.redirect_url.is_some() {
                "; dashboard sign-in at /auth/login"
            } else {
                ""
            }
        );
        state = state.with_oidc(Arc::new(oidc));
    }
    if let Some(mlflow) = make_mlflow(settings)? {
        state = state.with_mlflow(mlflow);
    }
    if let Some(trino) = make_trino(settings)? {
        state = state.with_trino(trino, settings.trino.max_rows);
    }
    state = state.with_lakehouse(rt.controller.engine.lakehouse.clone());
    if let Some(repo) = repo {
        state = state.with_files(Arc::new(DashboardFiles {
            repo,
            sink: Mutex::new(make_sink(settings)?),
        }));
    }
    Ok(state)
}

/// The engine of the tracked branch: `store`, the sink, the render settings, pruning and the
/// lakehouse of the settings; `after_apply` checks each apply (Airflow's import errors).
pub async fn engine(
    settings: &Settings,
    store: Arc<dyn Store>,
    after_apply: Option<Arc<dyn olo_reconciler::engine::AfterApply>>,
) -> anyhow::Result<Engine> {
    Ok(Engine {
        store,
        sink: olo_reconciler::apply::SharedSink::new(make_sink(settings)?),
        render: settings.render.clone(),
        prune: settings.apply.prune,
        last_full_observe: None,
        memo: None,
        inventory: None,
        after_apply,
        lakehouse: crate::lakehouse::make_lakehouse(settings).await?,
        lake_inventory: None,
        lake_unchanged: None,
        phases: Default::default(),
        verify: settings.verify.verifier()?,
        unchecked: None,
        unchecked_read: false,
    })
}

pub async fn runtime(settings: &Settings) -> anyhow::Result<Runtime> {
    let store = open_store(settings).await?;
    let airflow = make_airflow(settings)?;
    let after_apply = airflow.clone().map(|a| {
        Arc::new(AirflowDags::new(
            a,
            Duration::from_secs(settings.airflow.parse_timeout_seconds),
            settings.airflow.reparse,
        )) as Arc<dyn olo_reconciler::engine::AfterApply>
    });
    let engine = engine(settings, store, after_apply).await?;
    let source: SharedSource = Arc::new(Mutex::new(make_source(settings)?));
    Ok(Runtime {
        controller: Controller::new(engine, source, Arc::new(Queue::default())),
        airflow,
    })
}

#[cfg(test)]
mod tests {
    use super::shown_source;
    use crate::settings::Settings;

    #[test]
    fn the_shown_source_never_carries_credentials() {
        let mut s = Settings::default();
        s.source.url = Some("https://olo-bot:ghp_secret@github.com/acme/lake.git".into());
        assert_eq!(shown_source(&s), "https://github.com/acme/lake.git");
        s.source.url = Some("git@github.com:acme/lake.git".into());
        assert_eq!(shown_source(&s), "git@github.com:acme/lake.git");
        s.source.url = None;
        s.source.path = "/srv/lake-config".into();
        assert_eq!(shown_source(&s), "/srv/lake-config");
    }
}
