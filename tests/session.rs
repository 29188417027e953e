//! The session commands (`login`, `print-token`, `tokens`, `logout`, `revoke`, `introspect`) as
//! processes, against an authorization server emulated on 127.0.0.1.
//!
//! The emulator checks what it receives (client authentication, grant types, PKCE, device codes,
//! refresh-token rotation) and records it; each test then asserts on the process's exit code and
//! output, on the token cache, and on what the server saw.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

mod common;

use base64::Engine as _;
use common::now;
use serde_json::{Value, json};
use sha2::Digest as _;
use specauth::session::{StoredToken, TokenStore};
use specauth::testing::{ReceivedRequest, ReplayServer};
use specauth::{Secret, Token};

const BIN: &str = env!("CARGO_BIN_EXE_specauth");
const CLIENT_ID: &str = "app";
const CLIENT_SECRET: &str = "s3cret-of-app";
const USER_CODE: &str = "WDJB-MJHT";

// ---------------------------------------------------------------------------------------------
// The emulated authorization server
// ---------------------------------------------------------------------------------------------

/// One request the emulator received.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    path: String,
    authorization: Option<String>,
    /// The DPoP proof header (RFC 9449), when one came.
    dpop: Option<String>,
    form: BTreeMap<String, String>,
}

impl Seen {
    fn get(&self, k: &str) -> Option<&str> {
        self.form.get(k).map(String::as_str)
    }
}

/// An authorization code handed out at the (relayed) authorization request.
struct IssuedCode {
    challenge: String,
    redirect_uri: String,
}

struct State {
    /// The client secret the client must authenticate with (HTTP Basic), or `None` for a public
    /// client, which must send `client_id` in the body and no `Authorization` header.
    secret: Option<String>,
    /// The client id every request must carry, or `None` to accept any (and record it).
    client_id: Option<String>,
    codes: HashMap<String, IssuedCode>,
    /// Live access tokens.
    access: HashSet<String>,
    /// Live refresh tokens (each is good for exactly one refresh: rotation).
    refresh: HashSet<String>,
    /// Refresh tokens already exchanged, and so invalid.
    rotated: HashSet<String>,
    /// Rotated refresh tokens that were presented again.
    reused: Vec<String>,
    /// Every access token issued, with the refresh token issued beside it.
    issued: HashMap<String, Option<String>>,
    /// The refresh token of each refresh grant received, in order.
    refreshes: Vec<String>,
    refresh_delay: Duration,
    expires_in: u64,
    scope: &'static str,
    device_interval: u64,
    device_codes: HashSet<String>,
    /// What successive device polls answer (`ok` or an RFC 8628 error); empty means `ok`.
    device_script: VecDeque<&'static str>,
    device_polls: Vec<Instant>,
    /// (token, token_type_hint) of each revocation.
    revoked: Vec<(String, Option<String>)>,
    seen: Vec<Seen>,
    /// Anything the client sent that a real server would refuse.
    violations: Vec<String>,
    next: u64,
}

type Reply = (u16, Value);

fn error(status: u16, code: &str) -> Reply {
    (status, json!({ "error": code }))
}

impl State {
    fn new() -> State {
        State {
            secret: Some(CLIENT_SECRET.to_owned()),
            client_id: Some(CLIENT_ID.to_owned()),
            codes: HashMap::new(),
            access: HashSet::new(),
            refresh: HashSet::new(),
            rotated: HashSet::new(),
            reused: Vec::new(),
            issued: HashMap::new(),
            refreshes: Vec::new(),
            refresh_delay: Duration::ZERO,
            expires_in: 3600,
            scope: "read write",
            device_interval: 0,
            device_codes: HashSet::new(),
            device_script: VecDeque::new(),
            device_polls: Vec::new(),
            revoked: Vec::new(),
            seen: Vec::new(),
            violations: Vec::new(),
            next: 0,
        }
    }

    fn violation(&mut self, status: u16, code: &str, what: String) -> Reply {
        self.violations.push(what);
        error(status, code)
    }

    /// Authenticates the client as RFC 6749 §2.3 says; the client id on success.
    fn authenticate(&mut self, s: &Seen) -> Result<String, Reply> {
        let id = match (&self.secret, &s.authorization) {
            (Some(secret), Some(header)) => {
                let decoded = header
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                let Some((id, given)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                    return Err(self.violation(
                        401,
                        "invalid_client",
                        format!("{}: malformed Basic header", s.path),
                    ));
                };
                // §2.3.1: id and secret are form-encoded before Basic encoding.
                let unform = |v: &str| {
                    form_urlencoded::parse(format!("v={v}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                if unform(given) != *secret {
                    return Err(self.violation(
                        401,
                        "invalid_client",
                        format!("{}: wrong client secret", s.path),
                    ));
                }
                unform(id)
            }
            (Some(_), None) => {
                return Err(self.violation(
                    401,
                    "invalid_client",
                    format!("{}: no Basic client authentication", s.path),
                ));
            }
            (None, Some(_)) => {
                return Err(self.violation(
                    401,
                    "invalid_client",
                    format!("{}: a public client sent Authorization", s.path),
                ));
            }
            (None, None) => match s.get("client_id") {
                Some(id) => id.to_owned(),
                None => {
                    return Err(self.violation(
                        401,
                        "invalid_client",
                        format!("{}: no client_id", s.path),
                    ));
                }
            },
        };
        if self.secret.is_some() && (s.form.contains_key("client_secret")) {
            return Err(self.violation(
                400,
                "invalid_request",
                format!("{}: client_secret in the body", s.path),
            ));
        }
        match &self.client_id {
            Some(expected) if *expected != id => Err(self.violation(
                401,
                "invalid_client",
                format!("{}: client_id `{id}`", s.path),
            )),
            _ => Ok(id),
        }
    }

    fn issue(&mut self, with_refresh: bool) -> Reply {
        self.next += 1;
        let n = self.next;
        let access = format!("peer-access-{n}");
        self.access.insert(access.clone());
        let mut body = json!({
            "access_token": access, "token_type": "bearer",
            "expires_in": self.expires_in, "scope": self.scope,
        });
        let refresh = with_refresh.then(|| format!("peer-refresh-{n}"));
        if let Some(r) = &refresh {
            self.refresh.insert(r.clone());
            body["refresh_token"] = json!(r);
        }
        self.issued.insert(access, refresh);
        (200, body)
    }

    fn handle(&mut self, s: &Seen) -> Reply {
        match s.path.as_str() {
            "/token" => self.token(s),
            "/device" => self.device_authorization(s),
            "/revoke" => self.revoke(s),
            "/introspect" => self.introspect(s),
            other => self.violation(404, "not_found", format!("request to {other}")),
        }
    }

    fn token(&mut self, s: &Seen) -> Reply {
        if let Err(reply) = self.authenticate(s) {
            return reply;
        }
        match s.get("grant_type").unwrap_or("") {
            "authorization_code" => {
                let Some(code) = s.get("code").and_then(|c| self.codes.remove(c)) else {
                    return self.violation(400, "invalid_grant", "unknown or reused code".into());
                };
                if s.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
                    return self.violation(
                        400,
                        "invalid_grant",
                        format!("redirect_uri {:?}", s.get("redirect_uri")),
                    );
                }
                let Some(verifier) = s.get("code_verifier") else {
                    return self.violation(400, "invalid_grant", "no code_verifier".into());
                };
                let digest = sha2::Sha256::digest(verifier.as_bytes());
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                if challenge != code.challenge || !(43..=128).contains(&verifier.len()) {
                    return self.violation(
                        400,
                        "invalid_grant",
                        "code_verifier does not match the S256 challenge".into(),
                    );
                }
                self.issue(true)
            }
            "refresh_token" => {
                let token = s.get("refresh_token").unwrap_or("").to_owned();
                self.refreshes.push(token.clone());
                if self.refresh.remove(&token) {
                    self.rotated.insert(token);
                    self.issue(true)
                } else if self.rotated.contains(&token) {
                    self.reused.push(token);
                    error(400, "invalid_grant")
                } else {
                    self.violation(
                        400,
                        "invalid_grant",
                        format!("unknown refresh token `{token}`"),
                    )
                }
            }
            "urn:ietf:params:oauth:grant-type:device_code" => {
                self.device_polls.push(s.at);
                if !s
                    .get("device_code")
                    .is_some_and(|d| self.device_codes.contains(d))
                {
                    return self.violation(400, "invalid_grant", "unknown device_code".into());
                }
                match self.device_script.pop_front().unwrap_or("ok") {
                    "ok" => self.issue(true),
                    e => error(400, e),
                }
            }
            "client_credentials" => self.issue(false),
            other => self.violation(
                400,
                "unsupported_grant_type",
                format!("grant_type `{other}`"),
            ),
        }
    }

    fn device_authorization(&mut self, s: &Seen) -> Reply {
        if let Err(reply) = self.authenticate(s) {
            return reply;
        }
        self.next += 1;
        let code = format!("peer-device-{}", self.next);
        self.device_codes.insert(code.clone());
        (
            200,
            json!({
                "device_code": code, "user_code": USER_CODE,
                "verification_uri": "https://peer.example/activate",
                "verification_uri_complete": format!("https://peer.example/activate?user_code={USER_CODE}"),
                "expires_in": 60, "interval": self.device_interval,
            }),
        )
    }

    fn revoke(&mut self, s: &Seen) -> Reply {
        if let Err(reply) = self.authenticate(s) {
            return reply;
        }
        let Some(token) = s.get("token").map(str::to_owned) else {
            return self.violation(400, "invalid_request", "revoke without token".into());
        };
        self.access.remove(&token);
        self.refresh.remove(&token);
        self.revoked
            .push((token, s.get("token_type_hint").map(str::to_owned)));
        // RFC 7009 §2.2: 200 and an empty body.
        (200, Value::Null)
    }

    fn introspect(&mut self, s: &Seen) -> Reply {
        let client = match self.authenticate(s) {
            Ok(c) => c,
            Err(reply) => return reply,
        };
        let token = s.get("token").unwrap_or("");
        if self.access.contains(token) || self.refresh.contains(token) {
            (
                200,
                json!({ "active": true, "client_id": client, "scope": self.scope }),
            )
        } else {
            (200, json!({ "active": false }))
        }
    }
}

/// The emulated server: a thread answering on 127.0.0.1, stopped and joined when dropped.
struct Emulator {
    origin: String,
    state: Arc<Mutex<State>>,
    _server: ReplayServer,
}

impl Emulator {
    /// The emulator on the test kit's loopback server (the replay server in its handler mode,
    /// whose workers let a slow refresh overlap other requests).
    fn start() -> Emulator {
        let state = Arc::new(Mutex::new(State::new()));
        let server = {
            let state = state.clone();
            ReplayServer::with_handler(move |request| serve(request, &state)).unwrap()
        };
        Emulator {
            origin: server.origin(),
            state,
            _server: server,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests received so far.
    fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    fn assert_no_violations(&self) {
        let v = self.state().violations.clone();
        assert!(
            v.is_empty(),
            "the emulator refused what the client sent: {v:?}"
        );
    }

    /// Registers an access + refresh token pair as if issued earlier.
    fn register_pair(&self, access: &str, refresh: &str) {
        let mut st = self.state();
        st.access.insert(access.to_owned());
        st.refresh.insert(refresh.to_owned());
    }
}

fn serve(request: &ReceivedRequest, state: &Mutex<State>) -> http::Response<Vec<u8>> {
    let body = String::from_utf8_lossy(&request.body).into_owned();
    let url = request.url.clone();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let form_text = if body.is_empty() {
        query
    } else {
        body.as_str()
    };
    let seen = Seen {
        at: Instant::now(),
        path: path.to_owned(),
        authorization: request.header("authorization").map(str::to_owned),
        dpop: request.header("dpop").map(str::to_owned),
        form: form_urlencoded::parse(form_text.as_bytes())
            .into_owned()
            .collect(),
    };
    // A slow refresh makes racing processes overlap; sleep without holding the lock.
    let delay = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.seen.push(seen.clone());
        if seen.get("grant_type") == Some("refresh_token") {
            st.refresh_delay
        } else {
            Duration::ZERO
        }
    };
    std::thread::sleep(delay);
    let (status, value) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.handle(&seen)
    };
    let builder = http::Response::builder().status(status);
    if value.is_null() {
        builder.body(Vec::new()).unwrap()
    } else {
        builder
            .header("content-type", "application/json")
            .body(value.to_string().into_bytes())
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI, sandboxed
// ---------------------------------------------------------------------------------------------

/// A sandbox: a specs folder pointing at the emulator, a token store and a profiles file, all in
/// a temporary folder.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(emu: &Emulator) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let specs = dir.path().join("specs");
        std::fs::create_dir(&specs).unwrap();
        let o = &emu.origin;
        std::fs::write(
            specs.join("peer.yaml"),
            format!(
                "id: peer\nname: Peer\nextends: oauth2\nclient_auth: basic\nendpoints:\n  \
                 token: {o}/token\n  authorize: {o}/authorize\n  device_authorization: {o}/device\n  \
                 revocation: {o}/revoke\n  introspection: {o}/introspect\n"
            ),
        )
        .unwrap();
        // No revocation endpoint: logout can only forget the token.
        std::fs::write(
            specs.join("plain.yaml"),
            format!("id: plain\nname: Plain\nextends: oauth2\nendpoints:\n  token: {o}/token\n"),
        )
        .unwrap();
        Sandbox { dir }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("profiles.yaml")
    }

    fn store(&self) -> TokenStore {
        TokenStore::new(self.store_dir())
    }

    /// `specauth --specs … --store … --config … ARGS`, with no inherited SPECAUTH_* or proxy
    /// variables, plus `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--specs").arg(self.dir.path().join("specs"));
        cmd.arg("--store").arg(self.store_dir());
        cmd.arg("--config").arg(self.config());
        cmd.args(args);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("SPECAUTH_") || k.to_ascii_lowercase().ends_with("_proxy") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("the binary runs")
    }

    /// Caches a token for `provider` as `login` would.
    fn seed(&self, provider: &str, access: &str, refresh: &str, expires_at: u64) {
        let token = Token {
            expires_at: Some(expires_at),
            expires_in: Some(3600),
            refresh_token: Some(Secret::new(refresh)),
            scope: Some(vec!["read".into(), "write".into()]),
            ..Token::bearer(Secret::new(access))
        };
        self.store()
            .save(&StoredToken {
                provider: provider.into(),
                profile: "default".into(),
                token,
                inputs: [("client_id".to_owned(), CLIENT_ID.to_owned())].into(),
                obtained_at: now().saturating_sub(3600),
                dpop_key: None,
                resources: Vec::new(),
                issuer: None,
                endpoints: Default::default(),
                refresh_margin: 0,
                client_auth: Vec::new(),
            })
            .unwrap();
    }

    fn cached(&self, provider: &str) -> Option<StoredToken> {
        self.store().load(provider, "default").unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn with_secret() -> [(&'static str, &'static str); 1] {
    [("SPECAUTH_CLIENT_SECRET", CLIENT_SECRET)]
}

/// A running `specauth` whose stderr is read line by line as it comes.
struct Running {
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<String>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("the binary runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        Running {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The first stderr line containing `needle` (trimmed), within 15 s.
    fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return line.trim().to_owned(),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no stderr line with `{needle}` within 15 s")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("specauth exited before printing `{needle}`")
                }
            }
        }
    }

    /// Waits for the exit; (status, stdout, whole stderr).
    fn finish(mut self) -> (ExitStatus, String, String) {
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = self.child.wait().unwrap();
        let err = self.reader.take().unwrap().join().unwrap();
        (status, out, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only when a test failed half-way: do not leave the process behind.
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Query parameters of a URL.
fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The test's "browser": plain GETs to 127.0.0.1, no proxy, statuses returned.
fn browser_get(url: &str) -> u16 {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    agent
        .get(url)
        .call()
        .expect("the redirect listener answers")
        .status()
        .as_u16()
}

fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows the secret `{s}`:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// 1. login with a scripted redirect
// ---------------------------------------------------------------------------------------------

#[test]
fn login_through_a_scripted_browser_redirect_caches_the_token() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let login_args = [
        "login",
        "peer",
        "--no-browser",
        "--port",
        "0",
        "--set",
        "client_id=app",
        "--timeout",
        "20",
    ];
    let run = Running::spawn(sb.command(&login_args, &with_secret()));
    let url = run.wait_for_line(&format!("{}/authorize?", emu.origin));
    let p = query(&url);
    assert_eq!(
        p.get("response_type").map(String::as_str),
        Some("code"),
        "{url}"
    );
    assert_eq!(
        p.get("client_id").map(String::as_str),
        Some(CLIENT_ID),
        "{url}"
    );
    assert_eq!(
        p.get("code_challenge_method").map(String::as_str),
        Some("S256"),
        "{url}"
    );
    assert!(
        !url.contains(CLIENT_SECRET),
        "the authorize URL shows the client secret: {url}"
    );
    let state = p.get("state").expect("a state").clone();
    let challenge = p.get("code_challenge").expect("a PKCE challenge").clone();
    let redirect_uri = p.get("redirect_uri").expect("a redirect_uri").clone();
    assert!(state.len() >= 16, "state `{state}` is too guessable");
    assert_eq!(challenge.len(), 43, "S256 challenge `{challenge}`");
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"),
        "{redirect_uri}"
    );

    // The user signs in: the server issues a code bound to the challenge and the redirect_uri.
    emu.state().codes.insert(
        "peer-code-1".into(),
        IssuedCode {
            challenge: challenge.clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    // A stray redirect with another state is refused and does not end the login.
    assert_eq!(
        browser_get(&format!("{redirect_uri}?code=evil&state=not-{state}")),
        400
    );
    let done = format!(
        "{redirect_uri}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", "peer-code-1")
            .append_pair("state", &state)
            .finish()
    );
    assert_eq!(browser_get(&done), 200);
    let (status, out, err) = run.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    emu.assert_no_violations();

    // Exactly one code exchange, with Basic auth, the verifier and the same redirect_uri.
    let exchanges: Vec<Seen> = emu
        .seen()
        .into_iter()
        .filter(|s| s.path == "/token")
        .collect();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].get("grant_type"), Some("authorization_code"));
    assert_eq!(exchanges[0].get("code"), Some("peer-code-1"));
    assert_eq!(
        exchanges[0].get("redirect_uri"),
        Some(redirect_uri.as_str())
    );
    let issued: Vec<(String, Option<String>)> = emu.state().issued.clone().into_iter().collect();
    let (access, refresh) = (issued[0].0.clone(), issued[0].1.clone().unwrap());

    // stdout: the summary, and no secret anywhere.
    let summary: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let expires_at = summary["expires_at"].as_u64().expect("expires_at");
    assert!(
        (now() + 3500..=now() + 3700).contains(&expires_at),
        "{summary}"
    );
    assert_eq!(
        summary,
        json!({"provider": "peer", "profile": "default", "token_type": "Bearer",
               "expires_at": expires_at, "refreshable": true, "scope": ["read", "write"]})
    );
    let secrets = [
        access.as_str(),
        refresh.as_str(),
        CLIENT_SECRET,
        "peer-code-1",
    ];
    assert_no_secret("stdout", &out, &secrets);
    assert_no_secret("stderr", &err, &secrets);

    // The cache: owner-only, with the issued token and no client secret.
    let file = sb.store_dir().join("peer@default.json");
    let raw = std::fs::read_to_string(&file).expect("the cache file exists");
    assert!(!raw.contains(CLIENT_SECRET), "{raw}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(sb.store_dir())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    let cached = sb.cached("peer").unwrap();
    assert_eq!(cached.token.access_token.secret(), access);
    assert_eq!(
        cached.inputs.get("client_id").map(String::as_str),
        Some(CLIENT_ID)
    );

    // print-token: the issued token, straight from the cache.
    let before = emu.seen().len();
    let o = sb.run(&["print-token", "peer"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), format!("{access}\n"));
    assert_eq!(emu.seen().len(), before, "a fresh token needs no server");

    // The user refuses: the redirect carries ?error=access_denied → exit 1, cache untouched.
    let run = Running::spawn(sb.command(&login_args, &with_secret()));
    let url = run.wait_for_line(&format!("{}/authorize?", emu.origin));
    let p = query(&url);
    let denied = format!(
        "{}?error=access_denied&error_description=User+said+no&state={}",
        p["redirect_uri"], p["state"]
    );
    assert_eq!(browser_get(&denied), 400);
    let (status, out, err) = run.finish();
    assert_eq!(status.code(), Some(1), "stderr:\n{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("access_denied") || err.contains("User said no"),
        "{err}"
    );
    assert_eq!(
        sb.cached("peer").unwrap().token.access_token.secret(),
        access
    );
    assert_eq!(
        emu.seen().len(),
        before,
        "a refused login sends nothing to the token endpoint"
    );
    emu.assert_no_violations();
}

// ---------------------------------------------------------------------------------------------
// 2. device flow
// ---------------------------------------------------------------------------------------------

#[test]
fn device_login_polls_slows_down_and_caches_the_token() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    {
        let mut st = emu.state();
        st.secret = None; // a public client: client_id in the body
        st.device_script = ["authorization_pending", "slow_down", "ok"].into();
    }
    let o = sb.run(
        &[
            "login",
            "peer",
            "--device",
            "--slow-down-step",
            "1",
            "--set",
            "client_id=app",
        ],
        &[],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    emu.assert_no_violations();
    assert!(err.contains("https://peer.example/activate"), "{err}");
    assert!(err.contains(USER_CODE), "{err}");
    assert!(
        !err.contains("peer-device-"),
        "the device code is a secret: {err}"
    );

    let seen = emu.seen();
    let device = seen
        .iter()
        .find(|s| s.path == "/device")
        .expect("a device authorization request");
    assert_eq!(device.get("client_id"), Some(CLIENT_ID));
    let polls = emu.state().device_polls.clone();
    assert_eq!(polls.len(), 3, "pending, slow_down, then the token");
    let gap = polls[2] - polls[1];
    assert!(
        gap >= Duration::from_secs(1),
        "after slow_down the client waited only {gap:?}"
    );

    let summary: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(summary["provider"], "peer");
    assert_eq!(summary["refreshable"], true);
    let access = sb
        .cached("peer")
        .expect("cached")
        .token
        .access_token
        .secret()
        .to_owned();
    assert!(emu.state().issued.contains_key(&access));

    // The user denies, or lets the code expire: the provider's refusal, exit 1.
    for refusal in ["access_denied", "expired_token"] {
        emu.state().device_script = ["authorization_pending", refusal].into();
        let o = sb.run(
            &[
                "login",
                "peer",
                "--device",
                "--set",
                "client_id=app",
                "--profile",
                "other",
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(1), "{refusal}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(refusal), "{}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "");
        assert!(sb.store().load("peer", "other").unwrap().is_none());
    }
    emu.assert_no_violations();
}

/// A server that ignores DPoP answers a proof-carrying request with a bearer token: the login
/// says so, keeps no key, and the token is served as the bearer token it is.
#[test]
fn a_dpop_device_login_answered_with_a_bearer_token_keeps_no_key_and_says_so() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    {
        let mut st = emu.state();
        st.secret = None;
        st.device_script = ["authorization_pending", "ok"].into();
    }
    let o = sb.run(
        &[
            "login",
            "peer",
            "--device",
            "--dpop",
            "--set",
            "client_id=app",
        ],
        &[],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    emu.assert_no_violations();
    // Every poll carried a proof of its own for the token endpoint.
    let polls: Vec<Seen> = emu
        .seen()
        .into_iter()
        .filter(|s| s.path == "/token")
        .collect();
    assert_eq!(polls.len(), 2, "{polls:?}");
    let mut jtis = Vec::new();
    for poll in &polls {
        let proof = poll.dpop.as_deref().expect("a DPoP proof on every poll");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(proof.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], format!("{}/token", emu.origin));
        jtis.push(claims["jti"].clone());
    }
    assert_ne!(jtis[0], jtis[1]);
    assert!(
        err.contains("specauth: warning: Peer answered token_type `Bearer`, not `DPoP`: it did not bind the token to the DPoP key, so the token is cached as a bearer token and no key is kept\n"),
        "{err}"
    );
    let summary: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(summary["token_type"], "Bearer");
    assert!(summary.get("dpop").is_none(), "{summary}");
    let entry = sb.cached("peer").expect("cached");
    assert!(entry.dpop_key.is_none());
    let access = entry.token.access_token.secret().to_owned();
    // Served as a bearer token; no DPoP headers for it.
    let o = sb.run(&["print-token", "peer", "--format", "header"], &[]);
    assert_eq!(text(&o.stdout), format!("Authorization: Bearer {access}\n"));
    let o = sb.run(
        &[
            "print-token",
            "peer",
            "--dpop",
            "GET",
            "https://api.example/x",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is not bound to a DPoP key"),
        "{}",
        text(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// 3. refresh on expiry, and 4. rotation
// ---------------------------------------------------------------------------------------------

#[test]
fn print_token_refreshes_a_token_about_to_expire_once() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    emu.register_pair("peer-access-old", "peer-refresh-old");
    sb.seed("peer", "peer-access-old", "peer-refresh-old", now() + 10);

    let o = sb.run(
        &["print-token", "peer", "--min-valid", "60"],
        &with_secret(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    emu.assert_no_violations();
    let seen = emu.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].get("grant_type"), Some("refresh_token"));
    assert_eq!(seen[0].get("refresh_token"), Some("peer-refresh-old"));
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
    let new = text(&o.stdout).trim().to_owned();
    assert_ne!(new, "peer-access-old");
    assert!(
        emu.state().issued.contains_key(&new),
        "`{new}` was not issued by the server"
    );
    let cached = sb.cached("peer").unwrap();
    assert_eq!(cached.token.access_token.secret(), new);
    assert_eq!(
        cached.token.refresh_token.as_ref().map(Secret::secret),
        emu.state().issued[&new].as_deref()
    );

    // Fresh now: the same token, and the server is not asked again.
    let o = sb.run(&["print-token", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), new);
    assert_eq!(emu.seen().len(), 1);
}

/// A spec's `token.refresh_margin` refreshes early: a token with 300 s left is refreshed when
/// the spec asks for 600, though `--min-valid` (60) would take it; the new entry keeps the
/// margin, so the cache-only path honours it too.
#[test]
fn print_token_refreshes_early_when_the_spec_sets_a_refresh_margin() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let o = &emu.origin;
    std::fs::write(
        sb.dir.path().join("specs").join("early.yaml"),
        format!(
            "id: early\nname: Early\nextends: oauth2\nendpoints:\n  token: {o}/token\ntoken: {{ refresh_margin: 600 }}\n"
        ),
    )
    .unwrap();
    emu.register_pair("early-access-old", "early-refresh-old");
    sb.seed(
        "early",
        "early-access-old",
        "early-refresh-old",
        now() + 300,
    );
    let mut entry = sb.cached("early").unwrap();
    entry.refresh_margin = 600;
    sb.store().save(&entry).unwrap();

    let o = sb.run(
        &["print-token", "early", "--min-valid", "60"],
        &with_secret(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let seen = emu.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].get("refresh_token"), Some("early-refresh-old"));
    let new = text(&o.stdout).trim().to_owned();
    assert_ne!(new, "early-access-old");
    assert_eq!(sb.cached("early").unwrap().refresh_margin, 600);

    // The emulator's tokens live an hour: fresh under a 600 s margin, so served from the cache.
    let o = sb.run(&["print-token", "early"], &with_secret());
    assert_eq!(text(&o.stdout).trim(), new);
    assert_eq!(emu.seen().len(), 1);
    emu.assert_no_violations();
}

#[test]
fn a_rotated_refresh_token_is_never_sent_again() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    // Every issued token lives 30 s, so `--min-valid 60` refreshes on every call.
    emu.state().expires_in = 30;
    emu.register_pair("peer-access-0", "peer-refresh-0");
    sb.seed("peer", "peer-access-0", "peer-refresh-0", now() - 1);

    let mut printed = Vec::new();
    for _ in 0..4 {
        let o = sb.run(
            &["print-token", "peer", "--min-valid", "60"],
            &with_secret(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        printed.push(text(&o.stdout).trim().to_owned());
    }
    emu.assert_no_violations();
    let st = emu.state();
    assert!(
        st.reused.is_empty(),
        "rotated refresh tokens were sent again: {:?}",
        st.reused
    );
    // Each refresh used the refresh token the previous one returned.
    let mut expected = vec!["peer-refresh-0".to_owned()];
    expected.extend(printed[..3].iter().map(|a| st.issued[a].clone().unwrap()));
    assert_eq!(st.refreshes, expected);
    let distinct: HashSet<&String> = printed.iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "every refresh gives a new access token: {printed:?}"
    );
    let last_refresh = st.issued[&printed[3]].clone();
    drop(st);
    assert_eq!(
        sb.cached("peer")
            .unwrap()
            .token
            .refresh_token
            .as_ref()
            .map(|s| s.secret().to_owned()),
        last_refresh
    );

    // What the server does to a client that re-uses one: invalid_grant. Only a new sign-in
    // helps: exit 4, naming the command.
    sb.seed("peer", "peer-access-0", "peer-refresh-0", now() - 1);
    let o = sb.run(&["print-token", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("invalid_grant")
            && text(&o.stderr).contains("run `specauth login peer` again"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(emu.state().reused, ["peer-refresh-0"]);
}

// ---------------------------------------------------------------------------------------------
// 5. racing processes
// ---------------------------------------------------------------------------------------------

#[test]
fn sixteen_racing_processes_refresh_exactly_once() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    emu.state().refresh_delay = Duration::from_millis(200);
    emu.register_pair("peer-access-expired", "peer-refresh-0");
    sb.seed("peer", "peer-access-expired", "peer-refresh-0", now() - 100);

    let children: Vec<Child> = (0..16)
        .map(|_| {
            sb.command(&["print-token", "peer"], &with_secret())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let printed: HashSet<String> = outputs.iter().map(|o| text(&o.stdout)).collect();
    assert_eq!(printed.len(), 1, "different tokens printed: {printed:?}");
    let token = printed.into_iter().next().unwrap().trim().to_owned();
    emu.assert_no_violations();
    {
        let st = emu.state();
        assert_eq!(st.refreshes, ["peer-refresh-0"], "exactly one refresh");
        assert!(st.issued.contains_key(&token), "`{token}`");
        assert!(st.reused.is_empty());
    }

    // The provider's tokens live 30 s, less than `--min-valid 60`: the processes that waited
    // for the lock take the token just refreshed instead of refreshing once each.
    {
        let mut st = emu.state();
        st.expires_in = 30;
        st.refreshes.clear();
    }
    emu.register_pair("peer-access-expired-2", "peer-refresh-2");
    sb.seed(
        "peer",
        "peer-access-expired-2",
        "peer-refresh-2",
        now() - 100,
    );
    let args = ["print-token", "peer", "--min-valid", "60"];
    let children: Vec<Child> = (0..8)
        .map(|_| sb.command(&args, &with_secret()).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let printed: HashSet<String> = outputs.iter().map(|o| text(&o.stdout)).collect();
    assert_eq!(printed.len(), 1, "different tokens printed: {printed:?}");
    assert_eq!(
        emu.state().refreshes,
        ["peer-refresh-2"],
        "exactly one refresh"
    );
    emu.assert_no_violations();
}

#[test]
fn login_and_logout_wait_for_a_refresh_in_flight() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    emu.state().refresh_delay = Duration::from_millis(1000);
    let refresh_arrived = |emu: &Emulator| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !emu
            .seen()
            .iter()
            .any(|s| s.get("grant_type") == Some("refresh_token"))
        {
            assert!(Instant::now() < deadline, "no refresh reached the server");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // A login that completes while another process is refreshing the old session: the login's
    // token is the one left in the cache, not the old session's refreshed one.
    emu.register_pair("peer-access-old", "peer-refresh-old");
    sb.seed("peer", "peer-access-old", "peer-refresh-old", now() - 100);
    let printing = sb
        .command(&["print-token", "peer"], &with_secret())
        .spawn()
        .unwrap();
    refresh_arrived(&emu);
    let o = sb.run(
        &["login", "peer", "--device", "--set", "client_id=app"],
        &with_secret(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = printing.wait_with_output().unwrap();
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed.stderr));
    let refreshed = text(&printed.stdout).trim().to_owned();
    let cached = sb
        .cached("peer")
        .unwrap()
        .token
        .access_token
        .secret()
        .to_owned();
    assert_ne!(
        cached, refreshed,
        "the refresh in flight overwrote the new login"
    );
    let logged_in: Vec<String> = {
        let st = emu.state();
        st.issued
            .keys()
            .filter(|a| **a != refreshed)
            .cloned()
            .collect()
    };
    assert_eq!(logged_in, std::slice::from_ref(&cached));

    // A logout while a refresh is in flight: the refreshed token is revoked and forgotten too,
    // rather than reappearing in the cache after the logout.
    emu.state().seen.clear();
    sb.seed(
        "peer",
        &cached,
        &emu.state().issued[&cached].clone().unwrap(),
        now() - 100,
    );
    let printing = sb
        .command(&["print-token", "peer"], &with_secret())
        .spawn()
        .unwrap();
    refresh_arrived(&emu);
    let o = sb.run(&["logout", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed = printing.wait_with_output().unwrap();
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed.stderr));
    let refreshed = text(&printed.stdout).trim().to_owned();
    assert!(
        sb.cached("peer").is_none(),
        "the refreshed token reappeared after logout"
    );
    let st = emu.state();
    let revoked: Vec<&str> = st.revoked.iter().map(|(t, _)| t.as_str()).collect();
    let new_refresh = st.issued[&refreshed].clone().unwrap();
    assert_eq!(revoked, [new_refresh.as_str(), refreshed.as_str()]);
    drop(st);
    emu.assert_no_violations();
}

// ---------------------------------------------------------------------------------------------
// 6. killed mid-refresh
// ---------------------------------------------------------------------------------------------

#[test]
fn a_process_killed_mid_refresh_never_leaves_a_torn_cache() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let store = sb.store();
    let started = Instant::now();
    let (mut kept_old, mut got_new) = (0, 0);
    for i in 0..40u64 {
        // Each round starts from an expired token whose refresh token the server accepts.
        let (old_access, old_refresh) = (
            format!("peer-access-seed-{i}"),
            format!("peer-refresh-seed-{i}"),
        );
        emu.register_pair(&old_access, &old_refresh);
        sb.seed("peer", &old_access, &old_refresh, now() - 100);

        let mut cmd = sb.command(&["print-token", "peer"], &with_secret());
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis((i * 5) % 35));
        let _ = child.kill();
        child.wait().unwrap();

        let entry = store
            .load("peer", "default")
            .unwrap_or_else(|e| panic!("round {i}: the cache is corrupt: {e}"))
            .unwrap_or_else(|| panic!("round {i}: the cache is gone"));
        let access = entry.token.access_token.secret().to_owned();
        let refresh = entry
            .token
            .refresh_token
            .as_ref()
            .map(|s| s.secret().to_owned());
        if access == old_access {
            assert_eq!(refresh.as_deref(), Some(old_refresh.as_str()), "round {i}");
            kept_old += 1;
        } else {
            let issued = emu.state().issued.get(&access).cloned();
            assert_eq!(
                issued,
                Some(refresh),
                "round {i}: `{access}` is neither the old token nor one the server issued"
            );
            got_new += 1;
        }
        assert_eq!(store.list().unwrap().len(), 1, "round {i}");
    }
    eprintln!(
        "killed 40 times in {:?}: {kept_old} kept the old token, {got_new} had the new one",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    emu.assert_no_violations();

    // A writer killed between its temporary file and the rename leaves a copy of a token
    // behind; logout must not.
    let o = sb.run(&["logout", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let left: Vec<String> = std::fs::read_dir(sb.store_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "token files left after logout: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. tokens, introspect, revoke, logout
// ---------------------------------------------------------------------------------------------

#[test]
fn tokens_introspect_revoke_and_logout() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    emu.register_pair("peer-access-live", "peer-refresh-live");
    sb.seed(
        "peer",
        "peer-access-live",
        "peer-refresh-live",
        now() + 3000,
    );
    let secrets = ["peer-access-live", "peer-refresh-live", CLIENT_SECRET];

    let o = sb.run(&["tokens"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("peer ") && out.contains("default") && out.contains("refreshable"),
        "{out}"
    );
    assert!(out.contains("expires in "), "{out}");
    assert_no_secret("tokens", &out, &secrets);
    let o = sb.run(&["tokens", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let list: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        (
            &list[0]["provider"],
            &list[0]["profile"],
            &list[0]["refreshable"]
        ),
        (&json!("peer"), &json!("default"), &json!(true))
    );
    assert_eq!(list[0]["scope"], json!(["read", "write"]));
    assert_no_secret("tokens --json", &text(&o.stdout), &secrets);
    assert!(emu.seen().is_empty(), "listing needs no server");

    // introspect: the refresh token by default, the access token with --which access.
    let o = sb.run(&["introspect", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let reply: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(reply["active"], true, "{reply}");
    assert_eq!(reply["client_id"], CLIENT_ID);
    let last = emu.seen().last().cloned().unwrap();
    assert_eq!(
        (
            last.path.as_str(),
            last.get("token"),
            last.get("token_type_hint")
        ),
        (
            "/introspect",
            Some("peer-refresh-live"),
            Some("refresh_token")
        )
    );

    // revoke the access token; introspection then says inactive.
    let o = sb.run(&["revoke", "peer", "--which", "access"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        emu.state().revoked,
        [(
            "peer-access-live".to_owned(),
            Some("access_token".to_owned())
        )]
    );
    let o = sb.run(&["introspect", "peer", "--which", "access"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        serde_json::from_str::<Value>(text(&o.stdout).trim()).unwrap(),
        json!({"active": false})
    );
    let last = emu.seen().last().cloned().unwrap();
    assert_eq!(
        (last.get("token"), last.get("token_type_hint")),
        (Some("peer-access-live"), Some("access_token"))
    );
    assert!(
        sb.cached("peer").is_some(),
        "revoke does not forget the cached token"
    );

    // logout: revokes the refresh token, then the access token, and forgets the cache, with
    // any temporary copy an interrupted save left behind.
    let orphan = sb.store_dir().join(".peer@default.4242.tmp");
    let abandoned = sb.store_dir().join(".peer@default.4243.tmp");
    for f in [&orphan, &abandoned] {
        std::fs::write(f, "{\"token\":{\"access_token\":\"peer-access-live\"}}").unwrap();
    }
    let long_ago = SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&abandoned)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    sb.seed(
        "peer",
        "peer-access-live",
        "peer-refresh-live",
        now() + 3000,
    );
    assert!(
        orphan.exists(),
        "a save does not sweep a temporary file that may be in flight"
    );
    assert!(
        !abandoned.exists(),
        "a save sweeps a temporary file abandoned long ago"
    );
    emu.state().revoked.clear();
    let o = sb.run(&["logout", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        emu.state().revoked,
        [
            (
                "peer-refresh-live".to_owned(),
                Some("refresh_token".to_owned())
            ),
            (
                "peer-access-live".to_owned(),
                Some("access_token".to_owned())
            ),
        ]
    );
    assert!(sb.cached("peer").is_none());
    assert!(!sb.store_dir().join("peer@default.json").exists());
    assert!(
        !orphan.exists(),
        "logout left a temporary copy of the token"
    );
    let o = sb.run(&["tokens", "--json"], &[]);
    assert_eq!(text(&o.stdout).trim(), "[]");
    // Nothing cached any more: introspect has nothing to act on (sign-in needed, 4); logout
    // is a no-op.
    let o = sb.run(&["introspect", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    let o = sb.run(&["logout", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // A spec without a revocation endpoint: logout only forgets locally.
    sb.seed("plain", "plain-access", "plain-refresh", now() + 3000);
    let before = emu.seen().len();
    let o = sb.run(&["logout", "plain"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(sb.cached("plain").is_none());
    assert_eq!(emu.seen().len(), before, "nothing to revoke at");
    let o = sb.run(&["revoke", "plain", "--set", "token=x"], &with_secret());
    assert_eq!(
        o.status.code(),
        Some(2),
        "no revocation endpoint is a usage error: {}",
        text(&o.stderr)
    );
    emu.assert_no_violations();
}

// ---------------------------------------------------------------------------------------------
// 8. profiles file precedence
// ---------------------------------------------------------------------------------------------

#[test]
fn profiles_file_then_environment_then_set() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    {
        let mut st = emu.state();
        st.secret = None;
        st.client_id = None; // accept any client id and record it
    }
    std::fs::write(
        sb.config(),
        "peer:\n  default:\n    client_id: from-profile\n    scope: a\n  work:\n    client_id: from-work\n",
    )
    .unwrap();
    // Each device login's authorization request shows which client_id and scope were used.
    let login = |extra: &[&str], env: &[(&str, &str)]| -> (String, Option<String>) {
        let mut args = vec!["login", "peer", "--device"];
        args.extend_from_slice(extra);
        let o = sb.run(&args, env);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        let seen = emu.seen();
        let device = seen.iter().rev().find(|s| s.path == "/device").unwrap();
        (
            device.get("client_id").unwrap().to_owned(),
            device.get("scope").map(str::to_owned),
        )
    };
    assert_eq!(login(&[], &[]), ("from-profile".into(), Some("a".into())));
    assert_eq!(
        login(&[], &[("SPECAUTH_CLIENT_ID", "from-env")]),
        ("from-env".into(), Some("a".into()))
    );
    assert_eq!(
        login(
            &["--set", "client_id=from-flag"],
            &[("SPECAUTH_CLIENT_ID", "from-env")]
        ),
        ("from-flag".into(), Some("a".into()))
    );
    assert_eq!(
        login(&["--profile", "work"], &[]),
        ("from-work".into(), None)
    );
    assert_eq!(
        sb.store().load("peer", "work").unwrap().unwrap().inputs["client_id"],
        "from-work"
    );
    emu.assert_no_violations();

    // A secret in the profiles file is refused before anything is sent, naming the input.
    std::fs::write(
        sb.config(),
        "peer:\n  default:\n    client_id: app\n    client_secret: oops\n",
    )
    .unwrap();
    let before = emu.seen().len();
    let o = sb.run(&["login", "peer", "--device"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("`client_secret`"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stderr).contains("oops"), "{}", text(&o.stderr));
    let o = sb.run(
        &["--json", "print-token", "peer", "--min-valid", "999999"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let e: Value = serde_json::from_str(text(&o.stderr).trim()).unwrap();
    assert_eq!(
        (&e["error"]["kind"], &e["error"]["code"]),
        (&json!("input"), &json!("client_secret"))
    );
    assert_eq!(emu.seen().len(), before);
}

// ---------------------------------------------------------------------------------------------
// 9. completions and help
// ---------------------------------------------------------------------------------------------

#[test]
fn completions_and_help_cover_the_session_commands() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let o = sb.run(&["completions", "bash"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The script calls back into specauth at each Tab; what it completes comes from there.
    let o = Command::new(BIN)
        .args(["--", "specauth", ""])
        .env("COMPLETE", "fish")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let script = text(&o.stdout);
    for cmd in [
        "print-token",
        "login",
        "logout",
        "tokens",
        "revoke",
        "introspect",
    ] {
        assert!(script.contains(cmd), "completions lack `{cmd}`");
    }
    let o = sb.run(&["print-token", "--help"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let help = text(&o.stdout);
    assert!(
        help.contains("Example:") && help.contains("specauth print-token"),
        "{help}"
    );
    assert!(help.contains("--min-valid"), "{help}");
    assert!(emu.seen().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Hardening: lifecycle, store folder, bounded waits, inputs that must not vanish
// ---------------------------------------------------------------------------------------------

/// Hardening items 19 and 20: a logout whose revocation fails keeps the entry (unless
/// `--force`), and a revoked token is no longer served from the cache.
#[test]
fn logout_keeps_what_it_could_not_revoke_and_revoke_drops_what_it_revoked() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    emu.register_pair("keep-access", "keep-refresh");
    sb.seed("peer", "keep-access", "keep-refresh", now() + 3000);
    // No client secret: the provider refuses the revocation.
    let o = sb.run(&["logout", "peer"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("Kept the cached token"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        sb.cached("peer").is_some(),
        "the refresh token may still be live"
    );
    let o = sb.run(&["logout", "peer", "--force"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(sb.cached("peer").is_none(), "--force forgets it anyway");

    // Revoking the access token leaves the refresh token, and the access token is not served.
    emu.register_pair("r-access", "r-refresh");
    sb.seed("peer", "r-access", "r-refresh", now() + 3000);
    let o = sb.run(&["revoke", "peer", "--which", "access"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let entry = sb.cached("peer").expect("the refresh token stays");
    assert!(
        entry.token.expires_within(now(), 0),
        "the revoked access token is marked expired"
    );
    assert_eq!(entry.token.refresh_token.unwrap().secret(), "r-refresh");
    // Revoking the refresh token takes the entry.
    let o = sb.run(&["revoke", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(sb.cached("peer").is_none());
}

/// Hardening item 8: a store folder others can write, or a planted link, is refused.
#[test]
fn a_store_folder_others_could_plant_files_in_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    sb.seed("peer", "a-access", "a-refresh", now() + 3000);
    let dir = sb.store_dir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = sb.run(&["print-token", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("lets group or others write"),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).is_empty());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A symbolic link planted at the cache path is not followed.
    let elsewhere = sb.dir.path().join("elsewhere.json");
    std::fs::rename(dir.join("peer@default.json"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("peer@default.json")).unwrap();
    let o = sb.run(&["print-token", "peer"], &with_secret());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stdout).is_empty(), "a linked entry was served");

    // A store folder that belongs to someone else.
    let foreign = if euid() == 0 {
        let d = sb.dir.path().join("foreign");
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    } else {
        PathBuf::from("/usr")
    };
    let o = Command::new(BIN)
        .args(["--store"])
        .arg(&foreign)
        .args(["tokens"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not to you"),
        "{}",
        text(&o.stderr)
    );
}

fn euid() -> u32 {
    // The test runs as whoever runs `cargo test`: root in CI, a developer elsewhere.
    std::fs::metadata("/proc/self")
        .map(|m| {
            use std::os::unix::fs::MetadataExt as _;
            m.uid()
        })
        .unwrap_or(0)
}

/// Hardening items 13 and 14: a profiles file that never ends is refused, and waiting for
/// another process's refresh lock is bounded by `--timeout`.
#[test]
fn unbounded_reads_and_waits_are_refused() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let start = Instant::now();
    let o = sb.run(
        &[
            "render",
            "peer",
            "client_credentials",
            "--config",
            "/dev/zero",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a regular file"),
        "{}",
        text(&o.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    sb.seed(
        "peer",
        "old-access",
        "old-refresh",
        now().saturating_sub(10),
    );
    let lock = sb.store().lock("peer", "default").unwrap();
    let start = Instant::now();
    let o = sb.run(&["print-token", "peer", "--timeout", "1"], &with_secret());
    let took = start.elapsed();
    drop(lock);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("held the lock"),
        "{}",
        text(&o.stderr)
    );
    assert!(took < Duration::from_secs(10), "waited {took:?}");
}

/// Hardening item 18: a secret that is not UTF-8 in the environment, or empty on stdin, is an
/// input error naming the input, not a silent public-client request.
#[test]
fn inputs_that_cannot_be_read_are_errors_naming_them() {
    use std::os::unix::ffi::OsStrExt as _;
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let before = emu.seen().len();
    let mut cmd = sb.command(
        &[
            "--json",
            "token",
            "peer",
            "client_credentials",
            "--set",
            "client_id=app",
        ],
        &[],
    );
    cmd.env(
        "SPECAUTH_CLIENT_SECRET",
        std::ffi::OsStr::from_bytes(b"s3cret\xff"),
    );
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["error"]["code"], "client_secret", "{err}");
    assert_eq!(emu.seen().len(), before, "nothing was sent");

    let mut cmd = sb.command(
        &[
            "--json",
            "token",
            "peer",
            "client_credentials",
            "--set",
            "client_id=app",
            "--set",
            "client_secret=-",
        ],
        &[],
    );
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["error"]["code"], "client_secret", "{err}");
    assert_eq!(emu.seen().len(), before, "nothing was sent");
}

/// Format issue item 13: a spec whose code exchange sends `state` gets the login's `state`.
#[test]
fn login_passes_state_to_a_code_exchange_that_sends_it() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let o = &emu.origin;
    std::fs::write(
        sb.dir.path().join("specs").join("stateful.yaml"),
        format!(
            "id: stateful\nextends: oauth2\nclient_auth: basic\nendpoints:\n  token: {o}/token\n  authorize: {o}/authorize\n\
             grants:\n  authorization_code:\n    fields:\n      state: \"{{{{ state }}}}\"\n"
        ),
    )
    .unwrap();
    let run = Running::spawn(sb.command(
        &[
            "login",
            "stateful",
            "--no-browser",
            "--set",
            "client_id=app",
            "--timeout",
            "20",
        ],
        &with_secret(),
    ));
    let url = run.wait_for_line(&format!("{o}/authorize?"));
    let p = query(&url);
    let state = p.get("state").expect("a state").clone();
    emu.state().codes.insert(
        "stateful-code".into(),
        IssuedCode {
            challenge: p.get("code_challenge").expect("a challenge").clone(),
            redirect_uri: p.get("redirect_uri").expect("a redirect_uri").clone(),
        },
    );
    let done = format!(
        "{}?code=stateful-code&state={state}",
        p.get("redirect_uri").unwrap()
    );
    assert_eq!(browser_get(&done), 200);
    let (status, _, err) = run.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    let exchange = emu
        .seen()
        .into_iter()
        .find(|s| s.path == "/token")
        .expect("a code exchange");
    assert_eq!(exchange.get("state"), Some(state.as_str()));
}

/// Format issue item 13: a redirect that carries the code under another name, and values the
/// exchange needs (a region that picks the token URL), which the cache keeps for refreshes.
#[test]
fn login_takes_the_code_and_values_from_the_redirect_as_the_spec_says() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let o = &emu.origin;
    std::fs::write(
        sb.dir.path().join("specs").join("regional.yaml"),
        format!(
            "id: regional\nextends: oauth2\nclient_auth: basic\nendpoints:\n  token: \"{o}/token?region={{{{ region }}}}\"\n  authorize: {o}/authorize\n\
             inputs:\n  region: {{ description: The accounts region the redirect names }}\n\
             authorize:\n  redirect:\n    code: authCode\n    inputs: {{ region: accounts_region }}\n"
        ),
    )
    .unwrap();
    let run = Running::spawn(sb.command(
        &[
            "login",
            "regional",
            "--no-browser",
            "--set",
            "client_id=app",
            "--timeout",
            "20",
        ],
        &with_secret(),
    ));
    let url = run.wait_for_line(&format!("{o}/authorize?"));
    let p = query(&url);
    let state = p.get("state").expect("a state").clone();
    let redirect_uri = p.get("redirect_uri").unwrap().clone();
    emu.state().codes.insert(
        "regional-code".into(),
        IssuedCode {
            challenge: p.get("code_challenge").expect("a challenge").clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    // `code` is not where this provider puts it: the redirect below has only authCode.
    let done = format!("{redirect_uri}?authCode=regional-code&accounts_region=eu-2&state={state}");
    assert_eq!(browser_get(&done), 200);
    let (status, _, err) = run.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    let exchange = emu
        .seen()
        .into_iter()
        .find(|s| s.path == "/token")
        .expect("a code exchange");
    assert_eq!(exchange.get("code"), Some("regional-code"));
    let cached = sb.cached("regional").expect("cached");
    assert_eq!(
        cached.inputs.get("region").map(String::as_str),
        Some("eu-2")
    );
}

/// A provider that takes and returns no `state` (`authorize.redirect.state: false`): the
/// authorization URL carries none, and the redirect without one completes the login; PKCE
/// still binds the code to this login.
#[test]
fn login_without_state_where_the_provider_returns_none() {
    let emu = Emulator::start();
    let sb = Sandbox::new(&emu);
    let o = &emu.origin;
    std::fs::write(
        sb.dir.path().join("specs").join("stateless.yaml"),
        format!(
            "id: stateless\nextends: oauth2\nclient_auth: basic\nendpoints:\n  token: {o}/token\n  authorize: {o}/authorize\n\
             authorize:\n  params: {{ state: null }}\n  redirect: {{ state: false }}\n"
        ),
    )
    .unwrap();
    let run = Running::spawn(sb.command(
        &[
            "login",
            "stateless",
            "--no-browser",
            "--set",
            "client_id=app",
            "--timeout",
            "20",
        ],
        &with_secret(),
    ));
    let url = run.wait_for_line(&format!("{o}/authorize?"));
    let p = query(&url);
    assert!(!p.contains_key("state"), "{url}");
    let redirect_uri = p.get("redirect_uri").unwrap().clone();
    emu.state().codes.insert(
        "stateless-code".into(),
        IssuedCode {
            challenge: p.get("code_challenge").expect("a challenge").clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    assert_eq!(
        browser_get(&format!("{redirect_uri}?code=stateless-code")),
        200
    );
    let (status, _, err) = run.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{err}");
    assert!(sb.cached("stateless").is_some());
    emu.assert_no_violations();
}

// ---------------------------------------------------------------------------------------------
// How a spec refreshes and revokes, through the library
// ---------------------------------------------------------------------------------------------

/// The requests a recording client saw: URL and form fields.
type Recorded = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A client whose transport records each request's form body and answers with `answer`.
fn recording_client(
    answer: impl Fn(&BTreeMap<String, String>) -> http::Response<Vec<u8>> + Send + Sync + 'static,
) -> (specauth::Client<impl specauth::Transport>, Recorded) {
    let seen: Recorded = Arc::default();
    let log = seen.clone();
    let client = specauth::Client::with_transport(
        move |req: http::Request<Vec<u8>>| -> Result<_, specauth::TransportError> {
            let form: BTreeMap<String, String> =
                form_urlencoded::parse(req.body()).into_owned().collect();
            let reply = answer(&form);
            log.lock().unwrap().push((req.uri().to_string(), form));
            Ok(reply)
        },
    );
    (client, seen)
}

fn json_reply(status: u16, body: Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn entry(
    spec: &specauth::Spec,
    access: &str,
    refresh: Option<&str>,
    expires_at: u64,
) -> StoredToken {
    let token = Token {
        expires_at: Some(expires_at),
        refresh_token: refresh.map(Secret::new),
        ..Token::bearer(Secret::new(access))
    };
    StoredToken::new(
        spec,
        "default",
        token,
        &specauth::Inputs::new().with("client_id", "app"),
    )
}

/// `tokens: [access_token]` on `revoke`: logout sends only the access token, and `revoke`
/// picks it even when a refresh token is cached.
#[test]
fn a_revocation_that_takes_access_tokens_only_is_never_sent_a_refresh_token() {
    let spec = specauth::Spec::from_yaml(
        "t.yaml",
        "extends: oauth2\nendpoints:\n  token: https://a.example/token\n  revocation: https://a.example/revoke\nrequests:\n  revoke: { tokens: [access_token] }\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    let (client, seen) = recording_client(|_| json_reply(200, json!({})));
    let secrets = specauth::Inputs::new().with("client_secret", "s");

    store
        .save(&entry(&spec, "at-1", Some("rt-1"), now() + 3600))
        .unwrap();
    let inputs = specauth::session::token_request_inputs(
        &spec,
        &store,
        "default",
        &secrets,
        specauth::session::WhichToken::Preferred,
        &specauth::RequestKind::Revocation,
    )
    .unwrap();
    assert_eq!(inputs.get("token"), Some("at-1"));
    let refused = specauth::session::token_request_inputs(
        &spec,
        &store,
        "default",
        &secrets,
        specauth::session::WhichToken::Refresh,
        &specauth::RequestKind::Revocation,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("takes no refresh tokens"), "{refused}");

    specauth::session::logout(&client, &spec, &store, "default", &secrets, false).unwrap();
    let seen = seen.lock().unwrap();
    let sent: Vec<&str> = seen.iter().map(|(_, f)| f["token"].as_str()).collect();
    assert_eq!(sent, ["at-1"]);
    assert!(store.load("t", "default").unwrap().is_none());
}

/// A refresh that exchanges the current access token (no refresh token exists): the grant
/// sends `access_token` from the cache, and the new token replaces it.
#[test]
fn a_spec_can_refresh_by_exchanging_the_access_token() {
    let spec = specauth::Spec::from_yaml(
        "t.yaml",
        r#"extends: oauth2
endpoints: { token: https://a.example/token }
inputs: { access_token: { secret: true } }
token: { refresh_margin: 600 }
grants:
  refresh_token:
    fields:
      grant_type: fb_exchange_token
      refresh_token: null
      fb_exchange_token: "{{ access_token }}"
"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path());
    let (client, seen) = recording_client(|form| {
        assert_eq!(
            form.get("fb_exchange_token").map(String::as_str),
            Some("at-old")
        );
        json_reply(
            200,
            json!({"access_token": "at-new", "expires_in": 5_184_000}),
        )
    });
    // 300 s left, under the spec's 600 s margin: refreshed.
    store
        .save(&entry(&spec, "at-old", None, now() + 300))
        .unwrap();
    let fresh = specauth::session::fresh_token(
        &client,
        &spec,
        &store,
        "default",
        &specauth::Inputs::new().with("client_secret", "s"),
        60,
    )
    .unwrap();
    assert_eq!(fresh.token.access_token.secret(), "at-new");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(seen.lock().unwrap()[0].1["grant_type"], "fb_exchange_token");
    assert_eq!(
        store
            .load("t", "default")
            .unwrap()
            .unwrap()
            .token
            .access_token
            .secret(),
        "at-new"
    );
}
