//! The token where an async application needs it (feature `middleware`): a [`TokenSource`]
//! that keeps a token fresh in memory, and a [`TokenMiddleware`] for
//! [`reqwest-middleware`](https://docs.rs/reqwest-middleware) that puts it on every request.
//!
//! Why reqwest-middleware rather than a `tower` layer: reqwest is the HTTP client Rust
//! applications use, and a `reqwest::Client` is not a `tower::Service`, so a tower layer would
//! only serve hyper-based clients. reqwest-middleware is where reqwest's own cross-cutting
//! concerns live (`reqwest-retry`, `reqwest-tracing`, `http-cache-reqwest`, auth crates), so
//! the token middleware stacks with them in one `ClientBuilder`.
//!
//! What the middleware does for each request:
//!
//! 1. asks the [`TokenSource`] for a token valid for at least [`TokenSource::with_min_valid`]
//!    (60 s by default). When the token is about to expire, **one** refresh runs, however many
//!    requests want it at the same time; the others wait for it and use its result;
//! 2. sets `Authorization: <token type> <access token>` (marked sensitive, so reqwest and
//!    logging middlewares do not show it);
//! 3. when the reply is `401` and the request could be copied (any body that is not a
//!    stream), refreshes the token, again single-flight (a token that another request already
//!    replaced is not refreshed twice), and sends the request **once** more. A second `401` is
//!    returned to the caller as it is: there is no loop.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use specauth::middleware::{TokenMiddleware, TokenSource};
//! use specauth::testing::ReplayServer;
//! use specauth::{Inputs, Spec};
//!
//! // A provider on 127.0.0.1: its token endpoint and an API that wants the token.
//! let server = ReplayServer::with_handler(|req| {
//!     let reply = |status, body: &str| http::Response::builder().status(status)
//!         .header("content-type", "application/json").body(body.as_bytes().to_vec()).unwrap();
//!     match req.url.as_str() {
//!         "/oauth/token" => reply(200, r#"{"access_token":"t1","token_type":"bearer","expires_in":3600}"#),
//!         _ if req.header("authorization") == Some("Bearer t1") => reply(200, r#"{"hello":"world"}"#),
//!         _ => reply(401, r#"{"error":"invalid_token"}"#),
//!     }
//! })?;
//! let spec = Spec::from_yaml("acme.yaml", r#"
//! extends: oauth2
//! endpoints: { token: "https://auth.acme.example/oauth/token" }
//! "#)?.with_origin(&server.origin())?;
//!
//! let source = TokenSource::client_credentials(
//!     spec,
//!     Inputs::new().with("client_id", "app").with("client_secret", "s3cret"),
//! )?;
//! // Your application's reqwest client; here the one specauth builds (rustls, no redirects).
//! let client = specauth::transport::ReqwestTransport::new()?.client().clone();
//! let http = reqwest_middleware::ClientBuilder::new(client)
//!     .with(TokenMiddleware::new(source))
//!     .build();
//! let reply = http.get(format!("{}/api/hello", server.origin())).send().await?;
//! assert_eq!(reply.status(), 200);
//! assert_eq!(server.received()[1].header("authorization"), Some("Bearer t1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! In an application (the README's example, compiled here):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use specauth::middleware::{TokenMiddleware, TokenSource};
//! use specauth::{Inputs, Loader};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let spec = Loader::new().load("spotify")?;
//!     let inputs = Inputs::new()
//!         .with("client_id", std::env::var("SPOTIFY_CLIENT_ID")?)
//!         .with("client_secret", std::env::var("SPOTIFY_CLIENT_SECRET")?);
//!     let source = TokenSource::client_credentials(spec, inputs)? // or ::refresh_token(spec, inputs, rt)
//!         .with_min_valid(Duration::from_secs(60));              // refresh a minute before expiry
//!     // Your application's reqwest client: `reqwest::Client::new()` when your reqwest has a TLS
//!     // feature of its own; here the one specauth builds (rustls, no redirects).
//!     let client = specauth::transport::ReqwestTransport::new()?.client().clone();
//!     let http = reqwest_middleware::ClientBuilder::new(client)
//!         .with(TokenMiddleware::new(source))
//!         .build();
//!     let reply = http.get("https://api.spotify.com/v1/browse/new-releases").send().await?;
//!     println!("{}", reply.status());
//!     Ok(())
//! }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::client::{AsyncClient, now};
use crate::error::{Error, ProviderError, TransportError, TransportErrorKind};
use crate::inputs::Inputs;
use crate::spec::Spec;
use crate::token::Token;
use crate::transport::{AsyncTransport, ReqwestTransport};

/// Keeps one token fresh in memory: obtained with a grant of a spec (client credentials, a
/// refresh token, or any grant that needs no person), refreshed single-flight before it
/// expires. Share it (`Arc`) between middlewares and tasks.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use specauth::middleware::TokenSource;
/// use specauth::{Inputs, Spec, TransportError};
/// let spec = Spec::from_yaml("acme.yaml", r#"
/// extends: oauth2
/// endpoints: { token: "https://auth.acme.example/token" }
/// "#)?;
/// let source = TokenSource::refresh_token(spec, Inputs::new().with("client_id", "app"), "r1")?
///     .with_transport(|req: http::Request<Vec<u8>>| async move {
///         assert!(String::from_utf8_lossy(req.body()).contains("refresh_token=r1"));
///         Ok::<_, TransportError>(http::Response::builder().status(200)
///             .header("content-type", "application/json")
///             .body(br#"{"access_token":"a2","expires_in":3600}"#.to_vec()).unwrap())
///     });
/// let token = source.token().await?;
/// assert_eq!(token.access_token.secret(), "a2");
/// // The reply named no new refresh token: the old one is kept for the next refresh.
/// assert_eq!(token.refresh_token.as_ref().map(|r| r.secret()), Some("r1"));
/// # Ok::<(), specauth::Error>(())
/// # }).unwrap();
/// ```
pub struct TokenSource {
    spec: Spec,
    grant: String,
    inputs: Inputs,
    client: AsyncClient<Arc<dyn AsyncTransport>>,
    current: RwLock<Option<Arc<Token>>>,
    /// Held while a refresh runs: the single flight. It holds the last refresh's failure, so
    /// the requests that waited for a refresh that failed get its error instead of each
    /// trying again in turn.
    refreshing: tokio::sync::Mutex<Option<Failure>>,
    /// Refreshes finished so far.
    attempts: AtomicU64,
    min_valid: u64,
    refresh_timeout: Duration,
}

impl TokenSource {
    /// A source that obtains its tokens with `grant` of `spec` and `inputs`, sent over a
    /// [`ReqwestTransport`] with the default settings.
    pub fn new(spec: Spec, grant: &str, inputs: Inputs) -> Result<TokenSource, Error> {
        if !spec.grant_names().any(|g| g == grant) {
            return Err(Error::Usage(format!(
                "spec `{}` has no grant `{grant}`",
                spec.id()
            )));
        }
        Ok(TokenSource {
            spec,
            grant: grant.to_owned(),
            inputs,
            client: AsyncClient::with_transport(Arc::new(ReqwestTransport::new()?)),
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            min_valid: 60,
            refresh_timeout: Duration::from_secs(60),
        })
    }

    /// A source for the `client_credentials` grant: the application's own token.
    pub fn client_credentials(spec: Spec, inputs: Inputs) -> Result<TokenSource, Error> {
        Self::new(spec, "client_credentials", inputs)
    }

    /// A source that refreshes with the `refresh_token` grant, starting from `refresh_token`
    /// (a person's sign-in, done elsewhere). A rotated refresh token replaces the old one in
    /// memory.
    pub fn refresh_token(
        spec: Spec,
        inputs: Inputs,
        refresh_token: impl Into<String>,
    ) -> Result<TokenSource, Error> {
        Self::new(
            spec,
            "refresh_token",
            inputs.with("refresh_token", refresh_token),
        )
    }

    /// Starts from a token you already hold (from your own store); it is used until it is
    /// about to expire or is refused.
    pub fn with_token(self, token: Token) -> TokenSource {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(token));
        self
    }

    /// Sends the token requests through `transport` instead of the default reqwest one.
    pub fn with_transport(mut self, transport: impl AsyncTransport + 'static) -> TokenSource {
        self.client = AsyncClient::with_transport(Arc::new(transport));
        self
    }

    /// How long a token must still be valid to be used (default 60 s): a token closer to its
    /// expiry is refreshed first, so it does not expire in flight.
    pub fn with_min_valid(mut self, min_valid: Duration) -> TokenSource {
        self.min_valid = min_valid.as_secs();
        self
    }

    /// The longest one refresh may take, and so the longest a request waits for one (default
    /// 60 s; the transport's own timeouts usually end it sooner).
    pub fn with_refresh_timeout(mut self, timeout: Duration) -> TokenSource {
        self.refresh_timeout = timeout;
        self
    }

    /// The spec the tokens come from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// A token valid for at least the minimum validity: the one held, or a new one. When
    /// several tasks ask while a refresh is due, one refreshes and the others wait for it.
    pub async fn token(&self) -> Result<Arc<Token>, Error> {
        if let Some(token) = self.usable() {
            return Ok(token);
        }
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut flight = self.refreshing.lock().await;
        // Whoever held the flight before us may have refreshed already…
        if let Some(token) = self.usable() {
            return Ok(token);
        }
        // …or tried and failed while we waited: its error is ours too.
        if self.attempts.load(Ordering::SeqCst) != seen
            && let Some(failure) = flight.as_ref()
        {
            return Err(failure.to_error());
        }
        self.refresh_now(&mut flight).await
    }

    /// A new token after `rejected` was refused (a `401`): refreshed unless another task has
    /// already replaced `rejected`, in which case the replacement is returned.
    pub async fn token_after_rejection(&self, rejected: &Token) -> Result<Arc<Token>, Error> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut flight = self.refreshing.lock().await;
        if let Some(current) = self.held()
            && current.access_token != rejected.access_token
        {
            return Ok(current);
        }
        if self.attempts.load(Ordering::SeqCst) != seen
            && let Some(failure) = flight.as_ref()
        {
            return Err(failure.to_error());
        }
        self.refresh_now(&mut flight).await
    }

    fn held(&self) -> Option<Arc<Token>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn usable(&self) -> Option<Arc<Token>> {
        self.held()
            .filter(|t| !t.expires_within(now(), self.min_valid.max(self.spec.refresh_margin())))
    }

    /// Runs the grant (the caller holds the flight) and keeps its token, or its failure.
    async fn refresh_now(&self, flight: &mut Option<Failure>) -> Result<Arc<Token>, Error> {
        let mut inputs = self.inputs.clone();
        if let Some(refresh) = self.held().and_then(|t| t.refresh_token.clone()) {
            inputs.set("refresh_token", refresh.secret());
        }
        let request = self.client.token(&self.spec, &self.grant, &inputs);
        let outcome = match tokio::time::timeout(self.refresh_timeout, request).await {
            Ok(outcome) => outcome,
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!(
                    "refreshing the `{}` token took longer than {} s",
                    self.spec.id(),
                    self.refresh_timeout.as_secs()
                ),
            )
            .into()),
        };
        // Counted once finished: a request that began waiting before this refresh ended sees
        // the count move, and takes its outcome.
        self.attempts.fetch_add(1, Ordering::SeqCst);
        match outcome {
            Ok(token) => {
                let token = Arc::new(token);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
                *flight = None;
                Ok(token)
            }
            Err(e) => {
                *flight = Some(Failure::of(&e));
                Err(e)
            }
        }
    }
}

/// A failed refresh, kept to hand to the requests that waited for it.
#[derive(Debug)]
enum Failure {
    Provider(ProviderError),
    Transport(TransportError),
    Other(String),
}

impl Failure {
    fn of(e: &Error) -> Failure {
        match e {
            Error::Provider(p) => Failure::Provider((**p).clone()),
            Error::Transport(t) => Failure::Transport(t.clone()),
            other => Failure::Other(other.to_string()),
        }
    }

    fn to_error(&self) -> Error {
        match self {
            Failure::Provider(p) => p.clone().into(),
            Failure::Transport(t) => t.clone().into(),
            Failure::Other(message) => Error::Usage(format!("the token refresh failed: {message}")),
        }
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("spec", &self.spec.id())
            .field("grant", &self.grant)
            .field("inputs", &self.inputs)
            .field("token", &self.held())
            .field("min_valid", &self.min_valid)
            .finish_non_exhaustive()
    }
}

/// The reqwest-middleware middleware: adds the [`TokenSource`]'s token to each request,
/// refreshes it single-flight before it expires, and retries once on a `401` after a refresh
/// (see the [module docs](self)). Cheap to clone; clones share the source.
#[derive(Clone, Debug)]
pub struct TokenMiddleware {
    source: Arc<TokenSource>,
}

impl TokenMiddleware {
    /// A middleware over `source`.
    pub fn new(source: TokenSource) -> TokenMiddleware {
        TokenMiddleware {
            source: Arc::new(source),
        }
    }

    /// A middleware over a source shared with other middlewares or with your own code.
    pub fn from_shared(source: Arc<TokenSource>) -> TokenMiddleware {
        TokenMiddleware { source }
    }

    /// The token source.
    pub fn source(&self) -> &Arc<TokenSource> {
        &self.source
    }
}

/// `Authorization: <type> <token>`, marked sensitive.
fn authorize(request: &mut reqwest::Request, token: &Token) -> Result<(), Error> {
    let mut value = http::HeaderValue::from_str(&format!(
        "{} {}",
        token.token_type,
        token.access_token.secret()
    ))
    .map_err(|_| {
        Error::Usage("the access token holds characters an HTTP header cannot carry".to_owned())
    })?;
    value.set_sensitive(true);
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, value);
    Ok(())
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for TokenMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let token = self
            .source
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        authorize(&mut request, &token).map_err(reqwest_middleware::Error::middleware)?;
        // Copied before sending: a streamed body cannot be sent twice, so it is not retried.
        let again = request.try_clone();
        let reply = next.clone().run(request, extensions).await?;
        if reply.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(reply);
        }
        let Some(mut again) = again else {
            return Ok(reply);
        };
        let fresh = self
            .source
            .token_after_rejection(&token)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        authorize(&mut again, &fresh).map_err(reqwest_middleware::Error::middleware)?;
        next.run(again, extensions).await
    }
}
