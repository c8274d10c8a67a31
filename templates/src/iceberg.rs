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

/// The properties that say who a workspace's namespaces belong to: `owner` (the first of
/// `metadata.owners`), `comment` (the description), the ownership marker and `olo.workspace`.
pub fn ownership_properties(ws: &olo_schema::Workspace) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    if let Some(owner) = ws.doc.metadata.owners.first() {
        properties.insert("owner".into(), owner.clone());
    }
    if let Some(d) = ws
        .doc
        .spec
        .description
        .as_ref()
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
