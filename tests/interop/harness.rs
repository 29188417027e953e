//! The machinery of the interop lane (`tests/interop.rs`): the Node peer (`npm ci` once, one
//! `server.mjs` per test process), a scripted browser with a cookie jar, and the `specauth`
//! binary in a sandbox.
//!
//! The peer needs Node.js >= 20.18 and npm. Without them, or when `npm ci` fails, every interop
//! test fails with a message that says what to install: the lane never skips.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// The exact oidc-provider release the peer runs (tests/interop/package.json).
const OIDC_PROVIDER_VERSION: &str = "9.13.3";
/// Oldest Node.js the peer runs on (`URL.parse`).
const NODE_MIN: (u32, u32) = (20, 18);
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest any one `specauth` process may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

const INSTALL: &str = "install Node.js >= 20.18 (22 LTS recommended) with npm, e.g. from \
                       https://nodejs.org/en/download or `apt-get install nodejs npm`, and make \
                       sure `node` and `npm` are on PATH";

pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

pub fn specs_dir() -> PathBuf {
    interop_dir().join("specs")
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

static LANE_START: OnceLock<Instant> = OnceLock::new();

/// When this test process first asked for the peer (before `npm ci`).
fn lane_start() -> Instant {
    *LANE_START.get_or_init(Instant::now)
}

/// Times one test; prints its own and the lane's wall time when it ends (passed or not).
pub struct Timer {
    name: &'static str,
    start: Instant,
}

impl Timer {
    pub fn start(name: &'static str) -> Timer {
        lane_start();
        Timer {
            name,
            start: Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        eprintln!(
            "interop: {} took {:.2} s; lane wall time so far {:.2} s",
            self.name,
            self.start.elapsed().as_secs_f64(),
            lane_start().elapsed().as_secs_f64()
        );
    }
}

pub use crate::common::now;

// ---------------------------------------------------------------------------------------------
// Processes with a deadline
// ---------------------------------------------------------------------------------------------

/// What a finished process did.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The `--json` error on stderr: `{"error": {kind, status, code, message, hint, uri}}`.
    pub fn json_error(&self) -> serde_json::Value {
        serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not one JSON error ({e}):\n{}", self.stderr))
    }
}

fn drain(mut r: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` until `deadline`; kills it after that.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<ExitStatus, String> {
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("timed out and was killed".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` (stdin closed, output captured) for at most `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Out, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_until(&mut child, Instant::now() + timeout);
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Ok(status) => Ok(Out {
            status,
            stdout,
            stderr,
        }),
        Err(e) => Err(format!(
            "{cmd:?} {e} after {} s\nstdout:\n{stdout}\nstderr:\n{stderr}",
            timeout.as_secs()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------------------------

/// The running `server.mjs`. It lives in a static and is never dropped: when the test process
/// exits, the write end of the peer's stdin closes and the peer exits on EOF (it also exits
/// within ~1 s when re-parented).
pub struct Peer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub issuer: String,
    /// The peer's mutual-TLS listener and the certificates of its tests.
    pub mtls: Mtls,
    /// The private keys the peer made for its signed-assertion clients (PEM, PKCS#8).
    pub jwt_keys: JwtKeys,
    log: Arc<Mutex<String>>,
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

impl Peer {
    /// The last lines of the peer's stderr (`INTEROP_LOG=1` makes it log every request).
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let start = log.len().saturating_sub(3000);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(log.len());
        log[start..].to_owned()
    }
}

static PEER: OnceLock<Result<Peer, String>> = OnceLock::new();

/// The peer, started on first use (after `npm ci` when `node_modules` is missing or stale).
pub fn peer() -> &'static Peer {
    match PEER.get_or_init(|| {
        lane_start();
        start_peer()
    }) {
        Ok(p) => p,
        Err(e) => panic!("the interop peer is not available: {e}"),
    }
}

fn start_peer() -> Result<Peer, String> {
    let dir = interop_dir();
    check_node()?;
    // Held until the peer has loaded its modules: no other process re-installs them meanwhile.
    let lock_path = dir.join(".npm-ci.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    ensure_node_modules(&dir)?;
    let t = Instant::now();
    let (certificates, files) = Certificates::generate()?;
    let peer = spawn_server(&dir, certificates, files.path());
    drop(files);
    let peer = peer?;
    eprintln!(
        "interop: peer {} ready in {:.2} s",
        peer.issuer,
        t.elapsed().as_secs_f64()
    );
    drop(lock);
    Ok(peer)
}

fn check_node() -> Result<(), String> {
    let out = run_bounded(
        Command::new("node").arg("--version"),
        Duration::from_secs(20),
    )
    .map_err(|e| format!("`node` cannot be run ({e}): {INSTALL}"))?;
    let v = out.stdout.trim();
    let mut parts = v.trim_start_matches('v').split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= NODE_MIN => Ok(()),
        _ => Err(format!(
            "`node --version` says `{v}`, but the peer (oidc-provider {OIDC_PROVIDER_VERSION}) needs >= {}.{}: {INSTALL}",
            NODE_MIN.0, NODE_MIN.1
        )),
    }
}

/// `sha256(package.json, package-lock.json)`: what `node_modules` was installed from.
fn lock_digest(dir: &Path) -> Result<String, String> {
    let mut h = sha2::Sha256::new();
    for f in ["package.json", "package-lock.json"] {
        let p = dir.join(f);
        h.update(std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Runs `npm ci` unless `node_modules` was installed from the current lock file.
fn ensure_node_modules(dir: &Path) -> Result<(), String> {
    let stamp = dir.join("node_modules/.specauth-installed-from");
    let digest = lock_digest(dir)?;
    let installed = std::fs::read_to_string(dir.join("node_modules/oidc-provider/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    if installed.as_deref() == Some(OIDC_PROVIDER_VERSION)
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(digest.as_str())
    {
        return Ok(());
    }
    let t = Instant::now();
    let out = run_bounded(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
        NPM_CI_TIMEOUT,
    )
    .map_err(|e| {
        format!(
            "`npm ci` in {} could not run: {e}\n{INSTALL}",
            dir.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "`npm ci --no-audit --no-fund` in {} failed ({}): {INSTALL}, and that the npm registry \
             (https://registry.npmjs.org) is reachable.\nnpm's stderr:\n{}",
            dir.display(),
            out.status,
            out.stderr
        ));
    }
    std::fs::write(&stamp, &digest)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    eprintln!("interop: npm ci took {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn spawn_server(dir: &Path, certificates: Certificates, mtls_dir: &Path) -> Result<Peer, String> {
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("PORT", "0")
        .env("MTLS_DIR", mtls_dir)
        .env_remove("DEVICE_CODE_TTL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `node server.mjs`: {e}: {INSTALL}"))?;
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
    let fail = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(100));
        format!(
            "`node server.mjs` {why}; its stderr:\n{}",
            log.lock().unwrap()
        )
    };
    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => {
            return Err(fail(
                &mut child,
                format!("printed no READY line within {} s", READY_TIMEOUT.as_secs()),
            ));
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(fail(&mut child, "exited before printing READY".into()));
        }
    };
    let Some((issuer, origin)) = line
        .strip_prefix("READY ")
        .and_then(|rest| rest.split_once(' '))
        .filter(|(i, o)| i.starts_with("http://127.0.0.1:") && o.starts_with("https://127.0.0.1:"))
    else {
        return Err(fail(
            &mut child,
            format!("printed `{line}` instead of READY ISSUER MTLS_ORIGIN"),
        ));
    };
    let key = |name: &str| {
        std::fs::read_to_string(mtls_dir.join(name))
            .map_err(|e| format!("the peer wrote no {name}: {e}"))
    };
    let jwt_keys = match (
        key("jwt-rs256.pem"),
        key("jwt-es256.pem"),
        key("jwt-stranger.pem"),
    ) {
        (Ok(rs256), Ok(es256), Ok(stranger)) => JwtKeys {
            rs256,
            es256,
            stranger,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(fail(&mut child, e)),
    };
    Ok(Peer {
        issuer: issuer.to_owned(),
        jwt_keys,
        mtls: Mtls {
            origin: origin.to_owned(),
            certificates,
        },
        log,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    })
}

/// The keys of the peer's `private_key_jwt` clients, and one no client is registered with.
pub struct JwtKeys {
    /// `jwt-rs256-client`'s RSA key.
    pub rs256: String,
    /// `jwt-es256-client`'s P-256 key.
    pub es256: String,
    /// A key of no client.
    pub stranger: String,
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS (RFC 8705)
// ---------------------------------------------------------------------------------------------

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl Pem {
    /// The SHA-256 thumbprint of the certificate, base64url: its `x5t#S256` (RFC 8705 §3.1),
    /// computed here from the DER rcgen wrote rather than by specauth.
    pub fn thumbprint(&self) -> String {
        let der = rustls_der(&self.cert);
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            sha2::Sha256::digest(der),
        )
    }
}

/// The DER inside a one-certificate PEM.
fn rustls_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
}

/// What the mutual-TLS tests present, generated with rcgen for each test process.
pub struct Certificates {
    /// The test CA: it signed the https listener's certificate and `pki`.
    pub ca: String,
    /// `CN=specauth-mtls-client` from the test CA: `mtls-pki-client`'s (tls_client_auth).
    pub pki: Pem,
    /// The same subject from another CA the peer does not trust.
    pub rogue: Pem,
    /// Self-signed, registered in `mtls-self-signed-client`'s JWKS.
    pub self_signed: Pem,
    /// Self-signed with the same subject, another key, registered nowhere.
    pub other_self_signed: Pem,
}

/// The peer's https listener, which asks for client certificates.
pub struct Mtls {
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub origin: String,
    pub certificates: Certificates,
}

impl Certificates {
    /// The certificates, and the folder the peer reads its part from at start (removed
    /// once it is READY).
    fn generate() -> Result<(Certificates, tempfile::TempDir), String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let e = |e: rcgen::Error| format!("generating test certificates: {e}");
        let new_ca = |name: &str| -> Result<(String, Issuer<'static, KeyPair>), String> {
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().map_err(e)?;
            let cert = params.self_signed(&key).map_err(e)?;
            Ok((cert.pem(), Issuer::new(params, key)))
        };
        let leaf = |names: Vec<String>,
                    cn: &str,
                    issuer: Option<&Issuer<'static, KeyPair>>|
         -> Result<Pem, String> {
            let mut params = CertificateParams::new(names).map_err(e)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().map_err(e)?;
            let cert = match issuer {
                Some(issuer) => params.signed_by(&key, issuer).map_err(e)?,
                None => params.self_signed(&key).map_err(e)?,
            };
            Ok(Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            })
        };
        let (ca_pem, ca) = new_ca("specauth interop CA")?;
        let (_, rogue_ca) = new_ca("specauth rogue CA")?;
        let server = leaf(vec!["127.0.0.1".into()], "127.0.0.1", Some(&ca))?;
        let certificates = Certificates {
            ca: ca_pem,
            pki: leaf(vec![], "specauth-mtls-client", Some(&ca))?,
            rogue: leaf(vec![], "specauth-mtls-client", Some(&rogue_ca))?,
            self_signed: leaf(vec![], "specauth-mtls-client", None)?,
            other_self_signed: leaf(vec![], "specauth-mtls-client", None)?,
        };
        let dir = tempfile::tempdir().map_err(|e| format!("a folder for certificates: {e}"))?;
        for (name, text) in [
            ("ca.pem", &certificates.ca),
            ("server.pem", &server.cert),
            ("server-key.pem", &server.key),
            ("self-signed.pem", &certificates.self_signed.cert),
        ] {
            std::fs::write(dir.path().join(name), text)
                .map_err(|e| format!("writing {name}: {e}"))?;
        }
        Ok((certificates, dir))
    }
}

// ---------------------------------------------------------------------------------------------
// A scripted browser
// ---------------------------------------------------------------------------------------------

/// A user agent that follows redirects itself, with a cookie jar (by name; the peer's cookies
/// work with a path-ignoring jar), and answers the peer's login/consent interaction through
/// `/interaction/<uid>/auto`.
pub struct Browser {
    agent: ureq::Agent,
    jar: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            agent: agent(),
            jar: BTreeMap::new(),
        }
    }

    fn get(&mut self, url: &str) -> (u16, Option<String>, String) {
        let mut req = self.agent.get(url);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("Cookie", cookies.join("; "));
        }
        let mut reply = req
            .call()
            .unwrap_or_else(|e| panic!("browser: GET {url}: {e}"));
        for c in reply.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap_or("");
            let pair = c.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let expired = c.to_ascii_lowercase().contains("expires=thu, 01 jan 1970");
                if value.is_empty() || expired {
                    self.jar.remove(name.trim());
                } else {
                    self.jar.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
        let location = reply
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(|l| resolve(url, l));
        let body = reply.body_mut().read_to_string().unwrap_or_default();
        (reply.status().as_u16(), location, body)
    }

    /// Opens the authorization `url` and follows the redirects, signing in as `user` and
    /// approving (or, with `deny`, refusing) at the peer's interaction step, until a redirect
    /// leads to `redirect_uri`. Returns that final URL without opening it.
    pub fn authorize(&mut self, url: &str, user: &str, deny: bool, redirect_uri: &str) -> String {
        let mut url = url.to_owned();
        let mut trail = Vec::new();
        for _ in 0..10 {
            if url.starts_with(redirect_uri) {
                return url;
            }
            let (status, location, body) = self.get(&url);
            trail.push(format!("{status} {url}"));
            let Some(mut next) = location.filter(|_| (300..400).contains(&status)) else {
                panic!(
                    "browser: {status} without a redirect at {url}\ntrail: {trail:#?}\nbody: {}",
                    &body[..body.len().min(2000)]
                );
            };
            // The bare interaction page wants a form; the scripted route does the same in one
            // step: log in as `user` and consent (or deny).
            if let Some(uid) = interaction_uid(&next) {
                let origin = origin_of(&next);
                next = format!("{origin}/interaction/{uid}/auto?user={user}");
                if deny {
                    next.push_str("&decision=deny");
                }
            }
            url = next;
        }
        panic!("browser: more than 10 redirects: {trail:#?}");
    }
}

/// `uid` when `url` is the bare interaction page `…/interaction/<uid>`.
fn interaction_uid(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let rest = path.split_once("/interaction/")?.1;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
}

/// `scheme://host:port` of an absolute URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// A `Location` resolved against the URL it came from (absolute, host-relative, or relative).
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{}{location}", origin_of(base))
    } else {
        let path = base.split(['?', '#']).next().unwrap_or(base);
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(path.len())];
        format!("{dir}{location}")
    }
}

/// A plain HTTP client for 127.0.0.1: no proxy, no redirects, statuses returned.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// `GET url` → (status, body).
pub fn http_get(url: &str) -> (u16, String) {
    let mut reply = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = reply.body_mut().read_to_string().unwrap_or_default();
    (reply.status().as_u16(), body)
}

/// The peer's scripted device approval: `POST /device/auto` → (status, JSON reply).
pub fn device_decision(user_code: &str, decision: &str) -> (u16, serde_json::Value) {
    let url = format!("{}/device/auto", peer().issuer);
    let mut reply = agent()
        .post(&url)
        .send_form([
            ("user_code", user_code),
            ("user", "alice"),
            ("decision", decision),
        ])
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let body = reply.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("POST {url}: not JSON ({e}): {body}"));
    (reply.status().as_u16(), json)
}

/// Query parameters of a URL.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

// ---------------------------------------------------------------------------------------------
// The CLI, sandboxed
// ---------------------------------------------------------------------------------------------

/// `specauth --specs tests/interop/specs --store <tmp> --config <tmp>`, with no inherited
/// SPECAUTH_* or proxy variables, and `SPECAUTH_ISSUER` set to the peer.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("profiles.yaml"), "").unwrap();
        Sandbox { dir }
    }

    pub fn store(&self) -> specauth::session::TokenStore {
        specauth::session::TokenStore::new(self.dir.path().join("store"))
    }

    pub fn cached(&self, provider: &str) -> specauth::session::StoredToken {
        self.store()
            .load(provider, "default")
            .unwrap()
            .unwrap_or_else(|| panic!("no cached token for {provider}"))
    }

    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        self.command_with_specs(&specs_dir(), args, env)
    }

    /// [`Sandbox::command`] with another specs folder than tests/interop/specs.
    pub fn command_with_specs(&self, specs: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
        cmd.arg("--specs").arg(specs);
        cmd.arg("--store").arg(self.dir.path().join("store"));
        cmd.arg("--config")
            .arg(self.dir.path().join("profiles.yaml"));
        cmd.args(args);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("SPECAUTH_") || k.to_ascii_lowercase().ends_with("_proxy") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SPECAUTH_ISSUER", &peer().issuer);
        cmd.envs(env.iter().copied());
        cmd
    }

    /// Runs `specauth ARGS` to the end (at most [`CLI_TIMEOUT`]).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        run_bounded(&mut self.command(args, env), CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `specauth ARGS`; its stderr is read line by line as it comes.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        self.spawn_command(self.command(args, env))
    }

    /// Starts a command made by [`Sandbox::command_with_specs`].
    pub fn spawn_command(&self, mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the binary runs");
        let stdout = drain(child.stdout.take().unwrap());
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
            stdout: Some(stdout),
            stderr: Some(reader),
            started: Instant::now(),
        }
    }
}

/// A running `specauth`.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    started: Instant,
}

impl Running {
    /// The first (further) stderr line containing `needle`, trimmed; within 15 s.
    pub fn wait_for_line(&self, needle: &str) -> String {
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

    /// Waits for the exit (at most [`CLI_TIMEOUT`] after the start).
    pub fn finish(mut self) -> Out {
        let status = wait_until(&mut self.child, self.started + CLI_TIMEOUT);
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        match status {
            Ok(status) => Out {
                status,
                stdout,
                stderr,
            },
            Err(e) => panic!("specauth {e}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only when a test failed half-way: do not leave the process behind.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
