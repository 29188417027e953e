//! Signing in to an MCP server (the Model Context Protocol's authorization, built on RFC 9728,
//! RFC 8414, RFC 7591, RFC 8707, RFC 7636 and RFC 9207): from nothing but the server's URL to a
//! cached token, and a spec that refreshes it like any other.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::client::Client;
use crate::discovery;
use crate::error::Error;
use crate::inputs::Inputs;
use crate::secret::Secret;
use crate::spec::Spec;
use crate::transport::Transport;

use super::login::{BrowserLogin, BrowserOptions, LoggedIn};

/// How a client is identified at the server's authorization server, in the order tried.
#[derive(Clone, Debug, Default)]
pub struct McpOptions {
    /// A client id registered beforehand (and its secret, for a confidential client).
    pub client_id: Option<String>,
    /// The secret of `client_id`.
    pub client_secret: Option<Secret>,
    /// An HTTPS URL of a client ID metadata document the user publishes; used as the
    /// client id when the authorization server supports such documents.
    pub client_metadata_url: Option<String>,
    /// A client registered dynamically before with this authorization server (from the spec
    /// a former login wrote): `(issuer, client_id, redirect_uri)`. Used only when its issuer is
    /// the server's, never across issuers.
    pub registered: Option<(String, String, String)>,
    /// The client name sent with dynamic registration.
    pub client_name: String,
    /// Scopes to ask for instead of the ones the server's challenge names.
    pub scope: Option<String>,
    /// The browser login's options.
    pub browser: BrowserOptions,
}

/// What [`mcp_login`] did.
#[derive(Debug)]
pub struct McpLogin {
    /// The token and the inputs it was obtained with.
    pub logged_in: LoggedIn,
    /// A spec for the server's authorization server, with the client id, resource, issuer and
    /// scope as input defaults: written to the user's specs folder, it refreshes the token.
    pub spec_yaml: String,
    /// The spec's id.
    pub spec_id: String,
    /// The spec, loaded.
    pub spec: Spec,
    /// The authorization server's issuer.
    pub issuer: String,
    /// The resource the token is for (the server's canonical URI).
    pub resource: String,
    /// How the client was identified: `pre-registered`, `metadata-document`, `registered`
    /// (dynamically, now) or `reused` (a former dynamic registration).
    pub client_source: &'static str,
}

/// A `WWW-Authenticate` challenge's parameters for the `Bearer` scheme (RFC 6750 §3, RFC 9728
/// §5.1), names lowercased.
///
/// ```
/// let p = specauth::session::bearer_challenge(
///     r#"Bearer error="invalid_token", scope="a b", resource_metadata="https://x.example/.well-known/oauth-protected-resource""#,
/// ).unwrap();
/// assert_eq!(p["scope"], "a b");
/// assert_eq!(p["error"], "invalid_token");
/// ```
pub fn bearer_challenge(header: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let mut rest = header.trim_start();
    let mut params = None;
    while !rest.is_empty() {
        // A scheme token, then its parameters up to the next scheme.
        let end = rest.find([' ', ',']).unwrap_or(rest.len());
        let scheme = &rest[..end];
        rest = rest[end..].trim_start_matches([' ', ',']);
        let mut these = std::collections::BTreeMap::new();
        while let Some(eq) = rest.find('=') {
            let name = rest[..eq].trim();
            if name.is_empty() || name.contains([' ', ',', '"']) {
                break;
            }
            let after = &rest[eq + 1..];
            let (value, left) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut close = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                value.push(e);
                            }
                        }
                        '"' => {
                            close = Some(i);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let close = close?;
                (value, &quoted[close + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            };
            these.insert(name.to_ascii_lowercase(), value);
            rest = left.trim_start_matches([' ', ',']);
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            params = Some(these);
        }
        if rest.len() == header.len() {
            break;
        }
    }
    params
}

/// How many times an MCP login asks again with more scopes after `403 insufficient_scope`.
const MAX_STEP_UPS: usize = 1;

/// Signs in to the MCP server at `server`, in the order the MCP authorization specification
/// asks:
///
/// 1. an unauthenticated request to the server, whose `401` challenge names the protected
///    resource metadata (`resource_metadata`) and the scopes (`scope`);
/// 2. the protected resource metadata (RFC 9728; the well-known path inserted first, then the
///    root), whose `resource` must be `server` and which must stay on the server's origin;
/// 3. the authorization server's metadata (RFC 8414, then OpenID Connect), refused unless its
///    `issuer` is the one the resource names; a server without PKCE `S256` is refused;
/// 4. the client: a pre-registered id, else a client ID metadata document URL (when the
///    server supports them), else a former dynamic registration with this same issuer, else
///    RFC 7591 dynamic registration (`application_type: native`, a loopback redirect URI, no
///    secret), refused when the registration endpoint is on another origin than the issuer;
/// 5. the browser login: PKCE S256, `resource` = the server's URI, the `iss` check; pushed
///    when the server supports PAR;
/// 6. a request to the server with the token; on `403 insufficient_scope` the login runs
///    again once with the union of the scopes.
///
/// `show` is handed each login in progress, to open (or print) its URL.
pub fn mcp_login<T: Transport>(
    client: &Client<T>,
    server: &str,
    options: &McpOptions,
    mut show: impl FnMut(&BrowserLogin),
) -> Result<McpLogin, Error> {
    crate::spec::check_url(server).map_err(Error::Usage)?;
    let transport = client.transport();
    // 1. The challenge.
    let reply = transport.send(probe(server, None)?)?;
    let challenge = match reply.status().as_u16() {
        401 => reply
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(bearer_challenge)
            .unwrap_or_default(),
        status => {
            return Err(Error::Usage(format!(
                "the MCP server at {server} answered HTTP {status} without a token, not 401: it does not ask for OAuth"
            )));
        }
    };
    // 2. Protected resource metadata.
    let (prm_url, prm) = discovery::discover_resource(
        transport,
        server,
        challenge.get("resource_metadata").map(String::as_str),
    )?;
    let resource = server.to_owned();
    let issuer = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find_map(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    // 3. Authorization server metadata.
    let (as_url, metadata) = discovery::discover_issuer(transport, &issuer)?;
    let methods = metadata
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array);
    if !methods.is_some_and(|m| m.iter().any(|v| v == "S256")) {
        return Err(Error::Usage(format!(
            "the authorization server {issuer} does not offer PKCE S256 (code_challenge_methods_supported at {as_url}); refusing to sign in"
        )));
    }
    let mut scopes: BTreeSet<String> = match &options.scope {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => challenge
            .get("scope")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .or_else(|| {
                prm.get("scopes_supported")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
            })
            .unwrap_or_default(),
    };
    // 4. The client.
    let port = match options.browser.port {
        Some(p) => p,
        None => free_port()?,
    };
    let mut redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let (client_id, client_secret, client_source) = if let Some(id) = &options.client_id {
        (id.clone(), options.client_secret.clone(), "pre-registered")
    } else if let Some(url) = options
        .client_metadata_url
        .as_ref()
        .filter(|_| metadata.get("client_id_metadata_document_supported") == Some(&json!(true)))
    {
        if !url.starts_with("https://") {
            return Err(Error::Usage(format!(
                "a client ID metadata document must be at an https:// URL, not `{url}`"
            )));
        }
        (url.clone(), None, "metadata-document")
    } else if let Some((_, id, uri)) = options.registered.as_ref().filter(|(i, _, _)| *i == issuer)
    {
        redirect_uri = uri.clone();
        (id.clone(), None, "reused")
    } else {
        let id = register(
            transport,
            &issuer,
            &metadata,
            &options.client_name,
            &redirect_uri,
        )?;
        (id, None, "registered")
    };
    let mut browser = options.browser.clone();
    browser.port = None;
    let spec_id = format!("mcp-{}", discovery::id_from_issuer(server));
    for step_up in 0..=MAX_STEP_UPS {
        let scope = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
        let mut defaults = vec![
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("resource", resource.as_str()),
        ];
        if !scope.is_empty() {
            defaults.push(("scope", scope.as_str()));
        }
        let spec_yaml = discovery::spec_from_metadata_with(
            &spec_id, &metadata, &as_url, &defaults,
        )?
        .replacen(
            "# Written by `specauth import`",
            &format!("# Written by `specauth login --mcp {server}` (resource metadata {prm_url})"),
            1,
        );
        let spec = Spec::from_yaml(&format!("{spec_id}.yaml"), &spec_yaml)?;
        let mut inputs = Inputs::new();
        if let Some(secret) = &client_secret {
            inputs.set("client_secret", secret.secret());
        }
        // 5. The browser login.
        let login = BrowserLogin::begin(client, &spec, &inputs, &browser)?;
        show(&login);
        let logged_in = login.finish(client, &spec, browser.timeout)?;
        // 6. The token at work; more scopes when the server asks for them.
        let reply = transport.send(probe(server, Some(logged_in.token.access_token.secret()))?)?;
        let challenge = (reply.status().as_u16() == 403)
            .then(|| {
                reply
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(bearer_challenge)
            })
            .flatten()
            .filter(|c| c.get("error").is_some_and(|e| e == "insufficient_scope"));
        match challenge {
            Some(c) if step_up < MAX_STEP_UPS => {
                let more: Vec<String> = c
                    .get("scope")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
                if more.iter().all(|s| scopes.contains(s)) {
                    return Err(Error::Usage(format!(
                        "the MCP server at {server} answers 403 insufficient_scope, but names no scope beyond `{scope}`"
                    )));
                }
                scopes.extend(more);
                tracing::debug!("stepping up to the scopes {scopes:?}");
            }
            Some(_) => {
                return Err(Error::Usage(format!(
                    "the MCP server at {server} still answers 403 insufficient_scope with the scopes `{scope}`"
                )));
            }
            None => {
                return Ok(McpLogin {
                    logged_in,
                    spec_yaml,
                    spec_id,
                    spec,
                    issuer,
                    resource,
                    client_source,
                });
            }
        }
    }
    Err(Error::Usage("the step-up did not end".to_owned()))
}

/// An MCP `initialize` request to `server`, with `token` when given.
fn probe(server: &str, token: Option<&str>) -> Result<http::Request<Vec<u8>>, Error> {
    let body = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": { "name": "specauth", "version": env!("CARGO_PKG_VERSION") } }
    });
    let mut builder = http::Request::post(server)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    builder
        .body(body.to_string().into_bytes())
        .map_err(|e| Error::Usage(format!("`{server}` is not a valid URL: {e}")))
}

/// A free port on 127.0.0.1 for the redirect listener (registered before it listens).
fn free_port() -> Result<u16, Error> {
    crate::loopback::bind(0)
        .map(|(_, port)| port)
        .map_err(|e| Error::Usage(format!("cannot find a free port on 127.0.0.1: {e}")))
}

/// RFC 7591 dynamic registration of a public native client; its `client_id`.
fn register<T: Transport>(
    transport: &T,
    issuer: &str,
    metadata: &Value,
    client_name: &str,
    redirect_uri: &str,
) -> Result<String, Error> {
    let Some(endpoint) = metadata
        .get("registration_endpoint")
        .and_then(Value::as_str)
    else {
        return Err(Error::Usage(format!(
            "the authorization server {issuer} offers no dynamic registration: give a client id registered there (--set client_id=…)"
        )));
    };
    if discovery::origin(endpoint) != discovery::origin(issuer) {
        return Err(Error::Usage(format!(
            "the registration endpoint {endpoint} is on another origin than the issuer {issuer}; refusing to register there"
        )));
    }
    crate::spec::check_url(endpoint).map_err(Error::Usage)?;
    let body = json!({
        "client_name": client_name,
        "application_type": "native",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let request = http::Request::post(endpoint)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|e| Error::Usage(format!("`{endpoint}` is not a valid URL: {e}")))?;
    let reply = transport.send(request)?;
    let status = reply.status().as_u16();
    let value: Option<Value> = serde_json::from_slice(reply.body()).ok();
    let excerpt = || {
        // A registration reply may carry a client secret or a registration access token.
        let mut scrubber = crate::secret::Scrubber::new();
        scrubber.key("registration_access_token");
        scrubber.excerpt(reply.body())
    };
    match value
        .as_ref()
        .and_then(|v| v.get("client_id"))
        .and_then(Value::as_str)
    {
        Some(id) if reply.status().is_success() && !id.is_empty() => Ok(id.to_owned()),
        _ => Err(Error::Reply {
            status,
            problem: format!("dynamic registration at {endpoint} returned no client_id"),
            excerpt: excerpt(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quotes_escapes_and_other_schemes() {
        let p = bearer_challenge(
            r#"DPoP algs="ES256", Bearer realm="a\"b", error=insufficient_scope, scope="x y""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "a\"b");
        assert_eq!(p["error"], "insufficient_scope");
        assert_eq!(p["scope"], "x y");
        assert!(bearer_challenge(r#"Basic realm="x""#).is_none());
        assert!(bearer_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert_eq!(bearer_challenge("Bearer").unwrap().len(), 0);
    }

    type Reply = Result<http::Response<Vec<u8>>, crate::TransportError>;

    /// A server whose authorization server metadata is `as_metadata`; every URL asked for is
    /// recorded.
    fn hostile(
        as_metadata: Value,
        seen: &std::sync::Mutex<Vec<String>>,
    ) -> impl Fn(http::Request<Vec<u8>>) -> Reply + '_ {
        move |r: http::Request<Vec<u8>>| -> Reply {
            let url = r.uri().to_string();
            seen.lock().unwrap().push(url.clone());
            let reply = |status: u16, body: Value| {
                let mut b = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                if status == 401 {
                    b = b.header(
                        "www-authenticate",
                        r#"Bearer error="invalid_token", scope="mcp:tools", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
                    );
                }
                Ok(b.body(body.to_string().into_bytes()).unwrap())
            };
            match url.as_str() {
                "https://mcp.example.com/mcp" => reply(401, json!({})),
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp" => reply(
                    200,
                    json!({ "resource": "https://mcp.example.com/mcp",
                            "authorization_servers": ["https://as.example.com"] }),
                ),
                "https://as.example.com/.well-known/oauth-authorization-server" => {
                    reply(200, as_metadata.clone())
                }
                _ => reply(404, json!({})),
            }
        }
    }

    fn as_metadata(extra: Value) -> Value {
        let mut m = json!({
            "issuer": "https://as.example.com",
            "authorization_endpoint": "https://as.example.com/authorize",
            "token_endpoint": "https://as.example.com/token",
            "code_challenge_methods_supported": ["S256"],
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    fn login_error(metadata: Value) -> (String, Vec<String>) {
        let seen = std::sync::Mutex::new(Vec::new());
        let client = Client::with_transport(hostile(metadata, &seen));
        let options = McpOptions {
            client_name: "t".into(),
            ..McpOptions::default()
        };
        let e = mcp_login(&client, "https://mcp.example.com/mcp", &options, |_| {
            panic!("no browser may be opened")
        })
        .unwrap_err();
        drop(client);
        (e.to_string(), seen.into_inner().unwrap())
    }

    #[test]
    fn a_registration_endpoint_on_another_host_is_refused() {
        let (e, seen) = login_error(as_metadata(
            json!({ "registration_endpoint": "https://evil.example.com/register" }),
        ));
        assert_eq!(
            e,
            "the registration endpoint https://evil.example.com/register is on another origin than the issuer https://as.example.com; refusing to register there"
        );
        assert!(
            !seen
                .iter()
                .any(|u| u.contains("evil") || u.ends_with("/token")),
            "{seen:?}"
        );
    }

    #[test]
    fn a_server_without_s256_is_refused() {
        let (e, seen) = login_error(as_metadata(json!({
            "code_challenge_methods_supported": ["plain"],
            "registration_endpoint": "https://as.example.com/register"
        })));
        assert!(e.contains("does not offer PKCE S256"), "{e}");
        assert!(!seen.iter().any(|u| u.ends_with("/register")), "{seen:?}");
    }

    #[test]
    fn metadata_of_another_issuer_is_refused() {
        let (e, _) = login_error(as_metadata(json!({ "issuer": "https://evil.example.com" })));
        assert!(
            e.contains("names issuer `https://evil.example.com`, not `https://as.example.com`"),
            "{e}"
        );
    }

    /// A well-behaved MCP server and authorization server, scripted: every request is recorded
    /// as `METHOD URL BODY`.
    struct Script {
        as_metadata: Value,
        /// Whether the 401 challenge names `resource_metadata`.
        hint: bool,
        /// Whether the protected resource metadata is only at the root URL (404 at the
        /// path-inserted one).
        root_only: bool,
    }

    const SERVER: &str = "https://mcp.example.com/mcp";
    const PRM_INSERTED: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    const PRM_ROOT: &str = "https://mcp.example.com/.well-known/oauth-protected-resource";

    fn scripted<'a>(
        script: &'a Script,
        seen: &'a std::sync::Mutex<Vec<String>>,
    ) -> impl Fn(http::Request<Vec<u8>>) -> Reply + 'a {
        move |r: http::Request<Vec<u8>>| -> Reply {
            let url = r.uri().to_string();
            seen.lock().unwrap().push(format!(
                "{} {url} {}",
                r.method(),
                String::from_utf8_lossy(r.body())
            ));
            let reply = |status: u16, body: Value| {
                let mut b = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                if status == 401 {
                    let hint = if script.hint {
                        format!(r#", resource_metadata="{PRM_INSERTED}""#)
                    } else {
                        String::new()
                    };
                    b = b.header(
                        "www-authenticate",
                        format!(r#"Bearer error="invalid_token", scope="mcp:tools"{hint}"#),
                    );
                }
                Ok(b.body(body.to_string().into_bytes()).unwrap())
            };
            let prm = json!({ "resource": SERVER,
                              "authorization_servers": ["https://as.example.com"] });
            match url.as_str() {
                SERVER if r.headers().contains_key("authorization") => {
                    reply(200, json!({ "jsonrpc": "2.0", "id": 0, "result": {} }))
                }
                SERVER => reply(401, json!({})),
                PRM_INSERTED if !script.root_only => reply(200, prm),
                PRM_ROOT if script.root_only => reply(200, prm),
                "https://as.example.com/.well-known/oauth-authorization-server" => {
                    reply(200, script.as_metadata.clone())
                }
                "https://as.example.com/register" => reply(201, json!({ "client_id": "dyn-1" })),
                "https://as.example.com/token" => reply(
                    200,
                    json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 300 }),
                ),
                _ => reply(404, json!({})),
            }
        }
    }

    /// What a login that went through did: how the client was identified, the authorization
    /// URL shown, the client id in it, and every request sent.
    struct Done {
        client_source: &'static str,
        url: String,
        client_id: String,
        seen: Vec<String>,
    }

    /// Runs a login against `script` to its end, the test as the browser: the redirect
    /// (code, state, iss) is delivered to the listener as soon as the URL is shown.
    fn login_through(script: &Script, options: McpOptions) -> Done {
        let seen = std::sync::Mutex::new(Vec::new());
        let client = Client::with_transport(scripted(script, &seen));
        let options = McpOptions {
            client_name: "t".into(),
            browser: BrowserOptions {
                timeout: std::time::Duration::from_secs(10),
                ..BrowserOptions::default()
            },
            ..options
        };
        let mut url = String::new();
        let mut browser = None;
        let done = mcp_login(&client, SERVER, &options, |login| {
            url = login.url().to_owned();
            let state = form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            let back = format!(
                "{}?code=c0de&state={state}&iss=https%3A%2F%2Fas.example.com",
                login.redirect_uri()
            );
            browser = Some(std::thread::spawn(move || {
                ureq::get(&back).call().map(|r| r.status().as_u16()).ok()
            }));
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(browser.unwrap().join().unwrap(), Some(200));
        assert_eq!(done.resource, SERVER);
        assert_eq!(done.logged_in.token.access_token.secret(), "at-1");
        drop(client);
        let client_id = form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        Done {
            client_source: done.client_source,
            url,
            client_id,
            seen: seen.into_inner().unwrap(),
        }
    }

    fn script(extra: Value) -> Script {
        Script {
            as_metadata: as_metadata(
                json!({ "registration_endpoint": "https://as.example.com/register" }),
            ),
            hint: true,
            root_only: false,
        }
        .with(extra)
    }

    impl Script {
        fn with(mut self, extra: Value) -> Script {
            for (k, v) in extra.as_object().unwrap() {
                self.as_metadata[k] = v.clone();
            }
            self
        }
    }

    fn registered(seen: &[String]) -> bool {
        seen.iter()
            .any(|r| r.starts_with("POST https://as.example.com/register"))
    }

    /// The body of the code exchange.
    fn exchange(seen: &[String]) -> &str {
        seen.iter()
            .find_map(|r| r.strip_prefix("POST https://as.example.com/token "))
            .expect("a code exchange")
    }

    #[test]
    fn a_pre_registered_client_id_is_used_without_registering() {
        let done = login_through(
            &script(json!({})),
            McpOptions {
                client_id: Some("pre-1".into()),
                ..McpOptions::default()
            },
        );
        assert_eq!(done.client_source, "pre-registered");
        assert_eq!(done.client_id, "pre-1");
        assert!(!registered(&done.seen), "{:?}", done.seen);
        assert!(
            exchange(&done.seen).contains("client_id=pre-1"),
            "{:?}",
            done.seen
        );
        // Control: without it, the same server gets a registration.
        let done = login_through(&script(json!({})), McpOptions::default());
        assert_eq!(
            (done.client_source, done.client_id.as_str()),
            ("registered", "dyn-1")
        );
        assert!(registered(&done.seen));
        assert!(exchange(&done.seen).contains("client_id=dyn-1"));
    }

    #[test]
    fn a_client_id_metadata_document_is_the_client_id_where_supported() {
        let document = "https://app.example.com/specauth-client.json";
        let options = || McpOptions {
            client_metadata_url: Some(document.into()),
            ..McpOptions::default()
        };
        let done = login_through(
            &script(json!({ "client_id_metadata_document_supported": true })),
            options(),
        );
        assert_eq!(done.client_source, "metadata-document");
        assert_eq!(done.client_id, document);
        assert!(!registered(&done.seen), "{:?}", done.seen);
        assert!(
            exchange(&done.seen)
                .contains("client_id=https%3A%2F%2Fapp.example.com%2Fspecauth-client.json"),
            "{:?}",
            done.seen
        );
        // Not advertised: the document is not used, and the client registers.
        let done = login_through(&script(json!({})), options());
        assert_eq!(
            (done.client_source, done.client_id.as_str()),
            ("registered", "dyn-1")
        );
        assert!(!done.url.contains("specauth-client.json"), "{}", done.url);
    }

    #[test]
    fn a_registration_kept_for_another_issuer_is_not_reused() {
        let kept = |issuer: &str| McpOptions {
            registered: Some((
                issuer.into(),
                "old-1".into(),
                "http://127.0.0.1:1/callback".into(),
            )),
            ..McpOptions::default()
        };
        let done = login_through(&script(json!({})), kept("https://other-as.example.com"));
        assert_eq!(
            (done.client_source, done.client_id.as_str()),
            ("registered", "dyn-1")
        );
        assert!(registered(&done.seen), "{:?}", done.seen);
        assert!(
            !done.seen.iter().any(|r| r.contains("old-1")),
            "{:?}",
            done.seen
        );
        // Control: kept for this issuer, it is reused and nothing is registered.
        let done = login_through(&script(json!({})), kept("https://as.example.com"));
        assert_eq!(
            (done.client_source, done.client_id.as_str()),
            ("reused", "old-1")
        );
        assert!(!registered(&done.seen), "{:?}", done.seen);
    }

    #[test]
    fn resource_metadata_missing_at_the_inserted_path_is_read_at_the_root() {
        let done = login_through(
            &Script {
                hint: false,
                root_only: true,
                ..script(json!({}))
            },
            McpOptions::default(),
        );
        let gets: Vec<&str> = done
            .seen
            .iter()
            .filter_map(|r| r.strip_prefix("GET "))
            .map(|r| r.trim_end())
            .collect();
        assert_eq!(
            gets,
            [
                PRM_INSERTED,
                PRM_ROOT,
                "https://as.example.com/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(done.client_source, "registered");
    }
}
