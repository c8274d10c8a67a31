//! Escaping and small text helpers of the plan comment: everything from a commit is escaped for
//! the place it lands in (Markdown text, HTML, a code span, a code fence, a link).

use std::fmt::Write as _;

pub(super) fn len(s: &str) -> usize {
    s.chars().count()
}

pub(super) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub(super) fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

/// At most `max` characters, ending in `…` when cut.
pub(in crate::forge) fn cut(s: &str, max: usize) -> String {
    if len(s) <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Line breaks and runs of whitespace become single spaces.
pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text for Markdown: no HTML, no links, no emphasis, no mentions, on one line.
pub(super) fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' | '\r' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A zero-width space after `@` keeps `@team` from notifying anyone.
            '@' => out.push_str("@&#8203;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '~' | '!' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

/// Text for Markdown like [`escape_markdown`], except that `code` in backticks (as olo's
/// messages quote names and values) stays a code span.
pub(super) fn escape_markdown_with_code(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut out = String::with_capacity(s.len());
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            text.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] != '`' {
                j += 1;
                continue;
            }
            let m = run_at(j);
            if m == n {
                close = Some(j);
                break;
            }
            j += m;
        }
        match close {
            Some(j) => {
                out.push_str(&escape_markdown(&text));
                text.clear();
                let code: String = chars[i + n..j].iter().collect();
                out.push_str(&code_span(&code));
                i = j + n;
            }
            None => {
                text.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    out.push_str(&escape_markdown(&text));
    out
}

/// Text for HTML (inside `<summary>`), on one line.
pub(super) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' | '\r' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

pub(super) fn longest_backtick_run(s: &str) -> usize {
    crate::text::longest_run(s, '`')
}

/// A backtick fence longer than any backtick or tilde run in `content`, so no line of it can
/// close the fence ([`crate::text::code_fence`]).
pub(super) fn fence_for(content: &str) -> String {
    crate::text::code_fence(content)
}

/// An inline code span that holds `s` whatever backticks it contains (on one line; a blank `s`
/// is a span of one space: two backticks alone are no span, and would pair with a later run).
pub(super) fn code_span(s: &str) -> String {
    let s = one_line(s);
    if s.is_empty() {
        return "` `".into();
    }
    let delimiter = "`".repeat(longest_backtick_run(&s) + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{delimiter} {s} {delimiter}")
    } else {
        format!("{delimiter}{s}{delimiter}")
    }
}

/// Percent-encodes a repository path (or sha) for a URL, keeping `/` between segments.
pub(super) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A URL made safe as a Markdown link destination: no spaces, parentheses or angle brackets.
pub(super) fn link_destination(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for ch in url.chars() {
        if ch.is_ascii_graphic() && !matches!(ch, '(' | ')' | '<' | '>' | '"' | '`' | '\\') {
            out.push(ch);
        } else {
            let mut buf = [0; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Lines added and removed by a unified diff (the `---`/`+++` file header is not counted).
pub(super) fn diff_stat(diff: &str) -> (usize, usize) {
    let mut added = 0;
    let mut removed = 0;
    let mut in_hunk = false;
    for line in diff.lines() {
        if line.starts_with("@@") {
            in_hunk = true;
        } else if in_hunk && line.starts_with('+') {
            added += 1;
        } else if in_hunk && line.starts_with('-') {
            removed += 1;
        }
    }
    (added, removed)
}
