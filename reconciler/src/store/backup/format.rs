//! The backup file, pure (no I/O): every rule of the format lives here and is unit-tested.
//!
//! One JSON document per line:
//!
//! ```text
//! {"format":"olo-backup","version":1,"backend":"sqlite","migrations":3,"created_at":"…","olo":"0.1.0",
//!  "tables":[{"name":"revisions","columns":[{"name":"id","type":"INTEGER"},…]},…],"sequences":{"revisions":12,…}}
//! {"table":"revisions","row":{"id":1,"branch":"main",…}}
//! …
//! {"end":"olo-backup","rows":{"audit_log":40,…,"revisions":12},"sha256":"<hex>"}
//! ```
//!
//! The header names the backend, the schema version (the newest migration applied) and every
//! table with its columns and their SQL types as the database declares them, in the order the
//! rows follow (parents before the tables whose foreign keys point at them). `sequences` holds
//! the last id each table's id generator gave out, which can be above the highest id still in the
//! table. Each row is an object of column name → value, in the form its backend stores it:
//! timestamps as RFC 3339 UTC text with six fractional digits on both backends; JSON columns as
//! JSON values on PostgreSQL (JSONB) and as the text SQLite holds; booleans as `true`/`false` on
//! PostgreSQL and 0/1 on SQLite. [`Mapping`] converts between the two on a cross-backend restore.
//!
//! The trailer counts the rows of every table and holds the SHA-256 of every byte before it, so
//! a truncated or edited file is refused before anything is restored.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `format` of a header line.
mod mapping;
pub use mapping::{convert, parents_first, Kind, Mapping};

pub const FORMAT: &str = "olo-backup";
/// The version of the format this olo writes and the newest it reads.
pub const VERSION: u64 = 1;

/// Which database a backup was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A column and its SQL type as the database declares it (`INTEGER`, `timestamp with time
/// zone`, `jsonb`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub sql_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

/// The first line of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u64,
    pub backend: Backend,
    /// The newest migration applied to the store (its schema version).
    pub migrations: i64,
    pub created_at: String,
    /// The olo version that wrote the file.
    pub olo: String,
    /// Every table, parents first; the rows follow in this order.
    pub tables: Vec<Table>,
    /// Per table with an id generator (SQLite AUTOINCREMENT, PostgreSQL identity): the last id
    /// it gave out.
    pub sequences: BTreeMap<String, i64>,
}

impl Header {
    pub fn new(
        backend: Backend,
        migrations: i64,
        tables: Vec<Table>,
        sequences: BTreeMap<String, i64>,
    ) -> Header {
        Header {
            format: FORMAT.to_string(),
            version: VERSION,
            backend,
            migrations,
            created_at: time_text(Utc::now()),
            olo: env!("CARGO_PKG_VERSION").to_string(),
            tables,
            sequences,
        }
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// The last line of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Trailer {
    end: String,
    rows: BTreeMap<String, u64>,
    sha256: String,
}

/// A row line as written.
#[derive(Serialize)]
struct RowLine<'a> {
    table: &'a str,
    row: &'a Map<String, Value>,
}

/// Why a file is not a backup olo can restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the file is empty")]
    Empty,
    #[error("line 1 is not the header of an olo backup (a file written by `olo backup`)")]
    NotABackup,
    #[error(
        "the file is in backup format version {found}, and this olo reads version {VERSION} at \
         most: restore it with a newer olo"
    )]
    NewerFormat { found: u64 },
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error(
        "the file ends before its trailer line: it is truncated (a partial copy, or a backup that \
         did not finish); use a complete backup"
    )]
    Truncated,
    #[error("line {line}: more data after the trailer line")]
    AfterTrailer { line: u64 },
    #[error(
        "the checksum does not match (the trailer says {expected}, the file hashes to {actual}): \
         the file was changed after `olo backup` wrote it; use an unchanged backup"
    )]
    Checksum { expected: String, actual: String },
    #[error("the trailer counts {expected} rows of `{table}` but the file holds {actual}")]
    Counts {
        table: String,
        expected: u64,
        actual: u64,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one text form of a timestamp in a backup (and in olo's SQLite store).
pub fn time_text(time: DateTime<Utc>) -> String {
    time.trunc_subsecs(6)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// An RFC 3339 timestamp in any offset and precision (PostgreSQL's JSON form is
/// `2024-05-01T12:00:00.5+00:00`) in the backup's form; `None` when it is not one.
pub fn canonical_time(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| time_text(t.with_timezone(&Utc)))
}

/// Writes the lines of a backup: the header, rows, and the trailer that counts and hashes them.
pub struct Encoder {
    hash: Sha256,
    /// Row counts, per table of the header.
    rows: BTreeMap<String, u64>,
    /// Header order, and where the rows are in it (they must follow that order).
    order: Vec<String>,
    at: usize,
}

impl Encoder {
    /// Starts a backup: the encoder and the header line.
    pub fn new(header: &Header) -> (Encoder, String) {
        let line = format!(
            "{}\n",
            serde_json::to_string(header).expect("a header serializes")
        );
        let mut hash = Sha256::new();
        hash.update(line.as_bytes());
        let encoder = Encoder {
            hash,
            rows: header.tables.iter().map(|t| (t.name.clone(), 0)).collect(),
            order: header.tables.iter().map(|t| t.name.clone()).collect(),
            at: 0,
        };
        (encoder, line)
    }

    /// The line of one row of `table`. Rows come table by table, in the header's order.
    ///
    /// # Panics
    /// When `table` is not in the header, or comes after a later table's rows: a bug of the
    /// caller, which a restore would refuse.
    pub fn row(&mut self, table: &str, row: &Map<String, Value>) -> String {
        let index = self.order[self.at..]
            .iter()
            .position(|t| t == table)
            .unwrap_or_else(|| panic!("rows of `{table}` out of the header's order"));
        self.at += index;
        let line = format!(
            "{}\n",
            serde_json::to_string(&RowLine { table, row }).expect("a row serializes")
        );
        self.hash.update(line.as_bytes());
        *self.rows.get_mut(table).expect("a table of the header") += 1;
        line
    }

    /// Rows written so far, per table.
    pub fn rows(&self) -> &BTreeMap<String, u64> {
        &self.rows
    }

    /// The trailer line, and the SHA-256 it holds.
    pub fn finish(self) -> (String, String) {
        let sha256 = hex(self.hash.finalize().as_slice());
        let trailer = Trailer {
            end: FORMAT.to_string(),
            rows: self.rows,
            sha256: sha256.clone(),
        };
        let line = format!(
            "{}\n",
            serde_json::to_string(&trailer).expect("a trailer serializes")
        );
        (line, sha256)
    }
}

/// What one line of a backup holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Header(Box<Header>),
    Row {
        table: String,
        row: Map<String, Value>,
    },
    /// The trailer, checked: counts and checksum match.
    End,
}

/// A complete, unchanged backup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub header: Header,
    pub rows: BTreeMap<String, u64>,
    pub sha256: String,
}

/// Reads a backup line by line and checks it: header first, rows of the header's tables with
/// its columns in its order, then a trailer whose counts and checksum match. A restore takes a
/// row only from a decoder, and commits only after the decoder saw the trailer.
pub struct Decoder {
    line: u64,
    hash: Sha256,
    header: Option<Header>,
    columns: HashMap<String, BTreeSet<String>>,
    rows: BTreeMap<String, u64>,
    at: usize,
    end: Option<String>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            line: 0,
            hash: Sha256::new(),
            header: None,
            columns: HashMap::new(),
            rows: BTreeMap::new(),
            at: 0,
            end: None,
        }
    }

    fn malformed(&self, message: impl Into<String>) -> FormatError {
        FormatError::Malformed {
            line: self.line,
            message: message.into(),
        }
    }

    /// The next line, with its `\n` (a last line without one is a truncated file).
    pub fn line(&mut self, raw: &str) -> Result<Line, FormatError> {
        self.line += 1;
        if self.end.is_some() {
            return Err(FormatError::AfterTrailer { line: self.line });
        }
        if !raw.ends_with('\n') {
            return Err(FormatError::Truncated);
        }
        let Some(header) = &self.header else {
            return self.header_line(raw).map(|h| Line::Header(Box::new(h)));
        };
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| self.malformed(format!("not a JSON document: {e}")))?;
        if value.get("end").is_some() {
            self.trailer(value)?;
            return Ok(Line::End);
        }
        let (table, row) = match value {
            Value::Object(mut line) => match (line.remove("table"), line.remove("row")) {
                (Some(Value::String(table)), Some(Value::Object(row))) if line.is_empty() => {
                    (table, row)
                }
                _ => return Err(self.malformed("not a row (an object of `table` and `row`)")),
            },
            _ => return Err(self.malformed("not a row (an object of `table` and `row`)")),
        };
        let Some(index) = header.tables[self.at..]
            .iter()
            .position(|t| t.name == table)
        else {
            return Err(match header.table(&table) {
                Some(_) => self.malformed(format!(
                    "a row of `{table}` after rows of a later table of the header"
                )),
                None => self.malformed(format!("a row of `{table}`, a table the header lacks")),
            });
        };
        self.at += index;
        let columns = &self.columns[&table];
        if row.len() != columns.len() || !row.keys().all(|k| columns.contains(k)) {
            let got: Vec<&str> = row.keys().map(String::as_str).collect();
            return Err(self.malformed(format!(
                "a row of `{table}` with columns {got:?}, not the header's {columns:?}"
            )));
        }
        self.hash.update(raw.as_bytes());
        *self.rows.get_mut(&table).expect("a table of the header") += 1;
        Ok(Line::Row { table, row })
    }

    fn header_line(&mut self, raw: &str) -> Result<Header, FormatError> {
        let value: Value = serde_json::from_str(raw).map_err(|_| FormatError::NotABackup)?;
        if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(FormatError::NotABackup);
        }
        match value.get("version").and_then(Value::as_u64) {
            Some(found) if found > VERSION => return Err(FormatError::NewerFormat { found }),
            Some(_) => {}
            None => return Err(self.malformed("the header has no format version")),
        }
        let header: Header = serde_json::from_value(value)
            .map_err(|e| self.malformed(format!("not a valid header: {e}")))?;
        let mut names = BTreeSet::new();
        for table in &header.tables {
            if !names.insert(table.name.as_str()) {
                return Err(self.malformed(format!("table `{}` twice in the header", table.name)));
            }
            let columns: BTreeSet<String> = table.columns.iter().map(|c| c.name.clone()).collect();
            if columns.len() != table.columns.len() {
                return Err(self.malformed(format!("a column twice in table `{}`", table.name)));
            }
            self.columns.insert(table.name.clone(), columns);
            self.rows.insert(table.name.clone(), 0);
        }
        self.hash.update(raw.as_bytes());
        self.header = Some(header.clone());
        Ok(header)
    }

    fn trailer(&mut self, value: Value) -> Result<(), FormatError> {
        let trailer: Trailer = serde_json::from_value(value)
            .map_err(|e| self.malformed(format!("not a valid trailer: {e}")))?;
        if trailer.end != FORMAT {
            return Err(self.malformed(format!("a trailer of `{}`", trailer.end)));
        }
        let actual = hex(self.hash.clone().finalize().as_slice());
        if trailer.sha256 != actual {
            return Err(FormatError::Checksum {
                expected: trailer.sha256,
                actual,
            });
        }
        if !trailer.rows.keys().eq(self.rows.keys()) {
            return Err(self.malformed("the trailer does not count the header's tables"));
        }
        for (table, &actual) in &self.rows {
            let expected = trailer.rows[table];
            if expected != actual {
                return Err(FormatError::Counts {
                    table: table.clone(),
                    expected,
                    actual,
                });
            }
        }
        self.end = Some(actual);
        Ok(())
    }

    /// After the last line: the verified backup, or why it is not one.
    pub fn finish(self) -> Result<Verified, FormatError> {
        let Some(header) = self.header else {
            return Err(FormatError::Empty);
        };
        let Some(sha256) = self.end else {
            return Err(FormatError::Truncated);
        };
        Ok(Verified {
            header,
            rows: self.rows,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests;
