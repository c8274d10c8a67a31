//! A task log as the log page shows it: long stack traces folded under the line that says what
//! went wrong, everything else as it came. Python tracebacks (`Traceback (most recent call
//! last):`, indented frames, then the exception line) and Java stack traces (runs of `at …`
//! frames, as Spark prints) fold; short ones stay open.

use serde::Serialize;

/// Traces of fewer lines than this stay open.
const FOLD_FROM: usize = 8;

/// One piece of a log: plain text, or a trace folded under `summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub text: String,
    /// Set for a folded trace: what the folded part shows, e.g. `ValueError: bad row (23 lines)`.
    pub summary: Option<String>,
}

/// `log` cut into plain text and folded traces; joining every segment's text gives `log` back.
pub fn segments(log: &str) -> Vec<Segment> {
    let lines: Vec<&str> = log.split_inclusive('\n').collect();
    let mut out: Vec<Segment> = Vec::new();
    let mut plain = String::new();
    let mut i = 0;
    while i < lines.len() {
        let (len, exception) = trace_at(&lines[i..]);
        if len >= FOLD_FROM {
            if !plain.is_empty() {
                out.push(Segment {
                    text: std::mem::take(&mut plain),
                    summary: None,
                });
            }
            let what = exception
                .map(|e| e.trim().to_string())
                .unwrap_or_else(|| "stack trace".to_string());
            out.push(Segment {
                text: lines[i..i + len].concat(),
                summary: Some(format!("{what} ({len} lines)")),
            });
            i += len;
        } else {
            let take = len.max(1);
            for line in &lines[i..i + take] {
                plain.push_str(line);
            }
            i += take;
        }
    }
    if !plain.is_empty() {
        out.push(Segment {
            text: plain,
            summary: None,
        });
    }
    out
}

/// The length in lines of the trace that starts `lines` (0 when none does), and its exception
/// line when it names one.
fn trace_at<'a>(lines: &[&'a str]) -> (usize, Option<&'a str>) {
    let Some(first) = lines.first() else {
        return (0, None);
    };
    if first.contains("Traceback (most recent call last):") {
        // Indented frames, then the exception line (not indented), which ends the trace.
        let mut n = 1;
        while n < lines.len() && lines[n].starts_with([' ', '\t']) {
            n += 1;
        }
        return match lines.get(n) {
            Some(exception) if !exception.trim().is_empty() => (n + 1, Some(exception)),
            _ => (n, None),
        };
    }
    if is_java_frame(first) {
        let n = lines
            .iter()
            .take_while(|l| is_java_frame(l) || is_java_continuation(l))
            .count();
        return (n, None);
    }
    (0, None)
}

fn is_java_frame(line: &str) -> bool {
    line.starts_with([' ', '\t']) && line.trim_start().starts_with("at ")
}

/// `... 12 more` and `Caused by: …` inside a Java trace.
fn is_java_continuation(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with("... ") && t.trim_end().ends_with(" more")) || t.starts_with("Caused by: ")
}

#[cfg(test)]
mod tests {
    use super::{segments, Segment};

    fn python_trace(frames: usize) -> String {
        let mut t = String::from("Traceback (most recent call last):\n");
        for i in 0..frames {
            t.push_str(&format!("  File \"/opt/job.py\", line {i}, in step{i}\n"));
        }
        t.push_str("ValueError: bad row 17\n");
        t
    }

    #[test]
    fn a_long_python_traceback_folds_under_its_exception() {
        let log = format!("start\n{}after\n", python_trace(10));
        let s = segments(&log);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].text, "start\n");
        assert_eq!(
            s[1].summary.as_deref(),
            Some("ValueError: bad row 17 (12 lines)")
        );
        assert_eq!(s[2].text, "after\n");
        assert_eq!(s.iter().map(|s| s.text.as_str()).collect::<String>(), log);
    }

    #[test]
    fn a_short_traceback_stays_open() {
        let log = format!("start\n{}", python_trace(2));
        assert_eq!(
            segments(&log),
            vec![Segment {
                text: log.clone(),
                summary: None
            }]
        );
    }

    #[test]
    fn a_java_stack_trace_folds() {
        let mut log = String::from("ERROR Executor: Exception in task 0.0\n");
        for i in 0..9 {
            log.push_str(&format!("\tat org.apache.spark.Foo.bar(Foo.scala:{i})\n"));
        }
        log.push_str("Caused by: java.io.IOException: nope\n\tat x.Y.z(Y.java:1)\n\t... 12 more\n");
        log.push_str("INFO done\n");
        let s = segments(&log);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[1].summary.as_deref(), Some("stack trace (12 lines)"));
        assert_eq!(s.iter().map(|s| s.text.as_str()).collect::<String>(), log);
    }

    #[test]
    fn any_text_comes_back_whole() {
        for log in [
            "",
            "\n",
            "no newline",
            "Traceback (most recent call last):\n",
            "  at x\n",
        ] {
            let joined: String = segments(log).iter().map(|s| s.text.as_str()).collect();
            assert_eq!(joined, log);
        }
    }
}
