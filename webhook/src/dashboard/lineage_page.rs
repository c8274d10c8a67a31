//! The lineage graph page: the graph around a job or dataset, laid out and drawn as SVG.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::{context, Value};
use olo_reconciler::catalog::Catalog;
use serde::Deserialize;

use super::{gate, given, render, ser, PageError};
use crate::caller::{Caller, Need};
use crate::AppState;

/// Depths offered on the lineage page.
const LINEAGE_DEPTHS: &[usize] = &[1, 2, 3, 4, 5, 8];
/// Most nodes drawn (the page stays readable; the API answers up to 5,000).
pub const LINEAGE_MAX_NODES: usize = 300;
/// Characters of a name shown in a node's box (the whole id is its tooltip).
const LABEL_CHARS: usize = 30;

/// A name cut to `max` characters with an ellipsis in the middle, so both ends stay readable.
pub fn label(name: &str, max: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= max {
        return name.to_string();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Where a lineage node links: an olo job to its page, anything else to its own graph.
fn node_href(catalog: Option<&Catalog>, node: &olo_reconciler::lineage::Placed) -> String {
    let graph = format!(
        "/lineage?node={}",
        url::form_urlencoded::byte_serialize(node.id.as_bytes()).collect::<String>()
    );
    match (node.kind, catalog) {
        (olo_reconciler::lineage::Kind::Job, Some(c))
            if c.job(&node.namespace, &node.name).is_some() =>
        {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!(
                "/workspaces/{}/jobs/{}",
                enc(&node.namespace),
                enc(&node.name)
            )
        }
        _ => graph,
    }
}

#[derive(Debug, Deserialize)]
pub struct LineageQuery {
    pub node: Option<String>,
    pub depth: Option<String>,
}

pub(super) async fn lineage_page(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<LineageQuery>,
) -> Result<Response, PageError> {
    gate(&state, &caller, Need::Member).await?;
    let catalog = state.catalog();
    state.lineage.sync(catalog.as_ref());
    let depth = match given(&q.depth) {
        None => 2,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| LINEAGE_DEPTHS.contains(d))
            .ok_or_else(|| PageError {
                status: StatusCode::BAD_REQUEST,
                title: "Bad request",
                message: format!("Choose a depth of {LINEAGE_DEPTHS:?}."),
                sign_in: false,
            })?,
    };
    let start = given(&q.node);
    let (status, graph, truncated, problem) = match &start {
        // No node: the overview below.
        None => (StatusCode::OK, None, false, None),
        Some(id) => {
            let g = state.lineage.read();
            match g.find(id).and_then(|n| g.walk(&n, depth, LINEAGE_MAX_NODES)) {
                None => (
                    StatusCode::NOT_FOUND,
                    None,
                    false,
                    Some(format!(
                        "olo knows no lineage of {id}: no job declares it and no event has shown it."
                    )),
                ),
                Some(sub) => {
                    let layout = olo_reconciler::lineage::layout(&sub);
                    let nodes: Vec<Value> = layout
                        .nodes
                        .iter()
                        .map(|n| {
                            let short_ns = label(&n.namespace, 22);
                            context! {
                                id => &n.id,
                                kind => ser(&n.kind),
                                x => n.x,
                                y => n.y,
                                start => n.start,
                                label => label(&n.name, LABEL_CHARS),
                                short_namespace => short_ns,
                                href => node_href(catalog.as_deref(), n),
                            }
                        })
                        .collect();
                    let graph = context! {
                        width => layout.width,
                        height => layout.height,
                        nodes => nodes,
                        edges => ser(&layout.edges),
                    };
                    (StatusCode::OK, Some(graph), sub.truncated, None)
                }
            }
        }
    };
    let summary = start
        .is_none()
        .then(|| overview(&state.lineage.read().summary()));
    let html = render(
        "lineage.html",
        context! {
            nav => "lineage",
            start => start,
            depth => depth,
            depths => LINEAGE_DEPTHS.to_vec(),
            graph => graph,
            truncated => truncated,
            max_nodes => LINEAGE_MAX_NODES,
            node_w => olo_reconciler::lineage::NODE_W,
            node_h => olo_reconciler::lineage::NODE_H,
            problem => problem,
            overview => summary,
        },
    )?;
    Ok((status, html).into_response())
}

/// The lineage page without a node: the graph in numbers, and the jobs whose events disagree
/// with what they declare, each linked to its graph.
fn overview(s: &olo_reconciler::lineage::Summary) -> Value {
    let mismatched: Vec<Value> = s
        .mismatched
        .iter()
        .map(|(id, missing, extra)| {
            context! {
                id => id,
                href => format!("/lineage?node={}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()),
                missing => missing,
                extra => extra,
            }
        })
        .collect();
    context! {
        jobs => s.jobs,
        datasets => s.datasets,
        declared => s.declared,
        observed => s.observed,
        both => s.both,
        mismatched => mismatched,
    }
}
