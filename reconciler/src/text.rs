//! Small text helpers for echoing what a caller sent.

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

#[cfg(test)]
mod tests {
    use super::{echo, first_chars};

    #[test]
    fn echoes_are_capped_with_an_ellipsis() {
        assert_eq!(echo("short", 10), "short");
        assert_eq!(echo("exactly10!", 10), "exactly10!");
        assert_eq!(echo("elevenchars", 10), "elevencha…");
        assert_eq!(echo(&"é".repeat(300), 200).chars().count(), 200);
    }

    #[test]
    fn cuts_on_characters_not_bytes() {
        assert_eq!(first_chars("héllo", 2), "hé");
        assert_eq!(first_chars("hi", 5), "hi");
        assert_eq!(first_chars("", 0), "");
    }
}
