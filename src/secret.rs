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

/// Secret values made only of letters and shorter than this are ordinary words as often as
/// not (an example's code `expired`, a password `secret`): scrubbed from free text they would
/// turn "the code is expired" into "the code is [redacted]". Free text keeps them; structured
/// redaction (fields, headers, keyed values) still hides them.
pub(crate) const MIN_SCRUBBED_WORD_LEN: usize = 8;

/// Whether `value` is scrubbed wherever it stands as a whole word in free text: long enough,
/// and not an ordinary word.
pub(crate) fn scrubbable(value: &str) -> bool {
    value.len() >= MIN_SCRUBBED_LEN
        && (value.len() >= MIN_SCRUBBED_WORD_LEN || !value.chars().all(char::is_alphabetic))
}

/// `text` with every whole-word occurrence of each secret value (of at least
/// [`MIN_SCRUBBED_LEN`] bytes) replaced by [`REDACTED`].
pub(crate) fn redact_values<'a>(
    mut text: String,
    secrets: impl IntoIterator<Item = &'a str>,
) -> String {
    for secret in secrets {
        if scrubbable(secret) {
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

/// How much of an unusable reply is shown in an error.
const EXCERPT_CHARS: usize = 160;

/// Keys whose values are secret in any reply, whatever the spec says.
const SENSITIVE_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
    "code_verifier",
    "device_code",
    "code",
    "accessToken",
    "refreshToken",
    "idToken",
    "clientSecret",
];

/// The one scrubbing policy: every secret a request carried, in every form a server may echo it
/// back (raw, form-encoded, percent-encoded, JSON- and XML-escaped, inside a Basic credential),
/// and the values of token-like keys, replaced by [`REDACTED`]. Every error string and reply
/// excerpt goes through it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scrubber {
    /// Texts to replace wherever they stand as whole words.
    needles: Vec<String>,
    /// Keys whose values are replaced in `"key": "…"`, `key=…` and `<key>…</key>`.
    keys: Vec<String>,
}

impl Scrubber {
    /// A scrubber that knows only the standard token-like keys.
    pub(crate) fn new() -> Self {
        Scrubber {
            needles: Vec::new(),
            keys: SENSITIVE_KEYS.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    /// Scrubs `value` in every encoding.
    pub(crate) fn secret(&mut self, value: &str) {
        if !scrubbable(value) {
            return;
        }
        let form: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let percent = form.replace('+', "%20");
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json
            .strip_prefix('"')
            .and_then(|j| j.strip_suffix('"'))
            .unwrap_or("")
            .to_owned();
        let json_slash = json.replace('/', "\\/");
        let json_ascii: String = json
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect()
                }
            })
            .collect();
        let xml = quick_xml::escape::escape(value).into_owned();
        for form in [
            value.to_owned(),
            form,
            percent,
            json,
            json_slash,
            json_ascii,
            xml,
        ] {
            self.needle(form);
        }
    }

    /// Scrubs the HTTP Basic credential of `id` and `secret`, in both of its encodings.
    pub(crate) fn basic(&mut self, id: &str, secret: &str) {
        for form_encode in [true, false] {
            self.needle(crate::template::basic_credentials(id, secret, form_encode));
        }
    }

    /// Scrubs the values of `key` wherever it stands as a key.
    pub(crate) fn key(&mut self, key: &str) {
        if !key.is_empty() && !self.keys.iter().any(|k| k == key) {
            self.keys.push(key.to_owned());
        }
    }

    fn needle(&mut self, text: String) {
        if text.len() >= MIN_SCRUBBED_LEN && !self.needles.contains(&text) {
            self.needles.push(text);
        }
    }

    /// `text` with every known secret form replaced (keyed values left alone): for previews,
    /// whose structure already hides what is secret.
    pub(crate) fn scrub_values(&self, text: String) -> String {
        // Longer needles first, so a secret inside a longer encoded form goes as a whole.
        let mut needles: Vec<&String> = self.needles.iter().collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        redact_values(text, needles.into_iter().map(String::as_str))
    }

    /// `text` with every known secret form and the values of token-like keys replaced, and
    /// the signature of any signed JWT in it (an assertion the request carried, which a
    /// provider may quote back, is made at render time and known to no scrubber).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = self.scrub_values(text.to_owned());
        for key in &self.keys {
            out = redact_keyed_values(&out, key);
        }
        redact_jws_signatures(&out)
    }

    /// The beginning of a body for an error message: scrubbed, whitespace folded, at most
    /// `EXCERPT_CHARS` characters.
    pub(crate) fn excerpt(&self, body: &[u8]) -> String {
        let text = self.scrub(&String::from_utf8_lossy(body));
        let folded: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if folded.is_empty() {
            return "(empty)".to_owned();
        }
        let mut out: String = folded.chars().take(EXCERPT_CHARS).collect();
        if folded.chars().count() > EXCERPT_CHARS {
            out.push('…');
        }
        out
    }
}

/// `text` with the signature of every compact JWS in it (`eyJ….….SIG`) replaced: the header and
/// claims say what a token is, the signature is what makes it a credential.
pub(crate) fn redact_jws_signatures(text: &str) -> String {
    static JWS: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = JWS
        .get_or_init(|| {
            regex::Regex::new(r"(eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.)[A-Za-z0-9_-]{8,}").ok()
        })
        .as_ref()
    else {
        return text.to_owned();
    };
    re.replace_all(text, format!("${{1}}{REDACTED}").as_str())
        .into_owned()
}

/// Redacts the values after `"key": "…"`, `key=…` and `<key>…</key>`.
fn redact_keyed_values(text: &str, key: &str) -> String {
    let out = redact_after(text, &format!("\"{key}\""), |rest| {
        let rest_trim = rest.trim_start();
        let colon = rest_trim.strip_prefix(':')?;
        let lead = rest.len() - colon.len();
        let colon_trim = colon.trim_start();
        let q = colon_trim.strip_prefix('"')?;
        let start = lead + (colon.len() - colon_trim.len()) + 1;
        let end = q.find('"').unwrap_or(q.len());
        Some((start, start + end))
    });
    let out = redact_after(&out, &format!("{key}="), |rest| {
        let end = rest.find(['&', ' ', '\n']).unwrap_or(rest.len());
        Some((0, end))
    });
    redact_after(&out, &format!("<{key}>"), |rest| {
        let end = rest.find('<').unwrap_or(rest.len());
        Some((0, end))
    })
}

/// For each occurrence of `marker`, `span(rest)` gives the byte range after it to redact.
fn redact_after(text: &str, marker: &str, span: impl Fn(&str) -> Option<(usize, usize)>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        let (head, tail) = rest.split_at(i + marker.len());
        // Only whole keys: `code=` must not match inside `device_code=`.
        let boundary =
            i == 0 || !head[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(head);
        match span(tail).filter(|_| boundary) {
            Some((start, end)) if end > start => {
                out.push_str(&tail[..start]);
                out.push_str(REDACTED);
                rest = &tail[end..];
            }
            _ => rest = tail,
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

    #[test]
    fn signatures_of_jwts_in_free_text_are_redacted() {
        let scrubber = super::Scrubber::new();
        assert_eq!(
            scrubber.scrub("bad assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ, try again"),
            "bad assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.[redacted], try again"
        );
        // Not a JWT: left alone.
        assert_eq!(scrubber.scrub("version eyJ.1.2"), "version eyJ.1.2");
    }

    #[test]
    fn an_ordinary_word_as_a_secret_is_left_in_free_text() {
        let mut scrubber = super::Scrubber::new();
        for secret in ["expired", "abc123", "hunter2", "sunshinesunshine"] {
            scrubber.secret(secret);
        }
        assert_eq!(
            scrubber
                .scrub("The code is expired; abc123 and hunter2 were sent, sunshinesunshine too"),
            "The code is expired; [redacted] and [redacted] were sent, [redacted] too"
        );
    }

    #[test]
    fn excerpts_redact_tokens_and_request_secrets() {
        let mut scrubber = super::Scrubber::new();
        scrubber.secret("hunter2");
        let body = br#"{"access_token": "abc123", "refresh_token":"zzz", "note": "pw hunter2"}"#;
        let e = scrubber.excerpt(body);
        assert!(
            !e.contains("abc123") && !e.contains("zzz") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(e.contains("\"note\""), "{e}");
        let e = super::Scrubber::new().excerpt(b"access_token=abc&device_code=d1&code=c1");
        assert_eq!(
            e,
            "access_token=[redacted]&device_code=[redacted]&code=[redacted]"
        );
        let long = "x".repeat(500);
        assert_eq!(
            super::Scrubber::new()
                .excerpt(long.as_bytes())
                .chars()
                .count(),
            super::EXCERPT_CHARS + 1
        );
    }

    #[test]
    fn every_encoding_of_a_secret_is_scrubbed() {
        let secret = "CS/+=&\"<>%é";
        let mut s = super::Scrubber::new();
        s.secret(secret);
        s.basic("app", secret);
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let echoes = [
            format!("raw {secret} end"),
            format!("client_secret={form}&x=1"),
            format!("got {} end", form.replace('+', "%20")),
            format!("json {} end", serde_json::to_string(secret).unwrap()),
            r#"ascii "CS/+=&\"<>%\u00e9" end"#.to_owned(),
            r#"slashes "CS\/+=&\"<>%é" end"#.to_owned(),
            format!("xml {} end", quick_xml::escape::escape(secret)),
            format!(
                "Authorization: Basic {}",
                crate::template::basic_credentials("app", secret, true)
            ),
            format!(
                "Authorization: Basic {}",
                crate::template::basic_credentials("app", secret, false)
            ),
        ];
        for echo in echoes {
            let out = s.scrub(&echo);
            assert!(out.contains(super::REDACTED), "{echo} → {out}");
            assert!(
                !out.contains("CS/") && !out.contains("CS%2F") && !out.contains("CS\\/"),
                "{echo} → {out}"
            );
        }
    }

    #[test]
    fn keys_the_spec_names_are_scrubbed_too() {
        let mut s = super::Scrubber::new();
        s.key("Token");
        let out = s.scrub(r#"{"accessToken":"a1b2c3","refreshToken":"r9"} <Token>xyz</Token>"#);
        assert_eq!(
            out,
            r#"{"accessToken":"[redacted]","refreshToken":"[redacted]"} <Token>[redacted]</Token>"#
        );
    }
}
