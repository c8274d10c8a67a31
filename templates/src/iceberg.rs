//! The Iceberg namespaces each workspace wants, with their properties, as data for the
//! lakehouse target (and `iceberg/namespaces.json` in rendered output).

use std::collections::BTreeMap;

use olo_schema::Repo;
use serde::Serialize;

/// The property olo sets on every namespace it creates; the lakehouse target prunes only
/// namespaces that carry it.
pub const OWNERSHIP_PROPERTY: &str = "olo.managed-by";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamespaceSpec {
    pub catalog: String,
    pub workspace: String,
    /// Two levels: `[workspace, namespace]`.
    pub namespace: Vec<String>,
    pub properties: BTreeMap<String, String>,
}

/// The properties that say who a workspace's namespaces belong to: `owner` and `comment` as the
/// workspace declares them in `spec.lakehouse.properties`, else the first of `metadata.owners` and
/// the description; then the ownership marker and `olo.workspace`.
pub fn ownership_properties(ws: &olo_schema::Workspace) -> BTreeMap<String, String> {
    let declared = &ws.doc.spec.lakehouse.properties;
    let mut properties = BTreeMap::new();
    if let Some(owner) = declared
        .get("owner")
        .or_else(|| ws.doc.metadata.owners.first())
    {
        properties.insert("owner".into(), owner.clone());
    }
    if let Some(d) = declared
        .get("comment")
        .or(ws.doc.spec.description.as_ref())
        .or(ws.doc.metadata.description.as_ref())
    {
        properties.insert("comment".into(), d.clone());
    }
    properties.insert(OWNERSHIP_PROPERTY.into(), "olo".into());
    properties.insert("olo.workspace".into(), ws.name.to_string());
    properties
}

pub fn namespaces(repo: &Repo) -> Vec<NamespaceSpec> {
    let mut out = Vec::new();
    for ws in repo.workspaces.values() {
        let lake = &ws.doc.spec.lakehouse;
        for ns in &lake.namespaces {
            let mut properties = lake.properties.clone();
            properties.insert(
                "location".into(),
                format!("{}/{}", lake.warehouse.trim_end_matches('/'), ns),
            );
            properties.extend(ownership_properties(ws));
            out.push(NamespaceSpec {
                catalog: lake.catalog.to_string(),
                workspace: ws.name.to_string(),
                namespace: vec![ws.name.to_string(), ns.to_string()],
                properties,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(lakehouse_extra: &str) -> Repo {
        let mut s = olo_schema::Snapshot::new(None);
        s.insert_file(
            "workspaces/sales/workspace.yaml",
            format!(
                "apiVersion: olo/v1\nkind: Workspace\nmetadata:\n  name: sales\n  owners: [sales-eng@example.com]\n  description: Orders of the shop.\nspec:\n  lakehouse:\n    catalog: lake\n    warehouse: s3://lakehouse/sales\n    namespaces: [bronze]\n{lakehouse_extra}"
            ),
        );
        let v = olo_schema::validate(s);
        assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
        v.repo.expect("valid")
    }

    fn properties(repo: &Repo) -> BTreeMap<String, String> {
        let spec = namespaces(repo).pop().unwrap();
        let mut p = spec.properties;
        p.retain(|k, _| !k.starts_with("olo."));
        p
    }

    #[test]
    fn declared_owner_and_comment_win_over_owners_and_description() {
        let declared = workspace(
            "    properties: {owner: sales-eng, comment: Managed by olo, write.format.default: orc}\n",
        );
        let want = |owner: &str, comment: &str, extra: Option<&str>| {
            let mut m = BTreeMap::from([
                ("owner".to_string(), owner.to_string()),
                ("comment".to_string(), comment.to_string()),
                (
                    "location".to_string(),
                    "s3://lakehouse/sales/bronze".to_string(),
                ),
            ]);
            if let Some(v) = extra {
                m.insert("write.format.default".into(), v.into());
            }
            m
        };
        assert_eq!(
            properties(&declared),
            want("sales-eng", "Managed by olo", Some("orc"))
        );
        let ws = declared.workspaces.values().next().unwrap();
        assert_eq!(ownership_properties(ws)["owner"], "sales-eng");
        // Without them, the owners and the description say it.
        assert_eq!(
            properties(&workspace("")),
            want("sales-eng@example.com", "Orders of the shop.", None)
        );
    }
}
