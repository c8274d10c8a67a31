//! Where a reconcile's time went, phase by phase: printed by the daemon after each reconcile and
//! exported as a metric, so a slow reconcile says which part was slow.

use std::time::{Duration, Instant};

/// Elapsed time per named phase, in the order the phases first ran. A phase that runs more than
/// once (the store is written at the start and at the end) adds up.
#[derive(Debug, Clone)]
pub struct Phases {
    laps: Vec<(&'static str, Duration)>,
    since: Instant,
}

impl Default for Phases {
    fn default() -> Self {
        Phases::new()
    }
}

impl Phases {
    /// Starts the clock.
    pub fn new() -> Phases {
        Phases {
            laps: Vec::new(),
            since: Instant::now(),
        }
    }

    /// Counts the time since the previous lap (or the start) to `phase`.
    pub fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        tracing::debug!(
            phase,
            elapsed_ms = (now - self.since).as_secs_f64() * 1e3,
            "phase done"
        );
        self.add(phase, now - self.since);
        self.since = now;
    }

    /// Counts `elapsed` to `phase` without moving the clock.
    pub fn add(&mut self, phase: &'static str, elapsed: Duration) {
        match self.laps.iter_mut().find(|(name, _)| *name == phase) {
            Some((_, total)) => *total += elapsed,
            None => self.laps.push((phase, elapsed)),
        }
    }

    /// Each phase and its total time.
    pub fn laps(&self) -> &[(&'static str, Duration)] {
        &self.laps
    }
}

impl std::fmt::Display for Phases {
    /// `snapshot 4.2 ms, validate 11.0 ms, …`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, elapsed)) in self.laps.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {:.1} ms", elapsed.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_phases_add_up_in_first_seen_order() {
        let mut p = Phases::new();
        p.add("store", Duration::from_micros(1500));
        p.add("plan", Duration::from_millis(3));
        p.add("store", Duration::from_micros(500));
        assert_eq!(
            p.laps(),
            &[
                ("store", Duration::from_millis(2)),
                ("plan", Duration::from_millis(3))
            ]
        );
        assert_eq!(p.to_string(), "store 2.0 ms, plan 3.0 ms");
    }

    #[test]
    fn lap_moves_the_clock() {
        let start = Instant::now();
        let mut p = Phases::new();
        std::thread::sleep(Duration::from_millis(20));
        p.lap("first");
        p.lap("second");
        let whole = start.elapsed();
        let laps = p.laps();
        assert!(laps[0].1 >= Duration::from_millis(20));
        // The laps split the time between them, so together they fit in the time measured
        // around them; a lap that did not move the clock would count the 20 ms twice.
        assert!(laps[0].1 + laps[1].1 <= whole, "{laps:?} in {whole:?}");
    }
}
