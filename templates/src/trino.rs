//! Trino: one Iceberg catalog file per catalog the workspaces name, and `rules.json` for
//! file-based access control generated from the workspace roles.

use std::collections::{BTreeMap, BTreeSet};

use olo_schema::Repo;
use serde_json::{json, Value};

use crate::settings::RenderSettings;

/// `catalog name -> properties file body` (without olo's header).
pub fn catalogs(repo: &Repo, s: &RenderSettings) -> BTreeMap<String, String> {
    catalog_properties(repo, s)
        .into_iter()
        .map(|(catalog, props)| {
            let mut body = String::new();
            for (k, v) in props {
                body.push_str(&escape_property(&k, true));
                body.push('=');
                body.push_str(&escape_property(&v, false));
                body.push('\n');
            }
            (catalog, body)
        })
        .collect()
}

/// `catalog name -> properties` in file order, `connector.name` first: what a catalog file says,
/// and what `CREATE CATALOG` is given with dynamic catalog management. Secrets are `${ENV:…}`
/// references that Trino resolves.
pub fn catalog_properties(
    repo: &Repo,
    s: &RenderSettings,
) -> BTreeMap<String, Vec<(String, String)>> {
    let names: BTreeSet<&str> = repo
        .workspaces
        .values()
        .map(|w| w.doc.spec.lakehouse.catalog.as_str())
        .collect();
    names
        .into_iter()
        .map(|catalog| {
            let warehouse = s
                .iceberg_rest_warehouse
                .clone()
                .unwrap_or_else(|| catalog.to_string());
            let mut props: Vec<(&str, String)> = vec![
                ("connector.name", "iceberg".into()),
                ("iceberg.catalog.type", "rest".into()),
                ("iceberg.rest-catalog.uri", s.iceberg_rest_uri.clone()),
                ("iceberg.rest-catalog.warehouse", warehouse),
                (
                    "iceberg.rest-catalog.nested-namespace-enabled",
                    "true".into(),
                ),
            ];
            if let Some(env) = &s.iceberg_credential_env {
                props.push(("iceberg.rest-catalog.security", "OAUTH2".into()));
                props.push((
                    "iceberg.rest-catalog.oauth2.credential",
                    format!("${{ENV:{env}}}"),
                ));
            }
            props.extend([
                ("fs.native-s3.enabled", "true".into()),
                ("s3.endpoint", s.s3_endpoint.clone()),
                ("s3.region", s.s3_region.clone()),
                ("s3.path-style-access", s.s3_path_style.to_string()),
                (
                    "s3.aws-access-key",
                    format!("${{ENV:{}}}", s.s3_access_key_env),
                ),
                (
                    "s3.aws-secret-key",
                    format!("${{ENV:{}}}", s.s3_secret_key_env),
                ),
            ]);
            (
                catalog.to_string(),
                props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            )
        })
        .collect()
}

/// Java properties escaping, so a setting's value can never add a line or a key.
fn escape_property(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' if is_key || i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                out.push_str(&format!("\\u{:04x}", c as u32 & 0xffff))
            }
            c => out.push(c),
        }
    }
    out
}

/// Java regex quoting for names in rules (names are `[a-z0-9_]`, principals may hold anything).
fn quote(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

fn principals_regex(list: &[&str]) -> (Option<String>, Option<String>) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for p in list {
        if let Some(u) = p.strip_prefix("user:") {
            users.push(quote(u));
        } else if let Some(g) = p.strip_prefix("group:") {
            groups.push(quote(g));
        }
    }
    users.sort();
    users.dedup();
    groups.sort();
    groups.dedup();
    let re = |v: Vec<String>| (!v.is_empty()).then(|| format!("({})", v.join("|")));
    (re(users), re(groups))
}

/// One rule per principal kind (user, group), with the given fields.
fn rules_for(list: &[&str], fields: Value, out: &mut Vec<Value>) {
    let (users, groups) = principals_regex(list);
    for (key, re) in [("user", users), ("group", groups)] {
        if let Some(re) = re {
            let mut rule = fields.clone();
            rule[key] = Value::String(re);
            out.push(rule);
        }
    }
}

/// Table privileges: what owners (platform and workspace admins) hold, and what operators and the
/// task user hold (`OWNERSHIP`: CREATE, DROP and RENAME of tables, as dbt's `table`
/// materialization does them; no `GRANT_SELECT`).
const OWNER_PRIVILEGES: [&str; 6] = [
    "SELECT",
    "INSERT",
    "DELETE",
    "UPDATE",
    "OWNERSHIP",
    "GRANT_SELECT",
];
const OPERATOR_PRIVILEGES: [&str; 5] = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"];

/// The schemas of Trino's `system` catalog everyone may read: JDBC and catalog metadata (what BI
/// tools read), `information_schema`, and `runtime` (its `queries` table shows each user only the
/// queries the `queries` rules let them see).
const SYSTEM_SCHEMAS: &str = "jdbc|metadata|runtime|information_schema";

/// Trino file-based access control: platform admins everything; per workspace, admins own its
/// schemas, operators read, write and own its tables, viewers read; the task user (Airflow's
/// connection) as an operator everywhere; the catalog manager manages catalogs; everyone reads
/// `system` metadata and sees and kills their own queries; nothing else.
pub fn rules(repo: &Repo, s: &RenderSettings) -> Value {
    let admins: Vec<&str> = repo.settings.admins.iter().map(String::as_str).collect();
    let task_user: Vec<String> = s
        .trino_task_user
        .iter()
        .map(|u| format!("user:{u}"))
        .collect();
    let task_user: Vec<&str> = task_user.iter().map(String::as_str).collect();
    let mut catalogs = Vec::new();
    let mut schemas = Vec::new();
    let mut tables = Vec::new();
    rules_for(&admins, json!({"allow": "all"}), &mut catalogs);
    rules_for(&admins, json!({"owner": true}), &mut schemas);
    rules_for(
        &admins,
        json!({ "privileges": OWNER_PRIVILEGES }),
        &mut tables,
    );

    let mut catalog_users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ws in repo.workspaces.values() {
        let access = &ws.doc.spec.access;
        let catalog = ws.doc.spec.lakehouse.catalog.as_str();
        let schema_re = format!(
            "{}\\.({})",
            quote(ws.name.as_str()),
            ws.doc
                .spec
                .lakehouse
                .namespaces
                .iter()
                .map(|n| quote(n.as_str()))
                .collect::<Vec<_>>()
                .join("|")
        );
        if ws.doc.spec.lakehouse.namespaces.is_empty() {
            continue;
        }
        let base = json!({"catalog": quote(catalog), "schema": schema_re});
        let with = |extra: Value| {
            let mut v = base.clone();
            if let (Value::Object(v), Value::Object(e)) = (&mut v, extra) {
                v.extend(e);
            }
            v
        };
        let admin: Vec<&str> = access.admin.iter().map(String::as_str).collect();
        let mut operator: Vec<&str> = access.operator.iter().map(String::as_str).collect();
        operator.extend(&task_user);
        let viewer: Vec<&str> = access.viewer.iter().map(String::as_str).collect();
        rules_for(&admin, with(json!({"owner": true})), &mut schemas);
        rules_for(
            &admin,
            with(json!({ "privileges": OWNER_PRIVILEGES })),
            &mut tables,
        );
        rules_for(
            &operator,
            with(json!({ "privileges": OPERATOR_PRIVILEGES })),
            &mut tables,
        );
        rules_for(
            &viewer,
            with(json!({"privileges": ["SELECT"]})),
            &mut tables,
        );
        let all = catalog_users.entry(catalog).or_default();
        all.extend(admin.iter().chain(&operator).chain(&viewer).copied());
    }
    for (catalog, principals) in &catalog_users {
        let list: Vec<&str> = principals.iter().copied().collect();
        rules_for(
            &list,
            json!({"catalog": quote(catalog), "allow": "all"}),
            &mut catalogs,
        );
    }
    // Everyone: Trino's `system` metadata (a catalog rule overrides Trino's default access to
    // `system`, so the deny below would otherwise take it away).
    catalogs.push(json!({"catalog": "system", "allow": "read-only"}));
    tables.push(json!({"catalog": "system", "schema": SYSTEM_SCHEMAS, "privileges": ["SELECT"]}));
    if let Some(manager) = &s.trino_catalog_manager {
        // CREATE / DROP CATALOG need `owner` on the catalog; the table rules give it no data.
        catalogs.push(json!({"user": quote(manager), "allow": "owner"}));
    }
    // Everyone else: nothing (Trino denies what no rule allows; these make it explicit).
    catalogs.push(json!({"allow": "none"}));
    schemas.push(json!({"owner": false}));
    tables.push(json!({"privileges": []}));

    // Queries: platform admins see and kill every query; everyone runs queries and (always, in
    // Trino) sees and kills their own.
    let mut queries = Vec::new();
    rules_for(
        &admins,
        json!({"allow": ["execute", "view", "kill"]}),
        &mut queries,
    );
    queries.push(json!({"allow": ["execute"]}));
    // Procedures: platform admins all; everyone `system.runtime.kill_query` (which then checks the
    // `queries` rules: one's own queries only).
    let mut procedures = Vec::new();
    rules_for(
        &admins,
        json!({"privileges": ["EXECUTE", "GRANT_EXECUTE"]}),
        &mut procedures,
    );
    procedures.push(json!({
        "catalog": "system",
        "schema": "runtime",
        "procedure": "kill_query",
        "privileges": ["EXECUTE"],
    }));

    let mut out = json!({
        "catalogs": catalogs,
        "schemas": schemas,
        "tables": tables,
        "queries": queries,
        "procedures": procedures,
    });
    if let Some(user) = &s.trino_impersonator {
        // olo's service user runs SQL-runner queries as the caller; nobody else impersonates.
        out["impersonation"] = json!([
            {"original_user": quote(user), "new_user": ".*", "allow": true},
            {"original_user": ".*", "new_user": ".*", "allow": false},
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_cannot_gain_lines_or_keys() {
        assert_eq!(escape_property("a\nb=c", false), "a\\nb=c");
        assert_eq!(escape_property("k=v", true), "k\\=v");
        assert_eq!(escape_property("#x", false), "\\#x");
    }

    #[test]
    fn regex_quoting() {
        assert_eq!(quote("data-platform"), "data\\-platform");
        assert_eq!(quote("a.b|c"), "a\\.b\\|c");
    }
}
