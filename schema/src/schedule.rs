//! Job schedules: a 5-field cron expression, an Airflow preset, or none (manual runs only).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Presets Airflow 3 accepts as a `schedule`.
pub const PRESETS: &[&str] = &[
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Schedule {
    Manual,
    Preset(String),
    Cron(String),
}

impl Schedule {
    pub fn parse(s: Option<&str>) -> Result<Schedule, String> {
        let Some(s) = s else {
            return Ok(Schedule::Manual);
        };
        if s.starts_with('@') {
            return if PRESETS.contains(&s) {
                Ok(Schedule::Preset(s.to_string()))
            } else {
                Err(format!(
                    "unknown schedule preset `{}`; use one of {}, a cron expression, or null",
                    s.escape_debug(),
                    PRESETS.join(", ")
                ))
            };
        }
        let fields = s.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "cron expression `{}` has {fields} fields; olo expects 5 (minute hour day-of-month month day-of-week)",
                s.escape_debug()
            ));
        }
        if let Some(why) = airflow_refuses(s) {
            return Err(format!(
                "invalid cron expression `{}`: {why}",
                s.escape_debug()
            ));
        }
        check_cron(s)
            .map(|()| Schedule::Cron(s.to_string()))
            .map_err(|e| {
                let at = match faulty_field(s) {
                    Some((name, value, range)) => format!(
                        "the {name} field `{}` is not valid ({name}: {range}): ",
                        value.escape_debug()
                    ),
                    None => String::new(),
                };
                format!("invalid cron expression `{}`: {at}{e}", s.escape_debug())
            })
    }

    /// When Airflow will next start a run of this schedule: the first cron time at or after
    /// `now` and `start` (Airflow 3 runs a cron schedule at its fire times, in UTC here since olo
    /// renders `start_date` in UTC), no later than `end`. `None` for manual, `@once` and
    /// `@continuous` schedules, and once `end` has passed.
    pub fn next_run(
        &self,
        now: DateTime<Utc>,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let expr = match self {
            Schedule::Manual => return None,
            Schedule::Preset(p) => preset_cron(p)?,
            Schedule::Cron(c) => c.as_str(),
        };
        let cron = croner::Cron::from_str(expr).ok()?;
        let from = start.map_or(now, |s| s.max(now));
        let next = cron.find_next_occurrence(&from, true).ok()?;
        match end {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// The value of the DAG's `schedule` argument, or `None` for manual runs.
    pub fn as_airflow(&self) -> Option<&str> {
        match self {
            Schedule::Manual => None,
            Schedule::Preset(s) | Schedule::Cron(s) => Some(s),
        }
    }
}

/// Whether croner accepts `expr` (its message if not), remembered per expression: schedules
/// repeat across a repository's jobs (the 10,000 generated jobs of the benchmark have 1,439
/// different ones), and croner's parse was ~5% of the CPU time of a cold reconcile.
fn check_cron(expr: &str) -> Result<(), String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    /// Bounds the memory a stream of distinct expressions can take.
    const MAX_REMEMBERED: usize = 16_384;
    static SEEN: OnceLock<Mutex<HashMap<String, Result<(), String>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    let lock = || seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = lock().get(expr) {
        return known.clone();
    }
    let checked = croner::Cron::from_str(expr)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let mut seen = lock();
    if seen.len() >= MAX_REMEMBERED {
        seen.clear();
    }
    seen.insert(expr.to_string(), checked.clone());
    checked
}

/// Forms croner takes (Quartz's) that Airflow's cron parser (croniter) refuses, so a DAG with
/// them would not load: `L` anywhere in the day-of-week field (`5L`, `5#L`, `L`), `LW` or a `W`
/// in a list (`1W,15`, `15W,L`) in the day-of-month field, and a `#` on a range or beside items
/// without one in the day-of-week field (`1-5#2`, `5#3,1`). Checked against croniter in Airflow
/// 3.3's venv, form by form, by tests/e2e/validate.rs: `L`, `15W`, `L,15`, `5#3` and `1#1,3#3`
/// load.
fn airflow_refuses(expr: &str) -> Option<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let [_, _, dom, _, dow] = fields[..] else {
        return None;
    };
    if dow.to_ascii_uppercase().contains('L') {
        return Some(format!(
            "the day-of-week field `{}` uses `L`, which Airflow's cron parser refuses: name the weekday (`5`, `FRI`) or its n-th occurrence in the month (`5#3`)",
            dow.escape_debug()
        ));
    }
    if dom.to_ascii_uppercase().contains("LW") {
        return Some(format!(
            "the day-of-month field `{}` uses `LW`, which Airflow's cron parser refuses: use `L` (the month's last day) or `15W` (the weekday nearest the 15th)",
            dom.escape_debug()
        ));
    }
    if dom.to_ascii_uppercase().contains('W') && dom.contains(',') {
        return Some(format!(
            "the day-of-month field `{}` has `W` in a list, which Airflow's cron parser refuses: `W` (the weekday nearest a day) stands alone (`15W`)",
            dom.escape_debug()
        ));
    }
    if dow.contains('#') {
        let item_ok = |item: &str| {
            item.split_once('#')
                .is_some_and(|(day, _)| !day.contains('-') && !day.contains('/'))
        };
        if !dow.split(',').all(item_ok) {
            return Some(format!(
                "the day-of-week field `{}` has `#` on a range or beside days without one, which Airflow's cron parser refuses: write each n-th weekday alone (`5#3`) or all of them with `#` (`1#1,3#3`)",
                dow.escape_debug()
            ));
        }
    }
    None
}

/// The five fields of a cron expression, and what each takes.
const CRON_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, 0 and 7 are Sunday"),
];

/// Which field of a 5-field expression croner refuses: each field alone, the others `*`
/// (croner names no field in its errors). `None` when every field passes alone.
fn faulty_field(expr: &str) -> Option<(&'static str, &str, &'static str)> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    fields.iter().enumerate().find_map(|(i, value)| {
        let mut alone = ["*"; 5];
        alone[i] = value;
        croner::Cron::from_str(&alone.join(" "))
            .is_err()
            .then_some((CRON_FIELDS[i].0, *value, CRON_FIELDS[i].1))
    })
}

/// The cron expression of a time-based preset (Airflow's own table).
fn preset_cron(preset: &str) -> Option<&'static str> {
    Some(match preset {
        "@hourly" => "0 * * * *",
        "@daily" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@quarterly" => "0 0 1 */3 *",
        "@yearly" => "0 0 1 1 *",
        _ => return None,
    })
}

/// A date or date-time of a job's `start_date`/`end_date` (`2026-01-31` or RFC 3339), in UTC.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_date(s).unwrap()
    }

    #[test]
    fn next_run_is_the_next_fire_time_within_start_and_end() {
        let now = t("2026-11-27T10:15:00Z");
        let daily = Schedule::parse(Some("@daily")).unwrap();
        assert_eq!(
            daily.next_run(now, None, None),
            Some(t("2026-11-28T00:00:00Z"))
        );
        let cron = Schedule::parse(Some("30 10 * * *")).unwrap();
        assert_eq!(
            cron.next_run(now, None, None),
            Some(t("2026-11-27T10:30:00Z"))
        );
        // A fire time equal to now is the next run (Airflow has not started it yet).
        let quarter = Schedule::parse(Some("*/15 * * * *")).unwrap();
        assert_eq!(quarter.next_run(now, None, None), Some(now));
        // Not before the start date, never after the end date.
        assert_eq!(
            daily.next_run(now, Some(t("2027-01-01")), None),
            Some(t("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            daily.next_run(now, None, Some(t("2026-11-27T23:00:00Z"))),
            None
        );
        assert_eq!(
            Schedule::parse(Some("@quarterly"))
                .unwrap()
                .next_run(now, None, None),
            Some(t("2027-01-01T00:00:00Z"))
        );
        for none in [None, Some("@once"), Some("@continuous")] {
            assert_eq!(
                Schedule::parse(none).unwrap().next_run(now, None, None),
                None
            );
        }
    }

    #[test]
    fn dates_and_date_times_parse_as_utc() {
        assert_eq!(t("2026-01-31").to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(
            t("2026-01-31T05:00:00+02:00").to_rfc3339(),
            "2026-01-31T03:00:00+00:00"
        );
        assert_eq!(parse_date("31/01/2026"), None);
    }

    #[test]
    fn cron_presets_and_manual() {
        assert_eq!(Schedule::parse(None).unwrap(), Schedule::Manual);
        assert!(matches!(
            Schedule::parse(Some("@daily")),
            Ok(Schedule::Preset(_))
        ));
        assert!(matches!(
            Schedule::parse(Some("0 3 * * *")),
            Ok(Schedule::Cron(_))
        ));
        assert!(matches!(
            Schedule::parse(Some("*/15 0-6 * * mon-fri")),
            Ok(Schedule::Cron(_))
        ));
        for bad in [
            "@sometimes",
            "0 3 * *",
            "61 3 * * *",
            "0 25 * * *",
            "0 3 * * * *",
            "banana",
        ] {
            assert!(Schedule::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_remembered_cron_check_answers_as_the_first() {
        for expr in ["7 4 * * 1", "0 24 * * *"] {
            let first = Schedule::parse(Some(expr));
            let again = Schedule::parse(Some(expr));
            assert_eq!(first, again, "{expr}");
        }
        assert!(Schedule::parse(Some("7 4 * * 1")).is_ok());
        let err = Schedule::parse(Some("0 24 * * *")).unwrap_err();
        assert!(
            err.starts_with("invalid cron expression `0 24 * * *`: "),
            "{err}"
        );
    }

    #[test]
    fn a_cron_error_names_the_field_and_its_range() {
        for (expr, says) in [
            (
                "0 0 * * 5L",
                "the day-of-week field `5L` uses `L`, which Airflow's cron parser refuses",
            ),
            (
                "0 0 LW * *",
                "the day-of-month field `LW` uses `LW`, which Airflow's cron parser refuses",
            ),
            (
                "0 0 1W,15 * *",
                "the day-of-month field `1W,15` has `W` in a list",
            ),
            (
                "0 0 15W,L * *",
                "the day-of-month field `15W,L` has `W` in a list",
            ),
            (
                "0 0 * * 1-5#2",
                "the day-of-week field `1-5#2` has `#` on a range or beside days without one",
            ),
            (
                "0 0 * * 5#3,1",
                "the day-of-week field `5#3,1` has `#` on a range",
            ),
            (
                "0 25 * * *",
                "the hour field `25` is not valid (hour: 0-23)",
            ),
            (
                "61 * * * *",
                "the minute field `61` is not valid (minute: 0-59)",
            ),
            ("0 0 32 * *", "the day-of-month field `32` is not valid"),
            (
                "0 0 * 13 *",
                "the month field `13` is not valid (month: 1-12 or JAN-DEC)",
            ),
            (
                "0 0 * * FUNDAY",
                "the day-of-week field `FUNDAY` is not valid",
            ),
        ] {
            let err = Schedule::parse(Some(expr)).unwrap_err();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }
}
