//! render → send → normalise in one call.

use crate::error::Error;
use crate::inputs::Inputs;
use crate::spec::Spec;
use crate::token::Token;
use crate::transport::{Transport, UreqTransport};

/// Performs grants: renders the request, sends it through a [`Transport`], normalises the reply.
///
/// ```no_run
/// let spec = specauth::Loader::new().with_dir("my-specs").load("acme")?;
/// let inputs = specauth::Inputs::new()
///     .with("client_id", "app")
///     .with("client_secret", std::env::var("ACME_SECRET").unwrap_or_default())
///     .with("code", "abc");
/// let token = specauth::Client::new().token(&spec, "authorization_code", &inputs)?;
/// println!("expires at {:?}", token.expires_at);
/// # Ok::<(), specauth::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Client<T = UreqTransport> {
    transport: T,
}

impl Client<UreqTransport> {
    /// A client over the default [`UreqTransport`].
    pub fn new() -> Self {
        Client {
            transport: UreqTransport::new(),
        }
    }
}

impl<T: Transport> Client<T> {
    /// A client over any transport (a closure in tests, your own HTTP stack in an application).
    pub fn with_transport(transport: T) -> Self {
        Client { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Performs `grant` of `spec` with `inputs` and returns the normalised token.
    pub fn token(&self, spec: &Spec, grant: &str, inputs: &Inputs) -> Result<Token, Error> {
        let request = spec.render(grant, inputs)?;
        tracing::debug!("→ {grant}\n{}", request.redacted());
        let reply = self.transport.send(request.into_http())?;
        tracing::debug!("← HTTP {}", reply.status());
        spec.normalise(grant, inputs, &reply)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a device-flow poll said (RFC 8628 §3.5).
#[derive(Debug)]
pub enum DevicePoll {
    /// The user approved: the token.
    Token(Box<crate::token::Token>),
    /// Not yet: poll again after the interval (`authorization_pending`).
    Pending,
    /// Poll less often: the interval grows by 5 seconds (`slow_down`).
    SlowDown,
}

impl<T: Transport> Client<T> {
    /// A token for `key` + `profile` from `store` that stays valid for at least `min_valid`
    /// seconds, refreshing it first when needed. When the provider's tokens live less than
    /// `min_valid`, a token another process refreshed while this one waited for the lock is
    /// used as it is.
    ///
    /// Refresh is single-flight across processes: the store's lock is taken, the cache read
    /// again (another process may have refreshed while this one waited), and only then is the
    /// refresh grant sent. `secrets` supplies the secret inputs the refresh needs
    /// (`client_secret`); the non-secret ones come from the cache entry.
    pub fn fresh_token(
        &self,
        spec: &Spec,
        store: &crate::store::TokenStore,
        key: &str,
        profile: &str,
        secrets: &Inputs,
        min_valid: u64,
    ) -> Result<crate::store::StoredToken, Error> {
        let missing = || {
            Error::Usage(format!(
                "no cached token for `{key}` (profile `{profile}`): run `specauth login {key}` first"
            ))
        };
        let entry = store.load(key, profile)?.ok_or_else(missing)?;
        if !entry.token.expires_within(now(), min_valid) {
            return Ok(entry);
        }
        let seen = entry.token.access_token;
        let _lock = store.lock(key, profile)?;
        let entry = store.load(key, profile)?.ok_or_else(missing)?;
        // Another process refreshed while this one waited. Its token is as fresh as a refresh
        // here would give, even when the provider's lifetime is shorter than `min_valid`: use it
        // rather than refresh once per waiting process.
        let replaced = entry.token.access_token != seen && !entry.token.expires_within(now(), 0);
        if replaced || !entry.token.expires_within(now(), min_valid) {
            tracing::debug!("another process refreshed {key}@{profile} while this one waited");
            return Ok(entry);
        }
        let Some(refresh) = entry.token.refresh_token.clone() else {
            return Err(Error::Usage(format!(
                "the cached token for `{key}` (profile `{profile}`) has expired and has no refresh token: run `specauth login {key}` again"
            )));
        };
        let mut inputs = entry.inputs_with(secrets);
        inputs.set("refresh_token", refresh.secret());
        let token = self.token(spec, "refresh_token", &inputs)?;
        let updated = crate::store::StoredToken {
            token,
            obtained_at: now(),
            ..entry
        };
        store.save(&updated)?;
        Ok(updated)
    }

    /// Polls the token endpoint once with the device code (grant `device_code`).
    ///
    /// `authorization_pending` and `slow_down` are not errors here; `access_denied`,
    /// `expired_token` and anything else are returned as the provider's error.
    pub fn poll_device(
        &self,
        spec: &Spec,
        inputs: &Inputs,
        device: &crate::device::DeviceAuthorization,
    ) -> Result<DevicePoll, Error> {
        let mut inputs = inputs.clone();
        inputs.set("device_code", device.device_code.secret());
        match self.token(spec, "device_code", &inputs) {
            Ok(token) => Ok(DevicePoll::Token(Box::new(token))),
            Err(Error::Provider(p)) if p.code.as_deref() == Some("authorization_pending") => {
                Ok(DevicePoll::Pending)
            }
            Err(Error::Provider(p)) if p.code.as_deref() == Some("slow_down") => {
                Ok(DevicePoll::SlowDown)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a non-grant request (`device_authorization`, `revoke`, `introspect`) and returns
    /// the raw reply for the matching `Spec::normalise_*`.
    pub fn send_request(
        &self,
        spec: &Spec,
        name: &str,
        inputs: &Inputs,
    ) -> Result<http::Response<Vec<u8>>, Error> {
        let request = spec.render_request(name, inputs)?;
        tracing::debug!("→ {name}\n{}", request.redacted());
        let reply = self.transport.send(request.into_http())?;
        tracing::debug!("← HTTP {}", reply.status());
        Ok(reply)
    }
}
