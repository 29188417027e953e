//! The PostgreSQL store: one table shared by many instances of an application (feature
//! `postgres`).

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::error::Error;
use crate::session::{StoreLock, StoredToken};

use super::seal::Sealer;
use super::{Connection, Record, Store, check_name, from_db, to_db};

/// Schema migrations, applied in order under an advisory lock (instances starting together
/// migrate once); `specauth_schema` records the number applied.
const MIGRATIONS: &[&str] = &["CREATE TABLE specauth_tokens (
        owner TEXT NOT NULL,
        provider TEXT NOT NULL,
        profile TEXT NOT NULL,
        expires_at BIGINT,
        refreshable BOOLEAN NOT NULL,
        obtained_at BIGINT NOT NULL,
        key_id TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (owner, provider, profile)
    );
    CREATE INDEX specauth_tokens_expiring ON specauth_tokens (expires_at) WHERE refreshable;
    CREATE TABLE specauth_locks (
        owner TEXT NOT NULL,
        provider TEXT NOT NULL,
        profile TEXT NOT NULL,
        holder TEXT NOT NULL,
        until_ms BIGINT NOT NULL,
        PRIMARY KEY (owner, provider, profile)
    );"];

/// The advisory lock key that serialises migrations ("specauth" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x7370_6563_6175_7468;
/// The database's clock in epoch milliseconds: leases are judged by one clock for every
/// instance.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Tokens in a PostgreSQL table, for many instances of an application: the schema migrates on
/// connect (`specauth_tokens`, `specauth_locks`, `specauth_schema`), each save is one statement,
/// and the refresh lock is a lease row taken with a conditional upsert, judged by the
/// database's clock, so an instance that dies mid-refresh blocks the others for at most the
/// lease.
///
/// Connections come from an [`r2d2`] pool (sync, like the crate's client; default at most 8,
/// connection timeout 10 s). The connection is plain TCP or a Unix socket (`NoTls`): reach a
/// remote server through a TLS tunnel or a local socket.
#[derive(Clone)]
pub struct PostgresStore {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
    /// `postgresql://host:port/dbname`, without user or password, for messages.
    name: Arc<std::path::PathBuf>,
    owner: String,
    sealer: Option<Sealer>,
    lease: Duration,
    lock_timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.name)
            .field("owner", &self.owner)
            .field("encrypted", &self.sealer.is_some())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db` or `host=… dbname=…`) with a
    /// pool of at most 8 connections, and migrates the schema.
    pub fn connect(url: &str) -> Result<PostgresStore, Error> {
        PostgresStore::connect_with_pool_size(url, 8)
    }

    /// [`PostgresStore::connect`] with at most `size` pooled connections.
    pub fn connect_with_pool_size(url: &str, size: u32) -> Result<PostgresStore, Error> {
        let config = postgres::Config::from_str(url).map_err(|e| {
            // The parser's message never repeats the URL (which may hold a password).
            Error::Usage(format!("the PostgreSQL URL is not usable: {e}"))
        })?;
        let name = Arc::new(std::path::PathBuf::from(describe(&config)));
        let pool = r2d2::Pool::builder()
            .max_size(size.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(PostgresConnectionManager::new(config, NoTls))
            .map_err(|e| Error::io("connect to", &name, std::io::Error::other(e)))?;
        let store = PostgresStore {
            pool,
            name,
            owner: String::new(),
            sealer: None,
            lease: super::DEFAULT_LEASE,
            lock_timeout: super::DEFAULT_LOCK_TIMEOUT,
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(self.fail("migrate"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(self.fail("migrate"))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS specauth_schema (version INTEGER NOT NULL)")
            .map_err(self.fail("migrate"))?;
        let applied: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM specauth_schema", &[])
            .and_then(|r| r.try_get(0))
            .map_err(self.fail("migrate"))?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(Error::Usage(format!(
                "{} has specauth schema version {applied}, newer than this specauth knows ({}); upgrade specauth",
                self.name.display(),
                MIGRATIONS.len()
            )));
        }
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(sql).map_err(self.fail("migrate"))?;
            tx.execute(
                "INSERT INTO specauth_schema (version) VALUES ($1)",
                &[&i32::try_from(n + 1).unwrap_or(i32::MAX)],
            )
            .map_err(self.fail("migrate"))?;
        }
        tx.commit().map_err(self.fail("migrate"))
    }

    /// Seals entries with `keys` (see [`Keys`](super::Keys)); entries saved before without
    /// keys still load.
    pub fn with_encryption(mut self, keys: impl super::KeySource + 'static) -> Self {
        self.sealer = Some(Sealer(Arc::new(keys)));
        self
    }

    /// How long a refresh lock outlives an instance that died (default 60 s). Keep it longer
    /// than the transport's timeout: a live holder whose lease ran out could be overtaken.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long [`Store::lock`] waits for another holder (default 60 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The server and database, as `postgresql://host:port/dbname` (no user or password).
    pub fn database(&self) -> &str {
        self.name.to_str().unwrap_or("postgresql")
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, Error> {
        self.pool
            .get()
            .map_err(|e| Error::io("connect to", &self.name, std::io::Error::other(e)))
    }

    fn fail(&self, action: &'static str) -> impl Fn(postgres::Error) -> Error + '_ {
        move |e| Error::io(action, &self.name, std::io::Error::other(e))
    }

    fn row_entry(
        &self,
        provider: &str,
        profile: &str,
        key_id: Option<String>,
        body: String,
    ) -> Result<StoredToken, Error> {
        Record::read(
            &self.owner,
            provider,
            profile,
            key_id,
            body,
            self.sealer.as_ref(),
        )
    }
}

/// `postgresql://host:port/dbname`, never the user or password.
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("postgresql://{host}:{port}/{db}")
}

/// The lease row of one connection; deleted (if still ours) when dropped.
struct Lease {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
    key: [String; 3],
    holder: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // If this fails the lease simply runs out.
        if let Ok(mut conn) = self.pool.get() {
            let _ = conn.execute(
                "DELETE FROM specauth_locks WHERE owner = $1 AND provider = $2 AND profile = $3 AND holder = $4",
                &[&self.key[0], &self.key[1], &self.key[2], &self.holder],
            );
        }
    }
}

impl Store for PostgresStore {
    fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, Error> {
        check_name("provider", provider, false)?;
        check_name("profile", profile, false)?;
        let row = self
            .conn()?
            .query_opt(
                "SELECT key_id, body FROM specauth_tokens WHERE owner = $1 AND provider = $2 AND profile = $3",
                &[&self.owner, &provider, &profile],
            )
            .map_err(self.fail("read"))?;
        row.map(|r| {
            let key_id: Option<String> = r.try_get(0).map_err(self.fail("read"))?;
            let body: String = r.try_get(1).map_err(self.fail("read"))?;
            self.row_entry(provider, profile, key_id, body)
        })
        .transpose()
    }

    fn save(&self, entry: &StoredToken) -> Result<(), Error> {
        check_name("provider", &entry.provider, false)?;
        check_name("profile", &entry.profile, false)?;
        let r = Record::encode(&self.owner, entry, self.sealer.as_ref())?;
        self.conn()?
            .execute(
                "INSERT INTO specauth_tokens
                    (owner, provider, profile, expires_at, refreshable, obtained_at, key_id, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (owner, provider, profile) DO UPDATE SET
                    expires_at = excluded.expires_at, refreshable = excluded.refreshable,
                    obtained_at = excluded.obtained_at, key_id = excluded.key_id,
                    body = excluded.body",
                &[
                    &self.owner,
                    &entry.provider,
                    &entry.profile,
                    &r.expires_at.map(to_db),
                    &r.refreshable,
                    &to_db(r.obtained_at),
                    &r.key_id,
                    &r.body,
                ],
            )
            .map_err(self.fail("write"))?;
        Ok(())
    }

    fn remove(&self, provider: &str, profile: &str) -> Result<bool, Error> {
        check_name("provider", provider, false)?;
        check_name("profile", profile, false)?;
        let n = self
            .conn()?
            .execute(
                "DELETE FROM specauth_tokens WHERE owner = $1 AND provider = $2 AND profile = $3",
                &[&self.owner, &provider, &profile],
            )
            .map_err(self.fail("write"))?;
        Ok(n > 0)
    }

    fn list(&self) -> Result<Vec<StoredToken>, Error> {
        let rows = self
            .conn()?
            .query(
                "SELECT provider, profile, key_id, body FROM specauth_tokens
                 WHERE owner = $1 ORDER BY provider, profile",
                &[&self.owner],
            )
            .map_err(self.fail("read"))?;
        rows.iter()
            .map(|r| {
                let p: String = r.try_get(0).map_err(self.fail("read"))?;
                let q: String = r.try_get(1).map_err(self.fail("read"))?;
                let k: Option<String> = r.try_get(2).map_err(self.fail("read"))?;
                let b: String = r.try_get(3).map_err(self.fail("read"))?;
                self.row_entry(&p, &q, k, b)
            })
            .collect()
    }

    fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, Error> {
        check_name("provider", provider, false)?;
        check_name("profile", profile, false)?;
        let holder = super::nonce()?;
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let what = format!("{provider}@{profile} in {}", self.name.display());
        let sql = format!(
            "INSERT INTO specauth_locks (owner, provider, profile, holder, until_ms)
             VALUES ($1, $2, $3, $4, {DB_NOW_MS} + $5)
             ON CONFLICT (owner, provider, profile) DO UPDATE SET
                holder = excluded.holder, until_ms = excluded.until_ms
             WHERE specauth_locks.until_ms < {DB_NOW_MS}"
        );
        // A connection per attempt: waiters must not hold the pool the holder saves through.
        super::wait_for(self.lock_timeout, &what, || {
            let n = self
                .conn()?
                .execute(
                    sql.as_str(),
                    &[&self.owner, &provider, &profile, &holder, &lease_ms],
                )
                .map_err(self.fail("lock"))?;
            Ok((n == 1).then_some(()))
        })?;
        Ok(StoreLock::new(Lease {
            pool: self.pool.clone(),
            key: [self.owner.clone(), provider.to_owned(), profile.to_owned()],
            holder,
        }))
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    fn for_owner(&self, owner: &str) -> Result<Self, Error> {
        check_name("owner", owner, true)?;
        Ok(PostgresStore {
            owner: owner.to_owned(),
            ..self.clone()
        })
    }

    fn expiring(&self, before: u64, limit: usize) -> Result<Vec<Connection>, Error> {
        let rows = self
            .conn()?
            .query(
                "SELECT owner, provider, profile, expires_at FROM specauth_tokens
                 WHERE refreshable AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                &[&to_db(before), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(self.fail("read"))?;
        rows.iter()
            .map(|r| {
                Ok(Connection {
                    owner: r.try_get(0).map_err(self.fail("read"))?,
                    provider: r.try_get(1).map_err(self.fail("read"))?,
                    profile: r.try_get(2).map_err(self.fail("read"))?,
                    expires_at: r
                        .try_get::<_, Option<i64>>(3)
                        .map_err(self.fail("read"))?
                        .map(from_db),
                })
            })
            .collect()
    }
}
