//! `--store`: a folder (the default), `sqlite:PATH`, or `postgres://…`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use specauth::Error;
use specauth::session::{StoreLock, StoredToken, TokenStore};
use specauth::store::{Connection, Store};

/// The store `--store` names.
#[derive(Debug)]
pub(crate) enum CliStore {
    Files(TokenStore),
    #[cfg(feature = "sqlite")]
    Sqlite(specauth::store::SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(specauth::store::PostgresStore, PathBuf),
}

impl CliStore {
    /// Opens what `value` names: `sqlite:PATH`, `postgres://…` / `postgresql://…`, or a
    /// folder.
    pub(crate) fn open(value: PathBuf) -> Result<CliStore, Error> {
        let text = value.to_str().unwrap_or("");
        if let Some(path) = text.strip_prefix("sqlite:") {
            #[cfg(feature = "sqlite")]
            return specauth::store::SqliteStore::open(path).map(CliStore::Sqlite);
            #[cfg(not(feature = "sqlite"))]
            return Err(unsupported("sqlite", path));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return specauth::store::PostgresStore::connect(text).map(|s| {
                let name = PathBuf::from(s.database());
                CliStore::Postgres(s, name)
            });
            #[cfg(not(feature = "postgres"))]
            return Err(unsupported("postgres", "postgres://…"));
        }
        Ok(CliStore::Files(TokenStore::new(value)))
    }

    /// Where the tokens are, for messages (a folder, a database file, a server and database
    /// without credentials).
    pub(crate) fn root(&self) -> &Path {
        match self {
            CliStore::Files(s) => s.root(),
            #[cfg(feature = "sqlite")]
            CliStore::Sqlite(s) => s.path(),
            #[cfg(feature = "postgres")]
            CliStore::Postgres(_, name) => name,
        }
    }

    pub(crate) fn with_lock_timeout(self, timeout: Duration) -> Self {
        match self {
            CliStore::Files(s) => CliStore::Files(s.with_lock_timeout(timeout)),
            #[cfg(feature = "sqlite")]
            CliStore::Sqlite(s) => CliStore::Sqlite(s.with_lock_timeout(timeout)),
            #[cfg(feature = "postgres")]
            CliStore::Postgres(s, n) => CliStore::Postgres(s.with_lock_timeout(timeout), n),
        }
    }

    fn inner(&self) -> &dyn Store {
        match self {
            CliStore::Files(s) => s,
            #[cfg(feature = "sqlite")]
            CliStore::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            CliStore::Postgres(s, _) => s,
        }
    }
}

#[cfg(any(not(feature = "sqlite"), not(feature = "postgres")))]
fn unsupported(feature: &str, what: &str) -> Error {
    Error::Usage(format!(
        "--store {feature}:… needs a specauth built with the `{feature}` feature \
         (cargo install specauth --features {feature}); `{what}` was not opened"
    ))
}

impl Store for CliStore {
    fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, Error> {
        self.inner().load(provider, profile)
    }
    fn save(&self, entry: &StoredToken) -> Result<(), Error> {
        self.inner().save(entry)
    }
    fn remove(&self, provider: &str, profile: &str) -> Result<bool, Error> {
        self.inner().remove(provider, profile)
    }
    fn list(&self) -> Result<Vec<StoredToken>, Error> {
        self.inner().list()
    }
    fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, Error> {
        self.inner().lock(provider, profile)
    }
    fn owner(&self) -> &str {
        self.inner().owner()
    }
    fn for_owner(&self, owner: &str) -> Result<Self, Error> {
        Ok(match self {
            CliStore::Files(s) => CliStore::Files(s.for_owner(owner)?),
            #[cfg(feature = "sqlite")]
            CliStore::Sqlite(s) => CliStore::Sqlite(s.for_owner(owner)?),
            #[cfg(feature = "postgres")]
            CliStore::Postgres(s, n) => CliStore::Postgres(s.for_owner(owner)?, n.clone()),
        })
    }
    fn expiring(&self, before: u64, limit: usize) -> Result<Vec<Connection>, Error> {
        self.inner().expiring(before, limit)
    }
}
