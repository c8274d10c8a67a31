//! Column lineage: facets read, fields recorded and walked, node ids.

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
