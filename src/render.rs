//! Spec + grant + inputs → the exact HTTP request (sans-IO: nothing here touches the network).

use std::fmt::Write as _;

use indexmap::IndexMap;

use crate::error::Error;
use crate::inputs::Inputs;
use crate::secret::{REDACTED, Scrubber};
use crate::spec::{
    Body, BodyEncoding, ClientAuthMethod, FieldDef, FieldType, RequestKind, RequestTemplate, Spec,
    check_uri, join,
};
use crate::template::{Tmpl, basic_credentials};

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

/// What the redacted preview is made of.
struct Preview {
    method: http::Method,
    /// The endpoint URL, before any query the body encoding adds.
    url: String,
    encoding: BodyEncoding,
    xml_root: Option<String>,
    headers: Vec<Part>,
    fields: Vec<Part>,
    /// Fields sent in the query string whatever the body encoding (`in: query`).
    query: Vec<Part>,
    /// Values of the secret inputs, scrubbed from the text whatever path they took.
    secrets: Vec<String>,
}

impl Preview {
    fn text(&self) -> String {
        let shown_url = with_query(&self.url, &encode_form(&self.query, true));
        let shown_url = match self.encoding {
            BodyEncoding::Query => with_query(&shown_url, &encode_form(&self.fields, true)),
            _ => shown_url,
        };
        let body = match self.encoding {
            BodyEncoding::Form => encode_form(&self.fields, true),
            BodyEncoding::Json => encode_json(&self.fields, true),
            BodyEncoding::Xml => encode_xml(
                self.xml_root.as_deref().unwrap_or("request"),
                &self.fields,
                true,
            ),
            BodyEncoding::Query | BodyEncoding::None => String::new(),
        };
        let mut text = format!("{} {}\n", self.method, shown_url);
        for h in &self.headers {
            let shown = if h.secret {
                redact_header(&h.value)
            } else {
                h.value.clone()
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
        for secret in &self.secrets {
            scrubber.secret(secret);
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

/// A value with whether it must be hidden in previews.
struct Part {
    name: String,
    value: String,
    secret: bool,
    /// The input the value came from, for errors about it.
    input: Option<String>,
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

impl Part {
    fn plain(name: impl Into<String>, value: impl Into<String>, secret: bool) -> Part {
        Part {
            name: name.into(),
            value: value.into(),
            secret,
            input: None,
            shown: None,
            typed: None,
            in_query: false,
            raw: false,
        }
    }
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
        self.render_inner(kind.into(), inputs, None)
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
        self.render_inner(kind.into(), inputs, Some(method))
    }

    fn render_inner(
        &self,
        kind: RequestKind,
        inputs: &Inputs,
        client_auth: Option<ClientAuthMethod>,
    ) -> Result<TokenRequest, Error> {
        let g = self.template(&kind)?;
        let grant = kind.name();
        let values = self.resolve_inputs(grant, g, inputs)?;
        let endpoint = self.endpoint_of(grant, g)?;
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
        let secret = values.get("client_secret").copied();
        let id = values.get("client_id").copied();
        let wants_basic = matches!(
            method,
            ClientAuthMethod::Basic | ClientAuthMethod::Both | ClientAuthMethod::Auto
        );
        let wants_post = matches!(method, ClientAuthMethod::Post | ClientAuthMethod::Both);
        if let Some(id) = id {
            match (wants_basic, secret) {
                (true, Some(secret)) => headers.push(Part {
                    input: Some("client_id".into()),
                    ..Part::plain(
                        "Authorization",
                        format!(
                            "Basic {}",
                            basic_credentials(id, secret, auth.form_encode_basic)
                        ),
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
            set_part(&mut fields, "client_assertion", &assertion, true);
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

        let (query, fields): (Vec<Part>, Vec<Part>) = fields.into_iter().partition(|p| p.in_query);
        let url_with_query = with_query(&url, &encode_form(&query, false));
        let (full_url, body) = match encoding {
            BodyEncoding::Query => (
                with_query(&url_with_query, &encode_form(&fields, false)),
                Vec::new(),
            ),
            BodyEncoding::None => (url_with_query, Vec::new()),
            BodyEncoding::Form => (url_with_query, encode_form(&fields, false).into_bytes()),
            BodyEncoding::Json => (url_with_query, encode_json(&fields, false).into_bytes()),
            BodyEncoding::Xml => {
                let root = g.xml_root.as_deref().ok_or_else(|| {
                    Error::Usage(format!(
                        "grant `{grant}` selected an xml body but the spec has no `xml_root`"
                    ))
                })?;
                (
                    url_with_query,
                    encode_xml(root, &fields, false).into_bytes(),
                )
            }
        };
        // Parsed once: checked here, then handed to the request as it is.
        let uri: http::Uri = full_url
            .parse()
            .map_err(|e| Error::Usage(format!("`{url}` is not a valid URL: {e}")))?;
        check_uri(&uri, &url).map_err(Error::Usage)?;

        let mut builder = http::Request::builder().method(g.method.clone()).uri(uri);
        for h in &headers {
            let value = http::HeaderValue::from_str(&h.value).map_err(|_| Error::Input {
                name: h.input.clone().unwrap_or_else(|| h.name.clone()),
                problem: format!(
                    "its value goes in header `{}` and contains characters not allowed in HTTP headers (such as a newline)",
                    h.name
                ),
            })?;
            builder = builder.header(h.name.as_str(), value);
        }
        let request = builder
            .body(body)
            .map_err(|e| Error::Usage(format!("cannot build the request for `{url}`: {e}")))?;
        let secrets = values
            .iter()
            .filter(|(name, _)| self.inputs.get(**name).is_some_and(|d| d.secret))
            .map(|(_, value)| (*value).to_owned())
            .collect();
        Ok(TokenRequest {
            request,
            preview: Preview {
                method: g.method.clone(),
                url,
                encoding,
                xml_root: g.xml_root.clone(),
                headers,
                fields,
                query,
                secrets,
            },
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

    /// Caller inputs + defaults, checked against the declarations; borrowed, not copied.
    fn resolve_inputs<'a>(
        &'a self,
        grant: &str,
        g: &RequestTemplate,
        inputs: &'a Inputs,
    ) -> Result<Values<'a>, Error> {
        let mut values = Values::default();
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
            values.insert(name, value);
        }
        for (name, def) in &self.inputs {
            if let (false, Some(default)) = (values.contains_key(name.as_str()), &def.default) {
                values.insert(name.as_str(), default.as_str());
            }
        }
        let endpoint_vars = self.endpoint_of(grant, g)?.tmpl.vars();
        for name in g.required.iter().chain(endpoint_vars) {
            if !values.contains_key(name.as_str()) {
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
        Ok(values)
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
            .copied()
            .ok_or_else(|| missing("client_id"))?;
        let key = values
            .get(key_input)
            .copied()
            .ok_or_else(|| missing(key_input))?;
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
                kid: values.get("key_id").copied(),
                x5t_s256: values.get("x5t_s256").copied(),
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
        let encoded: IndexMap<&str, std::borrow::Cow<'_, str>> = values
            .iter()
            .map(|(k, v)| {
                let verbatim = self.inputs.get(*k).is_some_and(|d| d.verbatim);
                let v = if verbatim {
                    std::borrow::Cow::Borrowed(*v)
                } else {
                    utf8_percent_encode(v, IN_URL).into()
                };
                (*k, v)
            })
            .collect();
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
                .any(|v| values.get(v.as_str()).is_some_and(|x| x.contains('@')));
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

    fn render_parts(
        &self,
        defs: &[FieldDef],
        values: &Values<'_>,
        kind: &str,
        size: &mut RequestSize,
    ) -> Result<Vec<Part>, Error> {
        let grant = size.grant;
        let mut out = Vec::with_capacity(defs.len() + 2);
        for f in defs {
            if f.optional
                && f.tmpl
                    .vars()
                    .iter()
                    .any(|v| !values.contains_key(v.as_str()))
            {
                continue;
            }
            let value = self.render_tmpl(&f.tmpl, values, || {
                format!("grant `{grant}` {kind} `{}`", f.name)
            })?;
            size.add(f.name.len() + value.len())?;
            // One part, or one per word for a repeated field: no list for the common case.
            let (single, repeated) = if f.repeat {
                let words: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
                (None, words)
            } else {
                (Some(value), Vec::new())
            };
            let items = single.into_iter().chain(repeated);
            let input = f.tmpl.vars().first().cloned();
            let refuse = |problem: &str| Error::Input {
                name: input.clone().unwrap_or_else(|| f.name.clone()),
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
                    input: input.clone(),
                    shown,
                    typed,
                    in_query: f.in_query,
                    raw: f.raw,
                    ..Part::plain(f.name.clone(), value, f.secret)
                });
            }
        }
        Ok(out)
    }
}

/// Input values for one request, borrowed from the caller's inputs and the spec's defaults.
type Values<'a> = crate::spec::Map<&'a str, &'a str>;

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

fn set_part(parts: &mut Vec<Part>, name: &str, value: &str, secret: bool) {
    if let Some(p) = parts.iter_mut().find(|p| p.name == name) {
        p.value = value.to_owned();
        p.secret |= secret;
        p.typed = None;
    } else {
        parts.push(Part::plain(name, value, secret));
    }
}

fn shown(p: &Part, redact: bool) -> &str {
    if redact && p.secret {
        p.shown.as_deref().unwrap_or(REDACTED)
    } else {
        &p.value
    }
}

fn encode_form(parts: &[Part], redact: bool) -> String {
    // Room for every name and value unencoded, and the separators: one allocation in the
    // common case.
    let mut out =
        String::with_capacity(parts.iter().map(|p| p.name.len() + p.value.len() + 2).sum());
    for p in parts {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(form_urlencoded::byte_serialize(p.name.as_bytes()));
        out.push('=');
        let value = shown(p, redact);
        if p.raw && !(redact && p.secret) {
            out.push_str(value);
        } else {
            out.extend(form_urlencoded::byte_serialize(value.as_bytes()));
        }
    }
    if redact {
        out.replace("%5Bredacted%5D", REDACTED)
    } else {
        out
    }
}

fn encode_json(parts: &[Part], redact: bool) -> String {
    let map: serde_json::Map<String, serde_json::Value> = parts
        .iter()
        .map(|p| {
            let value = match &p.typed {
                Some(typed) if !(redact && p.secret) => typed.clone(),
                _ => serde_json::Value::String(shown(p, redact).to_owned()),
            };
            (p.name.clone(), value)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// An XML body: a field named `a/b` is element `b` inside element `a`; consecutive fields
/// under the same parent share it (`Credentials/User`, `Credentials/Password`).
fn encode_xml(root: &str, parts: &[Part], redact: bool) -> String {
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
        let v = quick_xml::escape::escape(shown(p, redact));
        let _ = write!(out, "<{leaf}>{v}</{leaf}>");
    }
    while let Some(name) = open.pop() {
        let _ = write!(out, "</{name}>");
    }
    let _ = write!(out, "</{root}>");
    out
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
