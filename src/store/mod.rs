//! Token stores for applications: one trait, three stores, encryption at rest and refresh-ahead
//! (feature `session`; SQLite with `sqlite`, PostgreSQL with `postgres`, sealing with
//! `encryption`).
//!
//! - [`Store`]: load, save, remove and list cached tokens, and a refresh *lock* with a lease, so
//!   [`fresh_token`](crate::session::fresh_token) refreshes single-flight over any store. The
//!   trait is synchronous, like the crate's [`Client`](crate::Client).
//! - [`TokenStore`]: the CLI's folder of files (one person, one machine).
//! - `SqliteStore` (feature `sqlite`): one file, WAL mode, the embedded default for an
//!   application.
//! - `PostgresStore` (feature `postgres`): one table shared by many instances of an application.
//! - `Keys` (feature `encryption`): access, refresh and id tokens sealed with
//!   XChaCha20-Poly1305; a key id beside each record, so old keys still decrypt after a rotation.
//! - [`RefreshAhead`]: refreshes the connections that expire within a margin, with bounded
//!   concurrency, per-provider pacing, jittered retries and an event for every change.
//!
//! A store handle belongs to one *owner* (a tenant or an application's user): `load`, `save`,
//! `list` and `lock` see that owner's connections only, and [`Store::for_owner`] gives the handle
//! of another owner over the same storage. The default owner is the empty string.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")] {
//! use specauth::store::{Keys, SqliteStore, Store};
//! use specauth::{Client, Inputs, Loader};
//!
//! let keys = Keys::from_env("MY_APP_TOKEN_KEYS")?;
//! let store = SqliteStore::open("tokens.db")?.with_encryption(keys);
//! let alice = store.for_owner("user-42")?;
//! let spec = Loader::new().with_dir("my-specs").load("acme")?;
//! let secrets = Inputs::new().with("client_secret", "…");
//! let entry = specauth::session::fresh_token(&Client::new(), &spec, &alice, "default", &secrets, 60)?;
//! println!("{}", entry.token.access_token.secret());
//! # }
//! # Ok::<(), specauth::Error>(())
//! ```

mod ahead;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod seal;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::session::StoredToken;

pub use ahead::{Pass, RefreshAhead, RefreshEvent};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "encryption")]
pub use seal::{Key, KeySource, Keys};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub use crate::session::{StoreLock, TokenStore};

/// How long a refresh lock is held at most before another caller may take it over (a holder
/// that crashed). Longer than the default transport timeout (30 s), so a live holder keeps it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How long [`Store::lock`] waits for another holder by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where tokens are kept: the CLI's folder, SQLite, PostgreSQL, or an application's own.
///
/// Keys are the provider id and the profile (one *connection*), within the handle's owner.
/// Implementations keep [`StoredToken`] whole (its serialised form), so fields added to it flow
/// through every store.
pub trait Store: Send + Sync {
    /// The cached entry of `provider` + `profile`, if any. An entry that cannot be read (a
    /// wrong key, an altered record) is an error, never `None`.
    fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, Error>;
    /// Saves `entry` atomically under its provider and profile: a reader sees the old entry or
    /// the new one, never a mix, and a crash leaves one of them.
    fn save(&self, entry: &StoredToken) -> Result<(), Error>;
    /// Deletes an entry; `Ok(false)` when there was none.
    fn remove(&self, provider: &str, profile: &str) -> Result<bool, Error>;
    /// The owner's entries, sorted by provider then profile.
    fn list(&self) -> Result<Vec<StoredToken>, Error>;
    /// Waits (at most the store's lock timeout) until this caller holds the refresh lock of
    /// `provider` + `profile`, across threads, processes and (for a shared database) machines.
    /// The lock is released when the returned guard is dropped, or when its lease runs out if
    /// the holder died.
    fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, Error>;
    /// The owner this handle reads and writes for (`""` by default).
    fn owner(&self) -> &str;
    /// A handle for `owner` over the same storage.
    fn for_owner(&self, owner: &str) -> Result<Self, Error>
    where
        Self: Sized;
    /// Connections of every owner that can be refreshed (they hold a refresh token) and expire
    /// at or before `before` (epoch seconds), soonest first, at most `limit`.
    fn expiring(&self, before: u64, limit: usize) -> Result<Vec<Connection>, Error>;
}

/// One connection of one owner, as [`Store::expiring`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The owner (tenant, user) it belongs to.
    pub owner: String,
    /// Provider id.
    pub provider: String,
    /// Profile.
    pub profile: String,
    /// When its access token expires, epoch seconds.
    pub expires_at: Option<u64>,
}

/// Checks an owner, provider or profile name: 1 to 128 letters, digits, `-`, `_` or `.`, not
/// starting with `.` (the file store makes file names of them). Not `@`: the file store names
/// a file `PROVIDER@PROFILE.json`, which would be ambiguous.
pub(crate) fn check_name(what: &str, name: &str, allow_empty: bool) -> Result<(), Error> {
    if name.is_empty() && allow_empty {
        return Ok(());
    }
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{what} name `{name}` may only use letters, digits, `-`, `_` and `.`"
        )))
    }
}

/// A stored entry as the database stores write it: plain metadata (for listing and
/// refresh-ahead) beside the serialised entry, sealed when the store has keys.
#[derive(Debug)]
pub(crate) struct Record {
    pub expires_at: Option<u64>,
    pub refreshable: bool,
    pub obtained_at: u64,
    /// The key the body is sealed with; `None` when the body is plain JSON.
    pub key_id: Option<String>,
    pub body: String,
}

/// What a sealed body is bound to: a body moved to another row does not open.
fn aad(owner: &str, provider: &str, profile: &str) -> Vec<u8> {
    format!("specauth-store-v1\0{owner}\0{provider}\0{profile}").into_bytes()
}

impl Record {
    /// `entry` of `owner`, sealed with `sealer` when given.
    pub fn encode(
        owner: &str,
        entry: &StoredToken,
        sealer: Option<&seal::Sealer>,
    ) -> Result<Record, Error> {
        let json = entry.to_json().to_string();
        let (key_id, body) = match sealer {
            Some(s) => {
                let (id, body) = s.seal(
                    &aad(owner, &entry.provider, &entry.profile),
                    json.as_bytes(),
                )?;
                (Some(id), body)
            }
            None => (None, json),
        };
        Ok(Record {
            expires_at: entry.token.expires_at,
            refreshable: entry.token.refresh_token.is_some(),
            obtained_at: entry.obtained_at,
            key_id,
            body,
        })
    }

    /// The entry `provider` + `profile` of `owner` back from its record.
    /// The entry a row holds: its key id and body, read back (the metadata columns are for
    /// listing, not for the entry).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn read(
        owner: &str,
        provider: &str,
        profile: &str,
        key_id: Option<String>,
        body: String,
        sealer: Option<&seal::Sealer>,
    ) -> Result<StoredToken, Error> {
        Record {
            expires_at: None,
            refreshable: false,
            obtained_at: 0,
            key_id,
            body,
        }
        .decode(owner, provider, profile, sealer)
    }

    pub fn decode(
        &self,
        owner: &str,
        provider: &str,
        profile: &str,
        sealer: Option<&seal::Sealer>,
    ) -> Result<StoredToken, Error> {
        let unreadable = |why: &str| {
            Error::Usage(format!(
                "the stored token of `{provider}` (profile `{profile}`{}) {why}",
                if owner.is_empty() {
                    String::new()
                } else {
                    format!(", owner `{owner}`")
                }
            ))
        };
        let json = match (&self.key_id, sealer) {
            (None, _) => self.body.clone(),
            (Some(id), Some(s)) => {
                let plain = s
                    .open(id, &aad(owner, provider, profile), &self.body)
                    .map_err(|why| unreadable(&why))?;
                String::from_utf8(plain).map_err(|_| unreadable("is not text once decrypted"))?
            }
            (Some(id), None) => {
                return Err(unreadable(&format!(
                    "is encrypted (key `{id}`), and the store was given no keys"
                )));
            }
        };
        let entry = serde_json::from_str::<Value>(&json)
            .ok()
            .and_then(|v| StoredToken::from_json(&v))
            .ok_or_else(|| unreadable("is not a specauth token record"))?;
        if entry.provider != provider || entry.profile != profile {
            return Err(unreadable("names another provider or profile"));
        }
        Ok(entry)
    }
}

/// Polls `try_take` until it succeeds or `timeout` passes, sleeping a little (jittered, so
/// waiters do not march in step) between attempts.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut try_take: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(t) = try_take()? {
            return Ok(t);
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Usage(format!(
                "cannot lock {what}: another caller has held the lock for more than {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5 + jitter(15)));
    }
}

/// A random number in `0..bound` (0 when the system has no randomness to give).
pub(crate) fn jitter(bound: u64) -> u64 {
    let mut b = [0u8; 8];
    if bound == 0 || getrandom::fill(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % bound
}

/// A random holder id for a lease row.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn nonce() -> Result<String, Error> {
    crate::session::random_string(24)
}

/// Milliseconds since the Unix epoch.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Epoch seconds as a database integer (they fit: u64 seconds beyond i64 are 292 billion
/// years away), and back.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Secret, Token};

    fn entry() -> StoredToken {
        StoredToken {
            provider: "acme".into(),
            profile: "default".into(),
            token: Token {
                expires_at: Some(10),
                refresh_token: Some(Secret::new("r")),
                ..Token::bearer(Secret::new("a"))
            },
            inputs: Default::default(),
            obtained_at: 1,
            dpop_key: None,
            resources: Vec::new(),
            issuer: None,
            endpoints: Default::default(),
            refresh_margin: 0,
            client_auth: Vec::new(),
        }
    }

    #[test]
    fn a_plain_record_round_trips_and_is_bound_to_its_key() {
        let r = Record::encode("", &entry(), None).unwrap();
        assert_eq!(
            (r.expires_at, r.refreshable, r.key_id.as_deref()),
            (Some(10), true, None)
        );
        assert_eq!(r.decode("", "acme", "default", None).unwrap(), entry());
        let e = r.decode("", "acme", "work", None).unwrap_err().to_string();
        assert!(e.contains("names another provider or profile"), "{e}");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("owner", "", true).is_ok());
        assert!(check_name("owner", "", false).is_err());
        assert!(check_name("owner", "../x", true).is_err());
        assert!(check_name("owner", "tenant-1.a_b", true).is_ok());
        assert!(check_name("profile", "a@b", false).is_err());
    }
}
