//! olo's names for lineage nodes: the declared datasets and edges of a catalog, and the mapping of
//! observed (OpenLineage) names onto them.

use std::collections::{HashMap, HashSet};

use super::NodeRef;
use crate::catalog::Catalog;
use crate::openlineage::DatasetRef;

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
#[derive(Debug, Default, Clone)]
pub struct Resolver {
    /// DAG id → (workspace, job).
    dag_ids: HashMap<String, (String, String)>,
    /// Workspace → its Iceberg namespaces.
    namespaces: HashMap<String, HashSet<String>>,
    /// Trino catalog → workspace (`None` when two workspaces share it).
    catalogs: HashMap<String, Option<String>>,
    /// Warehouse location (no trailing `/`) → workspace.
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
            r.catalogs
                .entry(ws.catalog.clone())
                .and_modify(|w| *w = None)
                .or_insert_with(|| Some(ws.name.clone()));
            r.warehouses.push((
                ws.warehouse.trim_end_matches('/').to_string(),
                ws.name.clone(),
            ));
        }
        r
    }

    /// An observed job: `<dag_id>` or `<dag_id>.<task or action>` of an olo job becomes that job
    /// (whatever the namespace: Airflow's OpenLineage namespace is set per deployment).
    pub fn job(&self, namespace: &str, name: &str) -> NodeRef {
        let dag_id = name.split('.').next().unwrap_or(name);
        match self.dag_ids.get(dag_id) {
            Some((ws, job)) => NodeRef::job(ws, job),
            None => NodeRef::job(namespace, name),
        }
    }

    /// An observed dataset: olo's table when its namespace is a workspace (`sales` +
    /// `bronze.orders`), its name is `<catalog>.<namespace>.<table>` of a workspace's Trino catalog
    /// (how Trino and SQL parsers name tables), it lies under a workspace's warehouse
    /// (`<warehouse>/<namespace>/<table>`), or a `symlinks` identifier says one of those.
    pub fn dataset(&self, d: &DatasetRef) -> NodeRef {
        std::iter::once((d.namespace.as_str(), d.name.as_str()))
            .chain(d.symlinks.iter().map(|(ns, n)| (ns.as_str(), n.as_str())))
            .find_map(|(ns, name)| self.table(ns, name))
            .unwrap_or_else(|| NodeRef::dataset(&d.namespace, &d.name))
    }

    fn table(&self, namespace: &str, name: &str) -> Option<NodeRef> {
        let owns = |ws: &str, ns: &str| self.namespaces.get(ws).is_some_and(|n| n.contains(ns));
        let parts: Vec<&str> = name.split('.').collect();
        if let [ns, table] = parts.as_slice() {
            if owns(namespace, ns) {
                return Some(NodeRef::dataset(namespace, &format!("{ns}.{table}")));
            }
        }
        if let [catalog, ns, table] = parts.as_slice() {
            if let Some(Some(ws)) = self.catalogs.get(*catalog) {
                if owns(ws, ns) {
                    return Some(NodeRef::dataset(ws, &format!("{ns}.{table}")));
                }
            }
        }
        // A path under a warehouse: namespace `s3://bucket`, name `warehouse/sales/ns/table`, or
        // the whole location in one of them.
        let location = format!(
            "{}/{}",
            namespace.trim_end_matches('/'),
            name.trim_start_matches('/')
        );
        for (warehouse, ws) in &self.warehouses {
            let rest = location
                .strip_prefix(warehouse.as_str())
                .and_then(|r| r.strip_prefix('/'));
            if let Some([ns, table]) = rest.map(|r| r.split('/').collect::<Vec<_>>()).as_deref() {
                if owns(ws, ns) && !table.is_empty() {
                    return Some(NodeRef::dataset(ws, &format!("{ns}.{table}")));
                }
            }
        }
        None
    }
}
