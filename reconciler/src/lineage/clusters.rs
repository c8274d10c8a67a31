//! The lineage graph grouped by namespace (a workspace, or a namespace events named): each
//! namespace's jobs and datasets, and the edges that cross from one namespace to another. The
//! lineage page's overview, which must stay readable at 100,000 jobs: each namespace lists its
//! first nodes by name and counts the rest. Pure.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Graph, Kind, NodeRef};

/// One namespace of the graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cluster {
    pub namespace: String,
    pub job_count: usize,
    pub dataset_count: usize,
    /// The first jobs and datasets by name, at most the `per_namespace` asked for.
    pub jobs: Vec<NodeRef>,
    pub datasets: Vec<NodeRef>,
    /// Edges whose ends are both in this namespace.
    pub edges_within: usize,
}

/// The edges from nodes of one namespace to nodes of another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossing {
    pub from: String,
    pub to: String,
    pub edges: usize,
    /// Every flag of those edges, or-ed ([`super::DECLARED`], [`super::OBSERVED`]).
    pub flags: u8,
    /// The first such edge by name (from, to): where to start looking.
    pub example: (NodeRef, NodeRef),
}

/// The whole graph by namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Clusters {
    /// By namespace name.
    pub namespaces: Vec<Cluster>,
    /// Most edges first, then by (from, to).
    pub crossings: Vec<Crossing>,
}

impl Graph {
    /// The live graph by namespace, each namespace listing at most `per_namespace` jobs and as
    /// many datasets (the first by name).
    pub fn clusters(&self, per_namespace: usize) -> Clusters {
        let mut members: BTreeMap<&str, (Vec<&NodeRef>, Vec<&NodeRef>)> = BTreeMap::new();
        for node in self.live_nodes() {
            let (jobs, datasets) = members.entry(node.namespace.as_str()).or_default();
            match node.kind {
                Kind::Job => jobs.push(node),
                Kind::Dataset => datasets.push(node),
            }
        }
        let mut within: HashMap<&str, usize> = HashMap::new();
        let mut crossings: HashMap<(&str, &str), Crossing> = HashMap::new();
        for (&(from, to), &flags) in &self.edges {
            if flags == 0 {
                continue;
            }
            let (a, b) = (&self.nodes[from as usize], &self.nodes[to as usize]);
            if a.namespace == b.namespace {
                *within.entry(a.namespace.as_str()).or_default() += 1;
                continue;
            }
            let c = crossings
                .entry((a.namespace.as_str(), b.namespace.as_str()))
                .or_insert_with(|| Crossing {
                    from: a.namespace.clone(),
                    to: b.namespace.clone(),
                    edges: 0,
                    flags: 0,
                    example: (a.clone(), b.clone()),
                });
            c.edges += 1;
            c.flags |= flags;
            if (a, b) < (&c.example.0, &c.example.1) {
                c.example = (a.clone(), b.clone());
            }
        }
        let first = |mut v: Vec<&NodeRef>| -> Vec<NodeRef> {
            if v.len() > per_namespace {
                v.select_nth_unstable(per_namespace);
                v.truncate(per_namespace);
            }
            v.sort_unstable();
            v.into_iter().cloned().collect()
        };
        let namespaces = members
            .into_iter()
            .map(|(namespace, (jobs, datasets))| Cluster {
                namespace: namespace.to_string(),
                job_count: jobs.len(),
                dataset_count: datasets.len(),
                jobs: first(jobs),
                datasets: first(datasets),
                edges_within: within.get(namespace).copied().unwrap_or(0),
            })
            .collect();
        let mut crossings: Vec<Crossing> = crossings.into_values().collect();
        crossings.sort_by(|a, b| {
            b.edges
                .cmp(&a.edges)
                .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
        });
        Clusters {
            namespaces,
            crossings,
        }
    }

    /// Every flag of the live edges that touch `node`, or-ed: whether the config repository
    /// declares it ([`super::DECLARED`]), events showed it ([`super::OBSERVED`]), or both; 0 when
    /// no live edge touches it.
    pub fn sources_of(&self, node: &NodeRef) -> u8 {
        let Some(n) = self.index.get(node).copied() else {
            return 0;
        };
        self.live_out(n)
            .map(|t| self.flags(n, t))
            .chain(self.live_in(n).map(|f| self.flags(f, n)))
            .fold(0, |acc, f| acc | f)
    }
}
