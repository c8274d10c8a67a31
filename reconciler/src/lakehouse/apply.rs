//! Observing and applying the lakehouse: the I/O around the pure plan of [`super::plan`].
//!
//! Apply is split in two so the engine can put the file sink between them: `apply_writes`
//! (warehouses, then namespace creates and updates, parents first) runs before the Trino files
//! and DAGs that use them; `apply_drops` (children first) runs last. Ownership is recorded in
//! the store before a namespace is created, so a crash between the two never leaves a namespace
//! olo created but does not know it owns; every step is idempotent, so a restart re-plans and
//! finishes the job.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt as _, TryStreamExt as _};

use super::catalogs::{self, CatalogOp, DynamicCatalogs};
use super::tables::TableOp;
use super::{
    namespace_hash, parse_namespace_resource, warehouse_hash, warehouse_resource, Desired,
    IcebergCatalog, LakePlan, LakeResult, Locations, NamespaceId, Observed, ObservedNamespace, Op,
    Warehouse, TARGET,
};
use crate::plan::{Observe, PlanOptions};
use crate::store::{InventoryItem, Store};

/// Requests to the catalog or the object store in flight at once while observing.
const IN_FLIGHT: usize = 16;

/// The lakehouse target as configured: a catalog for namespaces and/or a warehouse store.
#[derive(Clone)]
pub struct Lakehouse {
    pub catalog: Option<Arc<dyn IcebergCatalog>>,
    pub warehouse: Option<Arc<dyn Warehouse>>,
    pub locations: Locations,
    /// Trino catalogs through dynamic catalog management (`None`: catalog files only).
    pub trino: Option<DynamicCatalogs>,
}

impl std::fmt::Debug for Lakehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lakehouse")
            .field("catalog", &self.catalog.as_ref().map(|c| c.describe()))
            .field("warehouse", &self.warehouse.is_some())
            .field("locations", &self.locations)
            .field("trino", &self.trino.as_ref().map(|t| t.user.clone()))
            .finish()
    }
}

impl Lakehouse {
    /// What the repository wants of the parts that are configured.
    pub fn desired(&self, repo: &olo_schema::Repo) -> Desired {
        let warehouse = self.warehouse.clone();
        let bootstraps = move |loc: &str| warehouse.as_ref().is_some_and(|w| w.bootstraps(loc));
        let mut desired = super::desired(repo, &self.locations, &bootstraps);
        if self.catalog.is_none() {
            desired.namespaces.clear();
            desired.tables.clear();
        }
        if let Some(t) = &self.trino {
            desired.trino_catalogs = catalogs::desired(repo, &t.render);
        }
        desired
    }

    /// Reads what the plan needs: the resources the inventory does not vouch for (all of them
    /// when `full`), and, for owned namespaces no longer wanted, their tables and children.
    pub async fn observe(
        &self,
        desired: &Desired,
        owned: &[InventoryItem],
        full: bool,
    ) -> LakeResult<(Observed, std::collections::BTreeSet<String>)> {
        let trusted = if full {
            Default::default()
        } else {
            super::trusted(desired, owned)
        };
        let (namespaces, locations, tables) = super::to_observe(desired, owned, &trusted);
        let mut observed = Observed::default();
        // Reads go out a few at a time: a cold or full observe of a large lakehouse is hundreds
        // of requests, each waiting on the catalog.
        if let Some(warehouse) = &self.warehouse {
            let found: Vec<Option<String>> = stream::iter(locations)
                .map(|location| async move {
                    Ok::<_, super::LakeError>(
                        warehouse.exists(&location).await?.then_some(location),
                    )
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect()
                .await?;
            observed.warehouses.extend(found.into_iter().flatten());
        }
        if let Some(catalog) = &self.catalog {
            let wanted: std::collections::BTreeSet<&NamespaceId> =
                desired.namespaces.iter().map(|n| &n.id).collect();
            let wanted = &wanted;
            let found: Vec<Option<(NamespaceId, ObservedNamespace)>> = stream::iter(namespaces)
                .map(|id| async move {
                    let Some(properties) = catalog.load_namespace(&id).await? else {
                        return Ok::<_, super::LakeError>(None);
                    };
                    let mut ns = ObservedNamespace {
                        properties,
                        ..Default::default()
                    };
                    if !wanted.contains(&id) {
                        ns.tables = catalog.count_tables(&id).await?;
                        ns.children = catalog.children(&id).await?;
                    }
                    Ok(Some((id, ns)))
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect()
                .await?;
            observed.namespaces.extend(found.into_iter().flatten());
            let found: Vec<(super::tables::TableId, Option<serde_json::Value>)> =
                stream::iter(tables)
                    .map(|id| async move {
                        let metadata = catalog.load_table(&id).await?;
                        Ok::<_, super::LakeError>((id, metadata))
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect()
                    .await?;
            observed.tables.extend(found);
        }
        Ok((observed, trusted))
    }

    /// Observes and plans.
    pub async fn plan(
        &self,
        desired: &Desired,
        owned: &[InventoryItem],
        options: &PlanOptions,
    ) -> LakeResult<LakePlan> {
        let full = options.observe == Observe::Full;
        let (observed, trusted) = self.observe(desired, owned, full).await?;
        let mut lake = super::plan(desired, &observed, owned, &trusted, options);
        if let Some(t) = &self.trino {
            // Trino cannot show properties back: read the names only when the inventory does
            // not vouch for every catalog (or on a full observe).
            let applied: BTreeMap<&str, &str> = owned
                .iter()
                .map(|i| (i.name.as_str(), i.hash.as_str()))
                .collect();
            let vouched = desired.trino_catalogs.iter().all(|c| {
                applied.get(catalogs::resource(&c.name).as_str())
                    == Some(&catalogs::hash(c).as_str())
            });
            let wanted: std::collections::BTreeSet<String> = desired
                .trino_catalogs
                .iter()
                .map(|c| catalogs::resource(&c.name))
                .collect();
            let stray = owned
                .iter()
                .any(|i| i.name.starts_with("trino-catalog/") && !wanted.contains(&i.name));
            if full || !vouched || stray {
                let existing = t.observe().await?;
                let p = catalogs::plan(&desired.trino_catalogs, &existing, owned, options.prune)?;
                lake.changes.extend(p.changes);
                lake.unchanged += p.unchanged;
                lake.forget.extend(p.forget);
                lake.ops.extend(p.ops.into_iter().map(Op::TrinoCatalog));
            } else {
                lake.unchanged += desired.trino_catalogs.len();
            }
        }
        Ok(lake)
    }

    /// Warehouses, then namespace creates and updates (parents first). Claims ownership in the
    /// store before acting.
    pub async fn apply_writes(
        &self,
        lake: &LakePlan,
        desired: &Desired,
        store: &dyn Store,
        revision: &str,
    ) -> crate::Result<()> {
        let mut claims = Vec::new();
        for op in &lake.ops {
            match op {
                Op::EnsureWarehouse {
                    workspace,
                    location,
                } => claims.push(InventoryItem {
                    target: TARGET.into(),
                    name: warehouse_resource(workspace),
                    hash: warehouse_hash(location),
                    revision: revision.into(),
                }),
                Op::Create { id, .. } | Op::Update { id, .. } => {
                    if let Some(n) = desired.namespaces.iter().find(|n| &n.id == id) {
                        claims.push(InventoryItem {
                            target: TARGET.into(),
                            name: id.resource(),
                            hash: namespace_hash(&n.properties),
                            revision: revision.into(),
                        });
                    }
                }
                Op::Table(op) => {
                    let id = match op {
                        TableOp::Create { id, .. } | TableOp::Commit { id, .. } => id,
                    };
                    if let Some(t) = desired.tables.iter().find(|t| &t.id == id) {
                        claims.push(InventoryItem {
                            target: TARGET.into(),
                            name: id.resource(),
                            hash: super::table_hash(t),
                            revision: revision.into(),
                        });
                    }
                }
                Op::TrinoCatalog(
                    CatalogOp::Create { name, .. } | CatalogOp::Replace { name, .. },
                ) => {
                    if let Some(c) = desired.trino_catalogs.iter().find(|c| &c.name == name) {
                        claims.push(catalogs::claim(c, revision));
                    }
                }
                Op::TrinoCatalog(CatalogOp::Drop { .. }) | Op::Drop { .. } => {}
            }
        }
        store.upsert_inventory_many(&claims).await?;
        let mut ops = lake.ops.iter().peekable();
        while let Some(op) = ops.next() {
            match op {
                Op::EnsureWarehouse {
                    workspace,
                    location,
                } => {
                    let warehouse = self.warehouse.as_ref().ok_or_else(|| {
                        super::LakeError::Unsupported("no warehouse store is configured".into())
                    })?;
                    warehouse.ensure(location, workspace).await?;
                }
                Op::Create { id, properties } => {
                    // A run of creates (a cold start makes hundreds) goes to the catalog at once.
                    let mut run = vec![(id, properties)];
                    while let Some(Op::Create { id, properties }) =
                        ops.next_if(|op| matches!(op, Op::Create { .. }))
                    {
                        run.push((id, properties));
                    }
                    self.catalog()?.create_namespaces(&run).await?;
                }
                Op::Update {
                    id,
                    removals,
                    updates,
                } => {
                    self.catalog()?
                        .update_properties(id, removals, updates)
                        .await?;
                }
                Op::Table(TableOp::Create { id, request }) => {
                    self.catalog()?.create_table(id, request).await?;
                }
                Op::Table(TableOp::Commit {
                    id,
                    requirements,
                    updates,
                }) => {
                    self.catalog()?
                        .commit_table(id, requirements, updates)
                        .await?;
                }
                Op::TrinoCatalog(op @ (CatalogOp::Create { .. } | CatalogOp::Replace { .. })) => {
                    self.trino()?.apply(op).await?;
                }
                Op::TrinoCatalog(CatalogOp::Drop { .. }) | Op::Drop { .. } => {}
            }
        }
        Ok(())
    }

    /// Drops (children first), then forgets what is gone: dropped now, owned but already absent
    /// and not desired, or warehouses no longer wanted.
    pub async fn apply_drops(
        &self,
        lake: &LakePlan,
        desired: &Desired,
        owned: &[InventoryItem],
        store: &dyn Store,
    ) -> crate::Result<()> {
        let mut forget: Vec<String> = lake.forget.clone();
        for op in &lake.ops {
            match op {
                Op::Drop { id } => {
                    self.catalog()?.drop_namespace(id).await?;
                    forget.push(id.resource());
                }
                Op::TrinoCatalog(op @ CatalogOp::Drop { name }) => {
                    self.trino()?.apply(op).await?;
                    forget.push(catalogs::resource(name));
                }
                _ => {}
            }
        }
        if let Some(catalog) = &self.catalog {
            let wanted: std::collections::BTreeSet<String> =
                desired.namespaces.iter().map(|n| n.id.resource()).collect();
            for item in owned {
                if wanted.contains(&item.name) || forget.contains(&item.name) {
                    continue;
                }
                if let Some(id) = parse_namespace_resource(&item.name) {
                    if catalog.load_namespace(&id).await?.is_none() {
                        forget.push(item.name.clone());
                    }
                }
            }
        }
        store.remove_inventory_many(TARGET, &forget).await?;
        Ok(())
    }

    fn trino(&self) -> LakeResult<&DynamicCatalogs> {
        self.trino.as_ref().ok_or_else(|| {
            super::LakeError::Unsupported("no Trino is configured for catalogs".into())
        })
    }

    fn catalog(&self) -> LakeResult<&Arc<dyn IcebergCatalog>> {
        self.catalog
            .as_ref()
            .ok_or_else(|| super::LakeError::Unsupported("no Iceberg catalog is configured".into()))
    }
}

/// A workspace's lakehouse as the catalog and the object store hold it now, against what the
/// live commit wants (the dashboard's workspace page, `GET /api/v1/workspaces/{ws}/lakehouse`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveLakehouse {
    /// What holds the namespaces ("the SQL catalog in …"), `None` when no catalog is configured.
    pub catalog: Option<String>,
    pub warehouse: Option<WarehouseState>,
    pub namespaces: Vec<NamespaceState>,
    pub tables: Vec<TableState>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WarehouseState {
    pub location: String,
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamespaceState {
    /// `sales.bronze`
    pub namespace: String,
    /// `in_sync`, `missing`, `differs`
    pub state: &'static str,
    pub tables: Option<usize>,
    /// The properties olo manages, as the catalog holds them.
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableState {
    /// `bronze.orders`
    pub table: String,
    /// `in_sync`, `missing`, `differs`
    pub state: &'static str,
    pub columns: Option<usize>,
    /// What differs or is refused (the plan's reason), when it differs.
    pub detail: Option<String>,
}

impl Lakehouse {
    /// Reads `workspace`'s warehouse, namespaces and declared tables.
    pub async fn live(&self, desired: &Desired, workspace: &str) -> LakeResult<LiveLakehouse> {
        let mut out = LiveLakehouse {
            catalog: self.catalog.as_ref().map(|c| c.describe()),
            warehouse: None,
            namespaces: Vec::new(),
            tables: Vec::new(),
        };
        if let (Some(w), Some(store)) = (
            desired.warehouses.iter().find(|w| w.workspace == workspace),
            &self.warehouse,
        ) {
            out.warehouse = Some(WarehouseState {
                location: w.location.clone(),
                exists: store.exists(&w.location).await?,
            });
        }
        let Some(catalog) = &self.catalog else {
            return Ok(out);
        };
        for n in desired
            .namespaces
            .iter()
            .filter(|n| n.workspace == workspace)
        {
            let (state, tables, properties) = match catalog.load_namespace(&n.id).await? {
                None => ("missing", None, BTreeMap::new()),
                Some(props) => {
                    let same = n.properties.iter().all(|(k, v)| props.get(k) == Some(v));
                    let managed = props
                        .into_iter()
                        .filter(|(k, _)| n.properties.contains_key(k))
                        .collect();
                    (
                        if same { "in_sync" } else { "differs" },
                        Some(catalog.count_tables(&n.id).await?),
                        managed,
                    )
                }
            };
            out.namespaces.push(NamespaceState {
                namespace: n.id.dotted(),
                state,
                tables,
                properties,
            });
        }
        for t in desired.tables.iter().filter(|t| t.workspace == workspace) {
            let table = format!("{}.{}", t.id.namespace.parts[1..].join("."), t.id.name);
            let state = match catalog.load_table(&t.id).await? {
                None => TableState {
                    table,
                    state: "missing",
                    columns: None,
                    detail: None,
                },
                Some(metadata) => {
                    let current = super::tables::Current::from_metadata(&metadata);
                    let columns = current.as_ref().map(|c| c.fields.len());
                    let (change, _) = super::tables::plan_table(t, current.as_ref());
                    TableState {
                        table,
                        state: if change.is_none() {
                            "in_sync"
                        } else {
                            "differs"
                        },
                        columns,
                        detail: change.and_then(|c| c.reason),
                    }
                }
            };
            out.tables.push(state);
        }
        Ok(out)
    }
}
