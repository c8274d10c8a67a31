//! Pure helpers of the dashboard: how values read on a page (short shas, relative times,
//! durations, tones), the run timeline, file links. Unit-tested in `dashboard.rs`.

use chrono::{DateTime, Utc};
use olo_reconciler::store::TaskInstanceRow;
use serde::Serialize;

/// The first 8 characters of a commit sha (all of a shorter string).
pub fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(8).map_or(sha, |(i, _)| &sha[..i])
}

pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim_end()
}

/// The colour family of a state, for badges: `ok`, `busy`, `bad`, `warn` or `muted`.
pub fn tone(state: &str) -> &'static str {
    match state.to_ascii_lowercase().as_str() {
        "ready" | "success" | "applied" | "create" | "finished" | "live" | "added"
        | "completed" => "ok",
        "reconciling" | "running" | "queued" | "applying" | "scheduled" | "restarting"
        | "deferred" | "update" | "modified" => "busy",
        "stalled" | "failed" | "invalid" | "upstream_failed" | "error" | "delete" | "deleted"
        | "killed" | "aborted" => "bad",
        "up_for_retry" | "up_for_reschedule" | "keep" | "warning" => "warn",
        _ => "muted",
    }
}

pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "just now", "5 min ago", "3 h ago", "2 d ago" (or "in …" for a time ahead of `now`).
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let text = match n {
        0..=44 => return "just now".to_string(),
        45..=5399 => format!("{} min", (n + 30) / 60),
        5400..=129_599 => format!("{} h", (n + 1800) / 3600),
        _ => format!("{} d", (n + 43_200) / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// "850 ms", "42.0 s", "3m 05s", "2h 01m".
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_string();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// One bar of a run's timeline: where it starts and how wide it is, in percent of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub task_id: String,
    pub map_index: i64,
    pub try_number: i64,
    pub state: String,
    pub left: f64,
    pub width: f64,
    pub duration_seconds: Option<f64>,
    pub started: bool,
}

/// The timeline (Gantt) of a run's task instances: from the first start to the last end (or
/// `now` for tries still running). Tries that never started get no bar.
pub fn timeline(tis: &[TaskInstanceRow], now: DateTime<Utc>) -> (Vec<Bar>, f64) {
    let spans: Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> = tis
        .iter()
        .map(|t| t.started_at.map(|s| (s, t.ended_at.unwrap_or(now).max(s))))
        .collect();
    let start = spans.iter().flatten().map(|(s, _)| *s).min();
    let end = spans.iter().flatten().map(|(_, e)| *e).max();
    let total = match (start, end) {
        (Some(s), Some(e)) => ((e - s).num_milliseconds() as f64 / 1000.0).max(0.001),
        _ => 0.0,
    };
    let bars = tis
        .iter()
        .zip(&spans)
        .map(|(t, span)| {
            let (left, width) = match (span, start) {
                (Some((s, e)), Some(first)) => {
                    let left = (*s - first).num_milliseconds() as f64 / 1000.0 / total * 100.0;
                    let width = (*e - *s).num_milliseconds() as f64 / 1000.0 / total * 100.0;
                    (
                        round1(left),
                        round1(width.max(0.5)).min(100.0 - round1(left)),
                    )
                }
                _ => (0.0, 0.0),
            };
            Bar {
                task_id: t.task_id.clone(),
                map_index: t.map_index,
                try_number: t.try_number,
                state: t.state.clone().unwrap_or_default(),
                left,
                width,
                duration_seconds: t.duration_seconds,
                started: span.is_some(),
            }
        })
        .collect();
    (bars, total)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The link to a file of the config repository at a commit, when the repository is known.
pub fn file_url(repository: Option<&str>, revision: Option<&str>, path: &str) -> Option<String> {
    let (repo, rev) = (repository?, revision?);
    Some(format!("https://github.com/{repo}/blob/{rev}/{path}"))
}

/// GitHub's editor for a file on a branch: saving it there opens a pull request (or commits, for
/// those who may push), which olo then plans like any other.
pub fn edit_url(repository: Option<&str>, branch: &str, path: &str) -> Option<String> {
    Some(format!(
        "https://github.com/{}/edit/{branch}/{path}",
        repository?
    ))
}
