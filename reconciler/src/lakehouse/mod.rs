//! The lakehouse target: each workspace's warehouse location and its Iceberg namespaces (with
//! their properties) in a catalog, planned like files (create / update / delete / keep /
//! unchanged) and applied through two small traits: [`IcebergCatalog`] (an Iceberg REST catalog,
//! [`rest`], or the SQL catalog of the embedded default, [`sql`]) and [`Warehouse`] (S3 or a
//! local folder, [`warehouse`]).
//!
//! Resources, as plans name them:
//! - `warehouse/<workspace>`: the workspace's warehouse location exists (the bucket, and a marker
//!   object under the prefix). olo never deletes warehouse data: a warehouse that is no longer
//!   wanted is listed once as `keep` and forgotten.
//! - `namespace/<catalog>/<workspace>` and `namespace/<catalog>/<workspace>.<namespace>`: the
//!   workspace's parent namespace and each namespace it declares, with properties.
//!
//! Ownership: olo sets `olo.managed-by = olo` on every namespace it creates and lists the keys of
//! every property it sets in `olo.properties`. A property olo did not set is never changed or
//! removed; a namespace is dropped only when pruning is on, olo's inventory holds it, it carries
//! the marker, and it holds no tables and no namespaces olo keeps. Otherwise the plan says why it
//! stays.
//!
//! This module is pure; the I/O lives behind the traits.

pub mod apply;
pub mod catalogs;
pub mod rest;
pub mod sql;
pub mod tables;
pub mod warehouse;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::plan::{text_diff, Action, Change, Diffs, PlanOptions, DRIFT};
use crate::store::InventoryItem;

/// The inventory target of the lakehouse resources.
pub const TARGET: &str = "lakehouse";
/// The property that lists the keys of the properties olo set on a namespace.
pub const MANAGED_KEYS: &str = "olo.properties";
/// The ownership marker (set on every namespace olo creates).
pub const OWNERSHIP_PROPERTY: &str = olo_templates::iceberg::OWNERSHIP_PROPERTY;

/// A namespace of a catalog: `lake` + `["sales", "bronze"]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NamespaceId {
    pub catalog: String,
    pub parts: Vec<String>,
}

impl NamespaceId {
    pub fn new(catalog: &str, parts: &[&str]) -> NamespaceId {
        NamespaceId {
            catalog: catalog.to_string(),
            parts: parts.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// `sales.bronze`
    pub fn dotted(&self) -> String {
        self.parts.join(".")
    }

    /// The resource name in plans and the inventory: `namespace/lake/sales.bronze`.
    pub fn resource(&self) -> String {
        format!("namespace/{}/{}", self.catalog, self.dotted())
    }

    pub fn parent(&self) -> Option<NamespaceId> {
        (self.parts.len() > 1).then(|| NamespaceId {
            catalog: self.catalog.clone(),
            parts: self.parts[..self.parts.len() - 1].to_vec(),
        })
    }
}

impl std::fmt::Display for NamespaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.catalog, self.dotted())
    }
}

/// Whether a plan's resource belongs to the lakehouse (not to the file sink).
pub fn is_resource(name: &str) -> bool {
    name.starts_with("namespace/")
        || name.starts_with("warehouse/")
        || name.starts_with("table/")
        || name.starts_with("trino-catalog/")
}

/// The resource name of a workspace's warehouse: `warehouse/sales`.
pub fn warehouse_resource(workspace: &str) -> String {
    format!("warehouse/{workspace}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredNamespace {
    pub id: NamespaceId,
    pub workspace: String,
    /// Every property olo sets, `olo.properties` included.
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredWarehouse {
    pub workspace: String,
    /// Where the warehouse lives (after [`Locations`] mapping): `s3://bucket/prefix` or
    /// `file:///abs/path`.
    pub location: String,
}

/// What the repository wants of the lakehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub warehouses: Vec<DesiredWarehouse>,
    /// Parents before children.
    pub namespaces: Vec<DesiredNamespace>,
    /// Declared tables (`spec.lakehouse.tables`).
    pub tables: Vec<tables::DesiredTable>,
    /// Trino catalogs, with dynamic catalog management.
    pub trino_catalogs: Vec<catalogs::DesiredCatalog>,
}

/// How warehouse locations written in the repository map to where they live. The embedded
/// default keeps `s3://bucket/prefix` warehouses on the local disk, as
/// `file://<root>/bucket/prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// `Some(root)`: `s3://` and `s3a://` locations live under this absolute folder.
    pub local_root: Option<std::path::PathBuf>,
}

impl Locations {
    pub fn map(&self, location: &str) -> String {
        let Some(root) = &self.local_root else {
            return location.to_string();
        };
        let rest = location
            .strip_prefix("s3://")
            .or_else(|| location.strip_prefix("s3a://"));
        match rest {
            Some(rest) => {
                let rest = rest.trim_end_matches('/');
                format!(
                    "file://{}/{rest}",
                    root.display().to_string().trim_end_matches('/')
                )
            }
            None => location.to_string(),
        }
    }
}

/// The lakehouse a valid repository wants: per workspace its warehouse (when `warehouses` can
/// bootstrap that kind of location), its parent namespace and its namespaces.
pub fn desired(
    repo: &olo_schema::Repo,
    locations: &Locations,
    bootstraps: &dyn Fn(&str) -> bool,
) -> Desired {
    let mut out = Desired::default();
    let children = olo_templates::iceberg::namespaces(repo);
    for ws in repo.workspaces.values() {
        let lake = &ws.doc.spec.lakehouse;
        let location = locations.map(&lake.warehouse);
        if bootstraps(&location) {
            out.warehouses.push(DesiredWarehouse {
                workspace: ws.name.to_string(),
                location: location.clone(),
            });
        }
        let mut parent_props = olo_templates::iceberg::ownership_properties(ws);
        parent_props.insert("location".into(), location.trim_end_matches('/').into());
        out.namespaces.push(DesiredNamespace {
            id: NamespaceId::new(lake.catalog.as_str(), &[ws.name.as_str()]),
            workspace: ws.name.to_string(),
            properties: with_managed_keys(parent_props),
        });
        for spec in children.iter().filter(|s| s.workspace == ws.name.as_str()) {
            let mut props = spec.properties.clone();
            if let Some(loc) = props.get_mut("location") {
                *loc = locations.map(loc);
            }
            out.namespaces.push(DesiredNamespace {
                id: NamespaceId {
                    catalog: spec.catalog.clone(),
                    parts: spec.namespace.clone(),
                },
                workspace: spec.workspace.clone(),
                properties: with_managed_keys(props),
            });
        }
    }
    out.namespaces.sort_by(|a, b| a.id.cmp(&b.id));
    for ws in repo.workspaces.values() {
        out.tables.extend(tables::desired(ws));
    }
    // A table lives under its namespace's location, as Trino and Spark place the tables they
    // create; a catalog's own default (`<warehouse>/<namespace path>/<table>`) would put olo's
    // tables outside the workspace's warehouse.
    let ns_locations: BTreeMap<&NamespaceId, &str> = out
        .namespaces
        .iter()
        .filter_map(|n| Some((&n.id, n.properties.get("location")?.as_str())))
        .collect();
    for t in &mut out.tables {
        t.location = ns_locations
            .get(&t.id.namespace)
            .map(|ns| format!("{}/{}", ns.trim_end_matches('/'), t.id.name));
    }
    out
}

pub(crate) fn with_managed_keys(mut props: BTreeMap<String, String>) -> BTreeMap<String, String> {
    props.remove(MANAGED_KEYS);
    let keys: Vec<&str> = props.keys().map(String::as_str).collect();
    let list = keys.join(",");
    props.insert(MANAGED_KEYS.into(), list);
    props
}

/// The keys olo set on a namespace, as its `olo.properties` says.
fn managed_keys(props: &BTreeMap<String, String>) -> BTreeSet<&str> {
    props
        .get(MANAGED_KEYS)
        .map(|l| l.split(',').filter(|k| !k.is_empty()).collect())
        .unwrap_or_default()
}

/// Properties as the plan shows them and hashes them: `key = value` lines, sorted.
fn properties_text(props: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in props {
        out.push_str(k);
        out.push_str(" = ");
        out.push_str(&v.replace('\n', "\\n"));
        out.push('\n');
    }
    out
}

/// The content hash of a desired table (what the inventory records).
pub fn table_hash(t: &tables::DesiredTable) -> String {
    olo_templates::render::sha256_hex(tables::describe(t).as_bytes())
}

/// The content hash of a desired namespace or warehouse (what the inventory records).
pub fn namespace_hash(props: &BTreeMap<String, String>) -> String {
    olo_templates::render::sha256_hex(properties_text(props).as_bytes())
}

pub fn warehouse_hash(location: &str) -> String {
    olo_templates::render::sha256_hex(location.as_bytes())
}

/// A namespace as the catalog holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedNamespace {
    pub properties: BTreeMap<String, String>,
    /// Tables (and views) in it; read only for namespaces olo might drop.
    pub tables: usize,
    /// Namespaces directly under it; read only for namespaces olo might drop.
    pub children: Vec<NamespaceId>,
}

/// What the catalog and the object store hold of the resources the plan looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub namespaces: BTreeMap<NamespaceId, ObservedNamespace>,
    /// Locations that exist.
    pub warehouses: BTreeSet<String>,
    /// The tables read: their current metadata, `None` when the table does not exist.
    pub tables: BTreeMap<tables::TableId, Option<serde_json::Value>>,
}

/// One step of applying the lakehouse part of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    EnsureWarehouse {
        workspace: String,
        location: String,
    },
    Create {
        id: NamespaceId,
        properties: BTreeMap<String, String>,
    },
    Update {
        id: NamespaceId,
        removals: Vec<String>,
        updates: BTreeMap<String, String>,
    },
    Drop {
        id: NamespaceId,
    },
    Table(tables::TableOp),
    TrinoCatalog(catalogs::CatalogOp),
}

/// The lakehouse part of a plan: the changes people read and the steps that carry them out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LakePlan {
    pub changes: Vec<Change>,
    /// In apply order: warehouses, then creates and updates (parents first), then drops
    /// (children first).
    pub ops: Vec<Op>,
    pub unchanged: usize,
    /// Inventory entries to forget after the apply (warehouses no longer wanted).
    pub forget: Vec<String>,
}

/// The resources a plan needs to read from the target: every desired resource the inventory
/// does not vouch for (`trusted`), and every owned resource that is no longer desired.
pub fn to_observe<'a>(
    desired: &'a Desired,
    owned: &'a [InventoryItem],
    trusted: &BTreeSet<String>,
) -> (Vec<NamespaceId>, Vec<String>, Vec<tables::TableId>) {
    let wanted: BTreeSet<String> = desired
        .namespaces
        .iter()
        .map(|n| n.id.resource())
        .chain(
            desired
                .warehouses
                .iter()
                .map(|w| warehouse_resource(&w.workspace)),
        )
        .collect();
    let mut namespaces: Vec<NamespaceId> = desired
        .namespaces
        .iter()
        .filter(|n| !trusted.contains(&n.id.resource()))
        .map(|n| n.id.clone())
        .collect();
    for item in owned {
        if wanted.contains(&item.name) {
            continue;
        }
        if let Some(id) = parse_namespace_resource(&item.name) {
            namespaces.push(id);
        }
    }
    let locations = desired
        .warehouses
        .iter()
        .filter(|w| !trusted.contains(&warehouse_resource(&w.workspace)))
        .map(|w| w.location.clone())
        .collect();
    let tables = desired
        .tables
        .iter()
        .filter(|t| !trusted.contains(&t.id.resource()))
        .map(|t| t.id.clone())
        .collect();
    (namespaces, locations, tables)
}

/// The desired resources whose inventory hash equals their desired hash (the incremental path
/// does not read them back).
pub fn trusted(desired: &Desired, owned: &[InventoryItem]) -> BTreeSet<String> {
    let applied: BTreeMap<&str, &str> = owned
        .iter()
        .map(|i| (i.name.as_str(), i.hash.as_str()))
        .collect();
    let mut out = BTreeSet::new();
    for n in &desired.namespaces {
        let name = n.id.resource();
        if applied.get(name.as_str()) == Some(&namespace_hash(&n.properties).as_str()) {
            out.insert(name);
        }
    }
    for w in &desired.warehouses {
        let name = warehouse_resource(&w.workspace);
        if applied.get(name.as_str()) == Some(&warehouse_hash(&w.location).as_str()) {
            out.insert(name);
        }
    }
    for t in &desired.tables {
        let name = t.id.resource();
        if applied.get(name.as_str()) == Some(&table_hash(t).as_str()) {
            out.insert(name);
        }
    }
    out
}

/// `namespace/lake/sales.bronze` -> lake, [sales, bronze].
pub fn parse_namespace_resource(name: &str) -> Option<NamespaceId> {
    let rest = name.strip_prefix("namespace/")?;
    let (catalog, dotted) = rest.split_once('/')?;
    if catalog.is_empty() || dotted.is_empty() {
        return None;
    }
    Some(NamespaceId {
        catalog: catalog.to_string(),
        parts: dotted.split('.').map(str::to_string).collect(),
    })
}

/// Computes the lakehouse plan (pure). `observed` holds what was read for the resources
/// [`to_observe`] named; `trusted` resources are counted unchanged without being read.
/// `options.observe` is not looked at: what was read is in `observed` and `trusted`.
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    owned: &[InventoryItem],
    trusted: &BTreeSet<String>,
    options: &PlanOptions,
) -> LakePlan {
    let prune = options.prune;
    let full_diffs = options.diffs == Diffs::All;
    let applied: BTreeMap<&str, &str> = owned
        .iter()
        .map(|i| (i.name.as_str(), i.hash.as_str()))
        .collect();
    let drifted = |name: &str, hash: &str, what: &str| {
        (applied.get(name) == Some(&hash)).then(|| format!("{DRIFT}: {what} outside olo"))
    };
    let mut out = LakePlan::default();

    // Warehouses.
    for w in &desired.warehouses {
        let name = warehouse_resource(&w.workspace);
        if trusted.contains(&name) || observed.warehouses.contains(&w.location) {
            out.unchanged += 1;
            continue;
        }
        let hash = warehouse_hash(&w.location);
        let previous = owned.iter().find(|i| i.name == name);
        let action = if previous.is_some() && applied.get(name.as_str()) != Some(&hash.as_str()) {
            Action::Update
        } else {
            Action::Create
        };
        out.changes.push(Change {
            name: name.clone(),
            action,
            reason: drifted(&name, &hash, "deleted"),
            diff: full_diffs
                .then(|| {
                    text_diff(
                        &name,
                        b"",
                        format!("location = {}\n", w.location).as_bytes(),
                    )
                })
                .flatten(),
            hash,
        });
        out.ops.push(Op::EnsureWarehouse {
            workspace: w.workspace.clone(),
            location: w.location.clone(),
        });
    }
    let wanted_warehouses: BTreeSet<String> = desired
        .warehouses
        .iter()
        .map(|w| warehouse_resource(&w.workspace))
        .collect();
    for item in owned.iter().filter(|i| i.name.starts_with("warehouse/")) {
        if !wanted_warehouses.contains(&item.name) {
            out.changes.push(Change {
                name: item.name.clone(),
                action: Action::Keep,
                hash: String::new(),
                diff: None,
                reason: Some(
                    "no longer in the repository; olo never deletes warehouse data (forgotten)"
                        .into(),
                ),
            });
            out.forget.push(item.name.clone());
        }
    }

    // Namespaces: creates and updates, parents first (desired is sorted).
    let wanted: BTreeSet<&NamespaceId> = desired.namespaces.iter().map(|n| &n.id).collect();
    for n in &desired.namespaces {
        let name = n.id.resource();
        if trusted.contains(&name) {
            out.unchanged += 1;
            continue;
        }
        let hash = namespace_hash(&n.properties);
        match observed.namespaces.get(&n.id) {
            None => {
                out.changes.push(Change {
                    name: name.clone(),
                    action: Action::Create,
                    reason: drifted(&name, &hash, "dropped"),
                    diff: full_diffs
                        .then(|| text_diff(&name, b"", properties_text(&n.properties).as_bytes()))
                        .flatten(),
                    hash,
                });
                out.ops.push(Op::Create {
                    id: n.id.clone(),
                    properties: n.properties.clone(),
                });
            }
            Some(have) => {
                let updates: BTreeMap<String, String> = n
                    .properties
                    .iter()
                    .filter(|(k, v)| have.properties.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removals: Vec<String> = managed_keys(&have.properties)
                    .into_iter()
                    .filter(|k| !n.properties.contains_key(*k) && have.properties.contains_key(*k))
                    .map(str::to_string)
                    .collect();
                if updates.is_empty() && removals.is_empty() {
                    out.unchanged += 1;
                    continue;
                }
                // Show the keys olo manages, before and after.
                let mut before = BTreeMap::new();
                for k in n.properties.keys().chain(removals.iter()) {
                    if let Some(v) = have.properties.get(k) {
                        before.insert(k.clone(), v.clone());
                    }
                }
                let adopted = !have.properties.contains_key(OWNERSHIP_PROPERTY);
                let reason = if adopted {
                    Some("exists without olo's marker: olo adopts it".to_string())
                } else {
                    drifted(&name, &hash, "changed")
                };
                out.changes.push(Change {
                    name: name.clone(),
                    action: Action::Update,
                    reason,
                    diff: text_diff(
                        &name,
                        properties_text(&before).as_bytes(),
                        properties_text(&n.properties).as_bytes(),
                    ),
                    hash,
                });
                out.ops.push(Op::Update {
                    id: n.id.clone(),
                    removals,
                    updates,
                });
            }
        }
    }

    // Declared tables, after the namespaces they live in.
    for t in &desired.tables {
        let name = t.id.resource();
        if trusted.contains(&name) {
            out.unchanged += 1;
            continue;
        }
        let current = match observed.tables.get(&t.id) {
            Some(Some(metadata)) => match tables::Current::from_metadata(metadata) {
                Some(c) => Some(c),
                None => {
                    out.changes.push(Change {
                        name,
                        action: Action::Keep,
                        hash: String::new(),
                        diff: None,
                        reason: Some(
                            "refused: the table's metadata could not be read (schemas, fields)"
                                .into(),
                        ),
                    });
                    continue;
                }
            },
            _ => None,
        };
        let (change, op) = tables::plan_table(t, current.as_ref());
        match change {
            Some(mut c) => {
                if op.is_some() {
                    c.hash = table_hash(t);
                }
                out.changes.push(c);
            }
            None => out.unchanged += 1,
        }
        if let Some(op) = op {
            out.ops.push(Op::Table(op));
        }
    }
    let wanted_tables: BTreeSet<String> = desired.tables.iter().map(|t| t.id.resource()).collect();
    for item in owned.iter().filter(|i| i.name.starts_with("table/")) {
        if !wanted_tables.contains(&item.name) {
            out.changes.push(Change {
                name: item.name.clone(),
                action: Action::Keep,
                hash: String::new(),
                diff: None,
                reason: Some("no longer declared; olo never drops tables (forgotten)".into()),
            });
            out.forget.push(item.name.clone());
        }
    }

    // Namespaces olo owns but no longer wants: children first.
    let mut gone: Vec<NamespaceId> = owned
        .iter()
        .filter_map(|i| parse_namespace_resource(&i.name))
        .filter(|id| !wanted.contains(id))
        .collect();
    gone.sort_by(|a, b| b.parts.len().cmp(&a.parts.len()).then_with(|| a.cmp(b)));
    let mut dropping: BTreeSet<NamespaceId> = BTreeSet::new();
    for id in gone {
        let name = id.resource();
        let Some(have) = observed.namespaces.get(&id) else {
            continue; // already gone; the inventory entry is dropped on apply
        };
        let kept_children: Vec<String> = have
            .children
            .iter()
            .filter(|c| !dropping.contains(*c))
            .map(|c| c.dotted())
            .collect();
        let reason = if !prune {
            Some("no longer in the repository; pruning is off".to_string())
        } else if have.properties.get(OWNERSHIP_PROPERTY).map(String::as_str) != Some("olo") {
            Some(format!(
                "not dropped: it has no `{OWNERSHIP_PROPERTY} = olo` property, so olo does not own it"
            ))
        } else if have.tables > 0 {
            Some(format!(
                "not dropped: it holds {} table{}; drop or move them first",
                have.tables,
                if have.tables == 1 { "" } else { "s" }
            ))
        } else if !kept_children.is_empty() {
            Some(format!(
                "not dropped: it holds namespaces olo keeps ({})",
                kept_children.join(", ")
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => out.changes.push(Change {
                name,
                action: Action::Keep,
                hash: String::new(),
                diff: None,
                reason: Some(reason),
            }),
            None => {
                out.changes.push(Change {
                    diff: full_diffs
                        .then(|| {
                            text_diff(&name, properties_text(&have.properties).as_bytes(), b"")
                        })
                        .flatten(),
                    name,
                    action: Action::Delete,
                    hash: String::new(),
                    reason: None,
                });
                dropping.insert(id.clone());
                out.ops.push(Op::Drop { id });
            }
        }
    }
    out
}

/// The lakehouse's errors: what failed, against which system, and whether a retry may help.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The system did not answer, or answered 5xx / 429: retried with backoff.
    #[error("{system} did not answer: {message}")]
    Unavailable { system: String, message: String },
    /// The system refused the request (4xx): fix the settings or the repository.
    #[error("{system} refused {what}: {message}")]
    Refused {
        system: String,
        what: String,
        message: String,
    },
    /// Someone else changed it at the same time (a table commit's requirement failed): retried.
    #[error("{system}: {what} conflicted with another change: {message}")]
    Conflict {
        system: String,
        what: String,
        message: String,
    },
    /// Not supported by this target.
    #[error("{0}")]
    Unsupported(String),
}

impl LakeError {
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            LakeError::Unavailable { .. } | LakeError::Conflict { .. }
        )
    }
}

pub type LakeResult<T> = std::result::Result<T, LakeError>;

/// An Iceberg catalog's namespaces. Implementations: [`rest::RestCatalog`],
/// [`sql::SqlCatalog`].
#[async_trait::async_trait]
pub trait IcebergCatalog: Send + Sync {
    /// What it is, for messages: "Iceberg REST catalog at http://…".
    fn describe(&self) -> String;
    /// The namespace's properties; `None` when it does not exist.
    async fn load_namespace(
        &self,
        id: &NamespaceId,
    ) -> LakeResult<Option<BTreeMap<String, String>>>;
    /// Tables and views directly in the namespace.
    async fn count_tables(&self, id: &NamespaceId) -> LakeResult<usize>;
    /// Namespaces directly under it.
    async fn children(&self, id: &NamespaceId) -> LakeResult<Vec<NamespaceId>>;
    /// Creates it; an existing namespace is not an error (its properties are then updated).
    async fn create_namespace(
        &self,
        id: &NamespaceId,
        properties: &BTreeMap<String, String>,
    ) -> LakeResult<()>;
    /// Creates each, in order (parents before children), as [`IcebergCatalog::create_namespace`]
    /// does; one at a time unless the catalog can do better (the SQL catalog writes them in one
    /// transaction). After an error, those before the failing one may exist.
    async fn create_namespaces(
        &self,
        namespaces: &[(&NamespaceId, &BTreeMap<String, String>)],
    ) -> LakeResult<()> {
        for (id, properties) in namespaces {
            self.create_namespace(id, properties).await?;
        }
        Ok(())
    }
    async fn update_properties(
        &self,
        id: &NamespaceId,
        removals: &[String],
        updates: &BTreeMap<String, String>,
    ) -> LakeResult<()>;
    /// Drops it; a missing namespace is not an error.
    async fn drop_namespace(&self, id: &NamespaceId) -> LakeResult<()>;
    /// The table's current metadata (TableMetadata JSON); `None` when it does not exist.
    async fn load_table(&self, id: &tables::TableId) -> LakeResult<Option<serde_json::Value>>;
    /// Creates it from a `CreateTableRequest`; an existing table is not an error.
    async fn create_table(
        &self,
        id: &tables::TableId,
        request: &serde_json::Value,
    ) -> LakeResult<()>;
    /// Commits updates under requirements (`CommitTableRequest`).
    async fn commit_table(
        &self,
        id: &tables::TableId,
        requirements: &[serde_json::Value],
        updates: &[serde_json::Value],
    ) -> LakeResult<()>;
}

/// Warehouse locations. Implementation: [`warehouse::Warehouses`] (local folders and S3).
#[async_trait::async_trait]
pub trait Warehouse: Send + Sync {
    /// Whether olo can bootstrap this kind of location (`file://`, `s3://`).
    fn bootstraps(&self, location: &str) -> bool;
    async fn exists(&self, location: &str) -> LakeResult<bool>;
    /// Makes the location exist (bucket, marker object, folder); idempotent.
    async fn ensure(&self, location: &str, workspace: &str) -> LakeResult<()>;
    /// A file's bytes (`file://…` or `s3://bucket/key`); `None` when it does not exist.
    async fn read(&self, url: &str) -> LakeResult<Option<Vec<u8>>>;
    /// Writes a file whole (metadata files of the SQL catalog's tables).
    async fn write(&self, url: &str, bytes: &[u8]) -> LakeResult<()>;
}

#[cfg(test)]
mod tests;
