//! The token cache: one file per provider and profile, safe for many processes at once.
//!
//! - Files are written atomically (temporary file in the same folder, fsync, rename), so a
//!   process killed at any moment leaves the old token or the new one, never a torn file.
//! - Files are created with mode 0600, and the folder with 0700 (on Unix).
//! - Refresh is single-flight: [`TokenStore::lock`] takes an exclusive lock on a lock file; a
//!   process that waited for the lock reads the cache again before refreshing, so a rotating
//!   refresh token is never used twice. Waiting for the lock is bounded
//!   ([`TokenStore::with_lock_timeout`]).
//! - The folder must be the user's own and not writable by group or others (a planted entry
//!   could otherwise redirect the next refresh); no symbolic link is followed at the cache, lock
//!   or temporary paths; cache files are read only when regular and at most 1 MiB.
//! - It implements [`Store`](crate::store::Store), so [`fresh_token`](super::fresh_token) and
//!   [`RefreshAhead`](crate::store::RefreshAhead) work over it as over the database stores. The
//!   owners of [`Store::for_owner`](crate::store::Store::for_owner) are sub-folders
//!   `owners/OWNER` (the CLI uses the default owner, the folder itself), and with the
//!   `encryption` feature the tokens can be sealed ([`TokenStore::with_encryption`]).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;
use crate::secret::Secret;
use crate::token::Token;

/// Age after which a temporary file of an interrupted save is certainly abandoned.
const STALE_TMP: Duration = Duration::from_secs(60);
/// The largest cache file read.
const MAX_ENTRY_BYTES: u64 = 1 << 20;
/// How long [`TokenStore::lock`] waits for another process by default.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A cached token and what is needed to refresh it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredToken {
    /// Provider id (or spec path) it was obtained from.
    pub provider: String,
    /// Profile name (`default` unless chosen).
    pub profile: String,
    /// The token.
    pub token: Token,
    /// The non-secret inputs the token was obtained with (client_id, region, redirect_uri…),
    /// reused when refreshing. Secret inputs are never stored.
    pub inputs: BTreeMap<String, String>,
    /// When it was obtained, epoch seconds.
    pub obtained_at: u64,
    /// The private half of the DPoP key the token is bound to (RFC 9449), base64url; kept in
    /// the 0600 cache file, never shown.
    pub dpop_key: Option<Secret>,
    /// The resources (RFC 8707) the token was requested for.
    pub resources: Vec<String>,
    /// The issuer that issued it, when known (checked at login, RFC 9207).
    pub issuer: Option<String>,
    /// Endpoint URLs that replaced the spec's when the token was obtained (a sandbox's token
    /// URL, by endpoint name), so its refreshes, revocation and introspection go to the same
    /// server: apply them with [`Spec::with_endpoint`](crate::Spec::with_endpoint). Empty when
    /// the spec's own were used.
    pub endpoints: BTreeMap<String, String>,
    /// Seconds before expiry at which the token counts as expired: the spec's
    /// `token.refresh_margin` when it was obtained, so a reader of the cache that does not load
    /// the spec (`print-token`'s fast path) refreshes as early as the spec asks.
    pub refresh_margin: u64,
    /// What `client_auth: auto` learned the token endpoint accepts for this entry's client (Basic
    /// or body credentials), so the next process goes straight to it: see
    /// [`StoredToken::keep_client_auth`] and [`StoredToken::recall_client_auth`]. Empty for the
    /// other methods, and in entries written before it existed.
    pub client_auth: Vec<crate::spec::LearnedClientAuth>,
}

/// An object of strings (an entry's `inputs` or `endpoints`); other values are skipped, and a
/// missing or non-object value is empty.
fn string_map<M: FromIterator<(String, String)> + Default>(v: Option<&Value>) -> M {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl StoredToken {
    /// An entry for `spec` and `profile`, obtained now: the token, and the non-secret inputs it
    /// was obtained with, for refreshing. Secret inputs and the per-login ones (`state`, the
    /// PKCE challenge, the code, a token being revoked) are not kept.
    pub fn new(
        spec: &crate::spec::Spec,
        profile: &str,
        token: Token,
        inputs: &crate::inputs::Inputs,
    ) -> StoredToken {
        const PER_LOGIN: &[&str] = &[
            "state",
            "code_challenge",
            "code_challenge_method",
            "code",
            "token",
        ];
        let inputs: BTreeMap<String, String> = inputs
            .iter()
            .filter(|(k, _)| !PER_LOGIN.contains(k))
            .filter(|(k, _)| spec.inputs().any(|(n, d)| n == *k && !d.secret))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // Given, or the spec's default (a spec `login --mcp` wrote carries both as defaults).
        let value = |name: &str| {
            inputs.get(name).cloned().or_else(|| {
                spec.inputs()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, d)| d.default.clone())
            })
        };
        let resources = value("resource")
            .map(|r| r.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let issuer = value("issuer");
        StoredToken {
            provider: spec.id().to_owned(),
            profile: profile.to_owned(),
            token,
            inputs,
            obtained_at: crate::client::now(),
            dpop_key: None,
            resources,
            issuer,
            endpoints: BTreeMap::new(),
            refresh_margin: spec.refresh_margin(),
            client_auth: Vec::new(),
        }
    }

    /// Keeps what `client` learned under `client_auth: auto` for this entry's client id.
    pub fn keep_client_auth<T>(&mut self, client: &crate::client::Client<T>) {
        let id = self.inputs.get("client_id");
        for learned in client.learned_client_auth() {
            if Some(&learned.client_id) == id {
                self.client_auth.retain(|l| {
                    l.token_url != learned.token_url || l.client_id != learned.client_id
                });
                self.client_auth.push(learned);
            }
        }
    }

    /// Teaches `client` what this entry learned under `client_auth: auto`.
    pub fn recall_client_auth<T>(&self, client: &crate::client::Client<T>) {
        for learned in &self.client_auth {
            client.learn_client_auth(learned.clone());
        }
    }

    /// The DPoP key the token is bound to, when it is.
    pub fn dpop(&self) -> Result<Option<crate::dpop::DpopKey>, Error> {
        self.dpop_key
            .as_ref()
            .map(|k| crate::dpop::DpopKey::from_secret(k.secret()))
            .transpose()
    }

    /// The `Authorization: DPoP …` and `DPoP: <proof>` header values for calling `method`
    /// `url` with this token (RFC 9449 §7.1), or `None` when the token is not DPoP-bound.
    /// `nonce` is the resource server's last `DPoP-Nonce`, when it asked for one.
    pub fn dpop_headers(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<Option<(Secret, Secret)>, Error> {
        let Some(key) = self.dpop()? else {
            return Ok(None);
        };
        let token = self.token.access_token.secret();
        let proof = key.proof(method, url, nonce, Some(token))?;
        Ok(Some((
            Secret::new(format!("DPoP {token}")),
            Secret::new(proof),
        )))
    }

    /// The inputs to reuse this entry with: the stored (non-secret) ones, with `given` taking
    /// precedence.
    pub fn inputs_with(&self, given: &crate::inputs::Inputs) -> crate::inputs::Inputs {
        let mut inputs: crate::inputs::Inputs = self
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in given.iter() {
            inputs.set(k, v);
        }
        inputs
    }

    /// The serialised form every store keeps (all of the entry, secrets included).
    pub(crate) fn to_json(&self) -> Value {
        let mut token = self.token.to_json(true);
        if !self.token.secret_extras.is_empty() {
            token["secret_extras"] = json!(self.token.secret_extras);
        }
        let mut entry = json!({
            "provider": self.provider,
            "profile": self.profile,
            "obtained_at": self.obtained_at,
            "inputs": self.inputs,
            "token": token,
            "dpop_key": self.dpop_key.as_ref().map(Secret::secret),
            "resources": self.resources,
            "issuer": self.issuer,
        });
        if !self.endpoints.is_empty() {
            entry["endpoints"] = json!(self.endpoints);
        }
        if self.refresh_margin > 0 {
            entry["refresh_margin"] = json!(self.refresh_margin);
        }
        if !self.client_auth.is_empty() {
            entry["client_auth"] = self
                .client_auth
                .iter()
                .map(|l| {
                    json!({"token_url": l.token_url, "client_id": l.client_id, "method": l.method.as_str()})
                })
                .collect();
        }
        entry
    }

    /// The entry back from [`StoredToken::to_json`]'s form.
    pub(crate) fn from_json(v: &Value) -> Option<StoredToken> {
        Some(StoredToken {
            provider: v.get("provider")?.as_str()?.to_owned(),
            profile: v.get("profile")?.as_str()?.to_owned(),
            obtained_at: v.get("obtained_at").and_then(Value::as_u64).unwrap_or(0),
            inputs: string_map(v.get("inputs")),
            token: Token::from_json(v.get("token")?)?,
            dpop_key: v.get("dpop_key").and_then(Value::as_str).map(Secret::new),
            resources: v
                .get("resources")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            issuer: v.get("issuer").and_then(Value::as_str).map(str::to_owned),
            endpoints: string_map(v.get("endpoints")),
            refresh_margin: v.get("refresh_margin").and_then(Value::as_u64).unwrap_or(0),
            // Absent in entries written before `client_auth: auto`; an entry it cannot read
            // is dropped (the next request probes again).
            client_auth: v
                .get("client_auth")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|l| {
                            Some(crate::spec::LearnedClientAuth {
                                token_url: l.get("token_url")?.as_str()?.to_owned(),
                                client_id: l.get("client_id")?.as_str()?.to_owned(),
                                method: crate::spec::ClientAuthMethod::from_name(
                                    l.get("method")?.as_str()?,
                                )?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The folder of cached tokens.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use specauth::session::{StoredToken, TokenStore};
/// use specauth::{Secret, Token};
/// let store = TokenStore::new(dir.path());
/// let saved = StoredToken {
///     provider: "acme".into(), profile: "default".into(), obtained_at: 1,
///     token: Token::bearer(Secret::new("t")), inputs: Default::default(),
///     dpop_key: None, resources: Vec::new(), issuer: None,
///     endpoints: Default::default(),
///     refresh_margin: 0,
///     client_auth: Vec::new(),
/// };
/// store.save(&saved).unwrap();
/// assert_eq!(store.load("acme", "default").unwrap(), Some(saved));
/// ```
#[derive(Clone, Debug)]
pub struct TokenStore {
    /// The folder of the default owner, holding `owners/OWNER` folders.
    base: PathBuf,
    /// The folder of this handle's owner.
    root: PathBuf,
    owner: String,
    lock_timeout: Duration,
    sealer: Option<crate::store::seal::Sealer>,
}

/// An exclusive refresh lock on one provider + profile's entry, from any
/// [`Store`](crate::store::Store); released when dropped.
pub struct StoreLock {
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// A lock released when `guard` is dropped: for [`Store`](crate::store::Store)
    /// implementations outside this crate.
    pub fn new(guard: impl Send + Sync + 'static) -> StoreLock {
        StoreLock {
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

impl TokenStore {
    /// A store in `root` (created on first save, with mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        TokenStore {
            base: root.clone(),
            root,
            owner: String::new(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            sealer: None,
        }
    }

    /// Seals the tokens of entries this store writes with `keys` (the current key), and opens
    /// sealed entries with any of them. Provider, profile and expiry stay readable in the file;
    /// the tokens, inputs and extras are sealed. Plain entries written before still load.
    #[cfg(feature = "encryption")]
    pub fn with_encryption(mut self, keys: impl crate::store::KeySource + 'static) -> Self {
        self.sealer = Some(crate::store::seal::Sealer(std::sync::Arc::new(keys)));
        self
    }

    /// How long [`TokenStore::lock`] waits for another process before it gives up (default
    /// 60 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The platform's data folder for specauth (`$XDG_DATA_HOME/specauth` on Linux,
    /// `~/Library/Application Support/specauth` on macOS, `%APPDATA%\specauth` on Windows).
    pub fn default_root() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "specauth").map(|d| d.data_dir().to_path_buf())
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, provider: &str, profile: &str, ext: &str) -> Result<PathBuf, Error> {
        crate::store::check_name("provider", provider, false)?;
        crate::store::check_name("profile", profile, false)?;
        Ok(self.root.join(format!("{provider}@{profile}.{ext}")))
    }

    /// The entry from a file's text: plain, or sealed (`{"sealed", "key_id", …}`).
    fn parse_entry(
        &self,
        text: &str,
        provider: Option<(&str, &str)>,
    ) -> Option<Result<StoredToken, Error>> {
        let v = serde_json::from_str::<Value>(text).ok()?;
        let Some(body) = v.get("sealed").and_then(Value::as_str) else {
            return StoredToken::from_json(&v).map(Ok);
        };
        let (p, q) = match provider {
            Some(pq) => pq,
            None => (v.get("provider")?.as_str()?, v.get("profile")?.as_str()?),
        };
        let record = crate::store::Record {
            expires_at: None,
            refreshable: false,
            obtained_at: 0,
            key_id: Some(v.get("key_id")?.as_str()?.to_owned()),
            body: body.to_owned(),
        };
        Some(record.decode(&self.owner, p, q, self.sealer.as_ref()))
    }

    /// What a file holds for `entry`: the entry, or its record when the store seals.
    fn serialise(&self, entry: &StoredToken) -> Result<Value, Error> {
        let Some(sealer) = &self.sealer else {
            return Ok(entry.to_json());
        };
        let r = crate::store::Record::encode(&self.owner, entry, Some(sealer))?;
        Ok(json!({
            "provider": entry.provider,
            "profile": entry.profile,
            "obtained_at": r.obtained_at,
            "expires_at": r.expires_at,
            "refreshable": r.refreshable,
            "key_id": r.key_id,
            "sealed": r.body,
        }))
    }

    /// The cached token of `provider` + `profile`, if any. A file that cannot be read as a
    /// token is an error (it is never silently replaced).
    pub fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, Error> {
        let path = self.file(provider, profile, "json")?;
        if !self.check_root()? {
            return Ok(None);
        }
        let Some(text) = crate::files::read_text_no_follow(&path, MAX_ENTRY_BYTES)? else {
            return Ok(None);
        };
        match self.parse_entry(&text, Some((provider, profile))) {
            Some(Ok(entry)) => Ok(Some(entry)),
            Some(Err(e)) => Err(e),
            None => Err(Error::Usage(format!(
                "{} is not a specauth token file; remove it or log in again",
                path.display()
            ))),
        }
    }

    /// Saves atomically: a temporary file in the same folder is written, synced and renamed
    /// over the old one.
    pub fn save(&self, entry: &StoredToken) -> Result<(), Error> {
        let path = self.file(&entry.provider, &entry.profile, "json")?;
        let content = self.serialise(entry)?;
        self.ensure_root()?;
        let tmp = self.root.join(format!(
            ".{}@{}.{}.tmp",
            entry.provider,
            entry.profile,
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            // `create_new`: a file (or a symbolic link) planted at the temporary path is never
            // written through.
            let _ = fs::remove_file(&tmp);
            let mut f = private(true).create_new(true).open(&tmp)?;
            f.write_all(content.to_string().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            // Make the rename itself durable.
            if let Ok(dir) = File::open(&self.root) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("write", &path, e)
        })?;
        // A process killed between writing and renaming leaves its temporary file behind, with
        // a token in it; sweep those that are certainly abandoned.
        self.remove_temporaries(&entry.provider, &entry.profile, Some(STALE_TMP));
        Ok(())
    }

    /// Deletes the cached token; `Ok(false)` when there was none. Temporary files left by
    /// killed writers go too, so no copy of the token stays behind.
    pub fn remove(&self, provider: &str, profile: &str) -> Result<bool, Error> {
        let path = self.file(provider, profile, "json")?;
        self.remove_temporaries(provider, profile, None);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Waits until this process holds the exclusive lock of `provider` + `profile`, at most
    /// the store's lock timeout.
    pub fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, Error> {
        let path = self.file(provider, profile, "lock")?;
        self.ensure_root()?;
        let file = no_follow(private(false))
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let deadline = std::time::Instant::now() + self.lock_timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock::new(file)),
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::io(
                        "lock",
                        &path,
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "another process has held the lock for more than {} s",
                                self.lock_timeout.as_secs()
                            ),
                        ),
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
        }
    }

    /// Every cached entry, sorted by provider then profile. Unreadable files are skipped.
    pub fn list(&self) -> Result<Vec<StoredToken>, Error> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &self.root, e)),
        };
        self.check_root()?;
        let mut out: Vec<StoredToken> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .filter_map(|p| {
                crate::files::read_text_no_follow(&p, MAX_ENTRY_BYTES)
                    .ok()
                    .flatten()
            })
            .filter_map(|t| self.parse_entry(&t, None).and_then(Result::ok))
            .collect();
        out.sort_by(|a, b| (&a.provider, &a.profile).cmp(&(&b.provider, &b.profile)));
        Ok(out)
    }

    /// Removes `.PROVIDER@PROFILE.PID.tmp` files (only those older than `min_age`, if given).
    fn remove_temporaries(&self, provider: &str, profile: &str, min_age: Option<Duration>) {
        let Ok(rd) = fs::read_dir(&self.root) else {
            return;
        };
        let prefix = format!(".{provider}@{profile}.");
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".tmp"))
            else {
                continue;
            };
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let old_enough = min_age.is_none_or(|age| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|elapsed| elapsed >= age)
            });
            if old_enough {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// The folders of every owner: `(owner, folder)`, the default owner first.
    fn owner_folders(&self) -> Vec<(String, PathBuf)> {
        let mut out = vec![(String::new(), self.base.clone())];
        if let Ok(rd) = fs::read_dir(self.base.join("owners")) {
            let mut owners: Vec<_> = rd
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| crate::store::check_name("owner", n, false).is_ok())
                .collect();
            owners.sort();
            out.extend(owners.into_iter().map(|o| {
                let dir = self.base.join("owners").join(&o);
                (o, dir)
            }));
        }
        out
    }

    fn ensure_root(&self) -> Result<(), Error> {
        if !self.owner.is_empty() {
            // The owners' parent folder is private too.
            let parent = self.base.join("owners");
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder
                .create(&parent)
                .map_err(|e| Error::io("create", &parent, e))?;
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(&self.root)
            .map_err(|e| Error::io("create", &self.root, e))?;
        self.check_root().map(|_| ())
    }

    /// Whether the folder exists; an error when it exists but others could plant files in it:
    /// not a folder (a symbolic link included), not the user's own, or writable by group or
    /// others.
    fn check_root(&self) -> Result<bool, Error> {
        let meta = match fs::symlink_metadata(&self.root) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read", &self.root, e)),
        };
        let refuse = |why: &str| {
            Err(Error::io(
                "use",
                &self.root,
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{why}; a token store must be a folder only you can write (mode 0700)"),
                ),
            ))
        };
        if !meta.is_dir() {
            return refuse("it is not a folder");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return refuse(&format!("it belongs to user {}, not to you", meta.uid()));
            }
            if meta.mode() & 0o022 != 0 {
                return refuse(&format!(
                    "its mode {:o} lets group or others write in it",
                    meta.mode() & 0o777
                ));
            }
        }
        Ok(true)
    }
}

/// `options` that refuse to open a symbolic link (Unix).
fn no_follow(mut options: OpenOptions) -> OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Owner-only (0600) options: created if needed, truncated or kept as `truncate` says, and
/// readable too when kept (a lock file is opened for reading and writing).
fn private(truncate: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true)
        .create(true)
        .truncate(truncate)
        .read(!truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o
}

impl crate::store::Store for TokenStore {
    fn load(&self, provider: &str, profile: &str) -> Result<Option<StoredToken>, Error> {
        TokenStore::load(self, provider, profile)
    }
    fn save(&self, entry: &StoredToken) -> Result<(), Error> {
        TokenStore::save(self, entry)
    }
    fn remove(&self, provider: &str, profile: &str) -> Result<bool, Error> {
        TokenStore::remove(self, provider, profile)
    }
    fn list(&self) -> Result<Vec<StoredToken>, Error> {
        TokenStore::list(self)
    }
    fn lock(&self, provider: &str, profile: &str) -> Result<StoreLock, Error> {
        TokenStore::lock(self, provider, profile)
    }
    fn owner(&self) -> &str {
        &self.owner
    }
    fn for_owner(&self, owner: &str) -> Result<Self, Error> {
        crate::store::check_name("owner", owner, true)?;
        let root = if owner.is_empty() {
            self.base.clone()
        } else {
            self.base.join("owners").join(owner)
        };
        Ok(TokenStore {
            root,
            owner: owner.to_owned(),
            ..self.clone()
        })
    }
    fn expiring(&self, before: u64, limit: usize) -> Result<Vec<crate::store::Connection>, Error> {
        let mut out = Vec::new();
        for (owner, _) in self.owner_folders() {
            let handle = crate::store::Store::for_owner(self, &owner)?;
            for e in handle.list()? {
                if e.token.refresh_token.is_some()
                    && e.token.expires_at.is_some_and(|t| t <= before)
                {
                    out.push(crate::store::Connection {
                        owner: owner.clone(),
                        provider: e.provider,
                        profile: e.profile,
                        expires_at: e.token.expires_at,
                    });
                }
            }
        }
        out.sort_by_key(|c| c.expires_at);
        out.truncate(limit);
        Ok(out)
    }
}
