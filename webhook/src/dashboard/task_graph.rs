//! A job's tasks as a picture: one box per task, columns by dependency depth (a task right of
//! everything it depends on), laid out as the lineage graph is (`olo_reconciler::lineage::layout`),
//! each box coloured by the task's state in the job's latest run.

use std::collections::HashMap;

use olo_reconciler::catalog::JobView;
use olo_reconciler::lineage::{layout, NodeRef, Subgraph, DECLARED};
use olo_reconciler::store::TaskInstanceRow;
use serde::Serialize;

/// The drawing: boxes and edges in SVG coordinates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskGraph {
    pub width: u32,
    pub height: u32,
    pub node_w: u32,
    pub node_h: u32,
    pub tasks: Vec<TaskBox>,
    pub edges: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskBox {
    pub id: String,
    pub kind: String,
    pub x: u32,
    pub y: u32,
    /// The state in the latest run (its latest try); `None` when the run has not reached it.
    pub state: Option<String>,
}

/// The graph of `job`'s tasks, with states from `latest` (the task instances of its newest run).
pub fn task_graph(job: &JobView, latest: &[TaskInstanceRow]) -> TaskGraph {
    let index: HashMap<&str, usize> = job
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize, u8)> = job
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()))
                .map(move |d| (*d, i, DECLARED))
        })
        .collect();
    let sub = Subgraph {
        // No task is the graph's centre.
        start: usize::MAX,
        nodes: job
            .tasks
            .iter()
            .map(|t| NodeRef::job(&job.dag_id, &t.id))
            .collect(),
        layer: depths(job.tasks.len(), &edges),
        edges,
        truncated: false,
    };
    let drawn = layout(&sub);
    let mut states: HashMap<&str, (i64, &str)> = HashMap::new();
    for ti in latest {
        let state = ti.state.as_deref().unwrap_or("");
        let newer = states
            .get(ti.task_id.as_str())
            .is_none_or(|(try_number, _)| ti.try_number >= *try_number);
        if newer {
            states.insert(&ti.task_id, (ti.try_number, state));
        }
    }
    TaskGraph {
        width: drawn.width,
        height: drawn.height,
        node_w: olo_reconciler::lineage::NODE_W,
        node_h: olo_reconciler::lineage::NODE_H,
        tasks: drawn
            .nodes
            .iter()
            .zip(&job.tasks)
            .map(|(placed, task)| TaskBox {
                id: task.id.clone(),
                kind: task.kind.clone(),
                x: placed.x,
                y: placed.y,
                state: states
                    .get(task.id.as_str())
                    .map(|(_, s)| s.to_string())
                    .filter(|s| !s.is_empty()),
            })
            .collect(),
        edges: drawn.edges.into_iter().map(|e| e.path).collect(),
    }
}

/// Each task's column: the length of the longest chain of dependencies before it (the graph is
/// acyclic: validation refuses cycles; a cycle here would stop at `n` rounds).
fn depths(n: usize, edges: &[(usize, usize, u8)]) -> Vec<i32> {
    let mut depth = vec![0i32; n];
    for _ in 0..n {
        let mut changed = false;
        for (from, to, _) in edges {
            if depth[*to] < depth[*from] + 1 {
                depth[*to] = depth[*from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::depths;

    #[test]
    fn a_task_stands_right_of_everything_it_depends_on() {
        // a → b → d, a → c → d, e alone.
        let edges = [(0, 1, 1), (1, 3, 1), (0, 2, 1), (2, 3, 1)];
        assert_eq!(depths(5, &edges), vec![0, 1, 1, 2, 0]);
    }
}
