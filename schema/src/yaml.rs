//! YAML with source positions: the one place olo parses YAML.
//!
//! Built on `yaml-rust2`'s event parser (maintained, YAML 1.2) rather than a serde front-end, so
//! that every node keeps the line and column it came from, duplicate keys are caught, and hostile
//! input is bounded: nesting depth, alias expansion and the number of nodes all have limits, and
//! a document that exceeds one is refused with a positioned error instead of a hang or a panic.

use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Largest YAML file olo reads (bytes). Real config files are a few KiB; the limit keeps one huge
/// file from stalling a reconcile.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of sequences and mappings.
pub const MAX_DEPTH: usize = 64;
/// Most nodes one file may expand to, aliases included (stops "billion laughs").
pub const MAX_NODES: usize = 100_000;

/// A line and column, both 1-based, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML node with the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A mapping key: always a string (JSON's model), with its own position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// The node at a JSON-pointer-like path of segments (`["spec", "tasks", "2", "id"]`).
    pub fn lookup<'a, S: AsRef<str>>(&'a self, path: &[S]) -> Option<&'a Node> {
        let mut node = self;
        for seg in path {
            let seg = seg.as_ref();
            node = match &node.value {
                Value::Map(entries) => &entries.iter().find(|(k, _)| k.name == seg)?.1,
                Value::Seq(items) => items.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The position of the key that holds `path` (or of the node itself for sequence items and
    /// the root).
    pub fn key_pos<S: AsRef<str>>(&self, path: &[S]) -> Option<Pos> {
        let (last, parent) = path.split_last()?;
        let parent = self.lookup(parent)?;
        match &parent.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == last.as_ref())
                .map(|(k, _)| k.pos),
            _ => self.lookup(path).map(|n| n.pos),
        }
    }

    /// Converts to a JSON value (the model JSON Schema validates).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            // JSON Schema counts 2.0 as an integer; so does the model.
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => J::from(*f as i64),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Drops the text of string scalars, keeping every key and position: once a document has
    /// been checked against its schema and turned into typed data, later checks only need to know
    /// where things are, and the text is most of a tree's memory.
    pub fn strip_text(&mut self) {
        match &mut self.value {
            Value::Str(s) => *s = String::new(),
            Value::Seq(items) => items.iter_mut().for_each(Node::strip_text),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| v.strip_text()),
            _ => {}
        }
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + v.count()).sum::<usize>(),
            _ => 1,
        }
    }
}

/// Parses every document of a YAML stream.
///
/// Errors are positioned; the first one stops parsing (YAML cannot be resumed after a syntax
/// error). Duplicate keys, non-scalar keys, over-deep nesting and alias bombs are errors.
pub fn parse(source: &str) -> Result<Vec<Node>, YamlError> {
    if source.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "file is {} bytes, larger than the {} byte limit for config files",
                source.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(builder.error.unwrap_or_else(|| YamlError {
            pos: Pos::from_marker(e.marker()),
            message: if e.info().contains("recursion limit") {
                format!("nesting too deep: olo allows at most {MAX_DEPTH} levels")
            } else if e.info().contains("unknown anchor") {
                format!(
                    "invalid YAML: {} (a value starting with `*` is an alias: quote it, e.g. schedule: \"*/5 * * * *\")",
                    e.info()
                )
            } else {
                format!("invalid YAML: {}", e.info())
            },
        }));
    }
    match builder.error {
        Some(e) => Err(e),
        None => Ok(builder.docs),
    }
}

enum Frame {
    Seq(Node, usize),
    Map {
        node: Node,
        anchor: usize,
        pending_key: Option<Key>,
    },
}

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node, usize)>,
    nodes: usize,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                pos,
                message: message.into(),
            });
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            self.fail(
                pos,
                format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            );
            return false;
        }
        true
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone(), node.count()));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map {
                node: map,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let name = match &node.value {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            let pos = node.pos;
                            self.fail(pos, "mapping keys must be plain strings");
                            return;
                        }
                    };
                    if let Value::Map(entries) = &map.value {
                        if entries.is_empty() {
                            // A block mapping's start event comes late; its first key is where
                            // the eye looks.
                            map.pos = node.pos;
                        }
                        if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                            let message = format!(
                                "duplicate key `{name}` (first defined at line {})",
                                first.pos.line
                            );
                            let pos = node.pos;
                            self.fail(pos, message);
                            return;
                        }
                    }
                    *pending_key = Some(Key {
                        name,
                        pos: node.pos,
                    });
                }
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        entries.push((key, node));
                    }
                }
            },
        }
    }

    fn open(&mut self, frame: Frame, pos: Pos) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                pos,
                format!("nesting too deep: olo allows at most {MAX_DEPTH} levels"),
            );
            return;
        }
        if self.count(1, pos) {
            self.stack.push(frame);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(&mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(1, pos) {
                    return;
                }
                let resolved = if let Some(tag) = tag {
                    scalar_with_tag(&text, &tag.handle, &tag.suffix)
                } else if style == TScalarStyle::Plain {
                    Ok(resolve_plain(&text))
                } else {
                    return self.finish(
                        Node {
                            value: Value::Str(text),
                            pos,
                        },
                        anchor,
                    );
                };
                match resolved {
                    Ok(Value::Float(f)) if !f.is_finite() => self.fail(pos, not_finite(&text)),
                    Ok(value) => self.finish(Node { value, pos }, anchor),
                    Err(msg) => self.fail(pos, msg),
                }
            }
            Event::SequenceStart(_, Some(tag)) | Event::MappingStart(_, Some(tag))
                if !core_collection_tag(&tag.handle, &tag.suffix) =>
            {
                let handle = match tag.handle.as_str() {
                    "tag:yaml.org,2002:" => "!!",
                    other => other,
                };
                self.fail(
                    pos,
                    format!("unsupported YAML tag `{handle}{}`", tag.suffix),
                )
            }
            Event::SequenceStart(anchor, _) => self.open(
                Frame::Seq(
                    Node {
                        value: Value::Seq(Vec::new()),
                        pos,
                    },
                    anchor,
                ),
                pos,
            ),
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    node: Node {
                        value: Value::Map(Vec::new()),
                        pos,
                    },
                    anchor,
                    pending_key: None,
                },
                pos,
            ),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(node, anchor)) = self.stack.pop() {
                    self.finish(node, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { node, anchor, .. }) = self.stack.pop() {
                    self.finish(node, anchor);
                }
            }
            Event::Alias(id) => {
                let Some((_, node, size)) = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _, _)| *a == id)
                    .cloned()
                else {
                    return self.fail(pos, "alias refers to an unknown anchor");
                };
                if self.count(size, pos) {
                    let mut node = node;
                    node.pos = pos;
                    self.finish(node, 0);
                }
            }
            Event::DocumentStart => {
                self.anchors.clear();
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
    }
    if looks_like_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn looks_like_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exp_ok
}

/// Whether a collection's tag is the core schema's own (`!!map`, `!!seq`): any other tag
/// (`!!python/object:…`, `!custom`) is an error, as it is on scalars.
fn core_collection_tag(handle: &str, suffix: &str) -> bool {
    (handle == "!!" || handle == "tag:yaml.org,2002:") && matches!(suffix, "map" | "seq")
}

/// Why a number that is not finite (`.inf`, `.nan`, `1e400`) is refused: JSON, and so the
/// schema check, Airflow params and the API, have no such numbers.
fn not_finite(text: &str) -> String {
    let shown = text.escape_debug();
    if text.contains(['n', 'N']) || text.contains('.') && text.contains(['i', 'I']) {
        format!(
            "`{shown}` is not a finite number, which olo cannot pass on (JSON has no infinity or NaN); quote it for a string"
        )
    } else {
        format!("the number `{shown}` is too large for a 64-bit float")
    }
}

fn scalar_with_tag(text: &str, handle: &str, suffix: &str) -> Result<Value, String> {
    if handle != "tag:yaml.org,2002:" && handle != "!!" {
        return Err(format!("unsupported YAML tag `{handle}{suffix}`"));
    }
    match suffix {
        "str" => Ok(Value::Str(text.to_string())),
        "null" => Ok(Value::Null),
        "bool" | "int" | "float" => match resolve_plain(text) {
            v @ Value::Bool(_) if suffix == "bool" => Ok(v),
            v @ Value::Int(_) if suffix == "int" => Ok(v),
            Value::Int(i) if suffix == "float" => Ok(Value::Float(i as f64)),
            v @ Value::Float(_) if suffix == "float" => Ok(v),
            _ => Err(format!("`{text}` is not a valid !!{suffix}")),
        },
        _ => Err(format!("unsupported YAML tag `!!{suffix}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Node {
        let mut docs = parse(src).expect("valid yaml");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let doc = one("a:\n  b: [1, two]\n  c: {d: true}\n");
        assert_eq!(doc.key_pos(&["a", "b"]), Some(Pos { line: 2, col: 3 }));
        assert_eq!(
            doc.lookup(&["a", "b", "1"]).map(|n| n.pos),
            Some(Pos { line: 2, col: 10 })
        );
        assert_eq!(
            doc.lookup(&["a", "c", "d"]).map(|n| &n.value),
            Some(&Value::Bool(true))
        );
    }

    #[test]
    fn core_schema_scalars() {
        let doc = one("a: 1\nb: -2.5\nc: ~\nd: 'true'\ne: yes\nf: 2026-01-01\ng: 0x1f\n");
        let j = doc.to_json();
        assert_eq!(
            j,
            serde_json::json!({"a": 1, "b": -2.5, "c": null, "d": "true", "e": "yes", "f": "2026-01-01", "g": 31})
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, col: 1 });
        assert!(
            err.message.starts_with("duplicate key `a`"),
            "{}",
            err.message
        );
    }

    /// Numbers JSON cannot hold would vanish on the way to Airflow: refused where they stand.
    #[test]
    fn infinite_nan_and_overflowing_numbers_are_errors() {
        for (src, says) in [
            ("a: .inf\n", "`.inf` is not a finite number"),
            ("a: -.Inf\n", "`-.Inf` is not a finite number"),
            ("a: [1, .nan]\n", "`.nan` is not a finite number"),
            ("a: !!float .NaN\n", "`.NaN` is not a finite number"),
            ("a: 1e400\n", "the number `1e400` is too large"),
        ] {
            let err = parse(src).unwrap_err();
            assert!(err.message.starts_with(says), "{src}: {}", err.message);
            assert_eq!(err.pos.line, 1, "{src}");
        }
        // Quoted, they are strings; large but finite numbers stay numbers.
        assert!(parse("a: '.inf'\nb: 1e300\n").is_ok());
    }

    /// Only the core schema's tags: a language-specific tag on a mapping or sequence is an
    /// error, as on a scalar.
    #[test]
    fn non_core_tags_on_collections_are_errors() {
        for (src, tag) in [
            (
                "a: !!python/object:os.system {cmd: ls}\n",
                "!!python/object:os.system",
            ),
            ("a: !!python/tuple [1, 2]\n", "!!python/tuple"),
            ("a: !custom\n  b: 1\n", "!custom"),
        ] {
            let err = parse(src).unwrap_err();
            assert_eq!(
                err.message,
                format!("unsupported YAML tag `{tag}`"),
                "{src}"
            );
        }
        assert!(parse("a: !!map {b: 1}\nc: !!seq [1]\n").is_ok());
    }

    #[test]
    fn aliases_expand_within_limits() {
        let doc = one("base: &b {x: 1}\nother: *b\n");
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"base": {"x": 1}, "other": {"x": 1}})
        );
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = "[".repeat(10_000);
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("nesting too deep"), "{}", err.message);
    }

    #[test]
    fn multi_documents_are_returned_separately() {
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
    }
}

/// A JSON value as YAML text (block style, keys in their order), for documents that arrive as
/// JSON and are kept as YAML files. Reading the text back gives the same value.
pub fn emit_json(value: &serde_json::Value) -> String {
    fn convert(value: &serde_json::Value) -> yaml_rust2::Yaml {
        use yaml_rust2::Yaml;
        match value {
            serde_json::Value::Null => Yaml::Null,
            serde_json::Value::Bool(b) => Yaml::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                None => Yaml::Real(n.to_string()),
            },
            serde_json::Value::String(s) => Yaml::String(s.clone()),
            serde_json::Value::Array(items) => Yaml::Array(items.iter().map(convert).collect()),
            serde_json::Value::Object(map) => Yaml::Hash(
                map.iter()
                    .map(|(k, v)| (Yaml::String(k.clone()), convert(v)))
                    .collect(),
            ),
        }
    }
    let mut out = String::new();
    let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    // Writing to a String cannot fail; a value nested too deep was refused before.
    let _ = emitter.dump(&convert(value));
    let text = out.strip_prefix("---\n").unwrap_or(&out);
    format!("{}\n", text.trim_end())
}

#[cfg(test)]
mod emit_tests {
    use super::*;

    #[test]
    fn json_emitted_as_yaml_reads_back_as_the_same_document() {
        let doc = serde_json::json!({
            "apiVersion": "olo/v1",
            "kind": "Job",
            "metadata": {"name": "a"},
            "spec": {
                "schedule": "0 3 * * *",
                "paused": false,
                "start_date": "2026-01-01",
                "params": {"n": {"type": "integer", "default": 3}, "s": {"type": "string", "default": "yes"}},
                "tasks": [{"id": "a", "bash": {"command": "echo 'hi: there' # not a comment\nls"}}]
            }
        });
        let text = emit_json(&doc);
        assert!(
            text.starts_with("apiVersion: olo/v1\nkind: Job\n"),
            "{text}"
        );
        let back = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
        let again = yaml_rust2::YamlLoader::load_from_str(&emit_json(&doc)).unwrap();
        assert_eq!(back, again);
        let spec = &back[0]["spec"];
        assert_eq!(spec["schedule"].as_str(), Some("0 3 * * *"));
        assert_eq!(spec["paused"].as_bool(), Some(false));
        assert_eq!(spec["params"]["s"]["default"].as_str(), Some("yes"));
        assert_eq!(spec["params"]["n"]["default"].as_i64(), Some(3));
        assert_eq!(
            spec["tasks"][0]["bash"]["command"].as_str(),
            Some("echo 'hi: there' # not a comment\nls")
        );
        assert!(parse(&text).is_ok());
    }
}
