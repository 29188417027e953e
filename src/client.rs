//! render → send → normalise in one call.

use crate::error::Error;
use crate::inputs::Inputs;
use crate::spec::{RequestKind, Spec};
use crate::token::{Outcome, Token};
use crate::transport::{AsyncTransport, Transport, UreqTransport};

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
        self.send(spec, RequestKind::grant(grant), inputs)?
            .into_token()
            .ok_or_else(|| Error::Usage(format!("grant `{grant}` returned no token")))
    }

    /// Sends any kind of request of `spec` (a grant, device authorization, revocation,
    /// introspection) and normalises the reply, with the system clock.
    pub fn send(
        &self,
        spec: &Spec,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
    ) -> Result<Outcome, Error> {
        let kind = kind.into();
        let request = spec.render(&kind, inputs)?;
        tracing::debug!("→ {}\n{}", kind.name(), request.redacted());
        let reply = self.transport.send(request.into_http())?;
        tracing::debug!("← HTTP {}", reply.status());
        spec.normalise(&kind, inputs, &reply, now())
    }
}

/// The async twin of [`Client`]: the same methods over an [`AsyncTransport`], for
/// applications on an async runtime (tokio and others). Rendering and normalising are the
/// same code as the sync client's; only the sending awaits.
///
/// The futures it returns are `Send` (given a `Send + Sync` transport), so they can be
/// spawned, and a [`Spec`] clones cheaply into each task.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use specauth::{AsyncClient, Inputs, Spec, TransportError};
/// let spec = Spec::from_yaml("acme.yaml", r#"
/// extends: oauth2
/// endpoints: { token: "https://auth.example.com/token" }
/// "#)?;
/// // Any async closure is a transport; with the `reqwest` feature,
/// // `AsyncClient::new()` sends over reqwest instead.
/// let client = AsyncClient::with_transport(|req: http::Request<Vec<u8>>| async move {
///     assert_eq!(req.uri(), "https://auth.example.com/token");
///     Ok::<_, TransportError>(http::Response::builder().status(200)
///         .header("content-type", "application/json")
///         .body(br#"{"access_token":"22fe","token_type":"bearer","expires_in":3600}"#.to_vec())
///         .unwrap())
/// });
/// let inputs = Inputs::new().with("client_id", "app").with("client_secret", "s3cret");
/// let token = client.token(&spec, "client_credentials", &inputs).await?;
/// assert_eq!(token.access_token.secret(), "22fe");
/// assert_eq!(token.token_type, "Bearer");
/// # Ok::<(), specauth::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct AsyncClient<T> {
    transport: T,
}

#[cfg(feature = "reqwest")]
impl AsyncClient<crate::transport::ReqwestTransport> {
    /// A client over the default [`ReqwestTransport`](crate::transport::ReqwestTransport)
    /// (feature `reqwest`). Fails only when the TLS backend cannot be set up.
    pub fn new() -> Result<Self, Error> {
        Ok(AsyncClient {
            transport: crate::transport::ReqwestTransport::new()?,
        })
    }
}

impl<T: AsyncTransport> AsyncClient<T> {
    /// A client over any async transport (an async closure in tests, your own HTTP stack in an
    /// application).
    pub fn with_transport(transport: T) -> Self {
        AsyncClient { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Performs `grant` of `spec` with `inputs` and returns the normalised token.
    pub async fn token(&self, spec: &Spec, grant: &str, inputs: &Inputs) -> Result<Token, Error> {
        self.send(spec, RequestKind::grant(grant), inputs)
            .await?
            .into_token()
            .ok_or_else(|| Error::Usage(format!("grant `{grant}` returned no token")))
    }

    /// Sends any kind of request of `spec` (a grant, device authorization, revocation,
    /// introspection) and normalises the reply, with the system clock.
    pub async fn send(
        &self,
        spec: &Spec,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
    ) -> Result<Outcome, Error> {
        let kind = kind.into();
        let request = spec.render(&kind, inputs)?;
        tracing::debug!("→ {}\n{}", kind.name(), request.redacted());
        let reply = self.transport.send(request.into_http()).await?;
        tracing::debug!("← HTTP {}", reply.status());
        spec.normalise(&kind, inputs, &reply, now())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
