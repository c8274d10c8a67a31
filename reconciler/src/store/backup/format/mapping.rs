//! Converting a backup's rows between backends: what each column holds ([`Kind`]), the mapping
//! of a backup's tables onto a store's ([`Mapping`]), and the order that restores parents first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::{Backend, Header, Table};

/// What a column holds, as far as converting between backends needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Real,
    Boolean,
    Timestamp,
    Json,
    /// Text, and on SQLite also timestamps and JSON (its columns do not say).
    Text,
    Other,
}

impl Kind {
    /// The kind of a declared SQL type.
    pub fn of(sql_type: &str) -> Kind {
        let t = sql_type.to_ascii_lowercase();
        if t.starts_with("timestamp") {
            Kind::Timestamp
        } else if t == "json" || t == "jsonb" {
            Kind::Json
        } else if t == "boolean" || t == "bool" {
            Kind::Boolean
        } else if t.contains("int") {
            Kind::Integer
        } else if t == "real" || t.starts_with("double") || t.starts_with("float") {
            Kind::Real
        } else if t == "text" || t.starts_with("character") || t.starts_with("varchar") {
            Kind::Text
        } else {
            Kind::Other
        }
    }
}

/// A value of a column of kind `from` (in the source backend's form) in the form a column of
/// kind `to` takes.
pub fn convert(value: Value, from: Kind, to: Kind) -> Result<Value, String> {
    Ok(match (value, from, to) {
        (Value::Null, _, _) => Value::Null,
        // JSON that SQLite holds as text, into a JSON column.
        (Value::String(text), Kind::Text, Kind::Json) => {
            serde_json::from_str(&text).map_err(|e| format!("`{text}` is not JSON ({e})"))?
        }
        // A JSON value into SQLite's text column.
        (value, Kind::Json, Kind::Text) => Value::String(value.to_string()),
        (Value::Bool(b), Kind::Boolean, Kind::Integer) => Value::from(i64::from(b)),
        (Value::Number(n), Kind::Integer, Kind::Boolean) => match n.as_i64() {
            Some(0) => Value::Bool(false),
            Some(1) => Value::Bool(true),
            _ => return Err(format!("{n} is not a boolean (0 or 1)")),
        },
        (value, _, _) => value,
    })
}

/// How the rows of a backup go into a store: the store's tables must be the backup's, with
/// the same columns; values are converted when the backends differ.
#[derive(Debug)]
pub struct Mapping {
    /// Per table: column, kind in the backup, kind in the store.
    tables: HashMap<String, Vec<(String, Kind, Kind)>>,
    convert: bool,
}

impl Mapping {
    /// Matches the backup's tables with the store's; an error names what differs.
    pub fn new(header: &Header, target: Backend, tables: &[Table]) -> Result<Mapping, String> {
        let ours: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        let theirs: BTreeSet<&str> = header.tables.iter().map(|t| t.name.as_str()).collect();
        if ours != theirs {
            let missing: Vec<&&str> = theirs.difference(&ours).collect();
            let extra: Vec<&&str> = ours.difference(&theirs).collect();
            return Err(format!(
                "the backup's tables are not the store's (only in the backup: {missing:?}; only in \
                 the store: {extra:?})"
            ));
        }
        let mut mapped = HashMap::new();
        for source in &header.tables {
            let target_table = tables
                .iter()
                .find(|t| t.name == source.name)
                .expect("same table names");
            let mut columns = Vec::new();
            for column in &source.columns {
                let Some(ours) = target_table.columns.iter().find(|c| c.name == column.name) else {
                    return Err(format!(
                        "the backup's table `{}` has a column `{}` the store lacks",
                        source.name, column.name
                    ));
                };
                columns.push((
                    column.name.clone(),
                    Kind::of(&column.sql_type),
                    Kind::of(&ours.sql_type),
                ));
            }
            if let Some(extra) = target_table
                .columns
                .iter()
                .find(|c| !source.columns.iter().any(|s| s.name == c.name))
            {
                return Err(format!(
                    "the store's table `{}` has a column `{}` the backup lacks",
                    source.name, extra.name
                ));
            }
            mapped.insert(source.name.clone(), columns);
        }
        Ok(Mapping {
            tables: mapped,
            convert: header.backend != target,
        })
    }

    /// A row of the backup in the store's form.
    pub fn row(
        &self,
        table: &str,
        mut row: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        if !self.convert {
            return Ok(row);
        }
        let columns = self
            .tables
            .get(table)
            .ok_or_else(|| format!("no table `{table}` in the store"))?;
        for (name, from, to) in columns {
            if let Some(value) = row.get_mut(name) {
                *value = convert(value.take(), *from, *to)
                    .map_err(|e| format!("column `{name}` of `{table}`: {e}"))?;
            }
        }
        Ok(row)
    }
}

/// Table names with the tables each one's foreign keys point at, in an order where every table
/// comes after those it points at (ties by name). Tables caught in a cycle come last, by name.
pub fn parents_first(tables: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(tables.len());
    loop {
        let ready: Vec<&String> = tables
            .iter()
            .filter(|(name, _)| !placed.contains(name.as_str()))
            .filter(|(name, parents)| {
                parents
                    .iter()
                    .all(|p| p == *name || placed.contains(p.as_str()) || !tables.contains_key(p))
            })
            .map(|(name, _)| name)
            .collect();
        let Some(first) = ready.first() else { break };
        placed.insert(first.as_str());
        order.push((*first).clone());
    }
    for name in tables.keys() {
        if !placed.contains(name.as_str()) {
            order.push(name.clone());
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::super::tests::{column, header, row};
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_of_both_backends_declared_types() {
        for (sql_type, kind) in [
            ("INTEGER", Kind::Integer),
            ("bigint", Kind::Integer),
            ("integer", Kind::Integer),
            ("REAL", Kind::Real),
            ("double precision", Kind::Real),
            ("TEXT", Kind::Text),
            ("text", Kind::Text),
            ("timestamp with time zone", Kind::Timestamp),
            ("jsonb", Kind::Json),
            ("boolean", Kind::Boolean),
            ("bytea", Kind::Other),
        ] {
            assert_eq!(Kind::of(sql_type), kind, "{sql_type}");
        }
    }

    #[test]
    fn values_convert_between_backends() {
        use Kind::*;
        let cases = [
            // SQLite → PostgreSQL
            (json!("{\"a\":[1,2]}"), Text, Json, json!({"a": [1, 2]})),
            (json!("\"quoted\""), Text, Json, json!("quoted")),
            (json!(1), Integer, Boolean, json!(true)),
            (json!(0), Integer, Boolean, json!(false)),
            (
                json!("2024-05-01T12:00:00.000000Z"),
                Text,
                Timestamp,
                json!("2024-05-01T12:00:00.000000Z"),
            ),
            // PostgreSQL → SQLite
            (json!({"a": [1, 2]}), Json, Text, json!("{\"a\":[1,2]}")),
            (json!("quoted"), Json, Text, json!("\"quoted\"")),
            (json!(true), Boolean, Integer, json!(1)),
            (json!(false), Boolean, Integer, json!(0)),
            // Either way
            (Value::Null, Json, Text, Value::Null),
            (Value::Null, Text, Json, Value::Null),
            (json!(2.5), Real, Real, json!(2.5)),
            (json!("x"), Text, Text, json!("x")),
        ];
        for (value, from, to, expected) in cases {
            assert_eq!(
                convert(value.clone(), from, to),
                Ok(expected),
                "{value} {from:?} → {to:?}"
            );
        }
        assert!(convert(json!("not json"), Text, Json).is_err());
        assert!(convert(json!(2), Integer, Boolean).is_err());
    }

    #[test]
    fn a_mapping_needs_the_same_tables_and_columns() {
        let h = header();
        let same: Vec<Table> = h.tables.clone();
        assert!(Mapping::new(&h, Backend::Sqlite, &same).is_ok());

        let mut fewer = same.clone();
        fewer.pop();
        let err = Mapping::new(&h, Backend::Sqlite, &fewer).unwrap_err();
        assert!(err.contains("only in the backup: [\"inventory\"]"), "{err}");

        let mut other = same.clone();
        other[0].columns[1].name = "hash".into();
        let err = Mapping::new(&h, Backend::Sqlite, &other).unwrap_err();
        assert!(err.contains("column `sha` the store lacks"), "{err}");

        let mut more = same.clone();
        more[2].columns.push(column("hash", "TEXT"));
        let err = Mapping::new(&h, Backend::Sqlite, &more).unwrap_err();
        assert!(err.contains("column `hash` the backup lacks"), "{err}");
    }

    #[test]
    fn a_mapping_converts_only_across_backends() {
        let h = header();
        let mut pg = h.tables.clone();
        pg[1].columns[1].sql_type = "jsonb".into();
        let plan = row(json!({"id": 1, "body": "{\"x\":1}"}));

        let to_pg = Mapping::new(&h, Backend::Postgres, &pg).unwrap();
        assert_eq!(
            to_pg.row("plans", plan.clone()).unwrap(),
            row(json!({"id": 1, "body": {"x": 1}}))
        );
        // Same backend: as stored, whatever the types say.
        let same = Mapping::new(&h, Backend::Sqlite, &pg).unwrap();
        assert_eq!(same.row("plans", plan.clone()).unwrap(), plan);

        let bad = row(json!({"id": 1, "body": "{oops"}));
        let err = to_pg.row("plans", bad).unwrap_err();
        assert!(err.starts_with("column `body` of `plans`:"), "{err}");
    }

    #[test]
    fn parents_come_before_children() {
        let tables = BTreeMap::from([
            (
                "task_instances".to_string(),
                BTreeSet::from(["runs".to_string()]),
            ),
            (
                "plans".to_string(),
                BTreeSet::from(["revisions".to_string()]),
            ),
            ("runs".to_string(), BTreeSet::new()),
            ("revisions".to_string(), BTreeSet::new()),
            ("audit_log".to_string(), BTreeSet::new()),
            // Points at itself and at a table that is not olo's.
            (
                "tree".to_string(),
                BTreeSet::from(["tree".to_string(), "elsewhere".to_string()]),
            ),
        ]);
        assert_eq!(
            parents_first(&tables),
            [
                "audit_log",
                "revisions",
                "plans",
                "runs",
                "task_instances",
                "tree"
            ]
        );
        let cycle = BTreeMap::from([
            ("a".to_string(), BTreeSet::from(["b".to_string()])),
            ("b".to_string(), BTreeSet::from(["a".to_string()])),
            ("c".to_string(), BTreeSet::new()),
        ]);
        assert_eq!(parents_first(&cycle), ["c", "a", "b"]);
    }
}
