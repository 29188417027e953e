//! Token stores: one shared suite run against the file, SQLite and PostgreSQL stores, and the
//! proofs of issue 17 (single-flight refresh across processes, kill -9 mid-refresh, 10,000
//! connections with refresh-ahead, no plaintext at rest). PostgreSQL is a real server from the
//! Debian package (tests/store/pg.rs); the provider is a loopback server with rotating,
//! single-use refresh tokens.

#[path = "store/pg.rs"]
mod pg;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use specauth::session::{self, StoreLock, StoredToken, TokenStore};
use specauth::store::{
    Key, KeySource, Keys, Pass, PostgresStore, RefreshAhead, RefreshEvent, SqliteStore, Store,
};
use specauth::testing::ReplayServer;
use specauth::{Client, Inputs, Loader, Secret, Spec, Token};

fn now() -> u64 {
    session::now()
}

// ---------------------------------------------------------------------------------------------
// A provider with rotating, single-use refresh tokens
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct ProviderState {
    /// Refresh tokens the provider accepts, with the expiry of the access token they came with.
    valid: HashMap<String, u64>,
    /// Refresh tokens already used (a second use is `invalid_grant`).
    used: HashSet<String>,
    /// Access token → the refresh token issued with it.
    issued: HashMap<String, String>,
    refreshes: usize,
    invalid_grants: usize,
    /// Refreshes that arrived after the old access token had expired.
    late: usize,
    inflight: usize,
    max_inflight: usize,
    seq: u64,
    /// When each refresh request arrived (before any scripted reply or delay).
    arrivals: Vec<Instant>,
    /// Replies given to the next requests instead of handling them (503, 429…), in order.
    script: VecDeque<http::Response<Vec<u8>>>,
    /// While set, a refresh request is held (at most 10 s) before it is answered.
    hold: bool,
}

struct Provider {
    /// Kept so the server runs as long as the provider.
    _server: ReplayServer,
    state: Arc<Mutex<ProviderState>>,
    specs: tempfile::TempDir,
}

impl Provider {
    /// A provider issuing access tokens that live `lifetime` seconds, answering after `delay`.
    fn start(lifetime: u64, delay: Duration) -> Provider {
        let state: Arc<Mutex<ProviderState>> = Arc::default();
        let s = state.clone();
        let server = ReplayServer::with_handler(move |req| {
            let form: HashMap<String, String> =
                form_urlencoded::parse(&req.body).into_owned().collect();
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            {
                let mut st = s.lock().unwrap();
                st.arrivals.push(Instant::now());
                if let Some(reply) = st.script.pop_front() {
                    return reply;
                }
                st.inflight += 1;
                st.max_inflight = st.max_inflight.max(st.inflight);
            }
            std::thread::sleep(delay);
            let held_until = Instant::now() + Duration::from_secs(10);
            while s.lock().unwrap().hold && Instant::now() < held_until {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut st = s.lock().unwrap();
            st.inflight -= 1;
            let fresh = st.valid.get(&refresh).copied();
            match fresh {
                Some(old_expiry) if !st.used.contains(&refresh) => {
                    st.used.insert(refresh.clone());
                    st.valid.remove(&refresh);
                    st.refreshes += 1;
                    if now() >= old_expiry && old_expiry > 0 {
                        st.late += 1;
                    }
                    st.seq += 1;
                    let (access, new_refresh) = (
                        format!("at-{}-{}", st.seq, rand()),
                        format!("rt-{}-{}", st.seq, rand()),
                    );
                    st.valid.insert(new_refresh.clone(), now() + lifetime);
                    st.issued.insert(access.clone(), new_refresh.clone());
                    json(
                        200,
                        &serde_json::json!({"access_token": access, "token_type": "bearer",
                            "expires_in": lifetime, "refresh_token": new_refresh})
                        .to_string(),
                    )
                }
                _ => {
                    st.invalid_grants += 1;
                    json(400, r#"{"error":"invalid_grant"}"#)
                }
            }
        })
        .unwrap();
        let specs = tempfile::tempdir().unwrap();
        std::fs::write(
            specs.path().join("peer.yaml"),
            format!(
                "id: peer\nname: Peer\nextends: oauth2\nendpoints:\n  token: {}/token\n",
                server.origin()
            ),
        )
        .unwrap();
        Provider {
            _server: server,
            state,
            specs,
        }
    }

    fn spec(&self) -> Spec {
        Loader::new()
            .with_dir(self.specs.path())
            .load("peer")
            .unwrap()
    }

    /// A pair the provider accepts, as a cache entry that expires at `expires_at`.
    fn entry(&self, profile: &str, expires_at: u64) -> StoredToken {
        let mut st = self.state.lock().unwrap();
        st.seq += 1;
        let (access, refresh) = (format!("seed-at-{}", st.seq), format!("seed-rt-{}", st.seq));
        st.valid.insert(refresh.clone(), expires_at);
        st.issued.insert(access.clone(), refresh.clone());
        StoredToken {
            provider: "peer".into(),
            profile: profile.into(),
            token: Token {
                expires_at: Some(expires_at),
                refresh_token: Some(Secret::new(refresh)),
                ..Token::bearer(Secret::new(access))
            },
            inputs: [("client_id".to_owned(), "app".to_owned())].into(),
            obtained_at: now(),
            dpop_key: None,
            resources: Vec::new(),
            issuer: None,
            endpoints: Default::default(),
            refresh_margin: 0,
            client_auth: Vec::new(),
        }
    }
}

fn secrets() -> Inputs {
    Inputs::new().with("client_secret", "s3cret")
}

fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn rand() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % 1_000_000_000
}

fn entry(provider: &str, profile: &str, access: &str, expires_at: Option<u64>) -> StoredToken {
    StoredToken {
        provider: provider.into(),
        profile: profile.into(),
        token: Token {
            expires_at,
            refresh_token: Some(Secret::new(format!("{access}-refresh"))),
            id_token: Some(Secret::new(format!("{access}-id"))),
            scope: Some(vec!["read".into()]),
            ..Token::bearer(Secret::new(access))
        },
        inputs: [("client_id".to_owned(), "app".to_owned())].into(),
        obtained_at: 7,
        dpop_key: None,
        resources: Vec::new(),
        issuer: None,
        endpoints: Default::default(),
        refresh_margin: 0,
        client_auth: Vec::new(),
    }
}

fn keys(id: &str, seed: u8) -> Keys {
    Keys::new(id, Key::new([seed; 32])).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The stores under test
// ---------------------------------------------------------------------------------------------

/// Describes a store so a child process can open the same one: `file:DIR`, `sqlite:PATH` or
/// `postgres:URL`, with an optional lease in milliseconds and encryption key seed.
#[derive(Clone, Debug)]
struct StoreSpec {
    kind: String,
    place: String,
    lease_ms: u64,
    key_seed: Option<u8>,
}

impl StoreSpec {
    fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind,
            self.lease_ms,
            self.key_seed.map(|k| k.to_string()).unwrap_or_default(),
            self.place
        )
    }

    fn decode(s: &str) -> StoreSpec {
        let mut it = s.splitn(4, '|');
        let kind = it.next().unwrap().to_owned();
        let lease_ms = it.next().unwrap().parse().unwrap();
        let key_seed = it.next().unwrap().parse().ok();
        let place = it.next().unwrap().to_owned();
        StoreSpec {
            kind,
            place,
            lease_ms,
            key_seed,
        }
    }

    fn open(&self) -> Box<dyn Store> {
        let lease = Duration::from_millis(self.lease_ms);
        let keys = self.key_seed.map(|k| keys("k1", k));
        match self.kind.as_str() {
            "file" => {
                let s = TokenStore::new(&self.place).with_lock_timeout(Duration::from_secs(30));
                Box::new(match keys {
                    Some(k) => s.with_encryption(k),
                    None => s,
                })
            }
            "sqlite" => {
                let s = SqliteStore::open(&self.place)
                    .unwrap()
                    .with_lease(lease)
                    .with_lock_timeout(Duration::from_secs(30));
                Box::new(match keys {
                    Some(k) => s.with_encryption(k),
                    None => s,
                })
            }
            "postgres" => {
                let s = PostgresStore::connect(&self.place)
                    .unwrap()
                    .with_lease(lease)
                    .with_lock_timeout(Duration::from_secs(30));
                Box::new(match keys {
                    Some(k) => s.with_encryption(k),
                    None => s,
                })
            }
            other => panic!("unknown store kind {other}"),
        }
    }
}

fn sqlite_spec(dir: &Path, lease_ms: u64) -> StoreSpec {
    StoreSpec {
        kind: "sqlite".into(),
        place: dir.join("tokens.db").display().to_string(),
        lease_ms,
        key_seed: None,
    }
}

fn postgres_spec(lease_ms: u64) -> StoreSpec {
    StoreSpec {
        kind: "postgres".into(),
        place: pg::server().database(),
        lease_ms,
        key_seed: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The shared suite
// ---------------------------------------------------------------------------------------------

/// What every store must do. `open(keys)` opens the same storage with the given keys.
fn shared_suite<S: Store + 'static>(name: &str, open: impl Fn(Option<Keys>) -> S, has_lease: bool) {
    let store = open(None);
    // Save, load, list, remove.
    assert_eq!(store.load("acme", "default").unwrap(), None, "{name}");
    let a = entry("acme", "default", "a1", Some(now() + 3600));
    let mut b = entry("zeta", "work", "b1", Some(now() + 10));
    b.token
        .extra
        .insert("bot_token".into(), serde_json::json!("xoxb"));
    b.token.secret_extras.push("bot_token".into());
    store.save(&a).unwrap();
    store.save(&b).unwrap();
    assert_eq!(
        store.load("acme", "default").unwrap().as_ref(),
        Some(&a),
        "{name}"
    );
    assert_eq!(
        store.load("zeta", "work").unwrap().as_ref(),
        Some(&b),
        "{name}"
    );
    assert_eq!(store.list().unwrap(), vec![a.clone(), b.clone()], "{name}");
    let a2 = entry("acme", "default", "a2", Some(now() + 7200));
    store.save(&a2).unwrap();
    assert_eq!(
        store.load("acme", "default").unwrap().as_ref(),
        Some(&a2),
        "{name}"
    );
    assert_eq!(store.list().unwrap().len(), 2, "{name}");

    // Owners are separate.
    let alice = store.for_owner("alice").unwrap();
    assert_eq!(alice.owner(), "alice");
    assert_eq!(alice.load("acme", "default").unwrap(), None, "{name}");
    let c = entry("acme", "default", "c1", Some(now() + 5));
    alice.save(&c).unwrap();
    assert_eq!(alice.list().unwrap(), vec![c.clone()], "{name}");
    assert_eq!(
        store.load("acme", "default").unwrap().as_ref(),
        Some(&a2),
        "{name}"
    );
    assert!(store.for_owner("../evil").is_err(), "{name}");
    assert!(store.load("acme", "a/b").is_err(), "{name}");

    // Expiring: every owner, refreshable only, soonest first, bounded.
    let mut no_refresh = entry("acme", "norefresh", "n1", Some(now()));
    no_refresh.token.refresh_token = None;
    store.save(&no_refresh).unwrap();
    let due = store.expiring(now() + 60, 10).unwrap();
    let keys_of = |v: &[specauth::store::Connection]| {
        v.iter()
            .map(|c| format!("{}/{}/{}", c.owner, c.provider, c.profile))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys_of(&due),
        ["alice/acme/default", "/zeta/work"],
        "{name}"
    );
    assert_eq!(
        keys_of(&store.expiring(now() + 60, 1).unwrap()),
        ["alice/acme/default"]
    );

    // Remove.
    assert!(store.remove("zeta", "work").unwrap(), "{name}");
    assert!(!store.remove("zeta", "work").unwrap(), "{name}");
    assert_eq!(store.load("zeta", "work").unwrap(), None, "{name}");

    // The lock excludes, across handles, and is released on drop.
    let held = store.lock("acme", "default").unwrap();
    let other = open(None);
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let started = Instant::now();
        let _l = other.lock("acme", "default").unwrap();
        tx.send(started.elapsed()).unwrap();
    });
    // (Within the lease: the database stores' lease is 300 ms here.)
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        rx.try_recv().is_err(),
        "{name}: a second holder got the lock"
    );
    drop(held);
    let waited = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(waited >= Duration::from_millis(100), "{name}: {waited:?}");
    t.join().unwrap();
    // Another connection's lock is independent.
    let _x = store.lock("acme", "other").unwrap();
    let _y = alice.lock("acme", "default").unwrap();
    drop((_x, _y));

    // A holder that vanished without releasing blocks others for at most the lease.
    if has_lease {
        std::mem::forget(store.lock("acme", "crashy").unwrap());
        let started = Instant::now();
        let _l = open(None).lock("acme", "crashy").unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
            "{name}: waited {waited:?} for an abandoned lease"
        );
    }

    // Encryption: sealed at rest, opened with the key, a wrong key is a clear error, old keys
    // still open after a rotation, and plain entries written before still load.
    let sealed = open(Some(keys("k1", 1))).for_owner("enc").unwrap();
    let e = entry("acme", "default", "sealed-access", Some(now() + 100));
    sealed.save(&e).unwrap();
    assert_eq!(
        sealed.load("acme", "default").unwrap().as_ref(),
        Some(&e),
        "{name}"
    );
    let wrong = open(Some(keys("k1", 2))).for_owner("enc").unwrap();
    let err = wrong.load("acme", "default").unwrap_err().to_string();
    assert!(
        err.contains("key `k1`") && err.contains("wrong"),
        "{name}: {err}"
    );
    assert!(!err.contains("sealed-access"), "{name}: {err}");
    let no_keys = open(None).for_owner("enc").unwrap();
    let err = no_keys.load("acme", "default").unwrap_err().to_string();
    assert!(
        err.contains("encrypted") && err.contains("no keys"),
        "{name}: {err}"
    );
    let rotated = open(Some(
        Keys::new("k2", Key::new([3; 32]))
            .unwrap()
            .with_old("k1", Key::new([1; 32]))
            .unwrap(),
    ))
    .for_owner("enc")
    .unwrap();
    assert_eq!(
        rotated.load("acme", "default").unwrap().as_ref(),
        Some(&e),
        "{name}"
    );
    let err = open(Some(keys("k2", 3)))
        .for_owner("enc")
        .unwrap()
        .load("acme", "default")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not among the store's keys"), "{name}: {err}");
    rotated.save(&e).unwrap();
    assert_eq!(
        open(Some(keys("k2", 3)))
            .for_owner("enc")
            .unwrap()
            .load("acme", "default")
            .unwrap(),
        Some(e.clone()),
        "{name}: a re-save seals with the current key"
    );
    let sealed_default = open(Some(keys("k1", 1)));
    assert_eq!(
        sealed_default.load("acme", "default").unwrap().as_ref(),
        Some(&a2),
        "{name}: a plain entry written before encryption still loads"
    );

    // fresh_token over the store: one refresh, then the cache.
    let provider = Provider::start(3600, Duration::ZERO);
    let spec = provider.spec();
    let client = Client::new();
    let fresh = store.for_owner("fresh").unwrap();
    fresh.save(&provider.entry("default", now() - 1)).unwrap();
    let t1 = session::fresh_token(&client, &spec, &fresh, "default", &secrets(), 60).unwrap();
    let t2 = session::fresh_token(&client, &spec, &fresh, "default", &secrets(), 60).unwrap();
    assert_eq!(t1, t2, "{name}");
    assert_eq!(provider.state.lock().unwrap().refreshes, 1, "{name}");
    assert_eq!(fresh.load("peer", "default").unwrap(), Some(t1), "{name}");
}

#[test]
fn the_file_store_passes_the_shared_suite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    shared_suite(
        "file",
        |keys| {
            let s = TokenStore::new(&root).with_lock_timeout(Duration::from_secs(20));
            match keys {
                Some(k) => s.with_encryption(k),
                None => s,
            }
        },
        false,
    );
}

#[test]
fn the_sqlite_store_passes_the_shared_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    shared_suite(
        "sqlite",
        |keys| {
            let s = SqliteStore::open(&path)
                .unwrap()
                .with_lease(Duration::from_millis(300));
            match keys {
                Some(k) => s.with_encryption(k),
                None => s,
            }
        },
        true,
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn the_postgres_store_passes_the_shared_suite() {
    let url = pg::server().database();
    shared_suite(
        "postgres",
        |keys| {
            let s = PostgresStore::connect(&url)
                .unwrap()
                .with_lease(Duration::from_millis(300));
            match keys {
                Some(k) => s.with_encryption(k),
                None => s,
            }
        },
        true,
    );
    // Connecting again finds the schema migrated and keeps the data.
    let again = PostgresStore::connect(&url).unwrap();
    assert_eq!(again.list().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Proof 1: 4 processes × 16 threads, one expired connection, rotating refresh tokens
// ---------------------------------------------------------------------------------------------

const CHILD: &str = "SPECAUTH_STORE_TEST_CHILD";

/// Not a test of its own: the entry point of the child processes the proofs start (this test
/// binary re-invoked with `SPECAUTH_STORE_TEST_CHILD` set). Without it, it does nothing.
#[test]
fn child_process_entry() {
    let Ok(job) = std::env::var(CHILD) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&job).unwrap();
    if let Some(var) = v["keys_from_env"].as_str() {
        // Keys::from_env in a process of its own: the test process never changes its own
        // environment while other tests run.
        match Keys::from_env(var) {
            Ok(keys) => {
                let id = keys.current_id().to_owned();
                let store = SqliteStore::open(v["db"].as_str().unwrap())
                    .unwrap()
                    .with_encryption(keys);
                store.save(&canary_entry("from-env")).unwrap();
                println!("KEYS ok {id}");
            }
            Err(e) => println!("KEYS err {e}"),
        }
        return;
    }
    let mut store = StoreSpec::decode(v["store"].as_str().unwrap()).open();
    if v["say_locked"].as_bool() == Some(true) {
        store = Box::new(SaysWhenLocked(store));
    }
    let spec = Loader::new()
        .with_dir(v["specs"].as_str().unwrap())
        .load("peer")
        .unwrap();
    let threads = v["threads"].as_u64().unwrap();
    let start_at = v["start_at_ms"].as_u64().unwrap();
    // Every process stops at the same moment too, however long it took to start.
    let until_ms = start_at + v["run_ms"].as_u64().unwrap();
    let client = Client::new();
    let out = Mutex::new(Vec::new());
    // Every thread of every process starts at the same moment.
    let wait = start_at.saturating_sub(now_ms());
    std::thread::sleep(Duration::from_millis(wait));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let line = match session::fresh_token(
                        &client,
                        &spec,
                        &*store,
                        "default",
                        &secrets(),
                        0,
                    ) {
                        Ok(e) => format!(
                            "ok {} {} {}",
                            e.token.access_token.secret(),
                            e.token.expires_at.unwrap_or(0),
                            now()
                        ),
                        Err(e) => format!("err {e}"),
                    };
                    out.lock().unwrap().push(line);
                    if now_ms() >= until_ms {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    for line in out.into_inner().unwrap() {
        println!("CHILD {line}");
    }
}

/// A store that writes `LOCKED` on stderr as soon as it holds a refresh lock: the kill -9 proof
/// kills the child at a random moment after that.
struct SaysWhenLocked(Box<dyn Store>);

impl Store for SaysWhenLocked {
    fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, specauth::Error> {
        self.0.load(provider, profile)
    }
    fn save(&self, entry: &StoredToken) -> Result<(), specauth::Error> {
        self.0.save(entry)
    }
    fn remove(&self, provider: &str, profile: &str) -> Result<bool, specauth::Error> {
        self.0.remove(provider, profile)
    }
    fn list(&self) -> Result<Vec<StoredToken>, specauth::Error> {
        self.0.list()
    }
    fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, specauth::Error> {
        let lock = self.0.lock(provider, profile)?;
        use std::io::Write as _;
        let mut err = std::io::stderr().lock();
        writeln!(err, "LOCKED").unwrap();
        err.flush().unwrap();
        Ok(lock)
    }
    fn owner(&self) -> &str {
        self.0.owner()
    }
    fn for_owner(&self, _owner: &str) -> Result<Self, specauth::Error> {
        Err(specauth::Error::Usage("not needed in the child".into()))
    }
    fn expiring(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<specauth::store::Connection>, specauth::Error> {
        self.0.expiring(before, limit)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn child(
    store: &StoreSpec,
    provider: &Provider,
    threads: u64,
    run_ms: u64,
    start_at_ms: u64,
) -> Command {
    child_with(serde_json::json!({
        "store": store.encode(),
        "specs": provider.specs.path(),
        "threads": threads,
        "run_ms": run_ms,
        "start_at_ms": start_at_ms,
    }))
}

fn child_with(job: serde_json::Value) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD, job.to_string())
    .stdin(Stdio::null());
    cmd
}

/// 4 processes × 16 threads keep asking for one connection whose access token lives 1 s, for
/// 3 s: every expiry is refreshed exactly once (each refresh came after the token it replaced
/// had expired, so none was early or a second one for the same expiry, and every second the
/// callers crossed was refreshed), nobody sees `invalid_grant`, every caller gets a live token
/// the provider issued.
fn single_flight_across_processes(name: &str, store: StoreSpec) {
    let provider = Provider::start(1, Duration::from_millis(30));
    store
        .open()
        .save(&provider.entry("default", now() - 5))
        .unwrap();
    let start_at = now_ms() + 1500;
    let children: Vec<_> = (0..4)
        .map(|_| {
            child(&store, &provider, 16, 3000, start_at)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut calls = 0;
    let mut tokens = HashSet::new();
    // The first and last second a caller got its token in.
    let (mut first_at, mut last_at) = (u64::MAX, 0);
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // libtest prints `test child_process_entry ... ` without a newline before the
            // child's own output, so the first line of each child starts after that prefix.
            let Some(rest) = line.find("CHILD ").map(|at| &line[at + "CHILD ".len()..]) else {
                continue;
            };
            calls += 1;
            let parts: Vec<_> = rest.split(' ').collect();
            assert_eq!(parts[0], "ok", "{name}: a caller failed: {rest}");
            let (access, expires_at, at): (&str, u64, u64) = (
                parts[1],
                parts[2].parse().unwrap(),
                parts[3].parse().unwrap(),
            );
            assert!(
                expires_at > at - 1,
                "{name}: an expired token was handed out"
            );
            tokens.insert(access.to_owned());
            first_at = first_at.min(at);
            last_at = last_at.max(at);
        }
    }
    let st = provider.state.lock().unwrap();
    for t in &tokens {
        assert!(st.issued.contains_key(t), "{name}: {t} was never issued");
    }
    eprintln!(
        "{name}: 4 processes x 16 threads, {calls} calls over 3 s ({} clock seconds): {} \
         refreshes, {} after the expiry of the token they replaced, {} distinct tokens handed \
         out, {} invalid_grant",
        last_at + 1 - first_at,
        st.refreshes,
        st.late,
        tokens.len(),
        st.invalid_grants
    );
    assert_eq!(st.invalid_grants, 0, "{name}");
    // Every thread of every process got its token (at least once).
    assert!(calls >= 64, "{name}: only {calls} calls");
    // One refresh per expiry. With min_valid 0 a refresh is only due once the token has
    // expired: every refresh arriving after the expiry of the token it replaced means none was
    // early, and so none was a second refresh of one expiry.
    assert_eq!(
        st.late, st.refreshes,
        "{name}: a refresh came before the token it replaced had expired"
    );
    // Each second boundary the callers crossed expired the token once and was refreshed
    // once: 3 s of 1 s tokens is the first refresh and 3 more, and one more when the last
    // calls straddle a boundary.
    assert!(
        st.refreshes as u64 >= last_at - first_at,
        "{name}: {} refreshes while callers spanned {} s",
        st.refreshes,
        last_at - first_at
    );
    assert!(
        (1..=5).contains(&st.refreshes),
        "{name}: {} refreshes",
        st.refreshes
    );
    assert_eq!(st.used.len(), st.refreshes, "{name}");
    // Each refresh's token reached callers: no refresh was wasted on an expiry already handled.
    assert_eq!(tokens.len(), st.refreshes, "{name}");
}

#[test]
fn sqlite_refreshes_once_per_expiry_across_4_processes_of_16_threads() {
    let dir = tempfile::tempdir().unwrap();
    single_flight_across_processes("sqlite", sqlite_spec(dir.path(), 10_000));
}

#[test]
fn postgres_refreshes_once_per_expiry_across_4_processes_of_16_threads() {
    single_flight_across_processes("postgres", postgres_spec(10_000));
}

// ---------------------------------------------------------------------------------------------
// Proof 2: kill -9 of the refreshing process at random moments
// ---------------------------------------------------------------------------------------------

/// When the child is killed, relative to the refresh it is doing under the lock.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// While the provider holds the refresh reply: the child must die with the old pair, and
    /// the provider rotates anyway.
    Held,
    /// At a random moment 0–60 ms after the child took the lock.
    Random(Duration),
    /// Right after the store shows the new pair.
    Saved,
}

/// The milliseconds left on the lease row of `peer`/`default` (negative once it ran out), or
/// `None` when nobody holds the lock: a row left by a dead child is a lock it died holding.
fn lease_left(store: &StoreSpec) -> Option<i64> {
    lease_left_read(store).0
}

/// [`lease_left`], and when it was read: taken as the row arrives, before the connection is
/// closed (closing a PostgreSQL client can take tens of milliseconds on a busy machine, and
/// the lease keeps running meanwhile).
fn lease_left_read(store: &StoreSpec) -> (Option<i64>, Instant) {
    const WHERE: &str = "owner = '' AND provider = 'peer' AND profile = 'default'";
    match store.kind.as_str() {
        "sqlite" => {
            let db = rusqlite::Connection::open(&store.place).unwrap();
            let left = db
                .query_row(
                    &format!("SELECT until_ms FROM specauth_locks WHERE {WHERE}"),
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .ok()
                .map(|until| until - now_ms() as i64);
            (left, Instant::now())
        }
        "postgres" => {
            // Judged by the database's clock, as the store judges it.
            let mut db = postgres::Client::connect(&store.place, postgres::NoTls).unwrap();
            let left = db
                .query_opt(
                    &format!(
                        "SELECT until_ms - (extract(epoch from clock_timestamp()) * 1000)::bigint \
                         FROM specauth_locks WHERE {WHERE}"
                    ),
                    &[],
                )
                .unwrap()
                .map(|r| r.get::<_, i64>(0));
            (left, Instant::now())
        }
        other => panic!("no lease rows in a {other} store"),
    }
}

/// The refreshing process is killed 100 times, at a random moment after it took the refresh
/// lock (the child says `LOCKED` on stderr; one round in ten kills it while the provider holds
/// the reply, one in ten right after it saved): the store always holds the old pair or the
/// pair the provider issued, both happen, and when the child died holding the lock (its lease
/// row is still there) the next caller waits for the lease to run out, then gets the lock.
fn killed_mid_refresh(name: &str, store: StoreSpec) {
    let provider = Provider::start(3600, Duration::from_millis(10));
    let local = store.open();
    let lease = Duration::from_millis(store.lease_ms);
    let started = Instant::now();
    let (mut kept_old, mut got_new, mut rotated_unsaved) = (0, 0, 0);
    let (mut lease_rounds, mut max_wait) = (0, Duration::ZERO);
    for i in 0..100u64 {
        let kill_at = match i % 10 {
            0 => KillAt::Held,
            5 => KillAt::Saved,
            _ => KillAt::Random(Duration::from_millis(rand() % 60)),
        };
        let seeded = provider.entry("default", now() - 5);
        let seed_refresh = seeded.token.refresh_token.clone().unwrap();
        local.save(&seeded).unwrap();
        let arrived_before = {
            let mut st = provider.state.lock().unwrap();
            st.hold = matches!(kill_at, KillAt::Held);
            st.arrivals.len()
        };
        let mut c = child_with(serde_json::json!({
            "store": store.encode(),
            "specs": provider.specs.path(),
            "threads": 1,
            "run_ms": 0,
            "start_at_ms": 0,
            "say_locked": true,
        }))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = c.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut said = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line == "LOCKED" {
                    let _ = tx.send(());
                }
                said += &line;
                said.push('\n');
            }
            said
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = c.kill();
            let _ = c.wait();
            panic!(
                "{name} round {i}: the child never took the lock: {}",
                reader.join().unwrap()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        match kill_at {
            KillAt::Held => {
                while provider.state.lock().unwrap().arrivals.len() == arrived_before {
                    assert!(Instant::now() < deadline, "{name} round {i}: no refresh");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            KillAt::Random(after) => std::thread::sleep(after),
            KillAt::Saved => {
                while local.load("peer", "default").unwrap().as_ref() == Some(&seeded) {
                    assert!(Instant::now() < deadline, "{name} round {i}: never saved");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let _ = c.kill();
        c.wait().unwrap();
        provider.state.lock().unwrap().hold = false;
        reader.join().unwrap();

        let e = local
            .load("peer", "default")
            .unwrap_or_else(|e| panic!("{name} round {i}: unreadable: {e}"))
            .unwrap_or_else(|| panic!("{name} round {i}: the entry is gone"));
        let access = e.token.access_token.secret().to_owned();
        let refresh = e
            .token
            .refresh_token
            .as_ref()
            .map(|s| s.secret().to_owned());
        let kept = e == seeded;
        if kept {
            kept_old += 1;
        } else {
            let issued = provider.state.lock().unwrap().issued.get(&access).cloned();
            assert_eq!(
                issued, refresh,
                "{name} round {i}: a pair the provider never issued"
            );
            got_new += 1;
        }
        match kill_at {
            KillAt::Held => assert!(kept, "{name} round {i}: killed before the reply"),
            KillAt::Saved => assert!(!kept, "{name} round {i}: a saved pair was lost"),
            KillAt::Random(_) => {}
        }

        // The lock: a lease row left behind means the child died holding it; the next caller
        // then waits until the lease runs out, and gets the lock.
        let (left, read_at) = lease_left_read(&store);
        if matches!(kill_at, KillAt::Held) {
            assert!(
                left.is_some(),
                "{name} round {i}: no lease row from the child"
            );
        }
        let t = Instant::now();
        let guard = local.lock("peer", "default").unwrap();
        let got = Instant::now();
        drop(guard);
        let waited = got - t;
        max_wait = max_wait.max(waited);
        assert!(
            waited < lease + Duration::from_secs(2),
            "{name} round {i}: {waited:?}"
        );
        if let Some(left) = left {
            lease_rounds += 1;
            // Lower bound only, counted from when the lease was read (minus the time its row
            // took to arrive): the lock is not had before the lease runs out.
            let since_read = got - read_at;
            assert!(
                since_read + Duration::from_millis(20) >= Duration::from_millis(left.max(0) as u64),
                "{name} round {i}: got the lock {since_read:?} after reading {left} ms of lease left"
            );
        }
        assert_eq!(
            lease_left(&store),
            None,
            "{name} round {i}: the lock was kept"
        );

        // Did the provider rotate a pair the child never saved (the old refresh token is spent)?
        let settled = Instant::now() + Duration::from_secs(10);
        while provider.state.lock().unwrap().inflight > 0 && Instant::now() < settled {
            std::thread::sleep(Duration::from_millis(1));
        }
        if kept
            && provider
                .state
                .lock()
                .unwrap()
                .used
                .contains(seed_refresh.secret())
        {
            rotated_unsaved += 1;
        }
    }
    eprintln!(
        "{name}: killed 100 times after the child took the lock, in {:?}: {kept_old} kept the \
         old pair ({rotated_unsaved} of them after the provider rotated it: the child died \
         before saving), {got_new} had the new one; {lease_rounds} died holding the lock, and \
         the next caller waited at most {max_wait:?} (lease {lease:?})",
        started.elapsed()
    );
    assert_eq!(kept_old + got_new, 100);
    assert!(kept_old > 0 && got_new > 0, "{name}: one outcome only");
    assert!(lease_rounds > 0, "{name}: no child died holding the lock");
}

#[test]
fn sqlite_survives_kill_9_mid_refresh_100_times() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_refresh("sqlite", sqlite_spec(dir.path(), 250));
}

#[test]
fn postgres_survives_kill_9_mid_refresh_100_times() {
    killed_mid_refresh("postgres", postgres_spec(250));
}

// ---------------------------------------------------------------------------------------------
// Proof 3: 10,000 connections, staggered expiries, refresh-ahead
// ---------------------------------------------------------------------------------------------

fn ten_thousand<S: Store>(name: &str, store: &S) {
    const N: usize = 10_000;
    let provider = Provider::start(3600, Duration::from_millis(3));
    let spec = provider.spec();
    let base = now();
    // Expiries staggered over 12 s, starting 60 s from now; refresh-ahead margin 60 s: every
    // connection is due within 12 s and must be refreshed before its own expiry.
    for o in 0..100 {
        let owner = store.for_owner(&format!("u{o}")).unwrap();
        for p in 0..N / 100 {
            let i = o * (N / 100) + p;
            let e = provider.entry(&format!("c{p}"), base + 60 + (i as u64 % 12));
            owner.save(&e).unwrap();
        }
    }
    let client = Client::new();
    let events = Mutex::new((0usize, 0usize));
    let ahead = RefreshAhead::new(&client, store)
        .provider(&spec, secrets())
        .margin(60)
        .concurrency(4)
        .on_event(|e| {
            let mut ev = events.lock().unwrap();
            match e {
                RefreshEvent::Refreshed { .. } => ev.0 += 1,
                _ => ev.1 += 1,
            }
        });
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| ahead.run(Duration::from_millis(200), &stop));
        while provider.state.lock().unwrap().refreshes < N
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let st = provider.state.lock().unwrap();
    eprintln!(
        "{name}: {N} connections refreshed ahead in {:?}: {} refreshes, {} late, max {} in \
         flight (bound 4), {} invalid_grant, events {:?}",
        started.elapsed(),
        st.refreshes,
        st.late,
        st.max_inflight,
        st.invalid_grants,
        events.lock().unwrap()
    );
    assert_eq!(st.refreshes, N, "{name}: every connection refreshed once");
    assert_eq!(st.used.len(), N, "{name}: no refresh token used twice");
    assert_eq!(st.invalid_grants, 0, "{name}");
    assert_eq!(
        st.late, 0,
        "{name}: every token refreshed before it expired"
    );
    assert!(
        st.max_inflight <= 4,
        "{name}: {} in flight",
        st.max_inflight
    );
    assert_eq!(*events.lock().unwrap(), (N, 0), "{name}");
    drop(st);
    // Nothing is due any more.
    assert!(store.expiring(now() + 60, 10).unwrap().is_empty());
}

#[test]
fn sqlite_refresh_ahead_keeps_10000_connections_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    ten_thousand("sqlite", &SqliteStore::open(&path).unwrap());
}

// ---------------------------------------------------------------------------------------------
// Refresh-ahead: a refused refresh token, retries, pacing
// ---------------------------------------------------------------------------------------------

/// The events a refresh-ahead emitted, as `(what, profile, needs_sign_in)`.
type Heard = Mutex<Vec<(&'static str, String, bool)>>;

fn record(heard: &Heard) -> impl Fn(&RefreshEvent<'_>) + Send + Sync + '_ {
    move |e| {
        let event = match e {
            RefreshEvent::Refreshed { connection, .. } => {
                ("refreshed", connection.profile.clone(), false)
            }
            RefreshEvent::Failed {
                connection,
                needs_sign_in,
                ..
            } => ("failed", connection.profile.clone(), *needs_sign_in),
            _ => ("other", String::new(), false),
        };
        heard.lock().unwrap().push(event);
    }
}

/// A refresh token the provider refuses (400 `invalid_grant`) is reported once as
/// `needs_sign_in`, counted, not retried, and left alone by later passes until a new sign-in
/// replaces the entry.
#[test]
fn refresh_ahead_reports_a_refused_refresh_token_once_as_needs_sign_in() {
    let provider = Provider::start(3600, Duration::ZERO);
    let spec = provider.spec();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db")).unwrap();
    // A refresh token the provider never issued: it answers 400 invalid_grant.
    store
        .save(&entry("peer", "dead", "revoked", Some(now() - 5)))
        .unwrap();
    let client = Client::new();
    let heard = Heard::default();
    let ahead = RefreshAhead::new(&client, &store)
        .provider(&spec, secrets())
        .retries(3, Duration::from_millis(10))
        .on_event(record(&heard));

    let pass = ahead.run_once().unwrap();
    assert_eq!(
        pass,
        Pass {
            due: 1,
            failed: 1,
            needs_sign_in: 1,
            ..Pass::default()
        }
    );
    assert_eq!(*heard.lock().unwrap(), [("failed", "dead".into(), true)]);
    // Final: a 400 is not retried.
    assert_eq!(provider.state.lock().unwrap().invalid_grants, 1);

    // The next passes still list it as due, but leave it alone: no request, no event.
    for _ in 0..2 {
        let pass = ahead.run_once().unwrap();
        assert_eq!(
            pass,
            Pass {
                due: 1,
                skipped: 1,
                ..Pass::default()
            }
        );
    }
    assert_eq!(heard.lock().unwrap().len(), 1);
    assert_eq!(provider.state.lock().unwrap().arrivals.len(), 1);

    // A new sign-in (a new entry, likely within the same second) makes it live again.
    store.save(&provider.entry("dead", now() - 5)).unwrap();
    let pass = ahead.run_once().unwrap();
    assert_eq!(
        pass,
        Pass {
            due: 1,
            refreshed: 1,
            ..Pass::default()
        }
    );
    assert_eq!(
        heard.lock().unwrap()[1],
        ("refreshed", "dead".into(), false)
    );
    assert_eq!(provider.state.lock().unwrap().refreshes, 1);
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Vec<u8>> {
    let mut r = http::Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body.as_bytes().to_vec()).unwrap()
}

/// A provider answering 503, then 429 with `Retry-After: 1`, then 200: the refresh is retried
/// and succeeds, and the retry after the 429 waits the second the provider asked for although
/// the backoff is 10 ms. A provider that keeps failing is tried `retries` + 1 times, then
/// reported (not as needing a sign-in).
#[test]
fn refresh_ahead_retries_503_and_429_and_honours_retry_after() {
    let provider = Provider::start(3600, Duration::ZERO);
    provider.state.lock().unwrap().script.extend([
        reply(
            503,
            &[("content-type", "text/plain")],
            "Service Unavailable",
        ),
        reply(
            429,
            &[("content-type", "application/json"), ("retry-after", "1")],
            r#"{"error":"rate_limited"}"#,
        ),
    ]);
    let spec = provider.spec();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db")).unwrap();
    store.save(&provider.entry("busy", now() - 5)).unwrap();
    let client = Client::new();
    let heard = Heard::default();
    let ahead = RefreshAhead::new(&client, &store)
        .provider(&spec, secrets())
        .retries(2, Duration::from_millis(10))
        .on_event(record(&heard));

    let pass = ahead.run_once().unwrap();
    assert_eq!(
        pass,
        Pass {
            due: 1,
            refreshed: 1,
            ..Pass::default()
        }
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [("refreshed", "busy".into(), false)]
    );
    let st = provider.state.lock().unwrap();
    assert_eq!(st.arrivals.len(), 3, "503, 429, then the refresh");
    assert_eq!((st.refreshes, st.invalid_grants), (1, 0));
    let after_429 = st.arrivals[2] - st.arrivals[1];
    eprintln!(
        "retries: 503 then 429 (Retry-After: 1) then 200; the retry after the 429 came {after_429:?} later (backoff 10 ms)"
    );
    assert!(after_429 >= Duration::from_secs(1), "{after_429:?}");
    drop(st);
    assert_eq!(
        store
            .load("peer", "busy")
            .unwrap()
            .unwrap()
            .token
            .access_token
            .secret(),
        provider
            .state
            .lock()
            .unwrap()
            .issued
            .keys()
            .find(|a| a.starts_with("at-"))
            .unwrap()
    );

    // Down for longer than the retries: 3 tries, then a failure that a later pass retries.
    provider
        .state
        .lock()
        .unwrap()
        .script
        .extend((0..3).map(|_| {
            reply(
                503,
                &[("content-type", "text/plain")],
                "Service Unavailable",
            )
        }));
    store.save(&provider.entry("down", now() - 5)).unwrap();
    let pass = ahead.run_once().unwrap();
    assert_eq!(
        pass,
        Pass {
            due: 1,
            failed: 1,
            ..Pass::default()
        }
    );
    assert_eq!(heard.lock().unwrap()[1], ("failed", "down".into(), false));
    assert_eq!(provider.state.lock().unwrap().arrivals.len(), 6);
    let pass = ahead.run_once().unwrap();
    assert_eq!(pass.refreshed, 1, "{pass:?}");
}

/// `pace(100 ms)`: the provider receives one refresh request at least 100 ms after the other,
/// with 4 workers, and across passes (the pace is kept from one pass to the next). Lower bounds
/// only, measured where the requests arrive.
#[test]
fn refresh_ahead_paces_a_providers_requests_across_passes() {
    const PACE: Duration = Duration::from_millis(100);
    // What loopback delivery may shift one arrival against the one before it.
    const DELIVERY: Duration = Duration::from_millis(50);
    let provider = Provider::start(3600, Duration::ZERO);
    let spec = provider.spec();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db")).unwrap();
    for i in 0..6 {
        store
            .save(&provider.entry(&format!("p{i}"), now() - 5))
            .unwrap();
    }
    let client = Client::new();
    let ahead = RefreshAhead::new(&client, &store)
        .provider(&spec, secrets())
        .concurrency(4)
        .pace(PACE);
    assert_eq!(ahead.run_once().unwrap().refreshed, 6);
    // Two more fall due right after: the next pass keeps the pace.
    for i in 6..8 {
        store
            .save(&provider.entry(&format!("p{i}"), now() - 5))
            .unwrap();
    }
    assert_eq!(ahead.run_once().unwrap().refreshed, 2);
    let mut arrivals = provider.state.lock().unwrap().arrivals.clone();
    arrivals.sort();
    assert_eq!(arrivals.len(), 8);
    let gaps: Vec<_> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("pace {PACE:?}: gaps between refresh requests at the provider {gaps:?}");
    for (i, gap) in gaps.iter().enumerate() {
        assert!(
            *gap >= PACE - DELIVERY,
            "requests {i} and {} came {gap:?} apart",
            i + 1
        );
    }
    let span = arrivals[7] - arrivals[0];
    assert!(span >= PACE * 7 - DELIVERY, "8 requests within {span:?}");
}

// ---------------------------------------------------------------------------------------------
// The CLI over a database store
// ---------------------------------------------------------------------------------------------

/// The `specauth` binary with `--specs` and `--store`, without the developer's own
/// `SPECAUTH_*` variables, and the client secret from the environment.
fn specauth(provider: &Provider, store: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
    cmd.arg("--specs")
        .arg(provider.specs.path())
        .args(["--store", store])
        .args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SPECAUTH_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SPECAUTH_CLIENT_SECRET", "s3cret")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `specauth --store ARG`: `print-token` refreshes an expired entry through the store and saves
/// the rotated pair there, serves it from the store the next time without a request, `tokens`
/// lists it without secrets, `logout` forgets it, and `print-token` then asks for a sign-in.
fn cli_over(name: &str, arg: &str, store: &dyn Store) {
    let provider = Provider::start(3600, Duration::ZERO);
    let seeded = provider.entry("default", now() - 5);
    store.save(&seeded).unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let o = specauth(&provider, arg, &["print-token", "peer"]);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
    let printed = text(&o.stdout).trim().to_owned();
    let saved = store.load("peer", "default").unwrap().unwrap();
    assert_eq!(printed, saved.token.access_token.secret(), "{name}");
    {
        let st = provider.state.lock().unwrap();
        assert_eq!(st.refreshes, 1, "{name}");
        assert_eq!(
            st.issued.get(&printed),
            saved
                .token
                .refresh_token
                .as_ref()
                .map(|r| r.secret().to_owned())
                .as_ref(),
            "{name}: the rotated refresh token is in the store"
        );
    }

    let o = specauth(&provider, arg, &["print-token", "peer"]);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), printed, "{name}");
    assert_eq!(
        provider.state.lock().unwrap().arrivals.len(),
        1,
        "{name}: served from the store"
    );

    let secrets = [
        printed.as_str(),
        saved.token.refresh_token.as_ref().unwrap().secret(),
        "s3cret",
    ];
    let o = specauth(&provider, arg, &["tokens"]);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
    let listed = text(&o.stdout);
    assert!(
        listed.starts_with("peer ")
            && listed.contains("default")
            && listed.contains("expires in ")
            && listed.contains("refreshable"),
        "{name}: {listed}"
    );
    let o = specauth(&provider, arg, &["--json", "tokens"]);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{name}: {list}");
    assert_eq!(
        (&list[0]["provider"], &list[0]["profile"]),
        (&serde_json::json!("peer"), &serde_json::json!("default")),
        "{name}"
    );
    for secret in secrets {
        assert!(
            !listed.contains(secret) && !list.to_string().contains(secret),
            "{name}"
        );
    }

    let o = specauth(&provider, arg, &["logout", "peer"]);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
    assert_eq!(store.load("peer", "default").unwrap(), None, "{name}");
    let o = specauth(&provider, arg, &["print-token", "peer"]);
    assert_eq!(o.status.code(), Some(4), "{name}: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no cached token"),
        "{name}: {}",
        text(&o.stderr)
    );
}

#[test]
fn the_cli_reads_and_writes_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::open(&path).unwrap();
    cli_over("sqlite", &format!("sqlite:{}", path.display()), &store);
}

#[test]
fn the_cli_reads_and_writes_a_postgres_store() {
    let url = pg::server().database();
    let store = PostgresStore::connect(&url).unwrap();
    cli_over("postgres", &url, &store);
}

// ---------------------------------------------------------------------------------------------
// Where the keys come from
// ---------------------------------------------------------------------------------------------

/// An application's own key source, as a KMS client would be: counts how often it is asked.
struct Kms {
    keys: Mutex<Keys>,
    current_calls: std::sync::atomic::AtomicUsize,
    key_calls: std::sync::atomic::AtomicUsize,
    down: AtomicBool,
}

impl KeySource for Kms {
    fn current(&self) -> Result<(String, Key), specauth::Error> {
        self.current_calls.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap().current()
    }
    fn key(&self, id: &str) -> Result<Option<Key>, specauth::Error> {
        self.key_calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(specauth::Error::Usage("the KMS is unreachable".into()));
        }
        self.keys.lock().unwrap().key(id)
    }
}

/// Runs `Keys::from_env` in a child process with `var` set to `value` (or unset): what the
/// child printed after `KEYS `.
fn keys_from_env_in_child(var: &str, value: Option<&str>, db: &Path) -> String {
    let mut cmd = child_with(serde_json::json!({ "keys_from_env": var, "db": db }));
    cmd.env_remove(var);
    if let Some(value) = value {
        cmd.env(var, value);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = stdout.find("KEYS ").expect("the child answers") + "KEYS ".len();
    stdout[at..].lines().next().unwrap().to_owned()
}

/// Keys from an environment variable and from a file seal what the same text opens; key text
/// that is not usable is an error that never repeats the key material; an application's own
/// `KeySource` (a KMS) is asked for the current key on every save and for a key by id on every
/// load of a sealed entry, and its failure is a clear error.
#[test]
fn keys_come_from_the_environment_a_file_or_the_applications_own_source() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let k1 = Key::new([21; 32]).to_base64();
    let k0 = Key::new([20; 32]).to_base64();
    let text = format!("env-2:{k1}, env-1:{k0}");
    // Key material the errors must not repeat: a 31-byte key, one that is not base64, and a
    // whole item without its id.
    let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
    let bad: [(String, &str); 3] = [
        (format!("k1:{short}"), short.as_str()),
        (format!("k1:{k1}!!"), k1.as_str()),
        (k1.clone(), k1.as_str()),
    ];

    // The environment.
    let var = "SPECAUTH_TEST_STORE_KEYS";
    let db = dir.path().join("env.db");
    assert_eq!(keys_from_env_in_child(var, Some(&text), &db), "ok env-2");
    let opened = SqliteStore::open(&db)
        .unwrap()
        .with_encryption(Keys::parse(&format!("env-2:{k1}")).unwrap());
    assert_eq!(
        opened.load("acme", "from-env").unwrap(),
        Some(canary_entry("from-env"))
    );
    assert!(
        !files_contain(dir.path(), CANARY.as_bytes()),
        "sealed at rest"
    );
    let e = keys_from_env_in_child(var, None, &db);
    assert!(e.starts_with("err") && e.contains(var), "{e}");
    for (value, material) in &bad {
        let e = keys_from_env_in_child(var, Some(value), &db);
        assert!(e.starts_with("err "), "{value}: {e}");
        assert!(!e.contains(material), "the error repeats the key: {e}");
    }

    // A file.
    let file = dir.path().join("keys.txt");
    std::fs::write(&file, format!("file-1:{k1}\n")).unwrap();
    let keys = Keys::from_file(&file).unwrap();
    assert_eq!(keys.current_id(), "file-1");
    let sealed = SqliteStore::open(dir.path().join("file.db"))
        .unwrap()
        .with_encryption(keys);
    sealed.save(&canary_entry("from-file")).unwrap();
    let reopened = SqliteStore::open(dir.path().join("file.db"))
        .unwrap()
        .with_encryption(Keys::new("file-1", Key::new([21; 32])).unwrap());
    assert_eq!(
        reopened.load("acme", "from-file").unwrap(),
        Some(canary_entry("from-file"))
    );
    for (value, material) in &bad {
        std::fs::write(&file, value).unwrap();
        let e = Keys::from_file(&file).unwrap_err().to_string();
        assert!(!e.contains(material), "the error repeats the key: {e}");
    }
    let e = Keys::from_file(dir.path().join("missing.txt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.txt"), "{e}");
    std::fs::write(&file, format!("big:{}", "A".repeat(70_000))).unwrap();
    let e = Keys::from_file(&file).unwrap_err().to_string();
    assert!(e.contains("limit") && !e.contains("AAAA"), "{e}");

    // The application's own source.
    let kms = Arc::new(Kms {
        keys: Mutex::new(Keys::new("kms-1", Key::new([31; 32])).unwrap()),
        current_calls: Default::default(),
        key_calls: Default::default(),
        down: AtomicBool::new(false),
    });
    let calls = |kms: &Kms| {
        (
            kms.current_calls.load(Ordering::SeqCst),
            kms.key_calls.load(Ordering::SeqCst),
        )
    };
    let store = SqliteStore::open(dir.path().join("kms.db"))
        .unwrap()
        .with_encryption(kms.clone());
    for i in 0..3 {
        store.save(&canary_entry(&format!("k{i}"))).unwrap();
    }
    assert_eq!(calls(&kms), (3, 0), "one current key per save");
    assert_eq!(store.load("acme", "k1").unwrap(), Some(canary_entry("k1")));
    assert_eq!(store.list().unwrap().len(), 3);
    assert_eq!(calls(&kms), (3, 4), "one key per sealed entry read");
    assert!(
        !files_contain(dir.path(), CANARY.as_bytes()),
        "sealed at rest"
    );
    // Rotation at the KMS: new saves use the new key, old entries still open.
    *kms.keys.lock().unwrap() = Keys::new("kms-2", Key::new([32; 32]))
        .unwrap()
        .with_old("kms-1", Key::new([31; 32]))
        .unwrap();
    store.save(&canary_entry("k3")).unwrap();
    let plain = SqliteStore::open(dir.path().join("kms.db")).unwrap();
    let e = plain.load("acme", "k3").unwrap_err().to_string();
    assert!(e.contains("key `kms-2`"), "{e}");
    assert_eq!(store.load("acme", "k0").unwrap(), Some(canary_entry("k0")));
    assert_eq!(calls(&kms), (4, 5));
    // A KMS that fails: a clear error, no garbage, no key material.
    kms.down.store(true, Ordering::SeqCst);
    let e = store.load("acme", "k0").unwrap_err().to_string();
    assert!(
        e.contains("key source failed") && e.contains("KMS is unreachable"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Proof 4: no token in plain text at rest
// ---------------------------------------------------------------------------------------------

const CANARY: &str = "CANARY7f3a9";

fn canary_entry(profile: &str) -> StoredToken {
    let mut e = entry(
        "acme",
        profile,
        &format!("{CANARY}-access"),
        Some(4_000_000_000),
    );
    e.token.refresh_token = Some(Secret::new(format!("{CANARY}-refresh")));
    e.token.id_token = Some(Secret::new(format!("{CANARY}-id")));
    e.token
        .extra
        .insert("bot".into(), serde_json::json!(format!("{CANARY}-extra")));
    e.token.secret_extras.push("bot".into());
    e
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    walk(dir).iter().any(|p| {
        std::fs::read(p)
            .map(|b| b.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_token_is_stored_in_plain_text_when_encrypted() {
    let needle = CANARY.as_bytes();
    // SQLite: the database, its WAL and shared-memory files.
    let dir = tempfile::tempdir().unwrap();
    let sealed = SqliteStore::open(dir.path().join("sealed.db"))
        .unwrap()
        .with_encryption(keys("k1", 9));
    for i in 0..20 {
        sealed.save(&canary_entry(&format!("p{i}"))).unwrap();
    }
    assert!(
        !files_contain(dir.path(), needle),
        "sqlite: a token in plain text on disk"
    );
    assert_eq!(sealed.load("acme", "p3").unwrap(), Some(canary_entry("p3")));
    // The scan finds plaintext when there is some.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = SqliteStore::open(plain_dir.path().join("plain.db")).unwrap();
    plain.save(&canary_entry("p0")).unwrap();
    assert!(
        files_contain(plain_dir.path(), needle),
        "the scan finds plaintext"
    );

    // The file store, opted in.
    let fdir = tempfile::tempdir().unwrap();
    let files = TokenStore::new(fdir.path().join("t")).with_encryption(keys("k1", 9));
    files.save(&canary_entry("p0")).unwrap();
    assert!(!files_contain(fdir.path(), needle), "file store: plaintext");
    assert_eq!(files.load("acme", "p0").unwrap(), Some(canary_entry("p0")));

    // PostgreSQL: a dump of the database and the table read back.
    let url = pg::server().database();
    let pgs = PostgresStore::connect(&url)
        .unwrap()
        .with_encryption(keys("k1", 9));
    for i in 0..20 {
        pgs.save(&canary_entry(&format!("p{i}"))).unwrap();
    }
    let dump = pg::server().dump(&url);
    assert!(dump.contains("specauth_tokens"), "the dump has the table");
    assert!(
        !dump.contains(CANARY),
        "postgres: a token in plain text in the dump"
    );
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for row in c
        .query("SELECT body, key_id FROM specauth_tokens", &[])
        .unwrap()
    {
        let body: String = row.get(0);
        let key: Option<String> = row.get(1);
        assert!(!body.contains(CANARY));
        assert_eq!(key.as_deref(), Some("k1"));
    }
    assert_eq!(pgs.load("acme", "p3").unwrap(), Some(canary_entry("p3")));
    // And the server's own files.
    assert!(
        !files_contain(&pg::server().data_dir(), needle),
        "postgres: plaintext in its files"
    );
    // Listing and refresh-ahead see plain metadata without the keys.
    let bare = PostgresStore::connect(&url).unwrap();
    assert_eq!(bare.expiring(4_000_000_000, 100).unwrap().len(), 20);
    assert!(bare.load("acme", "p0").is_err());
}
