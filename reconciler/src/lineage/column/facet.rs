//! Reading OpenLineage's `columnLineage` facet (`ColumnLineageDatasetFacet`) of events' output
//! datasets into [`FacetFields`], input datasets in olo's names.

use std::collections::HashSet;

use serde_json::Value;

use super::{FacetFields, FieldRef, InputField};
use crate::lineage::NodeRef;

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
