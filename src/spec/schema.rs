//! The JSON Schema of the spec format, for editors (`# yaml-language-server: $schema=…`) and
//! `specauth schema`.
//!
//! The document structs derive theirs; the values with hand-written deserializers (a short or a
//! long form, a position, a patch that may be `null`) say theirs here.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::doc::{
    At, ClientAuthDoc, ClientAuthMap, Entries, Field, Patch, Paths, ScalarString, SpecDoc,
};

impl<T: JsonSchema> JsonSchema for At<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// What `null` does, on every key that may be removed.
const NULL_REMOVES: &str = "null removes what the base spec says here";

impl<T: JsonSchema> JsonSchema for Patch<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Nullable_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        nullable(generator.subschema_for::<T>())
    }
}

/// A map of entries, or `null`: every entry of the base's map removed.
impl<T: JsonSchema> JsonSchema for Entries<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Entries_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        nullable(generator.subschema_for::<indexmap::IndexMap<String, Patch<T>>>())
    }
}

/// `inner`, or the `null` that removes the base's value, said so that a validator names the
/// real mistake: `null` joins a plain type (`"type": ["string", "null"]`, so a number where
/// a string belongs is "not of type 'string', 'null'"), and a reference or a choice sits under
/// `if: null / else:`, so a wrong value gets the errors of the schema it misses rather than
/// "not valid under any of the given schemas".
fn nullable(inner: Schema) -> Schema {
    let mut value = inner.to_value();
    let plain = value.get("$ref").is_none() && value.get("if").is_none();
    match value.get_mut("type") {
        Some(serde_json::Value::String(t)) if plain => {
            let t = std::mem::take(t);
            value["type"] = serde_json::json!([t, "null"]);
        }
        Some(serde_json::Value::Array(types)) if plain => {
            types.push("null".into());
        }
        _ => {
            return json_schema!({
                "if": { "type": "null" },
                "then": { "description": NULL_REMOVES },
                "else": value
            });
        }
    }
    if let Some(serde_json::Value::Array(values)) = value.get_mut("enum") {
        values.push(serde_json::Value::Null);
    }
    Schema::try_from(value).unwrap_or_default()
}

impl JsonSchema for ScalarString {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ScalarString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

impl JsonSchema for Paths {
    fn schema_name() -> Cow<'static, str> {
        "Paths".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where a value is in a reply: a JSONPath into the body (`$.access_token`), a header (`header:X-Auth-Token`), a Set-Cookie cookie (`cookie:session`) or a template over `body`, `headers` and `cookies` (`template:{{ (body.access_token | jwt_claims).exp }}`); or a list of them where the first that finds a value wins",
            "if": { "type": "array" },
            "then": { "items": { "type": "string", "pattern": VALUE_PATH } },
            "else": { "type": "string", "pattern": VALUE_PATH }
        })
    }
}

impl JsonSchema for Field {
    fn schema_name() -> Cow<'static, str> {
        "Field".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A template (`{{ code }}`), or { value, optional, repeat, type, in, raw } where an optional field is left out when an input it uses is absent, a repeated one is sent once per space-separated item, a typed one becomes a JSON number, boolean or value, one `in: query` goes in the URL whatever the body is, and a raw one is not percent-encoded",
            "if": { "type": "object" },
            "then": {
                "type": "object",
                "properties": {
                    "value": {
                        "description": "The template: literal text with `{{ input }}` placeholders",
                        "type": ["string", "number", "boolean"]
                    },
                    "optional": {
                        "description": "Leave the field out when an input the template uses is absent (default false)",
                        "type": "boolean"
                    },
                    "repeat": {
                        "description": "Send the field once per space-separated item of its value (e.g. one `resource` per URI, RFC 8707)",
                        "type": "boolean"
                    },
                    "type": {
                        "description": "What the rendered text becomes in a JSON body: `string` (default), `number`, `boolean`, or `json` (any JSON value: a list, an object)",
                        "enum": ["string", "number", "boolean", "json"]
                    },
                    "in": {
                        "description": "`query`: send the field in the URL's query string, whatever the body encoding (`body`, the default, follows the request's `body:`)",
                        "enum": ["body", "query"]
                    },
                    "raw": {
                        "description": "Send the value as rendered, not percent-encoded (form and query: `+`, `,` and `:` stay as they are; a value with `&`, `=`, `#`, `%`, spaces, controls or non-ASCII is refused)",
                        "type": "boolean"
                    }
                },
                "required": ["value"],
                "additionalProperties": false
            },
            "else": { "type": ["string", "number", "boolean"] }
        })
    }
}

impl JsonSchema for ClientAuthDoc {
    fn schema_name() -> Cow<'static, str> {
        "ClientAuth".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<ClientAuthMap>();
        json_schema!({
            "description": "How the client proves who it is: a method name, or a map with `method` and renamed keys",
            "if": { "type": "string" },
            "then": client_auth_method(),
            "else": map
        })
    }
}

/// A JSONPath starts at the root.
const JSONPATH: &str = "^\\$([.\\[]|$)";

/// Where a value is: a JSONPath, or a header, cookie or template.
const VALUE_PATH: &str = "^(\\$([.\\[]|$)|header:|cookie:|template:)";

/// The names `client_auth` (and `client_auth.method`) take.
const CLIENT_AUTH_METHODS: [&str; 9] = [
    "basic",
    "post",
    "both",
    "none",
    "auto",
    "private_key_jwt",
    "client_secret_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
];

/// A client auth method's name, or a template over an input that names one.
fn client_auth_method() -> serde_json::Value {
    // A template is told apart first, so a misspelt name is reported as "not one of" them.
    serde_json::json!({
        "if": { "type": "string", "pattern": "\\{\\{" },
        "then": {
            "description": "A template over an input that names the method (`\"{{ auth_method }}\"`), for a provider that accepts several"
        },
        "else": { "enum": CLIENT_AUTH_METHODS }
    })
}

/// HTTP methods a request may use (the loader reads any case; the schema offers two).
const HTTP_METHODS: [&str; 10] = [
    "POST", "GET", "PUT", "PATCH", "DELETE", "post", "get", "put", "patch", "delete",
];

/// A header name: an RFC 9110 token.
const HEADER_NAME: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// An endpoint: `https://`, `http://` to a loopback host, or a template that renders one; no
/// user name or password before the host.
const ENDPOINT_URL: &str =
    "^(https://|http://(localhost|127\\.[0-9.]+|\\[::1\\])([:/?#]|$)|\\{[{%])[^@]*$";

/// The JSON Schema (draft 7) of the spec format, generated from the types the loader reads,
/// then narrowed where the loader's rules are closed sets or patterns a schema can state.
pub(crate) fn schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<SpecDoc>();
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    narrow(&mut value);
    value
}

/// The loader's closed sets, patterns and exclusive keys, written into the generated schema.
fn narrow(root: &mut serde_json::Value) {
    use serde_json::json;
    // The field's doc comment speaks to the merge; an editor's hover speaks to the author.
    if let Some(examples) = property(root, None, "examples") {
        examples["description"] = "The provider's documented exchanges (inputs, its reply, the \
            expected request and outcome): `specauth test` replays them offline. Not inherited \
            from the base spec."
            .into();
    }
    restrict(root, None, "id", json!({ "pattern": "^[a-z0-9_-]+$" }));
    restrict(
        root,
        None,
        "categories",
        json!({ "items": { "enum": super::CATEGORIES } }),
    );
    restrict_values(root, None, "endpoints", json!({ "pattern": ENDPOINT_URL }));
    if let Some(requests) = property(root, None, "requests") {
        requests["propertyNames"] =
            json!({ "enum": ["device_authorization", "revoke", "introspect", "par"] });
    }
    restrict(root, Some("ClientAuthMap"), "method", client_auth_method());
    restrict(
        root,
        Some("ClientAuthMap"),
        "basic_encoding",
        json!({ "enum": ["form", "raw"] }),
    );
    restrict(
        root,
        Some("ClientAuthMap"),
        "alg",
        json!({ "enum": [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
            "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"
        ] }),
    );
    restrict(
        root,
        Some("RequestDoc"),
        "method",
        json!({ "enum": HTTP_METHODS }),
    );
    restrict(
        root,
        Some("RequestDoc"),
        "body",
        // A template over inputs (`{{ format }}`, `{% if … %}`) renders one of the encodings at
        // run time.
        json!({
            "if": { "pattern": "\\{[{%]" },
            "else": { "enum": ["form", "json", "xml", "query", "none"] }
        }),
    );
    if let Some(headers) = property(root, Some("RequestDoc"), "headers") {
        headers["propertyNames"] = json!({ "pattern": HEADER_NAME });
    }
    restrict(
        root,
        Some("TokenDoc"),
        "expires_in_unit",
        json!({ "enum": ["seconds", "s", "milliseconds", "ms"] }),
    );
    restrict(
        root,
        Some("TokenDoc"),
        "scope_separator",
        json!({ "minLength": 1 }),
    );
    restrict(
        root,
        Some("ReplyDoc"),
        "status",
        json!({ "minimum": 100, "maximum": 599 }),
    );
    if let Some(headers) = property(root, Some("ReplyDoc"), "headers") {
        headers["propertyNames"] = json!({ "pattern": HEADER_NAME });
    }
    restrict(
        root,
        Some("RequestExpect"),
        "method",
        json!({ "enum": HTTP_METHODS }),
    );
    restrict(
        root,
        Some("ExampleDoc"),
        "request",
        json!({ "enum": ["authorize", "device_authorization", "revoke", "introspect", "par"] }),
    );
    restrict(
        root,
        Some("Condition"),
        "path",
        json!({ "pattern": JSONPATH }),
    );
    // Exclusive keys: an example names a grant or another request; a reply has a JSON body or
    // a raw one; a condition makes exactly one test.
    if let Some(example) = definition(root, "ExampleDoc") {
        example["oneOf"] = json!([
            { "required": ["grant"], "not": { "required": ["request"] } },
            { "required": ["request"], "not": { "required": ["grant"] } }
        ]);
    }
    if let Some(reply) = definition(root, "ReplyDoc") {
        reply["not"] = json!({ "required": ["json", "body"] });
    }
    if let Some(condition) = definition(root, "Condition") {
        let tests = ["equals", "not_equals", "one_of", "exists", "matches"];
        condition["oneOf"] = tests.iter().map(|t| json!({ "required": [t] })).collect();
    }
}

fn definition<'a>(
    root: &'a mut serde_json::Value,
    name: &str,
) -> Option<&'a mut serde_json::Value> {
    root.get_mut("definitions")?.get_mut(name)
}

/// A property of the root (`def` none) or of a definition.
fn property<'a>(
    root: &'a mut serde_json::Value,
    def: Option<&str>,
    name: &str,
) -> Option<&'a mut serde_json::Value> {
    let owner = match def {
        Some(d) => definition(root, d)?,
        None => root,
    };
    owner.get_mut("properties")?.get_mut(name)
}

/// Adds `extra` to the schema a property's non-null value must meet.
fn restrict(root: &mut serde_json::Value, def: Option<&str>, name: &str, extra: serde_json::Value) {
    if let Some(p) = property(root, def, name) {
        add(p, extra);
    }
}

/// [`restrict`] for the values of a map property.
fn restrict_values(
    root: &mut serde_json::Value,
    def: Option<&str>,
    name: &str,
    extra: serde_json::Value,
) {
    if let Some(values) = property(root, def, name).and_then(|p| p.get_mut("additionalProperties"))
    {
        add(values, extra);
    }
}

/// Merges `extra` into `schema` (into its `else` branch when `null` is split off, keeping
/// `null` in a nullable enum).
fn add(schema: &mut serde_json::Value, extra: serde_json::Value) {
    let nullable = schema
        .get("type")
        .and_then(|t| t.as_array())
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    let target = if schema.get("else").is_some() {
        &mut schema["else"]
    } else {
        schema
    };
    let serde_json::Value::Object(extra) = extra else {
        return;
    };
    for (key, mut value) in extra {
        if key == "enum"
            && nullable
            && let serde_json::Value::Array(values) = &mut value
        {
            values.push(serde_json::Value::Null);
        }
        if key == "items"
            && let Some(items) = target.get_mut("items")
        {
            add(items, value);
            continue;
        }
        target[key] = value;
    }
}
