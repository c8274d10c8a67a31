//! olo's names for lineage nodes: the declared datasets and edges of a catalog, and the mapping of
//! observed (OpenLineage) names onto them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};

use super::NodeRef;
use crate::catalog::Catalog;
use crate::openlineage::{DatasetRef, RunEvent};

/// A dataset of the spec (`ns.table` of the job's workspace, or `ws.ns.table`) as a node.
pub fn declared_dataset(workspace: &str, dataset: &str) -> NodeRef {
    let (namespace, name) = olo_schema::dataset::lineage_name(workspace, dataset);
    NodeRef::dataset(&namespace, &name)
}

/// The declared edges of a catalog: `(from, to)`, dataset → job for inputs, job → dataset for
/// outputs.
pub fn declared_edges(catalog: &Catalog) -> Vec<(NodeRef, NodeRef)> {
    let mut out = Vec::new();
    for ws in &catalog.workspaces {
        for job in &ws.jobs {
            let node = NodeRef::job(&ws.name, &job.name);
            let mut seen = HashSet::new();
            for task in &job.tasks {
                for input in &task.inputs {
                    let d = declared_dataset(&ws.name, input);
                    if seen.insert((d.clone(), false)) {
                        out.push((d, node.clone()));
                    }
                }
                for output in &task.outputs {
                    let d = declared_dataset(&ws.name, output);
                    if seen.insert((d.clone(), true)) {
                        out.push((node.clone(), d));
                    }
                }
            }
        }
    }
    out
}

/// Maps the jobs and datasets of OpenLineage events onto olo's names.
///
/// The names engines give olo's tables (the workspace `sales` owns namespace `sales.silver` of
/// catalog `lake`, table `orders`):
///
/// | who | namespace | name |
/// |---|---|---|
/// | olo's DAGs (declared inlets/outlets) | `sales` | `silver.orders` |
/// | Trino's event listener, dbt-ol (trino adapter), Airflow's SQL parser | `trino://host:port` | `lake.sales.silver.orders` (catalog, workspace, namespace, table) |
/// | openlineage-spark with Iceberg | `s3://lakehouse` (or `s3a://`) | `sales/silver/orders` (the table's location) |
/// | its `symlinks` facet | the REST catalog's URI | `sales.silver.orders` (the Iceberg identifier) |
#[derive(Debug, Default, Clone)]
pub struct Resolver {
    /// DAG id → (workspace, job).
    dag_ids: HashMap<String, (String, String)>,
    /// Workspace → its Iceberg namespaces.
    namespaces: HashMap<String, HashSet<String>>,
    /// Workspace → its Iceberg catalog.
    catalog_of: HashMap<String, String>,
    /// Trino catalog → workspace (`None` when two workspaces share it).
    catalogs: HashMap<String, Option<String>>,
    /// Warehouse location (no trailing `/`, `s3a://` read as `s3://`) → workspace.
    warehouses: Vec<(String, String)>,
}

impl Resolver {
    pub fn new(catalog: &Catalog) -> Resolver {
        let mut r = Resolver::default();
        for ws in &catalog.workspaces {
            for job in &ws.jobs {
                r.dag_ids
                    .insert(job.dag_id.clone(), (ws.name.clone(), job.name.clone()));
            }
            r.namespaces
                .insert(ws.name.clone(), ws.namespaces.iter().cloned().collect());
            r.catalog_of.insert(ws.name.clone(), ws.catalog.clone());
            r.catalogs
                .entry(ws.catalog.clone())
                .and_modify(|w| *w = None)
                .or_insert_with(|| Some(ws.name.clone()));
            r.warehouses.push((
                object_store_uri(&ws.warehouse)
                    .trim_end_matches('/')
                    .to_string(),
                ws.name.clone(),
            ));
        }
        r
    }

    /// An observed job: `<dag_id>` or `<dag_id>.<task or action>` of an olo job becomes that job
    /// (whatever the namespace: Airflow's OpenLineage namespace is set per deployment).
    pub fn job(&self, namespace: &str, name: &str) -> NodeRef {
        self.olo_job(name)
            .unwrap_or_else(|| NodeRef::job(namespace, name))
    }

    /// The olo job an event belongs to, if any: its own name when that is an olo job's, else the
    /// first of its `parent` run facet's jobs that is, else a parent run already attributed to an
    /// olo job (`runs`). openlineage-spark names its jobs after the app name, snake-cased
    /// (`sales_orders_daily.<action>` for DAG `sales__orders_daily`), and `dbt-ol` after the dbt
    /// project; Airflow's provider hands both the task as their parent (`<dag_id>.<task_id>`).
    /// dbt-ol's model events name only the `dbt-run-<project>` run as parent, which `runs` knows
    /// once that run's own event has been attributed.
    pub fn olo_job_of(&self, event: &RunEvent, runs: &RunIndex) -> Option<NodeRef> {
        std::iter::once(event.job_name.as_str())
            .chain(event.parents.iter().map(|p| p.name.as_str()))
            .find_map(|name| self.olo_job(name))
            .or_else(|| {
                event
                    .parents
                    .iter()
                    .filter_map(|p| p.run_id.as_deref())
                    .find_map(|id| runs.get(id).cloned())
            })
    }

    fn olo_job(&self, name: &str) -> Option<NodeRef> {
        let dag_id = name.split('.').next().unwrap_or(name);
        self.dag_ids
            .get(dag_id)
            .map(|(ws, job)| NodeRef::job(ws, job))
    }

    /// An observed dataset: olo's table when any name of it (the dataset's own, then each
    /// `symlinks` identifier) is one of the names in the table above, with a namespace the
    /// workspace declares; anything else keeps the name it was sent with.
    pub fn dataset(&self, d: &DatasetRef) -> NodeRef {
        std::iter::once((d.namespace.as_str(), d.name.as_str()))
            .chain(d.symlinks.iter().map(|(ns, n)| (ns.as_str(), n.as_str())))
            .find_map(|(ns, name)| self.table(ns, name))
            .unwrap_or_else(|| NodeRef::dataset(&d.namespace, &d.name))
    }

    fn owns(&self, ws: &str, ns: &str) -> bool {
        self.namespaces.get(ws).is_some_and(|n| n.contains(ns))
    }

    fn table(&self, namespace: &str, name: &str) -> Option<NodeRef> {
        let found = |ws: &str, ns: &str, table: &str| {
            (self.owns(ws, ns) && !table.is_empty())
                .then(|| NodeRef::dataset(ws, &format!("{ns}.{table}")))
        };
        // SQL parsers may keep the quotes of `lake."sales.silver".orders`; Spark quotes with `.
        let unquoted: String = name.chars().filter(|c| !matches!(c, '"' | '`')).collect();
        let by_name = match unquoted.split('.').collect::<Vec<_>>().as_slice() {
            // olo's own name: namespace = the workspace.
            [ns, table] => found(namespace, ns, table),
            // Trino and dbt: the catalog, then the two-level Iceberg namespace.
            [catalog, ws, ns, table] => {
                if self.catalog_of.get(*ws).map(String::as_str) == Some(*catalog) {
                    found(ws, ns, table)
                } else {
                    None
                }
            }
            // An Iceberg identifier (`sales.silver.orders`, Spark's symlinks), else a catalog
            // one workspace has to itself with a one-level namespace.
            [first, ns, table] => {
                found(first, ns, table).or_else(|| match self.catalogs.get(*first) {
                    Some(Some(ws)) => found(ws, ns, table),
                    _ => None,
                })
            }
            _ => None,
        };
        if by_name.is_some() {
            return by_name;
        }
        // A path under a warehouse: namespace `s3://bucket`, name `warehouse/sales/ns/table`, or
        // the whole location in one of them.
        let location = format!(
            "{}/{}",
            object_store_uri(namespace).trim_end_matches('/'),
            name.trim_start_matches('/')
        );
        let location = location.trim_end_matches('/');
        for (warehouse, ws) in &self.warehouses {
            let rest = location
                .strip_prefix(warehouse.as_str())
                .and_then(|r| r.strip_prefix('/'));
            if let Some([ns, table]) = rest.map(|r| r.split('/').collect::<Vec<_>>()).as_deref() {
                if let Some(node) = found(ws, ns, without_unique_suffix(table)) {
                    return Some(node);
                }
            }
        }
        None
    }
}

/// `s3a://` and `s3n://` (Hadoop's S3 file systems) name the same objects as `s3://`.
fn object_store_uri(uri: &str) -> Cow<'_, str> {
    for scheme in ["s3a://", "s3n://"] {
        if let Some(rest) = uri.strip_prefix(scheme) {
            return Cow::Owned(format!("s3://{rest}"));
        }
    }
    Cow::Borrowed(uri)
}

/// Trino's Iceberg connector puts a table at `<schema location>/<table>-<32 hex digits>`
/// (`iceberg.unique-table-location`, on by default): the table is the part before them.
fn without_unique_suffix(folder: &str) -> &str {
    match folder.rsplit_once('-') {
        Some((table, id)) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => table,
        _ => folder,
    }
}

/// The runs attributed to olo jobs, by run id, so that an event whose parent is such a run
/// reaches the same job. Bounded: past `cap` runs the oldest are forgotten (a parent run and its
/// children report within minutes of each other).
#[derive(Debug, Clone)]
pub struct RunIndex {
    jobs: HashMap<String, NodeRef>,
    order: VecDeque<String>,
    cap: usize,
}

impl Default for RunIndex {
    fn default() -> RunIndex {
        RunIndex::new(100_000)
    }
}

impl RunIndex {
    pub fn new(cap: usize) -> RunIndex {
        RunIndex {
            jobs: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub fn get(&self, run_id: &str) -> Option<&NodeRef> {
        self.jobs.get(run_id)
    }

    pub fn insert(&mut self, run_id: &str, job: NodeRef) {
        if self.jobs.insert(run_id.to_string(), job).is_none() {
            self.order.push_back(run_id.to_string());
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.jobs.remove(&old);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}
