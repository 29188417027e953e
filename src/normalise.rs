//! HTTP reply → normalised [`Token`] or [`ProviderError`] (sans-IO).
//!
//! The body is parsed by its Content-Type (JSON, form-urlencoded or XML; sniffed when the type is
//! missing or generic) into one JSON value, so one set of JSONPaths serves all three.

use jsonpath_rust::parser::model::{Segment, Selector};
use jsonpath_rust::query::js_path_process;
use serde_json::{Map, Value};

use crate::error::{Error, ProviderError};
use crate::inputs::Inputs;
use crate::reply::{Body, parse_body};
use crate::secret::{Scrubber, Secret};
use std::borrow::Cow;

use crate::spec::{DateFormat, DurationUnit, ErrorMap, Path, RequestKind, Source, Spec, Test};
use crate::token::{DeviceAuthorization, Introspection, Outcome, PushedAuthorization, Token};

/// Interval between device-flow polls when the provider states none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: u64 = 5;

/// Epoch values above this are milliseconds (1e11 s is the year 5138).
const MILLIS_THRESHOLD: u64 = 100_000_000_000;

impl Spec {
    /// Normalises the reply to `kind` of request, with `now` (epoch seconds) as the clock for
    /// relative expiry: a grant's reply becomes an [`Outcome::Token`], the others a device
    /// authorization, an introspection or a revocation.
    ///
    /// A non-2xx status, or a 2xx reply matching the spec's `errors.when`, is an
    /// [`Error::Provider`]; a reply that cannot be parsed, or a success without an access token,
    /// is an [`Error::Reply`] with the status and a short redacted excerpt.
    ///
    /// ```
    /// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://auth.example.com/token" }
    /// "#).unwrap();
    /// let reply = http::Response::builder()
    ///     .status(200)
    ///     .header("content-type", "application/json")
    ///     .body(br#"{"access_token":"t0k","token_type":"bearer","expires_in":3600,"scope":"a b"}"#.to_vec())
    ///     .unwrap();
    /// let token = spec.normalise("client_credentials", &specauth::Inputs::new(), &reply, 1_000)
    ///     .unwrap().into_token().unwrap();
    /// assert_eq!(token.access_token.secret(), "t0k");
    /// assert_eq!(token.token_type, "Bearer");
    /// assert_eq!(token.expires_at, Some(4_600));
    /// assert_eq!(token.scope, Some(vec!["a".to_string(), "b".to_string()]));
    /// ```
    pub fn normalise(
        &self,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
        now: u64,
    ) -> Result<Outcome, Error> {
        self.normalise_kind(&kind.into(), inputs, reply, now)
    }

    /// [`Spec::normalise`] of a kind the caller keeps.
    pub(crate) fn normalise_kind(
        &self,
        kind: &RequestKind,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
        now: u64,
    ) -> Result<Outcome, Error> {
        let template = self.template(kind)?;
        match kind {
            RequestKind::Grant(_) => {
                let value = self.successful_reply(inputs, reply)?;
                if let Some(next) = &template.then {
                    return self
                        .step(template, next, inputs, &value, reply)
                        .map(Outcome::Step);
                }
                let token = self.token_from(
                    &self.token,
                    reply.status().as_u16(),
                    self.view(&value, reply),
                    reply.body(),
                    inputs,
                    now,
                )?;
                Ok(Outcome::Token(Box::new(token)))
            }
            RequestKind::Authorization => Err(Error::Usage(format!(
                "spec `{}`: the authorization request is answered by a browser redirect, not a reply to normalise",
                self.id
            ))),
            RequestKind::DeviceAuthorization => self
                .device_authorization(inputs, reply)
                .map(Outcome::DeviceAuthorization),
            // Any 2xx is success (RFC 7009 §2.2), whatever its body (`OK`, a page): only a
            // body the spec's `errors.when` reads as an error says otherwise.
            RequestKind::Revocation => match self.successful_reply(inputs, reply) {
                Ok(_) => Ok(Outcome::Revoked),
                Err(Error::Reply { .. }) if reply.status().is_success() => Ok(Outcome::Revoked),
                Err(e) => Err(e),
            },
            RequestKind::Introspection => self
                .introspection(inputs, reply)
                .map(Outcome::Introspection),
            RequestKind::PushedAuthorization => self
                .pushed_authorization(inputs, reply)
                .map(Outcome::PushedAuthorization),
        }
    }

    /// The reply parsed into one JSON value when it is a success; otherwise the provider's
    /// normalised error (a non-2xx status, or a match of `errors.when`), or an
    /// [`Error::Reply`] when it cannot be parsed.
    pub(crate) fn successful_reply<'b>(
        &self,
        inputs: &Inputs,
        reply: &'b http::Response<Vec<u8>>,
    ) -> Result<Body<'b>, Error> {
        let status = reply.status().as_u16();
        let content_type = reply
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let body = reply.body();
        let value = match parse_body(content_type, body) {
            Ok(v) => v,
            // A success with no body (revocation answers `200` and nothing else) is fine.
            Err(_) if reply.status().is_success() && body.iter().all(u8::is_ascii_whitespace) => {
                Body::from(Value::Object(Map::new()))
            }
            // A refusal with no body at all: the status is all the provider says.
            Err(_) if !reply.status().is_success() && body.iter().all(u8::is_ascii_whitespace) => {
                Body::from(Value::Null)
            }
            // A refusal in a sentence (`401 Invalid client credentials`) is still the provider's
            // refusal: the whole body is the value, and its message unless the spec says more.
            Err(_) if !reply.status().is_success() && crate::reply::plain_text(body).is_some() => {
                Body::from(Value::String(
                    crate::reply::plain_text(body).unwrap_or_default(),
                ))
            }
            Err(problem) => {
                return Err(Error::Reply {
                    status,
                    problem: problem.to_owned(),
                    excerpt: self.scrubber(inputs).excerpt(body),
                });
            }
        };
        let view = self.view(&value, reply);
        let refused = !reply.status().is_success()
            || self.errors.when.iter().any(|c| c.matches(view))
            || !self.errors.success.iter().all(|c| c.matches(view));
        if refused {
            return Err(Error::from(provider_error(
                &self.errors,
                status,
                view,
                &self.scrubber(inputs),
            )));
        }
        Ok(value)
    }

    /// A step of a chain: the values its reply gives the next step, each required.
    fn step(
        &self,
        template: &crate::spec::RequestTemplate,
        next: &str,
        inputs: &Inputs,
        value: &Body<'_>,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<crate::token::Step, Error> {
        let view = self.view(value, reply);
        let mut taken = Vec::new();
        for (name, paths) in &template.take {
            let found = text_at(paths, view).ok_or_else(|| {
                self.reply_error(
                    reply,
                    inputs,
                    format!("a reply without `{name}` at {}", paths_text(paths)),
                )
            })?;
            taken.push((name.clone(), Secret::new(found)));
        }
        let secret = taken
            .iter()
            .filter(|(name, _)| self.inputs.get(name).is_some_and(|d| d.secret))
            .map(|(name, _)| name.clone())
            .collect();
        Ok(crate::token::Step {
            next: next.to_owned(),
            taken,
            secret,
        })
    }

    fn reply_error(
        &self,
        reply: &http::Response<Vec<u8>>,
        inputs: &Inputs,
        problem: String,
    ) -> Error {
        Error::Reply {
            status: reply.status().as_u16(),
            problem,
            excerpt: self.scrubber(inputs).excerpt(reply.body()),
        }
    }

    fn device_authorization(
        &self,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<DeviceAuthorization, Error> {
        let value = self.successful_reply(inputs, reply)?;
        let view = self.view(&value, reply);
        let map = &self.device;
        let text = |paths, what: &str| -> Result<String, Error> {
            text_at(paths, view).ok_or_else(|| {
                self.reply_error(
                    reply,
                    inputs,
                    format!("a device authorization reply without `{what}`"),
                )
            })
        };
        Ok(DeviceAuthorization {
            device_code: Secret::new(text(&map.device_code, "device_code")?),
            user_code: text(&map.user_code, "user_code")?,
            verification_uri: text(&map.verification_uri, "verification_uri")?,
            verification_uri_complete: first(&map.verification_uri_complete, view)
                .as_deref()
                .and_then(scalar_string),
            expires_in: first(&map.expires_in, view).as_deref().and_then(number),
            interval: first(&map.interval, view)
                .as_deref()
                .and_then(number)
                .unwrap_or(DEFAULT_INTERVAL),
        })
    }

    /// RFC 9126 §2.2: `request_uri` and `expires_in`, by those names.
    fn pushed_authorization(
        &self,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<PushedAuthorization, Error> {
        let value = self.successful_reply(inputs, reply)?;
        let request_uri = value
            .member("request_uri")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.reply_error(
                    reply,
                    inputs,
                    "a pushed authorization reply without `request_uri`".to_owned(),
                )
            })?;
        Ok(PushedAuthorization {
            request_uri: request_uri.to_owned(),
            expires_in: value.member("expires_in").and_then(number),
        })
    }

    fn introspection(
        &self,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<Introspection, Error> {
        let value = self.successful_reply(inputs, reply)?;
        let active = match first(&self.introspection_active, self.view(&value, reply)).as_deref() {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => {
                return Err(self.reply_error(
                    reply,
                    inputs,
                    "an introspection reply without a boolean `active`".to_owned(),
                ));
            }
        };
        Ok(Introspection {
            active,
            claims: value.into_whole(),
        })
    }

    /// The scrubber for replies to a request made with `inputs`: the secret inputs in every
    /// encoding, the Basic credential they made, and the keys the spec reads tokens from.
    pub(crate) fn scrubber(&self, inputs: &Inputs) -> Scrubber {
        let mut s = Scrubber::new();
        for (name, value) in inputs.iter() {
            if self.inputs.get(name).is_some_and(|d| d.secret) {
                s.secret(value);
            }
        }
        if let (Some(id), Some(secret)) = (inputs.get("client_id"), inputs.get("client_secret")) {
            s.basic(id, secret);
        }
        self.token.secret_keys(&mut |k| s.key(k));
        s
    }

    fn token_from(
        &self,
        map: &crate::spec::TokenMap,
        status: u16,
        view: View<'_>,
        body: &[u8],
        inputs: &Inputs,
        now: u64,
    ) -> Result<Token, Error> {
        let bad = |problem: String| Error::Reply {
            status,
            problem,
            excerpt: self.scrubber(inputs).excerpt(body),
        };
        let access_token = match first(&map.access_token, view).as_deref() {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(other) if !other.is_null() && !other.is_string() => {
                return Err(bad(format!(
                    "the access token at {} is not a string",
                    paths_text(&map.access_token)
                )));
            }
            _ if map.access_token_optional => String::new(),
            _ => {
                return Err(bad(format!(
                    "a {status} reply without an access token at {}",
                    paths_text(&map.access_token)
                )));
            }
        };
        let token_type = match first(&map.token_type, view)
            .as_deref()
            .and_then(scalar_string)
        {
            Some(t) => normalise_token_type(&t),
            None => map
                .default_token_type
                .clone()
                .unwrap_or_else(|| "Bearer".to_owned()),
        };
        // Both go into `Authorization:` lines and scripts' command lines as they are: a control
        // character, a space or a non-ASCII byte would split or corrupt the header.
        for (what, text) in [("access token", &access_token), ("token type", &token_type)] {
            let allowed_empty = text.is_empty() && map.access_token_optional;
            if !(is_token_string(text) || allowed_empty) {
                return Err(bad(format!(
                    "the {what} has characters a token cannot have (controls, spaces or non-ASCII)"
                )));
            }
        }
        let unit = map.expires_in_unit.unwrap_or(DurationUnit::Seconds);
        // An optional number at `paths`: absent or null is `None`; anything unreadable is an
        // error naming the field and what it should have been.
        let number_at = |paths: &[Path],
                         field: &str,
                         expected: &str,
                         read: &dyn Fn(&Value) -> Option<u64>|
         -> Result<Option<u64>, Error> {
            match first(paths, view).as_deref() {
                None | Some(Value::Null) => Ok(None),
                Some(v) => read(v)
                    .map(Some)
                    .ok_or_else(|| bad(format!("{field} `{v}` is not {expected}"))),
            }
        };
        let an_instant = match &map.date_format {
            Some(DateFormat { items: Some(_), .. }) => {
                "epoch seconds, epoch milliseconds, an ISO 8601 date or a date in the spec's `date_format`"
            }
            _ => "epoch seconds, epoch milliseconds or an ISO 8601 date",
        };
        let date = |v: &Value| instant_in(v, map.date_format.as_ref());
        // A value the spec declares to mean "never expires" (`0`, `-1`) is no expiry at all.
        let never = |paths: &[Path]| {
            !map.never_expires.is_empty()
                && first(paths, view)
                    .is_some_and(|v| map.never_expires.iter().any(|n| loosely_equal(&v, n)))
        };
        let never_expires = never(&map.expires_in) || never(&map.expires_at);
        let mut expires_in = if never_expires {
            None
        } else {
            number_at(&map.expires_in, "expires_in", unit.expected(), &|v| {
                duration(v, unit)
            })?
        };
        let mut expires_at = if never_expires {
            None
        } else {
            number_at(&map.expires_at, "expires_at", an_instant, &date)?
        };
        if expires_in.is_none() && expires_at.is_none() && !never_expires {
            expires_in = map.default_expires_in;
        }
        let issued_at = number_at(&map.issued_at, "issued_at", an_instant, &date)?;
        match (expires_in, expires_at) {
            (Some(i), None) => expires_at = Some(issued_at.unwrap_or(now).saturating_add(i)),
            (None, Some(a)) => expires_in = Some(a.saturating_sub(now)),
            _ => {}
        }
        let refresh_token = match first(&map.refresh_token, view)
            .as_deref()
            .and_then(scalar_string)
        {
            Some(r) if !r.is_empty() => Some(Secret::new(r)),
            // A refresh reply without a refresh token: the one just used stays valid.
            _ => inputs.get("refresh_token").map(Secret::new),
        };
        let refresh_token_expires_in =
            if never(&map.refresh_token_expires_in) || never(&map.refresh_token_expires_at) {
                None
            } else {
                match number_at(
                    &map.refresh_token_expires_in,
                    "refresh_token_expires_in",
                    "a number of seconds",
                    &|v| duration(v, DurationUnit::Seconds),
                )? {
                    Some(i) => Some(i),
                    // An absolute expiry, as a lifetime from now.
                    None => number_at(
                        &map.refresh_token_expires_at,
                        "refresh_token_expires_at",
                        an_instant,
                        &date,
                    )?
                    .map(|at| at.saturating_sub(now)),
                }
            };
        let scope = first(&map.scope, view)
            .as_deref()
            .and_then(|v| split_scope(v, &map.scope_separator));
        let id_token = first(&map.id_token, view)
            .as_deref()
            .and_then(scalar_string)
            .map(Secret::new);
        let mut extra = Map::new();
        for (name, paths) in &map.extras {
            if let Some(v) = first(paths, view) {
                extra.insert(name.clone(), v.into_owned());
            }
        }
        let mut also = std::collections::BTreeMap::new();
        for (name, sub) in &map.also {
            // A further token set is optional: absent when the reply has no access token for it.
            if first(&sub.access_token, view).is_some_and(|v| !v.is_null()) {
                let token = self.token_from(sub, status, view, body, &Inputs::new(), now)?;
                also.insert(name.clone(), token);
            }
        }
        Ok(Token {
            access_token: Secret::new(access_token),
            token_type,
            expires_in,
            expires_at,
            refresh_token,
            refresh_token_expires_in,
            scope,
            id_token,
            extra,
            also,
            secret_extras: map.secret_extras.clone(),
        })
    }
}

impl crate::spec::TokenMap {
    /// Hands `key` every last key name of the paths that find a secret: the access, refresh
    /// and ID tokens and the secret extras, of this token set and the further ones.
    fn secret_keys(&self, key: &mut dyn FnMut(&str)) {
        let secret_extras = self
            .extras
            .iter()
            .filter(|(name, _)| self.secret_extras.contains(name))
            .flat_map(|(_, paths)| paths);
        for path in self
            .access_token
            .iter()
            .chain(&self.refresh_token)
            .chain(&self.id_token)
            .chain(secret_extras)
        {
            if let Some(Segment::Selector(Selector::Name(name))) = path.query.segments.last() {
                key(name);
            }
        }
        for (_, sub) in &self.also {
            sub.secret_keys(key);
        }
    }
}

impl DurationUnit {
    /// What an unreadable lifetime should have been, for its error.
    fn expected(self) -> &'static str {
        match self {
            DurationUnit::Seconds => "a number of seconds",
            DurationUnit::Milliseconds => "a number of milliseconds",
        }
    }
}

impl crate::spec::ErrorCondition {
    fn matches(&self, view: View<'_>) -> bool {
        let found = first(std::slice::from_ref(&self.path), view);
        let found = found.as_deref();
        match &self.test {
            Test::Exists(want) => found.is_some_and(|v| !v.is_null()) == *want,
            Test::Equals(expected) => found.is_some_and(|v| loosely_equal(v, expected)),
            Test::NotEquals(other) => {
                found.is_some_and(|v| !v.is_null() && !loosely_equal(v, other))
            }
            Test::OneOf(values) => {
                found.is_some_and(|v| values.iter().any(|e| loosely_equal(v, e)))
            }
            Test::Matches(re) => found
                .and_then(scalar_string)
                .is_some_and(|text| re.is_match(&text)),
        }
    }
}

/// `false` equals `"false"`, `0` equals `"0"`: replies parsed from form or XML bodies hold
/// everything as strings.
fn loosely_equal(found: &Value, expected: &Value) -> bool {
    if found == expected {
        return true;
    }
    match (found, expected) {
        (Value::String(s), Value::Bool(b)) | (Value::Bool(b), Value::String(s)) => {
            s.as_str() == if *b { "true" } else { "false" }
        }
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        _ => false,
    }
}

/// The provider's error, with any secret the request carried (which some providers echo back,
/// e.g. "invalid code …") replaced by `[redacted]`.
fn provider_error(
    map: &ErrorMap,
    status: u16,
    view: View<'_>,
    scrubber: &Scrubber,
) -> ProviderError {
    let get = |paths: &[Path]| text_at(paths, view).map(|s| scrubber.scrub(&s));
    // A plain-text body is its own message when no path of the spec's finds one.
    let message = get(&map.message).or_else(|| match view.body.as_str() {
        Some(text) if !text.is_empty() => Some(scrubber.scrub(text)),
        _ => None,
    });
    // A bare status stands for a code when the spec says so and the reply names none.
    let code = get(&map.code).or_else(|| {
        map.status_codes
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, c)| c.clone())
    });
    let mut extra = Map::new();
    for (name, paths) in &map.extras {
        if let Some(v) = first(paths, view).filter(|v| !v.is_null()) {
            let v = match v.into_owned() {
                Value::String(s) => Value::String(scrubber.scrub(&s)),
                other => other,
            };
            extra.insert(name.clone(), v);
        }
    }
    ProviderError {
        status,
        code,
        message,
        hint: get(&map.hint),
        uri: get(&map.uri),
        extra,
    }
}

/// A reply as a spec's paths read it: the parsed body for JSONPaths, the headers for
/// `header:` and `cookie:` paths, and the engine for `template:` ones.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) body: &'a Body<'a>,
    headers: Option<&'a http::HeaderMap>,
    env: Option<&'a minijinja::Environment<'static>>,
}

impl Spec {
    fn view<'a>(&'a self, body: &'a Body<'_>, reply: &'a http::Response<Vec<u8>>) -> View<'a> {
        View {
            body,
            headers: Some(reply.headers()),
            env: Some(&self.env),
        }
    }
}

/// The most headers and cookies a `template:` path sees (a reply's headers are already
/// bounded by the transport; this bounds the copy).
const MAX_TEMPLATE_HEADERS: usize = 256;

/// The first path that finds a value, and that value.
pub(crate) fn first<'a>(paths: &[Path], view: View<'a>) -> Option<Cow<'a, Value>> {
    paths.iter().find_map(|p| find(p, view))
}

fn find<'a>(path: &Path, view: View<'a>) -> Option<Cow<'a, Value>> {
    match &path.source {
        Source::Body => query(path, view.body).map(Cow::Borrowed),
        Source::Header(name) => view
            .headers?
            .get(name.as_ref())
            .and_then(|v| v.to_str().ok())
            .map(|v| Cow::Owned(Value::String(v.trim().to_owned()))),
        Source::Cookie(name) => cookies(view.headers?)
            .find(|(n, _)| *n == name.as_ref())
            .map(|(_, v)| Cow::Owned(Value::String(v.to_owned()))),
        Source::Template(template) => {
            let env = view.env?;
            let headers: Map<String, Value> = view
                .headers
                .into_iter()
                .flat_map(|h| h.iter())
                .take(MAX_TEMPLATE_HEADERS)
                .filter_map(|(k, v)| {
                    Some((
                        k.as_str().to_owned(),
                        Value::String(v.to_str().ok()?.to_owned()),
                    ))
                })
                .collect();
            let cookies: Map<String, Value> = view
                .headers
                .into_iter()
                .flat_map(cookies)
                .take(MAX_TEMPLATE_HEADERS)
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect();
            let rendered = env
                .get_template(template)
                .and_then(|t| {
                    t.render(minijinja::context! {
                        body => minijinja::Value::from(minijinja::value::Serde(view.body.whole())),
                        headers => minijinja::Value::from(minijinja::value::Serde(&headers)),
                        cookies => minijinja::Value::from(minijinja::value::Serde(&cookies)),
                    })
                })
                .ok()?;
            let rendered = rendered.trim();
            // Nothing rendered (an absent claim, a pattern that did not match) is no value.
            (!rendered.is_empty() && rendered != "none")
                .then(|| Cow::Owned(Value::String(rendered.to_owned())))
        }
    }
}

/// The `name=value` pairs of a reply's `Set-Cookie` headers (RFC 6265 §5.2: the part before
/// the first `;`).
fn cookies(headers: &http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .map(|(n, v)| (n.trim(), v.trim().trim_matches('"')))
}

fn query<'a>(path: &Path, body: &'a Body<'_>) -> Option<&'a Value> {
    // A body kept as its members, a path that is one of them (most token paths): found by
    // name, without reading the compiled query.
    if body.is_members()
        && let Some(name) = path.member()
    {
        return body.member(name);
    }
    let segments = &path.query.segments[..];
    // A body kept as its members: a path that starts with a name finds its member directly.
    if body.is_members()
        && let Some((head, rest)) = segments.split_first()
        && rest.iter().all(is_simple)
    {
        match simple_selector(head) {
            Some(Selector::Name(name)) => {
                return body
                    .member(name)
                    .and_then(|v| simple_query(rest, v).flatten());
            }
            // An index finds nothing in an object.
            Some(Selector::Index(_)) => return None,
            _ => {}
        }
    }
    query_value(path, body.whole())
}

fn query_value<'a>(path: &Path, value: &'a Value) -> Option<&'a Value> {
    if let Some(found) = simple_query(&path.query.segments, value) {
        return found;
    }
    js_path_process(&path.query, value)
        .ok()?
        .into_iter()
        .next()
        .map(|r| r.val)
}

/// The value at a path made only of single names and indexes (`$.a.b`, `$[0].type`, `$['a']`,
/// `$[-1]`), found by walking the value: the same result as the general engine, which also
/// builds a normalised path string at every step. `None` for any other path.
fn simple_query<'a>(segments: &[Segment], value: &'a Value) -> Option<Option<&'a Value>> {
    let mut at = Some(value);
    for segment in segments {
        let selector = match segment {
            Segment::Selector(s) => s,
            Segment::Selectors(list) if list.len() == 1 => &list[0],
            _ => return None,
        };
        at = match selector {
            Selector::Name(key) => at.and_then(|v| v.as_object()?.get(key.as_str())),
            Selector::Index(i) => at.and_then(|v| {
                let items = v.as_array()?;
                let i = if *i >= 0 {
                    usize::try_from(*i).ok()?
                } else {
                    items
                        .len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                };
                items.get(i)
            }),
            _ => return None,
        };
    }
    Some(at)
}

/// The one selector of a segment that selects one name or one index, which `simple_query`
/// reads itself.
fn simple_selector(segment: &Segment) -> Option<&Selector> {
    let selector = match segment {
        Segment::Selector(s) => s,
        Segment::Selectors(list) if list.len() == 1 => &list[0],
        _ => return None,
    };
    matches!(selector, Selector::Name(_) | Selector::Index(_)).then_some(selector)
}

fn is_simple(segment: &Segment) -> bool {
    simple_selector(segment).is_some()
}

/// The first of `paths` that finds a non-empty scalar (string, number or boolean), as text.
fn text_at(paths: &[Path], view: View<'_>) -> Option<String> {
    first(paths, view)
        .as_deref()
        .and_then(scalar_string)
        .filter(|s| !s.is_empty())
}

fn paths_text(paths: &[Path]) -> String {
    paths
        .iter()
        .map(|p| &*p.text)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Visible ASCII only (`!` to `~`): what can stand in an HTTP header and a shell word as it is.
/// Wider than RFC 6750's b64token, which real bearer tokens do not keep to (`Atza|…`,
/// `APPID|SECRET`).
fn is_token_string(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Strings as they are, numbers and booleans as text; anything else is not a scalar.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn normalise_token_type(t: &str) -> String {
    if t.eq_ignore_ascii_case("bearer") {
        "Bearer".to_owned()
    } else if t.eq_ignore_ascii_case("dpop") {
        "DPoP".to_owned()
    } else if t.eq_ignore_ascii_case("mac") {
        "MAC".to_owned()
    } else {
        t.to_owned()
    }
}

/// A number or numeric string, in `unit`, as whole seconds.
fn duration(v: &Value, unit: DurationUnit) -> Option<u64> {
    let n = number(v)?;
    Some(match unit {
        DurationUnit::Seconds => n,
        DurationUnit::Milliseconds => n / 1000,
    })
}

/// Non-negative whole number from a JSON number or numeric string (fractions are truncated).
pub(crate) fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
        }
        _ => None,
    }
}

/// Epoch seconds from epoch seconds, epoch milliseconds or an RFC 3339 / ISO 8601 date.
fn instant(v: &Value) -> Option<u64> {
    if let Some(n) = number(v) {
        return Some(if n >= MILLIS_THRESHOLD { n / 1000 } else { n });
    }
    let s = v.as_str()?.trim();
    let parsed = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Iso8601::DEFAULT)
        })
        .ok()?;
    u64::try_from(parsed.unix_timestamp()).ok()
}

/// Epoch seconds from a date in the spec's declared format (tried first, so `20241231` is a
/// date, not an epoch), else from any form [`instant`] reads; a date that states no offset is
/// in the declared time zone.
fn instant_in(v: &Value, format: Option<&DateFormat>) -> Option<u64> {
    let Some(format) = format else {
        return instant(v);
    };
    let text = v.as_str().map(str::trim);
    let stamp = |t: time::OffsetDateTime| u64::try_from(t.unix_timestamp()).ok();
    if let (Some(items), Some(s)) = (&format.items, text) {
        if let Ok(t) = time::OffsetDateTime::parse(s, items) {
            return stamp(t);
        }
        if let Ok(t) = time::PrimitiveDateTime::parse(s, items) {
            return stamp(t.assume_offset(format.offset));
        }
        if let Ok(d) = time::Date::parse(s, items) {
            return stamp(d.midnight().assume_offset(format.offset));
        }
    }
    if let Some(s) = text
        && let Ok(t) = time::PrimitiveDateTime::parse(
            s,
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Iso8601::DEFAULT)
            .is_err()
    {
        return stamp(t.assume_offset(format.offset));
    }
    instant(v)
}

fn split_scope(v: &Value, separators: &str) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => Some(items.iter().filter_map(scalar_string).collect()),
        Value::String(s) => Some(
            s.split(|c| separators.contains(c))
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants_in_every_documented_form() {
        assert_eq!(instant(&json!(1382962374)), Some(1382962374));
        assert_eq!(instant(&json!("1382962374")), Some(1382962374));
        assert_eq!(instant(&json!(1382962374123u64)), Some(1382962374));
        assert_eq!(instant(&json!("2013-10-28T12:12:54Z")), Some(1382962374));
        assert_eq!(
            instant(&json!("2013-10-28T14:12:54+02:00")),
            Some(1382962374)
        );
        assert_eq!(instant(&json!("soon")), None);
        assert_eq!(instant(&json!(-5)), None);
    }

    #[test]
    fn durations_from_numbers_and_strings() {
        assert_eq!(duration(&json!(3600), DurationUnit::Seconds), Some(3600));
        assert_eq!(duration(&json!("3600"), DurationUnit::Seconds), Some(3600));
        assert_eq!(duration(&json!(3600.7), DurationUnit::Seconds), Some(3600));
        assert_eq!(
            duration(&json!(7200000), DurationUnit::Milliseconds),
            Some(7200)
        );
        assert_eq!(duration(&json!("x"), DurationUnit::Seconds), None);
        assert_eq!(duration(&json!(true), DurationUnit::Seconds), None);
    }

    #[test]
    fn scopes_split_on_declared_separators() {
        assert_eq!(
            split_scope(&json!("a b  c"), " "),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            split_scope(&json!("a,b+c"), ",+"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            split_scope(&json!(["a", "b"]), " "),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(split_scope(&json!(null), " "), None);
    }

    #[test]
    fn simple_paths_find_what_the_general_engine_finds() {
        let value = json!({
            "a": {"b": [10, {"c": "x"}], "d": null},
            "list": [{"type": "t0"}, {"type": "t1"}],
            "odd key": 1,
            "0": "zero"
        });
        let paths = [
            "$",
            "$.a",
            "$.a.b",
            "$.a.b[0]",
            "$.a.b[1].c",
            "$.a.b[2]",
            "$.a.b[-1].c",
            "$.a.b[-2]",
            "$.a.b[-3]",
            "$.a.d",
            "$.a.missing",
            "$.list[0].type",
            "$.list[-1].type",
            "$[0]",
            "$[0].type",
            "$['odd key']",
            "$['a']['b'][1]",
            "$.a.b.c",
            "$.a[0]",
            "$['0']",
            "$.list[1].type.x",
            // Not simple: answered by the general engine.
            "$.list[*].type",
            "$..type",
            "$.list[0,1].type",
            "$.list[?@.type == 't1'].type",
            "$.list[0:1]",
        ];
        for text in paths {
            let parsed = jsonpath_rust::parser::parse_json_path(text).unwrap();
            let path = Path::parse(text).unwrap();
            let general = js_path_process(&parsed, &value)
                .unwrap()
                .into_iter()
                .next()
                .map(|r| r.val);
            assert_eq!(query_value(&path, &value), general, "{text}");
            // The same from a body kept as its members.
            let text_body = value.to_string();
            let body =
                crate::reply::parse_body(Some("application/json"), text_body.as_bytes()).unwrap();
            assert!(body.is_members());
            assert_eq!(query(&path, &body), general, "{text} (members)");
        }
        for text in ["$.a.b[1].c", "$['odd key']", "$[0]", "$.list[-1].type"] {
            let parsed = jsonpath_rust::parser::parse_json_path(text).unwrap();
            assert!(simple_query(&parsed.segments, &value).is_some(), "{text}");
        }
        for text in ["$..type", "$.list[*]", "$.list[0,1]"] {
            let parsed = jsonpath_rust::parser::parse_json_path(text).unwrap();
            assert!(simple_query(&parsed.segments, &value).is_none(), "{text}");
        }
    }

    #[test]
    fn loose_equality_across_parsed_types() {
        assert!(loosely_equal(&json!("false"), &json!(false)));
        assert!(loosely_equal(&json!(false), &json!(false)));
        assert!(!loosely_equal(&json!(true), &json!(false)));
        assert!(!loosely_equal(&json!("no"), &json!(false)));
    }
}
