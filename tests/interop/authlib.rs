//! The second interop peer: a token endpoint built from Python Authlib's own server classes
//! (tests/interop/py/server.py), independent of the Node peer. It proves the JWT-bearer grant
//! (RFC 7523 §2.1), client assertions (`private_key_jwt` RS256 and ES256, `client_secret_jwt`),
//! token exchange (RFC 8693, a grant registered through Authlib's `register_grant`) and
//! `client_auth: auto`, each through the library and the `specauth` binary, and that the
//! tokens it issues are accepted by its protected resource (`GET /api`).
//!
//! Needs `python3` (3.11, the version the hash-pinned tests/interop/py/requirements.txt is for)
//! with the venv module, and PyPI reachable on the first run: Authlib is installed into a venv
//! under the target folder (`interop-py/venv`). The keys are generated on each run by the
//! peer's own `cryptography` (tests/interop/py/keys.py). Without Python the tests fail, saying
//! what to install.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use specauth::{Client, Error, Inputs, Loader, Spec, Transport, UreqTransport};

use crate::harness::{CLI_TIMEOUT, Out, Timer, agent, run_bounded};

const INSTALL: &str = "install Python 3.11 with the venv module (Debian: `apt-get install python3 \
     python3-venv`), and make PyPI reachable for the first run";

const RS256_ID: &str = "rs256-client";
const ES256_ID: &str = "es256-client";
const HS256_ID: &str = "secret-jwt-client";
const HS256_SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";
const POST_ID: &str = "post-client";
const POST_SECRET: &str = "post-secret";
const BASIC_ID: &str = "basic-client";
const BASIC_SECRET: &str = "basic-secret";
/// A user the RS256 client may get tokens for with the JWT-bearer grant.
const USER: &str = "alice";

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

// ---------------------------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------------------------

struct PyPeer {
    /// `http://127.0.0.1:PORT`.
    issuer: String,
    /// rsa.pem, ec.pem, other-rsa.pem (and their .pub.pem).
    keys: PathBuf,
    log: Arc<Mutex<String>>,
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

impl PyPeer {
    fn key(&self, name: &str) -> PathBuf {
        self.keys.join(format!("{name}.pem"))
    }

    fn key_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.key(name)).unwrap()
    }

    fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

static PEER: OnceLock<Result<PyPeer, String>> = OnceLock::new();

fn py_peer() -> &'static PyPeer {
    match PEER.get_or_init(start) {
        Ok(p) => p,
        Err(e) => panic!("the Authlib interop peer is not available: {e}"),
    }
}

fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/py")
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-py")
}

/// The venv's python, with the hash-pinned requirements installed (once per requirements file).
fn venv() -> Result<PathBuf, String> {
    let requirements = py_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let venv = work_dir().join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let made = run_bounded(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        Duration::from_secs(120),
    )
    .map_err(|e| format!("`python3 -m venv` cannot be run ({e}): {INSTALL}"))?;
    if !made.status.success() {
        return Err(format!(
            "`python3 -m venv` failed: {INSTALL}.\n{}",
            made.stderr
        ));
    }
    let out = run_bounded(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "-r",
            ])
            .arg(&requirements),
        Duration::from_secs(300),
    )?;
    if !out.status.success() {
        return Err(format!(
            "pip could not install {} ({INSTALL}):\n{}",
            requirements.display(),
            out.stderr
        ));
    }
    std::fs::write(&stamp, &wanted).map_err(|e| format!("cannot write the stamp: {e}"))?;
    Ok(python)
}

fn start() -> Result<PyPeer, String> {
    std::fs::create_dir_all(work_dir()).map_err(|e| format!("cannot create the work dir: {e}"))?;
    let python = venv()?;
    // Earlier runs' keys (throwaway, but not left to pile up).
    for entry in std::fs::read_dir(work_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && entry.file_name().to_string_lossy().starts_with("keys-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    // Fresh keys for this run, in a folder only this process uses.
    let keys = tempfile::Builder::new()
        .prefix("keys-")
        .tempdir_in(work_dir())
        .map_err(|e| format!("cannot create the keys folder: {e}"))?
        .keep();
    let out = run_bounded(
        Command::new(&python)
            .arg(py_dir().join("keys.py"))
            .arg(&keys),
        Duration::from_secs(60),
    )?;
    if !out.status.success() {
        return Err(format!("keys.py failed:\n{}", out.stderr));
    }
    let public =
        |name: &str| std::fs::read_to_string(keys.join(format!("{name}.pub.pem"))).unwrap();
    let all = ["client_credentials", JWT_BEARER, TOKEN_EXCHANGE];
    let config = json!({
        "clients": [
            {"client_id": RS256_ID, "public_key": public("rsa"), "auth_method": "private_key_jwt", "grant_types": all},
            {"client_id": ES256_ID, "public_key": public("ec"), "auth_method": "private_key_jwt", "grant_types": all},
            {"client_id": HS256_ID, "client_secret": HS256_SECRET, "auth_method": "client_secret_jwt", "grant_types": all},
            {"client_id": POST_ID, "client_secret": POST_SECRET, "auth_method": "client_secret_post", "grant_types": all},
            {"client_id": BASIC_ID, "client_secret": BASIC_SECRET, "auth_method": "client_secret_basic", "grant_types": all},
        ],
        "users": [USER],
    });
    let config_path = keys.join("config.json");
    std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
    let mut child = Command::new(&python)
        .arg(py_dir().join("server.py"))
        .arg(&config_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the Authlib peer: {e}: {INSTALL}"))?;
    let stdin = child.stdin.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let issuer = match line
        .as_deref()
        .ok()
        .and_then(|l| l.strip_prefix("listening "))
    {
        Some(i) if i.starts_with("http://127.0.0.1:") => i.to_owned(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the peer printed {line:?} instead of `listening …`; its stderr:\n{}",
                log.lock().unwrap()
            ));
        }
    };
    eprintln!("interop: Authlib peer {issuer}");
    Ok(PyPeer {
        issuer,
        keys,
        log,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn specs() -> PathBuf {
    py_dir().join("specs")
}

fn load(id: &str) -> Spec {
    Loader::new()
        .with_dir(specs())
        .load(id)
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn inputs(pairs: &[(&str, &str)]) -> Inputs {
    let mut inputs = Inputs::new().with("issuer", &py_peer().issuer);
    for (k, v) in pairs {
        inputs.set(*k, *v);
    }
    inputs
}

/// The `specauth` binary with the peer's specs and a scrubbed environment.
fn cli(args: &[&str]) -> Out {
    let store = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
    cmd.arg("--specs").arg(specs());
    cmd.arg("--store").arg(store.path().join("store"));
    cmd.arg("--config").arg(store.path().join("profiles.yaml"));
    cmd.arg("--json");
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SPECAUTH_") || k.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SPECAUTH_ISSUER", &py_peer().issuer);
    std::fs::write(store.path().join("profiles.yaml"), "").unwrap();
    run_bounded(&mut cmd, CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

fn cli_token(args: &[&str]) -> Value {
    let out = cli(args);
    assert_eq!(
        out.code(),
        Some(0),
        "specauth {args:?}\nstderr:\n{}\npeer log:\n{}",
        out.stderr,
        py_peer().log_tail()
    );
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// The CLI's refusal: exit 1 and the `--json` error's status and code.
fn cli_refusal(args: &[&str]) -> (u16, String, Value) {
    let out = cli(args);
    assert_eq!(
        out.code(),
        Some(1),
        "specauth {args:?}\nstderr:\n{}",
        out.stderr
    );
    let e = out.json_error();
    (
        e["error"]["status"].as_u64().unwrap() as u16,
        e["error"]["code"].as_str().unwrap().to_owned(),
        e["error"]["message"].clone(),
    )
}

fn refusal(result: Result<specauth::Token, Error>) -> (u16, String, Option<String>) {
    match result {
        Err(Error::Provider(p)) => (p.status, p.code.unwrap_or_default(), p.message),
        other => panic!(
            "expected a refusal, got {other:?}\npeer log:\n{}",
            py_peer().log_tail()
        ),
    }
}

/// What the peer's protected resource says about `token`: status and body.
fn api(token: &str) -> (u16, Value) {
    let reply = agent()
        .get(format!("{}/api", py_peer().issuer))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("the peer answers");
    let status = reply.status().as_u16();
    let body = reply.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn assert_accepted(token: &str, client_id: &str, sub: Option<&str>) {
    let (status, body) = api(token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_id"], client_id, "{body}");
    assert_eq!(body["sub"], json!(sub), "{body}");
}

fn key_arg(name: &str) -> String {
    format!("private_key=@{}", py_peer().key(name).display())
}

// ---------------------------------------------------------------------------------------------
// Client assertions (RFC 7523 §2.2)
// ---------------------------------------------------------------------------------------------

#[test]
fn authlib_private_key_jwt_rs256_and_es256_and_client_secret_jwt() {
    let _t = Timer::start("authlib_private_key_jwt_rs256_and_es256_and_client_secret_jwt");
    let peer = py_peer();
    for (spec, id, key) in [
        ("authlib-rs256", RS256_ID, "rsa"),
        ("authlib-es256", ES256_ID, "ec"),
    ] {
        // The library.
        let token = Client::new()
            .token(
                &load(spec),
                "client_credentials",
                &inputs(&[("client_id", id), ("private_key", &peer.key_text(key))]),
            )
            .unwrap_or_else(|e| panic!("{spec}: {e}\n{}", peer.log_tail()));
        assert_eq!(token.token_type, "Bearer");
        assert_eq!(token.expires_in, Some(3600));
        assert_accepted(token.access_token.secret(), id, None);
        // The binary, with the key read from a file.
        let t = cli_token(&[
            "token",
            spec,
            "client_credentials",
            "--set",
            &format!("client_id={id}"),
            "--set",
            &key_arg(key),
        ]);
        assert_eq!(t["token_type"], "Bearer");
        assert_accepted(t["access_token"].as_str().unwrap(), id, None);
    }
    let token = Client::new()
        .token(
            &load("authlib-hs256"),
            "client_credentials",
            &inputs(&[("client_id", HS256_ID), ("client_secret", HS256_SECRET)]),
        )
        .unwrap();
    assert_accepted(token.access_token.secret(), HS256_ID, None);
    let t = cli_token(&[
        "token",
        "authlib-hs256",
        "client_credentials",
        "--set",
        &format!("client_id={HS256_ID}"),
        "--set",
        &format!("client_secret={HS256_SECRET}"),
    ]);
    assert_accepted(t["access_token"].as_str().unwrap(), HS256_ID, None);
}

#[test]
fn authlib_refuses_a_wrong_key_a_wrong_audience_a_replayed_and_an_expired_client_assertion() {
    let _t = Timer::start("authlib_refuses_bad_client_assertions");
    let peer = py_peer();
    // Signed with a key the client is not registered with.
    let wrong_key = inputs(&[
        ("client_id", RS256_ID),
        ("private_key", &peer.key_text("other-rsa")),
    ]);
    let (status, code, _) =
        refusal(Client::new().token(&load("authlib-rs256"), "client_credentials", &wrong_key));
    assert_eq!((status, code.as_str()), (400, "invalid_client"));
    let (status, code, _) = cli_refusal(&[
        "token",
        "authlib-rs256",
        "client_credentials",
        "--set",
        &format!("client_id={RS256_ID}"),
        "--set",
        &key_arg("other-rsa"),
    ]);
    assert_eq!((status, code.as_str()), (400, "invalid_client"));
    // The wrong secret for client_secret_jwt.
    let r = Client::new().token(
        &load("authlib-hs256"),
        "client_credentials",
        &inputs(&[
            ("client_id", HS256_ID),
            ("client_secret", "not-the-secret-but-as-long-as-it"),
        ]),
    );
    assert_eq!(refusal(r).1, "invalid_client");

    // Addressed to another server.
    let right_key = inputs(&[
        ("client_id", RS256_ID),
        ("private_key", &peer.key_text("rsa")),
    ]);
    let r = Client::new().token(
        &load("authlib-wrong-audience"),
        "client_credentials",
        &right_key,
    );
    assert_eq!(
        refusal(r),
        (
            400,
            "invalid_client".to_owned(),
            Some("Invalid claim: 'aud'".to_owned())
        )
    );
    let (status, code, message) = cli_refusal(&[
        "token",
        "authlib-wrong-audience",
        "client_credentials",
        "--set",
        &format!("client_id={RS256_ID}"),
        "--set",
        &key_arg("rsa"),
    ]);
    assert_eq!((status, code.as_str()), (400, "invalid_client"));
    assert_eq!(message, "Invalid claim: 'aud'");

    // The same assertion (same jti) twice: the step-by-step API renders once and sends twice.
    let request = load("authlib-rs256")
        .render("client_credentials", &right_key)
        .unwrap()
        .into_http();
    let first = send(request.clone());
    assert_eq!(first.0, 200, "{}", first.1);
    let again = send(request);
    assert_eq!(again.0, 400, "{}", again.1);
    assert_eq!(again.1["error"], "invalid_client");
    assert_eq!(again.1["error_description"], "JWT ID is used before.");

    // Expired: a spec whose assertion's exp is two minutes ago (past Authlib's 60 s leeway).
    let r = Client::new().token(
        &load("authlib-expired-client-assertion"),
        "client_credentials",
        &right_key,
    );
    assert_eq!(
        refusal(r),
        (
            400,
            "invalid_client".to_owned(),
            Some("The token is expired".to_owned())
        )
    );
}

fn send(request: http::Request<Vec<u8>>) -> (u16, Value) {
    let reply = UreqTransport::new()
        .send(request)
        .expect("the peer answers");
    (
        reply.status().as_u16(),
        serde_json::from_slice(reply.body()).unwrap_or(Value::Null),
    )
}

// ---------------------------------------------------------------------------------------------
// The JWT-bearer grant (RFC 7523 §2.1)
// ---------------------------------------------------------------------------------------------

fn bearer_inputs(id: &str, key: &str, extra: &[(&str, &str)]) -> Inputs {
    let peer = py_peer();
    let mut i = inputs(&[
        ("client_id", id),
        ("private_key", &peer.key_text(key)),
        ("assertion_audience", &peer.token_url()),
    ]);
    for (k, v) in extra {
        i.set(*k, *v);
    }
    i
}

#[test]
fn authlib_jwt_bearer_grant_signed_here_or_given() {
    let _t = Timer::start("authlib_jwt_bearer_grant_signed_here_or_given");
    let peer = py_peer();
    let spec = load("authlib-peer");
    // RS256 for a user; ES256 for the client itself (sub defaults to iss).
    let token = Client::new()
        .token(
            &spec,
            "jwt_bearer",
            &bearer_inputs(RS256_ID, "rsa", &[("assertion_subject", USER)]),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log_tail()));
    assert_eq!(token.refresh_token, None, "RFC 7523 §2.1: no refresh token");
    assert_accepted(token.access_token.secret(), RS256_ID, Some(USER));
    let token = Client::new()
        .token(
            &spec,
            "jwt_bearer",
            &bearer_inputs(
                ES256_ID,
                "ec",
                &[("assertion_alg", "ES256"), ("scope", "read")],
            ),
        )
        .unwrap();
    assert_eq!(token.scope, Some(vec!["read".to_owned()]));
    assert_accepted(token.access_token.secret(), ES256_ID, Some(ES256_ID));

    let audience = format!("assertion_audience={}", peer.token_url());
    let t = cli_token(&[
        "token",
        "authlib-peer",
        "jwt_bearer",
        "--set",
        &format!("client_id={RS256_ID}"),
        "--set",
        &key_arg("rsa"),
        "--set",
        &audience,
        "--set",
        &format!("assertion_subject={USER}"),
    ]);
    assert_accepted(t["access_token"].as_str().unwrap(), RS256_ID, Some(USER));

    // An assertion made elsewhere (here: rendered by the library, as a signing service would),
    // given to the binary from a file; the same assertion again is a replay.
    let request = spec
        .render(
            "jwt_bearer",
            &bearer_inputs(ES256_ID, "ec", &[("assertion_alg", "ES256")]),
        )
        .unwrap()
        .into_http();
    let assertion = form_urlencoded::parse(request.body())
        .find(|(k, _)| k == "assertion")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let file = peer.keys.join("given-assertion.jwt");
    std::fs::write(&file, &assertion).unwrap();
    let given = format!("assertion=@{}", file.display());
    let t = cli_token(&[
        "token",
        "authlib-peer",
        "jwt_bearer_assertion",
        "--set",
        &format!("client_id={ES256_ID}"),
        "--set",
        &given,
    ]);
    assert_accepted(
        t["access_token"].as_str().unwrap(),
        ES256_ID,
        Some(ES256_ID),
    );
    let (status, code, message) = cli_refusal(&[
        "token",
        "authlib-peer",
        "jwt_bearer_assertion",
        "--set",
        &format!("client_id={ES256_ID}"),
        "--set",
        &given,
    ]);
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    assert_eq!(message, "JWT ID is used before.");
    let r = Client::new().token(
        &spec,
        "jwt_bearer_assertion",
        &inputs(&[("client_id", ES256_ID), ("assertion", &assertion)]),
    );
    assert_eq!(
        refusal(r),
        (
            400,
            "invalid_grant".to_owned(),
            Some("JWT ID is used before.".to_owned())
        )
    );
}

#[test]
fn authlib_refuses_a_jwt_bearer_assertion_with_a_wrong_key_audience_lifetime_or_subject() {
    let _t = Timer::start("authlib_refuses_bad_jwt_bearer_assertions");
    let peer = py_peer();
    let spec = load("authlib-peer");
    let refused = |i: Inputs| refusal(Client::new().token(&spec, "jwt_bearer", &i));
    // RFC 7523 §3.1: a grant assertion that fails is invalid_grant.
    let (status, code, _) = refused(bearer_inputs(RS256_ID, "other-rsa", &[]));
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    assert_eq!(
        refused(bearer_inputs(
            RS256_ID,
            "rsa",
            &[("assertion_audience", "https://elsewhere.example/token")]
        )),
        (
            400,
            "invalid_grant".to_owned(),
            Some("Invalid claim: 'aud'".to_owned())
        )
    );
    assert_eq!(
        refused(bearer_inputs(
            RS256_ID,
            "rsa",
            &[("assertion_lifetime", "-120")]
        )),
        (
            400,
            "invalid_grant".to_owned(),
            Some("The token is expired".to_owned())
        )
    );
    assert_eq!(
        refused(bearer_inputs(
            RS256_ID,
            "rsa",
            &[("assertion_subject", "mallory")]
        )),
        (
            400,
            "invalid_grant".to_owned(),
            Some("Invalid 'sub' value in assertion".to_owned())
        )
    );
    let (status, code, message) = cli_refusal(&[
        "token",
        "authlib-peer",
        "jwt_bearer",
        "--set",
        &format!("client_id={RS256_ID}"),
        "--set",
        &key_arg("rsa"),
        "--set",
        &format!("assertion_audience={}", peer.token_url()),
        "--set",
        "assertion_lifetime=-120",
    ]);
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    assert_eq!(message, "The token is expired");
    let (status, code, _) = cli_refusal(&[
        "token",
        "authlib-peer",
        "jwt_bearer",
        "--set",
        &format!("client_id={RS256_ID}"),
        "--set",
        &key_arg("other-rsa"),
        "--set",
        &format!("assertion_audience={}", peer.token_url()),
    ]);
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
}

// ---------------------------------------------------------------------------------------------
// Token exchange (RFC 8693)
// ---------------------------------------------------------------------------------------------

#[test]
fn authlib_token_exchange_through_its_grant_extension() {
    let _t = Timer::start("authlib_token_exchange_through_its_grant_extension");
    let peer = py_peer();
    let subject = Client::new()
        .token(
            &load("authlib-peer"),
            "jwt_bearer",
            &bearer_inputs(RS256_ID, "rsa", &[("assertion_subject", USER)]),
        )
        .unwrap();
    let subject = subject.access_token.secret().to_owned();
    // The library, authenticating with private_key_jwt.
    let exchanged = Client::new()
        .token(
            &load("authlib-rs256"),
            "token_exchange",
            &inputs(&[
                ("client_id", RS256_ID),
                ("private_key", &peer.key_text("rsa")),
                ("subject_token", &subject),
                ("audience", "billing-api reports-api"),
                ("scope", "read"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log_tail()));
    assert_eq!(exchanged.extra["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(exchanged.scope, Some(vec!["read".to_owned()]));
    assert_ne!(exchanged.access_token.secret(), subject);
    let (status, body) = api(exchanged.access_token.secret());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], USER);
    assert_eq!(
        body["aud"],
        json!(["billing-api", "reports-api"]),
        "each audience its own parameter"
    );
    // The binary, authenticating with client_secret_jwt.
    let t = cli_token(&[
        "token",
        "authlib-hs256",
        "token_exchange",
        "--set",
        &format!("client_id={HS256_ID}"),
        "--set",
        &format!("client_secret={HS256_SECRET}"),
        "--set",
        &format!("subject_token={subject}"),
    ]);
    assert_eq!(t["extra"]["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_accepted(t["access_token"].as_str().unwrap(), HS256_ID, Some(USER));
    // A subject token the peer did not issue.
    let (status, code, message) = cli_refusal(&[
        "token",
        "authlib-hs256",
        "token_exchange",
        "--set",
        &format!("client_id={HS256_ID}"),
        "--set",
        &format!("client_secret={HS256_SECRET}"),
        "--set",
        "subject_token=not-a-token-of-this-server",
    ]);
    assert_eq!((status, code.as_str()), (400, "invalid_grant"));
    assert_eq!(message, "The subject token is not active.");
}

// ---------------------------------------------------------------------------------------------
// client_auth: auto
// ---------------------------------------------------------------------------------------------

#[test]
fn authlib_client_auth_auto_learns_what_each_client_is_registered_for() {
    let _t = Timer::start("authlib_client_auth_auto_learns_what_each_client_is_registered_for");
    let spec = load("authlib-auto");
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = {
        let sent = Arc::clone(&sent);
        let ureq = UreqTransport::new();
        move |req: http::Request<Vec<u8>>| {
            sent.fetch_add(1, Ordering::SeqCst);
            ureq.send(req)
        }
    };
    let client = Client::with_transport(counted);
    let body_client = inputs(&[("client_id", POST_ID), ("client_secret", POST_SECRET)]);
    let token = client
        .token(&spec, "client_credentials", &body_client)
        .unwrap();
    assert_accepted(token.access_token.secret(), POST_ID, None);
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "Basic refused (401), then the body"
    );
    client
        .token(&spec, "client_credentials", &body_client)
        .unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 3, "straight to the body");

    let basic_client = inputs(&[("client_id", BASIC_ID), ("client_secret", BASIC_SECRET)]);
    client
        .token(&spec, "client_credentials", &basic_client)
        .unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 4, "Basic accepted at once");

    let wrong = inputs(&[("client_id", POST_ID), ("client_secret", "wrong")]);
    let fresh = Client::with_transport({
        let sent = Arc::clone(&sent);
        let ureq = UreqTransport::new();
        move |req: http::Request<Vec<u8>>| {
            sent.fetch_add(1, Ordering::SeqCst);
            ureq.send(req)
        }
    });
    // Authlib answers 401 whenever the grant takes client_secret_basic (RFC 6749 §5.2).
    let (status, code, _) = refusal(fresh.token(&spec, "client_credentials", &wrong));
    assert_eq!((status, code.as_str()), (401, "invalid_client"));
    assert_eq!(sent.load(Ordering::SeqCst), 6, "one retry, no loop");

    let t = cli_token(&[
        "token",
        "authlib-auto",
        "client_credentials",
        "--set",
        &format!("client_id={POST_ID}"),
        "--set",
        &format!("client_secret={POST_SECRET}"),
    ]);
    assert_accepted(t["access_token"].as_str().unwrap(), POST_ID, None);
}
