//! The one escaping function: any value to a Python literal.
//!
//! Every value that comes from YAML reaches a generated DAG file through [`literal`]; the DAG
//! template's formatter calls it for every `<< expression >>`, so nothing a user wrote is ever
//! spliced into the file as code. Strings are emitted ASCII-only (everything else escaped), so
//! line separators such as U+2028, quotes, backslashes and NUL cannot end a literal early.

use std::fmt::Write as _;

use serde_json::Value;

/// A Python expression that evaluates to `value`.
pub fn literal(value: &Value) -> String {
    let mut out = String::new();
    write_literal(&mut out, value);
    out
}

fn write_literal(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                // `{:?}` always keeps a decimal point or exponent, which Python reads as float.
                let _ = write!(out, "{f:?}");
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_literal(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_literal(out, v);
            }
            out.push('}');
        }
    }
}

/// The same literal, straight from a template value (no detour through JSON): what the DAG
/// template's formatter calls for every expression.
pub fn write_template_value(out: &mut String, value: &minijinja::Value) -> Result<(), String> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => {
            if let Some(i) = value.as_i64() {
                let _ = write!(out, "{i}");
            } else if value.is_integer() {
                let _ = write!(out, "{value}");
            } else {
                let f = f64::try_from(value.clone()).map_err(|e| e.to_string())?;
                let _ = write!(out, "{f:?}");
            }
        }
        ValueKind::String => write_str(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            out.push('[');
            let items = value.try_iter().map_err(|e| e.to_string())?;
            for (i, item) in items.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_template_value(out, &item)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            let keys = value.try_iter().map_err(|e| e.to_string())?;
            for (i, key) in keys.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, key.as_str().ok_or("map keys must be strings")?);
                out.push_str(": ");
                let v = value.get_item(&key).map_err(|e| e.to_string())?;
                write_template_value(out, &v)?;
            }
            out.push('}');
        }
        other => return Err(format!("cannot write a {other:?} as a Python literal")),
    }
    Ok(())
}

/// A single-quoted Python string literal, ASCII-only.
pub fn write_str(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_values_match_json_literals() {
        let v = json!({"a": [1, 2.5, "x'\n", null, true], "b": {"c": -3}, "d": 1e300});
        let mut out = String::new();
        write_template_value(
            &mut out,
            &minijinja::Value::from(minijinja::value::Serde(&v)),
        )
        .unwrap();
        assert_eq!(out, literal(&v));
    }

    #[test]
    fn literals() {
        assert_eq!(literal(&json!(null)), "None");
        assert_eq!(literal(&json!(true)), "True");
        assert_eq!(literal(&json!(3)), "3");
        assert_eq!(literal(&json!(2.0)), "2.0");
        assert_eq!(literal(&json!("a'b\\c\n")), r"'a\'b\\c\n'");
        assert_eq!(
            literal(&json!("\u{2028}é\u{1F600}\0")),
            r"'\u2028\xe9\U0001f600\x00'"
        );
        assert_eq!(literal(&json!({"k": [1, "x"]})), "{'k': [1, 'x']}");
    }

    proptest::proptest! {
        #[test]
        fn strings_are_always_one_ascii_literal(s in ".*") {
            let lit = literal(&Value::String(s));
            proptest::prop_assert!(lit.is_ascii());
            proptest::prop_assert!(!lit.contains('\n'));
            // Every quote inside is escaped: the literal ends only at its last character.
            let inner = &lit[1..lit.len() - 1];
            let mut escaped = false;
            for c in inner.chars() {
                if !escaped && c == '\'' {
                    proptest::prop_assert!(false, "unescaped quote in {}", lit);
                }
                escaped = !escaped && c == '\\';
            }
        }
    }
}
