//! The interop lane: specauth, as a library and as the `specauth` binary, against a real
//! OAuth 2 / OpenID Connect server, `oidc-provider` 9.13.3 on Node (tests/interop/server.mjs,
//! documented in tests/interop/README.md).
//!
//! The specs for the peer live in tests/interop/specs, a folder of a user's own specs
//! (`--specs DIR`, `Loader::with_dir`). The peer's port is dynamic, so they take the issuer as
//! an input (`SPECAUTH_ISSUER`, `Inputs::with("issuer", …)`).
//!
//! A second, independent peer, Python Authlib, proves the assertion grants and client
//! assertions (tests/interop/authlib.rs; needs python3 with venv, and PyPI on the first run).
//!
//! Needs Node.js >= 20.18 and npm: the first test runs `npm ci` in tests/interop when
//! `node_modules` is missing or stale, then starts one peer for the whole test process. Without
//! Node the tests fail, saying what to install.

#[path = "interop/authlib.rs"]
mod authlib;
mod common;
#[path = "interop/harness.rs"]
mod harness;
#[path = "interop/jwt.rs"]
mod jwt;
#[path = "interop/mtls.rs"]
mod mtls;
#[path = "interop/signin.rs"]
mod signin;

use common::NormaliseToken as _;

use harness::{Browser, Out, Sandbox, Timer, agent, device_decision, now, peer, query, specs_dir};
use serde_json::{Value, json};
use specauth::{Client, Error, Inputs, Loader, Outcome, RequestKind, Spec};

const BASIC_ID: &str = "basic-client";
const BASIC_SECRET: &str = "basic-secret";
const POST_ID: &str = "post-client";
const POST_SECRET: &str = "post-secret";
const PUBLIC_ID: &str = "public-client";
/// The peer's resource server for `api:*` scopes and client credentials.
const API: &str = "urn:specauth:api";

fn load(id: &str) -> Spec {
    Loader::new()
        .with_dir(specs_dir())
        .load(id)
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn issuer() -> &'static str {
    &peer().issuer
}

fn secret(value: &str) -> [(&str, &str); 1] {
    [("SPECAUTH_CLIENT_SECRET", value)]
}

/// Sends a rendered request with a plain ureq agent: the step-by-step library API with the
/// caller's own HTTP stack.
fn send(request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    let reply = agent().run(request).expect("the peer answers");
    let (parts, mut body) = reply.into_parts();
    let bytes = body.read_to_vec().expect("a reply body");
    http::Response::from_parts(parts, bytes)
}

/// Asserts the exit code, showing stderr (and the peer's log) otherwise.
fn assert_exit(out: &Out, code: i32, what: &str) {
    assert_eq!(
        out.code(),
        Some(code),
        "{what}\nstdout:\n{}\nstderr:\n{}\npeer log (tail):\n{}",
        out.stdout,
        out.stderr,
        peer().log_tail()
    );
}

/// A `--json` provider error with every field pinned.
fn provider_error(status: u16, code: &str, message: &str) -> Value {
    json!({ "error": {
        "kind": "provider", "status": status, "code": code, "message": message,
        "hint": null, "uri": null
    }})
}

/// The CLI's token JSON for a fresh token of the peer: exactly these keys and values.
fn assert_cli_token(t: &Value, scope: &[&str], refresh: bool) {
    let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec!["access_token", "token_type", "expires_in", "expires_at"];
    if refresh {
        want.push("refresh_token");
    }
    want.push("scope");
    assert_eq!(keys, want, "{t}");
    assert_eq!(t["access_token"].as_str().unwrap().len(), 43, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 300);
    let at = t["expires_at"].as_u64().unwrap();
    assert!((now() + 290..=now() + 300).contains(&at), "{t}");
    assert_eq!(t["scope"], json!(scope));
}

/// The library's token for a fresh token of the peer.
fn assert_token(t: &specauth::Token, scope: &[&str], refresh: bool) {
    assert_eq!(t.access_token.secret().len(), 43);
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, Some(300));
    let at = t.expires_at.unwrap();
    assert!((now() + 290..=now() + 300).contains(&at), "{at}");
    assert_eq!(
        t.scope.as_deref(),
        Some(&scope.iter().map(ToString::to_string).collect::<Vec<_>>()[..])
    );
    assert_eq!(t.refresh_token.is_some(), refresh);
    assert!(t.id_token.is_none());
}

/// An introspection reply with `exp`/`iat` checked (`ttl` apart, issued just now) and then
/// pinned, so the whole object can be compared exactly.
fn pin_times(mut v: Value, ttl: u64) -> Value {
    let (exp, iat) = (v["exp"].as_u64().unwrap(), v["iat"].as_u64().unwrap());
    assert_eq!(exp - iat, ttl, "{v}");
    assert!(iat.abs_diff(now()) <= 30, "{v}");
    v["exp"] = json!("EXP");
    v["iat"] = json!("IAT");
    v
}

/// Introspects `token` through the library (`Client::send` of the introspection request).
fn introspect(spec: &Spec, inputs: &Inputs, token: &str) -> (bool, Value) {
    let inputs = inputs.clone().with("token", token);
    match Client::new()
        .send(spec, RequestKind::Introspection, &inputs)
        .unwrap()
    {
        Outcome::Introspection(i) => (i.active, i.claims),
        other => panic!("expected an introspection, got {other:?}"),
    }
}

fn basic_inputs() -> Inputs {
    Inputs::new()
        .with("issuer", issuer())
        .with("client_id", BASIC_ID)
        .with("client_secret", BASIC_SECRET)
}

/// The introspection of an API access token issued to alice.
fn user_api_token(client_id: &str) -> Value {
    json!({ "active": true, "sub": "alice", "client_id": client_id, "exp": "EXP", "iat": "IAT",
            "iss": issuer(), "scope": "api:read", "aud": API, "token_type": "Bearer" })
}

/// `login PROVIDER --no-browser ARGS`, with the test as the browser: reads the authorization
/// URL from stderr, signs in as alice through the peer's scripted interaction, and delivers the
/// final redirect to the CLI's listener. Returns the authorization URL's parameters and the
/// finished process.
fn browser_login(
    sb: &Sandbox,
    provider: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::collections::BTreeMap<String, String>, Out) {
    let mut all = vec!["login", provider, "--no-browser", "--timeout", "20"];
    all.extend_from_slice(args);
    let run = sb.spawn(&all, env);
    let url = run.wait_for_line(&format!("{}/auth?", issuer()));
    let params = query(&url);
    let redirect_uri = params["redirect_uri"].clone();
    let waiting = run.wait_for_line("Waiting for the redirect");
    assert_eq!(
        waiting,
        format!("Waiting for the redirect to {redirect_uri} …")
    );
    let back = Browser::new().authorize(&url, "alice", false, &redirect_uri);
    let q = query(&back);
    assert_eq!(q["state"], params["state"], "{back}");
    assert_eq!(q["iss"], issuer(), "{back}");
    assert_eq!(q["code"].len(), 43, "{back}");
    let (status, page) = harness::http_get(&back);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in."), "{page}");
    (params, run.finish())
}

/// The authorization request specauth sends: PKCE S256, a random state, a loopback redirect.
fn assert_authorize_params(
    p: &std::collections::BTreeMap<String, String>,
    client_id: &str,
    scope: &str,
) {
    let keys: Vec<&str> = p.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "redirect_uri",
            "response_type",
            "scope",
            "state"
        ]
    );
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], client_id);
    assert_eq!(p["scope"], scope);
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"].len(), 43);
    assert_eq!(p["state"].len(), 32);
    let port = p["redirect_uri"]
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/callback"))
        .unwrap_or_else(|| panic!("redirect_uri {}", p["redirect_uri"]));
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{port}");
}

/// The one-line summary `login` prints.
fn assert_login_summary(out: &Out, provider: &str, scope: &[&str]) {
    let s: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let at = s["expires_at"].as_u64().unwrap();
    assert!((now() + 290..=now() + 300).contains(&at), "{s}");
    assert_eq!(
        s,
        json!({ "provider": provider, "profile": "default", "token_type": "Bearer",
                "expires_at": at, "refreshable": true, "scope": scope })
    );
}

// ---------------------------------------------------------------------------------------------
// client_credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn client_credentials_with_basic() {
    let _t = Timer::start("client_credentials_with_basic");
    let spec = load("peer");
    let inputs = basic_inputs().with("scope", "api:read");

    // Library, one call.
    let token = Client::new()
        .token(&spec, "client_credentials", &inputs)
        .unwrap();
    assert_token(&token, &["api:read"], false);

    // Library, step by step with our own HTTP client.
    let request = spec.render("client_credentials", &inputs).unwrap();
    let http = request.http();
    assert_eq!(http.uri().to_string(), format!("{}/token", issuer()));
    assert_eq!(
        http.headers()["authorization"],
        "Basic YmFzaWMtY2xpZW50OmJhc2ljLXNlY3JldA=="
    );
    assert_eq!(
        http.body(),
        b"grant_type=client_credentials&scope=api%3Aread"
    );
    let reply = send(request.into_http());
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(reply.headers()["cache-control"], "no-store");
    let token = spec
        .normalise_token("client_credentials", &inputs, &reply, now())
        .unwrap();
    assert_token(&token, &["api:read"], false);
    let (active, value) = introspect(&spec, &inputs, token.access_token.secret());
    assert!(active);
    assert_eq!(
        pin_times(value, 300),
        json!({ "active": true, "client_id": BASIC_ID, "exp": "EXP", "iat": "IAT",
                "iss": issuer(), "aud": API, "scope": "api:read", "token_type": "Bearer" })
    );

    // CLI.
    let sb = Sandbox::new();
    let out = sb.run(
        &[
            "token",
            "peer",
            "client_credentials",
            "--set",
            "client_id=basic-client",
            "--set",
            "scope=api:read",
        ],
        &secret(BASIC_SECRET),
    );
    assert_exit(&out, 0, "token peer client_credentials");
    assert_cli_token(
        &serde_json::from_str(out.stdout.trim()).unwrap(),
        &["api:read"],
        false,
    );
}

#[test]
fn client_credentials_with_post() {
    let _t = Timer::start("client_credentials_with_post");
    let spec = load("peer-post");
    let inputs = Inputs::new()
        .with("issuer", issuer())
        .with("client_id", POST_ID)
        .with("client_secret", POST_SECRET)
        .with("scope", "api:read api:write");

    let request = spec.render("client_credentials", &inputs).unwrap();
    assert!(request.http().headers().get("authorization").is_none());
    assert_eq!(
        request.http().body(),
        b"grant_type=client_credentials&scope=api%3Aread+api%3Awrite&client_id=post-client&client_secret=post-secret"
    );
    let token = spec
        .normalise_token(
            "client_credentials",
            &inputs,
            &send(request.into_http()),
            now(),
        )
        .unwrap();
    assert_token(&token, &["api:read", "api:write"], false);

    let token = Client::new()
        .token(&spec, "client_credentials", &inputs)
        .unwrap();
    assert_token(&token, &["api:read", "api:write"], false);
    let (active, value) = introspect(&spec, &inputs, token.access_token.secret());
    assert!(active);
    assert_eq!(
        pin_times(value, 300),
        json!({ "active": true, "client_id": POST_ID, "exp": "EXP", "iat": "IAT",
                "iss": issuer(), "aud": API, "scope": "api:read api:write", "token_type": "Bearer" })
    );

    let sb = Sandbox::new();
    let out = sb.run(
        &[
            "token",
            "peer-post",
            "client_credentials",
            "--set",
            "client_id=post-client",
            "--set",
            "scope=api:read",
        ],
        &secret(POST_SECRET),
    );
    assert_exit(&out, 0, "token peer-post client_credentials");
    assert_cli_token(
        &serde_json::from_str(out.stdout.trim()).unwrap(),
        &["api:read"],
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Authorization code + PKCE, refresh rotation
// ---------------------------------------------------------------------------------------------

#[test]
fn browser_login_then_refresh_rotation_and_reuse_detection() {
    let _t = Timer::start("browser_login_then_refresh_rotation_and_reuse_detection");
    let sb = Sandbox::new();
    let env = secret(BASIC_SECRET);
    let (params, out) = browser_login(
        &sb,
        "peer",
        &["--set", "client_id=basic-client", "--set", "scope=api:read"],
        &env,
    );
    assert_exit(&out, 0, "login peer");
    assert_authorize_params(&params, BASIC_ID, "api:read");
    assert_login_summary(&out, "peer", &["api:read"]);

    // The cache: the token and the non-secret inputs (the issuer too), never the secret.
    let first = sb.cached("peer");
    assert_eq!(
        first.inputs,
        [
            ("client_id", BASIC_ID),
            ("issuer", issuer()),
            ("redirect_uri", params["redirect_uri"].as_str()),
            ("scope", "api:read"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into()
    );
    assert_eq!(
        first.token.refresh_token.as_ref().unwrap().secret().len(),
        43
    );
    assert!(first.token.id_token.is_none());

    // print-token prints the cached token, and the peer says it is alice's API token.
    let out = sb.run(&["print-token", "peer"], &env);
    assert_exit(&out, 0, "print-token peer");
    let access = first.token.access_token.secret();
    assert_eq!(out.stdout, format!("{access}\n"));
    let spec = load("peer");
    let (active, value) = introspect(&spec, &basic_inputs(), access);
    assert!(active);
    assert_eq!(pin_times(value, 300), user_api_token(BASIC_ID));

    // A forced refresh: new access and refresh tokens (the peer rotates on every use).
    let out = sb.run(&["print-token", "peer", "--min-valid", "100000"], &env);
    assert_exit(&out, 0, "print-token --min-valid 100000");
    let second = sb.cached("peer");
    let new_access = second.token.access_token.secret();
    assert_eq!(out.stdout, format!("{new_access}\n"));
    assert_ne!(new_access, access);
    let old_refresh = first.token.refresh_token.as_ref().unwrap().secret();
    let new_refresh = second.token.refresh_token.as_ref().unwrap().secret();
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(second.token.scope, Some(vec!["api:read".to_owned()]));
    assert_eq!(second.inputs, first.inputs);
    let (active, value) = introspect(&spec, &basic_inputs(), new_access);
    assert!(active);
    assert_eq!(pin_times(value, 300), user_api_token(BASIC_ID));

    // Re-using the rotated refresh token is refused…
    let out = sb.run(
        &[
            "--json",
            "token",
            "peer",
            "refresh_token",
            "--set",
            "client_id=basic-client",
            "--set",
            &format!("refresh_token={old_refresh}"),
        ],
        &env,
    );
    assert_exit(
        &out,
        1,
        "token peer refresh_token with the old refresh token",
    );
    assert_eq!(
        out.json_error(),
        provider_error(400, "invalid_grant", "grant request is invalid")
    );
    assert_eq!(out.stdout, "");
    assert!(!out.stderr.contains(old_refresh), "{}", out.stderr);

    // …and the peer revokes the whole grant: the newest tokens are dead too.
    let out = sb.run(&["introspect", "peer", "--which", "access"], &env);
    assert_exit(&out, 0, "introspect after re-use");
    assert_eq!(out.stdout, "{\"active\":false}\n");
    let out = sb.run(
        &["--json", "print-token", "peer", "--min-valid", "100000"],
        &env,
    );
    // A refresh token the provider no longer accepts: only a new sign-in helps (exit 4),
    // and the provider's refusal stays in the error.
    assert_exit(&out, 4, "refresh with the revoked grant");
    let err = &out.json_error()["error"];
    assert_eq!(
        (&err["kind"], &err["status"], &err["code"]),
        (&json!("sign_in"), &json!(400), &json!("invalid_grant"))
    );
    let message = err["message"].as_str().unwrap_or("");
    assert!(
        message.contains("grant request is invalid")
            && message.ends_with("run `specauth login peer` again"),
        "{message}"
    );
}

#[test]
fn browser_login_with_a_public_client() {
    let _t = Timer::start("browser_login_with_a_public_client");
    let sb = Sandbox::new();
    let (params, out) = browser_login(
        &sb,
        "peer-public",
        &["--set", "client_id=public-client", "--set", "scope=openid"],
        &[],
    );
    assert_exit(&out, 0, "login peer-public");
    assert_authorize_params(&params, PUBLIC_ID, "openid");
    assert_login_summary(&out, "peer-public", &["openid"]);
    let first = sb.cached("peer-public");

    // An ID token signed by the peer's key, for alice and this client.
    let id_token = first.token.id_token.as_ref().expect("an ID token").secret();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "{id_token}");
    let decode = |s: &str| -> Value {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert_eq!(
        decode(parts[0]),
        json!({ "alg": "RS256", "kid": "interop-rs256" })
    );
    let claims = decode(parts[1]);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], PUBLIC_ID);
    assert_eq!(claims["iss"], issuer());

    let out = sb.run(&["print-token", "peer-public"], &[]);
    assert_exit(&out, 0, "print-token peer-public");
    let access = first.token.access_token.secret();
    assert_eq!(out.stdout, format!("{access}\n"));
    // A public client introspects its own tokens with client_id only.
    let out = sb.run(&["introspect", "peer-public", "--which", "access"], &[]);
    assert_exit(&out, 0, "introspect peer-public");
    assert_eq!(
        pin_times(serde_json::from_str(&out.stdout).unwrap(), 300),
        json!({ "active": true, "sub": "alice", "client_id": PUBLIC_ID, "exp": "EXP", "iat": "IAT",
                "iss": issuer(), "scope": "openid", "token_type": "Bearer" })
    );

    // Refresh without a secret: client_id in the body.
    let out = sb.run(
        &["print-token", "peer-public", "--min-valid", "100000"],
        &[],
    );
    assert_exit(&out, 0, "refresh of a public client");
    let second = sb.cached("peer-public");
    assert_ne!(second.token.access_token.secret(), access);
    assert_eq!(
        out.stdout,
        format!("{}\n", second.token.access_token.secret())
    );
    assert_ne!(
        second.token.refresh_token.as_ref().unwrap().secret(),
        first.token.refresh_token.as_ref().unwrap().secret()
    );
    assert!(second.token.id_token.is_some());
}

#[test]
fn browser_login_with_client_secret_post() {
    let _t = Timer::start("browser_login_with_client_secret_post");
    let sb = Sandbox::new();
    let env = secret(POST_SECRET);
    let (params, out) = browser_login(
        &sb,
        "peer-post",
        &["--set", "client_id=post-client", "--set", "scope=api:read"],
        &env,
    );
    assert_exit(&out, 0, "login peer-post");
    assert_authorize_params(&params, POST_ID, "api:read");
    assert_login_summary(&out, "peer-post", &["api:read"]);
    let out = sb.run(&["print-token", "peer-post"], &env);
    assert_exit(&out, 0, "print-token peer-post");
    let access = out.stdout.trim();
    assert_eq!(access, sb.cached("peer-post").token.access_token.secret());
    let inputs = Inputs::new()
        .with("issuer", issuer())
        .with("client_id", POST_ID)
        .with("client_secret", POST_SECRET);
    let (active, value) = introspect(&load("peer-post"), &inputs, access);
    assert!(active);
    assert_eq!(pin_times(value, 300), user_api_token(POST_ID));
}

// ---------------------------------------------------------------------------------------------
// Device flow, revocation, introspection
// ---------------------------------------------------------------------------------------------

/// Starts `login peer --device` for basic-client and reads the verification URI and user code.
fn device_login(sb: &Sandbox, json: bool) -> (harness::Running, String) {
    device_login_with(sb, json, &[])
}

/// [`device_login`] with more arguments.
fn device_login_with(sb: &Sandbox, json: bool, extra: &[&str]) -> (harness::Running, String) {
    let mut args = vec![
        "login",
        "peer",
        "--device",
        "--set",
        "client_id=basic-client",
        "--set",
        "scope=api:read",
        "--timeout",
        "20",
    ];
    if json {
        args.insert(0, "--json");
    }
    args.extend_from_slice(extra);
    let run = sb.spawn(&args, &secret(BASIC_SECRET));
    let line = run.wait_for_line("enter the code");
    let prefix = format!("To sign in, open {}/device and enter the code ", issuer());
    let code = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let alphabet = "BCDFGHJKLMNPQRSTVWXZ";
    assert!(
        code.len() == 9
            && code.char_indices().all(|(i, c)| if i == 4 {
                c == '-'
            } else {
                alphabet.contains(c)
            }),
        "{code}"
    );
    let complete = run.wait_for_line("(or open");
    assert_eq!(
        complete,
        format!("(or open {}/device?user_code={code})", issuer())
    );
    (run, code)
}

#[test]
fn device_login_approved_then_revocation_and_introspection() {
    let _t = Timer::start("device_login_approved_then_revocation_and_introspection");
    let sb = Sandbox::new();
    let env = secret(BASIC_SECRET);
    let (run, code) = device_login(&sb, false);
    assert_eq!(
        device_decision(&code, "approve"),
        (
            200,
            json!({ "status": "approved", "user_code": code, "sub": "alice" })
        )
    );
    let out = run.finish();
    assert_exit(&out, 0, "login peer --device");
    assert_login_summary(&out, "peer", &["api:read"]);
    // Redeemed once, the code is still known to the peer, as used.
    assert_eq!(
        device_decision(&code, "approve"),
        (
            400,
            json!({ "error": "already_used", "error_description": "user_code already used" })
        )
    );

    let out = sb.run(&["introspect", "peer", "--which", "access"], &env);
    assert_exit(&out, 0, "introspect access");
    assert_eq!(
        pin_times(serde_json::from_str(&out.stdout).unwrap(), 300),
        user_api_token(BASIC_ID)
    );
    let out = sb.run(&["introspect", "peer"], &env); // the refresh token by default
    assert_exit(&out, 0, "introspect refresh");
    assert_eq!(
        pin_times(serde_json::from_str(&out.stdout).unwrap(), 3600),
        json!({ "active": true, "sub": "alice", "client_id": BASIC_ID, "exp": "EXP", "iat": "IAT",
                "iss": issuer(), "scope": "api:read" })
    );

    let out = sb.run(&["revoke", "peer", "--which", "access"], &env);
    assert_exit(&out, 0, "revoke access");
    assert_eq!(out.stderr, "Revoked.\n");
    assert_eq!(out.stdout, "");
    let out = sb.run(&["introspect", "peer", "--which", "access"], &env);
    assert_exit(&out, 0, "introspect after revoke");
    assert_eq!(out.stdout, "{\"active\":false}\n");
    // Revoking one token of a grant revokes all of them at this peer.
    let out = sb.run(&["introspect", "peer", "--which", "refresh"], &env);
    assert_exit(&out, 0, "introspect refresh after revoke");
    assert_eq!(out.stdout, "{\"active\":false}\n");

    let out = sb.run(&["logout", "peer"], &env);
    assert_exit(&out, 0, "logout");
    assert!(sb.store().load("peer", "default").unwrap().is_none());
}

#[test]
fn device_login_denied() {
    let _t = Timer::start("device_login_denied");
    let sb = Sandbox::new();
    let (run, code) = device_login(&sb, true);
    assert_eq!(
        device_decision(&code, "deny"),
        (200, json!({ "status": "denied", "user_code": code }))
    );
    let out = run.finish();
    assert_exit(&out, 1, "login peer --device, denied");
    assert_eq!(out.stdout, "");
    let last = out.stderr.lines().last().unwrap_or("");
    assert_eq!(
        serde_json::from_str::<Value>(last).unwrap(),
        provider_error(400, "access_denied", "End-User aborted interaction")
    );
    assert!(sb.store().load("peer", "default").unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn a_wrong_secret_is_invalid_client_401() {
    let _t = Timer::start("a_wrong_secret_is_invalid_client_401");
    let sb = Sandbox::new();
    for (provider, id) in [("peer", BASIC_ID), ("peer-post", POST_ID)] {
        let out = sb.run(
            &[
                "--json",
                "token",
                provider,
                "client_credentials",
                "--set",
                &format!("client_id={id}"),
            ],
            &secret("not-the-secret"),
        );
        assert_exit(&out, 1, provider);
        assert_eq!(
            out.json_error(),
            provider_error(401, "invalid_client", "client authentication failed")
        );
        assert!(!out.stderr.contains("not-the-secret"), "{}", out.stderr);
    }

    // The library: the same refusal, and the Basic challenge (only for Basic).
    let spec = load("peer");
    let inputs = basic_inputs().with("client_secret", "not-the-secret");
    match Client::new().token(&spec, "client_credentials", &inputs) {
        Err(Error::Provider(p)) => {
            assert_eq!(p.status, 401);
            assert_eq!(p.code.as_deref(), Some("invalid_client"));
            assert_eq!(p.message.as_deref(), Some("client authentication failed"));
        }
        other => panic!("{other:?}"),
    }
    let reply = send(
        spec.render("client_credentials", &inputs)
            .unwrap()
            .into_http(),
    );
    assert_eq!(
        reply.headers()["www-authenticate"],
        format!(
            "Basic realm=\"{}\", error=\"invalid_client\", error_description=\"client authentication failed\"",
            issuer()
        )
    );
}

#[test]
fn a_bogus_code_is_invalid_grant() {
    let _t = Timer::start("a_bogus_code_is_invalid_grant");
    let sb = Sandbox::new();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let out = sb.run(
        &[
            "--json",
            "token",
            "peer",
            "authorization_code",
            "--set",
            "client_id=basic-client",
            "--set",
            "code=bogus",
            "--set",
            "redirect_uri=http://127.0.0.1:9/callback",
            "--set",
            &format!("code_verifier={verifier}"),
        ],
        &secret(BASIC_SECRET),
    );
    assert_exit(&out, 1, "token peer authorization_code code=bogus");
    assert_eq!(
        out.json_error(),
        provider_error(400, "invalid_grant", "grant request is invalid")
    );

    let inputs = basic_inputs()
        .with("code", "bogus")
        .with("redirect_uri", "http://127.0.0.1:9/callback")
        .with("code_verifier", verifier);
    match Client::new().token(&load("peer"), "authorization_code", &inputs) {
        Err(Error::Provider(p)) => {
            assert_eq!((p.status, p.code.as_deref()), (400, Some("invalid_grant")));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery import
// ---------------------------------------------------------------------------------------------

#[test]
fn discovery_import_writes_a_spec_that_checks_and_works() {
    let _t = Timer::start("discovery_import_writes_a_spec_that_checks_and_works");
    let sb = Sandbox::new();
    let path = sb.dir.path().join("imported.yaml");
    let path_s = path.to_str().unwrap();
    let out = sb.run(&["import", issuer(), "--id", "imported", "-o", path_s], &[]);
    assert_exit(&out, 0, "import");
    assert_eq!(
        out.stderr,
        format!(
            "Wrote {path_s} from {}/.well-known/openid-configuration.\n",
            issuer()
        )
    );
    let out = sb.run(&["check", path_s], &[]);
    assert_exit(&out, 0, "check imported.yaml");
    assert_eq!(
        out.stdout,
        format!("ok    {path_s} (imported: 4 grants, 0 examples)\n")
    );

    let imported = Loader::new().load_file(&path).unwrap();
    assert_eq!(imported.id(), "imported");
    assert_eq!(imported.name(), issuer());
    assert_eq!(
        imported.grant_names().collect::<Vec<_>>(),
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "device_code"
        ]
    );
    assert_eq!(
        imported.client_auth("client_credentials"),
        Some(specauth::spec::ClientAuthMethod::Basic)
    );
    assert_eq!(
        imported
            .request_kinds()
            .filter(|k| !k.is_grant())
            .map(|k| k.name().to_owned())
            .collect::<Vec<_>>(),
        [
            "authorize",
            "device_authorization",
            "revoke",
            "introspect",
            "par"
        ]
    );

    // The hand-written peer.yaml agrees with the peer's own metadata on every endpoint.
    let peer_spec = load("peer");
    let plain = Inputs::new()
        .with("client_id", BASIC_ID)
        .with("token", "t")
        .with("state", "s");
    let with_issuer = plain.clone().with("issuer", issuer());
    let inputs_for = |s: &Spec| {
        if s.id() == "peer" {
            &with_issuer
        } else {
            &plain
        }
    };
    let grant_uri = |s: &Spec| {
        s.render("client_credentials", inputs_for(s))
            .unwrap()
            .http()
            .uri()
            .to_string()
    };
    assert_eq!(grant_uri(&imported), grant_uri(&peer_spec));
    for name in ["device_authorization", "revoke", "introspect"] {
        let uri = |s: &Spec| {
            s.render(RequestKind::from_name(name), inputs_for(s))
                .unwrap()
                .http()
                .uri()
                .to_string()
        };
        assert_eq!(uri(&imported), uri(&peer_spec), "{name}");
    }
    let authorize_url = |s: &Spec, inputs: &Inputs| {
        s.render(RequestKind::Authorization, inputs)
            .unwrap()
            .http()
            .uri()
            .to_string()
    };
    assert_eq!(
        authorize_url(&imported, &plain),
        authorize_url(&peer_spec, &with_issuer)
    );

    // A token through the imported spec: the CLI (a spec path) and the library.
    let out = sb.run(
        &[
            "token",
            path_s,
            "client_credentials",
            "--set",
            "client_id=basic-client",
            "--set",
            "scope=api:read",
        ],
        &secret(BASIC_SECRET),
    );
    assert_exit(&out, 0, "token imported.yaml client_credentials");
    assert_cli_token(
        &serde_json::from_str(out.stdout.trim()).unwrap(),
        &["api:read"],
        false,
    );
    let inputs = Inputs::new()
        .with("client_id", BASIC_ID)
        .with("client_secret", BASIC_SECRET)
        .with("scope", "api:read");
    let token = Client::new()
        .token(&imported, "client_credentials", &inputs)
        .unwrap();
    assert_token(&token, &["api:read"], false);
    let (active, _) = introspect(&imported, &inputs, token.access_token.secret());
    assert!(active);
}

// ---------------------------------------------------------------------------------------------
// The peer's specs, offline
// ---------------------------------------------------------------------------------------------

#[test]
fn the_peer_specs_check_and_their_examples_pass_offline() {
    let bin = env!("CARGO_BIN_EXE_specauth");
    let dir = specs_dir();
    let out = std::process::Command::new(bin)
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = std::process::Command::new(bin)
        .arg("test")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("17 passed, 0 failed"),
        "{stdout}"
    );
    for id in [
        "peer",
        "peer-post",
        "peer-public",
        "peer-par",
        "peer-mtls",
        "peer-mtls-self-signed",
    ] {
        for report in load(id).run_examples() {
            assert!(
                report.passed(),
                "{id}: {}: {:?}",
                report.name,
                report.failures
            );
        }
    }
}
