//! Secret values: tokens, passwords, client secrets, codes and verifiers.

use std::fmt;

/// A secret string. Its `Debug` and `Display` print `[redacted]`; the value is only reachable
/// through the explicit [`Secret::secret`], so it cannot leak into logs or error messages by
/// accident.
///
/// ```
/// let s = specauth::Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "[redacted]");
/// assert_eq!(s.secret(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself. Call this only where the value must leave the process.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

/// The text that stands in for a secret value.
pub const REDACTED: &str = "[redacted]";

/// Secret values shorter than this are not scrubbed from free text: they would redact ordinary
/// words. (Structured redaction, field by field, covers them whatever their length.)
pub(crate) const MIN_SCRUBBED_LEN: usize = 3;

/// `text` with every whole-word occurrence of each secret value (of at least
/// [`MIN_SCRUBBED_LEN`] bytes) replaced by [`REDACTED`].
pub(crate) fn redact_values<'a>(
    mut text: String,
    secrets: impl IntoIterator<Item = &'a str>,
) -> String {
    for secret in secrets {
        if secret.len() >= MIN_SCRUBBED_LEN {
            text = redact_word(&text, secret);
        }
    }
    text
}

/// `text` with each whole-word occurrence of `secret` replaced by [`REDACTED`]. A word boundary
/// is a character that is not a letter, digit or `_` (or the text's edge), so a short secret
/// such as `sec` is redacted in `client_secret=sec` but not inside the word `client_secret`.
pub(crate) fn redact_word(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let needs_left = secret.chars().next().is_some_and(word);
    let needs_right = secret.chars().last().is_some_and(word);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(i) = rest.find(secret) {
        let prev = rest[..i]
            .chars()
            .last()
            .or(if i == 0 { before } else { None });
        let after = &rest[i + secret.len()..];
        let left_ok = !needs_left || !prev.is_some_and(word);
        let right_ok = !needs_right || !after.chars().next().is_some_and(word);
        if left_ok && right_ok {
            out.push_str(&rest[..i]);
            out.push_str(REDACTED);
            before = secret.chars().last();
            rest = after;
        } else {
            // Keep one character and look again from the next one.
            let step = rest[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..i + step]);
            before = rest[..i + step].chars().last();
            rest = &rest[i + step..];
        }
    }
    out.push_str(rest);
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_whole_words_are_redacted() {
        use super::redact_word as r;
        assert_eq!(r("client_secret=sec", "sec"), "client_secret=[redacted]");
        assert_eq!(r("sec sec,sec", "sec"), "[redacted] [redacted],[redacted]");
        assert_eq!(r("secsec", "sec"), "secsec");
        assert_eq!(r("bad code c0de!", "c0de"), "bad code [redacted]!");
        assert_eq!(r("x=a%2Fb&", "a%2Fb"), "x=[redacted]&");
        assert_eq!(r("é-sec-é", "sec"), "é-[redacted]-é");
        assert_eq!(r("", "sec"), "");
    }
}
