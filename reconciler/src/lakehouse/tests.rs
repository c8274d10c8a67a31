use super::*;

fn ns(parts: &[&str], props: &[(&str, &str)]) -> DesiredNamespace {
    DesiredNamespace {
        id: NamespaceId::new("lake", parts),
        workspace: parts[0].to_string(),
        properties: with_managed_keys(
            props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    }
}

/// A reconcile's options: pruning, diffs of updates only.
const RECONCILE: PlanOptions = PlanOptions {
    prune: true,
    diffs: Diffs::Updates,
    observe: crate::plan::Observe::Full,
};
/// `olo plan`'s and pull requests' options: pruning, every change with a diff.
const WITH_DIFFS: PlanOptions = PlanOptions {
    diffs: Diffs::All,
    ..RECONCILE
};

fn owned(name: &str, hash: &str) -> InventoryItem {
    InventoryItem {
        target: TARGET.into(),
        name: name.into(),
        hash: hash.into(),
        revision: "r1".into(),
    }
}

/// (levels, properties, tables)
type Entry<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], usize);

fn observed(entries: &[Entry]) -> Observed {
    let mut o = Observed::default();
    for (parts, props, tables) in entries {
        o.namespaces.insert(
            NamespaceId::new("lake", parts),
            ObservedNamespace {
                properties: props
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                tables: *tables,
                children: Vec::new(),
            },
        );
    }
    o
}

fn actions(p: &LakePlan) -> Vec<(String, Action, Option<String>)> {
    p.changes
        .iter()
        .map(|c| (c.name.clone(), c.action, c.reason.clone()))
        .collect()
}

fn example_repo() -> olo_schema::Repo {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples-repo");
    let snapshot = crate::snapshot::from_worktree(&root).unwrap();
    olo_schema::validate(snapshot).repo.unwrap()
}

#[test]
fn the_example_wants_a_parent_and_three_namespaces_per_workspace_on_local_disk() {
    let locations = Locations {
        local_root: Some("/var/olo/warehouse".into()),
    };
    let d = desired(&example_repo(), &locations, &|l: &str| {
        l.starts_with("file:///")
    });
    let names: Vec<String> = d.namespaces.iter().map(|n| n.id.to_string()).collect();
    assert!(names.contains(&"lake.sales".to_string()), "{names:?}");
    assert!(
        names.contains(&"lake.sales.bronze".to_string()),
        "{names:?}"
    );
    // Parents come before their children.
    let parent = names.iter().position(|n| n == "lake.sales").unwrap();
    let child = names.iter().position(|n| n == "lake.sales.gold").unwrap();
    assert!(parent < child);
    let gold = d
        .namespaces
        .iter()
        .find(|n| n.id.dotted() == "sales.gold")
        .unwrap();
    assert_eq!(
        gold.properties["location"],
        "file:///var/olo/warehouse/lakehouse/sales/gold"
    );
    assert_eq!(gold.properties[OWNERSHIP_PROPERTY], "olo");
    // olo.properties lists every other key olo sets.
    let listed: Vec<&str> = gold.properties[MANAGED_KEYS].split(',').collect();
    let keys: Vec<&str> = gold
        .properties
        .keys()
        .map(String::as_str)
        .filter(|k| *k != MANAGED_KEYS)
        .collect();
    assert_eq!(listed, keys);
    let sales = d
        .warehouses
        .iter()
        .find(|w| w.workspace == "sales")
        .unwrap();
    assert_eq!(sales.location, "file:///var/olo/warehouse/lakehouse/sales");
    // Declared tables live under their namespace's location, and the create request says so.
    let orders = d
        .tables
        .iter()
        .find(|t| t.id.resource() == "table/lake/sales.bronze.orders")
        .unwrap();
    assert_eq!(
        orders.location.as_deref(),
        Some("file:///var/olo/warehouse/lakehouse/sales/bronze/orders")
    );
    let (_, op) = tables::plan_table(orders, None);
    let Some(tables::TableOp::Create { request, .. }) = op else {
        panic!("a missing table is created: {op:?}");
    };
    assert_eq!(
        request["location"],
        "file:///var/olo/warehouse/lakehouse/sales/bronze/orders"
    );
}

#[test]
fn warehouses_that_cannot_be_bootstrapped_are_left_out() {
    let d = desired(&example_repo(), &Locations::default(), &|_: &str| false);
    assert!(d.warehouses.is_empty());
    assert!(!d.namespaces.is_empty());
}

#[test]
fn missing_namespaces_are_created_parents_first() {
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![],
        namespaces: vec![
            ns(&["sales"], &[("owner", "a")]),
            ns(&["sales", "bronze"], &[]),
        ],
    };
    let p = plan(&d, &Observed::default(), &[], &BTreeSet::new(), &WITH_DIFFS);
    assert_eq!(
        actions(&p),
        vec![
            ("namespace/lake/sales".into(), Action::Create, None),
            ("namespace/lake/sales.bronze".into(), Action::Create, None),
        ]
    );
    assert!(matches!(&p.ops[0], Op::Create { id, .. } if id.dotted() == "sales"));
    let diff = p.changes[0].diff.as_deref().unwrap();
    assert!(diff.contains("+owner = a"), "{diff}");
}

#[test]
fn updates_touch_only_keys_olo_manages() {
    let want = ns(
        &["sales"],
        &[
            ("owner", "b"),
            ("comment", "new"),
            (OWNERSHIP_PROPERTY, "olo"),
        ],
    );
    // The catalog holds olo's old values, a key olo set before and no longer wants (`team`),
    // and a key someone else set (`retention`).
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![],
        namespaces: vec![want],
    };
    let o = observed(&[(
        &["sales"],
        &[
            ("owner", "a"),
            ("comment", "new"),
            ("team", "x"),
            ("retention", "30d"),
            (OWNERSHIP_PROPERTY, "olo"),
            (MANAGED_KEYS, "comment,olo.managed-by,owner,team"),
        ],
        0,
    )]);
    let p = plan(&d, &o, &[], &BTreeSet::new(), &RECONCILE);
    let Op::Update {
        removals, updates, ..
    } = &p.ops[0]
    else {
        panic!("{:?}", p.ops)
    };
    assert_eq!(removals, &vec!["team".to_string()]);
    assert_eq!(
        updates.keys().collect::<Vec<_>>(),
        vec!["olo.properties", "owner"]
    );
    assert!(!updates.contains_key("retention"));
    let diff = p.changes[0].diff.as_deref().unwrap();
    assert!(
        diff.contains("-owner = a") && diff.contains("+owner = b"),
        "{diff}"
    );
    assert!(diff.contains("-team = x"), "{diff}");
    assert!(!diff.contains("retention"), "{diff}");
}

#[test]
fn a_namespace_in_sync_is_unchanged_and_one_without_marker_is_adopted() {
    let want = ns(&["sales"], &[("owner", "a")]);
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![],
        namespaces: vec![want.clone()],
    };
    let same: Vec<(&str, &str)> = want
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let o = observed(&[(&["sales"], &same, 0)]);
    let p = plan(&d, &o, &[], &BTreeSet::new(), &RECONCILE);
    assert!(p.changes.is_empty() && p.unchanged == 1, "{p:?}");

    let foreign = observed(&[(&["sales"], &[("owner", "a")], 0)]);
    let p = plan(&d, &foreign, &[], &BTreeSet::new(), &RECONCILE);
    assert_eq!(p.changes[0].action, Action::Update);
    assert!(p.changes[0].reason.as_deref().unwrap().contains("adopts"));
}

#[test]
fn trusted_namespaces_are_not_read_and_count_as_unchanged() {
    let want = ns(&["sales"], &[("owner", "a")]);
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![],
        namespaces: vec![want.clone()],
    };
    let inv = vec![owned(
        "namespace/lake/sales",
        &namespace_hash(&want.properties),
    )];
    let t = trusted(&d, &inv);
    assert!(t.contains("namespace/lake/sales"));
    let (read, _, _) = to_observe(&d, &inv, &t);
    assert!(read.is_empty());
    let p = plan(&d, &Observed::default(), &inv, &t, &RECONCILE);
    assert!(p.changes.is_empty() && p.unchanged == 1);
}

#[test]
fn a_namespace_olo_applied_and_someone_dropped_is_drift() {
    let want = ns(&["sales"], &[]);
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![],
        namespaces: vec![want.clone()],
    };
    let inv = vec![owned(
        "namespace/lake/sales",
        &namespace_hash(&want.properties),
    )];
    // A full observe (nothing trusted) finds it missing.
    let p = plan(&d, &Observed::default(), &inv, &BTreeSet::new(), &RECONCILE);
    assert_eq!(p.changes[0].action, Action::Create);
    assert!(p.changes[0].is_drift(), "{:?}", p.changes[0]);
}

#[test]
fn drops_need_pruning_ownership_and_emptiness_and_go_children_first() {
    let marker: &[(&str, &str)] = &[(OWNERSHIP_PROPERTY, "olo")];
    let inv = vec![
        owned("namespace/lake/old", "h"),
        owned("namespace/lake/old.a", "h"),
        owned("namespace/lake/old.b", "h"),
        owned("namespace/lake/foreign", "h"),
        owned("namespace/lake/gone", "h"),
    ];
    let mut o = observed(&[
        (&["old"], marker, 0),
        (&["old", "a"], marker, 0),
        (&["old", "b"], marker, 2),
        (&["foreign"], &[("owner", "x")], 0),
    ]);
    o.namespaces
        .get_mut(&NamespaceId::new("lake", &["old"]))
        .unwrap()
        .children = vec![
        NamespaceId::new("lake", &["old", "a"]),
        NamespaceId::new("lake", &["old", "b"]),
    ];
    let p = plan(&Desired::default(), &o, &inv, &BTreeSet::new(), &RECONCILE);
    let got = actions(&p);
    assert_eq!(
        got[0],
        ("namespace/lake/old.a".into(), Action::Delete, None)
    );
    let reason_of = |name: &str| {
        got.iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, _, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(reason_of("namespace/lake/old.b").contains("holds 2 tables"));
    assert!(reason_of("namespace/lake/old").contains("holds namespaces olo keeps (old.b)"));
    assert!(reason_of("namespace/lake/foreign").contains("does not own it"));
    // Already gone: nothing to do.
    assert!(!got.iter().any(|(n, _, _)| n == "namespace/lake/gone"));
    assert_eq!(
        p.ops,
        vec![Op::Drop {
            id: NamespaceId::new("lake", &["old", "a"])
        }]
    );

    let kept = plan(
        &Desired::default(),
        &o,
        &inv,
        &BTreeSet::new(),
        &PlanOptions {
            prune: false,
            ..RECONCILE
        },
    );
    assert!(kept.ops.is_empty());
    assert!(kept.changes.iter().all(
        |c| c.action == Action::Keep && c.reason.as_deref().unwrap().contains("pruning is off")
    ));
}

#[test]
fn warehouses_are_ensured_and_never_deleted() {
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![DesiredWarehouse {
            workspace: "sales".into(),
            location: "s3://lakehouse/sales".into(),
        }],
        namespaces: vec![],
    };
    let p = plan(&d, &Observed::default(), &[], &BTreeSet::new(), &RECONCILE);
    assert_eq!(p.changes[0].name, "warehouse/sales");
    assert_eq!(p.changes[0].action, Action::Create);
    assert_eq!(
        p.ops,
        vec![Op::EnsureWarehouse {
            workspace: "sales".into(),
            location: "s3://lakehouse/sales".into()
        }]
    );
    let mut o = Observed::default();
    o.warehouses.insert("s3://lakehouse/sales".into());
    assert!(plan(&d, &o, &[], &BTreeSet::new(), &RECONCILE)
        .changes
        .is_empty());

    let inv = vec![owned("warehouse/old", "h")];
    let p = plan(&Desired::default(), &o, &inv, &BTreeSet::new(), &RECONCILE);
    assert_eq!(p.changes[0].action, Action::Keep);
    assert!(p.changes[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("never deletes"));
    assert_eq!(p.forget, vec!["warehouse/old".to_string()]);
    assert!(p.ops.is_empty());
}

#[test]
fn resource_names_parse_back() {
    let id = NamespaceId::new("lake", &["sales", "bronze"]);
    assert_eq!(parse_namespace_resource(&id.resource()), Some(id));
    assert_eq!(parse_namespace_resource("dags/x.py"), None);
    assert_eq!(parse_namespace_resource("namespace/lake/"), None);
}

#[test]
fn local_locations_map_s3_buckets_under_the_root() {
    let l = Locations {
        local_root: Some("/data/wh/".into()),
    };
    assert_eq!(
        l.map("s3://lakehouse/sales/"),
        "file:///data/wh/lakehouse/sales"
    );
    assert_eq!(l.map("s3a://b/p"), "file:///data/wh/b/p");
    assert_eq!(l.map("gs://b/p"), "gs://b/p");
    assert_eq!(Locations::default().map("s3://b/p"), "s3://b/p");
}

#[test]
fn the_plan_of_namespaces_reads_as_people_see_it() {
    let want = ns(
        &["sales", "gold"],
        &[("owner", "b"), (OWNERSHIP_PROPERTY, "olo")],
    );
    let d = Desired {
        tables: vec![],
        trino_catalogs: vec![],
        warehouses: vec![DesiredWarehouse {
            workspace: "sales".into(),
            location: "s3://lakehouse/sales".into(),
        }],
        namespaces: vec![ns(&["sales"], &[("owner", "b")]), want],
    };
    let marker: &[(&str, &str)] = &[(OWNERSHIP_PROPERTY, "olo")];
    let o = observed(&[
        (
            &["sales", "gold"],
            &[
                ("owner", "a"),
                ("retention", "30d"),
                (OWNERSHIP_PROPERTY, "olo"),
                (MANAGED_KEYS, "olo.managed-by,owner"),
            ],
            0,
        ),
        (&["sales", "raw"], marker, 3),
        (&["sales", "tmp"], marker, 0),
    ]);
    let inv = vec![
        owned("namespace/lake/sales.raw", "h"),
        owned("namespace/lake/sales.tmp", "h"),
    ];
    let lake = plan(&d, &o, &inv, &BTreeSet::new(), &WITH_DIFFS);
    let mut p = crate::plan::Plan {
        revision: Some("0123456789ab".into()),
        changes: lake.changes,
        unchanged: lake.unchanged,
    };
    p.sort();
    insta::assert_snapshot!(crate::report::text(&p, true));
}
