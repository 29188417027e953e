//! Reply bodies into one JSON value, by content type (sans-IO): JSON, form-urlencoded or XML,
//! sniffed when the type is missing, generic or wrong, so one set of JSONPaths serves all three.
//! Testable without a spec.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Parses a reply body into one JSON value, by Content-Type or, when that is missing or generic,
/// by sniffing. Errors say what the body is instead.
/// Whether `text` is an HTML document (a gateway's error page, a login form), by its start.
fn looks_html(text: &str) -> bool {
    // Every form below starts with `<`: a token reply (`{`, a form) is not lower-cased to see.
    if !text.starts_with('<') {
        return false;
    }
    let head = text
        .get(..text.len().min(512))
        .unwrap_or(text)
        .to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<head")
        || head.starts_with("<body")
        || (head.starts_with('<') && (head.contains("<html") || head.contains("<body")))
}

/// How much of a plain-text error body becomes the provider's message.
const TEXT_MESSAGE_CHARS: usize = 300;

/// A body that is a sentence rather than a document: UTF-8, not empty, not HTML, not broken
/// JSON or XML. Its whitespace folded and at most `TEXT_MESSAGE_CHARS` characters.
pub(crate) fn plain_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body)
        .ok()?
        .trim_start_matches('\u{feff}')
        .trim();
    if text.is_empty() || looks_html(text) || matches!(sniff(text), Some(Kind::Json | Kind::Xml)) {
        return None;
    }
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = folded.chars().take(TEXT_MESSAGE_CHARS).collect();
    if folded.chars().count() > TEXT_MESSAGE_CHARS {
        out.push('…');
    }
    Some(out)
}

pub(crate) fn parse_body<'b>(
    content_type: Option<&str>,
    body: &'b [u8],
) -> Result<Body<'b>, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text")?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err("the body is empty");
    }
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map_or("", str::trim);
    let is = |name: &str| essence.eq_ignore_ascii_case(name);
    let ends = |suffix: &str| {
        essence
            .len()
            .checked_sub(suffix.len())
            .and_then(|start| essence.get(start..))
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
    };
    if looks_html(text) {
        return Err("the body is an HTML page, not a token reply");
    }
    // A content type can lie (form or JSON served as text/html or text/plain): anything that
    // is not a real HTML document is decoded by what it is.
    let kind = if is("application/json") || ends("+json") || is("text/javascript") {
        Kind::Json
    } else if is("application/x-www-form-urlencoded") {
        Kind::Form
    } else if is("application/xml") || is("text/xml") || ends("+xml") {
        Kind::Xml
    } else {
        sniff(text).ok_or("the body is not JSON, XML or form data")?
    };
    match kind {
        // A JSON content type with an XML or form body (or the reverse) still parses by shape.
        Kind::Json => json(text).or_else(|_| match sniff(text) {
            Some(Kind::Xml) => xml_to_json(text).map(Body::from),
            _ => Err("the body is not valid JSON"),
        }),
        Kind::Form => match sniff(text) {
            Some(Kind::Json) => json(text).map_err(|_| "the body is not valid JSON"),
            _ => Ok(Body::from(form_to_json(text))),
        },
        Kind::Xml => xml_to_json(text).map(Body::from),
    }
}

/// A JSON body: an object read into its members (what token replies are), anything else into
/// one value.
fn json(text: &str) -> Result<Body<'_>, serde_json::Error> {
    if text.starts_with('{') {
        serde_json::from_str::<Members<'_>>(text).map(|m| match m {
            Members::Few(members) => Body {
                members,
                whole: OnceCell::new(),
            },
            Members::Many(map) => Body::from(Value::Object(map)),
        })
    } else {
        serde_json::from_str::<Value>(text).map(Body::from)
    }
}

/// A parsed reply body, as the spec's paths read it.
///
/// A JSON object, what nearly every token reply is, is kept as its members in order, the names
/// borrowed from the body where they have no escapes: a path such as `$.access_token` finds its
/// member by name, with no map built, no name copied and nothing hashed. The whole value, for a
/// path that needs it (`$`, `$..x`, a filter, a `template:`), is built from the members on first
/// use and equals what `serde_json` reads from the same text: a repeated name keeps its first
/// place and its last value. Any other body (form, XML, an array, a member list beyond
/// [`MAX_MEMBERS`]) is the whole value from the start.
#[derive(Debug)]
pub(crate) struct Body<'b> {
    /// The members of a JSON object, in order, repeats included; empty when `whole` is set
    /// from the start.
    members: Vec<(Cow<'b, str>, Value)>,
    whole: OnceCell<Value>,
}

/// The most members a body keeps as a list (each name found by a scan); an object with more
/// is read into a map, as it would be without this.
const MAX_MEMBERS: usize = 32;

impl From<Value> for Body<'_> {
    fn from(value: Value) -> Self {
        Body {
            members: Vec::new(),
            whole: OnceCell::from(value),
        }
    }
}

impl<'b> Body<'b> {
    /// The whole body as one JSON value.
    pub(crate) fn whole(&self) -> &Value {
        self.whole.get_or_init(|| {
            let mut map = Map::with_capacity(self.members.len());
            for (name, value) in &self.members {
                map.insert(name.clone().into_owned(), value.clone());
            }
            Value::Object(map)
        })
    }

    /// The whole body as one JSON value, owned.
    pub(crate) fn into_whole(self) -> Value {
        self.whole();
        self.whole.into_inner().unwrap_or(Value::Null)
    }

    /// The body when it is a JSON string (a plain-text refusal is read as one).
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.whole.get().and_then(Value::as_str)
    }

    /// The member `name` of an object body (the last, when a name repeats, as in a map);
    /// `None` when the body is no object or has no such member.
    pub(crate) fn member(&self, name: &str) -> Option<&Value> {
        match self.whole.get() {
            Some(value) => value.as_object()?.get(name),
            None => self
                .members
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v),
        }
    }

    /// Whether the body is kept as members (no whole value built yet).
    pub(crate) fn is_members(&self) -> bool {
        self.whole.get().is_none()
    }
}

/// A JSON object read for [`Body`]: its members, or a map past [`MAX_MEMBERS`].
enum Members<'b> {
    Few(Vec<(Cow<'b, str>, Value)>),
    Many(Map<String, Value>),
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        // Room for a token reply's usual members at once.
        let mut members = Vec::with_capacity(8);
        while let Some(name) = access.next_key::<Name<'de>>()? {
            let value: Value = access.next_value()?;
            if members.len() == MAX_MEMBERS {
                // As serde_json reads it: a map, a repeated name keeping its first place.
                let mut map = Map::with_capacity(MAX_MEMBERS * 2);
                for (n, v) in members.drain(..) {
                    map.insert(Cow::into_owned(n), v);
                }
                map.insert(name.0.into_owned(), value);
                while let Some((n, v)) = access.next_entry::<String, Value>()? {
                    map.insert(n, v);
                }
                return Ok(Members::Many(map));
            }
            members.push((name.0, value));
        }
        Ok(Members::Few(members))
    }
}

/// A member name, borrowed from the body unless it has escapes.
struct Name<'b>(Cow<'b, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Json,
    Form,
    Xml,
}

fn sniff(text: &str) -> Option<Kind> {
    let first = text.chars().next()?;
    if first == '{' || first == '[' {
        Some(Kind::Json)
    } else if first == '<' {
        Some(Kind::Xml)
    } else if text.contains('=') && !text.contains(char::is_whitespace) {
        Some(Kind::Form)
    } else {
        None
    }
}

fn form_to_json(text: &str) -> Value {
    let mut m = Map::new();
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        m.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    Value::Object(m)
}

/// XML → JSON: the root element becomes the value itself; child elements become keys (repeated
/// ones an array); text-only elements strings; empty elements null; attributes `@name`
/// (namespace declarations dropped). Namespace prefixes are stripped from names.
fn xml_to_json(text: &str) -> Result<Value, &'static str> {
    use quick_xml::events::Event;
    const BAD: &str = "the body is not well-formed XML";
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    // Stack of (name, children, text) for open elements.
    let mut stack: Vec<(String, Map<String, Value>, String)> = Vec::new();
    let mut root: Option<Value> = None;
    let finish = |children: Map<String, Value>, text: String| -> Value {
        if !children.is_empty() {
            Value::Object(children)
        } else if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        }
    };
    fn insert(map: &mut Map<String, Value>, name: String, v: Value) {
        match map.get_mut(&name) {
            Some(Value::Array(items)) => items.push(v),
            Some(existing) => {
                let prev = existing.take();
                *existing = Value::Array(vec![prev, v]);
            }
            None => {
                map.insert(name, v);
            }
        }
    }
    let attrs = |e: &quick_xml::events::BytesStart| -> Result<Map<String, Value>, &'static str> {
        let mut m = Map::new();
        for a in e.attributes() {
            let a = a.map_err(|_| BAD)?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let local = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
            let v = a.unescape_value().map_err(|_| BAD)?.into_owned();
            m.insert(format!("@{local}"), Value::String(v));
        }
        Ok(m)
    };
    loop {
        match reader.read_event().map_err(|_| BAD)? {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(BAD);
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push((name, attrs(&e)?, String::new()));
                if stack.len() > 64 {
                    return Err("the XML body is nested too deeply");
                }
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let a = attrs(&e)?;
                let v = if a.is_empty() {
                    Value::Null
                } else {
                    Value::Object(a)
                };
                match stack.last_mut() {
                    Some((_, children, _)) => insert(children, name, v),
                    None if root.is_none() => root = Some(Value::Object(Map::new())),
                    None => return Err(BAD),
                }
            }
            Event::Text(t) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    let decoded = t.decode().map_err(|_| BAD)?;
                    let unescaped = quick_xml::escape::unescape(&decoded).map_err(|_| BAD)?;
                    text.push_str(&unescaped);
                }
            }
            Event::CData(t) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let reference = format!("&{name};");
                    let resolved = quick_xml::escape::unescape(&reference).map_err(|_| BAD)?;
                    text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().ok_or(BAD)?;
                let v = finish(children, text.trim().to_owned());
                match stack.last_mut() {
                    Some((_, parent, _)) => insert(parent, name, v),
                    None => {
                        root = Some(if v.is_null() {
                            Value::Object(Map::new())
                        } else {
                            v
                        })
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(BAD);
    }
    root.ok_or(BAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_reply_becomes_the_same_json_as_a_json_reply() {
        let xml = r#"<OAuthAccessTokenGrant xmlns:xsd="http://www.w3.org/2001/XMLSchema"> <access_token>a&amp;b</access_token> <expires_in>10800</expires_in> <scope /> </OAuthAccessTokenGrant>"#;
        let v = parse_body(Some("application/xml; charset=utf-8"), xml.as_bytes())
            .unwrap()
            .into_whole();
        assert_eq!(
            v,
            json!({"access_token": "a&b", "expires_in": "10800", "scope": null})
        );
    }

    #[test]
    fn repeated_xml_elements_become_arrays() {
        let v = xml_to_json("<r><s>a</s><s>b</s><t x=\"1\"/></r>").unwrap();
        assert_eq!(v, json!({"s": ["a", "b"], "t": {"@x": "1"}}));
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "</a>",
            "<a></a><b></b>",
            "<a x='1></a>",
        ] {
            assert!(xml_to_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn form_reply_and_sniffing() {
        let v = parse_body(
            Some("application/x-www-form-urlencoded"),
            b"access_token=x%20y&scope=a%2Cb",
        )
        .unwrap()
        .into_whole();
        assert_eq!(v, json!({"access_token": "x y", "scope": "a,b"}));
        let v = parse_body(Some("text/plain"), br#"{"a":1}"#)
            .unwrap()
            .into_whole();
        assert_eq!(v, json!({"a": 1}));
        // Content types are compared without regard to case.
        for ct in [
            "Application/JSON; charset=UTF-8",
            "application/vnd.api+JSON",
        ] {
            let v = parse_body(Some(ct), b"<r><a>1</a></r>")
                .unwrap()
                .into_whole();
            assert_eq!(v, json!({"a": "1"}), "{ct}");
        }
        let v = parse_body(Some("Application/X-WWW-Form-Urlencoded"), b"{\"a\":1}")
            .unwrap()
            .into_whole();
        assert_eq!(v, json!({"a": 1}));
        let v = parse_body(None, b"a=1&b=2").unwrap().into_whole();
        assert_eq!(v, json!({"a": "1", "b": "2"}));
        assert_eq!(
            parse_body(
                Some("text/html"),
                b"<html><body>502 Bad Gateway</body></html>"
            )
            .map(Body::into_whole),
            Err("the body is an HTML page, not a token reply")
        );
        // Lying content types: form and JSON bodies served as text/html are decoded by shape.
        let v = parse_body(
            Some("text/html; charset=utf-8"),
            b"access_token=t&expires_in=60",
        )
        .unwrap()
        .into_whole();
        assert_eq!(v, json!({"access_token": "t", "expires_in": "60"}));
        let v = parse_body(Some("text/html"), br#"{"access_token":"t"}"#)
            .unwrap()
            .into_whole();
        assert_eq!(v, json!({"access_token": "t"}));
        assert_eq!(
            parse_body(Some("application/json"), b"<!DOCTYPE html><title>x</title>")
                .map(Body::into_whole),
            Err("the body is an HTML page, not a token reply")
        );
        assert_eq!(
            parse_body(Some("application/json"), b"  ").map(Body::into_whole),
            Err("the body is empty")
        );
        assert_eq!(
            parse_body(Some("application/json"), b"{nope").map(Body::into_whole),
            Err("the body is not valid JSON")
        );
    }

    #[test]
    fn an_object_read_as_members_is_what_serde_json_reads() {
        let many: String = (0..40)
            .map(|i| format!("\"k{}\":{i}", i % 35))
            .collect::<Vec<_>>()
            .join(",");
        let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        let texts = [
            r#"{"access_token":"t","expires_in":3600,"scope":"a b"}"#.to_owned(),
            r#"{}"#.to_owned(),
            r#"{"a":1,"b":2,"a":3}"#.to_owned(),
            r#"{"a\u0062":"x","ab":"y","\"q\"":{"n":[1,2.5,-3e2,null,true]}}"#.to_owned(),
            format!("{{{many}}}"),
            format!("{{{many},\"k0\":\"last\"}}"),
            deep(100),
            deep(126),
            deep(127),
            deep(200),
            r#"{"a":1} x"#.to_owned(),
            r#"{"a":1,}"#.to_owned(),
            r#"{"a":"\x"}"#.to_owned(),
            "{\"a\":\"\u{1}\"}".to_owned(),
            r#"{"a":18446744073709551616,"b":-0,"c":1.0}"#.to_owned(),
        ];
        for text in &texts {
            let general = serde_json::from_str::<Value>(text).ok();
            let body = json(text).ok();
            assert_eq!(body.as_ref().map(|b| b.whole().clone()), general, "{text}");
            if let (Some(body), Some(Value::Object(map))) = (json(text).ok(), &general) {
                for (name, value) in map {
                    assert_eq!(body.member(name), Some(value), "{text}: {name}");
                }
                assert_eq!(body.member("absent"), None);
            }
        }
    }

    #[test]
    fn plain_text_is_a_sentence_not_a_page() {
        assert_eq!(
            plain_text(b"  Invalid client\n credentials. "),
            Some("Invalid client credentials.".into())
        );
        assert_eq!(plain_text(b"<html><body>x</body></html>"), None);
        assert_eq!(plain_text(b"   "), None);
        assert_eq!(plain_text(b"{not json"), None);
        assert_eq!(plain_text(b"\xff\xfe"), None);
        assert_eq!(
            plain_text("y".repeat(400).as_bytes()).map(|t| t.chars().count()),
            Some(TEXT_MESSAGE_CHARS + 1)
        );
    }
}
