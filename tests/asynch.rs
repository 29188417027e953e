//! The async library on a real tokio runtime against a provider on 127.0.0.1 (our own
//! `ReplayServer`, answering from a handler): the async client over reqwest, the transport's
//! guarantees, and the reqwest-middleware token middleware (header, single-flight refresh,
//! one retry after a 401).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use specauth::middleware::{TokenMiddleware, TokenSource};
use specauth::testing::{ReceivedRequest, ReplayServer};
use specauth::transport::{ReqwestTransport, TransportConfig};
use specauth::{AsyncClient, Error, ErrorKind, Inputs, Secret, Spec, Token};

/// What the provider knows: the tokens it issued and has not revoked, and what it was asked.
#[derive(Default)]
struct Provider {
    token_requests: AtomicUsize,
    api_requests: AtomicUsize,
    valid: Mutex<HashSet<String>>,
    /// When set, the API refuses every token.
    refuse_all: std::sync::atomic::AtomicBool,
}

impl Provider {
    fn revoke_all(&self) {
        self.valid.lock().unwrap().clear();
    }
}

fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

/// A provider with a token endpoint (`/oauth/token`, issuing `t1`, `t2`, … after
/// `token_delay`) and an API (`/api/…`) that wants a valid bearer token.
fn provider(token_delay: Duration) -> (Arc<Provider>, ReplayServer, Spec) {
    let state = Arc::new(Provider::default());
    let s = state.clone();
    let server = ReplayServer::with_handler(move |req: &ReceivedRequest| {
        if req.url.starts_with("/oauth/token") {
            let n = s.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(token_delay);
            let token = format!("t{n}");
            s.valid.lock().unwrap().insert(token.clone());
            return json(
                200,
                &format!(
                    r#"{{"access_token":"{token}","token_type":"bearer","expires_in":3600,"refresh_token":"r{n}"}}"#
                ),
            );
        }
        s.api_requests.fetch_add(1, Ordering::SeqCst);
        let presented = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if !s.refuse_all.load(Ordering::SeqCst) && s.valid.lock().unwrap().contains(presented) {
            json(200, r#"{"ok":true}"#)
        } else {
            json(401, r#"{"error":"invalid_token"}"#)
        }
    })
    .unwrap();
    let spec = Spec::from_yaml(
        "acme.yaml",
        r#"
id: acme
extends: oauth2
endpoints: { token: "https://auth.acme.example/oauth/token" }
"#,
    )
    .unwrap()
    .with_origin(&server.origin())
    .unwrap();
    (state, server, spec)
}

fn token_requests(server: &ReplayServer) -> Vec<ReceivedRequest> {
    server
        .received()
        .into_iter()
        .filter(|r| r.url.starts_with("/oauth/token"))
        .collect()
}

/// The application's own reqwest client, with the middleware.
///
/// It keeps no idle connections: the replay server (tiny_http) serves each open keep-alive
/// connection from a thread of a small pool, and fifty idle connections held by the client
/// leave new ones waiting for a thread until the client lets go.
fn api_client(source: TokenSource) -> reqwest_middleware::ClientWithMiddleware {
    // The crate's reqwest is built without a default crypto provider; the application picks one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    reqwest_middleware::ClientBuilder::new(client)
        .with(TokenMiddleware::new(source))
        .build()
}

/// A token that is about to expire, so the first use refreshes it.
fn expiring(access: &str, refresh: &str) -> Token {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Token {
        expires_at: Some(now + 5),
        refresh_token: Some(Secret::new(refresh)),
        ..Token::bearer(Secret::new(access))
    }
}

fn shareable<T: Clone + Send + Sync + 'static>(_: &T) {}
fn send<T: Send>(_: T) {}

/// `Spec` lives in application state and crosses tasks; the async client's futures can be
/// spawned; the middleware can sit in a shared client. These are compile-time checks: the
/// file does not build if one fails.
#[test]
fn spec_client_and_middleware_are_shareable() {
    let (_, _server, spec) = provider(Duration::ZERO);
    shareable(&spec);
    let client = AsyncClient::new().unwrap();
    shareable(&client);
    let inputs = Inputs::new().with("client_id", "app");
    // Futures do nothing until polled: these are only built, to check they are Send.
    send(client.token(&spec, "client_credentials", &inputs));
    send(client.send(&spec, "client_credentials", &inputs));
    let source = TokenSource::client_credentials(spec.clone(), inputs).unwrap();
    send(source.token());
    shareable(&TokenMiddleware::new(source));
    // A clone is the same spec.
    let copy = spec.clone();
    assert_eq!(copy.id(), spec.id());
    assert_eq!(format!("{copy:?}"), format!("{spec:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_client_exchanges_a_token_over_reqwest() {
    let (_, server, spec) = provider(Duration::ZERO);
    let client = AsyncClient::new().unwrap();
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s3cret");
    // Spawned on the runtime: the future is Send, and the spec moves in by a cheap clone.
    let task = {
        let (client, spec, inputs) = (client.clone(), spec.clone(), inputs.clone());
        tokio::spawn(async move { client.token(&spec, "client_credentials", &inputs).await })
    };
    let token = task.await.unwrap().unwrap();
    assert_eq!(token.access_token.secret(), "t1");
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, Some(3600));
    assert_eq!(token.refresh_token.as_ref().map(Secret::secret), Some("r1"));
    let sent = token_requests(&server);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].body, b"grant_type=client_credentials");
    // app:s3cret, as RFC 6749 §2.3.1 Basic.
    assert_eq!(
        sent[0].header("authorization"),
        Some("Basic YXBwOnMzY3JldA==")
    );
    assert!(
        sent[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("specauth/"))
    );

    // `send` gives the whole outcome; a refusal is the normalised provider error.
    server.push(json(
        400,
        r#"{"error":"invalid_client","error_description":"unknown client"}"#,
    ));
    let err = client
        .send(&spec, "client_credentials", &inputs)
        .await
        .unwrap_err();
    let Error::Provider(p) = &err else {
        panic!("expected a provider error, got {err:?}")
    };
    assert_eq!(p.status, 400);
    assert_eq!(p.code.as_deref(), Some("invalid_client"));
    assert_eq!(p.message.as_deref(), Some("unknown client"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_transport_keeps_the_sync_transports_guarantees() {
    let server = ReplayServer::with_handler(|req: &ReceivedRequest| match req.url.as_str() {
        u if u.starts_with("/redirect") => http::Response::builder()
            .status(302)
            .header("location", "/elsewhere")
            .body(Vec::new())
            .unwrap(),
        u if u.starts_with("/big") => json(200, &format!(r#"{{"x":"{}"}}"#, "a".repeat(4096))),
        u if u.starts_with("/slow") => {
            std::thread::sleep(Duration::from_millis(3000));
            json(200, "{}")
        }
        _ => json(200, r#"{"access_token":"t"}"#),
    })
    .unwrap();
    let capped = ReqwestTransport::with_config(&TransportConfig {
        max_body: 1024,
        ..TransportConfig::default()
    })
    .unwrap();
    let get = |path: &str| {
        http::Request::get(format!("{}{path}", server.origin()))
            .body(Vec::new())
            .unwrap()
    };
    use specauth::AsyncTransport as _;

    // Statuses are replies.
    let reply = capped.send(get("/token")).await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.body(), br#"{"access_token":"t"}"#);

    // A redirect is the reply, not followed.
    let before = server.received().len();
    let reply = capped.send(get("/redirect?code=sekrit")).await.unwrap();
    assert_eq!(reply.status(), 302);
    assert_eq!(reply.headers()["location"], "/elsewhere");
    assert_eq!(
        server.received().len(),
        before + 1,
        "the redirect was followed"
    );

    // A body over the cap is an error, whatever its status.
    let err = capped.send(get("/big")).await.unwrap_err();
    assert_eq!(err.kind, specauth::error::TransportErrorKind::BodyTooLarge);
    assert!(err.message.contains("1024-byte limit"), "{}", err.message);

    // Nobody listening: a connect error, without the query.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let request = http::Request::get(format!("http://127.0.0.1:{closed}/t?code=sekrit"))
        .body(Vec::new())
        .unwrap();
    let err = capped.send(request).await.unwrap_err();
    assert_eq!(err.kind, specauth::error::TransportErrorKind::Connect);
    assert!(!err.message.contains("sekrit"), "{}", err.message);

    // The whole exchange is bounded, and the message names the host, not the secret query.
    let impatient = ReqwestTransport::with_config(&TransportConfig {
        timeout: Duration::from_millis(800),
        ..TransportConfig::default()
    })
    .unwrap();
    // (Without the timeout this would be the 200 the server sends after 3 s.)
    let err = impatient.send(get("/slow?code=sekrit")).await.unwrap_err();
    assert_eq!(err.kind, specauth::error::TransportErrorKind::Timeout);
    assert!(err.message.contains("127.0.0.1"), "{}", err.message);
    assert!(!err.message.contains("sekrit"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn middleware_adds_the_token_to_each_request() {
    let (state, server, spec) = provider(Duration::ZERO);
    let source =
        TokenSource::client_credentials(spec, Inputs::new().with("client_id", "app")).unwrap();
    let http = api_client(source);
    for _ in 0..3 {
        let reply = http
            .get(format!("{}/api/me", server.origin()))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    // One token for three requests: it is valid for an hour.
    assert_eq!(state.token_requests.load(Ordering::SeqCst), 1);
    let api: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.url == "/api/me")
        .collect();
    assert_eq!(api.len(), 3);
    for r in &api {
        assert_eq!(r.header("authorization"), Some("Bearer t1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_trigger_exactly_one_refresh() {
    // The refresh takes a while, so every request arrives while it is in flight.
    let (state, server, spec) = provider(Duration::from_millis(300));
    let source = TokenSource::refresh_token(spec, Inputs::new().with("client_id", "app"), "r0")
        .unwrap()
        .with_token(expiring("t0", "r0"));
    let http = api_client(source);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (http, url) = (http.clone(), format!("{}/api/item/{i}", server.origin()));
        tasks.spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap().unwrap(), 200);
        ok += 1;
    }
    assert_eq!(ok, 50);
    let refreshes = token_requests(&server);
    assert_eq!(refreshes.len(), 1, "one refresh for fifty requests");
    assert_eq!(state.token_requests.load(Ordering::SeqCst), 1);
    let body = String::from_utf8_lossy(&refreshes[0].body).into_owned();
    assert!(body.contains("grant_type=refresh_token"), "{body}");
    assert!(body.contains("refresh_token=r0"), "{body}");
    let api: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.url.starts_with("/api/"))
        .collect();
    assert_eq!(api.len(), 50, "no request was retried");
    assert!(
        api.iter()
            .all(|r| r.header("authorization") == Some("Bearer t1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refreshed_once_and_the_request_retried_once() {
    let (state, server, spec) = provider(Duration::ZERO);
    let source =
        TokenSource::client_credentials(spec, Inputs::new().with("client_id", "app")).unwrap();
    let http = api_client(source);
    let url = format!("{}/api/me", server.origin());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(state.token_requests.load(Ordering::SeqCst), 1);

    // The provider revokes t1 before it expires.
    state.revoke_all();
    let reply = http.post(&url).body("payload").send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(state.token_requests.load(Ordering::SeqCst), 2);
    let api: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.url == "/api/me")
        .collect();
    assert_eq!(api.len(), 3);
    assert_eq!(api[1].header("authorization"), Some("Bearer t1"));
    assert_eq!(api[2].header("authorization"), Some("Bearer t2"));
    // The retry carries the same body.
    assert_eq!(api[2].method, "POST");
    assert_eq!(api[2].body, b"payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_401_is_returned_to_the_caller() {
    let (state, server, spec) = provider(Duration::ZERO);
    state.refuse_all.store(true, Ordering::SeqCst);
    let source =
        TokenSource::client_credentials(spec, Inputs::new().with("client_id", "app")).unwrap();
    let http = api_client(source);
    let reply = http
        .get(format!("{}/api/me", server.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    assert_eq!(reply.text().await.unwrap(), r#"{"error":"invalid_token"}"#);
    // The first token, one refresh after the 401, and no more.
    assert_eq!(state.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(state.api_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_reaches_the_caller_as_the_providers_error() {
    let server = ReplayServer::with_handler(|_: &ReceivedRequest| {
        json(
            400,
            r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
        )
    })
    .unwrap();
    let spec = Spec::from_yaml(
        "acme.yaml",
        "extends: oauth2\nendpoints: { token: \"https://auth.acme.example/oauth/token\" }\n",
    )
    .unwrap()
    .with_origin(&server.origin())
    .unwrap();
    let source =
        TokenSource::refresh_token(spec, Inputs::new().with("client_id", "app"), "r0").unwrap();
    let err = source.token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Provider);
    // The refresh token is a secret: the source's Debug names inputs, never their values.
    assert!(!format!("{source:?}").contains("r0"), "{source:?}");
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    // The middleware hands it to the caller instead of sending the request without a token.
    let http = api_client(source);
    let err = http
        .get(format!("{}/api/me", server.origin()))
        .send()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_grant"), "{err}");
    assert!(
        server.received().iter().all(|r| r.url == "/oauth/token"),
        "the API was called without a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_waiting_on_a_failed_refresh_share_its_error() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let server = ReplayServer::with_handler(move |_: &ReceivedRequest| {
        a.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        json(
            400,
            r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
        )
    })
    .unwrap();
    let spec = Spec::from_yaml(
        "acme.yaml",
        "extends: oauth2\nendpoints: { token: \"https://auth.acme.example/oauth/token\" }\n",
    )
    .unwrap()
    .with_origin(&server.origin())
    .unwrap();
    let source = Arc::new(
        TokenSource::refresh_token(spec, Inputs::new().with("client_id", "app"), "r0").unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let source = source.clone();
        tasks.spawn(async move { source.token().await.map(|_| ()) });
    }
    while let Some(outcome) = tasks.join_next().await {
        let err = outcome.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Provider, "{err}");
        assert!(err.to_string().contains("invalid_grant"), "{err}");
    }
    // One refresh failed; those that waited for it did not each try again.
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    // A later call (nobody waiting) tries again.
    assert!(source.token().await.is_err());
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}
