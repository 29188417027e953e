//! The browser login: PKCE (RFC 7636), a random `state`, a listener on 127.0.0.1 that receives
//! the authorization redirect (RFC 8252 §7.3), and the code exchange.

use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use crate::client::Client;
use crate::error::{Error, ProviderError, TransportError, TransportErrorKind};
use crate::inputs::Inputs;
use crate::secret::Secret;
use crate::spec::{RequestKind, Spec};
use crate::token::Token;
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
pub struct RedirectListener {
    server: tiny_http::Server,
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

const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>specauth</title>\
<p>Signed in. You can close this tab and return to the terminal.</p>";

impl RedirectListener {
    /// Binds `127.0.0.1:port` (0 picks a free port); the redirect is expected at `path`.
    pub fn bind(port: u16, path: &str) -> Result<RedirectListener, Error> {
        let (server, port) = crate::loopback::bind(port)
            .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(RedirectListener { server, port, path })
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
    /// it arrived as a redirect). Requests to other paths, or with another `state`, are
    /// answered 400 and ignored, so a stray request cannot end (or hijack) the login. After
    /// `timeout`, a [`TransportErrorKind::Timeout`] error.
    pub fn wait_for_code(&self, state: &str, timeout: Duration) -> Result<Secret, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
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
            let request = match self.server.recv_timeout(left) {
                Ok(Some(request)) => request,
                Ok(None) => continue,
                Err(e) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Other,
                        format!(
                            "the redirect listener on {} failed: {e}",
                            self.redirect_uri()
                        ),
                    )
                    .into());
                }
            };
            let url = request.url().to_owned();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            if path != self.path {
                let _ = request
                    .respond(tiny_http::Response::from_string("not found").with_status_code(404));
                continue;
            }
            let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            if get("state").as_deref() != Some(state) {
                let _ = request.respond(page(
                    400,
                    "This redirect does not belong to the login in progress (state mismatch).",
                ));
                continue;
            }
            if let Some(code) = get("error") {
                let message = get("error_description");
                let _ = request.respond(page(
                    400,
                    &format!("Sign-in failed: {}", message.as_deref().unwrap_or(&code)),
                ));
                return Err(Error::from(ProviderError {
                    status: 302,
                    code: Some(code),
                    message,
                    hint: None,
                    uri: get("error_uri"),
                    extra: serde_json::Map::new(),
                }));
            }
            match get("code") {
                Some(code) if !code.is_empty() => {
                    let _ = request.respond(
                        tiny_http::Response::from_string(DONE_PAGE).with_header(html_header()),
                    );
                    return Ok(Secret::new(code));
                }
                _ => {
                    let _ = request.respond(page(400, "The redirect carries no code."));
                }
            }
        }
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
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions {
            port: None,
            timeout: Duration::from_secs(300),
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
    inputs: Inputs,
    url: String,
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
        Ok(BrowserLogin {
            listener,
            state,
            pkce,
            inputs,
            url,
        })
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
        let code = self.listener.wait_for_code(&self.state, timeout)?;
        let mut token_inputs = self.inputs.clone();
        token_inputs.set("code", code.secret());
        // Some providers want `state` again in the code exchange; a spec that does not send it
        // ignores it.
        token_inputs.set("state", &self.state);
        if spec.inputs().any(|(n, _)| n == "code_verifier") {
            token_inputs.set("code_verifier", self.pkce.verifier().secret());
        }
        let token = client.token(spec, "authorization_code", &token_inputs)?;
        Ok(LoggedIn {
            token,
            inputs: self.inputs,
        })
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
    let login = BrowserLogin::start(spec, inputs, options)?;
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

fn html_header() -> tiny_http::Header {
    tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/html; charset=utf-8"[..])
        .unwrap_or_else(|_| unreachable!("a constant, valid header"))
}

fn page(status: u16, text: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let escaped = quick_xml::escape::escape(text);
    tiny_http::Response::from_string(format!(
        "<!doctype html><meta charset=utf-8><title>specauth</title><p>{escaped}</p>"
    ))
    .with_status_code(status)
    .with_header(html_header())
}

#[cfg(test)]
mod tests {
    use super::*;

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
