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

mod facet;
mod node_id;

pub use facet::{output_facets, parse_facet};
pub use node_id::{find_dataset, ColumnNodeId};

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

#[cfg(test)]
mod tests;
