//! Writes through olo's API: one commit on top of the tracked branch's tip, made from git
//! objects (no working tree is read), then moved onto a branch of the source: the tracked branch
//! itself, or a new branch for a pull request. A local repository takes the commit in place; a
//! remote one gets it pushed with the source's credentials. What to write is decided elsewhere
//! (and validated before); this file only does the git side.

use std::path::Path;

use git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use git2::{ErrorCode, FileMode, Oid, PushOptions, Repository, Signature};

use super::remote::{callbacks, Credentials};

/// One file of the commit: its new bytes, or `None` to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Repository-relative, `/`-separated (`workspaces/sales/jobs/orders_daily.yaml`).
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// A commit's author: the API's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// One commit to make.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// The commit the change was validated against: the parent, and the tip `branch` must still
    /// have (when it exists).
    pub base: String,
    pub changes: Vec<FileChange>,
    pub author: Author,
    pub message: String,
    /// Where the commit goes: the tracked branch, or a new branch (which must not exist yet).
    pub branch: String,
    pub new_branch: bool,
}

/// The commit made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub sha: String,
    pub branch: String,
}

/// The committer of every API write.
pub const COMMITTER: (&str, &str) = ("olo", "olo@olo.invalid");

/// Why a write did not happen. Nothing was moved in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0} cannot take commits")]
    Unsupported(String),
    #[error("branch `{branch}` is at {tip}, not at {base}")]
    Moved {
        branch: String,
        base: String,
        tip: String,
    },
    #[error("branch `{0}` exists already")]
    BranchExists(String),
    #[error("the working tree of {path} has local changes to the files the commit writes")]
    Dirty {
        path: String,
        #[source]
        source: git2::Error,
    },
    #[error("could not {action}")]
    Git {
        action: String,
        #[source]
        source: git2::Error,
    },
    #[error("could not push {branch} to {url}")]
    Push {
        url: String,
        branch: String,
        #[source]
        source: git2::Error,
    },
    #[error(
        "could not push {branch} to {url}: it is a repository with a working tree, and a push goes \
         only to a bare one (as Git servers hold them): point source.url at a bare clone \
         (git clone --bare), or use source.path for a local repository"
    )]
    PushToWorkingTree { url: String, branch: String },
}

impl WriteError {
    /// Worth retrying as is: the remote could not be reached or refused for a passing reason.
    pub fn is_temporary(&self) -> bool {
        matches!(self, WriteError::Push { source, .. } if source.class() == git2::ErrorClass::Net || source.class() == git2::ErrorClass::Http || source.class() == git2::ErrorClass::Ssh)
    }
}

fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> WriteError {
    let action = action.into();
    move |source| WriteError::Git { action, source }
}

/// Makes the commit object (parent `request.base`, the base's tree with the changes) without
/// moving any reference.
pub fn make_commit(repo: &Repository, request: &WriteRequest) -> Result<Oid, WriteError> {
    let base = Oid::from_str(&request.base)
        .and_then(|oid| repo.find_commit(oid))
        .map_err(git(format!("find the base commit {}", request.base)))?;
    let old_tree = base.tree().map_err(git("read the base commit's tree"))?;
    let mut update = TreeUpdateBuilder::new();
    for change in &request.changes {
        match &change.content {
            Some(bytes) => {
                let blob = repo
                    .blob(bytes)
                    .map_err(git(format!("write {}", change.path)))?;
                update.upsert(&change.path, blob, FileMode::Blob);
            }
            None => {
                update.remove(&change.path);
            }
        }
    }
    let tree_id = update
        .create_updated(repo, &old_tree)
        .map_err(git("build the new tree"))?;
    let tree = repo.find_tree(tree_id).map_err(git("read the new tree"))?;
    let author = Signature::now(&request.author.name, &request.author.email)
        .map_err(git("make the author's signature"))?;
    let committer =
        Signature::now(COMMITTER.0, COMMITTER.1).map_err(git("make olo's signature"))?;
    repo.commit(None, &author, &committer, &request.message, &tree, &[&base])
        .map_err(git("write the commit"))
}

fn branch_tip(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.find_reference(&format!("refs/heads/{branch}"))
        .ok()
        .and_then(|r| r.peel_to_commit().ok())
        .map(|c| c.id())
}

/// The commit, on a branch of the local repository at `path`. When the tracked branch is checked
/// out there, the working tree and index follow the commit, unless they have edits of their own
/// to the files it writes (then nothing moves: [`WriteError::Dirty`]).
pub fn commit_local(path: &Path, request: &WriteRequest) -> Result<Written, WriteError> {
    let repo = Repository::open(path).map_err(git(format!("open {}", path.display())))?;
    let refname = format!("refs/heads/{}", request.branch);
    let tip = branch_tip(&repo, &request.branch);
    if request.new_branch {
        if tip.is_some() {
            return Err(WriteError::BranchExists(request.branch.clone()));
        }
    } else if tip.map(|t| t.to_string()).as_deref() != Some(request.base.as_str()) {
        return Err(moved(request, tip));
    }
    let oid = make_commit(&repo, request)?;
    let reflog = format!("olo api: {}", first_line(&request.message));
    if request.new_branch {
        repo.reference(&refname, oid, false, &reflog)
            .map_err(|e| match e.code() {
                ErrorCode::Exists => WriteError::BranchExists(request.branch.clone()),
                _ => WriteError::Git {
                    action: format!("create {refname}"),
                    source: e,
                },
            })?;
        return Ok(written(oid, request));
    }
    let checked_out = !repo.is_bare()
        && repo
            .head()
            .ok()
            .and_then(|h| h.name().ok().map(str::to_string))
            .as_deref()
            == Some(refname.as_str());
    if checked_out {
        // HEAD is still the base: a safe checkout updates only files that match it.
        let new = repo.find_commit(oid).map_err(git("read the new commit"))?;
        let mut checkout = CheckoutBuilder::new();
        checkout.safe();
        repo.checkout_tree(new.as_object(), Some(&mut checkout))
            .map_err(|source| WriteError::Dirty {
                path: path.display().to_string(),
                source,
            })?;
    }
    let base = Oid::from_str(&request.base).map_err(git("parse the base"))?;
    repo.reference_matching(&refname, oid, true, base, &reflog)
        .map_err(|_| moved(request, branch_tip(&repo, &request.branch)))?;
    Ok(written(oid, request))
}

/// The commit, made in `mirror` (which holds the base) and pushed to `url` as `request.branch`
/// without force: a branch that moved on the remote refuses it ([`WriteError::Moved`]).
pub fn commit_and_push(
    mirror: &Path,
    url: &str,
    credentials: &Credentials,
    request: &WriteRequest,
) -> Result<Written, WriteError> {
    let repo = Repository::open_bare(mirror).map_err(git(format!("open {}", mirror.display())))?;
    if !request.new_branch {
        let tip = branch_tip(&repo, &request.branch);
        if tip.map(|t| t.to_string()).as_deref() != Some(request.base.as_str()) {
            return Err(moved(request, tip));
        }
    }
    let oid = make_commit(&repo, request)?;
    // A push names a local reference: a scratch one, removed afterwards.
    let scratch = format!("refs/olo/api-write/{oid}");
    repo.reference(&scratch, oid, true, "olo api write")
        .map_err(git("keep the commit under a scratch reference"))?;
    let pushed = push(&repo, url, credentials, &scratch, request);
    if let Ok(mut r) = repo.find_reference(&scratch) {
        let _ = r.delete();
    }
    pushed?;
    if !request.new_branch {
        // The mirror follows at once (the next fetch would bring it anyway).
        let _ = repo.reference(
            &format!("refs/heads/{}", request.branch),
            oid,
            true,
            "olo api write",
        );
    }
    Ok(written(oid, request))
}

fn push(
    repo: &Repository,
    url: &str,
    credentials: &Credentials,
    scratch: &str,
    request: &WriteRequest,
) -> Result<(), WriteError> {
    let failed = |source: git2::Error| match source.code() {
        ErrorCode::BareRepo => WriteError::PushToWorkingTree {
            url: url.to_string(),
            branch: request.branch.clone(),
        },
        _ => WriteError::Push {
            url: url.to_string(),
            branch: request.branch.clone(),
            source,
        },
    };
    let mut remote = repo.remote_anonymous(url).map_err(failed)?;
    let mut connection = remote
        .connect_auth(
            git2::Direction::Push,
            Some(callbacks(credentials.clone())),
            None,
        )
        .map_err(failed)?;
    // git refuses a push that is not a fast-forward on the client's side, and so must olo (a
    // file:// remote would take it): the branch must still be at the base, or not exist yet.
    let target = format!("refs/heads/{}", request.branch);
    let current = connection
        .list()
        .map_err(failed)?
        .iter()
        .find(|h| h.name() == target)
        .map(|h| h.oid());
    if request.new_branch {
        if current.is_some() {
            return Err(WriteError::BranchExists(request.branch.clone()));
        }
    } else if current.map(|c| c.to_string()).as_deref() != Some(request.base.as_str()) {
        return Err(moved(request, current));
    }
    let mut rejected: Option<String> = None;
    let result = {
        let mut cbs = callbacks(credentials.clone());
        cbs.push_update_reference(|_refname, status| {
            if let Some(s) = status {
                rejected = Some(s.to_string());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(cbs);
        connection
            .remote()
            .push(&[format!("{scratch}:{target}")], Some(&mut options))
    };
    match result {
        Ok(()) => match rejected {
            None => Ok(()),
            Some(why) => Err(refused(request, repo, url, credentials, &why)),
        },
        Err(e) if e.code() == ErrorCode::NotFastForward => {
            Err(refused(request, repo, url, credentials, e.message()))
        }
        Err(e) => Err(failed(e)),
    }
}

/// A push the remote refused: for the tracked branch that means it moved (its new tip is
/// fetched to name it); a new branch that exists is [`WriteError::BranchExists`].
fn refused(
    request: &WriteRequest,
    repo: &Repository,
    url: &str,
    credentials: &Credentials,
    why: &str,
) -> WriteError {
    if request.new_branch {
        return WriteError::BranchExists(request.branch.clone());
    }
    let refspec = format!("+refs/heads/{0}:refs/heads/{0}", request.branch);
    let fetched = super::remote::fetch_with(repo, url, credentials, &[refspec]);
    let tip = fetched
        .ok()
        .and_then(|()| branch_tip(repo, &request.branch));
    match tip {
        Some(_) => moved(request, tip),
        None => WriteError::Push {
            url: url.to_string(),
            branch: request.branch.clone(),
            source: git2::Error::from_str(why),
        },
    }
}

fn moved(request: &WriteRequest, tip: Option<Oid>) -> WriteError {
    WriteError::Moved {
        branch: request.branch.clone(),
        base: request.base.clone(),
        tip: tip.map_or_else(|| "nothing (no such branch)".into(), |t| t.to_string()),
    }
}

fn written(oid: Oid, request: &WriteRequest) -> Written {
    Written {
        sha: oid.to_string(),
        branch: request.branch.clone(),
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repository, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let mut update = TreeUpdateBuilder::new();
        for (path, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            update.upsert(path, blob, FileMode::Blob);
        }
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let empty = repo.find_tree(empty).unwrap();
        let tree = update.create_updated(&repo, &empty).unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let sig = Signature::now("Init", "init@example.com").unwrap();
        let oid = repo
            .commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        drop(tree);
        drop(empty);
        (dir, repo, oid.to_string())
    }

    fn request(base: &str, changes: Vec<FileChange>) -> WriteRequest {
        WriteRequest {
            base: base.to_string(),
            changes,
            author: Author {
                name: "Ada".into(),
                email: "ada@example.com".into(),
            },
            message: "Apply job w/a\n\nbody".into(),
            branch: "main".into(),
            new_branch: false,
        }
    }

    #[test]
    fn a_commit_on_the_branch_carries_the_caller_as_author_and_olo_as_committer() {
        let (dir, repo, base) = repo_with(&[("workspaces/w/workspace.yaml", "ws"), ("x", "1")]);
        let req = request(
            &base,
            vec![
                FileChange {
                    path: "workspaces/w/jobs/a.yaml".into(),
                    content: Some(b"job a".to_vec()),
                },
                FileChange {
                    path: "x".into(),
                    content: None,
                },
            ],
        );
        let w = commit_local(dir.path(), &req).unwrap();
        let commit = repo.find_commit(Oid::from_str(&w.sha).unwrap()).unwrap();
        assert_eq!(branch_tip(&repo, "main").unwrap(), commit.id());
        assert_eq!(commit.parent_id(0).unwrap().to_string(), base);
        assert_eq!(commit.author().name(), Ok("Ada"));
        assert_eq!(commit.author().email(), Ok("ada@example.com"));
        assert_eq!(commit.committer().name(), Ok("olo"));
        let tree = commit.tree().unwrap();
        let blob = tree
            .get_path(Path::new("workspaces/w/jobs/a.yaml"))
            .unwrap()
            .to_object(&repo)
            .unwrap();
        assert_eq!(blob.as_blob().unwrap().content(), b"job a");
        assert!(tree.get_path(Path::new("x")).is_err());
        assert!(tree
            .get_path(Path::new("workspaces/w/workspace.yaml"))
            .is_ok());
    }

    /// A repository with a working tree, `main` checked out, holding `files`.
    fn checkout_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repository, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(dir.path(), &opts).unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("Init", "init@example.com").unwrap();
        let oid = repo
            .commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        drop(tree);
        (dir, repo, oid.to_string())
    }

    fn clean(repo: &Repository) -> bool {
        repo.statuses(None).unwrap().is_empty()
    }

    #[test]
    fn with_the_branch_checked_out_the_working_tree_follows_the_commit() {
        let (dir, repo, base) = checkout_with(&[("workspaces/w/jobs/a.yaml", "a1"), ("x", "1")]);
        let write_a = |base: &str, text: &str| {
            request(
                base,
                vec![FileChange {
                    path: "workspaces/w/jobs/a.yaml".into(),
                    content: Some(text.as_bytes().to_vec()),
                }],
            )
        };
        let w = commit_local(dir.path(), &write_a(&base, "a2")).unwrap();
        assert_eq!(branch_tip(&repo, "main").unwrap().to_string(), w.sha);
        // The file on disk is the commit's, and git sees nothing to commit (the index followed).
        assert_eq!(
            std::fs::read_to_string(dir.path().join("workspaces/w/jobs/a.yaml")).unwrap(),
            "a2"
        );
        assert!(clean(&repo));

        // An edit of the person's own to another file stays, and does not stop the commit.
        std::fs::write(dir.path().join("x"), "mine").unwrap();
        let w2 = commit_local(dir.path(), &write_a(&w.sha, "a3")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("x")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("workspaces/w/jobs/a.yaml")).unwrap(),
            "a3"
        );

        // An edit to the file the commit writes: refused, nothing moves, the edit is kept.
        std::fs::write(dir.path().join("workspaces/w/jobs/a.yaml"), "edited").unwrap();
        let err = commit_local(dir.path(), &write_a(&w2.sha, "a4")).unwrap_err();
        assert!(matches!(err, WriteError::Dirty { .. }), "{err}");
        assert_eq!(branch_tip(&repo, "main").unwrap().to_string(), w2.sha);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("workspaces/w/jobs/a.yaml")).unwrap(),
            "edited"
        );
    }

    #[test]
    fn a_moved_branch_refuses_the_commit_and_names_its_tip() {
        let (dir, repo, base) = repo_with(&[("x", "1")]);
        let first = commit_local(dir.path(), &request(&base, vec![])).unwrap();
        let err = commit_local(dir.path(), &request(&base, vec![])).unwrap_err();
        match err {
            WriteError::Moved { tip, .. } => assert_eq!(tip, first.sha),
            other => panic!("{other}"),
        }
        assert_eq!(branch_tip(&repo, "main").unwrap().to_string(), first.sha);
    }

    #[test]
    fn a_new_branch_leaves_the_tracked_branch_alone_and_is_never_overwritten() {
        let (dir, repo, base) = repo_with(&[("x", "1")]);
        let mut req = request(&base, vec![]);
        req.branch = "olo/api/w-a-1234".into();
        req.new_branch = true;
        commit_local(dir.path(), &req).unwrap();
        assert_eq!(branch_tip(&repo, "main").unwrap().to_string(), base);
        assert!(matches!(
            commit_local(dir.path(), &req),
            Err(WriteError::BranchExists(_))
        ));
    }

    /// olo's bare mirror of the remote at `url`, holding its `main`.
    fn mirror_of(url: &str) -> (tempfile::TempDir, Repository) {
        let mirror = tempfile::tempdir().unwrap();
        let m = Repository::init_bare(mirror.path()).unwrap();
        super::super::remote::fetch_with(
            &m,
            url,
            &Credentials::None,
            &["+refs/heads/main:refs/heads/main".to_string()],
        )
        .unwrap();
        (mirror, m)
    }

    #[test]
    fn a_push_to_a_remote_with_a_working_tree_says_to_use_a_bare_one() {
        let (remote_dir, remote, base) = checkout_with(&[("x", "1")]);
        let url = format!("file://{}", remote_dir.path().display());
        let (mirror, _) = mirror_of(&url);
        let err = commit_and_push(
            mirror.path(),
            &url,
            &Credentials::None,
            &request(&base, vec![]),
        )
        .unwrap_err();
        assert!(matches!(err, WriteError::PushToWorkingTree { .. }), "{err}");
        assert!(err.to_string().contains("git clone --bare"), "{err}");
        assert_eq!(branch_tip(&remote, "main").unwrap().to_string(), base);
    }

    #[test]
    fn a_push_to_a_remote_moves_its_branch_and_a_stale_one_is_refused() {
        let (remote_dir, remote, base) = repo_with(&[("x", "1")]);
        let url = format!("file://{}", remote_dir.path().display());
        let (mirror, m) = mirror_of(&url);
        let w = commit_and_push(
            mirror.path(),
            &url,
            &Credentials::None,
            &request(&base, vec![]),
        )
        .unwrap();
        assert_eq!(branch_tip(&remote, "main").unwrap().to_string(), w.sha);
        // The mirror is rewound behind the remote: the push is refused, the remote keeps its tip.
        m.reference("refs/heads/main", Oid::from_str(&base).unwrap(), true, "")
            .unwrap();
        let err = commit_and_push(
            mirror.path(),
            &url,
            &Credentials::None,
            &request(&base, vec![]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, WriteError::Moved { tip, .. } if *tip == w.sha),
            "{err}"
        );
        assert_eq!(branch_tip(&remote, "main").unwrap().to_string(), w.sha);
    }
}
