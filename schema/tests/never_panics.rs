//! Validation never panics or hangs, whatever the bytes: arbitrary bytes, arbitrary YAML-ish
//! text, and arbitrary (well-formed) YAML documents in every place olo reads.

use olo_schema::{validate, Snapshot};
use proptest::prelude::*;

const PLACES: &[&str] = &[
    "olo.yaml",
    "workspaces/w/workspace.yaml",
    "workspaces/w/jobs/j.yaml",
];

fn snapshot_with(place: &str, bytes: Vec<u8>) -> Snapshot {
    let mut s = Snapshot::new(None);
    s.insert_file(
        "workspaces/w/workspace.yaml",
        "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w', namespaces: [raw]}\n",
    );
    s.insert_file(place, bytes);
    s
}

/// YAML-looking text built from the characters that matter to a YAML parser.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\n".to_string()),
            Just("  ".to_string()),
            Just("- ".to_string()),
            Just(": ".to_string()),
            Just("&a ".to_string()),
            Just("*a ".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just(", ".to_string()),
            Just("---\n".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("!!str ".to_string()),
            Just("? ".to_string()),
            Just("|\n".to_string()),
            Just("apiVersion: olo/v1\n".to_string()),
            Just("kind: Job\n".to_string()),
            Just("tasks".to_string()),
            "[a-z_]{1,8}",
            "[0-9.e+-]{1,6}",
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// Well-formed YAML values of any shape, as text.
fn yaml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop_oneof![
            Just("apiVersion"),
            Just("kind"),
            Just("metadata"),
            Just("name"),
            Just("spec"),
            Just("tasks"),
            Just("id"),
            Just("bash"),
            Just("depends_on"),
        ]
        .prop_map(|s| s.to_string()),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("apiVersion"),
                        Just("kind"),
                        Just("metadata"),
                        Just("name"),
                        Just("spec"),
                        Just("tasks"),
                        Just("id"),
                        Just("schedule"),
                        Just("x"),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| {
                let mut seen = std::collections::HashSet::new();
                let entries: Vec<String> = kv
                    .into_iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(place in 0..PLACES.len(), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = validate(snapshot_with(PLACES[place], bytes));
    }

    #[test]
    fn yaml_looking_text(place in 0..PLACES.len(), text in yamlish()) {
        let v = validate(snapshot_with(PLACES[place], text.into_bytes()));
        for d in &v.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
        }
    }

    #[test]
    fn well_formed_documents(place in 0..PLACES.len(), doc in yaml_value()) {
        let v = validate(snapshot_with(PLACES[place], doc.into_bytes()));
        // A random document is never a valid job or workspace by accident, and says why.
        prop_assert!(v.repo.is_none() || PLACES[place] == "olo.yaml");
    }
}
