//! The browser login: PKCE (RFC 7636), a random `state`, a listener on 127.0.0.1 that receives
//! the authorization redirect (RFC 8252 §7.3), and the code exchange.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use crate::client::Client;
use crate::dpop::DpopKey;
use crate::error::{Error, ProviderError, TransportError, TransportErrorKind};
use crate::inputs::Inputs;
use crate::secret::Secret;
use crate::spec::{RequestKind, Spec};
use crate::token::{Outcome, Token};
use crate::transport::Transport;

/// Characters of a PKCE verifier and of `state` (RFC 7636 §4.1 "unreserved").
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A random string of `len` unreserved characters from the OS's random source.
pub fn random_string(len: usize) -> Result<String, Error> {
    // 66 symbols: bytes at or above the largest multiple of 66 are rejected, so every
    // character is equally likely.
    let limit = (256 / UNRESERVED.len() * UNRESERVED.len()) as u8;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Usage(format!("no randomness from the OS: {e}")))?;
        for b in bytes.into_iter().filter(|b| *b < limit) {
            if out.len() == len {
                break;
            }
            out.push(UNRESERVED[b as usize % UNRESERVED.len()] as char);
        }
    }
    Ok(out)
}

/// A PKCE verifier and its S256 challenge.
///
/// ```
/// let p = specauth::session::Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// // RFC 7636 Appendix B
/// assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// assert_eq!(p.method(), "S256");
/// ```
#[derive(Clone, Debug)]
pub struct Pkce {
    verifier: Secret,
    challenge: String,
}

impl Pkce {
    /// A fresh verifier of 64 random characters.
    pub fn new() -> Result<Pkce, Error> {
        Ok(Pkce::from_verifier(&random_string(64)?))
    }

    /// The PKCE pair for a given verifier.
    pub fn from_verifier(verifier: &str) -> Pkce {
        let digest = sha2::Sha256::digest(verifier.as_bytes());
        Pkce {
            verifier: Secret::new(verifier),
            challenge: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        }
    }

    /// The verifier, sent with the code exchange.
    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }

    /// BASE64URL(SHA256(verifier)), sent with the authorization request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// `S256`.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

/// Listens on 127.0.0.1 for the authorization redirect.
///
/// Only what a browser sends is served: a `GET` whose request head arrives within 2 s of
/// connecting and fits in 8 KiB. Request bodies are never read, every answer closes its
/// connection, and connections are served side by side, so a silent, slow or oversized client
/// cannot hold up the redirect or keep [`wait_for_code`](Self::wait_for_code) past its
/// timeout.
pub struct RedirectListener {
    listener: TcpListener,
    port: u16,
    path: String,
}

impl std::fmt::Debug for RedirectListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectListener")
            .field("port", &self.port)
            .field("path", &self.path)
            .finish()
    }
}

/// How long a connection has to send its request head, from when it is accepted.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request head read; a longer one is answered 431.
const MAX_HEAD: usize = 8 * 1024;
/// Header lines parsed per request; more are answered 431.
const MAX_HEADERS: usize = 64;
/// Connections waiting for their head at once; a new one beyond this drops the oldest.
const MAX_PENDING: usize = 32;
/// How long the listener sleeps when no connection made progress.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>specauth</title>\
<p>Signed in. You can close this tab and return to the terminal.</p>";

/// A connection whose request head is still arriving.
struct Pending {
    stream: TcpStream,
    head: Vec<u8>,
    deadline: Instant,
}

/// What a pending connection has sent so far.
enum Head {
    /// Not all of it yet.
    Partial,
    /// A whole head: its method and request target.
    Complete { method: String, target: String },
    /// Something to refuse with this status.
    Refused(u16),
    /// The client went away.
    Gone,
}

impl RedirectListener {
    /// Binds `127.0.0.1:port` (0 picks a free port); the redirect is expected at `path`.
    pub fn bind(port: u16, path: &str) -> Result<RedirectListener, Error> {
        let (listener, port) = crate::loopback::bind(port)
            .and_then(|(listener, port)| {
                listener.set_nonblocking(true)?;
                Ok((listener, port))
            })
            .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(RedirectListener {
            listener,
            port,
            path,
        })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/PATH`, the `redirect_uri` to register and send.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    /// Waits for the redirect carrying `state`, and returns its `code`.
    ///
    /// A redirect with `?error=` is the provider's refusal ([`Error::Provider`], status 302:
    /// it arrived as a redirect). Requests to other paths are answered 404, with another
    /// `state` 400, with another method than `GET` 405, and ignored, so a stray request cannot
    /// end (or hijack) the login. After `timeout`, a [`TransportErrorKind::Timeout`] error.
    /// An empty `state` accepts a redirect without one, for a provider that returns none
    /// (`authorize.redirect.state: false`).
    pub fn wait_for_code(&self, state: &str, timeout: Duration) -> Result<Secret, Error> {
        self.wait_for_redirect(state, "code", timeout)
            .map(|r| r.code)
    }

    /// [`RedirectListener::wait_for_code`] for a provider whose redirect carries the code under
    /// `code_param`, with every other parameter of the redirect (besides `state`) kept.
    pub fn wait_for_redirect(
        &self,
        state: &str,
        code_param: &str,
        timeout: Duration,
    ) -> Result<Redirect, Error> {
        let deadline = Instant::now() + timeout;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!(
                        "no authorization redirect reached {} within {} s",
                        self.redirect_uri(),
                        timeout.as_secs()
                    ),
                )
                .into());
            }
            let mut progress = self.accept_into(&mut pending, now);
            let mut i = 0;
            while i < pending.len() {
                let head = match pending.get_mut(i) {
                    // Too slow to say what it wants: closed without an answer.
                    Some(p) if now >= p.deadline => Head::Gone,
                    Some(p) => read_head(p),
                    None => break,
                };
                if matches!(head, Head::Partial) {
                    i += 1;
                    continue;
                }
                progress = true;
                let Some(p) = pending.remove(i) else { break };
                let answer = match head {
                    Head::Complete { method, target } => {
                        self.answer(p.stream, &method, &target, state, code_param)
                    }
                    Head::Refused(status) => {
                        let text = if status == 431 {
                            "The request is too large."
                        } else {
                            "Bad request."
                        };
                        respond(p.stream, status, "", &page_html(text));
                        None
                    }
                    Head::Partial | Head::Gone => None,
                };
                if let Some(result) = answer {
                    return result;
                }
            }
            if !progress {
                std::thread::sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(now)));
            }
        }
    }

    /// Accepts every connection waiting; whether there was any.
    fn accept_into(&self, pending: &mut VecDeque<Pending>, now: Instant) -> bool {
        let mut any = false;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    any = true;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if pending.len() >= MAX_PENDING {
                        pending.pop_front();
                    }
                    pending.push_back(Pending {
                        stream,
                        head: Vec::new(),
                        deadline: now + HEAD_TIMEOUT,
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                    ) => {}
                // Nothing waiting, or a passing shortage (of file descriptors): next round.
                Err(_) => return any,
            }
        }
    }

    /// Answers one request; the login's result when the request ends it.
    fn answer(
        &self,
        stream: TcpStream,
        method: &str,
        target: &str,
        state: &str,
        code_param: &str,
    ) -> Option<Result<Redirect, Error>> {
        if method != "GET" {
            let html = page_html("Only GET is answered here.");
            respond(stream, 405, "Allow: GET\r\n", &html);
            return None;
        }
        let Ok(uri) = target.parse::<http::Uri>() else {
            respond(stream, 400, "", &page_html("Bad request."));
            return None;
        };
        if uri.path() != self.path {
            respond(stream, 404, "", &page_html("Not found."));
            return None;
        }
        let params: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        // An empty `state`: the provider returns none (`authorize.redirect.state: false`).
        if !state.is_empty() && get("state").as_deref() != Some(state) {
            let html = page_html(
                "This redirect does not belong to the login in progress (state mismatch).",
            );
            respond(stream, 400, "", &html);
            return None;
        }
        if let Some(code) = get("error") {
            let message = get("error_description");
            let html = page_html(&format!(
                "Sign-in failed: {}",
                message.as_deref().unwrap_or(&code)
            ));
            respond(stream, 400, "", &html);
            return Some(Err(Error::from(ProviderError {
                status: 302,
                code: Some(code),
                message,
                hint: None,
                uri: get("error_uri"),
                extra: serde_json::Map::new(),
            })));
        }
        match get(code_param) {
            Some(code) if !code.is_empty() => {
                respond(stream, 200, "", DONE_PAGE);
                let params = params
                    .into_iter()
                    .filter(|(k, _)| k != code_param && k != "state")
                    .collect();
                Some(Ok(Redirect {
                    code: Secret::new(code),
                    params,
                }))
            }
            _ => {
                respond(stream, 400, "", &page_html("The redirect carries no code."));
                None
            }
        }
    }
}

/// Reads what the connection has sent, up to [`MAX_HEAD`] bytes, without waiting.
fn read_head(p: &mut Pending) -> Head {
    let mut chunk = [0u8; 2048];
    loop {
        let room = MAX_HEAD.saturating_sub(p.head.len()).min(chunk.len());
        match p.stream.read(&mut chunk[..room]) {
            Ok(0) => return Head::Gone,
            Ok(n) => {
                p.head.extend_from_slice(&chunk[..n]);
                let head = parse_head(&p.head);
                if !matches!(head, Head::Partial) {
                    return head;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Head::Partial,
            Err(_) => return Head::Gone,
        }
    }
}

/// The request line of a head, once the head is whole; the body is never looked at.
fn parse_head(bytes: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => match (request.method, request.path) {
            (Some(method), Some(target)) => Head::Complete {
                method: method.to_owned(),
                target: target.to_owned(),
            },
            _ => Head::Refused(400),
        },
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD => Head::Refused(431),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Refused(431),
        Err(_) => Head::Refused(400),
    }
}

/// Writes a whole answer and closes the connection. The client may be gone: nothing to do
/// about it here.
fn respond(mut stream: TcpStream, status: u16, extra_headers: &str, html: &str) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra_headers}\r\n{html}",
        html.len()
    );
    // Blocking, but bounded: an answer this small fits in the socket's buffer.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(HEAD_TIMEOUT));
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// A short page saying `text`.
fn page_html(text: &str) -> String {
    let escaped = quick_xml::escape::escape(text);
    format!("<!doctype html><meta charset=utf-8><title>specauth</title><p>{escaped}</p>")
}

/// What the authorization redirect brought back: the code, and its other query parameters
/// (besides `state`). `Debug` shows the parameters' names only.
pub struct Redirect {
    /// The authorization code.
    pub code: Secret,
    /// The redirect's other parameters, in order.
    pub params: Vec<(String, String)>,
}

impl Redirect {
    /// The value of parameter `name`, when the redirect has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redirect")
            .field("code", &self.code)
            .field(
                "params",
                &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// How a browser login listens and how long it waits.
#[derive(Clone, Debug)]
pub struct BrowserOptions {
    /// The listener's port on 127.0.0.1. `None`: the port of the `redirect_uri` input when one
    /// is given, else a free port.
    pub port: Option<u16>,
    /// How long to wait for the redirect. Default 300 s.
    pub timeout: Duration,
    /// Bind the token to a fresh DPoP key (RFC 9449), kept with the cached token. Default off.
    pub dpop: bool,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            port: None,
            timeout: Duration::from_secs(300),
            dpop: false,
        }
    }
}

/// A token from a login, and the inputs it was obtained with (the `redirect_uri` the listener
/// chose included), for the cache.
#[derive(Debug)]
pub struct LoggedIn {
    /// The token.
    pub token: Token,
    /// The inputs of the code exchange.
    pub inputs: Inputs,
    /// The DPoP key the token is bound to, when the login asked for one and the server bound
    /// the token to it (`token_type: DPoP`). `None` when the server answered `Bearer`: the
    /// token is then a plain bearer token (see [`crate::dpop::binds`]).
    pub dpop_key: Option<DpopKey>,
}

/// A browser login in progress: the listener is bound and the authorization URL built.
///
/// [`browser_login`] runs it in one call; use this to show the URL your own way between
/// [`BrowserLogin::start`] and [`BrowserLogin::finish`].
#[derive(Debug)]
pub struct BrowserLogin {
    listener: RedirectListener,
    state: String,
    pkce: Pkce,
    /// The issuer the redirect's `iss` must equal (RFC 9207), recorded with the verifier.
    expected_issuer: Option<String>,
    /// Whether the server always sends `iss`, so a redirect without it is refused.
    iss_required: bool,
    inputs: Inputs,
    /// What the authorization request sent, for a push (RFC 9126).
    auth_inputs: Inputs,
    url: String,
    dpop: Option<DpopKey>,
}

/// An input's value, or the spec's default for it.
pub(crate) fn input_or_default(spec: &Spec, inputs: &Inputs, name: &str) -> Option<String> {
    inputs.get(name).map(str::to_owned).or_else(|| {
        spec.inputs()
            .find(|(n, _)| *n == name)
            .and_then(|(_, d)| d.default.clone())
    })
}

impl BrowserLogin {
    /// Binds the redirect listener, draws `state` and the PKCE verifier, and builds the
    /// authorization URL.
    pub fn start(
        spec: &Spec,
        inputs: &Inputs,
        options: &BrowserOptions,
    ) -> Result<BrowserLogin, Error> {
        if !spec.supports(&RequestKind::Authorization) {
            return Err(Error::MissingEndpoint {
                spec: spec.id().to_owned(),
                endpoint: "authorize".to_owned(),
                needed_by: "a browser login".to_owned(),
            });
        }
        let mut inputs = inputs.clone();
        // Listen where the registered redirect_uri points, when one is given.
        let (port, path) = match inputs.get("redirect_uri") {
            Some(uri) => loopback_port_and_path(uri)?,
            None => (0, "/callback".to_owned()),
        };
        let listener = RedirectListener::bind(options.port.unwrap_or(port), &path)?;
        if inputs.get("redirect_uri").is_none() || options.port.is_some() {
            inputs.set("redirect_uri", listener.redirect_uri());
        }
        let state = random_string(32)?;
        let pkce = Pkce::new()?;
        let declares = |name: &str| spec.inputs().any(|(n, _)| n == name);
        let mut auth_inputs = inputs.clone();
        auth_inputs.set("state", &state);
        if declares("code_challenge") {
            auth_inputs.set("code_challenge", pkce.challenge());
            auth_inputs.set("code_challenge_method", pkce.method());
        }
        let url = spec
            .render(RequestKind::Authorization, &auth_inputs)?
            .http()
            .uri()
            .to_string();
        let expected_issuer = input_or_default(spec, &inputs, "issuer").filter(|i| !i.is_empty());
        let iss_required = input_or_default(
            spec,
            &inputs,
            "authorization_response_iss_parameter_supported",
        )
        .as_deref()
            == Some("true");
        let dpop = if options.dpop {
            Some(DpopKey::generate()?)
        } else {
            None
        };
        Ok(BrowserLogin {
            listener,
            state,
            pkce,
            expected_issuer,
            iss_required,
            inputs,
            auth_inputs,
            url,
            dpop,
        })
    }

    /// [`BrowserLogin::start`], then, when the spec declares a pushed authorization request
    /// endpoint (RFC 9126), pushes the authorization parameters there (with client
    /// authentication) and points the URL at the reference it gets back: only `client_id` and
    /// `request_uri` travel through the browser. When the spec says the server requires pushed
    /// requests (`require_pushed_authorization_requests`) and it declares no such endpoint,
    /// nothing is sent and the login is refused.
    pub fn begin<T: Transport>(
        client: &Client<T>,
        spec: &Spec,
        inputs: &Inputs,
        options: &BrowserOptions,
    ) -> Result<BrowserLogin, Error> {
        let mut login = BrowserLogin::start(spec, inputs, options)?;
        if spec.supports(&RequestKind::PushedAuthorization) {
            login.push(client, spec)?;
        } else if input_or_default(spec, inputs, "require_pushed_authorization_requests").as_deref()
            == Some("true")
        {
            return Err(Error::MissingEndpoint {
                spec: spec.id().to_owned(),
                endpoint: "pushed_authorization_request".to_owned(),
                needed_by:
                    "a login at a server that requires pushed authorization requests (RFC 9126)"
                        .to_owned(),
            });
        }
        Ok(login)
    }

    /// Pushes the authorization parameters (RFC 9126 §2) and replaces the URL with the
    /// authorization endpoint, `client_id` and the `request_uri` the server returned.
    pub fn push<T: Transport>(&mut self, client: &Client<T>, spec: &Spec) -> Result<(), Error> {
        let pushed = match client.send(spec, RequestKind::PushedAuthorization, &self.auth_inputs)? {
            Outcome::PushedAuthorization(p) => p,
            other => {
                return Err(Error::Usage(format!(
                    "the pushed authorization request returned {} instead of a request_uri",
                    other.name()
                )));
            }
        };
        let endpoint = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        let client_id = input_or_default(spec, &self.auth_inputs, "client_id").unwrap_or_default();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client_id)
            .append_pair("request_uri", &pushed.request_uri)
            .finish();
        self.url = format!("{endpoint}?{query}");
        Ok(())
    }

    /// The issuer the redirect's `iss` is checked against (RFC 9207), when known.
    pub fn expected_issuer(&self) -> Option<&str> {
        self.expected_issuer.as_deref()
    }

    /// The URL to open in a browser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the listener waits for the redirect.
    pub fn redirect_uri(&self) -> String {
        self.listener.redirect_uri()
    }

    /// Waits for the redirect (its `state` checked) and exchanges the code for a token.
    pub fn finish<T: Transport>(
        self,
        client: &Client<T>,
        spec: &Spec,
        timeout: Duration,
    ) -> Result<LoggedIn, Error> {
        let expected_state = if spec.redirect_has_state() {
            self.state.as_str()
        } else {
            ""
        };
        let redirect =
            self.listener
                .wait_for_redirect(expected_state, spec.redirect_code_param(), timeout)?;
        check_iss(
            self.expected_issuer.as_deref(),
            self.iss_required,
            redirect.get("iss"),
        )?;
        // Values the provider sends back with the code (a realm, a regional host) are inputs of
        // the exchange, and of every refresh after it.
        let mut inputs = self.inputs;
        for (input, param) in spec.redirect_inputs() {
            match redirect.get(param) {
                Some(value) => inputs.set(input, value),
                None if inputs.contains(input) => {}
                None => {
                    return Err(Error::Input {
                        name: input.to_owned(),
                        problem: format!(
                            "the authorization redirect carries no `{param}`, which the spec takes it from"
                        ),
                    });
                }
            }
        }
        let mut token_inputs = inputs.clone();
        token_inputs.set("code", redirect.code.secret());
        // Some providers want `state` again in the code exchange; a spec that does not send it
        // ignores it.
        token_inputs.set("state", &self.state);
        if spec.inputs().any(|(n, _)| n == "code_verifier") {
            token_inputs.set("code_verifier", self.pkce.verifier().secret());
        }
        let token = match &self.dpop {
            Some(key) => crate::dpop::send(
                client,
                spec,
                "authorization_code",
                &token_inputs,
                key,
                &mut None,
            )?
            .into_token()
            .ok_or_else(|| Error::Usage("the code exchange returned no token".to_owned()))?,
            None => client.token(spec, "authorization_code", &token_inputs)?,
        };
        // A server that did not bind the token (it answered `Bearer`) gets no DPoP headers
        // later: the key is dropped and the token is a bearer token.
        let dpop_key = self.dpop.filter(|_| {
            let bound = crate::dpop::binds(&token);
            if !bound {
                tracing::warn!(
                    "a DPoP login got token_type `{}`: the server did not bind the token to the key; it is a bearer token",
                    token.token_type
                );
            }
            bound
        });
        Ok(LoggedIn {
            token,
            inputs,
            dpop_key,
        })
    }
}

/// RFC 9207 §2.4: the `iss` of an authorization response must be the expected issuer, compared
/// as strings (no normalisation: a trailing slash differs); a response without `iss` is
/// refused when the server says it always sends one. Checked before the code is redeemed.
pub fn check_iss(expected: Option<&str>, required: bool, came: Option<&str>) -> Result<(), Error> {
    let refuse = |problem: String| Error::Reply {
        status: 302,
        problem: format!(
            "{problem} (RFC 9207: a mix-up attack, or the wrong server); the code was not redeemed"
        ),
        excerpt: came.map(|c| format!("iss={c}")).unwrap_or_default(),
    };
    match (expected, came) {
        (Some(want), Some(got)) if want != got => Err(refuse(format!(
            "the authorization response came from issuer `{got}`, but `{want}` was expected"
        ))),
        (want, None) if required => Err(refuse(format!(
            "the authorization response carries no `iss`, but the server{} always sends one",
            want.map(|w| format!(" `{w}`")).unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

/// The browser login in one call: starts it, hands the authorization URL to `show` (open a
/// browser, print it), waits for the redirect and exchanges the code.
pub fn browser_login<T: Transport>(
    client: &Client<T>,
    spec: &Spec,
    inputs: &Inputs,
    options: &BrowserOptions,
    show: impl FnOnce(&str),
) -> Result<LoggedIn, Error> {
    let login = BrowserLogin::begin(client, spec, inputs, options)?;
    show(login.url());
    login.finish(client, spec, options.timeout)
}

/// The port and path of a loopback `redirect_uri`; any other redirect cannot reach us.
fn loopback_port_and_path(uri: &str) -> Result<(u16, String), Error> {
    let parsed: http::Uri = uri.parse().map_err(|_| Error::Input {
        name: "redirect_uri".into(),
        problem: format!("`{uri}` is not a URL"),
    })?;
    let host = parsed.host().unwrap_or("");
    if parsed.scheme_str() != Some("http") || !crate::spec::is_loopback(host) {
        return Err(Error::Input {
            name: "redirect_uri".into(),
            problem: format!(
                "`{uri}` is not an http:// loopback address, so the redirect cannot reach this process; register one such as http://127.0.0.1:8765/callback, or use the device flow"
            ),
        });
    }
    Ok((parsed.port_u16().unwrap_or(80), parsed.path().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iss_is_compared_as_a_string_and_required_when_promised() {
        let e = check_iss(
            Some("https://as.example"),
            false,
            Some("https://as.example/"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unusable reply (HTTP 302): the authorization response came from issuer `https://as.example/`, but `https://as.example` was expected (RFC 9207: a mix-up attack, or the wrong server); the code was not redeemed; the reply begins: iss=https://as.example/"
        );
        assert!(check_iss(Some("https://as.example"), true, None).is_err());
        assert!(check_iss(Some("https://as.example"), false, None).is_ok());
        assert!(check_iss(None, false, Some("https://any.example")).is_ok());
        assert!(check_iss(Some("https://as.example"), true, Some("https://as.example")).is_ok());
    }

    /// A DPoP login whose code exchange the server answers with `token_type` `answered`: the
    /// key it keeps, and whether the exchange carried a proof.
    fn dpop_login_answered(answered: &'static str) -> (Option<DpopKey>, bool) {
        let spec = Spec::from_yaml(
            "d.yaml",
            "extends: oauth2\nendpoints: { token: \"https://as.example.com/token\", authorize: \"https://as.example.com/auth\" }\n",
        )
        .unwrap();
        let proved = std::sync::atomic::AtomicBool::new(false);
        let client = Client::with_transport(|r: http::Request<Vec<u8>>| {
            proved.store(
                r.headers().contains_key("dpop"),
                std::sync::atomic::Ordering::SeqCst,
            );
            Ok::<_, TransportError>(
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(
                        format!(r#"{{"access_token":"t","token_type":"{answered}"}}"#).into_bytes(),
                    )
                    .unwrap(),
            )
        });
        let options = BrowserOptions {
            dpop: true,
            ..BrowserOptions::default()
        };
        let login =
            BrowserLogin::start(&spec, &Inputs::new().with("client_id", "app"), &options).unwrap();
        let state = form_urlencoded::parse(login.url().split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let back = format!("{}?code=c&state={state}", login.redirect_uri());
        let browser = std::thread::spawn(move || ureq::get(&back).call().is_ok());
        let done = login
            .finish(&client, &spec, Duration::from_secs(10))
            .unwrap();
        assert!(browser.join().unwrap());
        drop(client);
        (done.dpop_key, proved.into_inner())
    }

    #[test]
    fn a_dpop_login_answered_with_a_bearer_token_keeps_no_key() {
        let (key, proved) = dpop_login_answered("Bearer");
        assert!(proved, "the exchange carries a proof");
        assert!(key.is_none(), "the server did not bind the token");
        let (key, proved) = dpop_login_answered("DPoP");
        assert!(proved);
        assert!(key.is_some());
    }

    #[test]
    fn random_strings_use_only_unreserved_characters() {
        let s = random_string(200).unwrap();
        assert_eq!(s.len(), 200);
        assert!(s.bytes().all(|b| UNRESERVED.contains(&b)));
        assert_ne!(random_string(32).unwrap(), random_string(32).unwrap());
    }

    #[test]
    fn the_listener_ignores_strays_and_returns_the_code() {
        let listener = RedirectListener::bind(0, "/callback").unwrap();
        let uri = listener.redirect_uri();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let t = std::thread::spawn(move || {
            let wrong_path = agent
                .get(uri.replace("/callback", "/favicon.ico"))
                .call()
                .unwrap()
                .status();
            let wrong_state = agent
                .get(format!("{uri}?code=evil&state=other"))
                .call()
                .unwrap()
                .status();
            let ok = agent
                .get(format!("{uri}?code=c0de&state=s1"))
                .call()
                .unwrap()
                .status();
            (wrong_path.as_u16(), wrong_state.as_u16(), ok.as_u16())
        });
        let code = listener
            .wait_for_code("s1", Duration::from_secs(10))
            .unwrap();
        assert_eq!(code.secret(), "c0de");
        assert_eq!(t.join().unwrap(), (404, 400, 200));
    }

    /// Runs `wait_for_code` on its own thread: its result, or `None` when it has not returned
    /// within `within` (a stalled listener fails the test instead of hanging it).
    fn wait_on_thread(
        listener: RedirectListener,
        state: &str,
        timeout: Duration,
        within: Duration,
    ) -> Option<Result<Secret, Error>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let state = state.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(listener.wait_for_code(&state, timeout));
        });
        rx.recv_timeout(within).ok()
    }

    fn connect(port: u16) -> std::net::TcpStream {
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()
    }

    /// The status line of the answer on `stream`.
    fn status_line(stream: &mut std::net::TcpStream) -> String {
        use std::io::Read as _;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.lines().next().unwrap_or("").to_owned()
    }

    #[test]
    fn a_slow_post_and_an_endless_head_cannot_stall_the_login() {
        use std::io::Write as _;
        let listener = RedirectListener::bind(0, "/callback").unwrap();
        let (port, uri) = (listener.port(), listener.redirect_uri());
        let started = Instant::now();
        let result = std::thread::scope(|s| {
            let client = s.spawn(move || {
                // A body announced at 100 MB of which 3 bytes ever come: never read, never
                // drained, answered 405 at once.
                let mut post = connect(port);
                post.write_all(
                    b"POST /callback?code=evil&state=s1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                      Content-Length: 100000000\r\n\r\nabc",
                )
                .unwrap();
                let post_status = status_line(&mut post);
                // A head that never ends: cut at the cap and answered 431.
                let mut endless = connect(port);
                let mut head = b"GET /callback?".to_vec();
                head.resize(MAX_HEAD, b'a');
                endless.write_all(&head).unwrap();
                let endless_status = status_line(&mut endless);
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .new_agent();
                let ok = agent
                    .get(format!("{uri}?code=c0de&state=s1"))
                    .call()
                    .map(|r| r.status().as_u16());
                // Both junk connections stay open until the login is over.
                drop((post, endless));
                (post_status, endless_status, ok.ok())
            });
            let result = wait_on_thread(
                listener,
                "s1",
                Duration::from_secs(60),
                Duration::from_secs(5),
            );
            (result, client.join().unwrap())
        });
        let (result, (post_status, endless_status, ok)) = result;
        let code = result
            .expect("the listener stalled on junk traffic")
            .unwrap();
        assert_eq!(code.secret(), "c0de");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            (post_status.as_str(), endless_status.as_str(), ok),
            (
                "HTTP/1.1 405 Method Not Allowed",
                "HTTP/1.1 431 Request Header Fields Too Large",
                Some(200)
            )
        );
    }

    #[test]
    fn a_silent_connection_does_not_hold_up_the_redirect() {
        let listener = RedirectListener::bind(0, "/callback").unwrap();
        let (port, uri) = (listener.port(), listener.redirect_uri());
        // A browser's speculative connection, or a port scanner: connects, sends nothing.
        let silent = connect(port);
        let started = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            ureq::get(format!("{uri}?code=c0de&state=s1"))
                .call()
                .unwrap()
                .status()
                .as_u16()
        });
        let result = wait_on_thread(
            listener,
            "s1",
            Duration::from_secs(60),
            Duration::from_secs(5),
        );
        let code = result
            .expect("the listener stalled on a silent connection")
            .unwrap();
        assert_eq!(code.secret(), "c0de");
        assert_eq!(t.join().unwrap(), 200);
        // Not served after the silent connection gave up: alongside it.
        assert!(
            started.elapsed() < HEAD_TIMEOUT,
            "the redirect waited {:?} behind a silent connection",
            started.elapsed()
        );
        drop(silent);
    }

    #[test]
    fn junk_traffic_cannot_outlive_the_timeout() {
        use std::io::Write as _;
        let listener = RedirectListener::bind(0, "/callback").unwrap();
        let mut post = connect(listener.port());
        post.write_all(
            b"POST /callback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\nabc",
        )
        .unwrap();
        let _silent = connect(listener.port());
        let started = Instant::now();
        let result = wait_on_thread(
            listener,
            "s1",
            Duration::from_millis(500),
            Duration::from_secs(5),
        );
        let err = result
            .expect("junk traffic kept the listener past its timeout")
            .unwrap_err();
        assert!(
            matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_error_redirect_is_the_providers_refusal_and_silence_times_out() {
        let listener = RedirectListener::bind(0, "cb").unwrap();
        let uri = listener.redirect_uri();
        let t = std::thread::spawn(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent();
            agent
                .get(format!(
                    "{uri}?error=access_denied&error_description=User+said+no&state=s"
                ))
                .call()
                .unwrap();
        });
        let err = listener
            .wait_for_code("s", Duration::from_secs(10))
            .unwrap_err();
        t.join().unwrap();
        let Error::Provider(p) = err else {
            panic!("{err}")
        };
        assert_eq!(
            (p.code.as_deref(), p.message.as_deref()),
            (Some("access_denied"), Some("User said no"))
        );
        let err = listener
            .wait_for_code("s", Duration::from_millis(200))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
            "{err}"
        );
    }
}
