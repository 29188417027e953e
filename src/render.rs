//! Spec + grant + inputs → the exact HTTP request (sans-IO: nothing here touches the network).

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::Error;
use crate::inputs::Inputs;
use crate::secret::{REDACTED, Scrubber};
use crate::spec::{
    Body, BodyEncoding, ClientAuthMethod, FieldDef, FieldType, RequestKind, RequestTemplate, Spec,
    check_uri, join,
};
use crate::template::{Tmpl, basic_header};

/// A rendered token request: the exact `http::Request` to send, and a preview of it with every
/// secret redacted (what logs, `specauth render` and snapshots show).
///
/// `Debug` shows the redacted preview only.
pub struct TokenRequest {
    request: http::Request<Vec<u8>>,
    preview: Preview,
    /// Built on first use: sending a request never pays for its preview.
    redacted: std::sync::OnceLock<String>,
}

/// What the redacted preview is made of, kept for when it is asked for: the parts' names and
/// values, and the secret inputs' values, copied end to end into one text (two allocations for
/// the whole preview, not three for each part).
struct Preview {
    method: http::Method,
    /// The endpoint URL, before any query the body encoding adds, in `text`.
    url: Span,
    encoding: BodyEncoding,
    xml_root: Option<String>,
    /// The URL, every kept part's name and value, and the secret inputs' values.
    text: String,
    /// Headers, fields and query fields in the order they were sent, and the secrets.
    parts: Vec<Kept>,
    /// Whether the parts were kept: a request rendered to be sent at once keeps only its URL.
    kept: bool,
}

/// What [`TokenRequest::redacted`] shows of a request rendered without its preview.
const NOT_KEPT: &str = "[request preview not kept]\n";

/// Where a kept part goes, and what is in `Preview::text`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Header,
    Field,
    /// Sent in the query string whatever the body encoding (`in: query`).
    Query,
    /// The value of a secret input, scrubbed from the text whatever path it took.
    Secret,
}

/// A part of the preview: its name and value as places in `Preview::text`.
struct Kept {
    place: Place,
    name: Span,
    value: Span,
    secret: bool,
    raw: bool,
    /// What a preview shows of a secret value and a typed value, rarely there.
    extra: Option<Box<(Option<String>, Option<serde_json::Value>)>>,
}

/// Where a text is in `Preview::text`: start and end.
#[derive(Clone, Copy)]
struct Span(usize, usize);

impl Preview {
    fn parts(&self, place: Place) -> impl Iterator<Item = Shown<'_>> + Clone {
        self.parts
            .iter()
            .filter(move |k| k.place == place)
            .map(|k| Shown {
                name: self.span(k.name),
                value: self.span(k.value),
                secret: k.secret,
                shown: k.extra.as_ref().and_then(|e| e.0.as_deref()),
                typed: k.extra.as_ref().and_then(|e| e.1.as_ref()),
                raw: k.raw,
            })
    }

    /// The preview of a rendered request: the parts copied into one text.
    /// Takes what only the preview needs (a shown form, a typed value) from the parts.
    fn keep<'a>(
        method: http::Method,
        url: &str,
        encoding: BodyEncoding,
        xml_root: Option<String>,
        headers: &mut [Part<'a>],
        fields: &mut [Part<'a>],
        values: &Values<'_>,
    ) -> Preview {
        let secrets = || values.items.iter().filter(|v| v.secret);
        let size = headers
            .iter()
            .chain(fields.iter())
            .map(|p| p.name.len() + p.value.len())
            .chain(secrets().map(|v| v.value.len()))
            .sum::<usize>()
            + url.len();
        let mut text = String::with_capacity(size);
        let mut add = |s: &str| {
            let start = text.len();
            text.push_str(s);
            Span(start, text.len())
        };
        let url = add(url);
        let mut parts = Vec::with_capacity(headers.len() + fields.len() + 2);
        let places = headers
            .iter_mut()
            .map(|h| (Place::Header, h))
            .chain(fields.iter_mut().map(|f| {
                (
                    if f.in_query {
                        Place::Query
                    } else {
                        Place::Field
                    },
                    f,
                )
            }));
        for (place, p) in places {
            parts.push(Kept {
                place,
                name: add(p.name),
                value: add(&p.value),
                secret: p.secret,
                raw: p.raw,
                extra: match (p.shown.take(), p.typed.take()) {
                    (None, None) => None,
                    extra => Some(Box::new(extra)),
                },
            });
        }
        for v in secrets() {
            parts.push(Kept {
                place: Place::Secret,
                name: Span(0, 0),
                value: add(v.value),
                secret: true,
                raw: false,
                extra: None,
            });
        }
        Preview {
            method,
            url,
            encoding,
            xml_root,
            text,
            parts,
            kept: true,
        }
    }

    /// The endpoint URL, before any query.
    fn url(&self) -> &str {
        self.span(self.url)
    }

    fn span(&self, span: Span) -> &str {
        self.text.get(span.0..span.1).unwrap_or("")
    }

    /// No preview: only the URL, for error messages, and nothing [`Preview::text`] shows.
    fn url_only(url: String) -> Preview {
        Preview {
            method: http::Method::GET,
            url: Span(0, url.len()),
            encoding: BodyEncoding::None,
            xml_root: None,
            text: url,
            parts: Vec::new(),
            kept: false,
        }
    }

    fn text(&self) -> String {
        if !self.kept {
            return NOT_KEPT.to_owned();
        }
        let shown_url = with_query(self.url(), &encode_form(self.parts(Place::Query), true));
        let shown_url = match self.encoding {
            BodyEncoding::Query => {
                with_query(&shown_url, &encode_form(self.parts(Place::Field), true))
            }
            _ => shown_url,
        };
        let body = match self.encoding {
            BodyEncoding::Form => encode_form(self.parts(Place::Field), true),
            BodyEncoding::Json => encode_json(self.parts(Place::Field), true),
            BodyEncoding::Xml => encode_xml(
                self.xml_root.as_deref().unwrap_or("request"),
                self.parts(Place::Field),
                true,
            ),
            BodyEncoding::Query | BodyEncoding::None => String::new(),
        };
        let mut text = format!("{} {}\n", self.method, shown_url);
        for h in self.parts(Place::Header) {
            let shown = if h.secret {
                redact_header(h.value)
            } else {
                h.value.to_owned()
            };
            let _ = writeln!(text, "{}: {}", h.name, shown);
        }
        if !body.is_empty() {
            text.push('\n');
            text.push_str(&body);
            text.push('\n');
        }
        // Defence in depth: no secret value may survive into the preview, in any encoding.
        let mut scrubber = Scrubber::new();
        for secret in self.parts(Place::Secret) {
            scrubber.secret(secret.value);
        }
        scrubber.scrub_values(text)
    }
}

impl TokenRequest {
    /// The request to send.
    pub fn http(&self) -> &http::Request<Vec<u8>> {
        &self.request
    }

    /// The request to send, by value (for a [`Transport`](crate::Transport)).
    pub fn into_http(self) -> http::Request<Vec<u8>> {
        self.request
    }

    /// The request as text (request line, headers, blank line, body) with secrets redacted.
    pub fn redacted(&self) -> &str {
        self.redacted.get_or_init(|| self.preview.text())
    }

    /// The request as text with every value shown. Only for when the user asks to reveal.
    pub fn revealed(&self) -> String {
        let mut out = format!("{} {}\n", self.request.method(), self.request.uri());
        for (name, value) in self.request.headers() {
            let _ = writeln!(
                out,
                "{}: {}",
                canonical(name.as_str()),
                String::from_utf8_lossy(value.as_bytes())
            );
        }
        if !self.request.body().is_empty() {
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(self.request.body()));
            out.push('\n');
        }
        out
    }
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("redacted", &self.redacted())
            .finish()
    }
}

/// A value with whether it must be hidden in previews, while the request is rendered: names
/// borrowed from the spec, values from the inputs wherever a template only names one.
struct Part<'a> {
    name: &'a str,
    value: Cow<'a, str>,
    secret: bool,
    /// The input the value came from, for errors about it.
    input: Option<&'a str>,
    /// What a preview shows for a secret value instead of `[redacted]` (a signed assertion's
    /// header and claims, its signature redacted).
    shown: Option<String>,
    /// The value as a JSON number, boolean or value, for a typed field in a JSON body.
    typed: Option<serde_json::Value>,
    /// Sent in the query string whatever the body encoding.
    in_query: bool,
    /// Not percent-encoded.
    raw: bool,
}

impl<'a> Part<'a> {
    fn plain(name: &'a str, value: impl Into<Cow<'a, str>>, secret: bool) -> Part<'a> {
        Part {
            name,
            value: value.into(),
            secret,
            input: None,
            shown: None,
            typed: None,
            in_query: false,
            raw: false,
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown {
            name: self.name,
            value: &self.value,
            secret: self.secret,
            shown: self.shown.as_deref(),
            typed: self.typed.as_ref(),
            raw: self.raw,
        }
    }
}

/// What the encoders read of a part, rendered or kept for the preview.
#[derive(Clone, Copy)]
struct Shown<'p> {
    name: &'p str,
    value: &'p str,
    secret: bool,
    shown: Option<&'p str>,
    typed: Option<&'p serde_json::Value>,
    raw: bool,
}

impl Spec {
    /// Renders `kind` of request with `inputs`: a grant (a plain `&str` names one), the
    /// authorization URL, device authorization, revocation or introspection.
    ///
    /// Inputs are checked first: an undeclared input, a missing required one, or a value outside
    /// its `enum` is an [`Error::Input`] naming it. Optional fields whose inputs are absent are
    /// left out (never sent empty).
    ///
    /// ```
    /// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://auth.example.com/token" }
    /// "#).unwrap();
    /// let inputs = specauth::Inputs::new()
    ///     .with("client_id", "app").with("client_secret", "s3cret").with("code", "abc");
    /// let req = spec.render("authorization_code", &inputs).unwrap();
    /// assert_eq!(req.http().body(), b"grant_type=authorization_code&code=abc");
    /// assert!(req.redacted().contains("Authorization: Basic [redacted]"));
    /// assert!(!req.redacted().contains("abc"));
    /// ```
    ///
    /// The authorization URL a browser is sent to (RFC 6749 §4.1.1) is a `GET` whose URI is
    /// the whole request. The caller supplies `state` and, for PKCE, `code_challenge` and
    /// `code_challenge_method` as inputs.
    ///
    /// ```
    /// use specauth::RequestKind;
    /// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
    /// extends: oauth2
    /// endpoints:
    ///   token: https://auth.example.com/token
    ///   authorize: https://auth.example.com/authorize
    /// authorize: { params: { access_type: offline } }
    /// "#).unwrap();
    /// let inputs = specauth::Inputs::new().with("client_id", "app").with("state", "xyz")
    ///     .with("redirect_uri", "http://127.0.0.1:8080/callback");
    /// let url = spec.render(RequestKind::Authorization, &inputs).unwrap().http().uri().to_string();
    /// assert_eq!(url,
    ///     "https://auth.example.com/authorize?response_type=code&client_id=app\
    ///      &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&state=xyz&access_type=offline");
    /// ```
    pub fn render(
        &self,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
    ) -> Result<TokenRequest, Error> {
        self.render_kind(&kind.into(), inputs, None, true)
    }

    /// [`Spec::render`], with the client authenticating by `method` instead of the spec's:
    /// how a caller carries out `client_auth: auto`, which renders Basic unless told
    /// otherwise (the [`Client`](crate::Client) retries with
    /// [`Post`](ClientAuthMethod::Post) after an `invalid_client` refusal).
    ///
    /// ```
    /// use specauth::spec::ClientAuthMethod;
    /// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://auth.example.com/token" }
    /// client_auth: auto
    /// "#).unwrap();
    /// let inputs = specauth::Inputs::new().with("client_id", "app").with("client_secret", "s3cret");
    /// let req = spec.render_with_client_auth("client_credentials", &inputs, ClientAuthMethod::Post).unwrap();
    /// assert_eq!(req.http().body(), b"grant_type=client_credentials&client_id=app&client_secret=s3cret");
    /// ```
    pub fn render_with_client_auth(
        &self,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
        method: ClientAuthMethod,
    ) -> Result<TokenRequest, Error> {
        self.render_kind(&kind.into(), inputs, Some(method), true)
    }

    /// [`Spec::render`] of a kind the caller keeps, with the client authenticating by
    /// `client_auth` when given (what `client_auth: auto` learned). Without `preview`, the
    /// request keeps nothing for [`TokenRequest::redacted`] (which then shows no part of it):
    /// for a caller that sends it at once and logs nothing.
    pub(crate) fn render_kind(
        &self,
        kind: &RequestKind,
        inputs: &Inputs,
        client_auth: Option<ClientAuthMethod>,
        preview: bool,
    ) -> Result<TokenRequest, Error> {
        let g = self.template(kind)?;
        let grant = kind.name();
        let (values, endpoint) = self.resolve_inputs(grant, g, inputs)?;
        let url = self.render_endpoint(endpoint, &g.endpoint, &values)?;
        let encoding = match &g.body {
            Body::Fixed(e) => *e,
            Body::Template(t) => {
                let s = self.render_tmpl(t, &values, || format!("grant `{grant}` body"))?;
                BodyEncoding::parse(s.trim()).ok_or_else(|| Error::Input {
                    name: t.vars().join(", "),
                    problem: format!(
                        "selects body encoding `{s}`; expected form, json, xml, query or none"
                    ),
                })?
            }
        };

        let mut size = RequestSize {
            used: url.len(),
            grant,
        };
        let mut fields = self.render_parts(&g.fields, &values, "field", &mut size)?;
        let mut headers = self.render_parts(&g.headers, &values, "header", &mut size)?;

        let auth = &g.client_auth;
        let spec_method = match &auth.chosen_by {
            None => auth.method,
            Some(t) => {
                let name = self.render_tmpl(t, &values, || "client_auth.method".to_owned())?;
                ClientAuthMethod::from_name(name.trim()).ok_or_else(|| Error::Input {
                    name: t.vars().join(", "),
                    problem: format!(
                        "selects client auth `{}`; expected basic, post, both, none, auto, private_key_jwt, client_secret_jwt, tls_client_auth or self_signed_tls_client_auth",
                        name.trim()
                    ),
                })?
            }
        };
        // The caller's choice (what `client_auth: auto` learned) over the spec's.
        let method = client_auth.unwrap_or(spec_method);
        let secret = values.get("client_secret");
        let id = values.get("client_id");
        let wants_basic = matches!(
            method,
            ClientAuthMethod::Basic | ClientAuthMethod::Both | ClientAuthMethod::Auto
        );
        let wants_post = matches!(method, ClientAuthMethod::Post | ClientAuthMethod::Both);
        if let Some(id) = id {
            match (wants_basic, secret) {
                (true, Some(secret)) => headers.push(Part {
                    input: Some("client_id"),
                    ..Part::plain(
                        "Authorization",
                        basic_header(id, secret, auth.form_encode_basic),
                        true,
                    )
                }),
                // A public client has no secret to put in a Basic header: it identifies itself in
                // the body (RFC 6749 §3.2.1).
                (true, None) if !wants_post => set_part(&mut fields, &auth.id_field, id, false),
                _ => {}
            }
            if wants_post {
                set_part(&mut fields, &auth.id_field, id, false);
                if let Some(secret) = secret {
                    set_part(&mut fields, &auth.secret_field, secret, true);
                }
            }
        }
        // Mutual TLS (RFC 8705 §2): the certificate is the credential and belongs to the
        // connection; the request names the client and carries no secret.
        if method.is_mutual_tls() {
            set_part(&mut fields, &auth.id_field, id.unwrap_or(""), false);
        }
        if matches!(
            method,
            ClientAuthMethod::PrivateKeyJwt | ClientAuthMethod::ClientSecretJwt
        ) {
            let assertion = self.client_assertion(grant, auth, method, &values, &url)?;
            set_part(&mut fields, &auth.id_field, id.unwrap_or(""), false);
            set_part(
                &mut fields,
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                false,
            );
            let shown = crate::jwt::redact_signature(&assertion);
            set_part(&mut fields, "client_assertion", assertion, true);
            if let Some(p) = fields.iter_mut().find(|p| p.name == "client_assertion") {
                p.shown = shown;
            }
        }

        let content_type = match encoding {
            BodyEncoding::Form => Some("application/x-www-form-urlencoded"),
            BodyEncoding::Json => Some("application/json"),
            BodyEncoding::Xml => Some("application/xml"),
            BodyEncoding::Query | BodyEncoding::None => None,
        };
        if let Some(ct) = content_type
            && !headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(Part::plain("Content-Type", ct, false));
        }

        // Fields sent in the query string whatever the body encoding, in their order.
        let query = fields
            .iter()
            .any(|p| p.in_query)
            .then(|| encode_form(fields.iter().filter(|p| p.in_query).map(Part::shown), false));
        let body_fields = || fields.iter().filter(|p| !p.in_query).map(Part::shown);
        let (body, body_query) = match encoding {
            BodyEncoding::Query => (Vec::new(), Some(encode_form(body_fields(), false))),
            BodyEncoding::None => (Vec::new(), None),
            BodyEncoding::Form => (form_bytes(body_fields(), false), None),
            BodyEncoding::Json => (encode_json(body_fields(), false).into_bytes(), None),
            BodyEncoding::Xml => {
                let root = g.xml_root.as_deref().ok_or_else(|| {
                    Error::Usage(format!(
                        "grant `{grant}` selected an xml body but the spec has no `xml_root`"
                    ))
                })?;
                (encode_xml(root, body_fields(), false).into_bytes(), None)
            }
        };
        // A literal endpoint with nothing added to its query was parsed and checked when the
        // spec was compiled: its URI is reused, and the URL string becomes the preview's.
        let parsed = match (&endpoint.tmpl, &endpoint.uri, &query, &body_query) {
            (Tmpl::Literal(_), Some(uri), None, None) => Some(uri.clone()),
            _ => None,
        };
        let mut url = url;
        let preview = if preview {
            Preview::keep(
                g.method.clone(),
                &url,
                encoding,
                g.xml_root.clone(),
                &mut headers,
                &mut fields,
                &values,
            )
        } else if parsed.is_some() {
            Preview::url_only(std::mem::take(&mut url))
        } else {
            Preview::url_only(url.clone())
        };
        let uri = match parsed {
            Some(uri) => uri,
            None => {
                // The URL with its query, in the endpoint's own string (the preview kept a
                // copy).
                let mut full_url = url;
                for q in [query, body_query].into_iter().flatten() {
                    append_query(&mut full_url, &q);
                }
                let url = preview.url();
                // Parsed once, from the string itself (no copy): checked here, then handed to
                // the request as it is.
                let uri = http::Uri::try_from(full_url)
                    .map_err(|e| Error::Usage(format!("`{url}` is not a valid URL: {e}")))?;
                check_uri(&uri, url).map_err(Error::Usage)?;
                uri
            }
        };
        let url = preview.url();

        let mut request = http::Request::new(body);
        *request.method_mut() = g.method.clone();
        *request.uri_mut() = uri;
        let map = request.headers_mut();
        map.reserve(headers.len());
        // As `http::request::Builder` would: a value that cannot be a header value is refused
        // at once, naming its input; a bad name (or too many headers) after every value.
        let mut refused: Option<http::Error> = None;
        for h in headers {
            let value = header_value(h.value).map_err(|_| Error::Input {
                name: h.input.unwrap_or(h.name).to_owned(),
                problem: format!(
                    "its value goes in header `{}` and contains characters not allowed in HTTP headers (such as a newline)",
                    h.name
                ),
            })?;
            if refused.is_some() {
                continue;
            }
            match header_name(h.name) {
                Ok(name) => {
                    if let Err(e) = map.try_append(name, value) {
                        refused = Some(e.into());
                    }
                }
                Err(e) => refused = Some(e.into()),
            }
        }
        if let Some(e) = refused {
            return Err(Error::Usage(format!(
                "cannot build the request for `{url}`: {e}"
            )));
        }
        Ok(TokenRequest {
            request,
            preview,
            redacted: std::sync::OnceLock::new(),
        })
    }

    fn endpoint_of(
        &self,
        what: &str,
        g: &RequestTemplate,
    ) -> Result<&crate::spec::Endpoint, Error> {
        self.endpoints
            .get(&g.endpoint)
            .ok_or_else(|| Error::MissingEndpoint {
                spec: self.id.clone(),
                endpoint: g.endpoint.clone(),
                needed_by: format!("`{what}`"),
            })
    }

    /// Caller inputs + defaults, checked against the declarations; borrowed, not copied. And
    /// the endpoint the request goes to.
    fn resolve_inputs<'a>(
        &'a self,
        grant: &str,
        g: &RequestTemplate,
        inputs: &'a Inputs,
    ) -> Result<(Values<'a>, &'a crate::spec::Endpoint), Error> {
        let mut values = Values {
            items: Vec::with_capacity(inputs.iter().size_hint().0 + 2),
        };
        for (name, value) in inputs.iter() {
            let Some(def) = self.inputs.get(name) else {
                return Err(Error::Input {
                    name: name.to_owned(),
                    problem: format!(
                        "not declared by spec `{}` (it declares: {}){}",
                        self.id,
                        join(self.inputs.keys()),
                        crate::error::did_you_mean(name, self.inputs.keys().map(String::as_str))
                    ),
                });
            };
            if let Some(allowed) = &def.allowed
                && !allowed.iter().any(|a| a == value)
            {
                let shown = if def.secret { REDACTED } else { value };
                return Err(Error::Input {
                    name: name.to_owned(),
                    problem: format!("`{shown}` is not one of {}", allowed.join(", ")),
                });
            }
            values.items.push(InputValue {
                name,
                value,
                secret: def.secret,
            });
        }
        for &i in &self.defaulted {
            if let Some((name, def)) = self.inputs.get_index(i)
                && let Some(default) = &def.default
                && !values.contains_key(name)
            {
                values.items.push(InputValue {
                    name,
                    value: default,
                    secret: def.secret,
                });
            }
        }
        let endpoint = self.endpoint_of(grant, g)?;
        for name in g.required.iter().chain(endpoint.tmpl.vars()) {
            if !values.contains_key(name) {
                let def = self.inputs.get(name);
                return Err(Error::MissingInput {
                    name: name.clone(),
                    needed_by: format!("grant `{grant}`"),
                    spec: self.id.clone(),
                    description: def.and_then(|d| d.description.clone()),
                    allowed: def.and_then(|d| d.allowed.clone()),
                });
            }
        }
        Ok((values, endpoint))
    }

    /// A client assertion (RFC 7523 §2.2): `iss` and `sub` the client id, `aud` the spec's
    /// audience or the URL the request goes to, a fresh `jti`, `iat` now and `exp` five
    /// minutes on; signed with the `private_key` input (or the client secret for
    /// `client_secret_jwt`), its `kid` from the `key_id` input when given.
    fn client_assertion(
        &self,
        grant: &str,
        auth: &crate::spec::ClientAuth,
        method: ClientAuthMethod,
        values: &Values<'_>,
        url: &str,
    ) -> Result<String, Error> {
        let key_input = match method {
            ClientAuthMethod::ClientSecretJwt => "client_secret",
            _ => "private_key",
        };
        let missing = |name: &str| Error::MissingInput {
            name: name.to_owned(),
            needed_by: format!("grant `{grant}` ({})", method.as_str()),
            spec: self.id.clone(),
            description: self.inputs.get(name).and_then(|d| d.description.clone()),
            allowed: None,
        };
        let id = values
            .get("client_id")
            .ok_or_else(|| missing("client_id"))?;
        let key = values.get(key_input).ok_or_else(|| missing(key_input))?;
        let audience = match &auth.audience {
            Some(t) => self.render_tmpl(t, values, || "client_auth.audience".to_owned())?,
            None => url.to_owned(),
        };
        let now = crate::template::clock_now();
        let mut claims = serde_json::json!({
            "iss": id,
            "sub": id,
            "aud": audience,
            "jti": crate::template::fresh_uuid(),
            "iat": now,
            "exp": now.saturating_add(300),
        });
        // The spec's claims over the defaults; a whole number is a number (`exp`, `iat`).
        if let Some(map) = claims.as_object_mut() {
            for (name, claim) in &auth.claims {
                match claim {
                    None => {
                        map.remove(name);
                    }
                    Some(t) => {
                        let text =
                            self.render_tmpl(t, values, || format!("client_auth.claims.{name}"))?;
                        let value = match text.trim().parse::<i64>() {
                            Ok(n) => serde_json::Value::from(n),
                            Err(_) => serde_json::Value::String(text),
                        };
                        map.insert(name.clone(), value);
                    }
                }
            }
        }
        crate::jwt::sign(
            &claims,
            &crate::jwt::Signing {
                // No `alg:`: the method's own default. A method chosen by the caller over the
                // spec's signs with that method's default too.
                alg: match (auth.alg.as_str(), method) {
                    ("", ClientAuthMethod::ClientSecretJwt) => "HS256",
                    ("", _) => "RS256",
                    (_, ClientAuthMethod::ClientSecretJwt)
                        if auth.chosen_by.is_none() && method != auth.method =>
                    {
                        "HS256"
                    }
                    (_, ClientAuthMethod::PrivateKeyJwt)
                        if auth.chosen_by.is_none() && method != auth.method =>
                    {
                        "RS256"
                    }
                    (alg, _) => alg,
                },
                key,
                kid: values.get("key_id"),
                x5t_s256: values.get("x5t_s256"),
            },
        )
        .map_err(|problem| Error::Input {
            name: key_input.to_owned(),
            problem,
        })
    }

    /// The endpoint's URL, with every input value percent-encoded unless the input is declared
    /// `verbatim`, and the host the template writes literally kept: an input can fill in a
    /// tenant or a region, but never send the request (and the client's credentials) to
    /// another host.
    fn render_endpoint(
        &self,
        endpoint: &crate::spec::Endpoint,
        name: &str,
        values: &Values<'_>,
    ) -> Result<String, Error> {
        use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
        /// Kept as they are: RFC 3986 unreserved characters, and `:` (a port).
        const IN_URL: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~')
            .remove(b':');
        let vars = endpoint.tmpl.vars();
        if vars.is_empty() {
            return self.render_tmpl(&endpoint.tmpl, values, || format!("endpoint `{name}`"));
        }
        // Only the inputs the URL names, each encoded once.
        let encoded = Encoded(
            vars.iter()
                .filter_map(|k| {
                    let v = values.get(k)?;
                    let verbatim = self.inputs.get(k).is_some_and(|d| d.verbatim);
                    let v = if verbatim {
                        Cow::Borrowed(v)
                    } else {
                        utf8_percent_encode(v, IN_URL).into()
                    };
                    Some((k.as_str(), v))
                })
                .collect(),
        );
        let url = self.render_tmpl(&endpoint.tmpl, &encoded, || format!("endpoint `{name}`"))?;
        let (prefix, suffix) = literal_host_parts(&endpoint.text);
        let authority = url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host_chars = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
        let kept = authority == host
            && host_chars
            && if prefix == suffix && !prefix.is_empty() && !prefix.contains('{') {
                host == prefix
            } else {
                host.len() >= prefix.len() + suffix.len()
                    && host.starts_with(prefix)
                    && host.ends_with(suffix)
            };
        if !kept {
            let credentials = vars
                .iter()
                .any(|v| values.get(v).is_some_and(|x| x.contains('@')));
            // The host is shown only when it is a plain host name: anything else may carry
            // what the user typed by mistake (a password before an `@`).
            let problem = if credentials {
                format!(
                    "gives endpoint `{name}` a URL that has a user name or password; endpoints may carry none"
                )
            } else if host_chars {
                format!(
                    "gives endpoint `{name}` the host `{host}`, which does not fit `{}`",
                    endpoint.text
                )
            } else {
                format!(
                    "gives endpoint `{name}` a host that is not a host name, which does not fit `{}`",
                    endpoint.text
                )
            };
            return Err(Error::Input {
                name: vars.join(", "),
                problem,
            });
        }
        Ok(url)
    }

    fn render_tmpl(
        &self,
        t: &Tmpl,
        values: &impl crate::template::Lookup,
        what: impl Fn() -> String,
    ) -> Result<String, Error> {
        t.render(&self.env, values)
            .map_err(|message| Error::Render {
                what: what(),
                message,
            })
    }

    /// A template's text, borrowed where it is literal or only names an input.
    fn render_value<'a>(
        &'a self,
        t: &'a Tmpl,
        values: &Values<'a>,
        what: impl Fn() -> String,
    ) -> Result<Cow<'a, str>, Error> {
        match t {
            Tmpl::Literal(s) => Ok(Cow::Borrowed(s)),
            Tmpl::Var(v) => values
                .get(v)
                .map(Cow::Borrowed)
                .ok_or_else(|| Error::Render {
                    what: what(),
                    message: format!("input `{v}` is not set"),
                }),
            _ => self.render_tmpl(t, values, what).map(Cow::Owned),
        }
    }

    fn render_parts<'a>(
        &'a self,
        defs: &'a [FieldDef],
        values: &Values<'a>,
        kind: &str,
        size: &mut RequestSize,
    ) -> Result<Vec<Part<'a>>, Error> {
        let grant = size.grant;
        let mut out = Vec::with_capacity(defs.len() + 2);
        for f in defs {
            if f.optional && f.tmpl.vars().iter().any(|v| !values.contains_key(v)) {
                continue;
            }
            let value = self.render_value(&f.tmpl, values, || {
                format!("grant `{grant}` {kind} `{}`", f.name)
            })?;
            size.add(f.name.len() + value.len())?;
            // One part, or one per word for a repeated field: no list for the common case.
            let (single, repeated) = if f.repeat {
                let words: Vec<Cow<'a, str>> = value
                    .split_whitespace()
                    .map(|w| Cow::Owned(w.to_owned()))
                    .collect();
                (None, words)
            } else {
                (Some(value), Vec::new())
            };
            let items = single.into_iter().chain(repeated);
            let input = f.tmpl.vars().first().map(String::as_str);
            let refuse = |problem: &str| Error::Input {
                name: input.unwrap_or(&f.name).to_owned(),
                problem: format!("its value for {kind} `{}` {problem}", f.name),
            };
            for value in items {
                if f.raw
                    && value
                        .bytes()
                        .any(|b| matches!(b, b'&' | b'=' | b'#' | b'%') || !b.is_ascii_graphic())
                {
                    return Err(refuse(
                        "is sent unencoded (`raw: true`) and has a character that would change the request's meaning (&, =, #, %, a space, a control or non-ASCII)",
                    ));
                }
                let typed = match f.kind {
                    FieldType::String => None,
                    FieldType::Number => Some(
                        serde_json::from_str::<serde_json::Number>(value.trim())
                            .map(serde_json::Value::Number)
                            .map_err(|_| refuse("is not a number"))?,
                    ),
                    FieldType::Boolean => match value.trim() {
                        "true" => Some(serde_json::Value::Bool(true)),
                        "false" => Some(serde_json::Value::Bool(false)),
                        _ => return Err(refuse("is not `true` or `false`")),
                    },
                    FieldType::Json => Some(
                        serde_json::from_str::<serde_json::Value>(&value)
                            .map_err(|e| refuse(&format!("is not JSON ({e})")))?,
                    ),
                };
                // An assertion the template signed: previews show its header and claims.
                let shown = if f.secret && f.signs {
                    crate::jwt::redact_signature(&value)
                } else {
                    None
                };
                out.push(Part {
                    input,
                    shown,
                    typed,
                    in_query: f.in_query,
                    raw: f.raw,
                    ..Part::plain(&f.name, value, f.secret)
                });
            }
        }
        Ok(out)
    }
}

/// Input values for one request, borrowed from the caller's inputs and the spec's defaults, in
/// that order. A list found by name: a request has a handful of values (at most one per declared
/// input), and comparing a few short names costs less than hashing them.
struct Values<'a> {
    items: Vec<InputValue<'a>>,
}

/// An input's value, and whether the input is secret.
struct InputValue<'a> {
    name: &'a str,
    value: &'a str,
    secret: bool,
}

impl<'a> Values<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.items.iter().find(|v| v.name == name).map(|v| v.value)
    }

    fn contains_key(&self, name: &str) -> bool {
        self.items.iter().any(|v| v.name == name)
    }
}

impl crate::template::Lookup for Values<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// The values an endpoint URL names, percent-encoded unless verbatim.
struct Encoded<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl crate::template::Lookup for Encoded<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| &**v)
    }
}

/// The literal text a URL template's host starts and ends with: `("", ".example.com")` for
/// `https://{{ tenant }}.example.com/token`, `("", "")` for a host that is all template, and
/// the whole host twice for a literal one.
fn literal_host_parts(template: &str) -> (&str, &str) {
    let Some((_, rest)) = template.split_once("://") else {
        return ("", "");
    };
    let end = crate::spec::host_end(rest);
    let host = &rest[..end];
    match (host.find('{'), host.rfind('}')) {
        (Some(open), Some(close)) => (&host[..open], &host[close + 1..]),
        _ => (host, host),
    }
}

/// The most a rendered request may hold (URL, headers and fields), like the reply cap: a spec
/// or inputs that would build more are refused before it is all built.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The running size of a request being rendered.
struct RequestSize<'a> {
    used: usize,
    grant: &'a str,
}

impl RequestSize<'_> {
    fn add(&mut self, bytes: usize) -> Result<(), Error> {
        self.used = self.used.saturating_add(bytes);
        if self.used > MAX_REQUEST_BYTES {
            return Err(Error::Render {
                what: format!("grant `{}`", self.grant),
                message: format!(
                    "the request would be larger than the limit of {MAX_REQUEST_BYTES} bytes"
                ),
            });
        }
        Ok(())
    }
}

fn set_part<'a>(
    parts: &mut Vec<Part<'a>>,
    name: &'a str,
    value: impl Into<Cow<'a, str>>,
    secret: bool,
) {
    if let Some(p) = parts.iter_mut().find(|p| p.name == name) {
        p.value = value.into();
        p.secret |= secret;
        p.typed = None;
    } else {
        parts.push(Part::plain(name, value, secret));
    }
}

fn shown<'p>(p: &Shown<'p>, redact: bool) -> &'p str {
    if redact && p.secret {
        p.shown.unwrap_or(REDACTED)
    } else {
        p.value
    }
}

fn encode_form<'p>(parts: impl Iterator<Item = Shown<'p>> + Clone, redact: bool) -> String {
    let out = form_bytes(parts, redact);
    // Only ASCII was written: percent-encoded text, and raw values checked to be visible ASCII.
    let out = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if redact {
        out.replace("%5Bredacted%5D", REDACTED)
    } else {
        out
    }
}

/// The parts as an `application/x-www-form-urlencoded` body.
fn form_bytes<'p>(parts: impl Iterator<Item = Shown<'p>> + Clone, redact: bool) -> Vec<u8> {
    // Room for every name and value unencoded, and the separators: one allocation in the
    // common case.
    let mut out = Vec::with_capacity(
        parts
            .clone()
            .map(|p| p.name.len() + p.value.len() + 2)
            .sum(),
    );
    for p in parts {
        if !out.is_empty() {
            out.push(b'&');
        }
        push_form_encoded(&mut out, p.name.as_bytes());
        out.push(b'=');
        let value = shown(&p, redact);
        if p.raw && !(redact && p.secret) {
            out.extend_from_slice(value.as_bytes());
        } else {
            push_form_encoded(&mut out, value.as_bytes());
        }
    }
    out
}

/// Appends `bytes` as the form-urlencoded byte serializer writes them (the WHATWG URL
/// standard's, as `form_urlencoded::byte_serialize`): `*-._`, digits and ASCII letters as they
/// are, a space as `+`, any other byte as `%XX`. A table and runs copied whole: this is most of
/// what building a token request's body costs.
fn push_form_encoded(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if FORM_UNCHANGED[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        if b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
        run = i + 1;
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
}

/// The bytes the form serializer leaves as they are.
const FORM_UNCHANGED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] =
            matches!(b as u8, b'*' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z' | b'_' | b'a'..=b'z');
        b += 1;
    }
    table
};

fn encode_json<'p>(parts: impl Iterator<Item = Shown<'p>>, redact: bool) -> String {
    let map: serde_json::Map<String, serde_json::Value> = parts
        .map(|p| {
            let value = match p.typed {
                Some(typed) if !(redact && p.secret) => typed.clone(),
                _ => serde_json::Value::String(shown(&p, redact).to_owned()),
            };
            (p.name.to_owned(), value)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// An XML body: a field named `a/b` is element `b` inside element `a`; consecutive fields
/// under the same parent share it (`Credentials/User`, `Credentials/Password`).
fn encode_xml<'p>(root: &str, parts: impl Iterator<Item = Shown<'p>>, redact: bool) -> String {
    let mut out = format!("<{root}>");
    let mut open: Vec<&str> = Vec::new();
    for p in parts {
        let mut path: Vec<&str> = p.name.split('/').filter(|s| !s.is_empty()).collect();
        let Some(leaf) = path.pop() else { continue };
        let shared = open.iter().zip(&path).take_while(|(a, b)| a == b).count();
        while open.len() > shared {
            if let Some(name) = open.pop() {
                let _ = write!(out, "</{name}>");
            }
        }
        for name in &path[shared..] {
            let _ = write!(out, "<{name}>");
            open.push(name);
        }
        let v = quick_xml::escape::escape(shown(&p, redact));
        let _ = write!(out, "<{leaf}>{v}</{leaf}>");
    }
    while let Some(name) = open.pop() {
        let _ = write!(out, "</{name}>");
    }
    let _ = write!(out, "</{root}>");
    out
}

/// `url` with `query` added after a `?`, or an `&` when it has a query already.
fn append_query(url: &mut String, query: &str) {
    if query.is_empty() {
        return;
    }
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(query);
}

/// A header's value; the usual ones without copying, and a rendered one moved in.
fn header_value(
    value: Cow<'_, str>,
) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
    use http::HeaderValue;
    const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
    const JSON: HeaderValue = HeaderValue::from_static("application/json");
    const XML: HeaderValue = HeaderValue::from_static("application/xml");
    match value {
        Cow::Borrowed("application/x-www-form-urlencoded") => Ok(FORM),
        Cow::Borrowed("application/json") => Ok(JSON),
        Cow::Borrowed("application/xml") => Ok(XML),
        Cow::Borrowed(s) => HeaderValue::from_str(s),
        Cow::Owned(s) => HeaderValue::try_from(s),
    }
}

/// A header's name; the ones specauth adds itself without parsing.
fn header_name(name: &str) -> Result<http::HeaderName, http::header::InvalidHeaderName> {
    match name {
        "Authorization" => Ok(http::header::AUTHORIZATION),
        "Content-Type" => Ok(http::header::CONTENT_TYPE),
        "Accept" => Ok(http::header::ACCEPT),
        _ => http::HeaderName::from_bytes(name.as_bytes()),
    }
}

fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&{query}")
    } else {
        format!("{url}?{query}")
    }
}

/// `Basic abc…` → `Basic [redacted]`; any other secret header value → `[redacted]`.
fn redact_header(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{scheme} {REDACTED}")
        }
        _ => REDACTED.to_owned(),
    }
}

/// `content-type` → `Content-Type`, for readable previews.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_is_the_form_serializers() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let texts: [&[u8]; 6] = [
            &every_byte,
            b"",
            b"grant_type=refresh_token&x=1",
            "a b+c/é~ü 日本 %20".as_bytes(),
            b"8eb667707535655f2d9e14fc6491a59f6e06f2e73170761259907d8de186b6a1",
            b"  leading and trailing  ",
        ];
        for text in texts {
            let mut ours = Vec::new();
            push_form_encoded(&mut ours, text);
            let theirs: String = form_urlencoded::byte_serialize(text).collect();
            assert_eq!(String::from_utf8(ours).unwrap(), theirs);
        }
    }
}
