//! Loopback tests: a real HTTP server (the test kit's replay server in its handler mode, on
//! 127.0.0.1, port 0) emulates each seed provider, and requests travel through the real
//! [`UreqTransport`].
//!
//! The server records every request it receives (method, URL, headers, body, peer address) so the
//! tests can check what actually went over the wire, then replies with the provider's documented
//! reply. Nothing here talks to anything but 127.0.0.1.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Map, json};
mod common;

use common::NormaliseToken as _;
use specauth::error::TransportErrorKind;
use specauth::examples::EXAMPLE_NOW;
use specauth::testing::{ReceivedRequest, ReplayServer};
use specauth::transport::TransportConfig;
use specauth::{
    Client, Error, Inputs, Loader, ProviderError, Secret, Spec, Token, Transport, UreqTransport,
};

// ---------------------------------------------------------------------------------------------
// The test server
// ---------------------------------------------------------------------------------------------

/// What a handler answers: status, headers (name, value), body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// One request as the server received it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    peer: Option<SocketAddr>,
}

impl Received {
    /// All values of a header (name compared case-insensitively).
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a header that must be present exactly once, or `None` when absent.
    fn header(&self, name: &str) -> Option<&str> {
        let values = self.header_values(name);
        assert!(
            values.len() <= 1,
            "header {name} sent {} times",
            values.len()
        );
        values.first().copied()
    }

    /// The body decoded as a form, pairs sorted (so order does not matter but duplicates do).
    fn form(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        pairs
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the request body is UTF-8")
    }
}

/// The test kit's loopback server (the replay server in its handler mode) answering every
/// request with `handler`, and recording what it received. Dropping it stops it.
struct TestServer {
    server: ReplayServer,
    origin: String,
}

impl TestServer {
    fn start<H>(handler: H) -> TestServer
    where
        H: Fn(&ReceivedRequest) -> Reply + Send + Sync + 'static,
    {
        let server = ReplayServer::with_handler(move |req| {
            let (status, headers, body) = handler(req);
            let mut builder = http::Response::builder().status(status);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder.body(body).expect("a valid test reply")
        })
        .expect("bind 127.0.0.1:0");
        let origin = server.origin();
        TestServer { server, origin }
    }

    /// A bundled spec with every endpoint pointed at this server.
    fn spec(&self, id: &str) -> Spec {
        Loader::new()
            .load(id)
            .expect("bundled spec loads")
            .with_origin(&self.origin)
            .expect("loopback origin is allowed")
    }

    /// A bundled spec whose token endpoint is `path` on this server.
    fn spec_at(&self, id: &str, path: &str) -> Spec {
        Loader::new()
            .load(id)
            .and_then(|s| s.with_endpoint("token", &format!("{}{path}", self.origin)))
            .expect("endpoint override")
    }

    fn requests(&self) -> Vec<Received> {
        self.server
            .received()
            .into_iter()
            .map(|r| Received {
                method: r.method,
                url: r.url,
                headers: r.headers,
                body: r.body,
                peer: r.peer,
            })
            .collect()
    }

    /// The one request received; fails when there were none or several.
    fn only_request(&self) -> Received {
        let mut all = self.requests();
        assert_eq!(all.len(), 1, "expected exactly one request, got {all:#?}");
        all.remove(0)
    }
}

/// A reply with the given Content-Type (none when `None`).
fn reply(status: u16, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Reply {
    let headers = content_type
        .map(|ct| vec![("Content-Type".to_owned(), ct.to_owned())])
        .unwrap_or_default();
    (status, headers, body.into())
}

fn json_reply(status: u16, body: &serde_json::Value) -> Reply {
    reply(status, Some("application/json"), body.to_string())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// render → send through `transport` → normalise with the examples' fixed clock.
fn exchange(
    transport: &UreqTransport,
    spec: &Spec,
    grant: &str,
    inputs: &Inputs,
) -> Result<Token, Error> {
    let request = spec.render(grant, inputs)?;
    let reply = transport.send(request.into_http())?;
    spec.normalise_token(grant, inputs, &reply, EXAMPLE_NOW)
}

fn quick() -> TransportConfig {
    TransportConfig {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        ..TransportConfig::default()
    }
}

fn transport() -> UreqTransport {
    UreqTransport::with_config(&quick())
}

fn provider_error(result: Result<Token, Error>) -> ProviderError {
    match result {
        Err(Error::Provider(p)) => *p,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

fn transport_error(result: Result<Token, Error>) -> specauth::TransportError {
    match result {
        Err(Error::Transport(t)) => t,
        other => panic!("expected a transport error, got {other:?}"),
    }
}

fn ok(result: Result<Token, Error>) -> Token {
    match result {
        Ok(t) => t,
        Err(e) => panic!("expected a token, got {} error: {e}", e.kind()),
    }
}

/// Neither the message, the debug form nor the JSON form of `err` holds any of `secrets`.
fn assert_no_secret_in_error(err: &Error, secrets: &[&str]) {
    let forms = [
        format!("{err}"),
        format!("{err:?}"),
        err.to_json().to_string(),
    ];
    for form in &forms {
        for secret in secrets {
            assert!(!form.contains(secret), "secret `{secret}` leaked: {form}");
        }
    }
}

/// The token's debug form holds neither its access token nor its refresh token.
fn assert_no_secret_in_token(token: &Token) {
    let debug = format!("{token:?}");
    assert!(!debug.contains(token.access_token.secret()), "{debug}");
    if let Some(r) = &token.refresh_token {
        assert!(!debug.contains(r.secret()), "{debug}");
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

fn scopes(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

/// What every request must carry: POST, the Host, our User-Agent, a matching Content-Length.
fn assert_common_headers(r: &Received, origin: &str) {
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.header("Host"),
        Some(origin.trim_start_matches("http://")),
        "Host"
    );
    let ua = r.header("User-Agent").unwrap_or("");
    assert!(ua.starts_with("specauth/"), "User-Agent: {ua}");
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// Provider replies, copied from the specs' examples
// ---------------------------------------------------------------------------------------------

const XEE_ACCESS: &str = "22fe0c13e995da4a44a63a7ff549badb5d337a42bf80f17424482e35d4cca91a";
const XEE_REFRESH: &str = "8eb667707535655f2d9e14fc6491a59f6e06f2e73170761259907d8de186b6a1";
const XEE_BASIC: &str = "Basic YXBwOnMzY3JldA==";

fn xee_success() -> serde_json::Value {
    json!({
        "access_token": XEE_ACCESS,
        "expires_at": 1382962374,
        "expires_in": 3600,
        "refresh_token": XEE_REFRESH,
        "token_type": "bearer"
    })
}

fn xee_token() -> Token {
    Token {
        access_token: Secret::new(XEE_ACCESS),
        token_type: "Bearer".to_owned(),
        expires_in: Some(3600),
        expires_at: Some(1382962374),
        refresh_token: Some(Secret::new(XEE_REFRESH)),
        refresh_token_expires_in: None,
        scope: None,
        id_token: None,
        extra: Map::new(),
        also: Default::default(),
        secret_extras: Vec::new(),
    }
}

fn xee_code_inputs() -> Inputs {
    Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s3cret")
        .with("code", "theawesomecode")
}

const SAASU_ACCESS: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.DItMjAxNSAwNTowNjoyOS43NDE0NzYiLCJyb2xlIjoiYWNjZXNzIn0";
const SAASU_REFRESH: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MioIn0.4fEXVBxeFQB3YkfSQ-W1Wp5XiZJv2jsivcYR2fP73PQ";
const SAASU_SCOPE: &str = "full fileid:15431 fileid:14078 fileid:2045";

fn saasu_success_json() -> serde_json::Value {
    json!({
        "access_token": SAASU_ACCESS,
        "token_type": "Bearer",
        "expires_in": 10800,
        "refresh_token": SAASU_REFRESH,
        "scope": SAASU_SCOPE
    })
}

fn saasu_success_xml() -> String {
    format!(
        "<OAuthAccessTokenGrant xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"> \
         <access_token>{SAASU_ACCESS}</access_token> \
         <token_type>Bearer</token_type> <expires_in>10800</expires_in> \
         <refresh_token>{SAASU_REFRESH}</refresh_token> \
         <scope>{SAASU_SCOPE}</scope> </OAuthAccessTokenGrant>"
    )
}

fn saasu_token() -> Token {
    Token {
        access_token: Secret::new(SAASU_ACCESS),
        token_type: "Bearer".to_owned(),
        expires_in: Some(10800),
        expires_at: Some(EXAMPLE_NOW + 10800),
        refresh_token: Some(Secret::new(SAASU_REFRESH)),
        refresh_token_expires_in: None,
        scope: scopes(&["full", "fileid:15431", "fileid:14078", "fileid:2045"]),
        id_token: None,
        extra: Map::new(),
        also: Default::default(),
        secret_extras: Vec::new(),
    }
}

fn saasu_password_inputs() -> Inputs {
    Inputs::new()
        .with("username", "test@host.com")
        .with("password", "StrongPassword")
}

fn priava_success() -> serde_json::Value {
    json!({"access_token": "xxxxxxxx", "refresh_token": "yyyyyyyy", "token_type": "BEARER", "expires_in": 21600})
}

fn priava_token() -> Token {
    Token {
        access_token: Secret::new("xxxxxxxx"),
        token_type: "Bearer".to_owned(),
        expires_in: Some(21600),
        expires_at: Some(EXAMPLE_NOW + 21600),
        refresh_token: Some(Secret::new("yyyyyyyy")),
        refresh_token_expires_in: None,
        scope: None,
        id_token: None,
        extra: Map::new(),
        also: Default::default(),
        secret_extras: Vec::new(),
    }
}

fn priava_code_inputs(region: &str) -> Inputs {
    Inputs::new()
        .with("region", region)
        .with("client_id", "xxxxxxxx")
        .with("client_secret", "yyyyyyyy")
        .with("code", "zzzzzzzz")
        .with("redirect_uri", "https://my.app.com/oauth2callback")
}

// ---------------------------------------------------------------------------------------------
// 1. Success exchanges, one per seed provider and body format
// ---------------------------------------------------------------------------------------------

#[test]
fn xee_code_exchange_succeeds() {
    let server = TestServer::start(|_| json_reply(200, &xee_success()));
    let spec = server.spec("xee");
    let token = ok(exchange(
        &transport(),
        &spec,
        "authorization_code",
        &xee_code_inputs(),
    ));

    let r = server.only_request();
    assert_common_headers(&r, &server.origin);
    assert_eq!(r.url, "/v3/auth/access_token");
    assert_eq!(r.header("Authorization"), Some(XEE_BASIC));
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.header("Accept"), Some("application/json"));
    assert_eq!(
        r.form(),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", "theawesomecode")
        ])
    );

    assert_eq!(token.access_token.secret(), XEE_ACCESS);
    assert_eq!(
        token.refresh_token.as_ref().map(Secret::secret),
        Some(XEE_REFRESH)
    );
    assert_eq!(token, xee_token());
    assert_no_secret_in_token(&token);
}

#[test]
fn xee_refresh_succeeds() {
    let server = TestServer::start(|_| json_reply(200, &xee_success()));
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s3cret")
        .with("refresh_token", XEE_REFRESH);
    let token = ok(exchange(
        &transport(),
        &server.spec("xee"),
        "refresh_token",
        &inputs,
    ));

    let r = server.only_request();
    assert_common_headers(&r, &server.origin);
    assert_eq!(r.url, "/v3/auth/access_token");
    assert_eq!(r.header("Authorization"), Some(XEE_BASIC));
    assert_eq!(
        r.form(),
        pairs(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", XEE_REFRESH)
        ])
    );
    assert_eq!(token, xee_token());
}

#[test]
fn saasu_json_password_grant_succeeds() {
    let server = TestServer::start(|_| json_reply(200, &saasu_success_json()));
    let token = ok(exchange(
        &transport(),
        &server.spec("saasu"),
        "password",
        &saasu_password_inputs(),
    ));

    let r = server.only_request();
    assert_common_headers(&r, &server.origin);
    assert_eq!(r.url, "/authorisation/token");
    assert_eq!(r.header("Authorization"), None);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Accept"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"grant_type": "password", "username": "test@host.com", "password": "StrongPassword", "scope": "full"})
    );

    assert_eq!(token.access_token.secret(), SAASU_ACCESS);
    assert_eq!(token, saasu_token());
    assert_no_secret_in_token(&token);
}

#[test]
fn saasu_xml_password_grant_succeeds() {
    let server = TestServer::start(|_| {
        reply(
            200,
            Some("application/xml; charset=utf-8"),
            saasu_success_xml(),
        )
    });
    let inputs = saasu_password_inputs().with("format", "xml");
    let token = ok(exchange(
        &transport(),
        &server.spec("saasu"),
        "password",
        &inputs,
    ));

    let r = server.only_request();
    assert_common_headers(&r, &server.origin);
    assert_eq!(r.url, "/authorisation/token");
    assert_eq!(r.header("Authorization"), None);
    assert_eq!(r.header("Content-Type"), Some("application/xml"));
    assert_eq!(r.header("Accept"), Some("application/xml"));
    assert_eq!(
        r.text(),
        "<OAuthPasswordCredentialsGrantRequest><grant_type>password</grant_type>\
         <username>test@host.com</username><password>StrongPassword</password>\
         <scope>full</scope></OAuthPasswordCredentialsGrantRequest>"
    );

    assert_eq!(token.access_token.secret(), SAASU_ACCESS);
    assert_eq!(token, saasu_token());
    assert_no_secret_in_token(&token);
}

#[test]
fn priava_code_exchange_succeeds() {
    let server = TestServer::start(|_| json_reply(200, &priava_success()));
    let token = ok(exchange(
        &transport(),
        &server.spec("priava"),
        "authorization_code",
        &priava_code_inputs("APAC"),
    ));

    let r = server.only_request();
    assert_common_headers(&r, &server.origin);
    assert_eq!(r.url, "/api/rest/oauth/token");
    assert_eq!(r.header("Authorization"), None);
    assert_eq!(r.header("TenantRegion"), Some("APAC"));
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-www-form-urlencoded;charset=utf-8")
    );
    assert_eq!(
        r.form(),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("client_id", "xxxxxxxx"),
            ("client_secret", "yyyyyyyy"),
            ("code", "zzzzzzzz"),
            ("redirect_uri", "https://my.app.com/oauth2callback"),
        ])
    );

    assert_eq!(token.access_token.secret(), "xxxxxxxx");
    assert_eq!(token, priava_token());
    assert_no_secret_in_token(&token);
}

#[test]
fn priava_refresh_sends_region_and_redirect_uri() {
    let server = TestServer::start(|_| json_reply(200, &priava_success()));
    let mut inputs = priava_code_inputs("EU");
    inputs.remove("code");
    inputs.set("refresh_token", "zzzzzzzz");
    let token = ok(exchange(
        &transport(),
        &server.spec("priava"),
        "refresh_token",
        &inputs,
    ));

    let r = server.only_request();
    assert_eq!(r.url, "/api/rest/oauth/token");
    assert_eq!(r.header("TenantRegion"), Some("EU"));
    assert_eq!(
        r.form(),
        pairs(&[
            ("grant_type", "refresh_token"),
            ("client_id", "xxxxxxxx"),
            ("client_secret", "yyyyyyyy"),
            ("refresh_token", "zzzzzzzz"),
            ("redirect_uri", "https://my.app.com/oauth2callback"),
        ])
    );
    assert_eq!(token, priava_token());
}

// ---------------------------------------------------------------------------------------------
// 2. Error shapes
// ---------------------------------------------------------------------------------------------

#[test]
fn xee_array_error_400() {
    let server = TestServer::start(|_| {
        json_reply(
            400,
            &json!([{
                "type": "PARAMETERS_ERROR",
                "message": "Missing parameter",
                "tip": "Check you've set the grant_type and the code"
            }]),
        )
    });
    let result = Client::with_transport(transport()).token(
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    );
    let err = result.as_ref().err().map(|e| e.to_json());
    let p = provider_error(result);
    assert_eq!(
        p,
        ProviderError {
            status: 400,
            code: Some("PARAMETERS_ERROR".into()),
            message: Some("Missing parameter".into()),
            hint: Some("Check you've set the grant_type and the code".into()),
            uri: None,
            extra: Default::default(),
        }
    );
    assert_eq!(
        err,
        Some(json!({
            "kind": "provider", "status": 400, "code": "PARAMETERS_ERROR",
            "message": "Missing parameter",
            "hint": "Check you've set the grant_type and the code", "uri": null
        }))
    );
    assert_no_secret_in_error(
        &Error::from(p),
        &["s3cret", "theawesomecode", "YXBwOnMzY3JldA=="],
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn xee_bare_message_error_403() {
    let server =
        TestServer::start(|_| json_reply(403, &json!({"message": "Invalid authentication"})));
    let result = Client::with_transport(transport()).token(
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs().with("code", "expired-code"),
    );
    if let Err(e) = &result {
        assert_no_secret_in_error(e, &["s3cret", "expired-code", "YXBwOnMzY3JldA=="]);
    }
    assert_eq!(
        provider_error(result),
        ProviderError {
            status: 403,
            message: Some("Invalid authentication".into()),
            ..ProviderError::default()
        }
    );
}

#[test]
fn priava_oauth_error_400() {
    let server = TestServer::start(|_| {
        json_reply(
            400,
            &json!({"error": "error_code", "error_description": "A human readable error message"}),
        )
    });
    let result = Client::with_transport(transport()).token(
        &server.spec("priava"),
        "authorization_code",
        &priava_code_inputs("US"),
    );
    if let Err(e) = &result {
        assert_no_secret_in_error(e, &["yyyyyyyy", "zzzzzzzz"]);
    }
    assert_eq!(
        provider_error(result),
        ProviderError {
            status: 400,
            code: Some("error_code".into()),
            message: Some("A human readable error message".into()),
            ..ProviderError::default()
        }
    );
    assert_eq!(server.only_request().header("TenantRegion"), Some("US"));
}

#[test]
fn saasu_oauth_error_400_json() {
    let server = TestServer::start(|_| {
        json_reply(
            400,
            &json!({"error": "invalid_grant", "error_description": "The user name or password is incorrect."}),
        )
    });
    let inputs = saasu_password_inputs().with("password", "wrong-password");
    let result =
        Client::with_transport(transport()).token(&server.spec("saasu"), "password", &inputs);
    if let Err(e) = &result {
        assert_no_secret_in_error(e, &["wrong-password"]);
    }
    assert_eq!(
        provider_error(result),
        ProviderError {
            status: 400,
            code: Some("invalid_grant".into()),
            message: Some("The user name or password is incorrect.".into()),
            ..ProviderError::default()
        }
    );
}

/// The same error shape (the docs' OAuthGrantRequestError), as an XML reply.
#[test]
fn saasu_oauth_error_400_xml() {
    let server = TestServer::start(|_| {
        reply(
            400,
            Some("application/xml; charset=utf-8"),
            "<OAuthGrantRequestError><error>invalid_grant</error>\
             <error_description>The user name or password is incorrect.</error_description>\
             </OAuthGrantRequestError>",
        )
    });
    let inputs = saasu_password_inputs()
        .with("format", "xml")
        .with("password", "wrong-password");
    let result =
        Client::with_transport(transport()).token(&server.spec("saasu"), "password", &inputs);
    if let Err(e) = &result {
        assert_no_secret_in_error(e, &["wrong-password"]);
    }
    assert_eq!(
        provider_error(result),
        ProviderError {
            status: 400,
            code: Some("invalid_grant".into()),
            message: Some("The user name or password is incorrect.".into()),
            ..ProviderError::default()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 3. HTML error page
// ---------------------------------------------------------------------------------------------

#[test]
fn html_502_page_is_an_unusable_reply() {
    let page = format!(
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
         <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
         <!-- {} -->\r\n</body>\r\n</html>\r\n",
        "padding ".repeat(200)
    );
    let server = TestServer::start(move |_| reply(502, Some("text/html"), page.clone()));
    let result = Client::with_transport(transport()).token(
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    );
    match &result {
        Err(
            e @ Error::Reply {
                status,
                problem,
                excerpt,
            },
        ) => {
            assert_eq!(*status, 502);
            assert!(problem.contains("HTML"), "problem: {problem}");
            assert!(
                excerpt.starts_with("<html> <head><title>502 Bad Gateway"),
                "{excerpt}"
            );
            assert!(
                excerpt.chars().count() <= 161,
                "excerpt too long: {excerpt}"
            );
            assert_eq!(e.status(), Some(502));
            assert_eq!(e.kind(), "reply");
            assert_no_secret_in_error(e, &["s3cret", "theawesomecode", "YXBwOnMzY3JldA=="]);
        }
        other => panic!("expected an unusable-reply error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn slow_reply_times_out() {
    const SERVER_DELAY: Duration = Duration::from_secs(10);
    // The handler waits on this gate instead of sleeping, so dropping the sender lets the server
    // thread finish at once when the test is done.
    let (gate, gate_rx) = mpsc::channel::<()>();
    let gate_rx = Mutex::new(gate_rx);
    let server = TestServer::start(move |_| {
        let _ = gate_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv_timeout(SERVER_DELAY);
        json_reply(200, &xee_success())
    });
    let transport = UreqTransport::with_config(&TransportConfig {
        timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    });
    let started = Instant::now();
    let result = exchange(
        &transport,
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    );
    let elapsed = started.elapsed();
    drop(gate);

    if let Err(e) = &result {
        assert_no_secret_in_error(e, &["s3cret", "theawesomecode", "/v3/auth"]);
    }
    let t = transport_error(result);
    assert_eq!(t.kind, TransportErrorKind::Timeout, "{t:?}");
    assert!(t.message.contains("127.0.0.1"), "{}", t.message);
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?} for a 300 ms timeout"
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "took only {elapsed:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 5. Size cap
// ---------------------------------------------------------------------------------------------

/// A valid xee token reply padded to exactly `size` bytes, so only the cap can refuse it.
fn padded_token_reply(size: usize) -> Vec<u8> {
    let head = format!(
        "{{\"access_token\":\"{XEE_ACCESS}\",\"token_type\":\"bearer\",\"expires_in\":3600,\"pad\":\""
    );
    let tail = "\"}";
    assert!(size >= head.len() + tail.len());
    let mut body = head.into_bytes();
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    assert_eq!(body.len(), size);
    body
}

/// Xee's code exchange through `transport`: at `server`'s token endpoint it succeeds; at its
/// `/over` it fails, with the transport error returned.
fn at_and_over_the_limit(
    transport: &UreqTransport,
    server: &TestServer,
) -> specauth::TransportError {
    let token = ok(exchange(
        transport,
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    ));
    assert_eq!(token.access_token.secret(), XEE_ACCESS);
    transport_error(exchange(
        transport,
        &server.spec_at("xee", "/over"),
        "authorization_code",
        &xee_code_inputs(),
    ))
}

fn capped(max_body: u64) -> UreqTransport {
    UreqTransport::with_config(&TransportConfig {
        max_body,
        ..quick()
    })
}

#[test]
fn reply_over_a_small_cap_is_refused() {
    let body = padded_token_reply(64 * 1024);
    let server = TestServer::start(move |_| reply(200, Some("application/json"), body.clone()));
    let t = transport_error(exchange(
        &capped(1024),
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    ));
    assert_eq!(t.kind, TransportErrorKind::BodyTooLarge, "{t:?}");
    assert!(t.message.contains("1024"), "{}", t.message);
}

#[test]
fn reply_at_the_cap_passes_and_one_byte_over_is_refused() {
    let server = TestServer::start(|r| {
        let size = if r.url.ends_with("over") { 1025 } else { 1024 };
        reply(200, Some("application/json"), padded_token_reply(size))
    });
    let t = at_and_over_the_limit(&capped(1024), &server);
    assert_eq!(t.kind, TransportErrorKind::BodyTooLarge, "{t:?}");
}

#[test]
fn reply_over_the_default_cap_is_refused() {
    let body = padded_token_reply(2 << 20);
    let server = TestServer::start(move |_| reply(200, Some("application/json"), body.clone()));
    let t = transport_error(exchange(
        &UreqTransport::new(),
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    ));
    assert_eq!(t.kind, TransportErrorKind::BodyTooLarge, "{t:?}");
    assert!(
        t.message.contains(&(1u64 << 20).to_string()),
        "{}",
        t.message
    );
}

/// The transport's buffers are sized for token endpoints, not ureq's defaults: a reply's header
/// block up to 64 KiB still passes, a larger one is refused as too large (not as a stalled
/// connection), and a request whose headers are large (a long secret in HTTP Basic) is sent.
#[test]
fn large_header_blocks_pass_up_to_their_limits() {
    let server = TestServer::start(|r| {
        let size = if r.url.ends_with("over") { 70 } else { 60 } * 1024;
        let mut reply = json_reply(200, &xee_success());
        reply.1.push(("X-Padding".to_owned(), "p".repeat(size)));
        reply
    });
    let transport = transport();
    let t = at_and_over_the_limit(&transport, &server);
    assert!(t.message.contains("header is too big"), "{t:?}");

    // A 20,000-byte secret makes a Basic header of about 27 KB.
    let long_secret = "s".repeat(20_000);
    let inputs = xee_code_inputs().with("client_secret", long_secret.as_str());
    ok(exchange(
        &transport,
        &server.spec("xee"),
        "authorization_code",
        &inputs,
    ));
    let sent = server.requests().remove(2);
    let basic = sent.header("authorization").expect("HTTP Basic sent");
    assert!(basic.len() > 26_000, "{}", basic.len());
}

// ---------------------------------------------------------------------------------------------
// 6. Wrong or missing content type
// ---------------------------------------------------------------------------------------------

#[test]
fn json_reply_labelled_text_plain_still_parses() {
    let server = TestServer::start(|_| reply(200, Some("text/plain"), xee_success().to_string()));
    let token = ok(exchange(
        &transport(),
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    ));
    assert_eq!(token, xee_token());
}

#[test]
fn json_reply_without_content_type_still_parses() {
    let server = TestServer::start(|_| reply(200, None, xee_success().to_string()));
    let spec = server.spec("xee");
    let transport = transport();
    // Check the reply really went out without a Content-Type.
    let request = spec
        .render("authorization_code", &xee_code_inputs())
        .expect("renders");
    let raw = transport
        .send(request.into_http())
        .expect("a reply arrives");
    assert!(raw.headers().get("content-type").is_none(), "{raw:?}");
    let token = spec
        .normalise_token("authorization_code", &xee_code_inputs(), &raw, EXAMPLE_NOW)
        .expect("normalises");
    assert_eq!(token, xee_token());
}

// ---------------------------------------------------------------------------------------------
// 7. A refresh reply without a refresh token keeps the one sent
// ---------------------------------------------------------------------------------------------

#[test]
fn saasu_json_refresh_without_refresh_token_keeps_the_one_sent() {
    let mut body = saasu_success_json();
    body.as_object_mut()
        .expect("an object")
        .remove("refresh_token");
    let server = TestServer::start(move |_| json_reply(200, &body));
    let inputs = Inputs::new().with("refresh_token", SAASU_REFRESH);
    let token = ok(exchange(
        &transport(),
        &server.spec("saasu"),
        "refresh_token",
        &inputs,
    ));

    let r = server.only_request();
    assert_eq!(r.url, "/authorisation/refresh");
    assert_eq!(
        r.json(),
        json!({"grant_type": "refresh_token", "refresh_token": SAASU_REFRESH})
    );
    assert_eq!(token, saasu_token());
    assert_no_secret_in_token(&token);
}

#[test]
fn saasu_xml_refresh_without_refresh_token_keeps_the_one_sent() {
    let server = TestServer::start(|_| {
        reply(
            200,
            Some("application/xml"),
            "<OAuthAccessTokenGrant><access_token>at-xml-2</access_token>\
             <token_type>Bearer</token_type><expires_in>10800</expires_in>\
             <scope>full fileid:15431</scope></OAuthAccessTokenGrant>",
        )
    });
    let inputs = Inputs::new()
        .with("format", "xml")
        .with("refresh_token", "rt-xml-1");
    let token = ok(exchange(
        &transport(),
        &server.spec("saasu"),
        "refresh_token",
        &inputs,
    ));

    let r = server.only_request();
    assert_eq!(r.url, "/authorisation/refresh");
    assert_eq!(r.header("Content-Type"), Some("application/xml"));
    assert_eq!(
        r.text(),
        "<OAuthRefreshAccessTokenRequest><grant_type>refresh_token</grant_type>\
         <refresh_token>rt-xml-1</refresh_token></OAuthRefreshAccessTokenRequest>"
    );
    assert_eq!(
        token,
        Token {
            access_token: Secret::new("at-xml-2"),
            token_type: "Bearer".into(),
            expires_in: Some(10800),
            expires_at: Some(EXAMPLE_NOW + 10800),
            refresh_token: Some(Secret::new("rt-xml-1")),
            refresh_token_expires_in: None,
            scope: scopes(&["full", "fileid:15431"]),
            id_token: None,
            extra: Map::new(),
            also: Default::default(),
            secret_extras: Vec::new(),
        }
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Redirects are not followed
// ---------------------------------------------------------------------------------------------

#[test]
fn redirect_is_reported_not_followed() {
    // If the redirect were followed, /elsewhere would answer with a valid token.
    let server = TestServer::start(|r| {
        if r.url == "/elsewhere" {
            json_reply(200, &xee_success())
        } else {
            let location = format!(
                "http://{}/elsewhere",
                r.header("host").unwrap_or("127.0.0.1")
            );
            (302, vec![("Location".to_owned(), location)], Vec::new())
        }
    });
    let result = Client::with_transport(transport()).token(
        &server.spec("xee"),
        "authorization_code",
        &xee_code_inputs(),
    );
    match &result {
        Err(e @ (Error::Reply { .. } | Error::Provider(_))) => {
            assert_eq!(e.status(), Some(302), "{e:?}");
            assert_no_secret_in_error(e, &["s3cret", "theawesomecode", "YXBwOnMzY3JldA=="]);
        }
        other => panic!("expected a 302 error, got {other:?}"),
    }
    let r = server.only_request();
    assert_eq!(r.url, "/v3/auth/access_token");
}

// ---------------------------------------------------------------------------------------------
// 9. Connection refused
// ---------------------------------------------------------------------------------------------

#[test]
fn connection_refused_is_a_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.local_addr().expect("local address").port()
    }; // dropped: nothing listens there now
    let spec = Loader::new()
        .load("xee")
        .and_then(|s| s.with_origin(&format!("http://127.0.0.1:{port}")))
        .expect("spec");
    let started = Instant::now();
    let result =
        Client::with_transport(transport()).token(&spec, "authorization_code", &xee_code_inputs());
    assert!(started.elapsed() < Duration::from_secs(5));
    if let Err(e) = &result {
        assert_no_secret_in_error(
            e,
            &["s3cret", "theawesomecode", "YXBwOnMzY3JldA==", "/v3/auth"],
        );
        assert_eq!(e.kind(), "transport");
        assert_eq!(e.status(), None);
    }
    let t = transport_error(result);
    assert_eq!(t.kind, TransportErrorKind::Connect, "{t:?}");
    assert!(t.message.contains("127.0.0.1"), "{}", t.message);
}

// ---------------------------------------------------------------------------------------------
// 10. Secrets a provider echoes back never reach error messages
// ---------------------------------------------------------------------------------------------

#[test]
fn secrets_echoed_by_the_provider_are_redacted() {
    const CODE: &str = "c0de-SECRET-4242";
    const CLIENT_SECRET: &str = "cl1ent-SECRET-9999";
    let server = TestServer::start(|r| {
        // Echo the secrets back in the error fields, the way a careless provider might.
        let echoed = format!("bad code {CODE} for secret {CLIENT_SECRET}");
        if r.header("TenantRegion") == Some("US") {
            reply(
                502,
                Some("text/html"),
                format!("<html><body>upstream said: {echoed}</body></html>"),
            )
        } else {
            json_reply(
                400,
                &json!({"error": CODE, "error_description": echoed, "error_uri": format!("https://x.test/{CODE}")}),
            )
        }
    });
    let spec = server.spec("priava");
    let client = Client::with_transport(transport());
    let inputs = |region: &str| {
        priava_code_inputs(region)
            .with("code", CODE)
            .with("client_secret", CLIENT_SECRET)
    };

    // A provider error: every field is redacted.
    let result = client.token(&spec, "authorization_code", &inputs("APAC"));
    if let Err(e) = &result {
        assert_no_secret_in_error(e, &[CODE, CLIENT_SECRET]);
    }
    assert_eq!(
        provider_error(result),
        ProviderError {
            status: 400,
            code: Some("[redacted]".into()),
            message: Some("bad code [redacted] for secret [redacted]".into()),
            hint: None,
            uri: Some("https://x.test/[redacted]".into()),
            extra: Default::default(),
        }
    );

    // An unusable reply: the excerpt is redacted.
    let result = client.token(&spec, "authorization_code", &inputs("US"));
    match &result {
        Err(
            e @ Error::Reply {
                status, excerpt, ..
            },
        ) => {
            assert_no_secret_in_error(e, &[CODE, CLIENT_SECRET]);
            assert_eq!(*status, 502);
            assert_eq!(
                excerpt,
                "<html><body>upstream said: bad code [redacted] for secret [redacted]</body></html>"
            );
        }
        other => panic!("expected an unusable-reply error, got {other:?}"),
    }
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].text().contains(CODE), "the code was sent");
}

// ---------------------------------------------------------------------------------------------
// 11. Keep-alive
// ---------------------------------------------------------------------------------------------

#[test]
fn two_exchanges_reuse_one_connection() {
    let server = TestServer::start(|_| json_reply(200, &xee_success()));
    let spec = server.spec("xee");
    let transport = transport();
    // A clone shares the agent, hence the connection pool.
    let client = Client::with_transport(transport.clone());

    let first = ok(exchange(
        &transport,
        &spec,
        "authorization_code",
        &xee_code_inputs(),
    ));
    let second = ok(client.token(&spec, "authorization_code", &xee_code_inputs()));
    assert_eq!(first, xee_token());
    // The reply states expires_at, so the clock used by `Client` does not matter.
    assert_eq!(second, xee_token());

    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].peer.is_some());
    assert_eq!(
        sent[0].peer, sent[1].peer,
        "the second exchange should reuse the first connection"
    );
}
