//! Templated strings in specs: minijinja, compiled once per spec, strict about undefined
//! variables, no auto-escaping, fuel-bounded.
//!
//! Plain strings and bare `{{ name }}` references never reach the template engine: they are the
//! common case and are resolved directly, which keeps rendering cheap. So do texts whose only
//! syntax is `{{ name }}` references (`https://{{ host }}/token`), at render time.

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
    /// Anything else: a template registered in the spec's environment under this name.
    Jinja { name: String, vars: Vec<String> },
}

impl Tmpl {
    /// Inputs this template refers to.
    pub(crate) fn vars(&self) -> &[String] {
        match self {
            Tmpl::Literal(_) => &[],
            Tmpl::Var(v) => std::slice::from_ref(v),
            Tmpl::Jinja { vars, .. } => vars,
        }
    }

    /// Renders with the given inputs. Every referenced input must be present (checked by the
    /// caller, so this only fails on a template runtime error).
    pub(crate) fn render(
        &self,
        env: &Environment<'static>,
        inputs: &IndexMap<String, String>,
    ) -> Result<String, String> {
        match self {
            Tmpl::Literal(s) => Ok(s.clone()),
            Tmpl::Var(v) => inputs
                .get(v)
                .cloned()
                .ok_or_else(|| format!("input `{v}` is not set")),
            Tmpl::Jinja { name, vars } => {
                let template = env.get_template(name).map_err(|e| e.to_string())?;
                if let Some(out) = interpolate(template.source(), vars, inputs) {
                    return Ok(out);
                }
                let ctx =
                    Value::from_pairs(vars.iter().filter_map(|v| {
                        inputs.get(v).map(|x| (v.as_str(), Value::from(x.as_str())))
                    }));
                template.render(ctx).map_err(|e| describe(&e))
            }
        }
    }
}

/// Renders text whose only template syntax is `{{ name }}` references to the template's inputs
/// (`https://{{ host }}/token`): what minijinja would render, without running it. `None` for
/// anything else (statements, comments, filters, expressions, whitespace control, line breaks,
/// constants such as `none`, names that are not the template's inputs, missing values), which
/// then goes to minijinja.
fn interpolate(source: &str, vars: &[String], inputs: &IndexMap<String, String>) -> Option<String> {
    let bytes = source.as_bytes();
    // Allocated at the first reference, so texts that go to minijinja cost no allocation here.
    let mut out = String::new();
    let (mut i, mut literal_from) = (0, 0);
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\n' | b'\r', _) | (b'{', Some(b'%' | b'#')) => return None,
            (b'{', Some(b'{')) => {
                let inner = i + 2;
                let close = inner + bytes[inner..].windows(2).position(|w| w == b"}}")?;
                let name = source[inner..close].trim_matches([' ', '\t']);
                let mut chars = name.chars();
                let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
                // Constants are literals to minijinja, not variables.
                let constant =
                    matches!(name, "true" | "false" | "none" | "True" | "False" | "None");
                if !ident || constant || !vars.iter().any(|v| v == name) {
                    return None;
                }
                let value = inputs.get(name)?;
                if out.capacity() == 0 {
                    out.reserve(source.len() + value.len());
                }
                out.push_str(&source[literal_from..i]);
                out.push_str(value);
                i = close + 2;
                literal_from = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&source[literal_from..]);
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
    env
}

/// `base64(id ":" secret)`, with id and secret form-urlencoded first when `form_encode` is set
/// (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(id: &str, secret: &str, form_encode: bool) -> String {
    // One buffer, no `format!`: this runs on every Basic-authenticated request.
    let mut joined = String::with_capacity(id.len() + secret.len() + 1);
    if form_encode {
        form_urlencoded::byte_serialize(id.as_bytes()).for_each(|s| joined.push_str(s));
        joined.push(':');
        form_urlencoded::byte_serialize(secret.as_bytes()).for_each(|s| joined.push_str(s));
    } else {
        joined.push_str(id);
        joined.push(':');
        joined.push_str(secret);
    }
    base64::engine::general_purpose::STANDARD.encode(joined.as_bytes())
}

/// Classifies template text: a literal, a bare variable, or a full template.
pub(crate) fn classify(text: &str) -> Classified<'_> {
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return Classified::Literal;
    }
    if let Some(inner) = text
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim)
    {
        let mut chars = inner.chars();
        let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ident {
            return Classified::Var(inner);
        }
    }
    Classified::Jinja
}

pub(crate) enum Classified<'a> {
    Literal,
    Var(&'a str),
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
            assert_eq!(
                interpolate(text, &vars, &inputs).is_some(),
                fast,
                "{text:?}: fast path"
            );
            let tmpl = Tmpl::Jinja { name, vars };
            assert_eq!(tmpl.render(&env, &inputs), expected, "{text:?}");
        }
    }

    #[test]
    fn classify_recognises_bare_variables() {
        assert!(matches!(classify("plain"), Classified::Literal));
        assert!(matches!(classify("{{ code }}"), Classified::Var("code")));
        assert!(matches!(classify("{{code}}"), Classified::Var("code")));
        assert!(matches!(classify("x {{ code }}"), Classified::Jinja));
        assert!(matches!(classify("{{ a | upper }}"), Classified::Jinja));
    }
}
