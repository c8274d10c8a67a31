//! Latency percentiles (nearest rank), as every phase reports them.

use std::time::Duration;

use serde_json::{json, Value};

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy)]
pub(super) struct Percentiles {
    pub(super) n: usize,
    pub(super) p50: f64,
    pub(super) p90: f64,
    pub(super) p99: f64,
    pub(super) max: f64,
}

impl Percentiles {
    pub(super) fn of(mut xs: Vec<Duration>) -> Option<Percentiles> {
        if xs.is_empty() {
            return None;
        }
        xs.sort();
        let n = xs.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            xs[rank - 1].as_secs_f64() * 1e3
        };
        Some(Percentiles {
            n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    pub(super) fn json(&self) -> Value {
        json!({ "n": self.n, "p50_ms": self.p50, "p90_ms": self.p90, "p99_ms": self.p99, "max_ms": self.max })
    }

    pub(super) fn text(&self) -> String {
        format!(
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50, self.p90, self.p99, self.max
        )
    }
}
