use super::*;

fn col(name: &str, kind: &str, required: bool) -> Column {
    Column {
        name: name.into(),
        kind: ColumnType::parse(kind).unwrap(),
        required,
        doc: None,
    }
}

fn table(columns: Vec<Column>, partition: &[&str]) -> DesiredTable {
    DesiredTable {
        location: None,
        id: TableId {
            namespace: NamespaceId::new("lake", &["sales", "bronze"]),
            name: "orders".into(),
        },
        workspace: "sales".into(),
        columns,
        partition: partition
            .iter()
            .map(|p| parse_partition(p).unwrap())
            .collect(),
        properties: super::super::with_managed_keys(
            [("write.format.default".to_string(), "parquet".to_string())].into(),
        ),
        allow_drop: false,
        allow_repartition: false,
    }
}

/// The metadata a catalog holds after creating `t` (and applying `commits`).
fn created(t: &DesiredTable) -> Value {
    let (_, op) = plan_table(t, None);
    let Some(TableOp::Create { request, .. }) = op else {
        panic!("{op:?}")
    };
    new_metadata(&request, "file:///w/sales/bronze/orders", "u-1", 1)
}

fn commit(metadata: &mut Value, t: &DesiredTable) -> Option<Change> {
    let cur = Current::from_metadata(metadata).unwrap();
    let (change, op) = plan_table(t, Some(&cur));
    if let Some(TableOp::Commit {
        requirements,
        updates,
        ..
    }) = op
    {
        apply_updates(metadata, &requirements, &updates, 2).unwrap();
    }
    change
}

#[test]
fn a_new_table_is_created_with_ids_and_a_partition_spec() {
    let t = table(
        vec![col("id", "long", true), col("ts", "timestamptz", false)],
        &["day(ts)", "bucket(16, id)"],
    );
    let (change, op) = plan_table(&t, None);
    let change = change.unwrap();
    assert_eq!(change.name, "table/lake/sales.bronze.orders");
    assert_eq!(change.action, Action::Create);
    assert!(change.diff.unwrap().contains("+column id long required"));
    let Some(TableOp::Create { request, .. }) = op else {
        panic!()
    };
    assert_eq!(request["schema"]["fields"][1]["id"], 2);
    assert_eq!(
        request["partition-spec"]["fields"],
        json!([
            {"source-id": 2, "field-id": 1000, "name": "ts_day", "transform": "day"},
            {"source-id": 1, "field-id": 1001, "name": "id_bucket", "transform": "bucket[16]"}
        ])
    );
    assert_eq!(
        request["properties"]["olo.properties"],
        "write.format.default"
    );
    // Applied, the same declaration plans nothing.
    let mut m = created(&t);
    assert_eq!(commit(&mut m, &t), None);
}

#[test]
fn additive_changes_apply_with_new_ids() {
    let before = table(
        vec![col("id", "int", true), col("name", "string", false)],
        &[],
    );
    let mut m = created(&before);
    let mut after = table(
        vec![
            col("id", "long", false), // promoted and relaxed
            col("name", "string", false),
            col("email", "string", false), // new, optional
        ],
        &[],
    );
    after.columns[2].doc = Some("contact".into());
    let change = commit(&mut m, &after).unwrap();
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.reason, None);
    let diff = change.diff.unwrap();
    assert!(
        diff.contains("-column id int required\n+column id long"),
        "{diff}"
    );
    assert!(diff.contains("+column email string -- contact"), "{diff}");
    let cur = Current::from_metadata(&m).unwrap();
    assert_eq!(cur.schema_id, 1);
    assert_eq!(cur.last_column_id, 3);
    assert_eq!(cur.fields[2].0, 3);
    assert_eq!(cur.fields[0].2, json!("long"));
    assert_eq!(commit(&mut m, &after), None, "converged");
}

#[test]
fn destructive_changes_are_refused_unless_allowed_and_say_how() {
    let before = table(
        vec![
            col("id", "long", true),
            col("ts", "timestamp", false),
            col("old", "string", false),
        ],
        &["day(ts)"],
    );
    let mut m = created(&before);
    let mut after = table(
        vec![
            col("id", "string", true),    // incompatible
            col("ts", "timestamp", true), // optional -> required
            col("must", "string", true),  // new required
        ],
        &["month(ts)"],
    );
    let (change, op) = plan_table(&after, Current::from_metadata(&m).as_ref());
    let change = change.unwrap();
    assert_eq!(change.action, Action::Keep, "{change:?}");
    assert!(op.is_none());
    let reason = change.reason.unwrap();
    for needle in [
        "Iceberg cannot change column `id` from long to string",
        "making column `ts` required is not allowed",
        "a new column must be optional: `must`",
        "dropping column `old` is destructive: add `allow: [drop_column]`",
        "changing the partitioning from day(ts) to month(ts) is destructive: add `allow: [repartition]`",
    ] {
        assert!(reason.contains(needle), "{needle} in {reason}");
    }

    // Allowed: the column goes and the spec changes; refused parts stay refused.
    after.allow_drop = true;
    after.allow_repartition = true;
    let change = commit(&mut m, &after).unwrap();
    assert_eq!(change.action, Action::Update);
    assert!(change
        .reason
        .unwrap()
        .starts_with("refused: Iceberg cannot change"));
    let cur = Current::from_metadata(&m).unwrap();
    let names: Vec<&str> = cur.fields.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(names, vec!["id", "ts"]);
    assert_eq!(cur.partition, vec![("ts".to_string(), "month".to_string())]);
    assert_eq!(m["default-spec-id"], 1);
    assert_eq!(m["partition-specs"][1]["fields"][0]["field-id"], 1001);
}

#[test]
fn properties_olo_did_not_set_stay() {
    let before = table(vec![col("id", "long", true)], &[]);
    let mut m = created(&before);
    m["properties"]["retention"] = json!("30d");
    let mut after = before.clone();
    after.properties = super::super::with_managed_keys(
        [("commit.retry.num-retries".to_string(), "5".to_string())].into(),
    );
    let change = commit(&mut m, &after).unwrap();
    assert!(!change.diff.unwrap().contains("retention"));
    let props = &m["properties"];
    assert_eq!(props["retention"], "30d");
    assert_eq!(props["commit.retry.num-retries"], "5");
    assert!(props.get("write.format.default").is_none(), "{props}");
}

#[test]
fn a_stale_commit_is_refused() {
    let t = table(vec![col("id", "long", true)], &[]);
    let mut m = created(&t);
    let err = apply_updates(
        &mut m,
        &[json!({"type": "assert-current-schema-id", "current-schema-id": 7})],
        &[],
        3,
    )
    .unwrap_err();
    assert!(err.contains("schema changed meanwhile"), "{err}");
}

#[test]
fn the_plan_of_a_table_reads_as_people_see_it() {
    let before = table(
        vec![col("id", "int", true), col("old", "string", false)],
        &["bucket(16, id)"],
    );
    let m = created(&before);
    let mut after = table(
        vec![col("id", "long", true), col("note", "string", false)],
        &["id"],
    );
    after.columns[1].doc = Some("free text".into());
    let (change, _) = plan_table(&after, Current::from_metadata(&m).as_ref());
    let plan = crate::plan::Plan {
        revision: Some("0123456789ab".into()),
        changes: vec![change.unwrap()],
        unchanged: 0,
    };
    insta::assert_snapshot!(crate::report::text(&plan, true));
}
