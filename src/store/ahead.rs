//! Refresh-ahead: refresh the connections that expire within a margin before anyone asks for
//! them, and tell the application whenever a token changes or a connection needs a new sign-in.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{Error, NotSignedInReason};
use crate::inputs::Inputs;
use crate::session::StoredToken;
use crate::spec::Spec;
use crate::transport::Transport;

use super::{Connection, Store};

/// The longest wait between two retries of one refresh, a provider's `Retry-After` included.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What happened to a connection during a [`RefreshAhead`] pass.
#[derive(Debug)]
#[non_exhaustive]
pub enum RefreshEvent<'e> {
    /// The token was refreshed: `entry` is what the store now holds (a rotated refresh token
    /// included). This is the "my token rotated" hook.
    Refreshed {
        /// Which connection.
        connection: &'e Connection,
        /// The new entry.
        entry: &'e StoredToken,
    },
    /// The refresh failed after its retries. With `needs_sign_in` the failure is for good
    /// (`invalid_grant`, or no refresh token): the user must sign in again, and the
    /// connection is not retried until its entry changes.
    Failed {
        /// Which connection.
        connection: &'e Connection,
        /// Why.
        error: &'e Error,
        /// Whether only a new sign-in can fix it.
        needs_sign_in: bool,
    },
}

/// The counts of one [`RefreshAhead::run_once`] pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Connections the store listed as expiring within the margin.
    pub due: usize,
    /// Refreshed by this pass.
    pub refreshed: usize,
    /// Already fresh when their turn came (another caller refreshed them).
    pub fresh: usize,
    /// Failed after their retries (including those needing a sign-in).
    pub failed: usize,
    /// Failed for good: the user must sign in again.
    pub needs_sign_in: usize,
    /// Skipped: no spec was given for their provider, or they failed for good before and have
    /// not changed since.
    pub skipped: usize,
}

type Listener<'a> = Box<dyn Fn(&RefreshEvent<'_>) + Send + Sync + 'a>;
type ConnectionKey = (String, String, String);

/// Keeps a store's connections fresh: each pass lists the connections (of every owner) that
/// expire within the margin and refreshes them through
/// [`fresh_token`](crate::session::fresh_token), so the store's refresh lock keeps every
/// refresh single-flight even when requests and several instances' refresh-ahead run at once.
///
/// - at most `concurrency` refreshes in flight (default 4);
/// - per provider, refresh requests are sent at least `pace` apart (default none), a rate
///   limit that holds across passes;
/// - a transport failure, a 5xx or a 429 is retried `retries` times (default 3), waiting
///   `backoff` × 2ⁿ plus random jitter (default 500 ms), or as long as the provider's
///   `Retry-After` asks when that is longer, at most 30 s; a `Retry-After` also holds back the
///   provider's other refreshes until it has passed;
/// - `on_event` hears every refresh and every failure; `invalid_grant` is reported as
///   `needs_sign_in` once, and the connection is left alone until its entry changes.
///
/// ```no_run
/// use specauth::store::{RefreshAhead, RefreshEvent, TokenStore};
/// use specauth::{Client, Inputs, Loader};
///
/// let store = TokenStore::new("/var/lib/my-app/tokens");
/// let spec = Loader::new().with_dir("specs").load("acme")?;
/// let client = Client::new();
/// let ahead = RefreshAhead::new(&client, &store)
///     .provider(&spec, Inputs::new().with("client_secret", "…"))
///     .margin(300)
///     .on_event(|e| match e {
///         RefreshEvent::Refreshed { connection, .. } => println!("rotated {connection:?}"),
///         RefreshEvent::Failed { connection, needs_sign_in: true, .. } => {
///             println!("{connection:?} must sign in again")
///         }
///         _ => {}
///     });
/// let pass = ahead.run_once()?;
/// println!("{} refreshed", pass.refreshed);
/// # Ok::<(), specauth::Error>(())
/// ```
pub struct RefreshAhead<'a, T: Transport, S: Store> {
    client: &'a Client<T>,
    store: &'a S,
    providers: HashMap<String, (&'a Spec, Inputs)>,
    margin: u64,
    concurrency: usize,
    pace: Duration,
    retries: u32,
    backoff: Duration,
    batch: usize,
    listener: Option<Listener<'a>>,
    /// Per provider, the earliest moment its next refresh request may be sent (the pace and
    /// any `Retry-After`), kept from one pass to the next.
    next_send: Mutex<HashMap<String, Instant>>,
    /// Connections that failed for good, with a digest of the entry that failed: the
    /// connection is left alone until the store holds another entry (a new sign-in).
    gave_up: Mutex<HashMap<ConnectionKey, [u8; 32]>>,
}

impl<'a, T: Transport + Sync, S: Store> RefreshAhead<'a, T, S> {
    /// Refresh-ahead over `store` (every owner's connections), sending with `client`.
    pub fn new(client: &'a Client<T>, store: &'a S) -> Self {
        RefreshAhead {
            client,
            store,
            providers: HashMap::new(),
            margin: 300,
            concurrency: 4,
            pace: Duration::ZERO,
            retries: 3,
            backoff: Duration::from_millis(500),
            batch: 10_000,
            listener: None,
            next_send: Mutex::default(),
            gave_up: Mutex::default(),
        }
    }

    /// Refreshes connections of `spec`'s provider, with `secrets` (the `client_secret`…)
    /// added to each entry's stored inputs. Connections of providers not given are skipped.
    pub fn provider(mut self, spec: &'a Spec, secrets: Inputs) -> Self {
        self.providers.insert(spec.id().to_owned(), (spec, secrets));
        self
    }

    /// Refreshes tokens that expire within `seconds` (default 300).
    pub fn margin(mut self, seconds: u64) -> Self {
        self.margin = seconds;
        self
    }

    /// At most `n` refreshes at once (default 4; at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sends one provider's refresh requests at least `interval` apart (default: no pacing),
    /// across passes. The wait happens under the connection's refresh lock, so keep
    /// `interval` × `concurrency` well below the store's lease.
    pub fn pace(mut self, interval: Duration) -> Self {
        self.pace = interval;
        self
    }

    /// Retries a refresh that failed on the way (transport, 5xx, 429) `retries` times, waiting
    /// `backoff` × 2ⁿ plus jitter between tries (defaults 3 and 500 ms), or the reply's
    /// `Retry-After` when longer (at most 30 s). The `Retry-After` is read from the provider
    /// error's `retry_after` extra (seconds), which the `oauth2` base spec maps from the header.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Looks at most `limit` due connections per pass, soonest first (default 10,000).
    pub fn batch(mut self, limit: usize) -> Self {
        self.batch = limit.max(1);
        self
    }

    /// Calls `listener` for every refresh and every failure (from the worker threads).
    pub fn on_event(mut self, listener: impl Fn(&RefreshEvent<'_>) + Send + Sync + 'a) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// One pass: refreshes what is due now, and returns when all of it is done.
    pub fn run_once(&self) -> Result<Pass, Error> {
        let before = crate::client::now().saturating_add(self.margin);
        let due = self.store.expiring(before, self.batch)?;
        let counts = Counts::default();
        counts.due.store(due.len(), Ordering::Relaxed);
        let queue = Mutex::new(VecDeque::from(due));
        std::thread::scope(|scope| {
            for _ in 0..self.concurrency {
                scope.spawn(|| {
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .pop_front();
                        let Some(connection) = next else { break };
                        self.refresh_one(&connection, &counts);
                    }
                });
            }
        });
        Ok(counts.into_pass())
    }

    /// Runs a pass every `every` until `stop` is set (checked at least every 100 ms). A pass
    /// that cannot list the store is retried at the next tick.
    pub fn run(&self, every: Duration, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            if let Err(e) = self.run_once() {
                tracing::warn!("refresh-ahead pass failed: {e}");
            }
            while !stop.load(Ordering::Relaxed) && started.elapsed() < every {
                std::thread::sleep(
                    (every - started.elapsed().min(every)).min(Duration::from_millis(100)),
                );
            }
        }
    }

    fn refresh_one(&self, connection: &Connection, counts: &Counts) {
        let Some((spec, secrets)) = self.providers.get(&connection.provider) else {
            counts.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let key = (
            connection.owner.clone(),
            connection.provider.clone(),
            connection.profile.clone(),
        );
        let handle = match self.store.for_owner(&connection.owner) {
            Ok(h) => h,
            Err(e) => return self.failed(connection, &e, false, counts),
        };
        // A connection that failed for good stays alone until its entry changes (a new sign-in).
        let gave_up_on = self
            .gave_up
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some(digest) = gave_up_on {
            match handle.load(&connection.provider, &connection.profile) {
                Ok(Some(e)) if fingerprint(&e) != digest => {
                    self.gave_up
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&key);
                }
                _ => {
                    counts.skipped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        let mut attempt = 0;
        loop {
            let result = crate::session::refresh_if_needed(
                self.client,
                spec,
                &handle,
                &connection.profile,
                secrets,
                self.margin,
                &|| self.wait_for_turn(&connection.provider),
            );
            match result {
                Ok((entry, true)) => {
                    counts.refreshed.fetch_add(1, Ordering::Relaxed);
                    self.emit(&RefreshEvent::Refreshed {
                        connection,
                        entry: &entry,
                    });
                    return;
                }
                Ok((_, false)) => {
                    counts.fresh.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) if attempt < self.retries && transient(&e) => {
                    let wait = self
                        .backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(MAX_BACKOFF);
                    let jitter =
                        Duration::from_millis(super::jitter(wait.as_millis().max(1) as u64));
                    let asked = retry_after(&e).map(|a| a.min(MAX_BACKOFF));
                    if let Some(asked) = asked {
                        self.hold_off(&connection.provider, Instant::now() + asked);
                    }
                    let wait = (wait + jitter)
                        .min(MAX_BACKOFF)
                        .max(asked.unwrap_or_default());
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(e) => {
                    let for_good = needs_sign_in(&e);
                    if for_good
                        && let Ok(Some(entry)) =
                            handle.load(&connection.provider, &connection.profile)
                    {
                        self.gave_up
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(key, fingerprint(&entry));
                    }
                    return self.failed(connection, &e, for_good, counts);
                }
            }
        }
    }

    /// Waits until `provider` may be sent another refresh request (the pace, a `Retry-After`),
    /// and books the slot after it.
    fn wait_for_turn(&self, provider: &str) {
        let start = {
            let mut next = self
                .next_send
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = next
                .get(provider)
                .copied()
                .filter(|t| *t > now)
                .unwrap_or(now);
            next.insert(provider.to_owned(), slot + self.pace);
            slot
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
    }

    /// Sends `provider` no refresh request before `until` (it answered 429 with `Retry-After`).
    fn hold_off(&self, provider: &str, until: Instant) {
        let mut next = self
            .next_send
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = next.entry(provider.to_owned()).or_insert(until);
        *slot = (*slot).max(until);
    }

    fn failed(&self, connection: &Connection, error: &Error, for_good: bool, counts: &Counts) {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        if for_good {
            counts.needs_sign_in.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(
            "refresh-ahead of {}@{} failed: {error}",
            connection.provider,
            connection.profile
        );
        self.emit(&RefreshEvent::Failed {
            connection,
            error,
            needs_sign_in: for_good,
        });
    }

    fn emit(&self, event: &RefreshEvent<'_>) {
        if let Some(listener) = &self.listener {
            listener(event);
        }
    }
}

/// A failure on the way that a later try may not meet: no reply, a 5xx, a 429.
fn transient(e: &Error) -> bool {
    matches!(e, Error::Transport(_))
        || e.status()
            .is_some_and(|s| s == 429 || (500..=599).contains(&s))
}

/// How long the provider asked to wait before trying again: the `retry_after` extra of its
/// refusal (the `oauth2` base spec maps it from the `Retry-After` header), in seconds. The
/// HTTP-date form is not read.
fn retry_after(e: &Error) -> Option<Duration> {
    let Error::Provider(p) = e else { return None };
    let seconds = match p.extra.get("retry_after")? {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// A failure only a new sign-in fixes. `refresh_if_needed` turns the provider's
/// `invalid_grant` into [`NotSignedInReason::RefreshRefused`], so that is how a refused refresh
/// token arrives here (a bare `Error::Provider` never carries `invalid_grant` from it).
fn needs_sign_in(e: &Error) -> bool {
    matches!(
        e,
        Error::NotSignedIn {
            reason: NotSignedInReason::RefreshRefused
                | NotSignedInReason::ExpiredWithoutRefresh
                | NotSignedInReason::NoEntry,
            ..
        }
    )
}

/// What identifies one stored entry: a new sign-in (or any save) gives another digest, even
/// within the same second.
fn fingerprint(entry: &StoredToken) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(entry.to_json().to_string().as_bytes()).into()
}

#[derive(Default)]
struct Counts {
    due: AtomicUsize,
    refreshed: AtomicUsize,
    fresh: AtomicUsize,
    failed: AtomicUsize,
    needs_sign_in: AtomicUsize,
    skipped: AtomicUsize,
}

impl Counts {
    fn into_pass(self) -> Pass {
        Pass {
            due: self.due.into_inner(),
            refreshed: self.refreshed.into_inner(),
            fresh: self.fresh.into_inner(),
            failed: self.failed.into_inner(),
            needs_sign_in: self.needs_sign_in.into_inner(),
            skipped: self.skipped.into_inner(),
        }
    }
}
