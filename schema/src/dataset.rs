//! The table a task's `inputs`/`outputs` entry names, as lineage names it.

/// `(workspace, "namespace.table")` of a dataset of the spec: `namespace.table` is a table of the
/// job's own workspace, `workspace.namespace.table` one of the named workspace. This pair is the
/// OpenLineage dataset olo uses for the table (namespace = workspace), in rendered DAGs and in its
/// lineage graph alike.
pub fn lineage_name(job_workspace: &str, dataset: &str) -> (String, String) {
    match dataset.split('.').collect::<Vec<_>>().as_slice() {
        [ws, ns, table] => (ws.to_string(), format!("{ns}.{table}")),
        _ => (job_workspace.to_string(), dataset.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_other_workspaces() {
        assert_eq!(
            lineage_name("sales", "bronze.orders"),
            ("sales".into(), "bronze.orders".into())
        );
        assert_eq!(
            lineage_name("marketing", "sales.gold.revenue"),
            ("sales".into(), "gold.revenue".into())
        );
    }
}
