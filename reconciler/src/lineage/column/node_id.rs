//! The node ids of Marquez's `GET /api/v1/column-lineage`: a field, a dataset or a job.

use crate::lineage::NodeRef;

/// What a column lineage `nodeId` names, before it is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnNodeId<'a> {
    /// `dataset:<namespace>:<name>`: the part after `dataset:`.
    Dataset(&'a str),
    /// `datasetField:<namespace>:<name>:<field>`: the part before the field, and the field.
    Field(&'a str, &'a str),
    /// `job:<namespace>:<name>`: the whole id.
    Job(&'a str),
}

impl<'a> ColumnNodeId<'a> {
    /// Reads a node id; Marquez's versioned ids (`…#<version>`) are refused, olo keeps no
    /// versions.
    pub fn parse(id: &'a str) -> Result<ColumnNodeId<'a>, String> {
        if id.contains('#') {
            return Err(format!(
                "{id:?} names a version (#…); olo keeps no dataset or job versions"
            ));
        }
        let field = |rest: &'a str| {
            rest.rsplit_once(':')
                .filter(|(d, f)| d.contains(':') && !f.is_empty())
                .map(|(d, f)| ColumnNodeId::Field(d, f))
        };
        let parsed = if let Some(rest) = id.strip_prefix("datasetField:") {
            field(rest)
        } else if let Some(rest) = id.strip_prefix("dataset:") {
            rest.contains(':').then_some(ColumnNodeId::Dataset(rest))
        } else if id.starts_with("job:") && id["job:".len()..].contains(':') {
            Some(ColumnNodeId::Job(id))
        } else {
            None
        };
        parsed.ok_or_else(|| {
            format!(
                "`nodeId` must be dataset:<namespace>:<name>, \
                 datasetField:<namespace>:<name>:<field> or job:<namespace>:<name>, not {id:?}"
            )
        })
    }
}

/// The dataset `<namespace>:<name>` names, namespaces holding `:` (`s3://bucket`,
/// `trino://host:8080`): every split is tried, the first that `known` accepts wins.
pub fn find_dataset(rest: &str, known: impl Fn(&NodeRef) -> bool) -> Option<NodeRef> {
    rest.match_indices(':')
        .map(|(i, _)| NodeRef::dataset(&rest[..i], &rest[i + 1..]))
        .find(|d| known(d))
}
