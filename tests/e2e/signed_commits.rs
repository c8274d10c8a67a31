//! Verified authorship (issue 23): real git commits signed with real keys (OpenPGP keys made by
//! gpg, SSH keys by ssh-keygen, commits signed by git itself), checked by `olo apply` and
//! `olo serve` under `verify.policy = "enforce"` and `"audit"`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::daemon::{Daemon, TOKEN};
use crate::common::{job, ok, Olo, Repo};
use serde_json::json;

/// gpg's clock for a key that expired long ago: made and used on 2020-01-01, good for a day.
const IN_2020: &str = "20200101T120000!";

/// A signing key and how git uses it.
#[derive(Clone)]
enum Signer {
    /// An OpenPGP key: its fingerprint, and the gpg wrapper git runs (with the keys' home).
    Gpg { fpr: String, program: PathBuf },
    /// An SSH private key file, and its `SHA256:` fingerprint.
    Ssh { key: PathBuf, fpr: String },
}

impl Signer {
    fn fingerprint(&self) -> &str {
        match self {
            Signer::Gpg { fpr, .. } | Signer::Ssh { fpr, .. } => fpr,
        }
    }
}

/// Keys made for one test, and the folder of trusted keys olo reads.
struct Keys {
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Keys {
    fn new() -> Keys {
        let keys = Keys {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(keys.gnupghome()).unwrap();
        std::fs::set_permissions(
            keys.gnupghome(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::fs::create_dir_all(keys.trusted()).unwrap();
        std::fs::create_dir_all(keys.merges()).unwrap();
        std::fs::write(keys.allowed_signers(), "").unwrap();
        keys
    }

    fn gnupghome(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }
    /// `verify.openpgp_keys`: a folder, one armored key a file.
    fn trusted(&self) -> PathBuf {
        self.dir.path().join("trusted")
    }
    /// `verify.merge_commit_keys`.
    fn merges(&self) -> PathBuf {
        self.dir.path().join("merges")
    }
    fn allowed_signers(&self) -> PathBuf {
        self.dir.path().join("allowed_signers")
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("/usr/bin/gpg");
        c.env("GNUPGHOME", self.gnupghome()).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    /// A new OpenPGP key (ed25519, no passphrase); made on 2020-01-01 and good for a day
    /// with `expired`. Git signs with it through a wrapper that sets the keys' home (and the
    /// clock of 2020: gpg signs with a key only while it is good).
    fn openpgp(&self, uid: &str, expired: bool) -> Signer {
        let mut gen = self.gpg();
        if expired {
            gen.args(["--faked-system-time", IN_2020]);
        }
        let expiry = if expired { "1d" } else { "never" };
        run(gen.args(["--quick-gen-key", uid, "ed25519", "sign", expiry]));
        let listing = run(self.gpg().args(["--with-colons", "--list-keys", uid]));
        let fpr = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:::::::::"))
            .and_then(|l| l.split(':').next())
            .expect("a fingerprint")
            .to_string();
        let program = self.dir.path().join(format!("gpg-{fpr}"));
        let clock = if expired {
            format!("--faked-system-time {IN_2020} ")
        } else {
            String::new()
        };
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\nGNUPGHOME='{}' exec /usr/bin/gpg {clock}\"$@\"\n",
                self.gnupghome().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Signer::Gpg { fpr, program }
    }

    /// A new SSH key (ed25519, no passphrase).
    fn ssh(&self, name: &str) -> Signer {
        let key = self.dir.path().join(format!("{name}_ed25519"));
        run(Command::new("/usr/bin/ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key));
        let listing = run(Command::new("/usr/bin/ssh-keygen").arg("-lf").arg(&key));
        let fpr = listing.split_whitespace().nth(1).unwrap().to_string();
        Signer::Ssh { key, fpr }
    }

    fn armored(&self, signer: &Signer) -> String {
        run(self
            .gpg()
            .args(["--armor", "--export", signer.fingerprint()]))
    }

    /// Puts `signer`'s public key among the trusted keys (`name` is its file or principal).
    fn trust(&self, name: &str, signer: &Signer) {
        match signer {
            Signer::Gpg { .. } => std::fs::write(
                self.trusted().join(format!("{name}.asc")),
                self.armored(signer),
            )
            .unwrap(),
            Signer::Ssh { key, .. } => {
                let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
                let mut file = std::fs::read_to_string(self.allowed_signers()).unwrap();
                file.push_str(&format!("{name} {public}"));
                std::fs::write(self.allowed_signers(), file).unwrap();
            }
        }
    }

    /// Takes `name`'s OpenPGP key out of the trusted keys.
    fn distrust(&self, name: &str) {
        std::fs::remove_file(self.trusted().join(format!("{name}.asc"))).unwrap();
    }

    /// Trusts `signer` for merge commits only.
    fn trust_for_merges(&self, signer: &Signer) {
        std::fs::write(self.merges().join("web-flow.asc"), self.armored(signer)).unwrap();
    }

    /// The `[verify]` section with `policy`.
    fn settings(&self, policy: &str) -> String {
        format!(
            "[verify]\npolicy = \"{policy}\"\nopenpgp_keys = [\"{}\"]\nallowed_signers = \"{}\"\nmerge_commit_keys = [\"{}\"]\n",
            self.trusted().display(),
            self.allowed_signers().display(),
            self.merges().display()
        )
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        // The agent gpg started for this home.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.gnupghome())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// git's options to sign with `signer` (none: unsigned).
fn signing(signer: Option<&Signer>) -> Vec<String> {
    match signer {
        None => vec![],
        Some(Signer::Gpg { fpr, program }) => vec![
            "-c".into(),
            format!("gpg.program={}", program.display()),
            "-c".into(),
            format!("user.signingkey={fpr}"),
        ],
        Some(Signer::Ssh { key, .. }) => vec![
            "-c".into(),
            "gpg.format=ssh".into(),
            "-c".into(),
            format!("user.signingkey={}", key.display()),
        ],
    }
}

/// Commits everything as Ada, signed by `signer` (or not), and returns the sha.
fn commit(repo: &Repo, message: &str, signer: Option<&Signer>) -> String {
    let who = ("Ada", "ada@example.com");
    repo.git(&["add", "-A"], who);
    let mut args = signing(signer);
    args.extend(["commit", "-q", "-m", message].map(String::from));
    if signer.is_some() {
        args.push("-S".into());
    }
    repo.git(&args.iter().map(String::as_str).collect::<Vec<_>>(), who);
    repo.git(&["rev-parse", "HEAD"], who)
}

/// Rewrites the tip commit's message, keeping its `gpgsig` header as it was, and moves the
/// branch there: what someone who edits a signed commit without its key can push.
fn tamper(repo: &Repo, from: &str, to: &str) -> String {
    let who = ("Ada", "ada@example.com");
    let object = repo.git(&["cat-file", "commit", "HEAD"], who) + "\n";
    assert!(object.contains("gpgsig ") && object.contains(from));
    let mut child = Command::new("git")
        .args(["hash-object", "-t", "commit", "-w", "--stdin"])
        .current_dir(repo.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        object.replacen(from, to, 1).as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let sha = String::from_utf8(out.stdout).unwrap().trim().to_string();
    repo.git(&["update-ref", "refs/heads/main", &sha], who);
    sha
}

/// `olo` on the local repository `repo` with the `[verify]` section of `policy`.
fn olo(repo: &Repo, keys: &Keys, policy: &str) -> Olo {
    let olo = Olo::new(&repo.path().display().to_string());
    let file = olo.state.path().join("olo.toml");
    std::fs::write(&file, keys.settings(policy)).unwrap();
    olo.set("OLO_CONFIG", &file.display().to_string())
}

/// `text` with each sha (full or short) and fingerprint replaced by its name.
fn named(text: &str, names: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (value, name) in names {
        text = text.replace(value, &format!("<{name}>"));
        text = text.replace(&value[..12.min(value.len())], &format!("<{name}>"));
    }
    text
}

fn refusal_line(olo: &Olo) -> String {
    let status = olo.status();
    assert!(status.starts_with("main: Stalled"), "{status}");
    status
        .lines()
        .find(|l| l.contains(" is refused: "))
        .unwrap_or_else(|| panic!("no refusal in {status}"))
        .trim()
        .to_string()
}

#[test]
fn under_enforce_only_commits_signed_by_trusted_keys_are_applied() {
    let keys = Keys::new();
    let ada = keys.openpgp("Ada Lovelace <ada@example.com>", false);
    let eve = keys.openpgp("Eve <eve@example.com>", false);
    let old = keys.openpgp("Old Key <old@example.com>", true);
    let bob = keys.ssh("bob");
    keys.trust("ada", &ada);
    keys.trust("old", &old);
    keys.trust("bob@example.com", &bob);
    let repo = Repo::new();
    let olo = olo(&repo, &keys, "enforce");

    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let good = commit(&repo, "one", Some(&ada));
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), ["w__one.py"]);

    // Each refused: nothing applied, the branch Stalled naming the commit and the reason, the
    // live state at the good commit.
    let mut names = vec![
        (good.clone(), "good".to_string()),
        (ada.fingerprint().to_string(), "ada".into()),
        (eve.fingerprint().to_string(), "eve".into()),
        (old.fingerprint().to_string(), "old".into()),
    ];
    let mut lines = Vec::new();
    let attempts: [(&str, Option<&Signer>); 3] = [
        ("unsigned", None),
        ("untrusted", Some(&eve)),
        ("expired", Some(&old)),
    ];
    for (what, signer) in attempts {
        repo.write(
            &format!("workspaces/w/jobs/{what}.yaml"),
            &job(what, "echo x"),
        );
        let sha = commit(&repo, what, signer);
        names.push((sha.clone(), what.to_string()));
        let out = olo.apply();
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert_eq!(olo.dag_files(), ["w__one.py"], "{what}");
        let status = olo.status();
        assert!(
            status.contains(&format!("last attempted: {sha}")),
            "{status}"
        );
        assert!(
            status.contains(&format!("last applied:   {good}")),
            "{status}"
        );
        lines.push(refusal_line(&olo));
    }
    // Signed by Ada, then its message changed: the signature no longer matches.
    repo.write(
        "workspaces/w/jobs/tampered.yaml",
        &job("tampered", "echo x"),
    );
    commit(&repo, "tampered", Some(&ada));
    let sha = tamper(&repo, "tampered", "harmless");
    names.push((sha, "tampered".into()));
    assert_eq!(olo.apply().status.code(), Some(1));
    assert_eq!(olo.dag_files(), ["w__one.py"]);
    lines.push(refusal_line(&olo));
    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    insta::assert_snapshot!(named(&lines.join("\n"), &names));

    // The audit log has each refusal, with its reason.
    let refused: Vec<String> = olo
        .audit()
        .iter()
        .filter(|e| e["action"] == "unverified_commit")
        .map(|e| named(e["details"]["signature"].as_str().unwrap(), &names))
        .collect();
    assert_eq!(
        refused,
        [
            "bad signature by <ada> (Ada Lovelace <ada@example.com>)",
            "expired key <old> (Old Key <old@example.com>)",
            "untrusted key <eve>",
            "unsigned",
        ]
    );

    // Back to the good commit: Ready again; then an SSH-signed commit by a trusted key applies.
    repo.git(
        &["reset", "-q", "--hard", &good],
        ("Ada", "ada@example.com"),
    );
    ok(&olo.apply());
    assert!(olo.status().starts_with("main: Ready"));
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let two = commit(&repo, "two", Some(&bob));
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), ["w__one.py", "w__two.py"]);
    let applied = olo
        .audit()
        .into_iter()
        .find(|e| e["action"] == "apply" && e["revision"] == two.as_str())
        .expect("the apply of two is audited");
    assert_eq!(
        applied["details"]["signature"],
        format!(
            "signed by {} (bob@example.com), verified",
            bob.fingerprint()
        )
    );
}

#[test]
fn under_audit_every_commit_applies_and_its_verdict_is_recorded() {
    let keys = Keys::new();
    let ada = keys.openpgp("Ada Lovelace <ada@example.com>", false);
    let eve = keys.ssh("eve");
    keys.trust("ada", &ada);
    let repo = Repo::new();
    let olo = olo(&repo, &keys, "audit");

    let mut names = vec![
        (ada.fingerprint().to_string(), "ada".to_string()),
        (eve.fingerprint().to_string(), "eve".into()),
    ];
    let attempts: [(&str, Option<&Signer>); 3] = [
        ("trusted", Some(&ada)),
        ("unsigned", None),
        ("untrusted", Some(&eve)),
    ];
    for (what, signer) in attempts {
        repo.write(
            &format!("workspaces/w/jobs/{what}.yaml"),
            &job(what, "echo x"),
        );
        names.push((commit(&repo, what, signer), what.to_string()));
        ok(&olo.apply());
    }
    repo.write(
        "workspaces/w/jobs/tampered.yaml",
        &job("tampered", "echo x"),
    );
    commit(&repo, "tampered", Some(&ada));
    names.push((tamper(&repo, "tampered", "harmless"), "tampered".into()));
    ok(&olo.apply());
    assert_eq!(
        olo.dag_files(),
        [
            "w__tampered.py",
            "w__trusted.py",
            "w__unsigned.py",
            "w__untrusted.py"
        ]
    );

    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let audit = olo.audit();
    assert!(audit.iter().all(|e| e["action"] != "unverified_commit"));
    let recorded: Vec<String> = audit
        .iter()
        .rev()
        .filter(|e| e["action"] == "apply")
        .map(|e| {
            named(
                &format!(
                    "{}: {}",
                    e["revision"].as_str().unwrap(),
                    e["details"]["signature"].as_str().unwrap()
                ),
                &names,
            )
        })
        .collect();
    insta::assert_snapshot!(recorded.join("\n"));
}

#[test]
fn a_merge_commit_signed_by_the_forge_verifies_through_its_merged_commits() {
    let keys = Keys::new();
    let ada = keys.openpgp("Ada Lovelace <ada@example.com>", false);
    let web_flow = keys.openpgp("GitHub <noreply@github.com>", false);
    keys.trust("ada", &ada);
    keys.trust_for_merges(&web_flow);
    let repo = Repo::new();
    let olo = olo(&repo, &keys, "enforce");
    let who = ("Ada", "ada@example.com");
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    commit(&repo, "one", Some(&ada));
    ok(&olo.apply());

    // A pull request's signed commit, merged by "GitHub": applied.
    let merge = |branch: &str, signer: Option<&Signer>| {
        repo.git(&["checkout", "-q", "-b", branch], who);
        repo.write(
            &format!("workspaces/w/jobs/{branch}.yaml"),
            &job(branch, "echo x"),
        );
        let head = commit(&repo, branch, signer);
        repo.git(&["checkout", "-q", "main"], who);
        let mut args = signing(Some(&web_flow));
        args.extend(["merge", "-q", "--no-ff", "-S", "-m", "Merge", branch].map(String::from));
        repo.git(&args.iter().map(String::as_str).collect::<Vec<_>>(), who);
        head
    };
    merge("signed", Some(&ada));
    ok(&olo.apply());
    assert_eq!(olo.dag_files(), ["w__one.py", "w__signed.py"]);

    // The same with an unsigned pull request commit: refused, naming it.
    let head = merge("unsigned", None);
    assert_eq!(olo.apply().status.code(), Some(1));
    assert_eq!(olo.dag_files(), ["w__one.py", "w__signed.py"]);
    let line = refusal_line(&olo);
    assert!(
        line.contains(&format!(
            "is refused: unsigned: merged commit {}",
            &head[..12]
        )),
        "{line}"
    );

    // The forge's key alone does not sign for an ordinary commit (a squash merge).
    repo.write(
        "workspaces/w/jobs/squashed.yaml",
        &job("squashed", "echo x"),
    );
    commit(&repo, "squashed", Some(&web_flow));
    assert_eq!(olo.apply().status.code(), Some(1));
    assert!(refusal_line(&olo).contains("untrusted key"));
}

/// The revision `sha` as `GET /api/v1/revisions/{sha}` shows it.
async fn revision(d: &Daemon, sha: &str) -> serde_json::Value {
    let (status, body) = d.get(&format!("/api/v1/revisions/{sha}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Asks the daemon to reconcile (forced: the same commit is checked again) and waits until it
/// attempted `sha` and settled.
async fn reconcile(d: &Daemon, sha: &str) -> serde_json::Value {
    let before = d.get("/api/v1/status").await.1["sync"]["updated_at"].clone();
    let (status, body) = d.post("/api/v1/reconcile", Some(TOKEN), json!({})).await;
    assert!(status == 202 || status == 200, "{status} {body}");
    let sha = sha.to_string();
    d.wait_until("the reconcile to settle", |d| {
        let (sha, before) = (sha.clone(), before.clone());
        async move {
            let (_, s) = d.get("/api/v1/status").await;
            let s = &s["sync"];
            s["updated_at"] != before
                && s["last_attempted"] == sha.as_str()
                && s["state"] != "Reconciling"
        }
    })
    .await;
    d.get("/api/v1/status").await.1
}

#[tokio::test]
async fn trusted_keys_change_without_a_restart() {
    let keys = Keys::new();
    let ada = keys.openpgp("Ada Lovelace <ada@example.com>", false);
    let carol = keys.openpgp("Carol <carol@example.com>", false);
    keys.trust("ada", &ada);
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = commit(&repo, "one", Some(&ada));
    let d = Daemon::start_with_settings(&repo, &[], &[], &keys.settings("enforce")).await;
    let status = reconcile(&d, &c1).await;
    assert_eq!(status["sync"]["state"], "Ready", "{status}");

    // Carol's key is not trusted yet: her commit stalls the branch.
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c2 = commit(&repo, "two", Some(&carol));
    let status = reconcile(&d, &c2).await;
    assert_eq!(status["sync"]["state"], "Stalled", "{status}");
    assert_eq!(status["sync"]["last_applied"], c1.as_str());
    let rev = revision(&d, &c2).await;
    assert_eq!(
        rev["revision"]["signature"]["verdict"], "untrusted_key",
        "{rev}"
    );
    assert_eq!(
        rev["revision"]["signature"]["text"],
        format!("untrusted key {}", carol.fingerprint())
    );

    // Her key added to the folder, the same commit is checked again: applied.
    keys.trust("carol", &carol);
    let status = reconcile(&d, &c2).await;
    assert_eq!(status["sync"]["state"], "Ready", "{status}");
    assert_eq!(status["sync"]["last_applied"], c2.as_str());
    let rev = revision(&d, &c2).await;
    assert_eq!(
        rev["revision"]["signature"]["text"],
        format!(
            "signed by {} (Carol <carol@example.com>), verified",
            carol.fingerprint()
        ),
        "the revision shows the latest check"
    );

    // Ada's key removed: her next commit is refused.
    keys.distrust("ada");
    repo.write("workspaces/w/jobs/three.yaml", &job("three", "echo 3"));
    let c3 = commit(&repo, "three", Some(&ada));
    let status = reconcile(&d, &c3).await;
    assert_eq!(status["sync"]["state"], "Stalled", "{status}");
    assert_eq!(status["sync"]["last_applied"], c2.as_str());

    // Refusals are counted, and the dashboard's revisions page shows each verdict.
    let metrics = d.get_text("/metrics").await;
    assert!(
        metrics.contains("olo_reconciles_total{outcome=\"unverified\"} 2"),
        "{metrics}"
    );
    let page = d.get_text("/revisions").await;
    assert!(page.contains("untrusted key"), "{page}");
    assert!(
        page.contains("Carol &lt;carol@example.com&gt;), verified"),
        "{page}"
    );
}
