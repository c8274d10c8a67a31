//! The lineage graph page: the graph around a job or dataset, laid out and drawn as SVG.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::{context, Value};
use olo_reconciler::catalog::Catalog;
use olo_reconciler::lineage::search::{self, Hit};
use olo_reconciler::lineage::{
    Clusters, Graph, Kind, NodeRef, Observed, Summary, DECLARED, OBSERVED,
};
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
    /// Text to find in job and dataset names (with `namespace` and `kind` to narrow it).
    pub q: Option<String>,
    pub namespace: Option<String>,
    pub kind: Option<String>,
    /// The overview's page of namespaces, from 1.
    pub page: Option<String>,
}

/// Jobs and datasets listed per namespace on the overview (the rest are counted and found by
/// searching that namespace).
const PER_NAMESPACE: usize = 12;
/// Namespaces per overview page.
const NAMESPACES_PER_PAGE: usize = 30;
/// Most search results listed.
const SEARCH_SHOWN: usize = 100;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn bad_request(message: String) -> PageError {
    PageError {
        status: StatusCode::BAD_REQUEST,
        title: "Bad request",
        message,
        sign_in: false,
    }
}

/// What the page says of one job or dataset: its links, where it comes from (the config
/// repository, events, or both) and, for a job, its latest run as events reported it.
fn entry(node: &NodeRef, graph: &Graph, observed: &Observed, catalog: Option<&Catalog>) -> Value {
    let id = node.id();
    let sources = graph.sources_of(node);
    // A job of the live commit is declared even when it declares no dataset.
    let olo_job = node.kind == Kind::Job
        && catalog.is_some_and(|c| c.job(&node.namespace, &node.name).is_some());
    let declared = sources & DECLARED != 0 || olo_job;
    let seen = match node.kind {
        Kind::Job => observed.job(node).and_then(|j| j.updated_at),
        Kind::Dataset => observed.dataset(node).and_then(|d| d.updated_at),
    };
    let latest = observed.job(node).and_then(|j| j.runs.last());
    let job_page = olo_job.then(|| {
        format!(
            "/workspaces/{}/jobs/{}",
            enc(&node.namespace),
            enc(&node.name)
        )
    });
    context! {
        id => &id,
        kind => if node.kind == Kind::Job { "job" } else { "dataset" },
        namespace => &node.namespace,
        name => &node.name,
        graph_href => format!("/lineage?node={}", enc(&id)),
        job_page => job_page,
        declared => declared,
        observed => sources & OBSERVED != 0 || seen.is_some(),
        seen_at => seen.map(olo_reconciler::lineage::time),
        run_state => latest.map(|r| r.state.to_ascii_lowercase()),
        run_at => latest.map(|r| olo_reconciler::lineage::time(r.updated_at)),
        run_error => latest.and_then(|r| r.error_message.clone()),
    }
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
            .ok_or_else(|| bad_request(format!("Choose a depth of {LINEAGE_DEPTHS:?}.")))?,
    };
    let kind = given(&q.kind)
        .map(|k| search::parse_filter(&k))
        .transpose()
        .map_err(|e| bad_request(format!("{e}.")))?;
    let page = match given(&q.page) {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| bad_request(format!("`page` is a number from 1, not {p:?}.")))?,
    };
    let start = given(&q.node);
    let text = given(&q.q);
    let namespace = given(&q.namespace);
    // Before the locks below: `find` takes them itself.
    let start_node = start.as_deref().and_then(|id| state.lineage.find(id));
    let g = state.lineage.read();
    let observed = state.lineage.observed();
    let (status, graph, truncated, problem, focus) = match &start {
        // No node: the overview below.
        None => (StatusCode::OK, None, false, None, None),
        Some(id) => match start_node.and_then(|n| g.walk(&n, depth, LINEAGE_MAX_NODES)) {
            None => (
                StatusCode::NOT_FOUND,
                None,
                false,
                Some(format!(
                    "olo knows no lineage of {id}: no job declares it and no event has shown it."
                )),
                None,
            ),
            Some(sub) => {
                let focus = entry(&sub.nodes[sub.start], &g, &observed, catalog.as_deref());
                let layout = olo_reconciler::lineage::layout(&sub);
                let nodes: Vec<Value> = layout
                    .nodes
                    .iter()
                    .map(|n| {
                        let short_ns = label(&n.namespace, 22);
                        let state = (n.kind == Kind::Job)
                            .then(|| observed.job(&NodeRef::job(&n.namespace, &n.name)))
                            .flatten()
                            .and_then(|j| j.runs.last())
                            .map(|r| r.state.to_ascii_lowercase());
                        context! {
                            id => &n.id,
                            kind => ser(&n.kind),
                            x => n.x,
                            y => n.y,
                            start => n.start,
                            label => label(&n.name, LABEL_CHARS),
                            short_namespace => short_ns,
                            href => node_href(catalog.as_deref(), n),
                            run_state => state,
                        }
                    })
                    .collect();
                let graph = context! {
                    width => layout.width,
                    height => layout.height,
                    nodes => nodes,
                    edges => ser(&layout.edges),
                };
                (
                    StatusCode::OK,
                    Some(graph),
                    sub.truncated,
                    None,
                    Some(focus),
                )
            }
        },
    };
    // A search: the text in names, narrowed to a namespace or a kind; a namespace alone lists
    // its nodes.
    let found = (start.is_none() && (text.is_some() || namespace.is_some())).then(|| {
        let query = search::Query {
            q: text.as_deref().unwrap_or(""),
            filter: kind,
            sort: search::Sort::Name,
            namespace: namespace.as_deref(),
            before: None,
            after: None,
        };
        let candidates = g.live_nodes().chain(observed.nodes()).map(|node| Hit {
            node: node.clone(),
            updated_at: None,
        });
        let hits = search::search(candidates, &query);
        let rows: Vec<Value> = hits
            .iter()
            .take(SEARCH_SHOWN)
            .map(|h| entry(&h.node, &g, &observed, catalog.as_deref()))
            .collect();
        context! { total => hits.len(), rows => rows, shown => SEARCH_SHOWN }
    });
    let summary = (start.is_none() && found.is_none()).then(|| {
        overview(
            &g.summary(),
            &g.clusters(PER_NAMESPACE),
            page,
            &|n: &NodeRef| entry(n, &g, &observed, catalog.as_deref()),
        )
    });
    drop((g, observed));
    let html = render(
        "lineage.html",
        context! {
            nav => "lineage",
            start => start,
            depth => depth,
            depths => LINEAGE_DEPTHS.to_vec(),
            graph => graph,
            focus => focus,
            truncated => truncated,
            max_nodes => LINEAGE_MAX_NODES,
            node_w => olo_reconciler::lineage::NODE_W,
            node_h => olo_reconciler::lineage::NODE_H,
            problem => problem,
            q => text,
            namespace => namespace,
            kind => given(&q.kind).map(|k| k.to_ascii_uppercase()),
            found => found,
            overview => summary,
        },
    )?;
    Ok((status, html).into_response())
}

/// The lineage page without a node: the graph in numbers, each namespace (a page of them) with
/// its first jobs and datasets, the edges between namespaces, and the jobs whose events disagree
/// with what they declare, each linked to its graph.
fn overview(
    s: &Summary,
    clusters: &Clusters,
    page: usize,
    entry: &dyn Fn(&NodeRef) -> Value,
) -> Value {
    let mismatched: Vec<Value> = s
        .mismatched
        .iter()
        .take(SEARCH_SHOWN)
        .map(|(id, missing, extra)| {
            context! {
                id => id,
                href => format!("/lineage?node={}", enc(id)),
                missing => missing,
                extra => extra,
            }
        })
        .collect();
    let pages = clusters
        .namespaces
        .len()
        .div_ceil(NAMESPACES_PER_PAGE)
        .max(1);
    let namespaces: Vec<Value> = clusters
        .namespaces
        .iter()
        .skip((page - 1) * NAMESPACES_PER_PAGE)
        .take(NAMESPACES_PER_PAGE)
        .map(|c| {
            context! {
                name => &c.namespace,
                job_count => c.job_count,
                dataset_count => c.dataset_count,
                edges_within => c.edges_within,
                jobs => c.jobs.iter().map(entry).collect::<Vec<_>>(),
                datasets => c.datasets.iter().map(entry).collect::<Vec<_>>(),
                more => (c.job_count + c.dataset_count)
                    .saturating_sub(c.jobs.len() + c.datasets.len()),
                all_href => format!("/lineage?namespace={}", enc(&c.namespace)),
            }
        })
        .collect();
    let crossings: Vec<Value> = clusters
        .crossings
        .iter()
        .map(|x| {
            let (a, b) = &x.example;
            context! {
                from => &x.from,
                to => &x.to,
                edges => x.edges,
                sources => olo_reconciler::lineage::sources(x.flags).join(" and "),
                class => match (x.flags & DECLARED != 0, x.flags & OBSERVED != 0) {
                    (true, true) => "both",
                    (true, false) => "declared",
                    _ => "observed",
                },
                example_from => a.id(),
                example_to => b.id(),
                example_href => format!("/lineage?node={}", enc(&a.id())),
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
        mismatched_total => s.mismatched.len(),
        namespace_count => clusters.namespaces.len(),
        namespaces => namespaces,
        crossings => crossings,
        page => page,
        pages => pages,
    }
}
