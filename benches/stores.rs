//! `cargo bench --bench stores --features sqlite,postgres`: cached token reads per second and
//! latency percentiles for the file, SQLite and PostgreSQL stores, plain and encrypted.
//!
//! A cached read is [`specauth::session::fresh_token`] on a connection whose token is still
//! valid: one `load` from the store (and, when encrypted, one XChaCha20-Poly1305 open), no
//! network. 100 connections of one owner are stored; reads go round them, one thread. The
//! PostgreSQL server is a throwaway one from the Debian package on 127.0.0.1 (fsync off), as
//! in the tests. Nothing here asserts a timing.

#[path = "../tests/store/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::hint::black_box;
use std::time::Instant;

use specauth::session::{self, StoredToken, TokenStore};
use specauth::store::{Key, Keys, PostgresStore, SqliteStore, Store};
use specauth::{Client, Inputs, Loader, Secret, Token};

const CONNECTIONS: usize = 100;
const WARMUP: usize = 500;

fn percentile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    v[pos.round() as usize]
}

fn measure(name: &str, store: &dyn Store, reads: usize) {
    let specs = tempfile::tempdir().unwrap();
    std::fs::write(
        specs.path().join("peer.yaml"),
        "id: peer\nname: Peer\nextends: oauth2\nendpoints:\n  token: http://127.0.0.1:9/token\n",
    )
    .unwrap();
    let spec = Loader::new().with_dir(specs.path()).load("peer").unwrap();
    let client = Client::new();
    for i in 0..CONNECTIONS {
        store
            .save(&StoredToken {
                provider: "peer".into(),
                profile: format!("c{i}"),
                token: Token {
                    expires_at: Some(session::now() + 3600),
                    refresh_token: Some(Secret::new(format!("refresh-{i}-0123456789abcdef"))),
                    ..Token::bearer(Secret::new(format!("access-{i}-0123456789abcdef")))
                },
                inputs: [("client_id".to_owned(), "app".to_owned())].into(),
                obtained_at: session::now(),
                dpop_key: None,
                resources: Vec::new(),
                issuer: None,
                endpoints: Default::default(),
                refresh_margin: 0,
                client_auth: Vec::new(),
            })
            .unwrap();
    }
    let profiles: Vec<String> = (0..CONNECTIONS).map(|i| format!("c{i}")).collect();
    let secrets = Inputs::new();
    let read = |i: usize| {
        let e = session::fresh_token(
            &client,
            &spec,
            store,
            &profiles[i % CONNECTIONS],
            &secrets,
            60,
        )
        .unwrap();
        black_box(e);
    };
    for i in 0..WARMUP {
        read(i);
    }
    let mut samples = Vec::with_capacity(reads);
    let started = Instant::now();
    for i in 0..reads {
        let t = Instant::now();
        read(i);
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = started.elapsed();
    samples.sort_by(f64::total_cmp);
    println!(
        "| {name:<28} | {:>10.0} | {:>8.1} | {:>8.1} |",
        reads as f64 / total.as_secs_f64(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}

fn keys() -> Keys {
    Keys::new("k1", Key::new([7; 32])).unwrap()
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let reads = if quick { 200 } else { 20_000 };
    let dir = tempfile::tempdir().unwrap();
    println!("| store (cached token read)    |   reads/s  | p50 (µs) | p99 (µs) |");
    println!("|------------------------------|-----------:|---------:|---------:|");
    measure("file", &TokenStore::new(dir.path().join("f")), reads);
    measure(
        "file, encrypted",
        &TokenStore::new(dir.path().join("fe")).with_encryption(keys()),
        reads,
    );
    measure(
        "sqlite",
        &SqliteStore::open(dir.path().join("s.db")).unwrap(),
        reads,
    );
    measure(
        "sqlite, encrypted",
        &SqliteStore::open(dir.path().join("se.db"))
            .unwrap()
            .with_encryption(keys()),
        reads,
    );
    let pg = pg::server();
    measure(
        "postgres (loopback TCP)",
        &PostgresStore::connect(&pg.database()).unwrap(),
        reads,
    );
    measure(
        "postgres, encrypted",
        &PostgresStore::connect(&pg.database())
            .unwrap()
            .with_encryption(keys()),
        reads,
    );
}
