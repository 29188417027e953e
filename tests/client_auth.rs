//! `client_auth: auto` over loopback: a real HTTP server on 127.0.0.1 (the test kit's replay
//! server in its handler mode) accepts the client's credentials one way only, and the tests
//! count what reached it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use specauth::session::{StoredToken, TokenStore, fresh_token};
use specauth::spec::{ClientAuthMethod, LearnedClientAuth};
use specauth::testing::{ReceivedRequest, ReplayServer};
use specauth::{Client, Error, Inputs, Spec};

const SECRET: &str = "s3cret";

/// Where a test server takes the client's credentials from.
#[derive(Clone, Copy, PartialEq)]
enum Accepts {
    /// Only an `Authorization: Basic` header (a body secret is refused).
    Basic,
    /// Only `client_id`/`client_secret` in the body (a Basic header is refused, as servers that
    /// do not implement it answer).
    Body,
}

fn form(req: &ReceivedRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

fn field(req: &ReceivedRequest, name: &str) -> Option<String> {
    form(req)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn json(status: u16, body: serde_json::Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
}

/// A token endpoint that takes the credentials only as `accepts` says; the refusal is the one
/// RFC 6749 §5.2 prescribes (401 for a failed Basic attempt, 400 otherwise).
fn server(accepts: Accepts) -> ReplayServer {
    let issued = Arc::new(AtomicUsize::new(0));
    ReplayServer::with_handler(move |req| {
        let basic = req.header("authorization").map(str::to_owned);
        let body_secret = field(req, "client_secret");
        let expected_basic = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("app:{SECRET}")
            )
        );
        let ok = match accepts {
            Accepts::Basic => basic.as_deref() == Some(&expected_basic) && body_secret.is_none(),
            Accepts::Body => {
                basic.is_none()
                    && body_secret.as_deref() == Some(SECRET)
                    && field(req, "client_id").as_deref() == Some("app")
            }
        };
        if !ok {
            let status = if basic.is_some() { 401 } else { 400 };
            return json(
                status,
                serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"}),
            );
        }
        let n = issued.fetch_add(1, Ordering::SeqCst);
        json(
            200,
            serde_json::json!({"access_token": format!("at-{n}"), "token_type": "bearer",
                               "expires_in": 3600, "refresh_token": format!("rt-{n}")}),
        )
    })
    .unwrap()
}

fn spec(server: &ReplayServer) -> Spec {
    Spec::from_yaml(
        "auto.yaml",
        &format!(
            "extends: oauth2\nid: auto-demo\nendpoints: {{ token: \"{}/oauth/token\" }}\nclient_auth: auto\n",
            server.origin()
        ),
    )
    .unwrap()
}

fn inputs(secret: &str) -> Inputs {
    Inputs::new()
        .with("client_id", "app")
        .with("client_secret", secret)
}

fn provider_code(result: Result<specauth::Token, Error>) -> (u16, Option<String>) {
    match result {
        Err(Error::Provider(p)) => (p.status, p.code),
        other => panic!("expected a provider refusal, got {other:?}"),
    }
}

#[test]
fn auto_retries_a_body_only_server_once_then_goes_straight_to_the_body() {
    let server = server(Accepts::Body);
    let spec = spec(&server);
    let client = Client::new();

    let token = client
        .token(&spec, "client_credentials", &inputs(SECRET))
        .unwrap();
    assert_eq!(token.access_token.secret(), "at-0");
    let seen = server.received();
    assert_eq!(seen.len(), 2, "Basic, then the body");
    assert!(
        seen[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(field(&seen[0], "client_secret"), None);
    assert_eq!(seen[1].header("authorization"), None);
    assert_eq!(
        form(&seen[1]),
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), "app".to_owned()),
            ("client_secret".to_owned(), SECRET.to_owned()),
        ]
    );
    let origin = server.origin();
    assert_eq!(
        client.learned_client_auth(),
        [LearnedClientAuth {
            token_url: format!("{origin}/oauth/token"),
            client_id: "app".to_owned(),
            method: ClientAuthMethod::Post,
        }]
    );

    // The next request, and a clone's, go straight to the body.
    client
        .token(&spec, "client_credentials", &inputs(SECRET))
        .unwrap();
    client
        .clone()
        .token(&spec, "client_credentials", &inputs(SECRET))
        .unwrap();
    let seen = server.received();
    assert_eq!(seen.len(), 4, "one request each after the first");
    assert!(
        seen[2..]
            .iter()
            .all(|r| r.header("authorization").is_none())
    );

    // Another client id at the same URL is probed on its own.
    let _ = client.token(
        &spec,
        "client_credentials",
        &Inputs::new()
            .with("client_id", "other")
            .with("client_secret", SECRET),
    );
    let seen = server.received();
    assert_eq!(seen.len(), 6);
    assert!(seen[4].header("authorization").is_some());
}

#[test]
fn auto_sends_one_basic_request_to_a_server_that_takes_basic() {
    let server = server(Accepts::Basic);
    let spec = spec(&server);
    let client = Client::new();
    for _ in 0..2 {
        client
            .token(&spec, "client_credentials", &inputs(SECRET))
            .unwrap();
    }
    let seen = server.received();
    assert_eq!(seen.len(), 2, "one request per token");
    assert!(seen.iter().all(|r| r.header("authorization").is_some()));
    assert_eq!(
        client
            .learned_client_auth()
            .iter()
            .map(|l| l.method)
            .collect::<Vec<_>>(),
        [ClientAuthMethod::Basic]
    );
}

#[test]
fn auto_with_a_wrong_secret_is_invalid_client_after_one_retry() {
    let server = server(Accepts::Body);
    let spec = spec(&server);
    let client = Client::new();
    let refused = client.token(&spec, "client_credentials", &inputs("wrong"));
    assert_eq!(provider_code(refused), (400, Some("invalid_client".into())));
    assert_eq!(server.received().len(), 2, "Basic, the body, and no more");
    assert!(client.learned_client_auth().is_empty(), "nothing worked");
    // Nothing was learned: the next attempt probes again, still twice and no more.
    let refused = client.token(&spec, "client_credentials", &inputs("wrong"));
    assert_eq!(provider_code(refused), (400, Some("invalid_client".into())));
    assert_eq!(server.received().len(), 4);
}

#[test]
fn other_refusals_are_not_retried() {
    let server =
        ReplayServer::with_handler(|_| json(400, serde_json::json!({"error": "invalid_scope"})))
            .unwrap();
    let spec = spec(&server);
    let refused = Client::new().token(&spec, "client_credentials", &inputs(SECRET));
    assert_eq!(provider_code(refused), (400, Some("invalid_scope".into())));
    assert_eq!(server.received().len(), 1);
}

#[test]
fn what_auto_learned_travels_in_the_cache_entry_to_the_next_process() {
    let server = server(Accepts::Body);
    let spec = spec(&server);
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("cache"));

    // "Process" one signs in and caches what it learned.
    let first = Client::new();
    let token = first
        .token(&spec, "client_credentials", &inputs(SECRET))
        .unwrap();
    let mut entry = StoredToken::new(&spec, "default", token, &inputs(SECRET));
    entry.keep_client_auth(&first);
    assert_eq!(entry.client_auth.len(), 1);
    assert_eq!(entry.client_auth[0].method, ClientAuthMethod::Post);
    // An expired token, so the next process refreshes.
    entry.token.expires_at = Some(1);
    specauth::store::Store::save(&store, &entry).unwrap();
    let cached = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    assert!(cached.contains(r#""method":"post""#), "{cached}");
    assert!(!cached.contains(SECRET), "the secret is not cached");
    assert_eq!(server.received().len(), 2);

    // "Process" two: a fresh client, taught by the entry, refreshes with one request.
    let second = Client::new();
    let secrets = Inputs::new().with("client_secret", SECRET);
    let refreshed = fresh_token(&second, &spec, &store, "default", &secrets, 60).unwrap();
    assert_eq!(refreshed.token.access_token.secret(), "at-1");
    let seen = server.received();
    assert_eq!(seen.len(), 3, "straight to the body");
    assert_eq!(
        field(&seen[2], "grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(seen[2].header("authorization"), None);
    assert_eq!(refreshed.client_auth, entry.client_auth);
}

#[test]
fn cache_entries_written_before_auto_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let store = TokenStore::new(&root);
    let server = server(Accepts::Basic);
    let spec = spec(&server);
    let token = Client::new()
        .token(&spec, "client_credentials", &inputs(SECRET))
        .unwrap();
    let entry = StoredToken::new(&spec, "default", token, &inputs(SECRET));
    specauth::store::Store::save(&store, &entry).unwrap();
    // The file as an older specauth wrote it: no `client_auth` key.
    let path = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("client_auth"), "{text}");
    let loaded = specauth::store::Store::load(&store, "auto-demo", "default")
        .unwrap()
        .unwrap();
    assert!(loaded.client_auth.is_empty());
    assert_eq!(loaded.token, entry.token);
}

#[test]
fn the_async_client_retries_and_remembers_the_same_way() {
    use specauth::{AsyncClient, Transport as _, UreqTransport};
    let server = server(Accepts::Body);
    let spec = spec(&server);
    // The real HTTP exchange, run inside the future (a test has no async HTTP stack to spare).
    let ureq = UreqTransport::new();
    let client = AsyncClient::with_transport(move |req: http::Request<Vec<u8>>| {
        let reply = ureq.send(req);
        async move { reply }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let token = client
            .token(&spec, "client_credentials", &inputs(SECRET))
            .await
            .unwrap();
        assert_eq!(token.access_token.secret(), "at-0");
        client
            .token(&spec, "client_credentials", &inputs(SECRET))
            .await
            .unwrap();
    });
    assert_eq!(
        server.received().len(),
        3,
        "Basic, the body; then the body at once"
    );
    assert_eq!(
        client.learned_client_auth()[0].method,
        ClientAuthMethod::Post
    );
}
