//! What the interpreter returns: the normalised token, and the outcomes of the other requests,
//! with their serialised forms in one place.

use serde_json::{Map, Value, json};

use crate::secret::{REDACTED, Secret};

/// A token reply, normalised: the same shape whatever the provider's reply looked like.
///
/// Secret parts are [`Secret`]s, and extras named in `secret_extras` are redacted, so `Debug`
/// never shows them.
#[derive(Clone, PartialEq)]
pub struct Token {
    /// The access token.
    pub access_token: Secret,
    /// `Bearer` (normalised from `bearer`, `BEARER`, …) or the provider's own type.
    pub token_type: String,
    /// Lifetime in seconds, as stated by the reply (or derived from `expires_at`).
    pub expires_in: Option<u64>,
    /// Absolute expiry, epoch seconds.
    pub expires_at: Option<u64>,
    /// The refresh token: from the reply, or the one the request used when a refresh reply
    /// carries none.
    pub refresh_token: Option<Secret>,
    /// Lifetime of the refresh token in seconds, when the provider says.
    pub refresh_token_expires_in: Option<u64>,
    /// Granted scopes.
    pub scope: Option<Vec<String>>,
    /// OpenID Connect ID token.
    pub id_token: Option<Secret>,
    /// Provider-specific values the spec maps under `token.extras`.
    pub extra: Map<String, Value>,
    /// Further token sets from the same reply, by the name the spec gives them under
    /// `token.also` (a user token beside a bot token).
    pub also: std::collections::BTreeMap<String, Token>,
    /// Names in `extra` whose values are secrets (the spec's `token.secret_extras`): shown as
    /// `[redacted]` by `Debug` and by `to_json(false)`.
    pub secret_extras: Vec<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_token_expires_in", &self.refresh_token_expires_in)
            .field("scope", &self.scope)
            .field("id_token", &self.id_token)
            .field("extra", &self.extra_json(false))
            .field("also", &self.also)
            .finish()
    }
}

impl Token {
    /// `extra`, with secret extras redacted unless `reveal`.
    fn extra_json(&self, reveal: bool) -> Map<String, Value> {
        self.extra
            .iter()
            .map(|(k, v)| {
                let hidden = !reveal && self.secret_extras.contains(k);
                (
                    k.clone(),
                    if hidden {
                        Value::String(REDACTED.to_owned())
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    }

    /// Whether the token expires within `skew` seconds of `now` (epoch seconds). A token with
    /// no known expiry is never considered expired.
    ///
    /// ```
    /// # use specauth::{Secret, Token};
    /// let t = Token { expires_at: Some(1000), ..Token::bearer(Secret::new("x")) };
    /// assert!(!t.expires_within(900, 60));
    /// assert!(t.expires_within(950, 60));
    /// ```
    pub fn expires_within(&self, now: u64, skew: u64) -> bool {
        self.expires_at
            .is_some_and(|at| at <= now.saturating_add(skew))
    }

    /// A bearer token with nothing else known.
    pub fn bearer(access_token: Secret) -> Token {
        Token {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: None,
            expires_at: None,
            refresh_token: None,
            refresh_token_expires_in: None,
            scope: None,
            id_token: None,
            extra: Map::new(),
            also: Default::default(),
            secret_extras: Vec::new(),
        }
    }

    /// Whether the reply carried an access token: always, unless the spec says a reply may
    /// come without one (`token.access_token_optional`), in which case it is empty.
    pub fn has_access_token(&self) -> bool {
        !self.access_token.secret().is_empty()
    }

    /// The token as one JSON object, keys as the CLI prints them (`access_token`, `token_type`,
    /// and when known `expires_in`, `expires_at`, `refresh_token`, `refresh_token_expires_in`,
    /// `scope`, `id_token`, `extra`, `also`). Secret values are `[redacted]` unless `reveal` is set.
    /// `access_token` is `null` when the reply carried none.
    pub fn to_json(&self, reveal: bool) -> Value {
        let show = |s: &Secret| -> Value {
            if reveal {
                Value::String(s.secret().to_owned())
            } else {
                Value::String(REDACTED.to_owned())
            }
        };
        let mut m = Map::new();
        // A reply the spec allows to carry no access token (`access_token_optional`).
        let access = if self.has_access_token() {
            show(&self.access_token)
        } else {
            Value::Null
        };
        m.insert("access_token".into(), access);
        m.insert("token_type".into(), Value::String(self.token_type.clone()));
        if let Some(v) = self.expires_in {
            m.insert("expires_in".into(), json!(v));
        }
        if let Some(v) = self.expires_at {
            m.insert("expires_at".into(), json!(v));
        }
        if let Some(v) = &self.refresh_token {
            m.insert("refresh_token".into(), show(v));
        }
        if let Some(v) = self.refresh_token_expires_in {
            m.insert("refresh_token_expires_in".into(), json!(v));
        }
        if let Some(v) = &self.scope {
            m.insert("scope".into(), json!(v));
        }
        if let Some(v) = &self.id_token {
            m.insert("id_token".into(), show(v));
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), Value::Object(self.extra_json(reveal)));
        }
        if !self.also.is_empty() {
            let also = self
                .also
                .iter()
                .map(|(k, t)| (k.clone(), t.to_json(reveal)))
                .collect();
            m.insert("also".into(), Value::Object(also));
        }
        Value::Object(m)
    }
}

impl Token {
    /// Reads a token back from [`Token::to_json`]`(true)` output (as the token cache stores it).
    /// `None` when the value is not such an object.
    pub fn from_json(value: &Value) -> Option<Token> {
        let o = value.as_object()?;
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let num = |k: &str| o.get(k).and_then(Value::as_u64);
        let also = match o.get("also") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| Token::from_json(v).map(|t| (k.clone(), t)))
                .collect::<Option<_>>()?,
            _ => Default::default(),
        };
        Some(Token {
            access_token: Secret::new(match o.get("access_token")? {
                Value::Null => String::new(),
                v => v.as_str()?.to_owned(),
            }),
            token_type: text("token_type").unwrap_or_else(|| "Bearer".to_owned()),
            expires_in: num("expires_in"),
            expires_at: num("expires_at"),
            refresh_token: text("refresh_token").map(Secret::new),
            refresh_token_expires_in: num("refresh_token_expires_in"),
            scope: o.get("scope").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
            id_token: text("id_token").map(Secret::new),
            extra: o
                .get("extra")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            also,
            secret_extras: o
                .get("secret_extras")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// A device authorization reply: what the user is shown, and what the client polls with.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceAuthorization {
    /// Sent back on every poll of the token endpoint (grant `device_code`).
    pub device_code: Secret,
    /// The code the user types at the verification URI.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The verification URI with the user code filled in, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire, when stated.
    pub expires_in: Option<u64>,
    /// Seconds to wait between polls.
    pub interval: u64,
}

impl DeviceAuthorization {
    /// As JSON (`device_code` redacted unless `reveal`).
    pub fn to_json(&self, reveal: bool) -> Value {
        let mut m = serde_json::Map::new();
        let code = if reveal {
            self.device_code.secret()
        } else {
            REDACTED
        };
        m.insert("device_code".into(), Value::String(code.to_owned()));
        m.insert("user_code".into(), Value::String(self.user_code.clone()));
        m.insert(
            "verification_uri".into(),
            Value::String(self.verification_uri.clone()),
        );
        if let Some(c) = &self.verification_uri_complete {
            m.insert("verification_uri_complete".into(), Value::String(c.clone()));
        }
        if let Some(e) = self.expires_in {
            m.insert("expires_in".into(), Value::from(e));
        }
        m.insert("interval".into(), Value::from(self.interval));
        Value::Object(m)
    }
}

/// An introspection reply (RFC 7662 §2.2): whether the token is active, and everything the
/// server said about it (`scope`, `client_id`, `exp`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The whole reply.
    pub claims: Value,
}

/// A pushed authorization request's reply (RFC 9126 §2.2): the reference the authorization URL
/// carries instead of the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PushedAuthorization {
    /// `urn:ietf:params:oauth:request_uri:…`, sent as `request_uri` with `client_id`.
    pub request_uri: String,
    /// Seconds the reference stays usable.
    pub expires_in: Option<u64>,
}

impl PushedAuthorization {
    /// As JSON: `request_uri` and, when stated, `expires_in`.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "request_uri".into(),
            Value::String(self.request_uri.clone()),
        );
        if let Some(e) = self.expires_in {
            m.insert("expires_in".into(), Value::from(e));
        }
        Value::Object(m)
    }
}

/// What a normalised reply means, by the kind of request it answers.
///
/// ```
/// use specauth::{Outcome, RequestKind};
/// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
/// extends: oauth2
/// endpoints: { token: "https://auth.example.com/token", revocation: "https://auth.example.com/revoke" }
/// "#).unwrap();
/// let reply = http::Response::builder().status(200).body(Vec::new()).unwrap();
/// let outcome = spec.normalise(RequestKind::Revocation, &specauth::Inputs::new(), &reply, 0).unwrap();
/// assert_eq!(outcome, Outcome::Revoked);
/// assert_eq!(outcome.to_json(false), serde_json::json!({ "revoked": true }));
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A grant's token.
    Token(Box<Token>),
    /// A device authorization: what to show the user, and what to poll with.
    DeviceAuthorization(DeviceAuthorization),
    /// An introspection reply.
    Introspection(Introspection),
    /// The token was revoked.
    Revoked,
    /// A pushed authorization request was accepted (RFC 9126).
    PushedAuthorization(PushedAuthorization),
    /// A step of a chain (`then:`) succeeded: the grant to send next, and the values of this
    /// reply it takes as inputs. [`Client`](crate::Client) sends the next step itself.
    Step(Step),
}

/// What a step of a chain of requests gives the next one.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The grant sent next.
    pub next: String,
    /// Input name → value, from this step's reply.
    pub taken: Vec<(String, Secret)>,
    /// The names among `taken` that are secret inputs (redacted when shown).
    pub secret: Vec<String>,
}

impl Step {
    /// The taken values as a JSON object; secret ones `[redacted]` unless `reveal`.
    pub fn to_json(&self, reveal: bool) -> Value {
        let map: Map<String, Value> = self
            .taken
            .iter()
            .map(|(name, value)| {
                let shown = if reveal || !self.secret.contains(name) {
                    value.secret()
                } else {
                    REDACTED
                };
                (name.clone(), Value::String(shown.to_owned()))
            })
            .collect();
        Value::Object(map)
    }
}

impl Outcome {
    /// The token, when this is a grant's outcome.
    pub fn into_token(self) -> Option<Token> {
        match self {
            Outcome::Token(t) => Some(*t),
            _ => None,
        }
    }

    /// The name of this kind of outcome, as [`Outcome::to_json`] and the examples' `expect:`
    /// keys use it: `token`, `device`, `introspection`, `revoked` or `pushed`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Token(_) => "token",
            Outcome::DeviceAuthorization(_) => "device",
            Outcome::Introspection(_) => "introspection",
            Outcome::Revoked => "revoked",
            Outcome::PushedAuthorization(_) => "pushed",
            Outcome::Step(_) => "taken",
        }
    }

    /// The outcome's value alone (the token's JSON, the device authorization's, the
    /// introspection reply, or `true` for a revocation); secrets redacted unless `reveal`.
    pub fn value_json(&self, reveal: bool) -> Value {
        match self {
            Outcome::Token(t) => t.to_json(reveal),
            Outcome::DeviceAuthorization(d) => d.to_json(reveal),
            Outcome::Introspection(i) => i.claims.clone(),
            Outcome::Revoked => Value::Bool(true),
            Outcome::PushedAuthorization(p) => p.to_json(),
            Outcome::Step(s) => s.to_json(reveal),
        }
    }

    /// `{"token": …}`, `{"device": …}`, `{"introspection": …}` or `{"revoked": true}`.
    pub fn to_json(&self, reveal: bool) -> Value {
        json!({ self.name(): self.value_json(reveal) })
    }
}
