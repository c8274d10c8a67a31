//! A subgraph for people and tools: Marquez's JSON shape and a layered drawing for the dashboard.

use serde::Serialize;
use serde_json::{json, Value};

use super::{sources, Kind, NodeRef, Observed, Subgraph, DECLARED, OBSERVED};

/// Picks one end of an edge `(from, to, flags)`, or none.
type EdgeEnd<'a> = &'a dyn Fn(&(usize, usize, u8)) -> Option<usize>;

/// The subgraph in Marquez's `LineageGraph` shape (`{"graph": [GraphNode...]}`), each node's
/// `data` a Marquez `Job` (with its latest runs) or `Dataset` (with its fields) from what events
/// said (`observed`), with olo's additions: each edge's `sources` (declared, observed) and the
/// `truncated` flag.
pub fn marquez(sub: &Subgraph, observed: &Observed) -> Value {
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
            let data = match n.kind {
                Kind::Dataset => observed.dataset_json(n),
                Kind::Job => {
                    let side = |pick: EdgeEnd<'_>| -> Vec<&NodeRef> {
                        sub.edges
                            .iter()
                            .filter_map(pick)
                            .map(|d| &sub.nodes[d])
                            .filter(|d| d.kind == Kind::Dataset)
                            .collect()
                    };
                    let inputs = side(&|(f, t, _)| (*t == i).then_some(*f));
                    let outputs = side(&|(f, t, _)| (*f == i).then_some(*t));
                    observed.job_json(n, &inputs, &outputs)
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
