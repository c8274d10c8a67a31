//! Snapshots of a config repository: from a working tree (for `olo validate PATH`) or from a git
//! commit's objects (for `--rev` and for every reconcile), never a mix of the two.

mod commit_diff;
mod git;
mod worktree;

pub use commit_diff::{commit_diff, FileDiff};
pub use git::{from_commit, read_file, update_to};
pub use worktree::from_worktree;
