//! Declared Iceberg tables: desired state from `spec.lakehouse.tables`, the plan against a
//! table's current metadata, and the REST catalog's own request shapes (`CreateTableRequest`,
//! `TableUpdate`s of a commit) as the one description of what to do. The REST catalog sends
//! them; the SQL catalog applies the same updates to the metadata file itself
//! ([`apply_updates`]). Pure.
//!
//! Evolution rules: a new optional column, a type promotion (int to long, float to double, a
//! wider decimal), a column made optional, a changed doc and properties apply. Dropping a column
//! or changing the partitioning is destructive and applies only when the declaration's `allow`
//! names it. What Iceberg cannot do in place (an incompatible type change, making a column
//! required, adding a required column) is refused. A refused change never blocks the rest: the
//! plan says plainly what was refused and why.

use std::collections::{BTreeMap, BTreeSet};

use olo_schema::model::AllowedChange;
use olo_schema::table::{parse_partition, ColumnType, Transform};
use serde_json::{json, Value};

use super::{NamespaceId, MANAGED_KEYS};
use crate::plan::{text_diff, Action, Change};

/// A table of a catalog: `lake` + `sales.bronze` + `orders`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId {
    pub namespace: NamespaceId,
    pub name: String,
}

impl TableId {
    /// `table/lake/sales.bronze.orders`
    pub fn resource(&self) -> String {
        format!(
            "table/{}/{}.{}",
            self.namespace.catalog,
            self.namespace.dotted(),
            self.name
        )
    }
}

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
    pub required: bool,
    pub doc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTable {
    pub id: TableId,
    pub workspace: String,
    pub columns: Vec<Column>,
    pub partition: Vec<(Transform, String)>,
    /// Every property olo sets, `olo.properties` included.
    pub properties: BTreeMap<String, String>,
    /// `<namespace location>/<table>` when its namespace has a `location` (filled in by
    /// [`super::desired`], which knows the namespaces); the catalog's default otherwise.
    pub location: Option<String>,
    pub allow_drop: bool,
    pub allow_repartition: bool,
}

/// The desired tables of a workspace (the repository is valid, so types and transforms parse).
pub fn desired(ws: &olo_schema::Workspace) -> Vec<DesiredTable> {
    let lake = &ws.doc.spec.lakehouse;
    let mut out = Vec::new();
    for t in &lake.tables {
        let (ns, name) = t.split_name();
        let columns = t
            .columns
            .iter()
            .filter_map(|c| {
                Some(Column {
                    name: c.name.clone(),
                    kind: ColumnType::parse(&c.kind).ok()?,
                    required: c.required,
                    doc: c.doc.clone(),
                })
            })
            .collect();
        let partition = t
            .partition_by
            .iter()
            .filter_map(|p| parse_partition(p).ok())
            .collect();
        let mut properties = t.properties.clone();
        properties.insert(super::OWNERSHIP_PROPERTY.into(), "olo".into());
        out.push(DesiredTable {
            id: TableId {
                namespace: NamespaceId::new(lake.catalog.as_str(), &[ws.name.as_str(), ns]),
                name: name.to_string(),
            },
            workspace: ws.name.to_string(),
            columns,
            partition,
            properties: super::with_managed_keys(properties),
            location: None,
            allow_drop: t.allow.contains(&AllowedChange::DropColumn),
            allow_repartition: t.allow.contains(&AllowedChange::Repartition),
        });
    }
    out
}

/// The parts of a table's metadata the plan reads (format v1 and v2).
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub schema_id: i64,
    pub max_schema_id: i64,
    pub last_column_id: i64,
    /// (id, name, type as Iceberg JSON, required, doc)
    pub fields: Vec<(i64, String, Value, bool, Option<String>)>,
    pub max_spec_id: i64,
    pub last_partition_id: i64,
    /// (source column name, transform)
    pub partition: Vec<(String, String)>,
    pub properties: BTreeMap<String, String>,
}

impl Current {
    /// Reads TableMetadata JSON; `None` when it lacks what the plan needs.
    pub fn from_metadata(m: &Value) -> Option<Current> {
        let schema_id = m
            .get("current-schema-id")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let schemas: Vec<&Value> = match m.get("schemas").and_then(Value::as_array) {
            Some(s) => s.iter().collect(),
            None => vec![m.get("schema")?],
        };
        let schema = schemas
            .iter()
            .find(|s| s.get("schema-id").and_then(Value::as_i64).unwrap_or(0) == schema_id)
            .or(schemas.first())?;
        let max_schema_id = schemas
            .iter()
            .filter_map(|s| s.get("schema-id").and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        let mut fields = Vec::new();
        for f in schema.get("fields")?.as_array()? {
            fields.push((
                f.get("id")?.as_i64()?,
                f.get("name")?.as_str()?.to_string(),
                f.get("type")?.clone(),
                f.get("required").and_then(Value::as_bool).unwrap_or(false),
                f.get("doc").and_then(Value::as_str).map(str::to_string),
            ));
        }
        let last_column_id = m
            .get("last-column-id")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| fields.iter().map(|f| f.0).max().unwrap_or(0));
        let spec_id = m
            .get("default-spec-id")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let specs: Vec<&Value> = m
            .get("partition-specs")
            .and_then(Value::as_array)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        let spec_fields: Vec<Value> = specs
            .iter()
            .find(|s| s.get("spec-id").and_then(Value::as_i64) == Some(spec_id))
            .and_then(|s| s.get("fields"))
            .or_else(|| m.get("partition-spec"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let name_of = |id: i64| {
            fields
                .iter()
                .find(|f| f.0 == id)
                .map(|f| f.1.clone())
                .unwrap_or_else(|| format!("#{id}"))
        };
        let partition = spec_fields
            .iter()
            .filter_map(|f| {
                let source = f.get("source-id")?.as_i64()?;
                let transform = f.get("transform")?.as_str()?;
                (transform != "void").then(|| (name_of(source), transform.to_string()))
            })
            .collect();
        let last_partition_id = m
            .get("last-partition-id")
            .and_then(Value::as_i64)
            .unwrap_or(999);
        let properties = m
            .get("properties")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Current {
            schema_id,
            max_schema_id,
            last_column_id,
            fields,
            max_spec_id: specs
                .iter()
                .filter_map(|s| s.get("spec-id").and_then(Value::as_i64))
                .max()
                .unwrap_or(0),
            last_partition_id,
            partition,
            properties,
        })
    }
}

/// What to do to one table.
#[derive(Debug, Clone, PartialEq)]
pub enum TableOp {
    /// The body of `POST …/namespaces/{ns}/tables`.
    Create { id: TableId, request: Value },
    /// The body of `POST …/namespaces/{ns}/tables/{table}`: requirements and updates.
    Commit {
        id: TableId,
        requirements: Vec<Value>,
        updates: Vec<Value>,
    },
}

fn field_json(id: i64, c: &Column) -> Value {
    let mut f = json!({
        "id": id,
        "name": c.name,
        "type": c.kind.to_string(),
        "required": c.required,
    });
    if let Some(doc) = &c.doc {
        f["doc"] = json!(doc);
    }
    f
}

fn spec_json(spec_id: i64, fields: &[(i64, i64, &(Transform, String))]) -> Value {
    json!({
        "spec-id": spec_id,
        "fields": fields.iter().map(|(source, field, (t, col))| json!({
            "source-id": source,
            "field-id": field,
            "name": t.field_name(col),
            "transform": t.iceberg(),
        })).collect::<Vec<_>>(),
    })
}

/// The table as the plan shows it: one line per column, partition field and property.
pub fn describe(t: &DesiredTable) -> String {
    describe_desired(t)
}

fn describe_desired(t: &DesiredTable) -> String {
    let mut out = String::new();
    for c in &t.columns {
        out.push_str(&column_line(
            &c.name,
            &c.kind.to_string(),
            c.required,
            c.doc.as_deref(),
        ));
    }
    for (tr, col) in &t.partition {
        out.push_str(&format!("partition {}({col})\n", tr.iceberg()));
    }
    for (k, v) in &t.properties {
        out.push_str(&format!("property {k} = {v}\n"));
    }
    out
}

fn describe_current(c: &Current, shown_props: &BTreeSet<&str>) -> String {
    let mut out = String::new();
    for (_, name, kind, required, doc) in &c.fields {
        let kind = kind
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_string());
        out.push_str(&column_line(name, &kind, *required, doc.as_deref()));
    }
    for (col, tr) in &c.partition {
        out.push_str(&format!("partition {tr}({col})\n"));
    }
    for (k, v) in &c.properties {
        if shown_props.contains(k.as_str()) {
            out.push_str(&format!("property {k} = {v}\n"));
        }
    }
    out
}

fn column_line(name: &str, kind: &str, required: bool, doc: Option<&str>) -> String {
    let mut line = format!("column {name} {kind}");
    if required {
        line.push_str(" required");
    }
    if let Some(d) = doc {
        line.push_str(&format!(" -- {}", d.replace('\n', " ")));
    }
    line.push('\n');
    line
}

/// The plan of one declared table against its current metadata (`None`: it does not exist).
pub fn plan_table(
    t: &DesiredTable,
    current: Option<&Current>,
) -> (Option<Change>, Option<TableOp>) {
    let name = t.id.resource();
    let Some(cur) = current else {
        let fields: Vec<Value> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| field_json(i as i64 + 1, c))
            .collect();
        let id_of = |col: &str| {
            t.columns
                .iter()
                .position(|c| c.name == col)
                .map(|i| i as i64 + 1)
                .unwrap_or(0)
        };
        let spec_fields: Vec<(i64, i64, &(Transform, String))> = t
            .partition
            .iter()
            .enumerate()
            .map(|(i, p)| (id_of(&p.1), 1000 + i as i64, p))
            .collect();
        let mut request = json!({
            "name": t.id.name,
            "schema": {"type": "struct", "schema-id": 0, "fields": fields},
            "partition-spec": spec_json(0, &spec_fields),
            "properties": t.properties,
            "stage-create": false,
        });
        if let Some(location) = &t.location {
            request["location"] = json!(location);
        }
        let change = Change {
            name: name.clone(),
            action: Action::Create,
            hash: String::new(),
            diff: text_diff(&name, b"", describe_desired(t).as_bytes()),
            reason: None,
        };
        return (
            Some(change),
            Some(TableOp::Create {
                id: t.id.clone(),
                request,
            }),
        );
    };

    let mut refused: Vec<String> = Vec::new();
    let mut schema_changed = false;
    let mut next_id = cur.last_column_id;
    let mut fields: Vec<Value> = Vec::new();
    let by_name: BTreeMap<&str, &(i64, String, Value, bool, Option<String>)> =
        cur.fields.iter().map(|f| (f.1.as_str(), f)).collect();
    for c in &t.columns {
        match by_name.get(c.name.as_str()) {
            Some((id, _, kind, required, doc)) => {
                let have = kind.as_str().and_then(|k| ColumnType::parse(k).ok());
                let mut col = c.clone();
                match have {
                    Some(h) if h == c.kind => {}
                    Some(h) if h.promotes_to(c.kind) => schema_changed = true,
                    Some(h) => {
                        refused.push(format!(
                            "Iceberg cannot change column `{}` from {h} to {}: add a new column instead",
                            c.name, c.kind
                        ));
                        col.kind = h;
                    }
                    None => {
                        refused.push(format!(
                            "column `{}` has a nested type olo does not manage",
                            c.name
                        ));
                        fields.push(json!({"id": id, "name": c.name, "type": kind, "required": required}));
                        continue;
                    }
                }
                if c.required && !required {
                    refused.push(format!(
                        "making column `{}` required is not allowed: existing rows may hold no value",
                        c.name
                    ));
                    col.required = false;
                } else if c.required != *required {
                    schema_changed = true;
                }
                if col.doc != *doc {
                    schema_changed = true;
                }
                fields.push(field_json(*id, &col));
            }
            None if c.required => refused.push(format!(
                "a new column must be optional: `{}` is required, and existing rows have no value for it",
                c.name
            )),
            None => {
                next_id += 1;
                schema_changed = true;
                fields.push(field_json(next_id, c));
            }
        }
    }
    let wanted: BTreeSet<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    for (id, fname, kind, required, doc) in &cur.fields {
        if wanted.contains(fname.as_str()) {
            continue;
        }
        if t.allow_drop {
            schema_changed = true;
        } else {
            refused.push(format!(
                "dropping column `{fname}` is destructive: add `allow: [drop_column]` to the table to allow it"
            ));
            let mut f = json!({"id": id, "name": fname, "type": kind, "required": required});
            if let Some(d) = doc {
                f["doc"] = json!(d);
            }
            fields.push(f);
        }
    }

    // Partitioning.
    let want_partition: Vec<(String, String)> = t
        .partition
        .iter()
        .map(|(tr, col)| (col.clone(), tr.iceberg()))
        .collect();
    let mut new_spec = None;
    if want_partition != cur.partition {
        let show = |p: &[(String, String)]| {
            if p.is_empty() {
                "none".to_string()
            } else {
                p.iter()
                    .map(|(c, tr)| format!("{tr}({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        if !t.allow_repartition {
            refused.push(format!(
                "changing the partitioning from {} to {} is destructive: add `allow: [repartition]` to the table to allow it",
                show(&cur.partition),
                show(&want_partition)
            ));
        } else {
            new_spec = Some(());
        }
    }

    // Properties: set what is desired, remove what olo set before and no longer wants.
    let updates: BTreeMap<&String, &String> = t
        .properties
        .iter()
        .filter(|(k, v)| cur.properties.get(*k) != Some(*v))
        .collect();
    let removals: Vec<String> = cur
        .properties
        .get(MANAGED_KEYS)
        .map(|l| {
            l.split(',')
                .filter(|k| !k.is_empty() && !t.properties.contains_key(*k))
                .filter(|k| cur.properties.contains_key(*k))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    let mut ops = Vec::new();
    if schema_changed {
        ops.push(json!({
            "action": "add-schema",
            "schema": {"type": "struct", "schema-id": cur.max_schema_id + 1, "fields": fields},
            "last-column-id": next_id,
        }));
        ops.push(json!({"action": "set-current-schema", "schema-id": -1}));
    }
    if new_spec.is_some() {
        // Source ids refer to the schema after this commit's changes.
        let final_fields: Vec<(i64, String)> = if schema_changed {
            ops[0]["schema"]["fields"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| Some((f["id"].as_i64()?, f["name"].as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            cur.fields.iter().map(|f| (f.0, f.1.clone())).collect()
        };
        let id_of = |col: &str| {
            final_fields
                .iter()
                .find(|(_, n)| n == col)
                .map(|(i, _)| *i)
                .unwrap_or(0)
        };
        let spec_fields: Vec<(i64, i64, &(Transform, String))> = t
            .partition
            .iter()
            .enumerate()
            .map(|(i, p)| (id_of(&p.1), cur.last_partition_id + 1 + i as i64, p))
            .collect();
        ops.push(
            json!({"action": "add-spec", "spec": spec_json(cur.max_spec_id + 1, &spec_fields)}),
        );
        ops.push(json!({"action": "set-default-spec", "spec-id": -1}));
    }
    if !updates.is_empty() {
        ops.push(json!({"action": "set-properties", "updates": updates}));
    }
    if !removals.is_empty() {
        ops.push(json!({"action": "remove-properties", "removals": removals}));
    }

    let shown: BTreeSet<&str> = t
        .properties
        .keys()
        .map(String::as_str)
        .chain(removals.iter().map(String::as_str))
        .collect();
    let diff = text_diff(
        &name,
        describe_current(cur, &shown).as_bytes(),
        describe_desired(t).as_bytes(),
    );
    let reason = (!refused.is_empty()).then(|| format!("refused: {}", refused.join("; ")));
    if ops.is_empty() {
        if refused.is_empty() {
            return (None, None);
        }
        return (
            Some(Change {
                name,
                action: Action::Keep,
                hash: String::new(),
                diff,
                reason,
            }),
            None,
        );
    }
    let requirements =
        vec![json!({"type": "assert-current-schema-id", "current-schema-id": cur.schema_id})];
    (
        Some(Change {
            name,
            action: Action::Update,
            hash: String::new(),
            diff,
            reason,
        }),
        Some(TableOp::Commit {
            id: t.id.clone(),
            requirements,
            updates: ops,
        }),
    )
}

/// New table metadata (format v2) for a `CreateTableRequest`, as a catalog that writes its own
/// metadata files (the SQL catalog) needs it.
pub fn new_metadata(request: &Value, location: &str, uuid: &str, now_ms: i64) -> Value {
    let schema = request["schema"].clone();
    let last_column_id = schema["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["id"].as_i64()).max().unwrap_or(0))
        .unwrap_or(0);
    let spec = request["partition-spec"].clone();
    let last_partition_id = spec["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["field-id"].as_i64())
                .max()
                .unwrap_or(999)
        })
        .unwrap_or(999);
    json!({
        "format-version": 2,
        "table-uuid": uuid,
        "location": location,
        "last-sequence-number": 0,
        "last-updated-ms": now_ms,
        "last-column-id": last_column_id,
        "current-schema-id": 0,
        "schemas": [schema],
        "default-spec-id": 0,
        "partition-specs": [spec],
        "last-partition-id": last_partition_id,
        "default-sort-order-id": 0,
        "sort-orders": [{"order-id": 0, "fields": []}],
        "properties": request["properties"].clone(),
        "current-snapshot-id": -1,
        "refs": {},
        "snapshots": [],
        "statistics": [],
        "snapshot-log": [],
        "metadata-log": [],
    })
}

/// Applies a commit's updates to table metadata, as the REST catalog would: the subset olo
/// sends (add-schema, set-current-schema, add-spec, set-default-spec, set-properties,
/// remove-properties). `Err` names an update or requirement that does not hold.
pub fn apply_updates(
    metadata: &mut Value,
    requirements: &[Value],
    updates: &[Value],
    now_ms: i64,
) -> Result<(), String> {
    for r in requirements {
        if r["type"] == "assert-current-schema-id"
            && metadata["current-schema-id"] != r["current-schema-id"]
        {
            return Err(format!(
                "the table's schema changed meanwhile (current schema {} instead of {})",
                metadata["current-schema-id"], r["current-schema-id"]
            ));
        }
    }
    let mut last_schema: Option<i64> = None;
    let mut last_spec: Option<i64> = None;
    for u in updates {
        match u["action"].as_str().unwrap_or_default() {
            "add-schema" => {
                let schema = u["schema"].clone();
                last_schema = schema["schema-id"].as_i64();
                push(metadata, "schemas", schema);
                if let Some(id) = u["last-column-id"].as_i64() {
                    let cur = metadata["last-column-id"].as_i64().unwrap_or(0);
                    metadata["last-column-id"] = json!(cur.max(id));
                }
            }
            "set-current-schema" => {
                let id = match u["schema-id"].as_i64() {
                    Some(-1) => last_schema.ok_or("set-current-schema -1 without add-schema")?,
                    Some(id) => id,
                    None => return Err("set-current-schema without schema-id".into()),
                };
                metadata["current-schema-id"] = json!(id);
            }
            "add-spec" => {
                let spec = u["spec"].clone();
                last_spec = spec["spec-id"].as_i64();
                if let Some(max) = spec["fields"]
                    .as_array()
                    .and_then(|f| f.iter().filter_map(|x| x["field-id"].as_i64()).max())
                {
                    let cur = metadata["last-partition-id"].as_i64().unwrap_or(999);
                    metadata["last-partition-id"] = json!(cur.max(max));
                }
                push(metadata, "partition-specs", spec);
            }
            "set-default-spec" => {
                let id = match u["spec-id"].as_i64() {
                    Some(-1) => last_spec.ok_or("set-default-spec -1 without add-spec")?,
                    Some(id) => id,
                    None => return Err("set-default-spec without spec-id".into()),
                };
                metadata["default-spec-id"] = json!(id);
            }
            "set-properties" => {
                if !metadata["properties"].is_object() {
                    metadata["properties"] = json!({});
                }
                if let Some(o) = u["updates"].as_object() {
                    for (k, v) in o {
                        metadata["properties"][k] = v.clone();
                    }
                }
            }
            "remove-properties" => {
                if let (Some(props), Some(keys)) = (
                    metadata["properties"].as_object_mut(),
                    u["removals"].as_array(),
                ) {
                    for k in keys.iter().filter_map(Value::as_str) {
                        props.remove(k);
                    }
                }
            }
            other => return Err(format!("update `{other}` is not supported here")),
        }
    }
    metadata["last-updated-ms"] = json!(now_ms);
    Ok(())
}

fn push(metadata: &mut Value, key: &str, item: Value) {
    match metadata[key].as_array_mut() {
        Some(a) => a.push(item),
        None => metadata[key] = json!([item]),
    }
}

#[cfg(test)]
mod tests;
