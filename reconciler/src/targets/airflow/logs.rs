//! A task log as Airflow's API pages it (`TaskInstancesLogResponse`): structured events or plain
//! lines, written out as text, an exception as a Python-style traceback.

use serde::Deserialize;
use serde_json::Value;

/// `TaskInstancesLogResponse`.
#[derive(Deserialize)]
pub(super) struct LogPage {
    pub(super) content: Vec<LogLine>,
    pub(super) continuation_token: Option<String>,
}

/// `content` holds structured events, or (from some log handlers) plain lines.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum LogLine {
    Event(LogEvent),
    Text(String),
}

/// `StructuredLogMessage`: `event` plus whatever the logger added.
#[derive(Deserialize)]
pub(super) struct LogEvent {
    event: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    level: Option<String>,
    /// structlog's exception dicts; read leniently, as a log must not fail over its traceback.
    #[serde(default)]
    error_detail: Option<Value>,
}

#[derive(Deserialize)]
struct ExceptionDetail {
    #[serde(default)]
    exc_type: String,
    #[serde(default)]
    exc_value: String,
    #[serde(default)]
    frames: Vec<Frame>,
}

#[derive(Deserialize)]
struct Frame {
    #[serde(default)]
    filename: String,
    #[serde(default)]
    lineno: Option<i64>,
    #[serde(default)]
    name: String,
}

impl LogLine {
    /// Appends `timestamp LEVEL event` (leaving out what the event lacks) and a newline; an
    /// exception follows as a Python-style traceback.
    pub(super) fn write_to(&self, out: &mut String) {
        let event = match self {
            LogLine::Text(line) => {
                out.push_str(line);
                out.push('\n');
                return;
            }
            LogLine::Event(event) => event,
        };
        if let Some(timestamp) = &event.timestamp {
            out.push_str(timestamp);
            out.push(' ');
        }
        if let Some(level) = &event.level {
            out.push_str(&level.to_uppercase());
            out.push(' ');
        }
        out.push_str(&event.event);
        out.push('\n');
        let exceptions = event
            .error_detail
            .as_ref()
            .and_then(|detail| Vec::<ExceptionDetail>::deserialize(detail).ok())
            .unwrap_or_default();
        for exception in exceptions {
            out.push_str("Traceback (most recent call last):\n");
            for frame in &exception.frames {
                let line = frame.lineno.map_or("?".to_string(), |n| n.to_string());
                out.push_str(&format!(
                    "  File \"{}\", line {line}, in {}\n",
                    frame.filename, frame.name
                ));
            }
            out.push_str(&exception.exc_type);
            if !exception.exc_value.is_empty() {
                out.push_str(": ");
                out.push_str(&exception.exc_value);
            }
            out.push('\n');
        }
    }
}
