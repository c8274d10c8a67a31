//! Trino catalogs with dynamic catalog management (`catalog.management=dynamic`): each Iceberg
//! catalog the workspaces name becomes `CREATE CATALOG` over Trino's client protocol, with the
//! same properties the static catalog file would hold (secrets as `${ENV:…}` references that
//! Trino resolves; olo never sends or shows a secret). Resources `trino-catalog/<name>`.
//!
//! Trino cannot show a catalog's properties back, so olo trusts its inventory: a catalog olo
//! created with the same properties is unchanged; with other properties it is dropped and
//! created again (Trino has no way to alter one in place); a catalog of that name olo did not
//! create (a static one, say) is left alone and the plan says so. The planning is pure; the
//! I/O is [`observe`] and [`apply`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{LakeError, LakeResult, TARGET};
use crate::plan::{text_diff, Action, Change};
use crate::store::InventoryItem;
use crate::targets::trino::{self, QueryRequest, Trino};

/// Where and as whom olo manages catalogs.
#[derive(Clone)]
pub struct DynamicCatalogs {
    pub trino: Arc<dyn Trino>,
    /// The Trino user olo runs `CREATE CATALOG` as (needs the right to manage catalogs).
    pub user: String,
    pub render: olo_templates::RenderSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCatalog {
    pub name: String,
    pub connector: String,
    pub properties: BTreeMap<String, String>,
}

pub fn resource(name: &str) -> String {
    format!("trino-catalog/{name}")
}

fn text(c: &DesiredCatalog) -> String {
    let mut out = format!("connector.name = {}\n", c.connector);
    for (k, v) in &c.properties {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

pub fn hash(c: &DesiredCatalog) -> String {
    olo_templates::render::sha256_hex(text(c).as_bytes())
}

/// The catalogs a valid repository wants.
pub fn desired(
    repo: &olo_schema::Repo,
    render: &olo_templates::RenderSettings,
) -> Vec<DesiredCatalog> {
    olo_templates::trino::catalog_properties(repo, render)
        .into_iter()
        .map(|(name, props)| {
            let mut properties: BTreeMap<String, String> = props.into_iter().collect();
            let connector = properties
                .remove("connector.name")
                .unwrap_or_else(|| "iceberg".into());
            DesiredCatalog {
                name,
                connector,
                properties,
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogOp {
    Create {
        name: String,
        sql: String,
    },
    /// Drop, then create with the new properties.
    Replace {
        name: String,
        sql: String,
    },
    Drop {
        name: String,
    },
}

/// The catalogs part of a plan.
#[derive(Debug, Default)]
pub struct CatalogPlan {
    pub changes: Vec<Change>,
    pub ops: Vec<CatalogOp>,
    pub unchanged: usize,
    /// Inventory entries of catalogs that are gone already.
    pub forget: Vec<String>,
}

/// Plans the catalogs against the names Trino shows (`existing`) and olo's inventory.
pub fn plan(
    desired: &[DesiredCatalog],
    existing: &BTreeSet<String>,
    owned: &[InventoryItem],
    prune: bool,
) -> LakeResult<CatalogPlan> {
    let applied: BTreeMap<&str, &str> = owned
        .iter()
        .map(|i| (i.name.as_str(), i.hash.as_str()))
        .collect();
    let mut out = CatalogPlan::default();
    let sql_err = |e: trino::TrinoError| LakeError::Unsupported(e.to_string());
    for c in desired {
        let name = resource(&c.name);
        let h = hash(c);
        let present = existing.contains(&c.name);
        match (present, applied.get(name.as_str())) {
            (true, Some(old)) if *old == h => out.unchanged += 1,
            (true, Some(_)) => {
                out.changes.push(Change {
                    name: name.clone(),
                    action: Action::Update,
                    hash: h,
                    diff: text_diff(&name, b"", text(c).as_bytes()),
                    reason: Some("Trino cannot alter a catalog: olo drops it and creates it again".into()),
                });
                out.ops.push(CatalogOp::Replace {
                    name: c.name.clone(),
                    sql: trino::create_catalog_sql(&c.name, &c.connector, &c.properties)
                        .map_err(sql_err)?,
                });
            }
            (true, None) => out.changes.push(Change {
                name,
                action: Action::Keep,
                hash: String::new(),
                diff: None,
                reason: Some(
                    "a catalog of that name exists and olo did not create it (a static catalog file?); olo leaves it"
                        .into(),
                ),
            }),
            (false, previous) => {
                out.changes.push(Change {
                    name: name.clone(),
                    action: Action::Create,
                    reason: previous
                        .filter(|old| **old == h)
                        .map(|_| format!("{}: dropped outside olo", crate::plan::DRIFT)),
                    hash: h,
                    diff: text_diff(&name, b"", text(c).as_bytes()),
                });
                out.ops.push(CatalogOp::Create {
                    name: c.name.clone(),
                    sql: trino::create_catalog_sql(&c.name, &c.connector, &c.properties)
                        .map_err(sql_err)?,
                });
            }
        }
    }
    let wanted: BTreeSet<String> = desired.iter().map(|c| resource(&c.name)).collect();
    for item in owned
        .iter()
        .filter(|i| i.name.starts_with("trino-catalog/"))
    {
        if wanted.contains(&item.name) {
            continue;
        }
        let catalog = item.name.trim_start_matches("trino-catalog/").to_string();
        if !existing.contains(&catalog) {
            out.forget.push(item.name.clone());
        } else if prune {
            out.changes.push(Change {
                name: item.name.clone(),
                action: Action::Delete,
                hash: String::new(),
                diff: None,
                reason: None,
            });
            out.ops.push(CatalogOp::Drop { name: catalog });
        } else {
            out.changes.push(Change {
                name: item.name.clone(),
                action: Action::Keep,
                hash: String::new(),
                diff: None,
                reason: Some("no longer in the repository; pruning is off".into()),
            });
        }
    }
    Ok(out)
}

fn trino_err(e: trino::TrinoError) -> LakeError {
    if e.is_temporary() {
        LakeError::Unavailable {
            system: "Trino".into(),
            message: e.to_string(),
        }
    } else {
        LakeError::Refused {
            system: "Trino".into(),
            what: "a catalog statement".into(),
            message: e.to_string(),
        }
    }
}

impl DynamicCatalogs {
    /// The catalogs Trino shows.
    pub async fn observe(&self) -> LakeResult<BTreeSet<String>> {
        Ok(trino::show_catalogs(self.trino.as_ref(), &self.user)
            .await
            .map_err(trino_err)?
            .into_iter()
            .collect())
    }

    async fn run(&self, sql: &str) -> LakeResult<()> {
        self.trino
            .query(&QueryRequest::new(&self.user, sql, 1))
            .await
            .map_err(trino_err)?;
        Ok(())
    }

    pub async fn apply(&self, op: &CatalogOp) -> LakeResult<()> {
        match op {
            CatalogOp::Create { sql, .. } => self.run(sql).await,
            CatalogOp::Replace { name, sql } => {
                self.run(&trino::drop_catalog_sql(name).map_err(trino_err)?)
                    .await?;
                self.run(sql).await
            }
            CatalogOp::Drop { name } => {
                self.run(&trino::drop_catalog_sql(name).map_err(trino_err)?)
                    .await
            }
        }
    }
}

/// The inventory claim for a created or replaced catalog.
pub fn claim(c: &DesiredCatalog, revision: &str) -> InventoryItem {
    InventoryItem {
        target: TARGET.into(),
        name: resource(&c.name),
        hash: hash(c),
        revision: revision.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(props: &[(&str, &str)]) -> DesiredCatalog {
        DesiredCatalog {
            name: "lake".into(),
            connector: "iceberg".into(),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn owned(name: &str, hash: &str) -> InventoryItem {
        InventoryItem {
            target: TARGET.into(),
            name: name.into(),
            hash: hash.into(),
            revision: "r".into(),
        }
    }

    #[test]
    fn missing_catalogs_are_created_with_env_references_only() {
        let c = catalog(&[("s3.aws-secret-key", "${ENV:OLO_S3_SECRET_KEY}")]);
        let p = plan(&[c], &BTreeSet::new(), &[], true).unwrap();
        assert_eq!(p.changes[0].action, Action::Create);
        let CatalogOp::Create { sql, .. } = &p.ops[0] else {
            panic!()
        };
        assert_eq!(
            sql,
            "CREATE CATALOG \"lake\" USING iceberg WITH (\"s3.aws-secret-key\" = '${ENV:OLO_S3_SECRET_KEY}')"
        );
    }

    #[test]
    fn olos_catalogs_are_trusted_replaced_or_dropped_and_others_left_alone() {
        let c = catalog(&[("a", "1")]);
        let existing: BTreeSet<String> = ["lake".to_string(), "old".to_string()].into();
        // Same hash: unchanged.
        let same = plan(
            std::slice::from_ref(&c),
            &existing,
            &[owned("trino-catalog/lake", &hash(&c))],
            true,
        )
        .unwrap();
        assert!(same.changes.is_empty() && same.unchanged == 1);
        // Other properties: replaced.
        let changed = plan(
            std::slice::from_ref(&c),
            &existing,
            &[owned("trino-catalog/lake", "old")],
            true,
        )
        .unwrap();
        assert!(matches!(changed.ops[0], CatalogOp::Replace { .. }));
        // Not olo's: kept.
        let foreign = plan(std::slice::from_ref(&c), &existing, &[], true).unwrap();
        assert_eq!(foreign.changes[0].action, Action::Keep);
        assert!(foreign.ops.is_empty());
        // Owned, not wanted: dropped with pruning, kept without, forgotten when gone.
        let inv = [
            owned("trino-catalog/old", "h"),
            owned("trino-catalog/gone", "h"),
        ];
        let pruned = plan(&[], &existing, &inv, true).unwrap();
        assert_eq!(pruned.ops, vec![CatalogOp::Drop { name: "old".into() }]);
        assert_eq!(pruned.forget, vec!["trino-catalog/gone".to_string()]);
        let kept = plan(&[], &existing, &inv, false).unwrap();
        assert!(kept.ops.is_empty());
        assert_eq!(kept.changes[0].action, Action::Keep);
    }

    #[test]
    fn a_catalog_olo_created_and_someone_dropped_is_drift() {
        let c = catalog(&[]);
        let p = plan(
            std::slice::from_ref(&c),
            &BTreeSet::new(),
            &[owned("trino-catalog/lake", &hash(&c))],
            true,
        )
        .unwrap();
        assert!(p.changes[0].is_drift());
    }
}
