//! The figures of Marquez's `/api/v1/stats/*` (its web UI's dashboard charts), in its shapes:
//! the last 24 hours by hour (`DAY`) or the last 7 days by day (`WEEK`), the current hour or day
//! last. Pure.
//!
//! Marquez counts lineage events by type per interval (`LineageMetric`), and jobs, datasets and
//! sources as running totals at the end of each interval (`IntervalMetric`). olo counts a job or
//! dataset from the first event that named it; one only declared in the config repository has no
//! such time and counts from before the window. Days are UTC days: olo reads Marquez's
//! `timezone` parameter but does not shift days by it.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Value};

use super::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
}

impl Period {
    /// Marquez's `period`: `DAY` or `WEEK` (any case).
    pub fn parse(s: &str) -> Result<Period, String> {
        match s.to_ascii_uppercase().as_str() {
            "DAY" => Ok(Period::Day),
            "WEEK" => Ok(Period::Week),
            _ => Err(format!("`period` must be DAY or WEEK, not {s:?}")),
        }
    }

    /// The intervals `[start, end)`, oldest first, the one holding `now` last.
    pub fn intervals(self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let (step, count) = match self {
            Period::Day => (Duration::hours(1), 24),
            Period::Week => (Duration::days(1), 7),
        };
        let last = now.duration_trunc(step).unwrap_or(now);
        (0..count)
            .rev()
            .map(|i| {
                let start = last - step * i;
                (start, start + step)
            })
            .collect()
    }
}

/// `LineageMetric`s: the run events of each type in each interval, from `hours` (`(start of an
/// hour, event type, count)`, as the store counts them).
pub fn lineage_metrics(
    period: Period,
    now: DateTime<Utc>,
    hours: &[(DateTime<Utc>, String, u64)],
) -> Vec<Value> {
    period
        .intervals(now)
        .into_iter()
        .map(|(start, end)| {
            let count = |kind: &str| -> u64 {
                hours
                    .iter()
                    .filter(|(h, k, _)| *h >= start && *h < end && k == kind)
                    .map(|(_, _, n)| n)
                    .sum()
            };
            json!({
                "startInterval": time(start),
                "endInterval": time(end),
                "fail": count("FAIL"),
                "start": count("START"),
                "complete": count("COMPLETE"),
                "abort": count("ABORT"),
            })
        })
        .collect()
}

/// `IntervalMetric`s: how many of the things created at `created` (`None`: known, with no time,
/// so from before the window) exist at the end of each interval.
pub fn running_totals(
    period: Period,
    now: DateTime<Utc>,
    created: impl IntoIterator<Item = Option<DateTime<Utc>>>,
) -> Vec<Value> {
    let mut times: Vec<Option<DateTime<Utc>>> = created.into_iter().collect();
    times.sort_unstable();
    period
        .intervals(now)
        .into_iter()
        .map(|(start, end)| {
            // `None` sorts first: it is before every end.
            let count = times.partition_point(|t| t.is_none_or(|t| t < end));
            json!({
                "startInterval": time(start),
                "endInterval": time(end),
                "count": count,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap()
    }

    #[test]
    fn a_day_is_24_hours_ending_with_the_current_one_and_a_week_7_days() {
        let day = Period::Day.intervals(at(7, 10, 30));
        assert_eq!(day.len(), 24);
        assert_eq!(day[0], (at(6, 11, 0), at(6, 12, 0)));
        assert_eq!(day[23], (at(7, 10, 0), at(7, 11, 0)));
        let week = Period::Week.intervals(at(7, 10, 30));
        assert_eq!(week.len(), 7);
        assert_eq!(week[0], (at(1, 0, 0), at(2, 0, 0)));
        assert_eq!(week[6], (at(7, 0, 0), at(8, 0, 0)));
        assert_eq!(Period::parse("week"), Ok(Period::Week));
        assert!(Period::parse("MONTH").is_err());
    }

    #[test]
    fn lineage_metrics_count_each_type_in_its_interval() {
        let hours = vec![
            (at(7, 9, 0), "START".to_string(), 3),
            (at(7, 9, 0), "COMPLETE".to_string(), 2),
            (at(7, 10, 0), "FAIL".to_string(), 1),
            (at(7, 10, 0), "OTHER".to_string(), 5),
            (at(1, 9, 0), "ABORT".to_string(), 4),
        ];
        let day = lineage_metrics(Period::Day, at(7, 10, 30), &hours);
        assert_eq!(
            day[22],
            json!({"startInterval": "2026-12-07T09:00:00Z", "endInterval": "2026-12-07T10:00:00Z",
                   "fail": 0, "start": 3, "complete": 2, "abort": 0})
        );
        assert_eq!(day[23]["fail"], 1);
        // The ABORT of 6 days ago is outside the day, inside the week.
        let total = |v: &[Value], k: &str| v.iter().map(|m| m[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(total(&day, "abort"), 0);
        let week = lineage_metrics(Period::Week, at(7, 10, 30), &hours);
        assert_eq!(week[0]["abort"], 4);
        assert_eq!(week[6]["start"], 3);
        assert_eq!(total(&week, "start"), 3);
    }

    #[test]
    fn running_totals_count_what_exists_at_each_end() {
        let created = vec![
            None,
            Some(at(7, 9, 15)),
            Some(at(7, 10, 5)),
            Some(at(2, 0, 0)),
        ];
        let day = running_totals(Period::Day, at(7, 10, 30), created.clone());
        // The declared one and the one of 5 days ago exist all day.
        assert_eq!(day[0]["count"], 2);
        assert_eq!(day[22]["count"], 3);
        assert_eq!(day[23]["count"], 4);
        let week = running_totals(Period::Week, at(7, 10, 30), created);
        assert_eq!(
            week.iter()
                .map(|m| m["count"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            vec![1, 2, 2, 2, 2, 2, 4]
        );
    }
}
