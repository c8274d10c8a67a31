//! Lineage: which jobs read and write which datasets, declared in the config repository (task
//! `inputs`/`outputs`) and observed in OpenLineage events, as one graph. Pure.
//!
//! Nodes are named as Marquez names them: `job:<namespace>:<name>` and
//! `dataset:<namespace>:<name>`. olo's own jobs are `job:<workspace>:<job>` and its tables
//! `dataset:<workspace>:<namespace>.<table>` (the spec's `sales.bronze.orders` is
//! `dataset:sales:bronze.orders`). Observed jobs and datasets are mapped onto those names by
//! [`Resolver`] when they are olo's; anything else keeps the names its events gave it.
//!
//! Edges run from a dataset to the job that reads it, and from a job to the dataset it writes;
//! each edge says whether it is declared, observed, or both.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::Catalog;
use crate::openlineage::DatasetRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    Job,
    Dataset,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl NodeRef {
    pub fn job(namespace: &str, name: &str) -> NodeRef {
        NodeRef {
            kind: Kind::Job,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn dataset(namespace: &str, name: &str) -> NodeRef {
        NodeRef {
            kind: Kind::Dataset,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `job:<namespace>:<name>` or `dataset:<namespace>:<name>`.
    pub fn id(&self) -> String {
        let kind = match self.kind {
            Kind::Job => "job",
            Kind::Dataset => "dataset",
        };
        format!("{kind}:{}:{}", self.namespace, self.name)
    }
}

/// Edge flags.
pub const DECLARED: u8 = 1;
pub const OBSERVED: u8 = 2;

/// The names of an edge's flags.
pub fn sources(flags: u8) -> Vec<&'static str> {
    let mut out = Vec::new();
    if flags & DECLARED != 0 {
        out.push("declared");
    }
    if flags & OBSERVED != 0 {
        out.push("observed");
    }
    out
}

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

/// The lineage graph.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    nodes: Vec<NodeRef>,
    index: HashMap<NodeRef, u32>,
    /// (from, to) → flags.
    edges: HashMap<(u32, u32), u8>,
    out: Vec<Vec<u32>>,
    inn: Vec<Vec<u32>>,
    /// The edges set by the last [`Graph::set_declared`].
    declared: Vec<(u32, u32)>,
}

/// Part of the graph around a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Subgraph {
    pub start: usize,
    pub nodes: Vec<NodeRef>,
    /// Signed distance from the start node: negative upstream, positive downstream.
    pub layer: Vec<i32>,
    /// (from, to, flags), indexes into `nodes`.
    pub edges: Vec<(usize, usize, u8)>,
    /// The walk stopped at the node limit.
    pub truncated: bool,
}

/// What a job declares and what its events show, where they differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mismatches {
    /// Whether any observed edge touches the job (if none, it has not reported lineage yet).
    pub observed_any: bool,
    pub declared_not_observed: Vec<DatasetEdge>,
    pub observed_not_declared: Vec<DatasetEdge>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DatasetEdge {
    /// `in` (the job reads it) or `out` (the job writes it).
    pub direction: &'static str,
    pub dataset: String,
}

/// What a change to a job can touch downstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Impact {
    pub writes: Vec<String>,
    pub downstream_jobs: Vec<String>,
    pub downstream_datasets: Vec<String>,
}

impl Graph {
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Edges with at least one flag.
    pub fn edge_count(&self) -> usize {
        self.edges.values().filter(|f| **f != 0).count()
    }

    fn intern(&mut self, node: &NodeRef) -> u32 {
        if let Some(i) = self.index.get(node) {
            return *i;
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(node.clone());
        self.index.insert(node.clone(), i);
        self.out.push(Vec::new());
        self.inn.push(Vec::new());
        i
    }

    fn add_ids(&mut self, from: u32, to: u32, flag: u8) {
        let flags = self.edges.entry((from, to)).or_insert(0);
        if *flags == 0 && !self.out[from as usize].contains(&to) {
            self.out[from as usize].push(to);
            self.inn[to as usize].push(from);
        }
        *flags |= flag;
    }

    /// Adds an edge (or a flag to it).
    pub fn add(&mut self, from: &NodeRef, to: &NodeRef, flag: u8) {
        let (f, t) = (self.intern(from), self.intern(to));
        self.add_ids(f, t, flag);
    }

    /// Replaces the declared edges (after a new commit went live).
    pub fn set_declared(&mut self, edges: &[(NodeRef, NodeRef)]) {
        for key in std::mem::take(&mut self.declared) {
            if let Some(flags) = self.edges.get_mut(&key) {
                *flags &= !DECLARED;
            }
        }
        for (from, to) in edges {
            let (f, t) = (self.intern(from), self.intern(to));
            self.add_ids(f, t, DECLARED);
            self.declared.push((f, t));
        }
    }

    fn flags(&self, from: u32, to: u32) -> u8 {
        self.edges.get(&(from, to)).copied().unwrap_or(0)
    }

    fn live_out(&self, n: u32) -> impl Iterator<Item = u32> + '_ {
        self.out[n as usize]
            .iter()
            .copied()
            .filter(move |t| self.flags(n, *t) != 0)
    }

    fn live_in(&self, n: u32) -> impl Iterator<Item = u32> + '_ {
        self.inn[n as usize]
            .iter()
            .copied()
            .filter(move |f| self.flags(*f, n) != 0)
    }

    pub fn contains(&self, node: &NodeRef) -> bool {
        self.index.get(node).is_some_and(|i| {
            self.live_out(*i).next().is_some() || self.live_in(*i).next().is_some()
        })
    }

    /// The node a Marquez node id names. Namespaces may hold `:` (`s3://bucket`,
    /// `trino://host:8080`), so every split is tried against the graph, the first known one wins.
    pub fn find(&self, id: &str) -> Option<NodeRef> {
        let (kind, rest) = if let Some(rest) = id.strip_prefix("job:") {
            (Kind::Job, rest)
        } else if let Some(rest) = id.strip_prefix("dataset:") {
            (Kind::Dataset, rest)
        } else {
            return None;
        };
        rest.match_indices(':')
            .map(|(i, _)| NodeRef {
                kind,
                namespace: rest[..i].to_string(),
                name: rest[i + 1..].to_string(),
            })
            .find(|n| self.contains(n))
    }

    /// The nodes upstream and downstream of `start`, up to `depth` edges away in each direction,
    /// and the edges between them; at most `max_nodes` nodes (nearest first).
    pub fn walk(&self, start: &NodeRef, depth: usize, max_nodes: usize) -> Option<Subgraph> {
        let s = *self.index.get(start)?;
        let mut layer_of: HashMap<u32, i32> = HashMap::from([(s, 0)]);
        let mut order = vec![s];
        let mut truncated = false;
        // Breadth first, both directions at once, so the nearest nodes are kept at the limit.
        let mut queue = VecDeque::from([(s, 0i32, 1i32), (s, 0, -1)]);
        while let Some((n, layer, dir)) = queue.pop_front() {
            if layer.unsigned_abs() as usize >= depth {
                continue;
            }
            let mut next: Vec<u32> = if dir > 0 {
                self.live_out(n).collect()
            } else {
                self.live_in(n).collect()
            };
            // By name, so that the answer does not depend on the order edges arrived in.
            next.sort_unstable_by(|a, b| self.nodes[*a as usize].cmp(&self.nodes[*b as usize]));
            for m in next {
                if layer_of.contains_key(&m) {
                    continue;
                }
                if order.len() >= max_nodes {
                    truncated = true;
                    break;
                }
                layer_of.insert(m, layer + dir);
                order.push(m);
                queue.push_back((m, layer + dir, dir));
            }
        }
        let pos: HashMap<u32, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut edges = Vec::new();
        for (i, n) in order.iter().enumerate() {
            for t in self.live_out(*n) {
                if let Some(j) = pos.get(&t) {
                    edges.push((i, *j, self.flags(*n, t)));
                }
            }
        }
        edges.sort_unstable();
        Some(Subgraph {
            start: 0,
            nodes: order
                .iter()
                .map(|n| self.nodes[*n as usize].clone())
                .collect(),
            layer: order.iter().map(|n| layer_of[n]).collect(),
            edges,
            truncated,
        })
    }

    /// Where a job's declared and observed datasets differ.
    pub fn mismatches(&self, job: &NodeRef) -> Mismatches {
        let mut m = Mismatches::default();
        let Some(j) = self.index.get(job).copied() else {
            return m;
        };
        let mut sides: Vec<(&'static str, u32, u8)> = self
            .live_in(j)
            .map(|d| ("in", d, self.flags(d, j)))
            .collect();
        sides.extend(self.live_out(j).map(|d| ("out", d, self.flags(j, d))));
        for (direction, d, flags) in sides {
            let edge = DatasetEdge {
                direction,
                dataset: self.nodes[d as usize].id(),
            };
            if flags & OBSERVED != 0 {
                m.observed_any = true;
            }
            match (flags & DECLARED != 0, flags & OBSERVED != 0) {
                (true, false) => m.declared_not_observed.push(edge),
                (false, true) => m.observed_not_declared.push(edge),
                _ => {}
            }
        }
        m.declared_not_observed.sort();
        m.observed_not_declared.sort();
        m
    }

    /// The datasets a job writes and everything downstream of them, up to `depth` jobs away.
    pub fn impact(&self, job: &NodeRef, depth: usize) -> Impact {
        let mut impact = Impact::default();
        let Some(j) = self.index.get(job).copied() else {
            return impact;
        };
        let writes: BTreeSet<u32> = self.live_out(j).collect();
        impact.writes = sorted_ids(self, &writes);
        let (mut jobs, mut datasets) = (BTreeSet::new(), BTreeSet::new());
        let mut frontier: Vec<u32> = writes.iter().copied().collect();
        let mut seen: HashSet<u32> = writes.iter().copied().chain([j]).collect();
        for _ in 0..depth {
            let mut next = Vec::new();
            for d in frontier {
                for reader in self.live_out(d) {
                    if !seen.insert(reader) {
                        continue;
                    }
                    jobs.insert(reader);
                    for written in self.live_out(reader) {
                        if seen.insert(written) {
                            datasets.insert(written);
                            next.push(written);
                        }
                    }
                }
            }
            frontier = next;
        }
        impact.downstream_jobs = sorted_ids(self, &jobs);
        impact.downstream_datasets = sorted_ids(self, &datasets);
        impact
    }
}

fn sorted_ids(g: &Graph, set: &BTreeSet<u32>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|n| g.nodes[*n as usize].id()).collect();
    v.sort();
    v
}

/// Picks one end of an edge `(from, to, flags)`, or none.
type EdgeEnd<'a> = &'a dyn Fn(&(usize, usize, u8)) -> Option<usize>;

/// The lineage impact of one job a plan changes.
#[derive(Debug, Clone, PartialEq)]
pub struct JobImpact {
    /// `workspace/job`
    pub job: String,
    pub action: crate::plan::Action,
    pub impact: Impact,
}

/// How deep a pull request's impact looks downstream (in jobs).
pub const IMPACT_DEPTH: usize = 5;

/// The impact of each job whose DAG file `plan` creates, changes or deletes: on `graph` with the
/// declared edges of the proposed commit (`proposed`) in place of the live ones, so a pull request
/// shows what its own inputs and outputs would touch. Jobs a plan deletes are found in `live`.
pub fn plan_impact(
    plan: &crate::plan::Plan,
    proposed: &Catalog,
    live: Option<&Catalog>,
    graph: &Graph,
) -> Vec<JobImpact> {
    use crate::plan::Action;
    let changed: Vec<(&str, Action)> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Delete))
        .filter_map(|c| {
            let file = c.name.strip_prefix("dags/")?.strip_suffix(".py")?;
            (!file.contains('/')).then_some((file, c.action))
        })
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let mut g = graph.clone();
    g.set_declared(&declared_edges(proposed));
    changed
        .into_iter()
        .filter_map(|(dag_id, action)| {
            let job = proposed
                .job_by_dag_id(dag_id)
                .or_else(|| live.and_then(|l| l.job_by_dag_id(dag_id)))?;
            Some(JobImpact {
                job: format!("{}/{}", job.workspace, job.name),
                action,
                impact: g.impact(&NodeRef::job(&job.workspace, &job.name), IMPACT_DEPTH),
            })
        })
        .collect()
}

/// The subgraph in Marquez's `LineageGraph` shape (`{"graph": [GraphNode...]}`), with olo's
/// additions: each edge's `sources` (declared, observed) and the `truncated` flag.
pub fn marquez(sub: &Subgraph) -> Value {
    let ids: Vec<String> = sub.nodes.iter().map(NodeRef::id).collect();
    let mut ins: Vec<Vec<Value>> = vec![Vec::new(); sub.nodes.len()];
    let mut outs: Vec<Vec<Value>> = vec![Vec::new(); sub.nodes.len()];
    for (f, t, flags) in &sub.edges {
        let edge = json!({ "origin": ids[*f], "destination": ids[*t], "sources": sources(*flags) });
        outs[*f].push(edge.clone());
        ins[*t].push(edge);
    }
    let graph: Vec<Value> = sub
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let id = json!({ "namespace": n.namespace, "name": n.name });
            let data = match n.kind {
                Kind::Dataset => json!({
                    "id": id,
                    "type": "DB_TABLE",
                    "name": n.name,
                    "physicalName": n.name,
                    "namespace": n.namespace,
                    "sourceName": n.namespace,
                    "fields": [],
                    "tags": [],
                    "facets": {},
                }),
                Kind::Job => {
                    let side = |pick: EdgeEnd<'_>| -> Vec<Value> {
                        sub.edges
                            .iter()
                            .filter_map(pick)
                            .map(|d| &sub.nodes[d])
                            .filter(|d| d.kind == Kind::Dataset)
                            .map(|d| json!({ "namespace": d.namespace, "name": d.name }))
                            .collect()
                    };
                    let inputs = side(&|(f, t, _)| (*t == i).then_some(*f));
                    let outputs = side(&|(f, t, _)| (*f == i).then_some(*t));
                    json!({
                        "id": id,
                        "type": "BATCH",
                        "name": n.name,
                        "simpleName": n.name.rsplit('.').next().unwrap_or(&n.name),
                        "namespace": n.namespace,
                        "inputs": inputs,
                        "outputs": outputs,
                        "facets": {},
                    })
                }
            };
            json!({
                "id": ids[i],
                "type": n.kind,
                "data": data,
                "inEdges": ins[i],
                "outEdges": outs[i],
            })
        })
        .collect();
    json!({ "graph": graph, "truncated": sub.truncated })
}

/// Where each node of a subgraph is drawn: columns by layer (upstream left, downstream right),
/// rows ordered within a column by the mean row of their neighbours in the column before (two
/// sweeps), so that edges cross less.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub nodes: Vec<Placed>,
    pub edges: Vec<Drawn>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placed {
    pub id: String,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub x: u32,
    pub y: u32,
    pub start: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drawn {
    /// An SVG path (`M … C …`).
    pub path: String,
    /// `declared`, `observed` or `both`.
    pub class: &'static str,
}

pub const NODE_W: u32 = 220;
pub const NODE_H: u32 = 44;
const COL_GAP: u32 = 90;
const ROW_GAP: u32 = 14;
const MARGIN: u32 = 10;

pub fn layout(sub: &Subgraph) -> Layout {
    let n = sub.nodes.len();
    let (min, max) = (
        sub.layer.iter().copied().min().unwrap_or(0),
        sub.layer.iter().copied().max().unwrap_or(0),
    );
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); (max - min + 1) as usize];
    for i in 0..n {
        columns[(sub.layer[i] - min) as usize].push(i);
    }
    let mut row = vec![0f64; n];
    for col in &columns {
        for (r, i) in col.iter().enumerate() {
            row[*i] = r as f64;
        }
    }
    let neighbours: Vec<Vec<usize>> = {
        let mut v = vec![Vec::new(); n];
        for (f, t, _) in &sub.edges {
            v[*f].push(*t);
            v[*t].push(*f);
        }
        v
    };
    for _ in 0..2 {
        for slot in columns.iter_mut() {
            let mut col = std::mem::take(slot);
            let key = |i: &usize| {
                let near: Vec<f64> = neighbours[*i]
                    .iter()
                    .filter(|j| sub.layer[**j] != sub.layer[*i])
                    .map(|j| row[*j])
                    .collect();
                if near.is_empty() {
                    row[*i]
                } else {
                    near.iter().sum::<f64>() / near.len() as f64
                }
            };
            col.sort_by(|a, b| {
                key(a)
                    .partial_cmp(&key(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| sub.nodes[*a].cmp(&sub.nodes[*b]))
            });
            for (r, i) in col.iter().enumerate() {
                row[*i] = r as f64;
            }
            *slot = col;
        }
    }
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let height = MARGIN * 2 + tallest * (NODE_H + ROW_GAP);
    let mut xy = vec![(0u32, 0u32); n];
    for (c, col) in columns.iter().enumerate() {
        // Columns are centred vertically.
        let offset = (tallest - col.len() as u32) * (NODE_H + ROW_GAP) / 2;
        for (r, i) in col.iter().enumerate() {
            xy[*i] = (
                MARGIN + c as u32 * (NODE_W + COL_GAP),
                MARGIN + offset + r as u32 * (NODE_H + ROW_GAP),
            );
        }
    }
    let nodes = sub
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| Placed {
            id: node.id(),
            kind: node.kind,
            namespace: node.namespace.clone(),
            name: node.name.clone(),
            x: xy[i].0,
            y: xy[i].1,
            start: i == sub.start,
        })
        .collect();
    let edges = sub
        .edges
        .iter()
        .map(|(f, t, flags)| {
            let ((fx, fy), (tx, ty)) = (xy[*f], xy[*t]);
            let (fx, fy, tx, ty) = (fx as i64, fy as i64, tx as i64, ty as i64);
            let (w, mid) = (NODE_W as i64, NODE_H as i64 / 2);
            let path = if tx > fx {
                // Left to right: from the right side of one box to the left side of the next.
                let (x1, y1, x2, y2) = (fx + w, fy + mid, tx, ty + mid);
                let bend = (COL_GAP as i64).max((x2 - x1) / 2);
                format!(
                    "M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}",
                    x1 + bend,
                    x2 - bend
                )
            } else if tx < fx {
                // Right to left (a job reading what it writes): left side to right side, a little
                // below the middle so it does not cover the edge the other way.
                let (x1, y1, x2, y2) = (fx, fy + mid + 8, tx + w, ty + mid + 8);
                let bend = (COL_GAP as i64).max((x1 - x2) / 2);
                format!(
                    "M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}",
                    x1 - bend,
                    x2 + bend
                )
            } else {
                // Within one column: an arc on the right.
                let (x, y1, y2) = (fx + w, fy + mid, ty + mid);
                let out = x + COL_GAP as i64 / 2;
                format!("M{x},{y1} C{out},{y1} {out},{y2} {x},{y2}")
            };
            Drawn {
                path,
                class: match (flags & DECLARED != 0, flags & OBSERVED != 0) {
                    (true, true) => "both",
                    (false, true) => "observed",
                    _ => "declared",
                },
            }
        })
        .collect();
    Layout {
        width: MARGIN * 2 + columns.len() as u32 * (NODE_W + COL_GAP) - COL_GAP,
        height,
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{JobView, TaskView, WorkspaceView};
    use std::sync::Arc;

    fn job(ws: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Arc<JobView> {
        Arc::new(JobView {
            name: name.into(),
            workspace: ws.into(),
            dag_id: format!("{ws}__{name}"),
            path: format!("workspaces/{ws}/jobs/{name}.yaml"),
            description: None,
            schedule: None,
            start_date: None,
            end_date: None,
            paused: false,
            tags: vec![],
            params: vec![],
            tasks: vec![TaskView {
                id: "t".into(),
                kind: "bash".into(),
                depends_on: vec![],
                inputs: inputs.iter().map(|s| s.to_string()).collect(),
                outputs: outputs.iter().map(|s| s.to_string()).collect(),
                mlflow_experiment: None,
            }],
        })
    }

    fn workspace(name: &str, catalog: &str, jobs: Vec<Arc<JobView>>) -> WorkspaceView {
        WorkspaceView {
            name: name.into(),
            description: None,
            path: format!("workspaces/{name}/workspace.yaml"),
            owners: vec![],
            catalog: catalog.into(),
            warehouse: format!("s3://lake/{name}/"),
            namespaces: vec!["raw".into(), "gold".into()],
            roles: Default::default(),
            jobs,
        }
    }

    /// sales: ingest writes raw.orders; refine reads it and writes gold.revenue.
    /// marketing: report reads sales.gold.revenue and writes gold.campaigns.
    fn catalog() -> Catalog {
        Catalog {
            revision: Some("r".into()),
            workspaces: vec![
                workspace(
                    "marketing",
                    "mkt",
                    vec![job(
                        "marketing",
                        "report",
                        &["sales.gold.revenue"],
                        &["gold.campaigns"],
                    )],
                ),
                workspace(
                    "sales",
                    "lake",
                    vec![
                        job("sales", "ingest", &[], &["raw.orders"]),
                        job("sales", "refine", &["raw.orders"], &["gold.revenue"]),
                    ],
                ),
            ],
        }
    }

    fn graph() -> Graph {
        let mut g = Graph::default();
        g.set_declared(&declared_edges(&catalog()));
        g
    }

    #[test]
    fn declared_datasets_name_their_workspace() {
        assert_eq!(
            declared_dataset("marketing", "sales.gold.revenue").id(),
            "dataset:sales:gold.revenue"
        );
        assert_eq!(
            declared_dataset("sales", "raw.orders").id(),
            "dataset:sales:raw.orders"
        );
        let g = graph();
        assert_eq!((g.node_count(), g.edge_count()), (6, 5));
    }

    #[test]
    fn observed_names_map_onto_olo_jobs_and_tables() {
        let r = Resolver::new(&catalog());
        assert_eq!(
            r.job("default", "sales__refine.load").id(),
            "job:sales:refine"
        );
        assert_eq!(r.job("sales", "sales__refine").id(), "job:sales:refine");
        assert_eq!(
            r.job("spark", "other_app.write").id(),
            "job:spark:other_app.write"
        );
        let d = |ns: &str, name: &str| DatasetRef {
            namespace: ns.into(),
            name: name.into(),
            symlinks: vec![],
        };
        let cases = [
            (d("sales", "raw.orders"), "dataset:sales:raw.orders"),
            (
                d("trino://trino:8080", "lake.gold.revenue"),
                "dataset:sales:gold.revenue",
            ),
            (
                d("s3://lake", "sales/gold/revenue"),
                "dataset:sales:gold.revenue",
            ),
            (
                d("s3://lake/sales", "raw/orders"),
                "dataset:sales:raw.orders",
            ),
            // Not a namespace of the workspace, an unknown catalog: kept as sent.
            (d("sales", "secret.orders"), "dataset:sales:secret.orders"),
            (
                d("trino://t:8080", "other.gold.revenue"),
                "dataset:trino://t:8080:other.gold.revenue",
            ),
            (
                d("postgres://db:5432", "public.users"),
                "dataset:postgres://db:5432:public.users",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r.dataset(&input).id(), want, "{input:?}");
        }
        let linked = DatasetRef {
            namespace: "s3://elsewhere".into(),
            name: "x/y/z".into(),
            symlinks: vec![("http://catalog:8181".into(), "lake.raw.orders".into())],
        };
        assert_eq!(r.dataset(&linked).id(), "dataset:sales:raw.orders");
    }

    #[test]
    fn a_walk_goes_upstream_and_downstream_to_the_depth() {
        let g = graph();
        let refine = NodeRef::job("sales", "refine");
        let sub = g.walk(&refine, 2, 1000).unwrap();
        let got: Vec<(String, i32)> = sub
            .nodes
            .iter()
            .zip(&sub.layer)
            .map(|(n, l)| (n.id(), *l))
            .collect();
        assert_eq!(
            got,
            vec![
                ("job:sales:refine".into(), 0),
                ("dataset:sales:gold.revenue".into(), 1),
                ("dataset:sales:raw.orders".into(), -1),
                ("job:marketing:report".into(), 2),
                ("job:sales:ingest".into(), -2),
            ]
        );
        assert_eq!(sub.edges.len(), 4);
        assert!(!sub.truncated);
        let near = g.walk(&refine, 1, 1000).unwrap();
        assert_eq!(near.nodes.len(), 3);
        let capped = g.walk(&refine, 10, 2).unwrap();
        assert_eq!((capped.nodes.len(), capped.truncated), (2, true));
        assert!(g.walk(&NodeRef::job("x", "y"), 1, 10).is_none());
    }

    #[test]
    fn node_ids_with_colons_in_the_namespace_are_found() {
        let mut g = graph();
        let trino = NodeRef::dataset("trino://t:8080", "other.a.b");
        g.add(&trino, &NodeRef::job("sales", "refine"), OBSERVED);
        assert_eq!(g.find("dataset:trino://t:8080:other.a.b"), Some(trino));
        assert_eq!(
            g.find("dataset:sales:raw.orders"),
            Some(NodeRef::dataset("sales", "raw.orders"))
        );
        assert_eq!(g.find("job:sales:nope"), None);
        assert_eq!(g.find("table:sales:raw.orders"), None);
    }

    #[test]
    fn mismatches_are_reported_both_ways() {
        let mut g = graph();
        let refine = NodeRef::job("sales", "refine");
        assert_eq!(
            g.mismatches(&refine),
            Mismatches {
                observed_any: false,
                declared_not_observed: vec![
                    DatasetEdge {
                        direction: "in",
                        dataset: "dataset:sales:raw.orders".into()
                    },
                    DatasetEdge {
                        direction: "out",
                        dataset: "dataset:sales:gold.revenue".into()
                    },
                ],
                observed_not_declared: vec![],
            }
        );
        g.add(&NodeRef::dataset("sales", "raw.orders"), &refine, OBSERVED);
        g.add(
            &refine,
            &NodeRef::dataset("sales", "gold.refunds"),
            OBSERVED,
        );
        let m = g.mismatches(&refine);
        assert!(m.observed_any);
        assert_eq!(
            m.declared_not_observed,
            vec![DatasetEdge {
                direction: "out",
                dataset: "dataset:sales:gold.revenue".into()
            }]
        );
        assert_eq!(
            m.observed_not_declared,
            vec![DatasetEdge {
                direction: "out",
                dataset: "dataset:sales:gold.refunds".into()
            }]
        );
    }

    #[test]
    fn a_new_commit_replaces_declared_edges_and_keeps_observed_ones() {
        let mut g = graph();
        let ingest = NodeRef::job("sales", "ingest");
        let orders = NodeRef::dataset("sales", "raw.orders");
        g.add(&ingest, &orders, OBSERVED);
        // The next commit declares nothing.
        g.set_declared(&[]);
        assert_eq!(g.edge_count(), 1);
        let sub = g.walk(&ingest, 5, 100).unwrap();
        assert_eq!(sub.edges, vec![(0, 1, OBSERVED)]);
        g.set_declared(&declared_edges(&catalog()));
        assert_eq!(g.edge_count(), 5);
        let sub = g.walk(&ingest, 1, 100).unwrap();
        assert_eq!(sub.edges, vec![(0, 1, DECLARED | OBSERVED)]);
    }

    #[test]
    fn impact_follows_what_a_job_writes_downstream() {
        let g = graph();
        let i = g.impact(&NodeRef::job("sales", "ingest"), 5);
        assert_eq!(i.writes, vec!["dataset:sales:raw.orders"]);
        assert_eq!(
            i.downstream_jobs,
            vec!["job:marketing:report", "job:sales:refine"]
        );
        assert_eq!(
            i.downstream_datasets,
            vec![
                "dataset:marketing:gold.campaigns",
                "dataset:sales:gold.revenue"
            ]
        );
        let shallow = g.impact(&NodeRef::job("sales", "ingest"), 1);
        assert_eq!(shallow.downstream_jobs, vec!["job:sales:refine"]);
        assert_eq!(g.impact(&NodeRef::job("x", "y"), 3), Impact::default());
    }

    #[test]
    fn the_marquez_shape_has_nodes_with_their_edges() {
        let g = graph();
        let sub = g.walk(&NodeRef::job("sales", "refine"), 1, 100).unwrap();
        let v = marquez(&sub);
        let nodes = v["graph"].as_array().unwrap();
        assert_eq!(nodes.len(), 3);
        let refine = &nodes[0];
        assert_eq!(refine["id"], "job:sales:refine");
        assert_eq!(refine["type"], "JOB");
        assert_eq!(
            refine["data"]["inputs"],
            json!([{"namespace": "sales", "name": "raw.orders"}])
        );
        assert_eq!(
            refine["data"]["outputs"],
            json!([{"namespace": "sales", "name": "gold.revenue"}])
        );
        assert_eq!(
            refine["inEdges"],
            json!([{"origin": "dataset:sales:raw.orders", "destination": "job:sales:refine", "sources": ["declared"]}])
        );
        assert_eq!(nodes[1]["type"], "DATASET");
        assert_eq!(
            nodes[1]["data"]["id"],
            json!({"namespace": "sales", "name": "gold.revenue"})
        );
        assert_eq!(v["truncated"], false);
    }

    #[test]
    fn the_layout_puts_upstream_left_and_downstream_right() {
        let g = graph();
        let sub = g.walk(&NodeRef::job("sales", "refine"), 2, 100).unwrap();
        let l = layout(&sub);
        let x = |id: &str| l.nodes.iter().find(|n| n.id == id).unwrap().x;
        assert!(x("job:sales:ingest") < x("dataset:sales:raw.orders"));
        assert!(x("dataset:sales:raw.orders") < x("job:sales:refine"));
        assert!(x("job:sales:refine") < x("job:marketing:report"));
        assert_eq!(l.edges.len(), 4);
        assert!(l
            .edges
            .iter()
            .all(|e| e.path.starts_with('M') && e.class == "declared"));
        assert_eq!(l.width, 10 * 2 + 5 * (NODE_W + 90) - 90);
        assert!(l.nodes.iter().filter(|n| n.start).count() == 1);
    }

    #[test]
    fn two_hundred_nodes_are_laid_out_without_overlap() {
        // A job writing 60 tables, each read by a job writing one more table: 181 nodes, plus
        // 19 upstream tables.
        let mut g = Graph::default();
        let hub = NodeRef::job("w", "hub");
        for i in 0..19 {
            g.add(&NodeRef::dataset("w", &format!("in.t{i}")), &hub, DECLARED);
        }
        for i in 0..60 {
            let t = NodeRef::dataset("w", &format!("mid.t{i}"));
            let reader = NodeRef::job("w", &format!("reader{i}"));
            g.add(&hub, &t, DECLARED);
            g.add(&t, &reader, OBSERVED);
            g.add(
                &reader,
                &NodeRef::dataset("w", &format!("out.t{i}")),
                DECLARED | OBSERVED,
            );
        }
        let sub = g.walk(&hub, 3, 1000).unwrap();
        assert_eq!(sub.nodes.len(), 200);
        let l = layout(&sub);
        for (i, a) in l.nodes.iter().enumerate() {
            assert!(
                a.x + NODE_W <= l.width && a.y + NODE_H <= l.height,
                "{a:?} outside"
            );
            for b in &l.nodes[i + 1..] {
                let apart = a.x + NODE_W <= b.x
                    || b.x + NODE_W <= a.x
                    || a.y + NODE_H <= b.y
                    || b.y + NODE_H <= a.y;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        // Five columns: inputs, the hub, its tables, their readers, the readers' outputs.
        let columns: BTreeSet<u32> = l.nodes.iter().map(|n| n.x).collect();
        assert_eq!(columns.len(), 5);
    }

    #[test]
    fn a_plan_shows_the_impact_of_its_changed_jobs_with_the_proposed_lineage() {
        use crate::plan::{Action, Change, Plan};
        let live = catalog();
        let mut g = graph();
        // Observed: someone outside olo reads gold.revenue.
        g.add(
            &NodeRef::dataset("sales", "gold.revenue"),
            &NodeRef::job("bi", "dashboard_refresh"),
            OBSERVED,
        );
        // The proposed commit makes refine also write gold.refunds, read by nobody yet.
        let mut proposed = catalog();
        let sales = proposed
            .workspaces
            .iter_mut()
            .find(|w| w.name == "sales")
            .unwrap();
        sales.jobs[1] = job(
            "sales",
            "refine",
            &["raw.orders"],
            &["gold.revenue", "gold.refunds"],
        );
        let change = |name: &str, action| Change {
            name: name.into(),
            action,
            hash: String::new(),
            diff: None,
            reason: None,
        };
        let plan = Plan {
            revision: None,
            changes: vec![
                change("dags/olo_assets/sales/x.py", Action::Update),
                change("dags/sales__refine.py", Action::Update),
                change("trino/rules.json", Action::Update),
            ],
            unchanged: 3,
        };
        let impact = plan_impact(&plan, &proposed, Some(&live), &g);
        assert_eq!(impact.len(), 1);
        assert_eq!(impact[0].job, "sales/refine");
        assert_eq!(impact[0].action, Action::Update);
        assert_eq!(
            impact[0].impact.writes,
            vec!["dataset:sales:gold.refunds", "dataset:sales:gold.revenue"]
        );
        assert_eq!(
            impact[0].impact.downstream_jobs,
            vec!["job:bi:dashboard_refresh", "job:marketing:report"]
        );
        // The live graph is untouched.
        assert!(!g.contains(&NodeRef::dataset("sales", "gold.refunds")));
        let none = Plan {
            revision: None,
            changes: vec![],
            unchanged: 0,
        };
        assert!(plan_impact(&none, &proposed, None, &g).is_empty());
    }
}
