//! Reply bodies into one JSON value, by content type (sans-IO): JSON, form-urlencoded or XML,
//! sniffed when the type is missing, generic or wrong, so one set of JSONPaths serves all three.
//! Testable without a spec.

use serde_json::{Map, Value};

/// Parses a reply body into one JSON value, by Content-Type or, when that is missing or generic,
/// by sniffing. Errors say what the body is instead.
/// Whether `text` is an HTML document (a gateway's error page, a login form), by its start.
fn looks_html(text: &str) -> bool {
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

pub(crate) fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text")?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err("the body is empty");
    }
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if looks_html(text) {
        return Err("the body is an HTML page, not a token reply");
    }
    // A content type can lie (form or JSON served as text/html or text/plain): anything that
    // is not a real HTML document is decoded by what it is.
    let kind = if essence == "application/json"
        || essence.ends_with("+json")
        || essence == "text/javascript"
    {
        Kind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml") {
        Kind::Xml
    } else {
        sniff(text).ok_or("the body is not JSON, XML or form data")?
    };
    match kind {
        // A JSON content type with an XML or form body (or the reverse) still parses by shape.
        Kind::Json => serde_json::from_str(text).or_else(|_| match sniff(text) {
            Some(Kind::Xml) => xml_to_json(text),
            _ => Err("the body is not valid JSON"),
        }),
        Kind::Form => match sniff(text) {
            Some(Kind::Json) => {
                serde_json::from_str(text).map_err(|_| "the body is not valid JSON")
            }
            _ => Ok(form_to_json(text)),
        },
        Kind::Xml => xml_to_json(text),
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
        let v = parse_body(Some("application/xml; charset=utf-8"), xml.as_bytes()).unwrap();
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
        .unwrap();
        assert_eq!(v, json!({"access_token": "x y", "scope": "a,b"}));
        let v = parse_body(Some("text/plain"), br#"{"a":1}"#).unwrap();
        assert_eq!(v, json!({"a": 1}));
        let v = parse_body(None, b"a=1&b=2").unwrap();
        assert_eq!(v, json!({"a": "1", "b": "2"}));
        assert_eq!(
            parse_body(
                Some("text/html"),
                b"<html><body>502 Bad Gateway</body></html>"
            ),
            Err("the body is an HTML page, not a token reply")
        );
        // Lying content types: form and JSON bodies served as text/html are decoded by shape.
        let v = parse_body(
            Some("text/html; charset=utf-8"),
            b"access_token=t&expires_in=60",
        )
        .unwrap();
        assert_eq!(v, json!({"access_token": "t", "expires_in": "60"}));
        let v = parse_body(Some("text/html"), br#"{"access_token":"t"}"#).unwrap();
        assert_eq!(v, json!({"access_token": "t"}));
        assert_eq!(
            parse_body(Some("application/json"), b"<!DOCTYPE html><title>x</title>"),
            Err("the body is an HTML page, not a token reply")
        );
        assert_eq!(
            parse_body(Some("application/json"), b"  "),
            Err("the body is empty")
        );
        assert_eq!(
            parse_body(Some("application/json"), b"{nope"),
            Err("the body is not valid JSON")
        );
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
