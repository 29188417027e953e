//! Sign-in the way current standards ask, against the real peer: the RFC 9207 `iss` check,
//! pushed authorization requests (RFC 9126), DPoP with server nonces (RFC 9449) and resource
//! indicators (RFC 8707). Included by tests/interop.rs, so it shares its peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use specauth::session::{BrowserLogin, BrowserOptions};
use specauth::{Client, Error, Inputs, Transport, TransportError, UreqTransport};

use super::harness::{self, Browser, Sandbox, Timer, query};
use super::{
    BASIC_ID, BASIC_SECRET, assert_exit, basic_inputs, introspect, issuer, load, pin_times, secret,
};

/// The real transport, counting the requests sent through it.
#[derive(Clone)]
struct Counting {
    inner: UreqTransport,
    sent: Arc<AtomicUsize>,
}

impl Counting {
    fn new() -> Counting {
        Counting {
            inner: UreqTransport::new(),
            sent: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Transport for Counting {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.send(request)
    }
}

/// Signs in as alice at the peer through `url` and returns the final redirect (not opened).
fn sign_in(url: &str, redirect_uri: &str) -> String {
    Browser::new().authorize(url, "alice", false, redirect_uri)
}

/// `url` with its `iss` parameter replaced by `iss` (or removed, with `None`): what a
/// man-in-the-middle (or a mix-up) would deliver.
fn with_iss(url: &str, iss: Option<&str>) -> String {
    let (base, q) = url.split_once('?').unwrap();
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        if k != "iss" {
            out.append_pair(&k, &v);
        }
    }
    if let Some(iss) = iss {
        out.append_pair("iss", iss);
    }
    format!("{base}?{}", out.finish())
}

/// Runs a library login with the redirect delivered by `deliver` (given the real final
/// redirect), and returns its result and how many requests reached the peer's token endpoint.
fn login_with(
    id: &str,
    inputs: &Inputs,
    deliver: impl FnOnce(String) -> String + Send + 'static,
) -> (Result<specauth::session::LoggedIn, Error>, usize, String) {
    let spec = load(id);
    let transport = Counting::new();
    let client = Client::with_transport(transport.clone());
    let login = BrowserLogin::begin(&client, &spec, inputs, &BrowserOptions::default()).unwrap();
    let pushes = transport.sent();
    let (url, redirect_uri) = (login.url().to_owned(), login.redirect_uri());
    let browser = std::thread::spawn({
        let url = url.clone();
        move || {
            let back = deliver(sign_in(&url, &redirect_uri));
            harness::http_get(&back)
        }
    });
    let result = login.finish(&client, &spec, Duration::from_secs(20));
    browser.join().unwrap();
    (result, transport.sent() - pushes, url)
}

#[test]
fn a_redirect_from_another_issuer_is_refused_before_the_code_is_redeemed() {
    let _t = Timer::start("a_redirect_from_another_issuer_is_refused_before_the_code_is_redeemed");
    // A trailing slash is another issuer: no normalisation (RFC 9207 §2.4, simple comparison).
    let slash = format!("{}/", issuer());
    let inputs = basic_inputs().with("scope", "openid");
    let (result, sent, _) = login_with("peer", &inputs, move |back| with_iss(&back, Some(&slash)));
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "unusable reply (HTTP 302): the authorization response came from issuer `{0}/`, but `{0}` was expected (RFC 9207: a mix-up attack, or the wrong server); the code was not redeemed; the reply begins: iss={0}/",
            issuer()
        )
    );
    assert_eq!(sent, 0, "no request may reach the token endpoint");

    // Without `iss` while the server says it always sends one: refused too.
    let required = inputs
        .clone()
        .with("authorization_response_iss_parameter_supported", "true");
    let (result, sent, _) = login_with("peer", &required, |back| with_iss(&back, None));
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "the authorization response carries no `iss`, but the server `{}` always sends one",
            issuer()
        )),
        "{err}"
    );
    assert_eq!(sent, 0);

    // The peer's own redirect passes, and the code is redeemed once.
    let (result, sent, _) = login_with("peer", &inputs, |back| back);
    let done = result.unwrap();
    assert_eq!(done.token.token_type, "Bearer");
    assert_eq!(sent, 1);
}

#[test]
fn a_client_that_requires_par_signs_in_by_pushing() {
    let _t = Timer::start("a_client_that_requires_par_signs_in_by_pushing");
    let inputs = Inputs::new()
        .with("issuer", issuer())
        .with("client_secret", "par-secret")
        .with("scope", "openid");

    // Without pushing, the peer refuses this client's authorization request.
    let spec = load("peer");
    let plain = BrowserLogin::start(
        &spec,
        &inputs.clone().with("client_id", "par-client"),
        &BrowserOptions::default(),
    )
    .unwrap();
    let back = sign_in(plain.url(), &plain.redirect_uri());
    let q = query(&back);
    assert_eq!(q["error"], "invalid_request", "{back}");
    assert_eq!(
        q["error_description"],
        "Pushed Authorization Request must be used"
    );

    // peer-par pushes: the browser sees only client_id and request_uri.
    let (result, sent, url) = login_with("peer-par", &inputs, |back| back);
    let p = query(&url);
    assert_eq!(
        p.keys().map(String::as_str).collect::<Vec<_>>(),
        ["client_id", "request_uri"]
    );
    assert_eq!(p["client_id"], "par-client");
    assert!(
        p["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"),
        "{url}"
    );
    assert!(url.starts_with(&format!("{}/auth?", issuer())), "{url}");
    let done = result.unwrap();
    assert_eq!(done.token.scope, Some(vec!["openid".to_owned()]));
    assert!(done.token.id_token.is_some());
    assert_eq!(sent, 1);

    // The CLI does the same.
    let sb = Sandbox::new();
    let run = sb.spawn(
        &[
            "login",
            "peer-par",
            "--no-browser",
            "--timeout",
            "20",
            "--set",
            "scope=openid",
        ],
        &secret("par-secret"),
    );
    let url = run.wait_for_line(&format!("{}/auth?", issuer()));
    let url = url.trim();
    assert_eq!(query(url).len(), 2, "{url}");
    let waiting = run.wait_for_line("Waiting for the redirect to ");
    let redirect_uri = waiting
        .trim_start_matches("Waiting for the redirect to ")
        .trim_end_matches(" …")
        .to_owned();
    let back = sign_in(url, &redirect_uri);
    harness::http_get(&back);
    let out = run.finish();
    assert_exit(&out, 0, "login peer-par");
    assert_eq!(sb.cached("peer-par").issuer.as_deref(), Some(issuer()));

    // A server that requires pushing, and a spec without the endpoint: refused before any
    // request is sent.
    let transport = Counting::new();
    let err = BrowserLogin::begin(
        &Client::with_transport(transport.clone()),
        &spec,
        &inputs
            .clone()
            .with("client_id", "par-client")
            .with("require_pushed_authorization_requests", "true"),
        &BrowserOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("declares no `pushed_authorization_request` endpoint"),
        "{err}"
    );
    assert_eq!(transport.sent(), 0);
}

#[test]
fn dpop_login_then_refresh_with_the_same_key_and_a_dpop_call_to_userinfo() {
    let _t = Timer::start("dpop_login_then_refresh_with_the_same_key_and_a_dpop_call_to_userinfo");
    let sb = Sandbox::new();
    let env = secret(BASIC_SECRET);
    let (_, out) = super::browser_login(
        &sb,
        "peer",
        &[
            "--set",
            "client_id=basic-client",
            "--set",
            "scope=openid",
            "--dpop",
        ],
        &env,
    );
    // Every token request met the peer's nonce demand (use_dpop_nonce) and was sent again.
    assert_exit(&out, 0, "login peer --dpop");
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["token_type"], "DPoP");
    assert_eq!(summary["dpop"], true);
    let first = sb.cached("peer");
    let key = first.dpop().unwrap().expect("a DPoP key in the cache");
    assert_eq!(first.token.token_type, "DPoP");
    // The key is in the 0600 cache file, never in what the CLI prints.
    assert_eq!(entry_mode(&sb, "peer"), 0o600);
    assert!(!out.stdout.contains(key.secret().secret()));
    assert!(!out.stderr.contains(key.secret().secret()));

    // The peer bound the token to the key's thumbprint.
    let spec = load("peer");
    let (active, claims) = introspect(&spec, &basic_inputs(), first.token.access_token.secret());
    assert!(active);
    assert_eq!(claims["token_type"], "DPoP");
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }));

    // A forced refresh uses the same key: the new token is bound to the same thumbprint.
    let out = sb.run(&["print-token", "peer", "--min-valid", "100000"], &env);
    assert_exit(&out, 0, "refresh of a DPoP-bound token");
    let second = sb.cached("peer");
    assert_ne!(second.token.access_token, first.token.access_token);
    assert_eq!(second.dpop_key, first.dpop_key);
    let (active, claims) = introspect(&spec, &basic_inputs(), second.token.access_token.secret());
    assert!(active);
    assert_eq!(
        pin_times(claims.clone(), 300)["cnf"]["jkt"],
        key.thumbprint()
    );

    // An API call: the userinfo endpoint wants a DPoP proof with its nonce.
    let me = format!("{}/me", issuer());
    let call = |nonce: Option<&str>| {
        let mut args = vec!["print-token", "peer", "--dpop", "GET", me.as_str()];
        if let Some(n) = nonce {
            args.extend(["--dpop-nonce", n]);
        }
        let out = sb.run(&args, &env);
        assert_exit(&out, 0, "print-token --dpop");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}", out.stdout);
        let auth = lines[0].strip_prefix("Authorization: ").unwrap().to_owned();
        let proof = lines[1].strip_prefix("DPoP: ").unwrap().to_owned();
        assert_eq!(auth, format!("DPoP {}", second.token.access_token.secret()));
        let reply = harness::agent()
            .get(&me)
            .header("Authorization", &auth)
            .header("DPoP", &proof)
            .call()
            .unwrap();
        let status = reply.status().as_u16();
        let nonce = reply
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut reply = reply;
        (
            status,
            nonce,
            reply.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    let (status, nonce, _) = call(None);
    assert_eq!(status, 401);
    let nonce = nonce.expect("the peer asks for a nonce");
    let (status, _, body) = call(Some(&nonce));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "sub": "alice" })
    );
    // `specauth curl` makes the proof for curl's own request, and the peer accepts it.
    let out = sb.run(
        &[
            "curl",
            "peer",
            "--dpop-nonce",
            &nonce,
            "--",
            "-sS",
            "-f",
            &me,
        ],
        &env,
    );
    assert_exit(&out, 0, "curl with a DPoP-bound token");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap(),
        json!({ "sub": "alice" })
    );
    // The same token as a bearer token is refused: it is bound to the key.
    let mut reply = harness::agent()
        .get(&me)
        .header(
            "Authorization",
            format!("Bearer {}", second.token.access_token.secret()),
        )
        .call()
        .unwrap();
    assert_eq!(
        reply.status().as_u16(),
        401,
        "{}",
        reply.body_mut().read_to_string().unwrap_or_default()
    );

    // A token without a key cannot make DPoP headers.
    let plain = Sandbox::new();
    let (_, out) = super::browser_login(
        &plain,
        "peer",
        &["--set", "client_id=basic-client", "--set", "scope=openid"],
        &env,
    );
    assert_exit(&out, 0, "login peer");
    let out = plain.run(&["print-token", "peer", "--dpop", "GET", &me], &env);
    assert_exit(&out, 2, "print-token --dpop of a bearer token");
    assert!(
        out.stderr.contains("is not bound to a DPoP key"),
        "{}",
        out.stderr
    );
}

/// The permission bits of the cache file of `provider` (profile `default`), with the file's
/// own check that it holds a DPoP key.
fn entry_mode(sb: &Sandbox, provider: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    let path = sb
        .dir
        .path()
        .join("store")
        .join(format!("{provider}@default.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let entry: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(entry["dpop_key"].is_string(), "{}", path.display());
    std::fs::metadata(&path).unwrap().permissions().mode() & 0o777
}

/// The device flow binds its token too: every poll carries a proof (and meets the peer's
/// nonce demand).
#[test]
fn dpop_with_the_device_flow() {
    let _t = Timer::start("dpop_with_the_device_flow");
    let sb = Sandbox::new();
    let (run, code) = super::device_login_with(&sb, false, &["--dpop"]);
    assert_eq!(super::device_decision(&code, "approve").0, 200);
    let out = run.finish();
    assert_exit(&out, 0, "login peer --device --dpop");
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["token_type"], "DPoP");
    assert_eq!(summary["dpop"], true);
    let entry = sb.cached("peer");
    let key = entry.dpop().unwrap().expect("a DPoP key in the cache");
    assert_eq!(entry_mode(&sb, "peer"), 0o600);
    let (active, claims) = introspect(
        &load("peer"),
        &basic_inputs(),
        entry.token.access_token.secret(),
    );
    assert!(active);
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }));
}

#[test]
fn a_token_bound_to_a_resource() {
    let _t = Timer::start("a_token_bound_to_a_resource");
    let sb = Sandbox::new();
    let env = secret(BASIC_SECRET);
    let (params, out) = {
        let mut all = vec![
            "login",
            "peer",
            "--no-browser",
            "--timeout",
            "20",
            "--set",
            "client_id=basic-client",
            "--set",
            "scope=api:read",
            "--set",
        ];
        let resource = format!("resource={}", super::API);
        all.push(&resource);
        let run = sb.spawn(&all, &env);
        let url = run.wait_for_line(&format!("{}/auth?", issuer()));
        let url = url.trim().to_owned();
        let params = query(&url);
        let back = sign_in(&url, &params["redirect_uri"]);
        harness::http_get(&back);
        (params, run.finish())
    };
    assert_exit(&out, 0, "login peer with a resource");
    assert_eq!(params["resource"], super::API);
    let entry = sb.cached("peer");
    assert_eq!(entry.resources, [super::API]);
    let (active, claims) = introspect(
        &load("peer"),
        &basic_inputs(),
        entry.token.access_token.secret(),
    );
    assert!(active);
    assert_eq!(claims["aud"], super::API);

    let out = sb.run(&["print-token", "peer", "--resource", super::API], &env);
    assert_exit(&out, 0, "print-token --resource");
    assert_eq!(out.stdout.trim(), entry.token.access_token.secret());
    let out = sb.run(
        &["print-token", "peer", "--resource", "https://other.example"],
        &env,
    );
    assert_exit(&out, 2, "print-token --resource of another resource");
    assert!(
        out.stderr
            .contains(&format!("was requested for {}", super::API)),
        "{}",
        out.stderr
    );
    let _ = BASIC_ID;
}

/// RFC 8707 in the token requests themselves. The resource is nobody's default at the peer, and
/// `openid` is asked for too: oidc-provider then gives a token that audience only when the token
/// request names the resource (its resolveResource); from the authorization request alone the
/// code exchange or refresh would yield a userinfo token without `aud`, as the control at the
/// end shows.
#[test]
fn the_code_exchange_and_the_refresh_carry_the_resource() {
    let _t = Timer::start("the_code_exchange_and_the_refresh_carry_the_resource");
    let resource = "http://127.0.0.1:9/mcp";
    let sb = Sandbox::new();
    let env = secret(BASIC_SECRET);
    let set_resource = format!("resource={resource}");
    let (params, out) = super::browser_login(
        &sb,
        "peer",
        &[
            "--set",
            "client_id=basic-client",
            "--set",
            "scope=openid mcp:tools",
            "--set",
            &set_resource,
        ],
        &env,
    );
    assert_exit(&out, 0, "login peer with a resource that is no default");
    assert_eq!(params["resource"], resource);
    let spec = load("peer");
    let first = sb.cached("peer");
    assert_eq!(first.resources, [resource]);
    let (active, claims) = introspect(&spec, &basic_inputs(), first.token.access_token.secret());
    assert!(active);
    assert_eq!(claims["aud"], resource, "{claims}");
    assert_eq!(claims["scope"], "mcp:tools", "{claims}");

    // The refresh sends it again (the cache kept it), so the new token has the audience too.
    let out = sb.run(
        &["-v", "print-token", "peer", "--min-valid", "100000"],
        &env,
    );
    assert_exit(&out, 0, "refresh of a token bound to a resource");
    let refresh_form = out
        .stderr
        .split("→ refresh_token")
        .nth(1)
        .expect("the refresh request is logged");
    assert!(
        refresh_form.contains("&resource=http%3A%2F%2F127.0.0.1%3A9%2Fmcp"),
        "{refresh_form}"
    );
    let second = sb.cached("peer");
    assert_ne!(second.token.access_token, first.token.access_token);
    let (active, claims) = introspect(&spec, &basic_inputs(), second.token.access_token.secret());
    assert!(active);
    assert_eq!(claims["aud"], resource, "{claims}");

    // Control: the same refresh without `resource` gets no such audience from the peer.
    let refresh = second.token.refresh_token.expect("a rotated refresh token");
    let unbound = Client::new()
        .token(
            &spec,
            "refresh_token",
            &basic_inputs().with("refresh_token", refresh.secret()),
        )
        .unwrap();
    let (active, claims) = introspect(&spec, &basic_inputs(), unbound.access_token.secret());
    assert!(active);
    assert!(claims.get("aud").is_none(), "{claims}");
}

/// The MCP server of the lane (tests/interop/mcp.mjs, the official TypeScript SDK), started once
/// per test process against the peer.
struct McpServer {
    url: String,
    _stdin: std::sync::Mutex<std::process::ChildStdin>,
    _child: std::sync::Mutex<std::process::Child>,
}

static MCP: std::sync::OnceLock<McpServer> = std::sync::OnceLock::new();

fn mcp_server() -> &'static str {
    &MCP.get_or_init(|| {
        use std::io::BufRead as _;
        let issuer = issuer().to_owned();
        let mut child = std::process::Command::new("node")
            .arg("mcp.mjs")
            .current_dir(harness::interop_dir())
            .env("ISSUER", issuer)
            .env("PORT", "0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("`node mcp.mjs` starts (see tests/interop/README.md)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("mcp.mjs prints READY within 30 s");
        let url = line
            .strip_prefix("READY ")
            .expect("a READY line")
            .to_owned();
        McpServer {
            url,
            _stdin: std::sync::Mutex::new(stdin),
            _child: std::sync::Mutex::new(child),
        }
    })
    .url
}

/// A JSON-RPC request to the MCP server, with a bearer token or without: (status, reply).
fn mcp_call(token: Option<&str>, body: serde_json::Value) -> (u16, String) {
    let mut req = harness::agent()
        .post(mcp_server())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut reply = req.send(body.to_string()).unwrap();
    let status = reply.status().as_u16();
    (
        status,
        reply.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn initialize() -> serde_json::Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": { "name": "interop", "version": "0" } } })
}

/// `login --mcp URL` as an agent would run it, the test as the browser (`rounds` sign-ins: 2
/// when the server asks for more scope).
fn mcp_login_to(
    sb: &Sandbox,
    specs: &std::path::Path,
    server: &str,
    rounds: usize,
) -> harness::Out {
    mcp_login_with(sb, specs, server, rounds, &[])
}

/// [`mcp_login_to`] with more arguments.
fn mcp_login_with(
    sb: &Sandbox,
    specs: &std::path::Path,
    server: &str,
    rounds: usize,
    extra: &[&str],
) -> harness::Out {
    let mut args = vec!["login", "--mcp", server, "--no-browser", "--timeout", "20"];
    args.extend_from_slice(extra);
    let cmd = sb.command_with_specs(specs, &args, &[]);
    let run = sb.spawn_command(cmd);
    for _ in 0..rounds {
        let url = run.wait_for_line(&format!("{}/auth?", issuer()));
        let url = url.trim().to_owned();
        // Pushed (the peer offers PAR): only client_id and request_uri travel.
        assert_eq!(query(&url).len(), 2, "{url}");
        let waiting = run.wait_for_line("Waiting for the redirect to ");
        let redirect_uri = waiting
            .trim_start_matches("Waiting for the redirect to ")
            .trim_end_matches(" …")
            .to_owned();
        let back = Browser::new().authorize(&url, "alice", false, &redirect_uri);
        assert!(back.contains("code="), "{back}");
        harness::http_get(&back);
    }
    run.finish()
}

fn mcp_login(sb: &Sandbox, specs: &std::path::Path) -> harness::Out {
    mcp_login_to(sb, specs, mcp_server(), 1)
}

#[test]
fn an_mcp_server_that_wants_more_scope_gets_a_step_up() {
    let _t = Timer::start("an_mcp_server_that_wants_more_scope_gets_a_step_up");
    let admin = mcp_server().replace("/mcp", "/mcp-admin");
    let sb = Sandbox::new();
    let specs = sb.dir.path().join("my-specs");
    // The first token (scope mcp:tools, from the 401) gets 403 insufficient_scope; the second
    // sign-in asks for the union.
    let out = mcp_login_to(&sb, &specs, &admin, 2);
    assert_exit(&out, 0, "login --mcp with a step-up");
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["scope"], json!(["mcp:admin", "mcp:tools"]));
    let id = summary["provider"].as_str().unwrap();
    let token = sb.cached(id).token.access_token;
    let mut reply = harness::agent()
        .post(&admin)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {}", token.secret()))
        .send(initialize().to_string())
        .unwrap();
    assert_eq!(
        reply.status().as_u16(),
        200,
        "{}",
        reply.body_mut().read_to_string().unwrap_or_default()
    );
}

#[test]
fn login_to_an_mcp_server_from_nothing_then_tools_list() {
    let _t = Timer::start("login_to_an_mcp_server_from_nothing_then_tools_list");
    let server = mcp_server().to_owned();
    // Without a token: 401 and the challenge.
    let (status, _) = mcp_call(None, initialize());
    assert_eq!(status, 401);

    let sb = Sandbox::new();
    let specs = sb.dir.path().join("my-specs");
    let out = mcp_login(&sb, &specs);
    assert_exit(&out, 0, "login --mcp");
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let id = summary["provider"].as_str().unwrap().to_owned();
    assert_eq!(
        id,
        format!("mcp-{}", specauth::discovery::id_from_issuer(&server))
    );
    assert_eq!(summary["mcp"]["client"], "registered");
    assert_eq!(summary["mcp"]["issuer"], issuer());
    assert_eq!(summary["resources"], json!([server]));
    assert_eq!(summary["scope"], json!(["mcp:tools"]));

    // The spec it wrote checks, and print-token serves the token from it.
    let spec_path = specs.join(format!("{id}.yaml"));
    let spec = specauth::Spec::from_file(&spec_path).unwrap();
    assert!(spec.supports(&specauth::RequestKind::PushedAuthorization));
    let print = |extra: &[&str]| {
        let mut args = vec!["print-token", id.as_str()];
        args.extend_from_slice(extra);
        let out = harness::run_bounded(
            &mut sb.command_with_specs(&specs, &args, &[]),
            harness::CLI_TIMEOUT,
        )
        .unwrap();
        assert_exit(&out, 0, "print-token of the MCP server");
        out.stdout.trim().to_owned()
    };
    let token = print(&[]);
    assert_eq!(token, sb.cached(&id).token.access_token.secret());

    // A real MCP session with it: initialize, then tools/list.
    let (status, body) = mcp_call(Some(&token), initialize());
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["result"]["serverInfo"]["name"], "specauth-interop");
    let (status, body) = mcp_call(
        Some(&token),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {} }),
    );
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["result"]["tools"][0]["name"], "echo");

    // The token is refreshed like any other (the peer rotates), and still works.
    let fresh = print(&["--min-valid", "100000"]);
    assert_ne!(fresh, token);
    let (status, body) = mcp_call(Some(&fresh), initialize());
    assert_eq!(status, 200, "{body}");

    // Signing in again reuses the registration kept in the spec (same issuer).
    let out = mcp_login(&sb, &specs);
    assert_exit(&out, 0, "login --mcp again");
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["mcp"]["client"], "reused");

    // `import` of the server's URL writes a spec bound to it, from its resource metadata.
    let out = sb.run(&["import", &server, "--id", "mcp-imported"], &[]);
    assert_exit(&out, 0, "import of an MCP server URL");
    let imported = specauth::Spec::from_yaml("mcp-imported.yaml", &out.stdout).unwrap();
    let default = |name: &str| {
        imported
            .inputs()
            .find(|(n, _)| *n == name)
            .and_then(|(_, d)| d.default.clone())
    };
    assert_eq!(default("resource").as_deref(), Some(server.as_str()));
    assert_eq!(default("issuer").as_deref(), Some(issuer()));
    assert_eq!(default("scope").as_deref(), Some("mcp:tools"));

    // A token for another audience is refused by the MCP server.
    let token = Client::new()
        .token(
            &load("peer"),
            "client_credentials",
            &basic_inputs().with("scope", "api:read"),
        )
        .unwrap();
    let (status, _) = mcp_call(Some(token.access_token.secret()), initialize());
    assert_eq!(status, 401);
}

/// A client registered beforehand comes as every command's inputs do: its id from the profiles
/// file under the spec's id, its secret from a file (`--set client_secret=@FILE`).
#[test]
fn login_to_an_mcp_server_with_a_client_registered_beforehand() {
    let _t = Timer::start("login_to_an_mcp_server_with_a_client_registered_beforehand");
    let server = mcp_server().to_owned();
    let sb = Sandbox::new();
    let specs = sb.dir.path().join("my-specs");
    let id = format!("mcp-{}", specauth::discovery::id_from_issuer(&server));
    std::fs::write(
        sb.dir.path().join("profiles.yaml"),
        format!("{id}:\n  default:\n    client_id: {BASIC_ID}\n"),
    )
    .unwrap();
    let secret_file = sb.dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{BASIC_SECRET}\n")).unwrap();
    let set = format!("client_secret=@{}", secret_file.display());
    let out = mcp_login_with(&sb, &specs, &server, 1, &["--set", &set]);
    assert_exit(&out, 0, "login --mcp with a pre-registered client");
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["provider"], id.as_str());
    assert_eq!(summary["mcp"]["client"], "pre-registered");
    // The peer issued the token to that client (authenticated with the secret from the file),
    // for the server.
    let token = sb.cached(&id).token.access_token;
    let (active, claims) = introspect(&load("peer"), &basic_inputs(), token.secret());
    assert!(active);
    assert_eq!(claims["client_id"], BASIC_ID, "{claims}");
    assert_eq!(claims["aud"], server.as_str(), "{claims}");
    // The spec keeps the id, never the secret.
    let yaml = std::fs::read_to_string(specs.join(format!("{id}.yaml"))).unwrap();
    assert!(yaml.contains(BASIC_ID), "{yaml}");
    assert!(!yaml.contains(BASIC_SECRET), "{yaml}");
    assert!(!out.stderr.contains(BASIC_SECRET) && !out.stdout.contains(BASIC_SECRET));
}
