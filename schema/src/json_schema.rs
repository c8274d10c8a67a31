//! The JSON Schema files (draft 2020-12), compiled once, and their errors turned into positioned
//! diagnostics that read like a compiler's rather than like a validator's internals.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::Validator;
use serde_json::Value as J;

use crate::diagnostic::Diagnostic;
use crate::duration::Duration;
use crate::name::Name;
use crate::yaml::{Node, Pos, Value};

pub const WORKSPACE_SCHEMA: &str = include_str!("../json/workspace.schema.json");
pub const JOB_SCHEMA: &str = include_str!("../json/job.schema.json");
pub const REPOSITORY_SCHEMA: &str = include_str!("../json/repository.schema.json");

/// Which document a file must hold, decided by where it is in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Repository,
    Workspace,
    Job,
}

impl DocKind {
    pub fn kind_name(self) -> &'static str {
        match self {
            DocKind::Repository => "Repository",
            DocKind::Workspace => "Workspace",
            DocKind::Job => "Job",
        }
    }

    pub fn schema_source(self) -> &'static str {
        match self {
            DocKind::Repository => REPOSITORY_SCHEMA,
            DocKind::Workspace => WORKSPACE_SCHEMA,
            DocKind::Job => JOB_SCHEMA,
        }
    }

    fn compiled(self) -> &'static Compiled {
        static CELLS: [OnceLock<Compiled>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let i = self as usize;
        CELLS[i].get_or_init(|| Compiled::new(self.schema_source()))
    }
}

struct Compiled {
    schema: J,
    validator: Validator,
}

impl Compiled {
    fn new(source: &str) -> Compiled {
        let schema: J = serde_json::from_str(source).expect("embedded schema is valid JSON");
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema)
            .expect("embedded schema compiles");
        Compiled { schema, validator }
    }
}

/// Validates one document against its kind's schema; every violation becomes a diagnostic at the
/// key or value it concerns.
/// Where in the document an error is, as property names and array indexes.
fn segments_of(error: &jsonschema::ValidationError<'_>) -> Vec<String> {
    error
        .instance_path()
        .segments()
        .map(|s| match s {
            LocationSegment::Property(p) => p.into_owned(),
            LocationSegment::Index(i) => i.to_string(),
        })
        .collect()
}

/// `json` without the unknown fields the schema refuses, when that is all it refuses: then the
/// semantic checks can still run on the rest of a file that failed the schema check (a misspelled
/// key beside a wrong `depends_on`), and report their errors in the same round. `None` when the
/// schema refuses anything else: the semantic checks rely on every other rule of the schema (one
/// task kind per task, ...), and a value taken out would be reported again as missing.
pub fn without_refused(kind: DocKind, json: &J) -> Option<J> {
    if json.get("kind").and_then(J::as_str) != Some(kind.kind_name()) {
        return None;
    }
    let mut cuts: Vec<Vec<String>> = Vec::new();
    for error in kind.compiled().validator.iter_errors(json) {
        let segments = segments_of(&error);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    let mut cut = segments.clone();
                    cut.push(key.clone());
                    cuts.push(cut);
                }
            }
            _ => return None,
        }
    }
    let mut repaired = json.clone();
    for cut in &cuts {
        let (last, parents) = cut.split_last()?;
        let pointer: String = parents
            .iter()
            .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
            .collect();
        // A parent may already be taken out.
        if let Some(object) = repaired.pointer_mut(&pointer).and_then(J::as_object_mut) {
            object.remove(last);
        }
    }
    Some(repaired)
}

pub fn check(kind: DocKind, path: &str, doc: &Node, json: &J) -> Vec<Diagnostic> {
    let compiled = kind.compiled();
    let mut out = Vec::new();
    // A document of the wrong kind fails everywhere; say that once, not once per field.
    if json
        .get("kind")
        .and_then(J::as_str)
        .is_some_and(|k| k != kind.kind_name())
    {
        let pos = doc
            .lookup(&["kind"])
            .map(|n| n.pos)
            .unwrap_or(Pos { line: 1, col: 1 });
        let found = json["kind"].as_str().unwrap_or_default();
        let hint = match found {
            "Workspace" => " (a Workspace belongs in workspaces/<name>/workspace.yaml)",
            "Job" => " (a Job belongs in workspaces/<workspace>/jobs/<name>.yaml)",
            "Repository" => " (a Repository belongs in olo.yaml)",
            _ => "",
        };
        out.push(Diagnostic::error(
            path,
            pos,
            format!(
                "this file must hold a `{}` document, found kind {}{hint}",
                kind.kind_name(),
                short(&json["kind"])
            ),
        ));
        return out;
    }
    for error in compiled.validator.iter_errors(json) {
        let segments = segments_of(&error);
        let instance = error.instance();
        let value_pos = || value_pos(doc, &segments);
        let field = field_name(&segments);
        let field = field.as_str();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_fields(&compiled.schema, &segments);
                for key in unexpected {
                    let mut key_path = segments.clone();
                    key_path.push(key.clone());
                    let pos = doc.key_pos(&key_path).unwrap_or_else(value_pos);
                    let hint = suggestion(key, &allowed);
                    out.push(Diagnostic::error(
                        path,
                        pos,
                        format!(
                            "unknown field `{}` in {}{hint}",
                            key.escape_debug(),
                            describe(&segments)
                        ),
                    ));
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(Diagnostic::error(
                    path,
                    key_or_root(doc, &segments),
                    format!("missing required field `{name}` in {}", describe(&segments)),
                ));
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                out.push(Diagnostic::error(
                    path,
                    value_pos(),
                    format!(
                        "`{field}` must be {}, found {}",
                        article(&expected),
                        json_type(instance)
                    ),
                ));
            }
            ValidationErrorKind::Constant { expected_value } => {
                let msg = if segments.len() == 1 && segments[0] == "kind" {
                    format!(
                        "this file must hold a `{}` document, found kind {}",
                        kind.kind_name(),
                        short(instance)
                    )
                } else {
                    format!(
                        "`{field}` must be {}, found {}",
                        short(expected_value),
                        short(instance)
                    )
                };
                out.push(Diagnostic::error(path, value_pos(), msg));
            }
            ValidationErrorKind::Enum { options } => {
                let choices = options
                    .as_array()
                    .map(|a| a.iter().map(short).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                out.push(Diagnostic::error(
                    path,
                    value_pos(),
                    format!(
                        "`{field}` must be one of {choices}; found {}",
                        short(instance)
                    ),
                ));
            }
            ValidationErrorKind::Pattern { pattern } => {
                out.push(Diagnostic::error(
                    path,
                    value_pos(),
                    pattern_message(field, pattern, instance),
                ));
            }
            ValidationErrorKind::PropertyNames { error: inner } => {
                // The error is reported for the object; the inner error holds the bad key.
                let key = inner.instance().as_str().unwrap_or_default().to_string();
                let mut key_path = segments.clone();
                key_path.push(key.clone());
                let pos = doc
                    .key_pos(&key_path)
                    .unwrap_or_else(|| key_or_root(doc, &segments));
                let msg = match inner.kind() {
                    ValidationErrorKind::Pattern { pattern } => {
                        pattern_message(&format!("{field} key"), pattern, inner.instance())
                    }
                    _ => format!("invalid key `{}` in `{field}`: {inner}", key.escape_debug()),
                };
                out.push(Diagnostic::error(path, pos, msg));
            }
            ValidationErrorKind::OneOfNotValid { .. }
            | ValidationErrorKind::OneOfMultipleValid { .. }
                if instance.is_object() =>
            {
                let kinds = ["bash", "python", "spark", "sql", "dbt"];
                let present: Vec<&str> = kinds
                    .iter()
                    .copied()
                    .filter(|k| instance.get(*k).is_some())
                    .collect();
                let msg = if present.is_empty() {
                    "a task needs exactly one of `bash`, `python`, `spark`, `sql` or `dbt`"
                        .to_string()
                } else {
                    format!(
                        "a task has exactly one kind, but this one has {}: keep one",
                        present
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                };
                out.push(Diagnostic::error(path, key_or_root(doc, &segments), msg));
            }
            ValidationErrorKind::UniqueItems => {
                let msg = duplicate_item(instance)
                    .map(|d| format!("`{field}` lists {d} more than once"))
                    .unwrap_or_else(|| format!("`{field}` has duplicate items"));
                out.push(Diagnostic::error(path, value_pos(), msg));
            }
            ValidationErrorKind::OneOfNotValid { .. }
            | ValidationErrorKind::OneOfMultipleValid { .. } => {
                // Not a mapping at all: the type error for the same value says it better.
            }
            ValidationErrorKind::Minimum { limit } => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!(
                    "`{field}` must be at least {limit}, found {}",
                    short(instance)
                ),
            )),
            ValidationErrorKind::Maximum { limit } => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!(
                    "`{field}` must be at most {limit}, found {}",
                    short(instance)
                ),
            )),
            ValidationErrorKind::MinItems { limit } => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!(
                    "`{field}` needs at least {limit} item{}",
                    if *limit == 1 { "" } else { "s" }
                ),
            )),
            ValidationErrorKind::MaxItems { limit } => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!("`{field}` allows at most {limit} items"),
            )),
            ValidationErrorKind::MinLength { limit } => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!(
                    "`{field}` must be at least {limit} character{} long",
                    if *limit == 1 { "" } else { "s" }
                ),
            )),
            ValidationErrorKind::MaxLength { limit } => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!("`{field}` must be at most {limit} characters long"),
            )),
            _ => out.push(Diagnostic::error(
                path,
                value_pos(),
                format!("`{field}`: {error}"),
            )),
        }
    }
    out
}

/// Position of the value at `segments`: scalars at their first character, collections at the
/// key that holds them (where the eye looks first).
fn value_pos(doc: &Node, segments: &[String]) -> Pos {
    match doc.lookup(segments) {
        Some(Node {
            value: Value::Map(_) | Value::Seq(_),
            ..
        }) => key_or_root(doc, segments),
        Some(n) => n.pos,
        None => key_or_root(doc, segments),
    }
}

fn key_or_root(doc: &Node, segments: &[String]) -> Pos {
    if segments.is_empty() {
        return Pos { line: 1, col: 1 };
    }
    doc.key_pos(segments)
        .or_else(|| doc.lookup(segments).map(|n| n.pos))
        .unwrap_or(Pos { line: 1, col: 1 })
}

/// The field a value belongs to: `depends_on[0]` for `spec.tasks[2].depends_on[0]`.
fn field_name(segments: &[String]) -> String {
    match segments {
        [] => "document".to_string(),
        [.., parent, last] if last.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{parent}[{last}]")
        }
        [.., last] => last.clone(),
    }
}

fn describe(segments: &[String]) -> String {
    if segments.is_empty() {
        return "the document".to_string();
    }
    let mut s = String::new();
    for seg in segments {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            s.push_str(&format!("[{seg}]"));
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        }
    }
    format!("`{s}`")
}

fn article(t: &str) -> String {
    match t.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {t}"),
        Some('n') if t == "null" => t.to_string(),
        _ => format!("a {t}"),
    }
}

fn json_type(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(n) if n.is_f64() => "a number",
        J::Number(_) => "an integer",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "a mapping",
    }
}

/// A value as a short, escaped snippet for messages.
fn short(v: &J) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn duplicate_item(v: &J) -> Option<String> {
    let items = v.as_array()?;
    for (i, a) in items.iter().enumerate() {
        if items[..i].contains(a) {
            return Some(short(a));
        }
    }
    None
}

fn pattern_message(field: &str, pattern: &str, instance: &J) -> String {
    let text = instance.as_str().unwrap_or_default();
    if pattern == "^[a-z][a-z0-9_]{0,62}$" {
        if let Err(e) = Name::parse(text) {
            return e;
        }
    }
    if pattern.contains("[0-9]+d") {
        if let Err(e) = Duration::parse(text) {
            return e;
        }
    }
    if pattern.starts_with("^(group|user):") {
        return format!(
            "`{}` is not a principal: write `group:<name>` or `user:<name>`",
            text.escape_debug()
        );
    }
    if pattern.starts_with("^[0-9]{4}-") {
        return format!("`{}` is not a date: write YYYY-MM-DD", text.escape_debug());
    }
    if pattern.starts_with("^(s3|s3a|gs|abfss|file)://") {
        return format!(
            "`{}` is not a warehouse location: write s3://bucket/prefix (or s3a://, gs://, abfss://, file://)",
            text.escape_debug()
        );
    }
    if pattern.ends_with("{0,62}){1,2}$") {
        return format!(
            "dataset `{}` must be namespace.table or workspace.namespace.table (lowercase names)",
            text.escape_debug()
        );
    }
    if field.starts_with("module") {
        return format!(
            "`{}` is not a Python module name (dotted identifiers, e.g. forecast.train)",
            text.escape_debug()
        );
    }
    if pattern.starts_with("^[A-Za-z_][A-Za-z0-9_]") {
        return format!(
            "`{}` is not an environment variable name: letters, digits and _, not starting with a digit",
            text.escape_debug()
        );
    }
    if let Some(parent) = field.strip_suffix(" key") {
        return format!(
            "key `{}` in `{parent}` does not match `{pattern}`",
            text.escape_debug()
        );
    }
    format!(
        "`{field}` value {} does not match `{pattern}`",
        short(instance)
    )
}

/// The property names the schema allows for the object at `segments` (for "did you mean").
fn allowed_fields(schema: &J, segments: &[String]) -> Vec<String> {
    let mut node = schema;
    for seg in segments {
        node = resolve(schema, node);
        let next = node
            .get("properties")
            .and_then(|p| p.get(seg))
            .or_else(|| node.get("items"))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
        match next {
            Some(n) => node = n,
            None => return Vec::new(),
        }
    }
    let node = resolve(schema, node);
    node.get("properties")
        .and_then(J::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn resolve<'a>(root: &'a J, mut node: &'a J) -> &'a J {
    for _ in 0..16 {
        let Some(r) = node.get("$ref").and_then(J::as_str) else {
            break;
        };
        let Some(ptr) = r.strip_prefix('#') else {
            break;
        };
        match root.pointer(ptr) {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

fn suggestion(key: &str, allowed: &[String]) -> String {
    let best = allowed
        .iter()
        .map(|a| (edit_distance(key, a), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3 + 1))
        .min();
    match best {
        Some((_, a)) => format!("; did you mean `{a}`?"),
        None if !allowed.is_empty() => format!(
            "; expected one of {}",
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    /// Unknown fields come out (then the semantic checks can run); anything else refused means
    /// no second round.
    #[test]
    fn only_unknown_fields_are_taken_out() {
        use super::{without_refused, DocKind};
        let job = |spec: serde_json::Value| serde_json::json!({"apiVersion": "olo/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec});
        let task = serde_json::json!([{"id": "a", "bash": {"command": "echo", "colour": "red"}}]);
        let repaired = without_refused(
            DocKind::Job,
            &job(serde_json::json!({"retires": 3, "tasks": task})),
        )
        .expect("only unknown fields");
        assert_eq!(
            repaired["spec"],
            serde_json::json!({"tasks": [{"id": "a", "bash": {"command": "echo"}}]})
        );
        // A wrong type beside it: no repair.
        assert_eq!(
            without_refused(
                DocKind::Job,
                &job(serde_json::json!({"retires": 3, "paused": "no", "tasks": task}))
            ),
            None
        );
        // A missing required field: no repair.
        assert_eq!(
            without_refused(DocKind::Job, &job(serde_json::json!({"retires": 3}))),
            None
        );
    }

    use super::*;

    #[test]
    fn schemas_compile() {
        for k in [DocKind::Repository, DocKind::Workspace, DocKind::Job] {
            let _ = k.compiled();
        }
    }

    #[test]
    fn did_you_mean() {
        let allowed = vec!["schedule".to_string(), "start_date".to_string()];
        assert_eq!(
            suggestion("schedul", &allowed),
            "; did you mean `schedule`?"
        );
        assert!(suggestion("zzzzzzzz", &allowed).starts_with("; expected one of"));
    }
}
