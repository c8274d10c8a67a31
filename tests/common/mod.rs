//! Helpers of the end-to-end tests: real git repositories and the `olo` binary.
#![allow(dead_code)]

pub mod airflow;
pub mod browser;
pub mod daemon;
pub mod pg;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Repo {
    pub dir: tempfile::TempDir,
}

/// One workspace; the tests' write token (`ci-bot`) operates it.
pub const WORKSPACE: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w', namespaces: [raw]}\n  access: {operator: ['user:ci-bot']}\n";

pub fn job(name: &str, command: &str) -> String {
    format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n    - id: a\n      bash: {{command: \"{command}\"}}\n")
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let r = Repo { dir };
        r.git(&["init", "-q", "-b", "main"], ("Init", "init@example.com"));
        r.write("workspaces/w/workspace.yaml", WORKSPACE);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str], who: (&str, &str)) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", who.0)
            .env("GIT_AUTHOR_EMAIL", who.1)
            .env("GIT_COMMITTER_NAME", "Merge Bot")
            .env("GIT_COMMITTER_EMAIL", "bot@example.com")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn commit(&self, message: &str, who: (&str, &str)) -> String {
        self.git(&["add", "-A"], who);
        self.git(&["commit", "-q", "-m", message], who);
        self.git(&["rev-parse", "HEAD"], who)
    }
}

pub struct Olo {
    pub state: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Olo {
    pub fn new(source: &str) -> Olo {
        let state = tempfile::tempdir().unwrap();
        let env = vec![
            ("OLO_SOURCE__PATH".to_string(), source.to_string()),
            (
                "OLO_STATE__DIR".to_string(),
                state.path().display().to_string(),
            ),
            // Any free port: tests run side by side.
            ("OLO_SERVER__LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ];
        Olo { state, env }
    }

    pub fn set(mut self, key: &str, value: &str) -> Olo {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_olo"));
        c.args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("olo runs")
    }

    pub fn apply(&self) -> Output {
        self.run(&["apply"])
    }

    pub fn dags(&self) -> PathBuf {
        self.state.path().join("dags")
    }

    pub fn dag_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dags())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".py"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn audit(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["audit", "--format", "json", "--limit", "100"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn status(&self) -> String {
        String::from_utf8_lossy(&self.run(&["status"]).stdout).into_owned()
    }
}

/// A change made to the config repository between two reconciles.
pub type Step = Box<dyn Fn(&Repo)>;

/// A spawned `olo` that is killed when the test ends, also when it panics (an orphan would keep
/// the test harness waiting on its output).
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "olo failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
