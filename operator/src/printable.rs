//! Text that a terminal shows as written: no control characters (C0, DEL, C1: escape sequences
//! that move the cursor, recolour or rewrite a line) and no bidirectional overrides (which
//! reorder what is shown). Fields that reach status are refused with such characters in them,
//! and `status` escapes any it reads anyway (status can be written by others).

use std::borrow::Cow;

/// Whether `c` could change how a terminal shows the text around it.
pub fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each unsafe character written as `\u{…}`.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped_the_rest_kept() {
        assert_eq!(
            escaped("https://jwks.acme.com/ü"),
            "https://jwks.acme.com/ü"
        );
        assert!(matches!(escaped("plain"), Cow::Borrowed(_)));
        assert_eq!(escaped("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escaped("x\ny\u{7f}\u{9b}"), "x\\u{a}y\\u{7f}\\u{9b}");
        assert_eq!(escaped("moc.\u{202e}evil"), "moc.\\u{202e}evil");
    }
}
