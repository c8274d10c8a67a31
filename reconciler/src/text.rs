//! Small text helpers for echoing what a caller sent, and for holding it in Markdown.

/// An error and its causes on one line: `a: b: c` (`could not write dags/x.py: No space left
/// on device`).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The first `max` characters of `text` (all of it when shorter), cut on a character boundary.
pub fn first_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// `text` as an audit entry or an error message may repeat it: at most `max` characters, and
/// an ellipsis (`…`) after the first `max - 1` when it is longer.
pub fn echo(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.chars().nth(max).is_none() {
        return text.into();
    }
    format!("{}…", first_chars(text, max.saturating_sub(1))).into()
}

/// `n` and a regular English noun, singular for one: "1 workspace", "2 workspaces", "0 jobs".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The longest run of `ch` in `text`.
pub fn longest_run(text: &str, ch: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        if c == ch {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A Markdown code fence (backticks, at least three) longer than every run of backticks and of
/// tildes in `content`: no line of `content`, indented or not, can close it, whichever fence
/// character the line uses.
pub fn code_fence(content: &str) -> String {
    let longest = longest_run(content, '`').max(longest_run(content, '~'));
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn count_says_one_thing_and_many_things() {
        assert_eq!(super::count(1, "workspace"), "1 workspace");
        assert_eq!(super::count(0, "job"), "0 jobs");
        assert_eq!(super::count(2, "DAG"), "2 DAGs");
    }

    use super::{code_fence, echo, first_chars};

    #[test]
    fn echoes_are_capped_with_an_ellipsis() {
        assert_eq!(echo("short", 10), "short");
        assert_eq!(echo("exactly10!", 10), "exactly10!");
        assert_eq!(echo("elevenchars", 10), "elevencha…");
        assert_eq!(echo(&"é".repeat(300), 200).chars().count(), 200);
    }

    #[test]
    fn fences_outgrow_backtick_and_tilde_runs() {
        assert_eq!(code_fence("plain"), "```");
        assert_eq!(code_fence("```"), "````");
        assert_eq!(code_fence("```\n~~~~~"), "``````");
        assert_eq!(code_fence("~~~~\n ```"), "`````");
    }

    #[test]
    fn cuts_on_characters_not_bytes() {
        assert_eq!(first_chars("héllo", 2), "hé");
        assert_eq!(first_chars("hi", 5), "hi");
        assert_eq!(first_chars("", 0), "");
    }
}
