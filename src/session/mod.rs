//! Signing in and keeping a token fresh: the flows the `specauth` CLI runs, as library calls
//! (feature `session`).
//!
//! - [`browser_login`]: authorization code with PKCE and `state`, a redirect listener on
//!   127.0.0.1, and the code exchange, in one call ([`BrowserLogin`] when you need the steps).
//! - [`device_login`]: the device flow (RFC 8628), polling with an injected [`Clock`].
//! - [`mcp_login`]: signing in to an MCP server from its URL alone (RFC 9728 discovery,
//!   dynamic registration, PKCE, resource indicators, the `iss` check).
//! - [`fresh_token`]: a cached token that stays valid for a while, refreshed single-flight
//!   across processes through a [`Store`]'s lock: the CLI's [`TokenStore`] (a folder of
//!   files), or SQLite and PostgreSQL for applications ([`crate::store`]).
//! - [`logout`] and [`revoke`]: revocation at the provider, and what the cache keeps after it.
//! - [`InputSources`]: where inputs come from (given values, `SPECAUTH_<NAME>` variables, the
//!   [`Profiles`] file) and in which order.
//!
//! ```no_run
//! use specauth::session::{self, BrowserOptions, TokenStore};
//! use specauth::{Client, Inputs, Loader};
//!
//! let spec = Loader::new().with_dir("my-specs").load("acme")?;
//! let inputs = Inputs::new().with("client_id", "my-app");
//! let client = Client::new();
//! let token = session::browser_login(&client, &spec, &inputs, &BrowserOptions::default(), |url| {
//!     println!("Open {url} to sign in");
//! })?;
//! let store = TokenStore::new("/tmp/tokens");
//! store.save(&session::StoredToken::new(&spec, "default", token.token, &token.inputs))?;
//! let entry = session::fresh_token(&client, &spec, &store, "default", &Inputs::new(), 60)?;
//! println!("{}", entry.token.access_token.secret());
//! # Ok::<(), specauth::Error>(())
//! ```

mod device;
mod login;
mod mcp;
mod profiles;
mod store;

use crate::client::Client;
use crate::error::{Error, NotSignedInReason};
use crate::inputs::Inputs;
use crate::spec::{RequestKind, Spec};
use crate::store::Store;
use crate::transport::Transport;

pub use device::{Clock, DeviceOptions, SystemClock, device_login, device_login_bound};
pub use login::check_iss;
pub use login::{
    BrowserLogin, BrowserOptions, LoggedIn, Pkce, Redirect, RedirectListener, browser_login,
    random_string,
};
pub use mcp::{McpLogin, McpOptions, bearer_challenge, mcp_login};
pub use profiles::{InputSources, Profiles};
pub use store::{StoreLock, StoredToken, TokenStore};

/// The clock the session layer judges expiry by: seconds since the Unix epoch (the crate's one
/// clock, so a caller checking a cached token agrees with [`fresh_token`]).
pub fn now() -> u64 {
    crate::client::now()
}

/// A token for `profile` of `spec` from `store` that stays valid for at least `min_valid`
/// seconds, refreshing it first when needed. When the provider's tokens live less than
/// `min_valid`, a token another process refreshed while this one waited for the lock is used
/// as it is.
///
/// Refresh is single-flight across processes: the store's lock is taken, the cache read again
/// (another process may have refreshed while this one waited), and only then is the refresh
/// grant sent. `secrets` supplies the secret inputs the refresh needs (`client_secret`); the
/// non-secret ones come from the cache entry. A refresh the provider refuses with
/// `invalid_grant` is [`Error::NotSignedIn`] with
/// [`RefreshRefused`](crate::error::NotSignedInReason::RefreshRefused): sign in again.
///
/// `store` is any [`Store`]: the CLI's [`TokenStore`], or an application's SQLite or PostgreSQL
/// store (one owner's handle).
pub fn fresh_token<T: Transport, S: Store + ?Sized>(
    client: &Client<T>,
    spec: &Spec,
    store: &S,
    profile: &str,
    secrets: &Inputs,
    min_valid: u64,
) -> Result<StoredToken, Error> {
    refresh_if_needed(client, spec, store, profile, secrets, min_valid, &|| {})
        .map(|(entry, _)| entry)
}

/// [`fresh_token`], and whether this call sent the refresh (`false` when the cached token, or
/// one another caller refreshed meanwhile, was used). `before_send` runs (under the lock) just
/// before the refresh grant is sent: refresh-ahead paces its requests there.
pub(crate) fn refresh_if_needed<T: Transport, S: Store + ?Sized>(
    client: &Client<T>,
    spec: &Spec,
    store: &S,
    profile: &str,
    secrets: &Inputs,
    min_valid: u64,
    before_send: &dyn Fn(),
) -> Result<(StoredToken, bool), Error> {
    let key = spec.id();
    // The spec may ask for tokens to be refreshed early (`token.refresh_margin`).
    let min_valid = min_valid.max(spec.refresh_margin());
    let missing = || Error::NotSignedIn {
        provider: key.to_owned(),
        profile: profile.to_owned(),
        reason: NotSignedInReason::NoEntry,
        refusal: None,
    };
    let entry = store.load(key, profile)?.ok_or_else(missing)?;
    if !entry.token.expires_within(now(), min_valid) {
        return Ok((entry, false));
    }
    let seen = entry.token.access_token;
    let _lock = store.lock(key, profile)?;
    let entry = store.load(key, profile)?.ok_or_else(missing)?;
    // Another process refreshed while this one waited. Its token is as fresh as a refresh here
    // would give, even when the provider's lifetime is shorter than `min_valid`: use it rather
    // than refresh once per waiting process.
    let replaced = entry.token.access_token != seen && !entry.token.expires_within(now(), 0);
    if replaced || !entry.token.expires_within(now(), min_valid) {
        tracing::debug!("another process refreshed {key}@{profile} while this one waited");
        return Ok((entry, false));
    }
    // A spec whose `refresh_token` grant sends the current access token rather than a refresh
    // token (it declares an `access_token` input and its refresh does not need a refresh token)
    // refreshes by exchanging the access token.
    let takes_access = spec.inputs().any(|(name, _)| name == "access_token");
    let exchanges_access = takes_access
        && spec
            .required_inputs("refresh_token")
            .is_some_and(|needed| !needed.contains(&"refresh_token"));
    let refresh = entry.token.refresh_token.clone();
    if refresh.is_none() && !exchanges_access {
        return Err(Error::NotSignedIn {
            provider: key.to_owned(),
            profile: profile.to_owned(),
            reason: NotSignedInReason::ExpiredWithoutRefresh,
            refusal: None,
        });
    }
    let mut inputs = entry.inputs_with(secrets);
    if let Some(refresh) = &refresh {
        inputs.set("refresh_token", refresh.secret());
    }
    if takes_access {
        inputs.set("access_token", entry.token.access_token.secret());
    }
    entry.recall_client_auth(client);
    before_send();
    // A DPoP-bound refresh token is refreshed with the same key (RFC 9449 §5).
    let sent = match entry.dpop()? {
        Some(key) => crate::dpop::send(client, spec, "refresh_token", &inputs, &key, &mut None)
            .and_then(|outcome| {
                outcome
                    .into_token()
                    .ok_or_else(|| Error::Usage("the refresh returned no token".to_owned()))
            }),
        None => client.token(spec, "refresh_token", &inputs),
    };
    let token = match sent {
        Ok(token) => token,
        // RFC 6749 §5.2: the refresh token is invalid, expired or revoked. Only signing in
        // again helps; the entry stays, so a later login under the lock replaces it.
        Err(Error::Provider(p)) if p.code.as_deref() == Some("invalid_grant") => {
            return Err(Error::NotSignedIn {
                provider: key.to_owned(),
                profile: profile.to_owned(),
                reason: NotSignedInReason::RefreshRefused,
                refusal: Some(p),
            });
        }
        Err(e) => return Err(e),
    };
    let mut updated = StoredToken {
        token,
        obtained_at: now(),
        ..entry
    };
    // A refresh the server answered with a bearer token: the key no longer binds anything.
    if updated.dpop_key.is_some() && !crate::dpop::binds(&updated.token) {
        tracing::warn!(
            "the refresh of a DPoP-bound token got token_type `{}`: the new token is a bearer token",
            updated.token.token_type
        );
        updated.dpop_key = None;
    }
    updated.keep_client_auth(client);
    store.save(&updated)?;
    Ok((updated, true))
}

/// Which of a cached entry's tokens a revoke or introspect request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WhichToken {
    /// The refresh token when there is one, else the access token.
    #[default]
    Preferred,
    /// The access token.
    Access,
    /// The refresh token.
    Refresh,
}

/// The inputs for a revoke or introspect request about a cached token: the entry's stored
/// inputs under `given`, with `token` (and `token_type_hint`, where the spec takes one) set.
/// When `given` already carries a `token`, it is used as it is and no cache is needed.
pub fn token_request_inputs<S: Store + ?Sized>(
    spec: &Spec,
    store: &S,
    profile: &str,
    given: &Inputs,
    which: WhichToken,
    kind: &RequestKind,
) -> Result<Inputs, Error> {
    if given.contains("token") {
        return Ok(given.clone());
    }
    let entry = store
        .load(spec.id(), profile)?
        .ok_or_else(|| Error::NotSignedIn {
            provider: spec.id().to_owned(),
            profile: profile.to_owned(),
            reason: NotSignedInReason::NoEntry,
            refusal: None,
        })?;
    // The spec's `tokens:` says which types the endpoint takes (an endpoint that revokes
    // access tokens only must never be sent a refresh token).
    let takes_refresh = spec.takes_token(kind, "refresh_token");
    let takes_access = spec.takes_token(kind, "access_token");
    let refresh = entry.token.refresh_token.as_ref().filter(|_| takes_refresh);
    let (token, hint) = match (which, refresh) {
        (WhichToken::Access, _) | (WhichToken::Preferred, None) if takes_access => {
            (entry.token.access_token.clone(), "access_token")
        }
        (WhichToken::Refresh | WhichToken::Preferred, Some(r)) => (r.clone(), "refresh_token"),
        (WhichToken::Refresh, None) if takes_refresh => {
            return Err(Error::Usage(
                "the cached token has no refresh token".to_owned(),
            ));
        }
        (which, _) => {
            let wanted = match which {
                WhichToken::Refresh => "refresh",
                _ => "access",
            };
            return Err(Error::Usage(format!(
                "spec `{}`: its {kind} takes no {wanted} tokens (its `tokens:` names {})",
                spec.id(),
                if takes_access {
                    "access_token"
                } else {
                    "refresh_token"
                }
            )));
        }
    };
    let mut inputs = entry.inputs_with(given);
    set_token(spec, &mut inputs, token.secret(), hint);
    Ok(inputs)
}

/// Revokes a token at the provider (RFC 7009). When it was the cached entry's token, the cache
/// forgets it: a revoked refresh token takes the whole entry with it (the access token goes
/// with it at most providers), a revoked access token leaves the entry's refresh token.
pub fn revoke<T: Transport, S: Store + ?Sized>(
    client: &Client<T>,
    spec: &Spec,
    store: &S,
    profile: &str,
    inputs: &Inputs,
) -> Result<(), Error> {
    client.send(spec, RequestKind::Revocation, inputs)?;
    let Some(token) = inputs.get("token") else {
        return Ok(());
    };
    if store.load(spec.id(), profile)?.is_none() {
        return Ok(());
    }
    let _lock = store.lock(spec.id(), profile)?;
    let Some(mut entry) = store.load(spec.id(), profile)? else {
        return Ok(());
    };
    if entry
        .token
        .refresh_token
        .as_ref()
        .is_some_and(|r| r.secret() == token)
    {
        store.remove(spec.id(), profile)?;
    } else if entry.token.access_token.secret() == token {
        if entry.token.refresh_token.is_some() {
            // Keep the refresh token; the next use refreshes.
            entry.token.expires_at = Some(0);
            entry.token.expires_in = Some(0);
            store.save(&entry)?;
        } else {
            store.remove(spec.id(), profile)?;
        }
    }
    Ok(())
}

/// What [`logout`] did.
#[derive(Debug)]
pub enum LoggedOut {
    /// There was no cached token.
    NothingCached,
    /// The tokens were revoked (when the spec can) and the entry forgotten.
    Forgotten {
        /// Whether the provider was asked to revoke them.
        revoked: bool,
    },
    /// Revocation failed, so the entry was kept: the tokens may still be live at the provider,
    /// and forgetting them would leave no way to revoke them later.
    Kept(Error),
}

/// Signs out: revokes the cached refresh and access tokens when the spec has a revocation
/// endpoint, then forgets the entry. When a revocation fails the entry is kept, unless
/// `force`, in which case it is forgotten anyway and the failure returned.
///
/// Runs under the store's lock, so a refresh in flight finishes first and the token it saves is
/// the one revoked.
pub fn logout<T: Transport, S: Store + ?Sized>(
    client: &Client<T>,
    spec: &Spec,
    store: &S,
    profile: &str,
    inputs: &Inputs,
    force: bool,
) -> Result<LoggedOut, Error> {
    if store.load(spec.id(), profile)?.is_none() {
        return Ok(LoggedOut::NothingCached);
    }
    let _lock = store.lock(spec.id(), profile)?;
    let Some(entry) = store.load(spec.id(), profile)? else {
        return Ok(LoggedOut::NothingCached);
    };
    let can_revoke = spec.supports(&RequestKind::Revocation);
    let mut failure = None;
    if can_revoke {
        let tokens = [
            ("refresh_token", entry.token.refresh_token.clone()),
            ("access_token", Some(entry.token.access_token.clone())),
        ];
        for (hint, token) in tokens {
            let Some(token) = token else { continue };
            if !spec.takes_token(&RequestKind::Revocation, hint) {
                continue;
            }
            let mut req = entry.inputs_with(inputs);
            set_token(spec, &mut req, token.secret(), hint);
            if let Err(e) = client.send(spec, RequestKind::Revocation, &req) {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) if !force => Ok(LoggedOut::Kept(e)),
        failure => {
            store.remove(spec.id(), profile)?;
            match failure {
                Some(e) => Err(e),
                None => Ok(LoggedOut::Forgotten {
                    revoked: can_revoke,
                }),
            }
        }
    }
}

/// The token a revoke or introspect request is about, with its hint where the spec takes one.
fn set_token(spec: &Spec, inputs: &mut Inputs, token: &str, hint: &str) {
    inputs.set("token", token);
    if spec.inputs().any(|(n, _)| n == "token_type_hint") {
        inputs.set("token_type_hint", hint);
    }
}
