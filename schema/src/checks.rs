//! The semantic checks of single documents (a workspace, a job) in the context of the whole
//! repository: names, graph, schedule, dates, params, referenced files, datasets.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::diagnostic::Diagnostic;
use crate::load::{Loaded, Role};
use crate::model::{JobDoc, TaskKind, WorkspaceDoc};
use crate::name::Name;
use crate::schedule::Schedule;
use crate::snapshot::{ResolveError, Snapshot};
use crate::validate::{Job, Workspace};
use crate::yaml::{Node, Pos};

const TOP: Pos = Pos { line: 1, col: 1 };

pub(crate) struct Context<'a> {
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) workspaces: &'a BTreeMap<Name, Workspace>,
    pub(crate) ws_folders: &'a BTreeSet<String>,
}

pub(crate) fn pos(node: &Node, path: &[&str]) -> Pos {
    node.lookup(path).map(|n| n.pos).unwrap_or(TOP)
}

pub(crate) fn check_workspace(l: &Loaded<WorkspaceDoc>, folder: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let name = l.doc.metadata.name.as_str();
    if let Err(e) = Name::parse(folder) {
        out.push(Diagnostic::error(
            &l.path,
            TOP,
            format!("workspace folder name: {e}"),
        ));
    } else if name != folder {
        out.push(Diagnostic::error(
            &l.path,
            pos(&l.node, &["metadata", "name"]),
            format!("workspace name `{name}` differs from its folder `workspaces/{folder}`; they must be equal"),
        ));
    }
    check_defaults(
        &l.path,
        &l.node,
        &["spec", "defaults"],
        &l.doc.spec.defaults.timeout,
        &mut out,
    );
    check_tables(l, &mut out);
    for key in l.doc.spec.lakehouse.properties.keys() {
        let why = if key == "location" {
            "olo sets it to the warehouse and the namespace (`<warehouse>/<namespace>`); change `warehouse` instead"
        } else if key.starts_with("olo.") {
            "keys starting with `olo.` are olo's own bookkeeping"
        } else {
            continue;
        };
        out.push(Diagnostic::error(
            &l.path,
            l.node
                .key_pos(&["spec", "lakehouse", "properties", key])
                .unwrap_or(TOP),
            format!("namespace property `{key}` cannot be declared: {why}"),
        ));
    }
    let warehouse = &l.doc.spec.lakehouse.warehouse;
    if let Some(rest) = warehouse
        .strip_prefix("s3://")
        .or_else(|| warehouse.strip_prefix("s3a://"))
    {
        let bucket = rest.split('/').next().unwrap_or_default();
        if let Err(e) = check_bucket(bucket) {
            out.push(Diagnostic::error(
                &l.path,
                pos(&l.node, &["spec", "lakehouse", "warehouse"]),
                e,
            ));
        }
    }
    out
}

/// S3's bucket naming rules, so a bad name fails at validation rather than at apply.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "`{}` is not an S3 bucket name: {why}",
            bucket.escape_debug()
        ))
    };
    if bucket.len() < 3 || bucket.len() > 63 {
        return bad("it must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("use lowercase letters, digits, dots and hyphens only");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(bucket.as_bytes()[0]) || !edge(bucket.as_bytes()[bucket.len() - 1]) {
        return bad("it must start and end with a letter or digit");
    }
    if bucket.contains("..") {
        return bad("it must not contain two dots in a row");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not look like an IP address");
    }
    Ok(())
}

/// Table declarations: the namespace is the workspace's, names are unique, types and partition
/// transforms parse and fit their columns.
fn check_tables(l: &Loaded<WorkspaceDoc>, out: &mut Vec<Diagnostic>) {
    use crate::table::{parse_partition, ColumnType};
    let lake = &l.doc.spec.lakehouse;
    let mut seen = std::collections::HashSet::new();
    for (i, table) in lake.tables.iter().enumerate() {
        let idx = i.to_string();
        let at = |rest: &[&str]| {
            let mut p = vec!["spec", "lakehouse", "tables", idx.as_str()];
            p.extend_from_slice(rest);
            pos(&l.node, &p)
        };
        let (ns, _) = table.split_name();
        if !lake.namespaces.iter().any(|n| n.as_str() == ns) {
            out.push(Diagnostic::error(
                &l.path,
                at(&["name"]),
                format!(
                    "table `{}`: namespace `{ns}` is not one of this workspace's namespaces ({})",
                    table.name,
                    lake.namespaces
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !seen.insert(table.name.as_str()) {
            out.push(Diagnostic::error(
                &l.path,
                at(&["name"]),
                format!("table `{}` is declared twice", table.name),
            ));
        }
        let mut types = std::collections::HashMap::new();
        for (j, col) in table.columns.iter().enumerate() {
            let jdx = j.to_string();
            match ColumnType::parse(&col.kind) {
                Ok(t) => {
                    if let std::collections::hash_map::Entry::Vacant(e) =
                        types.entry(col.name.to_ascii_lowercase())
                    {
                        e.insert(t);
                    } else {
                        out.push(Diagnostic::error(
                            &l.path,
                            at(&["columns", &jdx, "name"]),
                            format!(
                                "column `{}` is declared twice in table `{}` (names are compared without case: Trino lowercases them)",
                                col.name, table.name
                            ),
                        ));
                    }
                }
                Err(e) => out.push(Diagnostic::error(
                    &l.path,
                    at(&["columns", &jdx, "type"]),
                    e,
                )),
            }
        }
        for (k, part) in table.partition_by.iter().enumerate() {
            let kdx = k.to_string();
            let p = at(&["partition_by", &kdx]);
            match parse_partition(part) {
                Err(e) => out.push(Diagnostic::error(&l.path, p, e)),
                Ok((transform, column)) => match types.get(&column.to_ascii_lowercase()) {
                    None => out.push(Diagnostic::error(
                        &l.path,
                        p,
                        format!("partition `{part}`: table `{}` has no column `{column}`", table.name),
                    )),
                    Some(t) if !transform.applies_to(*t) => out.push(Diagnostic::error(
                        &l.path,
                        p,
                        format!(
                            "partition `{part}`: {} does not apply to column `{column}` of type {t}",
                            transform.iceberg()
                        ),
                    )),
                    Some(_) => {}
                },
            }
        }
    }
}

pub(crate) fn check_defaults(
    path: &str,
    node: &Node,
    at: &[&str],
    timeout: &Option<crate::duration::Duration>,
    out: &mut Vec<Diagnostic>,
) {
    if timeout.is_some_and(|t| t.as_secs() == 0) {
        let mut p = at.to_vec();
        p.push("timeout");
        out.push(Diagnostic::error(
            path,
            pos(node, &p),
            "timeout must be longer than 0s",
        ));
    }
}

/// Checks one loaded job file; a valid job takes the document over (no copy of its model).
pub(crate) fn check_job(
    ctx: &Context<'_>,
    loaded: Loaded<JobDoc>,
) -> (Option<Job>, Vec<Diagnostic>) {
    let l = &loaded;
    let mut out = Vec::new();
    let path = l.path.as_str();
    let node = &l.node;
    let spec = &l.doc.spec;
    let Role::Job { folder, stem } = l.role.clone() else {
        return (None, out);
    };
    let (folder, stem) = (&folder, &stem);
    let name = l.doc.metadata.name.clone();
    let name = &name;

    // Where the job is.
    let stem_ok = match Name::parse(stem) {
        Ok(_) => true,
        Err(e) => {
            out.push(Diagnostic::error(path, TOP, format!("job file name: {e}")));
            false
        }
    };
    if stem_ok && name.as_str() != stem {
        out.push(Diagnostic::error(
            path,
            pos(node, &["metadata", "name"]),
            format!(
                "job name `{name}` differs from its file name `{stem}.yaml`; they must be equal"
            ),
        ));
    }
    let workspace = ctx.workspaces.get(folder.as_str());
    if !ctx.ws_folders.contains(folder.as_str()) {
        out.push(Diagnostic::error(
            path,
            TOP,
            format!("workspace folder `workspaces/{folder}` has no workspace.yaml"),
        ));
    }

    // Schedule and dates.
    let schedule = match Schedule::parse(spec.schedule.as_deref()) {
        Ok(s) => Some(s),
        Err(e) => {
            out.push(Diagnostic::error(path, pos(node, &["spec", "schedule"]), e));
            None
        }
    };
    let start = check_date(
        path,
        node,
        "start_date",
        spec.start_date.as_deref(),
        &mut out,
    );
    let end = check_date(path, node, "end_date", spec.end_date.as_deref(), &mut out);
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            out.push(Diagnostic::error(
                path,
                pos(node, &["spec", "end_date"]),
                format!("end_date {e} is before start_date {s}"),
            ));
        }
    }
    if matches!(schedule, Some(Schedule::Cron(_) | Schedule::Preset(_)))
        && spec.start_date.is_none()
    {
        out.push(Diagnostic::error(
            path,
            pos(node, &["spec", "schedule"]),
            "a scheduled job needs a `start_date` (YYYY-MM-DD)",
        ));
    }
    if matches!(&schedule, Some(Schedule::Preset(p)) if p == "@continuous")
        && spec.max_active_runs != Some(1)
    {
        out.push(Diagnostic::error(
            path,
            pos(node, &["spec", "schedule"]),
            "a `@continuous` job runs one run at a time: set `max_active_runs: 1`",
        ));
    }
    if spec.run_timeout.is_some_and(|t| t.as_secs() == 0) {
        out.push(Diagnostic::error(
            path,
            pos(node, &["spec", "run_timeout"]),
            "run_timeout must be longer than 0s",
        ));
    }
    check_defaults(
        path,
        node,
        &["spec", "defaults"],
        &spec.defaults.timeout,
        &mut out,
    );

    // Params: defaults and choices of the declared type.
    let scheduled = matches!(schedule, Some(Schedule::Cron(_) | Schedule::Preset(_)));
    for (pname, param) in &spec.params {
        let at = ["spec", "params", pname.as_str()];
        if scheduled && param.default.is_none() {
            out.push(Diagnostic::error(
                path,
                node.key_pos(&at).unwrap_or(TOP),
                format!("param `{pname}` has no default, but the job is scheduled and scheduled runs cannot ask for it: give it a default or set `schedule: null`"),
            ));
        }
        if let Some(d) = &param.default {
            if !d.is_null() && !param.kind.accepts(d) {
                out.push(Diagnostic::error(
                    path,
                    pos(node, &[at[0], at[1], at[2], "default"]),
                    format!(
                        "default of param `{pname}` is not of type {}",
                        param.kind.as_str()
                    ),
                ));
            }
            if let Some(choices) = &param.choices {
                if !d.is_null() && !choices.contains(d) {
                    out.push(Diagnostic::error(
                        path,
                        pos(node, &[at[0], at[1], at[2], "default"]),
                        format!("default of param `{pname}` is not one of its `enum` values"),
                    ));
                }
            }
        }
        if let Some(choices) = &param.choices {
            for (i, c) in choices.iter().enumerate() {
                if !param.kind.accepts(c) {
                    let idx = i.to_string();
                    out.push(Diagnostic::error(
                        path,
                        pos(node, &[at[0], at[1], at[2], "enum", &idx]),
                        format!(
                            "`enum` value of param `{pname}` is not of type {}",
                            param.kind.as_str()
                        ),
                    ));
                }
            }
        }
    }

    // Tasks: unique ids, dependencies, cycles, files, lineage.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in spec.tasks.iter().enumerate() {
        let idx = i.to_string();
        if let Some(first) = index.insert(t.id.as_str(), i) {
            out.push(Diagnostic::error(
                path,
                pos(node, &["spec", "tasks", &idx, "id"]),
                format!(
                    "task id `{}` is used twice (first by task #{})",
                    t.id,
                    first + 1
                ),
            ));
            index.insert(t.id.as_str(), first);
        }
    }
    for (i, t) in spec.tasks.iter().enumerate() {
        let idx = i.to_string();
        for (j, dep) in t.depends_on.iter().enumerate() {
            let jdx = j.to_string();
            let at = pos(node, &["spec", "tasks", &idx, "depends_on", &jdx]);
            if dep == &t.id {
                out.push(Diagnostic::error(
                    path,
                    at,
                    format!("task `{}` depends on itself", t.id),
                ));
            } else if !index.contains_key(dep.as_str()) {
                let mut known: Vec<&str> = spec.tasks.iter().map(|t| t.id.as_str()).collect();
                known.sort_unstable();
                known.dedup();
                out.push(Diagnostic::error(
                    path,
                    at,
                    format!(
                        "task `{}` depends on `{dep}`, which is not a task of this job (tasks: {})",
                        t.id,
                        known.join(", ")
                    ),
                ));
            }
        }
        if t.timeout.is_some_and(|d| d.as_secs() == 0) {
            out.push(Diagnostic::error(
                path,
                pos(node, &["spec", "tasks", &idx, "timeout"]),
                "timeout must be longer than 0s",
            ));
        }
        for key in t.env.keys() {
            if key.starts_with("OLO_") {
                out.push(Diagnostic::error(
                    path,
                    node.key_pos(&["spec", "tasks", &idx, "env", key]).unwrap_or(TOP),
                    format!("environment variable `{key}`: the OLO_ prefix is reserved for what olo sets"),
                ));
            }
        }
        if t.mlflow.is_some() && t.sql.is_some() {
            out.push(Diagnostic::error(
                path,
                node.key_pos(&["spec", "tasks", &idx, "mlflow"])
                    .unwrap_or(TOP),
                "`mlflow` applies to bash, python, spark and dbt tasks, not to sql tasks",
            ));
        }
        let ws_dir = format!("workspaces/{folder}");
        match t.kind() {
            TaskKind::Sql(s) => check_file(
                ctx,
                path,
                node,
                &["spec", "tasks", &idx, "sql", "file"],
                &ws_dir,
                &s.file,
                &mut out,
            ),
            TaskKind::Spark(s) => check_file(
                ctx,
                path,
                node,
                &["spec", "tasks", &idx, "spark", "application"],
                &ws_dir,
                &s.application,
                &mut out,
            ),
            TaskKind::Dbt(d) => {
                let dir = d.project_dir.trim_end_matches('/');
                let written = ["spec", "tasks", &idx, "dbt", "project_dir"];
                let at: &[&str] = if node.lookup(&written).is_some() {
                    &written
                } else {
                    &written[..4]
                };
                if check_relative(path, node, at, dir, &mut out) {
                    let project = format!("{dir}/dbt_project.yml");
                    check_file(ctx, path, node, at, &ws_dir, &project, &mut out);
                }
            }
            TaskKind::Bash(_) | TaskKind::Python(_) => {}
        }
        if let Some(ws) = workspace {
            for (field, list) in [("inputs", &t.inputs), ("outputs", &t.outputs)] {
                for (j, ds) in list.iter().enumerate() {
                    let jdx = j.to_string();
                    if let Err(e) = check_dataset(ctx, ws, ds) {
                        out.push(Diagnostic::error(
                            path,
                            pos(node, &["spec", "tasks", &idx, field, &jdx]),
                            e,
                        ));
                    }
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(
        &spec
            .tasks
            .iter()
            .map(|t| {
                (
                    t.id.as_str(),
                    t.depends_on.iter().map(Name::as_str).collect(),
                )
            })
            .collect::<Vec<_>>(),
    ) {
        let first = index.get(cycle[0]).copied().unwrap_or(0).to_string();
        out.push(Diagnostic::error(
            path,
            node.key_pos(&["spec", "tasks", &first, "depends_on"])
                .unwrap_or(TOP),
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }

    let ok = out.is_empty() && workspace.is_some() && schedule.is_some();
    if !ok {
        return (None, out);
    }
    let job = Job {
        dag_id: format!("{folder}__{name}"),
        name: name.clone(),
        workspace: workspace.map(|w| w.name.clone()).expect("checked"),
        path: loaded.path,
        schedule: schedule.expect("checked"),
        doc: loaded.doc,
    };
    (Some(job), out)
}

fn check_date(
    path: &str,
    node: &Node,
    field: &str,
    value: Option<&str>,
    out: &mut Vec<Diagnostic>,
) -> Option<NaiveDate> {
    let v = value?;
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            out.push(Diagnostic::error(
                path,
                pos(node, &["spec", field]),
                format!("`{field}` {v} is not a calendar date"),
            ));
            None
        }
    }
}

/// A path in a job that names a file of its workspace: relative, no `..`, present in the same
/// snapshot, and (following symbolic links) inside the workspace folder.
fn check_file(
    ctx: &Context<'_>,
    path: &str,
    node: &Node,
    at: &[&str],
    ws_dir: &str,
    rel: &str,
    out: &mut Vec<Diagnostic>,
) {
    let p = pos(node, at);
    if !check_relative(path, node, at, rel, out) {
        return;
    }
    let full = format!("{ws_dir}/{rel}");
    match ctx.snapshot.resolve(&full, &format!("{ws_dir}/")) {
        Ok(_) => {}
        Err(ResolveError::Missing(m)) => out.push(Diagnostic::error(
            path,
            p,
            format!("`{m}` does not exist in this revision"),
        )),
        Err(ResolveError::Escapes(t)) => out.push(Diagnostic::error(
            path,
            p,
            format!(
                "`{full}` is a symbolic link that leaves the workspace folder (to `{}`)",
                t.escape_debug()
            ),
        )),
        Err(ResolveError::Loop(_)) => out.push(Diagnostic::error(
            path,
            p,
            format!("`{full}`: too many levels of symbolic links"),
        )),
    }
}

/// A path written in a job: relative to the workspace folder, plain (no `..`, `.`, leading `/`).
fn check_relative(
    path: &str,
    node: &Node,
    at: &[&str],
    rel: &str,
    out: &mut Vec<Diagnostic>,
) -> bool {
    let plain = !(rel.is_empty()
        || rel.starts_with('/')
        || rel.contains('\\')
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|s| s.is_empty() || s == ".." || s == "."));
    if !plain {
        let field = at.last().copied().unwrap_or("file");
        out.push(Diagnostic::error(
            path,
            pos(node, at),
            format!(
                "`{field}` must be a plain path relative to the workspace folder (no leading /, no `..` or `.`), got `{}`",
                rel.escape_debug()
            ),
        ));
    }
    plain
}

/// `namespace.table` (this workspace) or `workspace.namespace.table`.
fn check_dataset(ctx: &Context<'_>, ws: &Workspace, ds: &str) -> Result<(), String> {
    let parts: Vec<&str> = ds.split('.').collect();
    let (ws, ns) = match parts.as_slice() {
        [ns, _] => (ws, *ns),
        [w, ns, _] => match ctx.workspaces.get(*w) {
            Some(w) => (w, *ns),
            // A workspace whose file failed validation is reported there, not again here.
            None if ctx.ws_folders.contains(*w) => return Ok(()),
            None => return Err(format!("dataset `{ds}`: there is no workspace `{w}`")),
        },
        _ => {
            return Err(format!(
                "dataset `{ds}` must be namespace.table or workspace.namespace.table"
            ))
        }
    };
    if ws
        .doc
        .spec
        .lakehouse
        .namespaces
        .iter()
        .any(|n| n.as_str() == ns)
    {
        Ok(())
    } else {
        let declared = &ws.doc.spec.lakehouse.namespaces;
        let has = if declared.is_empty() {
            "it declares none".to_string()
        } else {
            let names: Vec<&str> = declared.iter().map(Name::as_str).collect();
            format!("it has: {}", names.join(", "))
        };
        Err(format!(
            "dataset `{ds}`: workspace `{}` declares no namespace `{ns}` ({has})",
            ws.name
        ))
    }
}

/// Finds one dependency cycle (as `a -> b -> a`) in a task graph, if any. Iterative DFS.
pub fn find_cycle<'a>(tasks: &[(&'a str, Vec<&'a str>)]) -> Option<Vec<&'a str>> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut state = vec![0u8; tasks.len()]; // 0 new, 1 on stack, 2 done
    for start in 0..tasks.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &tasks[node].1;
            if *next < deps.len() {
                let dep = deps[*next];
                *next += 1;
                let Some(&d) = index.get(dep) else { continue };
                if d == node {
                    continue; // a self-dependency is reported on its own
                }
                match state[d] {
                    0 => {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                        let mut cycle: Vec<&str> =
                            stack[from..].iter().map(|(n, _)| tasks[*n].0).collect();
                        cycle.push(tasks[d].0);
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_with_their_path() {
        let g = vec![
            ("a", vec![]),
            ("b", vec!["a", "d"]),
            ("c", vec!["b"]),
            ("d", vec!["c"]),
        ];
        assert_eq!(find_cycle(&g), Some(vec!["b", "d", "c", "b"]));
        let dag = vec![("a", vec![]), ("b", vec!["a"]), ("c", vec!["a", "b"])];
        assert_eq!(find_cycle(&dag), None);
    }
}
