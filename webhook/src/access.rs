//! Who may do what: the roles of the live commit (`spec.access` of each `workspace.yaml`,
//! `spec.admins` of `olo.yaml`) applied to a caller. Pure: no I/O, the same answer for the same
//! catalog and caller, so every route asks the same questions.
//!
//! - platform admins (`olo.yaml` `spec.admins`) are admin of every workspace and may read the
//!   audit log;
//! - a workspace's viewers read it (its jobs, runs, task logs, lakehouse), operators also trigger
//!   its runs and request reconciles, admins may do everything in it;
//! - with open reads (`api.read_requires_token = false`), everyone, signed in or not, is a viewer
//!   of every workspace;
//! - everyone else gets 403, the same answer whether the workspace exists or not, and list
//!   results hold only what the caller may see.
//!
//! Principals are written `user:<name>` and `group:<name>`; a caller's name is its token's
//! name or its OIDC username claim, its groups come from the token entry or the groups claim.

use olo_reconciler::catalog::Catalog;
use serde::Serialize;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
    /// How it proved who it is: `token`, `oidc` (a bearer JWT) or `session` (dashboard sign-in).
    pub via: &'static str,
}

impl Principal {
    /// Whether a `user:`/`group:` entry names this caller.
    pub fn is(&self, entry: &str) -> bool {
        if let Some(user) = entry.strip_prefix("user:") {
            user == self.name
        } else if let Some(group) = entry.strip_prefix("group:") {
            self.groups.iter().any(|g| g == group)
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The roles of one catalog, asked about one caller.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub catalog: Option<&'a Catalog>,
    /// Everyone is a viewer of every workspace (`api.read_requires_token = false`).
    pub open_reads: bool,
}

impl Policy<'_> {
    pub fn is_platform_admin(&self, who: Option<&Principal>) -> bool {
        match (who, self.catalog) {
            (Some(p), Some(c)) => c.admins.iter().any(|e| p.is(e)),
            _ => false,
        }
    }

    /// The caller's role in a workspace (the highest that names it), `None` for none or for a
    /// workspace that does not exist.
    pub fn role(&self, who: Option<&Principal>, workspace: &str) -> Option<Role> {
        let ws = self.catalog?.workspace(workspace)?;
        if self.is_platform_admin(who) {
            return Some(Role::Admin);
        }
        let named = who.and_then(|p| {
            let r = &ws.roles;
            if r.admin.iter().any(|e| p.is(e)) {
                Some(Role::Admin)
            } else if r.operator.iter().any(|e| p.is(e)) {
                Some(Role::Operator)
            } else if r.viewer.iter().any(|e| p.is(e)) {
                Some(Role::Viewer)
            } else {
                None
            }
        });
        named.max(self.open_reads.then_some(Role::Viewer))
    }

    pub fn may(&self, who: Option<&Principal>, workspace: &str, needed: Role) -> bool {
        self.role(who, workspace).is_some_and(|r| r >= needed)
    }

    /// The workspaces the caller may read, in catalog order.
    pub fn visible<'c>(&'c self, who: Option<&Principal>) -> Vec<&'c str> {
        self.catalog
            .map(|c| {
                c.workspaces
                    .iter()
                    .filter(|w| self.role(who, &w.name).is_some())
                    .map(|w| w.name.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the caller sees everything (platform admin, or open reads).
    pub fn sees_all(&self, who: Option<&Principal>) -> bool {
        self.open_reads || self.is_platform_admin(who)
    }

    /// Whether the caller holds any role: what the repository-wide views (sync status,
    /// revisions and their plans, the lineage graph) need.
    pub fn is_member(&self, who: Option<&Principal>) -> bool {
        self.sees_all(who) || !self.visible(who).is_empty()
    }

    /// Whether the caller may ask for a reconcile: a platform admin, or an operator or admin
    /// of any workspace.
    pub fn may_reconcile(&self, who: Option<&Principal>) -> bool {
        self.is_platform_admin(who)
            || self.catalog.is_some_and(|c| {
                c.workspaces
                    .iter()
                    .any(|w| self.may(who, &w.name, Role::Operator))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olo_reconciler::catalog::{Roles, WorkspaceView};

    fn workspace(name: &str, roles: Roles) -> std::sync::Arc<WorkspaceView> {
        std::sync::Arc::new(WorkspaceView {
            name: name.into(),
            description: None,
            path: format!("workspaces/{name}/workspace.yaml"),
            owners: vec![],
            catalog: "lake".into(),
            warehouse: String::new(),
            namespaces: vec![],
            tables: vec![],
            roles,
            jobs: vec![],
        })
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn catalog() -> Catalog {
        Catalog {
            revision: None,
            admins: strings(&["group:platform", "user:root@example.com"]),
            workspaces: vec![
                workspace(
                    "sales",
                    Roles {
                        admin: strings(&["user:sally"]),
                        operator: strings(&["group:sales-eng"]),
                        viewer: strings(&["group:analysts", "user:victor"]),
                    },
                ),
                workspace(
                    "marketing",
                    Roles {
                        admin: vec![],
                        operator: strings(&["user:mo"]),
                        viewer: strings(&["group:sales-eng"]),
                    },
                ),
            ],
        }
    }

    fn user(name: &str, groups: &[&str]) -> Principal {
        Principal {
            name: name.into(),
            groups: strings(groups),
            via: "token",
        }
    }

    #[test]
    fn roles_come_from_the_workspace_and_the_platform_admins() {
        let c = catalog();
        let p = Policy {
            catalog: Some(&c),
            open_reads: false,
        };
        let eng = user("erin", &["sales-eng"]);
        assert_eq!(p.role(Some(&eng), "sales"), Some(Role::Operator));
        assert_eq!(p.role(Some(&eng), "marketing"), Some(Role::Viewer));
        assert_eq!(
            p.role(Some(&user("sally", &[])), "sales"),
            Some(Role::Admin)
        );
        assert_eq!(p.role(Some(&user("sally", &[])), "marketing"), None);
        assert_eq!(
            p.role(Some(&user("victor", &[])), "sales"),
            Some(Role::Viewer)
        );
        let root = user("root@example.com", &[]);
        assert_eq!(p.role(Some(&root), "marketing"), Some(Role::Admin));
        assert_eq!(
            p.role(Some(&user("x", &["platform"])), "sales"),
            Some(Role::Admin)
        );
        // A workspace that does not exist: no role, even for a platform admin.
        assert_eq!(p.role(Some(&root), "nope"), None);
        assert!(p.may(Some(&eng), "sales", Role::Operator));
        assert!(!p.may(Some(&eng), "marketing", Role::Operator));
        assert_eq!(p.visible(Some(&user("mo", &[]))), vec!["marketing"]);
        assert_eq!(p.visible(Some(&eng)), vec!["sales", "marketing"]);
        assert!(p.sees_all(Some(&root)) && !p.sees_all(Some(&eng)));
        assert!(p.may_reconcile(Some(&eng)) && p.may_reconcile(Some(&root)));
        assert!(!p.may_reconcile(Some(&user("victor", &[]))));
    }

    #[test]
    fn names_match_whole_and_by_kind() {
        let c = catalog();
        let p = Policy {
            catalog: Some(&c),
            open_reads: false,
        };
        // Lookalikes: a user named like a group, a group named like a user, prefixes, case.
        for nobody in [
            user("sales-eng", &[]),
            user("sally2", &[]),
            user("Sally", &[]),
            user("erin", &["sales"]),
            user("erin", &["sales-eng2", "user:sally"]),
            user("group:sales-eng", &[]),
            user("", &[""]),
        ] {
            assert_eq!(p.role(Some(&nobody), "sales"), None, "{nobody:?}");
            assert!(!p.is_member(Some(&nobody)), "{nobody:?}");
            assert!(!p.may_reconcile(Some(&nobody)), "{nobody:?}");
        }
        assert_eq!(p.role(None, "sales"), None);
        assert!(p.visible(None).is_empty() && !p.is_member(None));
    }

    #[test]
    fn open_reads_make_everyone_a_viewer_and_nothing_more() {
        let c = catalog();
        let p = Policy {
            catalog: Some(&c),
            open_reads: true,
        };
        assert_eq!(p.role(None, "sales"), Some(Role::Viewer));
        assert_eq!(p.visible(None), vec!["sales", "marketing"]);
        assert!(!p.may(None, "sales", Role::Operator) && !p.may_reconcile(None));
        // A named role still counts.
        assert_eq!(
            p.role(Some(&user("mo", &[])), "marketing"),
            Some(Role::Operator)
        );
        assert!(!p.is_platform_admin(None));
    }

    #[test]
    fn without_a_live_commit_nobody_has_a_role() {
        let p = Policy {
            catalog: None,
            open_reads: false,
        };
        let root = user("root@example.com", &[]);
        assert_eq!(p.role(Some(&root), "sales"), None);
        assert!(!p.is_platform_admin(Some(&root)) && !p.may_reconcile(Some(&root)));
    }
}
