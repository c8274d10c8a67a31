//! Job schedules: a 5-field cron expression, an Airflow preset, or none (manual runs only).

use std::str::FromStr;

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
        croner::Cron::from_str(s)
            .map(|_| Schedule::Cron(s.to_string()))
            .map_err(|e| format!("invalid cron expression `{}`: {e}", s.escape_debug()))
    }

    /// The value of the DAG's `schedule` argument, or `None` for manual runs.
    pub fn as_airflow(&self) -> Option<&str> {
        match self {
            Schedule::Manual => None,
            Schedule::Preset(s) | Schedule::Cron(s) => Some(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
