//! The SQLite store: one file, the embedded default for an application (feature `sqlite`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension as _, params};

use crate::error::Error;
use crate::session::{StoreLock, StoredToken};

use super::seal::Sealer;
use super::{Connection, Record, Store, check_name, from_db, to_db};

/// Schema migrations, applied in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &["CREATE TABLE specauth_tokens (
        owner TEXT NOT NULL,
        provider TEXT NOT NULL,
        profile TEXT NOT NULL,
        expires_at INTEGER,
        refreshable INTEGER NOT NULL,
        obtained_at INTEGER NOT NULL,
        key_id TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (owner, provider, profile)
    );
    CREATE INDEX specauth_tokens_expiring ON specauth_tokens (expires_at) WHERE refreshable = 1;
    CREATE TABLE specauth_locks (
        owner TEXT NOT NULL,
        provider TEXT NOT NULL,
        profile TEXT NOT NULL,
        holder TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        PRIMARY KEY (owner, provider, profile)
    );"];

/// How long a statement waits for another writer before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per store handle family (SQLite has one writer at a time anyway).
const POOL_SIZE: u32 = 8;

/// Tokens in one SQLite file: WAL mode (readers never wait for the writer), a schema migrated
/// on open, each save one transaction, and the refresh lock a lease row (`specauth_locks`), so
/// a process killed while refreshing blocks the others for at most the lease.
///
/// The file is created with mode 0600. Writes use `synchronous = NORMAL`: a committed save
/// survives the process being killed at any moment (the WAL is on disk); a power cut may lose
/// the last saves. Handles are cheap to clone and share one connection pool.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use specauth::session::StoredToken;
/// use specauth::store::{Keys, Key, SqliteStore, Store};
/// use specauth::{Secret, Token};
/// let store = SqliteStore::open(dir.path().join("tokens.db"))?
///     .with_encryption(Keys::new("k1", Key::generate()?)?);
/// let alice = store.for_owner("alice")?;
/// let entry = StoredToken {
///     provider: "acme".into(), profile: "default".into(), obtained_at: 1,
///     token: Token::bearer(Secret::new("t")), inputs: Default::default(),
///     dpop_key: None, resources: Vec::new(), issuer: None, endpoints: Default::default(),
///     refresh_margin: 0, client_auth: Vec::new(),
/// };
/// alice.save(&entry)?;
/// assert_eq!(alice.load("acme", "default")?, Some(entry));
/// assert_eq!(store.load("acme", "default")?, None); // another owner
/// # Ok::<(), specauth::Error>(())
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: r2d2::Pool<Manager>,
    path: Arc<PathBuf>,
    owner: String,
    sealer: Option<Sealer>,
    lease: Duration,
    lock_timeout: Duration,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("owner", &self.owner)
            .field("encrypted", &self.sealer.is_some())
            .finish()
    }
}

#[derive(Debug)]
struct Manager {
    path: PathBuf,
}

impl r2d2::ManageConnection for Manager {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut rusqlite::Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _conn: &mut rusqlite::Connection) -> bool {
        false
    }
}

impl SqliteStore {
    /// Opens (creating it, mode 0600, when missing) the database at `path` and migrates its
    /// schema.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, Error> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let fail = |e: rusqlite::Error| Error::io("open", &path, std::io::Error::other(e));
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(Manager { path: path.clone() })
            .map_err(|e| Error::io("open", &path, std::io::Error::other(e)))?;
        {
            let mut conn = pool
                .get()
                .map_err(|e| Error::io("open", &path, std::io::Error::other(e)))?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(fail)?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!("{} cannot use WAL mode ({mode})", path.display());
            }
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(fail)?;
            let version: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(fail)?;
            let applied = usize::try_from(version).unwrap_or(usize::MAX);
            if applied > MIGRATIONS.len() {
                return Err(Error::Usage(format!(
                    "{} has schema version {version}, newer than this specauth knows ({}); upgrade specauth",
                    path.display(),
                    MIGRATIONS.len()
                )));
            }
            for sql in &MIGRATIONS[applied..] {
                tx.execute_batch(sql).map_err(fail)?;
            }
            tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
        Ok(SqliteStore {
            pool,
            path: Arc::new(path),
            owner: String::new(),
            sealer: None,
            lease: super::DEFAULT_LEASE,
            lock_timeout: super::DEFAULT_LOCK_TIMEOUT,
        })
    }

    /// Seals entries with `keys` (see [`Keys`](super::Keys)); entries saved before without
    /// keys still load.
    pub fn with_encryption(mut self, keys: impl super::KeySource + 'static) -> Self {
        self.sealer = Some(Sealer(Arc::new(keys)));
        self
    }

    /// How long a refresh lock outlives a holder that died (default 60 s). Keep it longer than
    /// the transport's timeout: a live holder whose lease ran out could be overtaken.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long [`Store::lock`] waits for another holder (default 60 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, Error> {
        self.pool
            .get()
            .map_err(|e| Error::io("open", &self.path, std::io::Error::other(e)))
    }

    fn fail(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |e| Error::io(action, &self.path, std::io::Error::other(e))
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

/// Creates `path` with mode 0600 when it does not exist (SQLite gives its WAL and shared-memory
/// files the database file's mode).
fn create_private(path: &Path) -> Result<(), Error> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
        .map(|_| ())
        .map_err(|e| Error::io("create", path, e))
}

/// The lease row of one connection; deleted (if still ours) when dropped.
struct Lease {
    pool: r2d2::Pool<Manager>,
    key: [String; 3],
    holder: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // If this fails the lease simply runs out.
        if let Ok(conn) = self.pool.get() {
            let _ = conn.execute(
                "DELETE FROM specauth_locks WHERE owner = ?1 AND provider = ?2 AND profile = ?3 AND holder = ?4",
                params![self.key[0], self.key[1], self.key[2], self.holder],
            );
        }
    }
}

impl Store for SqliteStore {
    fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, Error> {
        check_name("provider", provider, false)?;
        check_name("profile", profile, false)?;
        let row: Option<(Option<String>, String)> = self
            .conn()?
            .query_row(
                "SELECT key_id, body FROM specauth_tokens WHERE owner = ?1 AND provider = ?2 AND profile = ?3",
                params![self.owner, provider, profile],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.fail("read"))?;
        row.map(|(key_id, body)| self.row_entry(provider, profile, key_id, body))
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
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (owner, provider, profile) DO UPDATE SET
                    expires_at = excluded.expires_at, refreshable = excluded.refreshable,
                    obtained_at = excluded.obtained_at, key_id = excluded.key_id,
                    body = excluded.body",
                params![
                    self.owner,
                    entry.provider,
                    entry.profile,
                    r.expires_at.map(to_db),
                    r.refreshable,
                    to_db(r.obtained_at),
                    r.key_id,
                    r.body
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
                "DELETE FROM specauth_tokens WHERE owner = ?1 AND provider = ?2 AND profile = ?3",
                params![self.owner, provider, profile],
            )
            .map_err(self.fail("write"))?;
        Ok(n > 0)
    }

    fn list(&self) -> Result<Vec<StoredToken>, Error> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT provider, profile, key_id, body FROM specauth_tokens
                 WHERE owner = ?1 ORDER BY provider, profile",
            )
            .map_err(self.fail("read"))?;
        let rows = stmt
            .query_map(params![self.owner], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(self.fail("read"))?
            .collect::<Result<Vec<(String, String, Option<String>, String)>, _>>()
            .map_err(self.fail("read"))?;
        rows.into_iter()
            .map(|(p, q, k, b)| self.row_entry(&p, &q, k, b))
            .collect()
    }

    fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, Error> {
        check_name("provider", provider, false)?;
        check_name("profile", profile, false)?;
        let holder = super::nonce()?;
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let what = format!("{provider}@{profile} in {}", self.path.display());
        // A connection per attempt: waiters must not hold the pool the holder saves through.
        super::wait_for(self.lock_timeout, &what, || {
            let now = super::now_ms();
            let n = self
                .conn()?
                .execute(
                    "INSERT INTO specauth_locks (owner, provider, profile, holder, until_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (owner, provider, profile) DO UPDATE SET
                        holder = excluded.holder, until_ms = excluded.until_ms
                     WHERE specauth_locks.until_ms < ?6",
                    params![
                        self.owner,
                        provider,
                        profile,
                        holder,
                        now.saturating_add(lease_ms),
                        now
                    ],
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
        Ok(SqliteStore {
            owner: owner.to_owned(),
            ..self.clone()
        })
    }

    fn expiring(&self, before: u64, limit: usize) -> Result<Vec<Connection>, Error> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(
                "SELECT owner, provider, profile, expires_at FROM specauth_tokens
                 WHERE refreshable = 1 AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            )
            .map_err(self.fail("read"))?;
        let rows = stmt
            .query_map(
                params![to_db(before), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(Connection {
                        owner: r.get(0)?,
                        provider: r.get(1)?,
                        profile: r.get(2)?,
                        expires_at: r.get::<_, Option<i64>>(3)?.map(from_db),
                    })
                },
            )
            .map_err(self.fail("read"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.fail("read"))?;
        Ok(rows)
    }
}
