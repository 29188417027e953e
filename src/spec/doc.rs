//! The YAML document layer: what one spec file says, before `extends:` merging and compilation.
//!
//! Every value that can be wrong in a way serde cannot see (a template, a JSONPath, a URL, a name
//! that must refer to something) is an [`At`], so the compiler can point at `file:line:col`.
//! Struct fields are [`Patch`]es so a child spec can leave a key alone (absent), remove it
//! (`null`) or replace / deep-merge it.

use std::cell::RefCell;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Pos;

thread_local! {
    /// The file being deserialized. `At<T>` values pick it up so positions survive merging
    /// values from several files. Set only for the duration of one `from_str` call.
    static CURRENT_FILE: RefCell<Arc<str>> = RefCell::new(Arc::from(""));
}

/// Runs `f` with `file` as the file that deserialized [`At`] values belong to.
pub(crate) fn with_file<R>(file: &Arc<str>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT_FILE.with(|c| c.replace(file.clone()));
    let out = f();
    CURRENT_FILE.with(|c| *c.borrow_mut() = previous);
    out
}

/// A value with the place it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> At<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        At { value, pos }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let file = CURRENT_FILE.with(|c| c.borrow().clone());
        Ok(At {
            value: spanned.value,
            pos: Pos {
                file,
                line: spanned.referenced.line(),
                column: spanned.referenced.column(),
            },
        })
    }
}

/// A key of a child spec: absent (inherit), `null` (remove), or set (replace or deep-merge).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<T> Patch<T> {
    pub fn as_ref(&self) -> Option<&T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Set(v),
            None => Patch::Null,
        })
    }
}

/// Deep merge of a child layer over a base layer.
pub trait Merge {
    fn merge(&mut self, over: Self);
}

impl<T: Merge> Merge for Patch<T> {
    fn merge(&mut self, over: Self) {
        match over {
            Patch::Absent => {}
            Patch::Null => *self = Patch::Null,
            Patch::Set(v) => match self {
                Patch::Set(mine) => mine.merge(v),
                _ => *self = Patch::Set(v),
            },
        }
    }
}

impl<T: Merge> Merge for IndexMap<String, Patch<T>> {
    fn merge(&mut self, over: Self) {
        for (key, value) in over {
            match value {
                Patch::Null => {
                    self.shift_remove(&key);
                }
                value => self.entry(key).or_insert(Patch::Absent).merge(value),
            }
        }
    }
}

/// Values that a child replaces whole instead of merging.
macro_rules! replace_on_merge {
    ($($t:ty),*) => {$(
        impl Merge for $t {
            fn merge(&mut self, over: Self) { *self = over; }
        }
    )*};
}
replace_on_merge!(
    At<String>,
    At<u64>,
    At<bool>,
    String,
    bool,
    Paths,
    Field,
    Vec<At<String>>,
    Vec<Condition>
);

/// Implements `Merge` field by field for a struct whose fields are all `Patch`es or maps.
macro_rules! merge_fields {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl Merge for $t {
            fn merge(&mut self, over: Self) {
                $( self.$f.merge(over.$f); )*
            }
        }
    };
}

/// One spec file as written.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "specauth provider spec")]
pub struct SpecDoc {
    /// Identifier; defaults to the file stem.
    #[serde(default)]
    pub id: Patch<At<String>>,
    #[serde(default)]
    pub name: Patch<At<String>>,
    /// The spec this one builds on.
    #[serde(default)]
    pub extends: Patch<At<String>>,
    /// Where the provider documents its token endpoint.
    #[serde(default)]
    pub docs: Patch<At<String>>,
    #[serde(default)]
    pub description: Patch<String>,
    #[serde(default)]
    pub endpoints: IndexMap<String, Patch<At<String>>>,
    #[serde(default)]
    pub client_auth: Patch<ClientAuthDoc>,
    #[serde(default)]
    pub inputs: IndexMap<String, Patch<InputDoc>>,
    /// Defaults shared by every grant's request.
    #[serde(default)]
    pub request: Patch<RequestDoc>,
    /// Each grant keeps where it is written, for errors about the grant as a whole.
    #[serde(default)]
    pub grants: IndexMap<String, Patch<At<RequestDoc>>>,
    /// The authorization request a browser is sent to (RFC 6749 §4.1.1).
    #[serde(default)]
    pub authorize: Patch<AuthorizeDoc>,
    /// Requests that are not grants: `device_authorization` (RFC 8628), `revoke` (RFC 7009),
    /// `introspect` (RFC 7662). Each is available when its endpoint is declared.
    #[serde(default)]
    pub requests: IndexMap<String, Patch<At<RequestDoc>>>,
    /// Where the device authorization reply's values are.
    #[serde(default)]
    pub device: Patch<DeviceDoc>,
    /// Where the introspection reply's values are.
    #[serde(default)]
    pub introspection: Patch<IntrospectionDoc>,
    #[serde(default)]
    pub token: Patch<TokenDoc>,
    #[serde(default)]
    pub errors: Patch<ErrorsDoc>,
    /// Not inherited: examples belong to the file that states them.
    #[serde(default)]
    pub examples: Vec<At<ExampleDoc>>,
}

impl Merge for SpecDoc {
    fn merge(&mut self, over: Self) {
        // Identity is the file's own: a child without `id:` is named after its file, not its
        // base. `extends` is consumed by the loader.
        self.id = over.id;
        self.name = over.name;
        self.extends = over.extends;
        self.docs = over.docs;
        self.description = over.description;
        self.endpoints.merge(over.endpoints);
        self.client_auth.merge(over.client_auth);
        self.inputs.merge(over.inputs);
        self.request.merge(over.request);
        self.grants.merge(over.grants);
        self.authorize.merge(over.authorize);
        self.requests.merge(over.requests);
        self.device.merge(over.device);
        self.introspection.merge(over.introspection);
        self.token.merge(over.token);
        self.errors.merge(over.errors);
        self.examples = over.examples;
    }
}

/// A declared input.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputDoc {
    #[serde(default)]
    pub required: Patch<bool>,
    #[serde(default)]
    pub secret: Patch<bool>,
    #[serde(default, rename = "enum")]
    pub allowed: Patch<Vec<At<String>>>,
    #[serde(default)]
    pub default: Patch<At<String>>,
    #[serde(default)]
    pub description: Patch<String>,
    /// Inserted into endpoint URLs as given, not percent-encoded: for inputs that are URLs or
    /// `host[:port][/path]` themselves. The rendered URL must still keep the template's
    /// literal host part.
    #[serde(default)]
    pub verbatim: Patch<bool>,
}
merge_fields!(InputDoc {
    required,
    secret,
    allowed,
    default,
    description,
    verbatim
});

/// How the client authenticates: `basic`, `post`, `both` or `none`, or a map with renamed keys.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthMap {
    #[serde(default)]
    pub method: Patch<At<String>>,
    /// Body key for the client id (`client_id` unless renamed).
    #[serde(default)]
    pub id_field: Patch<At<String>>,
    /// Body key for the client secret (`client_secret` unless renamed).
    #[serde(default)]
    pub secret_field: Patch<At<String>>,
    /// `form` (RFC 6749 §2.3.1: form-urlencode id and secret before base64) or `raw`.
    #[serde(default)]
    pub basic_encoding: Patch<At<String>>,
}
merge_fields!(ClientAuthMap {
    method,
    id_field,
    secret_field,
    basic_encoding
});

/// `client_auth:` is either a method name or a [`ClientAuthMap`].
#[derive(Clone, Debug, Default)]
pub struct ClientAuthDoc(pub ClientAuthMap);

impl Merge for ClientAuthDoc {
    fn merge(&mut self, over: Self) {
        self.0.merge(over.0)
    }
}

impl<'de> Deserialize<'de> for ClientAuthDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Repr {
            Method(String),
            Map(ClientAuthMap),
        }
        impl<'de> Deserialize<'de> for Repr {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Repr;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(
                            "a client auth method (basic, post, both, none) or a map with `method`",
                        )
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(Repr::Method(v.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                        ClientAuthMap::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map(Repr::Map)
                    }
                }
                d.deserialize_any(V)
            }
        }
        let at = At::<Repr>::deserialize(d)?;
        Ok(ClientAuthDoc(match at.value {
            Repr::Method(m) => ClientAuthMap {
                method: Patch::Set(At::new(m, at.pos)),
                ..Default::default()
            },
            Repr::Map(m) => m,
        }))
    }
}

/// A request template: defaults under `request:`, or one grant under `grants:`.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestDoc {
    /// `POST` (default) or `GET`.
    #[serde(default)]
    pub method: Patch<At<String>>,
    /// Name of the endpoint under `endpoints:` (default `token`).
    #[serde(default)]
    pub endpoint: Patch<At<String>>,
    /// Body encoding: `form`, `json`, `xml`, `query` or `none`; may be a template over inputs.
    #[serde(default)]
    pub body: Patch<At<String>>,
    /// Root element of an XML body.
    #[serde(default)]
    pub xml_root: Patch<At<String>>,
    #[serde(default)]
    pub client_auth: Patch<ClientAuthDoc>,
    #[serde(default)]
    pub headers: IndexMap<String, Patch<Field>>,
    #[serde(default)]
    pub fields: IndexMap<String, Patch<Field>>,
}
merge_fields!(RequestDoc {
    method,
    endpoint,
    body,
    xml_root,
    client_auth,
    headers,
    fields
});

/// A grant merged over its base keeps the place of the layer that last wrote it.
impl Merge for At<RequestDoc> {
    fn merge(&mut self, over: Self) {
        self.value.merge(over.value);
        self.pos = over.pos;
    }
}

/// The authorization request: its endpoint and query parameters.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeDoc {
    /// Name of the endpoint under `endpoints:` (default `authorize`).
    #[serde(default)]
    pub endpoint: Patch<At<String>>,
    #[serde(default)]
    pub params: IndexMap<String, Patch<Field>>,
}
merge_fields!(AuthorizeDoc { endpoint, params });

/// Paths into a device authorization reply (RFC 8628 §3.2).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceDoc {
    #[serde(default)]
    pub device_code: Patch<Paths>,
    #[serde(default)]
    pub user_code: Patch<Paths>,
    #[serde(default)]
    pub verification_uri: Patch<Paths>,
    #[serde(default)]
    pub verification_uri_complete: Patch<Paths>,
    #[serde(default)]
    pub expires_in: Patch<Paths>,
    #[serde(default)]
    pub interval: Patch<Paths>,
}
merge_fields!(DeviceDoc {
    device_code,
    user_code,
    verification_uri,
    verification_uri_complete,
    expires_in,
    interval,
});

/// Paths into an introspection reply (RFC 7662 §2.2).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionDoc {
    #[serde(default)]
    pub active: Patch<Paths>,
}
merge_fields!(IntrospectionDoc { active });

/// A header or body field: a template, or `{ value: template, optional: true }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub value: At<String>,
    pub optional: bool,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FieldMap {
            value: At<ScalarString>,
            #[serde(default)]
            optional: bool,
        }
        enum FieldRepr {
            Template(String),
            Map(FieldMap),
        }
        impl<'de> Deserialize<'de> for FieldRepr {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = FieldRepr;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a template string or a map with `value` and `optional`")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(FieldRepr::Template(v.to_owned()))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                        Ok(FieldRepr::Template(v.to_string()))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                        Ok(FieldRepr::Template(v.to_string()))
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                        Ok(FieldRepr::Template(v.to_string()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                        FieldMap::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map(FieldRepr::Map)
                    }
                }
                d.deserialize_any(V)
            }
        }

        let value = At::<FieldRepr>::deserialize(d)?;
        Ok(match value.value {
            FieldRepr::Template(s) => Field {
                value: At::new(s, value.pos),
                optional: false,
            },
            FieldRepr::Map(m) => {
                let FieldMap { value, optional } = m;
                Field {
                    value: At::new(value.value.0, value.pos),
                    optional,
                }
            }
        })
    }
}

/// A string written as any YAML scalar (`123456`, `true` and `"abc"` all become strings).
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ScalarString(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One JSONPath or a list of them; the first that matches wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Paths(pub Vec<At<String>>);

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Repr {
            One(String),
            Many(Vec<At<String>>),
        }
        impl<'de> Deserialize<'de> for Repr {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Repr;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a JSONPath string or a list of JSONPath strings")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(Repr::One(v.to_owned()))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Repr, A::Error> {
                        let mut out = Vec::new();
                        while let Some(p) = seq.next_element::<At<String>>()? {
                            out.push(p);
                        }
                        Ok(Repr::Many(out))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let at = At::<Repr>::deserialize(d)?;
        Ok(Paths(match at.value {
            Repr::One(s) => vec![At::new(s, at.pos)],
            Repr::Many(v) => v,
        }))
    }
}

/// How a reply becomes a token: where each value is, and how to read it.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenDoc {
    #[serde(default)]
    pub access_token: Patch<Paths>,
    #[serde(default)]
    pub token_type: Patch<Paths>,
    /// Used when the reply has no token type.
    #[serde(default)]
    pub default_token_type: Patch<At<String>>,
    #[serde(default)]
    pub expires_in: Patch<Paths>,
    /// `seconds` (default) or `milliseconds`.
    #[serde(default)]
    pub expires_in_unit: Patch<At<String>>,
    /// Absolute expiry: epoch seconds, epoch milliseconds or an ISO 8601 / RFC 3339 date.
    #[serde(default)]
    pub expires_at: Patch<Paths>,
    /// When the provider issued the token (epoch seconds or milliseconds, or an ISO date): a
    /// relative `expires_in` counts from here instead of from the local clock.
    #[serde(default)]
    pub issued_at: Patch<Paths>,
    /// Lifetime in seconds assumed when the reply states none.
    #[serde(default)]
    pub default_expires_in: Patch<At<u64>>,
    #[serde(default)]
    pub refresh_token: Patch<Paths>,
    #[serde(default)]
    pub refresh_token_expires_in: Patch<Paths>,
    #[serde(default)]
    pub scope: Patch<Paths>,
    /// Characters that separate scopes in a string (default: a space; `" ,+"` accepts any of them).
    #[serde(default)]
    pub scope_separator: Patch<At<String>>,
    #[serde(default)]
    pub id_token: Patch<Paths>,
    /// Provider-specific values kept under `extra`.
    #[serde(default)]
    pub extras: IndexMap<String, Patch<Paths>>,
    /// Further token sets in the same reply (a user token beside a bot token), by name.
    #[serde(default)]
    pub also: IndexMap<String, Patch<TokenDoc>>,
    /// Names under `extras` whose values are secrets (webhook tokens…): redacted like tokens.
    #[serde(default)]
    pub secret_extras: Patch<Vec<At<String>>>,
}
merge_fields!(TokenDoc {
    access_token,
    token_type,
    default_token_type,
    expires_in,
    expires_in_unit,
    expires_at,
    issued_at,
    default_expires_in,
    refresh_token,
    refresh_token_expires_in,
    scope,
    scope_separator,
    id_token,
    extras,
    also,
    secret_extras,
});

/// How a reply is recognised as an error, and where its parts are.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorsDoc {
    /// Conditions that make even a 2xx reply an error; any one is enough.
    #[serde(default)]
    pub when: Patch<Vec<Condition>>,
    #[serde(default)]
    pub code: Patch<Paths>,
    #[serde(default)]
    pub message: Patch<Paths>,
    #[serde(default)]
    pub hint: Patch<Paths>,
    #[serde(default)]
    pub uri: Patch<Paths>,
}
merge_fields!(ErrorsDoc {
    when,
    code,
    message,
    hint,
    uri
});

/// `{ path: $.ok, equals: false }` or `{ path: $.error, exists: true }`.
#[derive(Clone, Debug, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub path: At<String>,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default)]
    pub exists: Option<bool>,
}

/// A documented exchange: inputs, the provider's reply, and what is expected of both.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExampleDoc {
    #[serde(default)]
    pub name: Option<String>,
    /// The grant the example performs…
    #[serde(default)]
    pub grant: Option<At<String>>,
    /// …or the other request it makes: `authorize` (the URL; no reply), `device_authorization`,
    /// `revoke` or `introspect`.
    #[serde(default)]
    pub request: Option<At<String>>,
    #[serde(default)]
    pub inputs: IndexMap<String, At<ScalarString>>,
    /// The clock, in epoch seconds, used to normalise the reply (default 1700000000).
    #[serde(default)]
    pub now: Option<u64>,
    /// The provider's reply (every example but `request: authorize` has one).
    #[serde(default)]
    pub reply: Option<ReplyDoc>,
    #[serde(default)]
    pub expect: ExpectDoc,
}

/// The provider's reply in an example.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyDoc {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// A JSON body (sent with `Content-Type: application/json` unless headers say otherwise).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A raw body (XML, form-encoded, HTML…).
    #[serde(default)]
    pub body: Option<String>,
}

fn ok_status() -> u16 {
    200
}

/// What an example expects.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectDoc {
    #[serde(default)]
    pub request: Option<RequestExpect>,
    /// The normalised token, as the CLI prints it (listed keys are compared exactly).
    #[serde(default)]
    pub token: Option<serde_json::Value>,
    /// The normalised provider error (listed keys are compared exactly).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// The normalised device authorization (listed keys are compared exactly).
    #[serde(default)]
    pub device: Option<serde_json::Value>,
    /// The introspection reply (listed keys are compared exactly).
    #[serde(default)]
    pub introspection: Option<serde_json::Value>,
    /// `true`: the revocation succeeds.
    #[serde(default)]
    pub revoked: Option<bool>,
}

/// The parts of the rendered request an example pins down.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestExpect {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Headers that must be present with exactly these values (others may be present too).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Headers that must be absent.
    #[serde(default)]
    pub absent_headers: Vec<String>,
    /// The form body, exactly (every field, in any order).
    #[serde(default)]
    pub form: Option<IndexMap<String, String>>,
    /// The query string of the URL, exactly.
    #[serde(default)]
    pub query: Option<IndexMap<String, String>>,
    /// The JSON body, exactly.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// The raw body, exactly (for XML bodies).
    #[serde(default)]
    pub body: Option<String>,
}

// ---- JSON Schema for the hand-written deserializers ----

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

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

impl<T: JsonSchema> JsonSchema for Patch<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Nullable_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let inner = generator.subschema_for::<T>();
        json_schema!({ "anyOf": [inner, { "type": "null", "description": "null removes what the base spec says here" }] })
    }
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
            "description": "A JSONPath, or a list of them where the first that matches wins",
            "anyOf": [
                { "type": "string", "pattern": "^\\$" },
                { "type": "array", "items": { "type": "string", "pattern": "^\\$" } }
            ]
        })
    }
}

impl JsonSchema for Field {
    fn schema_name() -> Cow<'static, str> {
        "Field".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A template, or { value, optional } where an optional field is left out when an input it uses is absent",
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                {
                    "type": "object",
                    "properties": {
                        "value": { "type": ["string", "number", "boolean"] },
                        "optional": { "type": "boolean" }
                    },
                    "required": ["value"],
                    "additionalProperties": false
                }
            ]
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
            "anyOf": [
                { "type": "string", "enum": ["basic", "post", "both", "none"] },
                map
            ]
        })
    }
}

/// The JSON Schema of the spec format, for editors (`# yaml-language-server: $schema=…`).
pub(crate) fn schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<SpecDoc>();
    serde_json::to_value(schema).unwrap_or_default()
}
