//! Column lineage: which fields of which datasets each field of an output dataset is computed
//! from, as the `columnLineage` facets of events' output datasets say (OpenLineage's
//! `ColumnLineageDatasetFacet`), and the graph of fields around a field, a dataset or a job in
//! Marquez's shape (`GET /api/v1/column-lineage`). Pure.
//!
//! A field's inputs are those of the latest event (by event time) whose facet names the field: a
//! changed query replaces them, and two jobs writing different fields of one dataset both count.
//! A field no newer facet names keeps the inputs it had. The facet's dataset-wide `dataset` list
//! (fields that filter or join every row, OpenLineage 1.x's indirect lineage) is left out, as
//! Marquez leaves it out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::NodeRef;

/// One field of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRef {
    pub dataset: NodeRef,
    pub field: String,
}

impl FieldRef {
    pub fn new(dataset: &NodeRef, field: &str) -> FieldRef {
        FieldRef {
            dataset: dataset.clone(),
            field: field.to_string(),
        }
    }

    /// Marquez's node id: `datasetField:<namespace>:<dataset>:<field>`.
    pub fn id(&self) -> String {
        format!(
            "datasetField:{}:{}:{}",
            self.dataset.namespace, self.dataset.name, self.field
        )
    }
}

/// A field an output field is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct InputField {
    pub field: FieldRef,
    /// The output field's `transformationDescription` and `transformationType` (the facet's
    /// older form, what Marquez reads) when sent; else the `description` and the `subtype` (or
    /// `type`) of the input field's first entry of `transformations` (the newer form).
    pub transformation_description: Option<String>,
    pub transformation_type: Option<String>,
    /// The input field's `transformations` as sent (null when none).
    pub transformations: Value,
}

/// What one output dataset's facet says: each of its fields, with the fields it is computed from.
pub type FacetFields = BTreeMap<String, Vec<InputField>>;

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// The fields of a `columnLineage` facet, each input's dataset named by `resolve(namespace,
/// name)` (olo's names). Entries without a field name, or input fields without a namespace, a
/// name and a field, are skipped; so is an output field with no inputs left.
pub fn parse_facet(facet: &Value, resolve: impl Fn(&str, &str) -> NodeRef) -> FacetFields {
    let mut out = FacetFields::new();
    let Some(fields) = facet.get("fields").and_then(Value::as_object) else {
        return out;
    };
    for (name, spec) in fields {
        let description = text(spec.get("transformationDescription"));
        let kind = text(spec.get("transformationType"));
        let mut seen = HashSet::new();
        let inputs: Vec<InputField> = spec
            .get("inputFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|input| {
                let namespace = input.get("namespace")?.as_str()?;
                let dataset = input.get("name")?.as_str()?;
                let field = input.get("field")?.as_str()?;
                let transformations = input.get("transformations");
                let first = transformations
                    .and_then(Value::as_array)
                    .and_then(|t| t.first());
                let field = FieldRef::new(&resolve(namespace, dataset), field);
                seen.insert(field.clone()).then(|| InputField {
                    field,
                    transformation_description: description
                        .clone()
                        .or_else(|| text(first.and_then(|t| t.get("description")))),
                    transformation_type: kind.clone().or_else(|| {
                        text(first.and_then(|t| t.get("subtype")))
                            .or_else(|| text(first.and_then(|t| t.get("type"))))
                    }),
                    transformations: transformations.cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        if !inputs.is_empty() {
            out.insert(name.clone(), inputs);
        }
    }
    out
}

/// The inputs of an output field, and the time of the event that gave them.
type Inputs = (DateTime<Utc>, Vec<InputField>);

/// Most output fields column lineage keeps: a bound on the memory a stream of events naming
/// ever new fields can take (each field with its inputs is a few hundred bytes). Fields already
/// known are still updated; a new one past the bound is counted in [`Columns::refused`].
pub const MAX_FIELDS: usize = 500_000;
/// Most input fields kept per output field (the first, in the facet's order).
pub const MAX_INPUTS: usize = 1_000;

/// Every field's inputs, as recorded.
#[derive(Debug, Clone)]
pub struct Columns {
    /// New output fields (or inputs past [`MAX_INPUTS`]) not kept, because of the bounds.
    refused: u64,
    /// The bounds: [`MAX_FIELDS`] and [`MAX_INPUTS`] but in tests.
    max_fields: usize,
    max_inputs: usize,
    /// Output field → its inputs.
    inputs: HashMap<FieldRef, Inputs>,
    /// Input field → the output fields computed from it.
    feeds: HashMap<FieldRef, BTreeSet<FieldRef>>,
    /// Dataset → its fields any facet named (as an output or an input).
    fields: HashMap<NodeRef, BTreeSet<String>>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns::with_bounds(MAX_FIELDS, MAX_INPUTS)
    }
}

/// The part of the column lineage a walk reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnGraph {
    /// Sorted by id.
    pub nodes: Vec<FieldRef>,
    /// (input, output), indexes into `nodes`, sorted.
    pub edges: Vec<(usize, usize)>,
    /// The walk stopped at the node limit.
    pub truncated: bool,
}

impl Columns {
    /// Empty, keeping at most `max_fields` output fields and `max_inputs` inputs of each.
    pub fn with_bounds(max_fields: usize, max_inputs: usize) -> Columns {
        Columns {
            refused: 0,
            max_fields,
            max_inputs,
            inputs: HashMap::new(),
            feeds: HashMap::new(),
            fields: HashMap::new(),
        }
    }

    /// Records what an event at `time` said of the fields of `output`. An older event than the
    /// one a field's inputs came from changes nothing of that field.
    pub fn record(&mut self, output: &NodeRef, time: DateTime<Utc>, facet: FacetFields) {
        for (name, inputs) in facet {
            self.set(FieldRef::new(output, &name), time, inputs);
        }
    }

    fn set(&mut self, output: FieldRef, time: DateTime<Utc>, mut inputs: Vec<InputField>) {
        if !self.inputs.contains_key(&output) && self.inputs.len() >= self.max_fields {
            self.refused += 1;
            if self.refused == 1 || self.refused.is_multiple_of(10_000) {
                tracing::warn!(
                    refused = self.refused,
                    "column lineage holds {} output fields, its bound: new fields are not kept \
                     (olo_lineage_column_fields_refused counts them)",
                    self.max_fields
                );
            }
            return;
        }
        if inputs.len() > self.max_inputs {
            self.refused += (inputs.len() - self.max_inputs) as u64;
            inputs.truncate(self.max_inputs);
        }
        if let Some((at, old)) = self.inputs.get(&output) {
            if *at > time {
                return;
            }
            for input in old {
                if let Some(feeds) = self.feeds.get_mut(&input.field) {
                    feeds.remove(&output);
                }
            }
        }
        for input in &inputs {
            self.feeds
                .entry(input.field.clone())
                .or_default()
                .insert(output.clone());
            self.fields
                .entry(input.field.dataset.clone())
                .or_default()
                .insert(input.field.field.clone());
        }
        self.fields
            .entry(output.dataset.clone())
            .or_default()
            .insert(output.field.clone());
        self.inputs.insert(output, (time, inputs));
    }

    /// Moves every dataset to the name `dataset` gives it now, when they differ (see
    /// `Observed::rename`).
    pub fn rename(&mut self, dataset: impl Fn(&NodeRef) -> NodeRef) {
        let fresh = Columns::with_bounds(self.max_fields, self.max_inputs);
        let old = std::mem::replace(self, fresh);
        self.refused = old.refused;
        let rename = |f: &FieldRef| FieldRef::new(&dataset(&f.dataset), &f.field);
        // Oldest first, so that where two names become one the newest inputs win.
        let mut entries: Vec<(FieldRef, Inputs)> = old.inputs.into_iter().collect();
        entries.sort_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| a.0.cmp(&b.0)));
        for (output, (time, inputs)) in entries {
            let inputs = inputs
                .into_iter()
                .map(|i| InputField {
                    field: rename(&i.field),
                    ..i
                })
                .collect();
            self.set(rename(&output), time, inputs);
        }
        for (d, names) in old.fields {
            self.fields.entry(dataset(&d)).or_default().extend(names);
        }
    }

    /// Output fields (and inputs) not kept because of [`MAX_FIELDS`] and [`MAX_INPUTS`].
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Output fields kept.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The fields of `dataset` any facet named.
    pub fn fields_of(&self, dataset: &NodeRef) -> impl Iterator<Item = &String> {
        self.fields.get(dataset).into_iter().flatten()
    }

    /// The fields `output` is computed from, with how.
    pub fn inputs_of(&self, output: &FieldRef) -> &[InputField] {
        self.inputs
            .get(output)
            .map(|(_, i)| i.as_slice())
            .unwrap_or(&[])
    }

    /// Marquez's `Dataset.columnLineage`: each field of `dataset` a facet gave inputs, by name,
    /// with its input fields (`namespace`, `dataset`, `field`, and how it is computed from it).
    pub fn of_dataset(&self, dataset: &NodeRef) -> Vec<Value> {
        self.fields_of(dataset)
            .filter_map(|name| {
                let inputs = self.inputs_of(&FieldRef::new(dataset, name));
                (!inputs.is_empty()).then(|| {
                    let inputs: Vec<Value> = inputs
                        .iter()
                        .map(|i| {
                            json!({
                                "namespace": i.field.dataset.namespace,
                                "dataset": i.field.dataset.name,
                                "field": i.field.field,
                                "transformationDescription": i.transformation_description,
                                "transformationType": i.transformation_type,
                            })
                        })
                        .collect();
                    json!({ "name": name, "inputFields": inputs })
                })
            })
            .collect()
    }

    /// The fields computed from `input`.
    fn feeds_of(&self, input: &FieldRef) -> impl Iterator<Item = &FieldRef> {
        self.feeds.get(input).into_iter().flatten()
    }

    /// The fields within `depth` edges of `start`: upstream only (what the start is computed
    /// from, and what that is computed from, ...), or with `with_downstream` whichever way each
    /// edge points (as Marquez answers, and as olo's dataset graph), and every edge between
    /// them. A start field no edge reaches is left out, so a field without column lineage gives
    /// an empty graph. At most `max_nodes` fields, the nearest first, with `truncated` set when
    /// the walk was cut.
    pub fn walk(
        &self,
        start: &[FieldRef],
        depth: usize,
        with_downstream: bool,
        max_nodes: usize,
    ) -> ColumnGraph {
        let mut reached: HashSet<&FieldRef> = HashSet::new();
        let mut queue: VecDeque<(&FieldRef, usize)> = VecDeque::new();
        let mut truncated = false;
        let mut starts: Vec<&FieldRef> = start.iter().collect();
        starts.sort();
        starts.dedup();
        for s in starts {
            if reached.len() >= max_nodes {
                truncated = true;
                break;
            }
            reached.insert(s);
            queue.push_back((s, 0));
        }
        'walk: while let Some((f, distance)) = queue.pop_front() {
            if distance >= depth {
                continue;
            }
            let mut next: Vec<&FieldRef> = self.inputs_of(f).iter().map(|i| &i.field).collect();
            next.sort();
            if with_downstream {
                next.extend(self.feeds_of(f));
            }
            for n in next {
                if reached.contains(n) {
                    continue;
                }
                if reached.len() >= max_nodes {
                    truncated = true;
                    break 'walk;
                }
                reached.insert(n);
                queue.push_back((n, distance + 1));
            }
        }
        let mut edges: Vec<(&FieldRef, &FieldRef)> = Vec::new();
        for f in &reached {
            for i in self.inputs_of(f) {
                if reached.contains(&i.field) {
                    edges.push((&i.field, *f));
                }
            }
        }
        let ends: HashSet<&FieldRef> = edges.iter().flat_map(|(i, o)| [*i, *o]).collect();
        let mut nodes: Vec<&FieldRef> = reached.into_iter().filter(|f| ends.contains(f)).collect();
        // Marquez sorts its graph by node id.
        nodes.sort_by_key(|f| f.id());
        let pos: HashMap<&FieldRef, usize> =
            nodes.iter().enumerate().map(|(i, f)| (*f, i)).collect();
        let mut edges: Vec<(usize, usize)> = edges.iter().map(|(i, o)| (pos[i], pos[o])).collect();
        edges.sort_unstable();
        ColumnGraph {
            nodes: nodes.into_iter().cloned().collect(),
            edges,
            truncated,
        }
    }

    /// The graph in Marquez's shape: `{"graph": [{id, type: "DATASET_FIELD", data, inEdges,
    /// outEdges}], "truncated"}`. `data` is Marquez's column lineage node: the field's dataset,
    /// `fieldType` (`field_type`, from the dataset's schema facet), and `inputFields`, its inputs
    /// in the graph with how each is transformed (olo adds each one's `transformations` as
    /// sent); the node's own `transformationDescription`/`transformationType` are its first
    /// input's, as Marquez's. Edges are as Marquez writes them: an out-edge goes from the field
    /// to one computed from it; an in-edge has the field as its `origin` and the input as its
    /// `destination` (Marquez's web UI reads them that way). Versions are not kept:
    /// `datasetVersion` is null.
    pub fn marquez(
        &self,
        graph: &ColumnGraph,
        field_type: impl Fn(&FieldRef) -> Option<String>,
    ) -> Value {
        let ids: Vec<String> = graph.nodes.iter().map(FieldRef::id).collect();
        let mut ins: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
        let mut outs: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
        for (i, o) in &graph.edges {
            ins[*o].push(*i);
            outs[*i].push(*o);
        }
        let nodes: Vec<Value> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(n, f)| {
                let in_graph: HashSet<&FieldRef> = ins[n].iter().map(|i| &graph.nodes[*i]).collect();
                let inputs: Vec<&InputField> = self
                    .inputs_of(f)
                    .iter()
                    .filter(|i| in_graph.contains(&i.field))
                    .collect();
                let input_fields: Vec<Value> = inputs
                    .iter()
                    .map(|i| {
                        json!({
                            "namespace": i.field.dataset.namespace,
                            "dataset": i.field.dataset.name,
                            "datasetVersion": null,
                            "field": i.field.field,
                            "transformationDescription": i.transformation_description,
                            "transformationType": i.transformation_type,
                            "transformations": i.transformations,
                        })
                    })
                    .collect();
                let first = inputs.first();
                json!({
                    "id": ids[n],
                    "type": "DATASET_FIELD",
                    "data": {
                        "namespace": f.dataset.namespace,
                        "dataset": f.dataset.name,
                        "datasetVersion": null,
                        "field": f.field,
                        "fieldType": field_type(f),
                        "transformationDescription": first.and_then(|i| i.transformation_description.clone()),
                        "transformationType": first.and_then(|i| i.transformation_type.clone()),
                        "inputFields": input_fields,
                    },
                    "inEdges": ins[n].iter().map(|i| json!({"origin": ids[n], "destination": ids[*i]})).collect::<Vec<_>>(),
                    "outEdges": outs[n].iter().map(|o| json!({"origin": ids[n], "destination": ids[*o]})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "graph": nodes, "truncated": graph.truncated })
    }
}

/// The `columnLineage` facets of an event's output datasets: (index among `outputs`, facet).
pub fn output_facets(raw: &Value) -> Vec<(usize, &Value)> {
    raw.get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, d)| Some((i, d.pointer("/facets/columnLineage")?)))
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
    }

    /// Names as the resolver gives them: Trino's `lake.<ws>.<ns>.<table>` is `<ws>`'s table.
    fn resolve(namespace: &str, name: &str) -> NodeRef {
        match name.strip_prefix("lake.sales.") {
            Some(table) if namespace.starts_with("trino://") => NodeRef::dataset("sales", table),
            _ => NodeRef::dataset(namespace, name),
        }
    }

    fn field(dataset: &str, field: &str) -> FieldRef {
        FieldRef::new(&NodeRef::dataset("sales", dataset), field)
    }

    /// A facet in the newer form: each input with its `transformations`.
    fn facet(fields: &[(&str, &[(&str, &str)])]) -> Value {
        let fields: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(name, inputs)| {
                let inputs: Vec<Value> = inputs
                    .iter()
                    .map(|(dataset, field)| {
                        json!({
                            "namespace": "sales", "name": dataset, "field": field,
                            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "description": "", "masking": false}]
                        })
                    })
                    .collect();
                (name.to_string(), json!({ "inputFields": inputs }))
            })
            .collect();
        json!({ "fields": fields })
    }

    #[test]
    fn column_lineage_keeps_at_most_its_bound_of_fields_and_inputs() {
        let mut c = Columns::with_bounds(3, 2);
        let t = NodeRef::dataset("sales", "wide");
        let fields: Vec<(String, Vec<(&str, &str)>)> = (0..5)
            .map(|i| {
                (
                    format!("f{i}"),
                    vec![("raw.a", "x"), ("raw.a", "y"), ("raw.a", "z")],
                )
            })
            .collect();
        let spec: Vec<(&str, &[(&str, &str)])> = fields
            .iter()
            .map(|(n, i)| (n.as_str(), i.as_slice()))
            .collect();
        c.record(&t, at(1), parse_facet(&facet(&spec), resolve));
        // Three fields kept with two inputs each; two fields and the third input of each of
        // the three refused.
        assert_eq!((c.len(), c.refused()), (3, 3 + 2));
        assert!(c
            .inputs_of(&FieldRef::new(&t, "f0"))
            .iter()
            .map(|i| i.field.field.as_str())
            .eq(["x", "y"]));
        // A known field is still updated at the bound.
        c.record(
            &t,
            at(2),
            parse_facet(&facet(&[("f0", &[("raw.a", "w")])]), resolve),
        );
        assert_eq!(c.inputs_of(&FieldRef::new(&t, "f0"))[0].field.field, "w");
        assert_eq!((c.len(), c.refused()), (3, 5));
        // A rename keeps the bounds and the count.
        c.rename(|d| d.clone());
        assert_eq!((c.len(), c.refused()), (3, 5));
    }

    /// raw.orders → silver.orders → gold.revenue, and silver.orders → gold.refunds.
    fn columns() -> Columns {
        let mut c = Columns::default();
        let silver = NodeRef::dataset("sales", "silver.orders");
        c.record(
            &silver,
            at(1),
            parse_facet(
                &facet(&[
                    (
                        "amount",
                        &[("raw.orders", "amount"), ("raw.orders", "currency")],
                    ),
                    ("day", &[("raw.orders", "ordered_at")]),
                ]),
                resolve,
            ),
        );
        c.record(
            &NodeRef::dataset("sales", "gold.revenue"),
            at(2),
            parse_facet(
                &facet(&[
                    ("revenue", &[("silver.orders", "amount")]),
                    ("day", &[("silver.orders", "day")]),
                ]),
                resolve,
            ),
        );
        c.record(
            &NodeRef::dataset("sales", "gold.refunds"),
            at(2),
            parse_facet(
                &facet(&[("refunded", &[("silver.orders", "amount")])]),
                resolve,
            ),
        );
        c
    }

    fn ids(g: &ColumnGraph) -> Vec<String> {
        g.nodes.iter().map(FieldRef::id).collect()
    }

    #[test]
    fn facets_in_the_older_and_the_newer_form() {
        let older = json!({"fields": {
            "revenue": {
                "inputFields": [
                    {"namespace": "trino://trino:8080", "name": "lake.sales.silver.orders", "field": "amount"},
                    {"namespace": "trino://trino:8080", "name": "lake.sales.silver.orders", "field": "amount"},
                    {"namespace": "sales", "name": "silver.orders"},
                    "not an input"
                ],
                "transformationDescription": "sum(amount)",
                "transformationType": "AGGREGATION"
            },
            "nothing": {"inputFields": []},
            "broken": 7
        }});
        let parsed = parse_facet(&older, resolve);
        assert_eq!(parsed.keys().collect::<Vec<_>>(), ["revenue"]);
        assert_eq!(
            parsed["revenue"],
            [InputField {
                field: field("silver.orders", "amount"),
                transformation_description: Some("sum(amount)".into()),
                transformation_type: Some("AGGREGATION".into()),
                transformations: Value::Null,
            }]
        );
        let newer = json!({"fields": {"revenue": {"inputFields": [
            {"namespace": "sales", "name": "silver.orders", "field": "amount",
             "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION", "description": "sum"}]},
            {"namespace": "sales", "name": "silver.orders", "field": "status",
             "transformations": [{"type": "INDIRECT"}]}
        ]}}});
        let parsed = parse_facet(&newer, resolve);
        let how: Vec<(Option<&str>, Option<&str>)> = parsed["revenue"]
            .iter()
            .map(|i| {
                (
                    i.transformation_description.as_deref(),
                    i.transformation_type.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            how,
            [(Some("sum"), Some("AGGREGATION")), (None, Some("INDIRECT"))]
        );
        assert_eq!(parsed["revenue"][1].transformations[0]["type"], "INDIRECT");
        assert!(parse_facet(&json!({"dataset": []}), resolve).is_empty());
    }

    #[test]
    fn the_latest_event_gives_a_fields_inputs() {
        let mut c = columns();
        let revenue = field("gold.revenue", "revenue");
        let newer = parse_facet(&facet(&[("revenue", &[("silver.orders", "day")])]), resolve);
        let older = parse_facet(&facet(&[("revenue", &[("raw.orders", "amount")])]), resolve);
        c.record(&revenue.dataset, at(3), newer);
        // An older event read later changes nothing.
        c.record(&revenue.dataset, at(0), older);
        let inputs: Vec<&FieldRef> = c.inputs_of(&revenue).iter().map(|i| &i.field).collect();
        assert_eq!(inputs, [&field("silver.orders", "day")]);
        // silver.orders.amount no longer feeds revenue; downstream of it only refunds is left.
        let g = c.walk(&[field("silver.orders", "amount")], 1, true, 100);
        assert_eq!(
            ids(&g),
            [
                "datasetField:sales:gold.refunds:refunded",
                "datasetField:sales:raw.orders:amount",
                "datasetField:sales:raw.orders:currency",
                "datasetField:sales:silver.orders:amount",
            ]
        );
        // Fields any facet named stay known.
        let known: Vec<&String> = c.fields_of(&revenue.dataset).collect();
        assert_eq!(known, ["day", "revenue"]);
        let raw: Vec<&String> = c
            .fields_of(&NodeRef::dataset("sales", "raw.orders"))
            .collect();
        assert_eq!(raw, ["amount", "currency", "ordered_at"]);
    }

    #[test]
    fn upstream_within_depth() {
        let c = columns();
        let revenue = field("gold.revenue", "revenue");
        let g = c.walk(std::slice::from_ref(&revenue), 20, false, 100);
        assert_eq!(
            ids(&g),
            [
                "datasetField:sales:gold.revenue:revenue",
                "datasetField:sales:raw.orders:amount",
                "datasetField:sales:raw.orders:currency",
                "datasetField:sales:silver.orders:amount",
            ]
        );
        assert!(!g.truncated);
        // (input, output): raw → silver twice, silver → gold.
        let edges: Vec<(String, String)> = g
            .edges
            .iter()
            .map(|(i, o)| (g.nodes[*i].field.clone(), g.nodes[*o].dataset.name.clone()))
            .collect();
        assert_eq!(
            edges,
            [
                ("amount".to_string(), "silver.orders".to_string()),
                ("currency".to_string(), "silver.orders".to_string()),
                ("amount".to_string(), "gold.revenue".to_string()),
            ]
        );
        let one = c.walk(std::slice::from_ref(&revenue), 1, false, 100);
        assert_eq!(
            ids(&one),
            [
                "datasetField:sales:gold.revenue:revenue",
                "datasetField:sales:silver.orders:amount",
            ]
        );
        // A source field has nothing upstream; downstream asked for, it has its consumers and
        // (whichever way each edge points) their other inputs.
        let currency = field("raw.orders", "currency");
        assert!(c
            .walk(std::slice::from_ref(&currency), 20, false, 100)
            .nodes
            .is_empty());
        let down = c.walk(std::slice::from_ref(&currency), 2, true, 100);
        assert_eq!(
            ids(&down),
            [
                "datasetField:sales:gold.refunds:refunded",
                "datasetField:sales:gold.revenue:revenue",
                "datasetField:sales:raw.orders:amount",
                "datasetField:sales:raw.orders:currency",
                "datasetField:sales:silver.orders:amount",
            ]
        );
        // A field no facet names: nothing.
        assert!(c
            .walk(&[field("gold.revenue", "nope")], 20, true, 100)
            .nodes
            .is_empty());
    }

    #[test]
    fn the_walk_stops_at_the_node_limit_nearest_first() {
        let c = columns();
        let g = c.walk(&[field("gold.revenue", "revenue")], 20, false, 2);
        assert!(g.truncated);
        assert_eq!(
            ids(&g),
            [
                "datasetField:sales:gold.revenue:revenue",
                "datasetField:sales:silver.orders:amount",
            ]
        );
        // A dataset's fields together.
        let start = [
            field("gold.revenue", "revenue"),
            field("gold.revenue", "day"),
        ];
        let g = c.walk(&start, 1, false, 100);
        assert_eq!(g.nodes.len(), 4);
        assert!(!g.truncated);
    }

    #[test]
    fn marquez_column_lineage_graph() {
        let c = columns();
        let g = c.walk(&[field("gold.revenue", "revenue")], 20, false, 100);
        let types = |f: &FieldRef| (f.field == "amount").then(|| "DECIMAL(18,2)".to_string());
        insta::assert_json_snapshot!(c.marquez(&g, types));
    }

    #[test]
    fn renamed_datasets_keep_their_lineage() {
        let mut c = Columns::default();
        let sent = NodeRef::dataset("trino://trino:8080", "lake.sales.gold.revenue");
        c.record(
            &sent,
            at(1),
            parse_facet(
                &json!({"fields": {"revenue": {"inputFields": [
                    {"namespace": "trino://trino:8080", "name": "lake.sales.silver.orders", "field": "amount"}
                ]}}}),
                NodeRef::dataset,
            ),
        );
        c.rename(|d| resolve(&d.namespace, &d.name));
        let revenue = field("gold.revenue", "revenue");
        let inputs: Vec<&FieldRef> = c.inputs_of(&revenue).iter().map(|i| &i.field).collect();
        assert_eq!(inputs, [&field("silver.orders", "amount")]);
        assert!(c.fields_of(&sent).next().is_none());
        let g = c.walk(&[field("silver.orders", "amount")], 5, true, 100);
        assert_eq!(g.nodes.len(), 2);
    }

    #[test]
    fn node_ids() {
        assert_eq!(
            ColumnNodeId::parse("datasetField:trino://t:8080:lake.sales.x:amount"),
            Ok(ColumnNodeId::Field("trino://t:8080:lake.sales.x", "amount"))
        );
        assert_eq!(
            ColumnNodeId::parse("dataset:sales:gold.revenue"),
            Ok(ColumnNodeId::Dataset("sales:gold.revenue"))
        );
        assert_eq!(
            ColumnNodeId::parse("job:sales:orders_daily"),
            Ok(ColumnNodeId::Job("job:sales:orders_daily"))
        );
        for bad in [
            "datasetField:sales:gold.revenue",
            "datasetField:sales:gold.revenue:",
            "dataset:sales",
            "job:x",
            "table:sales:x",
            "dataset:sales:gold.revenue#0193",
        ] {
            assert!(ColumnNodeId::parse(bad).is_err(), "{bad}");
        }
        let known = |d: &NodeRef| d.namespace == "trino://t:8080";
        assert_eq!(
            find_dataset("trino://t:8080:lake.sales.x", known),
            Some(NodeRef::dataset("trino://t:8080", "lake.sales.x"))
        );
        assert_eq!(find_dataset("s3://b:x", known), None);
    }

    #[test]
    fn output_facets_by_position() {
        let raw = json!({"outputs": [
            {"namespace": "sales", "name": "a"},
            {"namespace": "sales", "name": "b", "facets": {"columnLineage": {"fields": {}}}}
        ]});
        let found = output_facets(&raw);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 1);
    }
}
