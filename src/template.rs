//! Templated strings in specs: minijinja, compiled once per spec, strict about undefined
//! variables, no auto-escaping, fuel-bounded.
//!
//! Plain strings, bare `{{ name }}` references and texts whose only syntax is such references
//! (`https://{{ host }}/token`) never reach the template engine: they are the common case, are
//! recognised once when the spec is compiled, and are filled in directly when rendering.

use base64::Engine as _;
use indexmap::IndexMap;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

/// Fuel for one template render: generous for the string building specs do, small enough that a
/// runaway loop stops at once.
const FUEL: u64 = 50_000;

/// A compiled template.
#[derive(Clone, Debug)]
pub(crate) enum Tmpl {
    /// No template syntax: used as is.
    Literal(String),
    /// Exactly `{{ name }}`: the input's value.
    Var(String),
    /// Text and `{{ name }}` references only: filled in without the engine.
    Parts {
        pieces: Vec<Piece>,
        vars: Vec<String>,
    },
    /// Anything else: a template registered in the spec's environment under this name.
    Jinja { name: String, vars: Vec<String> },
}

impl Tmpl {
    /// Inputs this template refers to.
    pub(crate) fn vars(&self) -> &[String] {
        match self {
            Tmpl::Literal(_) => &[],
            Tmpl::Var(v) => std::slice::from_ref(v),
            Tmpl::Parts { vars, .. } | Tmpl::Jinja { vars, .. } => vars,
        }
    }

    /// Renders with the given inputs. Every referenced input must be present (checked by the
    /// caller, so this only fails on a template runtime error).
    pub(crate) fn render(
        &self,
        env: &Environment<'static>,
        inputs: &impl Lookup,
    ) -> Result<String, String> {
        match self {
            Tmpl::Literal(s) => Ok(s.clone()),
            Tmpl::Var(v) => inputs
                .value(v)
                .map(str::to_owned)
                .ok_or_else(|| format!("input `{v}` is not set")),
            Tmpl::Parts { pieces, .. } => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Var(v) => out.push_str(
                            inputs
                                .value(v)
                                .ok_or_else(|| format!("input `{v}` is not set"))?,
                        ),
                    }
                }
                Ok(out)
            }
            Tmpl::Jinja { name, vars } => {
                let template = env.get_template(name).map_err(|e| e.to_string())?;
                let ctx = Value::from_pairs(
                    vars.iter()
                        .filter_map(|v| inputs.value(v).map(|x| (v.as_str(), Value::from(x)))),
                );
                template.render(ctx).map_err(|e| describe(&e))
            }
        }
    }
}

/// Input values by name, as templates read them: owned (`IndexMap<String, String>`) or
/// borrowed from the caller's inputs and the spec's defaults (`IndexMap<&str, &str>`), so
/// rendering copies no value it only reads.
pub(crate) trait Lookup {
    fn value(&self, name: &str) -> Option<&str>;
}

impl<K, V, S> Lookup for IndexMap<K, V, S>
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    V: AsRef<str>,
    S: std::hash::BuildHasher,
{
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

/// A piece of a [`Tmpl::Parts`] template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    Var(String),
}

/// The pieces of a text whose only template syntax is `{{ name }}` references, which render
/// exactly as minijinja would render them. `None` for anything else: statements, comments,
/// filters, expressions, whitespace control, line breaks, and constants such as `none`.
fn pieces(source: &str) -> Option<Vec<Piece>> {
    if source.contains(['\n', '\r']) || source.contains("{%") || source.contains("{#") {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let name = after[..close].trim_matches([' ', '\t']);
        let mut chars = name.chars();
        let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        // Constants are literals to minijinja, not variables.
        let constant = matches!(name, "true" | "false" | "none" | "True" | "False" | "None");
        if !ident || constant {
            return None;
        }
        out.push(Piece::Var(name.to_owned()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    Some(out)
}

/// A template error in one line, with minijinja's own detail.
pub(crate) fn describe(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    if let Some(detail) = e.detail()
        && !msg.contains(detail)
    {
        msg.push_str(": ");
        msg.push_str(detail);
    }
    msg
}

/// The environment every spec's templates are compiled in.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(16);
    env.add_filter("b64encode", |s: &str| {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    });
    env.add_filter("urlencode", |s: &str| {
        form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
    });
    env.add_function("basic_auth", |id: &str, secret: &str| {
        basic_credentials(id, secret, true)
    });
    env.add_filter("b64urlencode", |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
    });
    env.add_filter("sha256", |s: &str, encoding: Option<&str>| {
        use sha2::Digest as _;
        encode_digest(&sha2::Sha256::digest(s.as_bytes()), encoding)
    });
    env.add_filter(
        "hmac_sha256",
        |message: &str, key: &str, encoding: Option<&str>| {
            use hmac::Mac as _;
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                })?;
            mac.update(message.as_bytes());
            encode_digest(&mac.finalize().into_bytes(), encoding)
        },
    );
    // `token | jwt_claims`: the claims of a JWT found in a reply, decoded but not verified (the
    // provider issued it; the client only reads its `exp` or `sub`). Not a JWT: no claims.
    env.add_filter("jwt_claims", |token: &str| -> Value {
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|payload| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload.trim_end_matches('='))
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .filter(serde_json::Value::is_object);
        match claims {
            Some(c) => Value::from(minijinja::value::Serde(c)),
            None => Value::UNDEFINED,
        }
    });
    // `text | regex_capture(pattern, group=1)`: the group's text where the pattern matches,
    // nothing where it does not (the regex crate: linear time, bounded size).
    env.add_filter(
        "regex_capture",
        |text: &str, pattern: &str, group: Option<usize>| -> Result<Value, minijinja::Error> {
            let re = regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                })?;
            Ok(re
                .captures(text)
                .and_then(|c| c.get(group.unwrap_or(1)))
                .map_or(Value::UNDEFINED, |m| Value::from(m.as_str())))
        },
    );
    // `text | from_json`: a JSON document given as an input (a service account's key file, read
    // with `--set key_file=@key.json`), so a template can use its fields.
    env.add_filter(
        "from_json",
        |text: &str| -> Result<Value, minijinja::Error> {
            serde_json::from_str::<serde_json::Value>(text)
                .map(|v| Value::from(minijinja::value::Serde(v)))
                .map_err(|e| {
                    // The position only: the text may be a key file, whose content stays out.
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("not JSON (line {}, column {})", e.line(), e.column()),
                    )
                })
        },
    );
    env.add_function("uuid", fresh_uuid);
    env.add_function("nonce", |len: Option<usize>| {
        let len = len.unwrap_or(32).clamp(8, 128);
        fresh(
            |n| format!("{n:0>len$}"),
            || {
                let mut bytes = vec![0u8; len];
                // No randomness from the OS is a broken machine; a nonce of zeros would be a
                // silent weakness, so fail the render instead.
                getrandom::fill(&mut bytes).map(|()| {
                    bytes
                        .iter()
                        .map(|b| char::from(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[usize::from(*b) % 62]))
                        .collect::<String>()
                }).unwrap_or_default()
            },
        )
    });
    env.add_function("now", clock_now);
    // `jwt(claims, key, 'RS256', kid=…, x5t_s256=…)`: claims (a map) signed as a compact JWS
    // with a PEM private key, or a shared secret for HS256/384/512 (RFC 7523 assertions).
    env.add_function(
        "jwt",
        |claims: Value,
         key: &str,
         alg: Option<&str>,
         kwargs: minijinja::value::Kwargs|
         -> Result<String, minijinja::Error> {
            let kid: Option<String> = kwargs.get("kid")?;
            let x5t_s256: Option<String> = kwargs.get("x5t_s256")?;
            kwargs.assert_all_used()?;
            let claims = serde_json::to_value(&claims).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
            })?;
            crate::jwt::sign(
                &claims,
                &crate::jwt::Signing {
                    alg: alg.unwrap_or("RS256"),
                    key,
                    kid: kid.as_deref(),
                    x5t_s256: x5t_s256.as_deref(),
                },
            )
            .map_err(|m| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, m))
        },
    );
    env.add_function("now_iso", || {
        let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(clock_now()).unwrap_or(0))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    });
    env
}

thread_local! {
    /// A fixed clock and counter for templates' `now()`, `uuid()` and `nonce()`, set while
    /// examples run so their requests are the same on every run.
    static FIXED: std::cell::Cell<Option<(u64, u64)>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with templates' clock fixed at `now` and their random values replaced by a
/// counter: how examples render reproducibly.
pub(crate) fn with_fixed_clock<R>(now: u64, f: impl FnOnce() -> R) -> R {
    let previous = FIXED.with(|c| c.replace(Some((now, 0))));
    let out = f();
    FIXED.with(|c| c.set(previous));
    out
}

pub(crate) fn clock_now() -> u64 {
    FIXED
        .with(std::cell::Cell::get)
        .map_or_else(crate::client::now, |(now, _)| now)
}

/// A fresh UUID v4, or under [`with_fixed_clock`] a counting one.
pub(crate) fn fresh_uuid() -> String {
    fresh(
        |n| format!("00000000-0000-4000-8000-{n:012}"),
        || uuid::Uuid::new_v4().to_string(),
    )
}

/// A fresh random value, or under [`with_fixed_clock`] the next of a counter.
fn fresh(fixed: impl FnOnce(u64) -> String, random: impl FnOnce() -> String) -> String {
    match FIXED.with(std::cell::Cell::get) {
        Some((now, n)) => {
            FIXED.with(|c| c.set(Some((now, n + 1))));
            fixed(n + 1)
        }
        None => random(),
    }
}

/// A digest as `hex` (the default), `base64` or `base64url` (unpadded).
fn encode_digest(bytes: &[u8], encoding: Option<&str>) -> Result<String, minijinja::Error> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    match encoding.unwrap_or("hex") {
        "hex" => Ok(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        "base64" => Ok(STANDARD.encode(bytes)),
        "base64url" => Ok(URL_SAFE_NO_PAD.encode(bytes)),
        other => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("unknown digest encoding `{other}`; expected hex, base64 or base64url"),
        )),
    }
}

/// `base64(id ":" secret)`, with id and secret form-urlencoded first when `form_encode` is set
/// (RFC 6749 §2.3.1).
/// The `Authorization` header value for HTTP Basic: `Basic ` and [`basic_credentials`], built
/// in one buffer.
pub(crate) fn basic_header(id: &str, secret: &str, form_encode: bool) -> String {
    let mut out = String::with_capacity(6 + (id.len() + secret.len() + 1).div_ceil(3) * 4);
    out.push_str("Basic ");
    with_joined(id, secret, form_encode, |joined| {
        base64::engine::general_purpose::STANDARD.encode_string(joined, &mut out);
    });
    out
}

/// `id:secret` (each form-encoded first when `form_encode`), handed to `f`: from a buffer on
/// the stack when it fits, as client credentials do.
fn with_joined(id: &str, secret: &str, form_encode: bool, f: impl FnOnce(&[u8])) {
    let mut buf = StackText {
        bytes: [0; 256],
        len: 0,
        fits: true,
    };
    join_parts(id, secret, form_encode, |s| buf.push(s));
    match buf.bytes.get(..buf.len) {
        Some(joined) if buf.fits => f(joined),
        _ => f(joined(id, secret, form_encode).as_bytes()),
    }
}

/// Text built on the stack, up to its size.
struct StackText {
    bytes: [u8; 256],
    len: usize,
    fits: bool,
}

impl StackText {
    fn push(&mut self, s: &str) {
        let end = self.len + s.len();
        match self.bytes.get_mut(self.len..end) {
            Some(room) if self.fits => {
                room.copy_from_slice(s.as_bytes());
                self.len = end;
            }
            _ => self.fits = false,
        }
    }
}

pub(crate) fn basic_credentials(id: &str, secret: &str, form_encode: bool) -> String {
    base64::engine::general_purpose::STANDARD.encode(joined(id, secret, form_encode).as_bytes())
}

fn joined(id: &str, secret: &str, form_encode: bool) -> String {
    // One buffer, no `format!`: this runs on every Basic-authenticated request.
    let mut joined = String::with_capacity(id.len() + secret.len() + 1);
    join_parts(id, secret, form_encode, |s| joined.push_str(s));
    joined
}

/// `id:secret`, each part form-urlencoded first when asked (RFC 6749 §2.3.1), handed to `push`
/// piece by piece.
fn join_parts(id: &str, secret: &str, form_encode: bool, mut push: impl FnMut(&str)) {
    if form_encode {
        form_urlencoded::byte_serialize(id.as_bytes()).for_each(&mut push);
        push(":");
        form_urlencoded::byte_serialize(secret.as_bytes()).for_each(&mut push);
    } else {
        push(id);
        push(":");
        push(secret);
    }
}

/// Classifies template text, once, when the spec is compiled: a literal, a bare variable, text
/// with references only, or a template for the engine.
pub(crate) fn classify(text: &str) -> Classified {
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return Classified::Literal;
    }
    match pieces(text) {
        Some(mut p) if p.len() == 1 && matches!(p[0], Piece::Var(_)) => match p.pop() {
            Some(Piece::Var(v)) => Classified::Var(v),
            _ => Classified::Jinja,
        },
        Some(p) => Classified::Parts(p),
        None => Classified::Jinja,
    }
}

pub(crate) enum Classified {
    Literal,
    Var(String),
    Parts(Vec<Piece>),
    Jinja,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_form_encode_before_base64() {
        // RFC 6749 §2.3.1: "a b" → "a+b", ":" → "%3A"
        let encoded = basic_credentials("a b", "x:y", true);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"a+b:x%3Ay");
        let raw = basic_credentials("a b", "x:y", false);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap();
        assert_eq!(decoded, b"a b:x:y");
    }

    #[test]
    fn basic_header_is_basic_and_the_credentials_on_the_stack_or_not() {
        let long = "s".repeat(300);
        let wide = "é:&".repeat(60);
        for (id, secret) in [
            ("app", "s3cret"),
            ("a b", "x:y"),
            ("", ""),
            ("app", long.as_str()),
            (wide.as_str(), "x"),
            (&long[..127], &long[..128]),
            (&long[..127], &long[..129]),
        ] {
            for form in [true, false] {
                assert_eq!(
                    basic_header(id, secret, form),
                    format!("Basic {}", basic_credentials(id, secret, form)),
                    "{id} {secret} {form}"
                );
            }
        }
    }

    #[test]
    fn interpolation_renders_what_minijinja_renders() {
        let mut env = environment();
        let inputs: IndexMap<String, String> = [
            ("host", "api.example.com"),
            ("region", "EU"),
            ("odd", "a {{ b }} & <c> {% x %}"),
            ("range", "shadowed"),
            ("empty", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let cases = [
            // Simple interpolation: the fast path.
            ("https://{{ host }}/oauth/token", true),
            ("https://{{host}}/{{ region }}/{{ host }}", true),
            ("{{\thost }}-{{ odd }}-{{ empty }}-", true),
            ("x }} y {{ region }} }}", true),
            ("{{ region }}}", true),
            // Everything else: minijinja.
            ("{{ host | upper }}", false),
            ("{{- host }}", false),
            ("{{ host -}} x", false),
            ("{% if region == 'EU' %}eu{% endif %}", false),
            ("a{# note #}{{ host }}", false),
            ("{{ host }}\n", false),
            ("line\n{{ host }}", false),
            ("{{ 'lit' }}", false),
            ("{{ none }}{{ true }}", false),
            ("{{ host.x }}", false),
            ("{{ range(2) }}", false),
            ("{{ range }}", false),
            ("{{ basic_auth(host, region) }}", false),
        ];
        for (i, (text, fast)) in cases.into_iter().enumerate() {
            let name = format!("t{i}");
            env.add_template_owned(name.clone(), text.to_owned())
                .unwrap();
            let compiled = env.get_template(&name).unwrap();
            let vars: Vec<String> = compiled
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| env.globals().all(|(g, _)| g != v))
                .collect();
            let expected = compiled
                .render(Value::from_pairs(vars.iter().filter_map(|v| {
                    inputs.get(v).map(|x| (v.as_str(), Value::from(x.as_str())))
                })))
                .map_err(|e| describe(&e));
            // The compiler's rule: references only, each to a variable (not an engine global).
            let fast_pieces = pieces(text).filter(|p| {
                p.iter().all(|x| match x {
                    Piece::Var(v) => vars.contains(v),
                    Piece::Text(_) => true,
                })
            });
            assert_eq!(fast_pieces.is_some(), fast, "{text:?}: fast path");
            if let Some(pieces) = fast_pieces {
                let parts = Tmpl::Parts {
                    pieces,
                    vars: vars.clone(),
                };
                assert_eq!(parts.render(&env, &inputs), expected, "{text:?}: pieces");
            }
            let tmpl = Tmpl::Jinja { name, vars };
            assert_eq!(tmpl.render(&env, &inputs), expected, "{text:?}");
        }
    }

    #[test]
    fn classify_recognises_bare_variables() {
        assert!(matches!(classify("plain"), Classified::Literal));
        assert!(matches!(classify("{{ code }}"), Classified::Var(v) if v == "code"));
        assert!(matches!(classify("{{code}}"), Classified::Var(v) if v == "code"));
        assert!(matches!(classify("x {{ code }}"), Classified::Parts(_)));
        assert!(matches!(classify("{{ a | upper }}"), Classified::Jinja));
    }

    #[test]
    fn hashes_macs_and_fresh_values() {
        let mut env = environment();
        let render = |env: &mut Environment<'static>, t: &str| {
            env.add_template_owned("t".to_owned(), t.to_owned())
                .unwrap();
            env.get_template("t").unwrap().render(()).unwrap()
        };
        // FIPS 180-2 test vector and RFC 4231 test case 2.
        assert_eq!(
            render(&mut env, "{{ 'abc' | sha256 }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            render(
                &mut env,
                "{{ 'what do ya want for nothing?' | hmac_sha256('Jefe') }}"
            ),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            render(&mut env, "{{ 'abc' | sha256('base64url') }}"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(render(&mut env, "{{ 'a?b' | b64urlencode }}"), "YT9i");
        let a = render(&mut env, "{{ uuid() }} {{ nonce(16) }}");
        let b = render(&mut env, "{{ uuid() }} {{ nonce(16) }}");
        assert_ne!(a, b, "fresh per render");
        assert_eq!(a.len(), 36 + 1 + 16);
        let fixed = with_fixed_clock(1_700_000_000, || {
            render(
                &mut env,
                "{{ now() }} {{ now_iso() }} {{ uuid() }} {{ nonce(8) }}",
            )
        });
        assert_eq!(
            fixed,
            "1700000000 2023-11-14T22:13:20Z 00000000-0000-4000-8000-000000000001 00000002"
        );
    }
}
