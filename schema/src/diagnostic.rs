//! Diagnostics for config authors, printed like a compiler's: `path:line:col: error: message`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in the config repository, at a file position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Path relative to the config repository root, with `/` separators.
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(path: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: path.to_string(),
            line: pos.line,
            column: pos.col,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(path: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, pos, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path, self.line, self.column, severity, self.message
        )
    }
}

/// Sorts by file, line, column (then severity and message, so output is deterministic) and
/// removes exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort();
    diagnostics.dedup();
}

/// Renders diagnostics one per line, as `olo validate` prints them.
pub fn to_text(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_file_then_position() {
        let mut ds = vec![
            Diagnostic::error("b.yaml", Pos { line: 1, col: 1 }, "x"),
            Diagnostic::error("a.yaml", Pos { line: 10, col: 2 }, "y"),
            Diagnostic::error("a.yaml", Pos { line: 2, col: 5 }, "z"),
            Diagnostic::error("a.yaml", Pos { line: 2, col: 5 }, "z"),
        ];
        sort(&mut ds);
        assert_eq!(
            to_text(&ds),
            "a.yaml:2:5: error: z\na.yaml:10:2: error: y\nb.yaml:1:1: error: x\n"
        );
    }
}
