//! Small text helpers for echoing what a caller sent.

/// The first `max` characters of `text` (all of it when shorter), cut on a character boundary.
pub fn first_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::first_chars;

    #[test]
    fn cuts_on_characters_not_bytes() {
        assert_eq!(first_chars("héllo", 2), "hé");
        assert_eq!(first_chars("hi", 5), "hi");
        assert_eq!(first_chars("", 0), "");
    }
}
