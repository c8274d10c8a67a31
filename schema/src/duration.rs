//! Durations as config authors write them: `30s`, `5m`, `1h30m`, `2d`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    secs: u64,
}

impl Duration {
    pub fn from_secs(secs: u64) -> Duration {
        Duration { secs }
    }

    pub fn as_secs(self) -> u64 {
        self.secs
    }

    /// Parses `[Nd][Nh][Nm][Ns]` with at least one part, units in that order.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let err = || {
            format!(
                "`{}` is not a duration: write e.g. 30s, 5m, 1h30m or 2d",
                s.escape_debug()
            )
        };
        let mut secs: u64 = 0;
        let mut num: Option<u64> = None;
        let mut last_unit = 0usize;
        for c in s.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = num
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(d as u64));
                num = Some(n.ok_or_else(err)?);
                continue;
            }
            let (rank, factor) = match c {
                'd' => (1, 86_400),
                'h' => (2, 3_600),
                'm' => (3, 60),
                's' => (4, 1),
                _ => return Err(err()),
            };
            let n = num.take().ok_or_else(err)?;
            if rank <= last_unit {
                return Err(err());
            }
            last_unit = rank;
            secs = n
                .checked_mul(factor)
                .and_then(|v| secs.checked_add(v))
                .ok_or_else(err)?;
        }
        if num.is_some() || last_unit == 0 {
            return Err(err());
        }
        Ok(Duration { secs })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secs == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.secs;
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Duration::parse("5m").unwrap().as_secs(), 300);
        assert_eq!(Duration::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(Duration::parse("2d").unwrap().as_secs(), 172_800);
        assert_eq!(Duration::parse("0s").unwrap().as_secs(), 0);
        assert_eq!(Duration::parse("90m").unwrap().to_string(), "1h30m");
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "1m1h",
            "1m1m",
            "99999999999999999999d",
            " 5m",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }
}
