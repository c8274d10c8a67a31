//! Lineage: which jobs read and write which datasets, declared in the config repository (task
//! `inputs`/`outputs`) and observed in OpenLineage events, as one graph. Pure, but for [`live`]:
//! the graph as the server holds it, kept in step with the state store.
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

mod clusters;
pub mod column;
mod draw;
mod impact;
pub mod live;
mod names;
mod observed;
pub mod search;
pub mod stats;

pub use clusters::{Cluster, Clusters, Crossing};
pub use draw::{layout, marquez, Drawn, Layout, Placed, NODE_H, NODE_W};
pub use impact::{plan_impact, BrokenRead, JobImpact, PlanImpact, IMPACT_DEPTH};
pub use names::{declared_dataset, declared_edges, Resolver, RunIndex};
pub use observed::{run_json, time, DatasetSeen, JobSeen, Observed, Run, RUNS_PER_JOB};

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

/// The whole graph in numbers, and the jobs whose declared and observed lineage differ (the
/// lineage page's overview).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub jobs: usize,
    pub datasets: usize,
    /// Edges declared only, observed only, and both.
    pub declared: usize,
    pub observed: usize,
    pub both: usize,
    /// Jobs with a mismatch: `(job id, declared never observed, observed not declared)`, the
    /// most mismatched first.
    pub mismatched: Vec<(String, usize, usize)>,
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

    /// Takes an edge out, whatever its flags.
    fn remove(&mut self, from: u32, to: u32) {
        if let Some(flags) = self.edges.get_mut(&(from, to)) {
            *flags = 0;
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

    /// Every node with at least one edge.
    pub fn live_nodes(&self) -> impl Iterator<Item = &NodeRef> + '_ {
        self.nodes.iter().filter(|n| self.contains(n))
    }

    /// The datasets a job reads and writes (by any live edge), each sorted.
    pub fn datasets_of(&self, job: &NodeRef) -> (Vec<&NodeRef>, Vec<&NodeRef>) {
        let Some(j) = self.index.get(job).copied() else {
            return (Vec::new(), Vec::new());
        };
        let names = |ids: Vec<u32>| -> Vec<&NodeRef> {
            let mut v: Vec<&NodeRef> = ids.into_iter().map(|i| &self.nodes[i as usize]).collect();
            v.sort();
            v
        };
        (
            names(self.live_in(j).collect()),
            names(self.live_out(j).collect()),
        )
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

    /// Every node connected to `start` within `depth` edges, whichever way each edge points (as
    /// Marquez answers: a job that both reads and writes a dataset is expanded upstream and
    /// downstream, however it was reached), and the edges between them; at most `max_nodes`
    /// nodes, nearest first. A node's layer is its parent's plus one when the walk followed an
    /// edge downstream, minus one upstream (columns of the drawing).
    pub fn walk(&self, start: &NodeRef, depth: usize, max_nodes: usize) -> Option<Subgraph> {
        let s = *self.index.get(start)?;
        let mut layer_of: HashMap<u32, i32> = HashMap::from([(s, 0)]);
        let mut order = vec![s];
        let mut truncated = false;
        // Breadth first, so the nearest nodes are kept at the limit.
        let mut queue = VecDeque::from([(s, 0usize)]);
        'walk: while let Some((n, distance)) = queue.pop_front() {
            if distance >= depth {
                continue;
            }
            let layer = layer_of[&n];
            let mut next: Vec<(u32, i32)> = self
                .live_out(n)
                .map(|m| (m, 1))
                .chain(self.live_in(n).map(|m| (m, -1)))
                .collect();
            // Downstream first, then by name, so that the answer does not depend on the order
            // edges arrived in.
            next.sort_unstable_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| self.nodes[a.0 as usize].cmp(&self.nodes[b.0 as usize]))
            });
            for (m, dir) in next {
                if layer_of.contains_key(&m) {
                    continue;
                }
                if order.len() >= max_nodes {
                    truncated = true;
                    break 'walk;
                }
                layer_of.insert(m, layer + dir);
                order.push(m);
                queue.push_back((m, distance + 1));
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

    /// Counts of the live graph, and every job whose events disagree with its declaration (jobs
    /// no event has shown are left out: they only say that lineage is not reported yet).
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for flags in self.edges.values() {
            match (flags & DECLARED != 0, flags & OBSERVED != 0) {
                (true, true) => s.both += 1,
                (true, false) => s.declared += 1,
                (false, true) => s.observed += 1,
                (false, false) => {}
            }
        }
        for node in self.live_nodes() {
            match node.kind {
                Kind::Job => {
                    s.jobs += 1;
                    let m = self.mismatches(node);
                    let (missing, extra) =
                        (m.declared_not_observed.len(), m.observed_not_declared.len());
                    if m.observed_any && missing + extra > 0 {
                        s.mismatched.push((node.id(), missing, extra));
                    }
                }
                Kind::Dataset => s.datasets += 1,
            }
        }
        s.mismatched
            .sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
        s
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
                // Reading back what it declares to write is part of writing it (dbt's data
                // tests, MERGE's read of its target, incremental models): not a mismatch.
                (false, true) if direction == "in" && self.flags(j, d) & DECLARED != 0 => {}
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

#[cfg(test)]
mod clusters_tests;
#[cfg(test)]
mod impact_tests;
#[cfg(test)]
mod names_tests;
#[cfg(test)]
mod observed_tests;
#[cfg(test)]
mod summary_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod walk_tests;
