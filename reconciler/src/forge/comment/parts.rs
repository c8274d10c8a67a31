//! Splitting a comment into parts that fit GitHub's limit: blocks, the units a comment is split
//! between, packed into parts that each start with a numbered header.

use std::fmt::Write as _;

use super::text::{code_span, len};
use super::MARKER;

/// One section of a comment: `head`, then `body` lines, then `close` (what `head` opened, such
/// as a code fence), then `end`. When the block does not fit, body lines are dropped from the
/// end and `note(dropped)` goes between `close` and `end`.
pub(super) struct Block {
    pub(super) head: String,
    pub(super) body: Vec<String>,
    pub(super) close: String,
    pub(super) end: String,
    pub(super) note: fn(usize) -> String,
}

impl Block {
    pub(super) fn text(head: String) -> Block {
        Block {
            head,
            body: Vec::new(),
            close: String::new(),
            end: String::new(),
            note: |_| String::new(),
        }
    }

    fn full(&self) -> String {
        let mut out = self.head.clone();
        for line in &self.body {
            out.push_str(line);
        }
        out.push_str(&self.close);
        out.push_str(&self.end);
        out
    }

    /// The block in at most `budget` characters, cut if it must be; `None` if even its fixed
    /// parts do not fit.
    fn fit(&self, budget: usize) -> Option<String> {
        let full = self.full();
        if len(&full) <= budget {
            return Some(full);
        }
        let total = self.body.len();
        // The note is longest when it counts every line.
        let fixed = len(&self.head) + len(&self.close) + len(&(self.note)(total)) + len(&self.end);
        let mut room = budget.checked_sub(fixed)?;
        let mut kept = 0;
        for line in &self.body {
            let l = len(line);
            if l > room {
                break;
            }
            room -= l;
            kept += 1;
        }
        let mut out = self.head.clone();
        for line in &self.body[..kept] {
            out.push_str(line);
        }
        out.push_str(&self.close);
        out.push_str(&(self.note)(total - kept));
        out.push_str(&self.end);
        Some(out)
    }
}

/// Stands in for a block that cannot fit a part even when cut.
const LEFT_OUT: &str =
    "_(a section too large for a comment was left out; run `olo plan` locally to see it)_\n";

/// Packs blocks into groups of at most `budget` characters, blocks separated by a blank line.
pub(super) fn pack(blocks: &[Block], budget: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for block in blocks {
        let full = block.full();
        let full_len = len(&full);
        let sep = usize::from(current_len > 0);
        if current_len + sep + full_len <= budget {
            if sep == 1 {
                current.push('\n');
            }
            current.push_str(&full);
            current_len += sep + full_len;
            continue;
        }
        if full_len > budget {
            // Cut either way: fill the current part when at least half of it is left, rather
            // than leave it nearly empty.
            let room = budget.saturating_sub(current_len + sep);
            if current_len > 0 && room >= budget / 2 {
                if let Some(cut) = block.fit(room) {
                    current.push('\n');
                    current.push_str(&cut);
                    parts.push(std::mem::take(&mut current));
                    current_len = 0;
                    continue;
                }
            }
        }
        if current_len > 0 {
            parts.push(std::mem::take(&mut current));
        }
        current = if full_len <= budget {
            full
        } else {
            block.fit(budget).unwrap_or_else(|| LEFT_OUT.to_string())
        };
        current_len = len(&current);
    }
    if current_len > 0 || parts.is_empty() {
        parts.push(current);
    }
    parts
}

pub(super) fn part_header(i: usize, n: usize, short_sha: &str) -> String {
    let mut out = format!("{MARKER}\n<!-- olo-plan part {i}/{n} -->\n");
    if i > 1 {
        let _ = writeln!(
            out,
            "_olo plan for {}, continued (part {i} of {n})_\n",
            code_span(short_sha)
        );
    }
    out
}

pub(super) fn part_trailer(i: usize, n: usize) -> String {
    if i < n {
        format!("\n_(continued in part {} of {n})_\n", i + 1)
    } else {
        String::new()
    }
}
