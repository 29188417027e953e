//! render → send → normalise in one call.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Error;
use crate::inputs::Inputs;
use crate::render::TokenRequest;
use crate::spec::{ClientAuthMethod, LearnedClientAuth, RequestKind, Spec};
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
///
/// Under `client_auth: auto` the client sends Basic first and, when the provider refuses it
/// with `invalid_client` (HTTP 400 or 401), the credentials in the body once; what worked is
/// remembered per token URL and client id (shared by clones of the client, and readable with
/// [`Client::learned_client_auth`] to keep it across processes), so later requests go straight
/// to it.
#[derive(Clone, Debug, Default)]
pub struct Client<T = UreqTransport> {
    transport: T,
    learned: AuthMemory,
}

impl Client<UreqTransport> {
    /// A client over the default [`UreqTransport`].
    pub fn new() -> Self {
        Client::with_transport(UreqTransport::new())
    }
}

impl<T> Client<T> {
    /// What `client_auth: auto` learned: the method each token endpoint accepted, per client
    /// id.
    pub fn learned_client_auth(&self) -> Vec<LearnedClientAuth> {
        self.learned.all()
    }

    /// Teaches the client what worked before (a cached token's
    /// [`client_auth`](crate::session::StoredToken::client_auth)), so a `client_auth: auto`
    /// request goes straight to it.
    pub fn learn_client_auth(&self, learned: LearnedClientAuth) {
        self.learned.set(learned);
    }
}

impl<T: Transport> Client<T> {
    /// A client over any transport (a closure in tests, your own HTTP stack in an application).
    pub fn with_transport(transport: T) -> Self {
        Client {
            transport,
            learned: AuthMemory::default(),
        }
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
    ///
    /// A grant that is a step of a chain (`then:`) is followed by the next step, with the
    /// values its reply gave added to the inputs, until the last step's outcome.
    pub fn send(
        &self,
        spec: &Spec,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
    ) -> Result<Outcome, Error> {
        let mut chain = Chain::new(kind.into(), inputs);
        loop {
            // The redacted preview is kept only for the log line that shows it.
            let preview = tracing::enabled!(tracing::Level::DEBUG);
            let (mut request, mut auto) =
                self.learned
                    .plan(spec, &chain.kind, &chain.inputs, preview)?;
            let outcome = loop {
                if preview {
                    tracing::debug!("→ {}\n{}", chain.kind.name(), request.redacted());
                }
                let reply = self.transport.send(request.into_http())?;
                tracing::debug!("← HTTP {}", reply.status());
                let outcome = spec.normalise_kind(&chain.kind, &chain.inputs, &reply, now());
                match self.learned.after(
                    spec,
                    &chain.kind,
                    &chain.inputs,
                    &mut auto,
                    outcome,
                    preview,
                )? {
                    Next::Done(outcome) => break outcome,
                    Next::Retry(again) => request = *again,
                }
            };
            if let Some(done) = chain.after(outcome)? {
                return done;
            }
        }
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
    learned: AuthMemory,
}

#[cfg(feature = "reqwest")]
impl AsyncClient<crate::transport::ReqwestTransport> {
    /// A client over the default [`ReqwestTransport`](crate::transport::ReqwestTransport)
    /// (feature `reqwest`). Fails only when the TLS backend cannot be set up.
    ///
    /// In an application (the README's example, compiled here):
    ///
    /// ```no_run
    /// use specauth::{AsyncClient, Inputs, Loader};
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let spec = Loader::new().load("spotify")?;      // clone it freely: it is an Arc inside
    ///     let client = AsyncClient::new()?;               // feature `reqwest`
    ///     let inputs = Inputs::new()
    ///         .with("client_id", std::env::var("SPOTIFY_CLIENT_ID")?)
    ///         .with("client_secret", std::env::var("SPOTIFY_CLIENT_SECRET")?);
    ///     let token = client.token(&spec, "client_credentials", &inputs).await?;
    ///     println!("expires at {:?}", token.expires_at);
    ///
    ///     // The futures are `Send`, so a task can run them; the spec (an `Arc` inside), the client
    ///     // and the inputs clone into it.
    ///     let task = tokio::spawn({
    ///         let (spec, client, inputs) = (spec.clone(), client.clone(), inputs.clone());
    ///         async move { client.token(&spec, "client_credentials", &inputs).await }
    ///     });
    ///     let again = task.await??;
    ///     println!("expires at {:?}", again.expires_at);
    ///     Ok(())
    /// }
    /// ```
    pub fn new() -> Result<Self, Error> {
        Ok(AsyncClient::with_transport(
            crate::transport::ReqwestTransport::new()?,
        ))
    }
}

impl<T: AsyncTransport> AsyncClient<T> {
    /// A client over any async transport (an async closure in tests, your own HTTP stack in an
    /// application).
    pub fn with_transport(transport: T) -> Self {
        AsyncClient {
            transport,
            learned: AuthMemory::default(),
        }
    }

    /// What `client_auth: auto` learned (see [`Client::learned_client_auth`]).
    pub fn learned_client_auth(&self) -> Vec<LearnedClientAuth> {
        self.learned.all()
    }

    /// Teaches the client what worked before (see [`Client::learn_client_auth`]).
    pub fn learn_client_auth(&self, learned: LearnedClientAuth) {
        self.learned.set(learned);
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
    ///
    /// A grant that is a step of a chain (`then:`) is followed by the next step, as
    /// [`Client::send`] does.
    pub async fn send(
        &self,
        spec: &Spec,
        kind: impl Into<RequestKind>,
        inputs: &Inputs,
    ) -> Result<Outcome, Error> {
        let mut chain = Chain::new(kind.into(), inputs);
        loop {
            // The redacted preview is kept only for the log line that shows it.
            let preview = tracing::enabled!(tracing::Level::DEBUG);
            let (mut request, mut auto) =
                self.learned
                    .plan(spec, &chain.kind, &chain.inputs, preview)?;
            let outcome = loop {
                if preview {
                    tracing::debug!("→ {}\n{}", chain.kind.name(), request.redacted());
                }
                let reply = self.transport.send(request.into_http()).await?;
                tracing::debug!("← HTTP {}", reply.status());
                let outcome = spec.normalise_kind(&chain.kind, &chain.inputs, &reply, now());
                match self.learned.after(
                    spec,
                    &chain.kind,
                    &chain.inputs,
                    &mut auto,
                    outcome,
                    preview,
                )? {
                    Next::Done(outcome) => break outcome,
                    Next::Retry(again) => request = *again,
                }
            };
            if let Some(done) = chain.after(outcome)? {
                return done;
            }
        }
    }
}

/// What `client_auth: auto` learned, per token URL and client id; shared by a client's clones.
#[derive(Clone, Debug, Default)]
struct AuthMemory(Arc<Mutex<Vec<LearnedClientAuth>>>);

/// Where a `client_auth: auto` request stands.
struct Auto {
    token_url: String,
    client_id: String,
    /// The method remembered when the request was planned.
    remembered: Option<ClientAuthMethod>,
    /// The method of the request in flight.
    sent: ClientAuthMethod,
}

/// Where a chain of requests (`then:`) stands: the request to send next, and the inputs so far
/// (the caller's, copied only when a step adds to them).
struct Chain<'a> {
    kind: RequestKind,
    inputs: Cow<'a, Inputs>,
    steps: usize,
}

impl<'a> Chain<'a> {
    fn new(kind: RequestKind, inputs: &'a Inputs) -> Chain<'a> {
        Chain {
            kind,
            inputs: Cow::Borrowed(inputs),
            steps: 0,
        }
    }

    /// The outcome to return, or `None` when a step's values were taken and the next step is
    /// to be sent.
    fn after(
        &mut self,
        outcome: Result<Outcome, Error>,
    ) -> Result<Option<Result<Outcome, Error>>, Error> {
        let Ok(Outcome::Step(step)) = outcome else {
            return Ok(Some(outcome));
        };
        self.steps += 1;
        // The compiler refuses longer chains and loops; this bounds a spec built otherwise.
        if self.steps >= crate::spec::MAX_CHAIN {
            return Err(Error::Usage(format!(
                "the chain of requests is longer than {} steps",
                crate::spec::MAX_CHAIN
            )));
        }
        tracing::debug!("chain: {} → {}", self.kind.name(), step.next);
        let inputs = self.inputs.to_mut();
        for (name, value) in &step.taken {
            inputs.set(name, value.secret());
        }
        self.kind = RequestKind::grant(&step.next);
        Ok(None)
    }
}

/// After a reply: the outcome, or the request to send instead.
enum Next {
    Done(Result<Outcome, Error>),
    Retry(Box<TokenRequest>),
}

impl AuthMemory {
    fn all(&self) -> Vec<LearnedClientAuth> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn get(&self, token_url: &str, client_id: &str) -> Option<ClientAuthMethod> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|l| l.token_url == token_url && l.client_id == client_id)
            .map(|l| l.method)
    }

    fn set(&self, learned: LearnedClientAuth) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|l| l.token_url != learned.token_url || l.client_id != learned.client_id);
        all.push(learned);
    }

    fn forget(&self, token_url: &str, client_id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|l| l.token_url != token_url || l.client_id != client_id);
    }

    /// The first request to send, and, under `client_auth: auto`, what to learn from its reply.
    fn plan(
        &self,
        spec: &Spec,
        kind: &RequestKind,
        inputs: &Inputs,
        preview: bool,
    ) -> Result<(TokenRequest, Option<Auto>), Error> {
        let request = spec.render_kind(kind, inputs, None, preview)?;
        let auto = spec
            .template(kind)
            .is_ok_and(|g| g.client_auth.method == ClientAuthMethod::Auto);
        let default_id = || {
            spec.inputs()
                .find(|(n, _)| *n == "client_id")
                .and_then(|(_, d)| d.default.as_deref())
        };
        if !auto {
            return Ok((request, None));
        }
        let Some(client_id) = inputs.get("client_id").or_else(default_id) else {
            return Ok((request, None));
        };
        let uri = request.http().uri();
        let token_url = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str()),
            uri.path()
        );
        let remembered = self.get(&token_url, client_id);
        let (request, sent) = match remembered {
            Some(m) if m != ClientAuthMethod::Basic => {
                (spec.render_kind(kind, inputs, Some(m), preview)?, m)
            }
            _ => (request, ClientAuthMethod::Basic),
        };
        let auto = Auto {
            token_url,
            client_id: client_id.to_owned(),
            remembered,
            sent,
        };
        Ok((request, Some(auto)))
    }

    /// Learns from `outcome`; under `client_auth: auto`, a first Basic refused with
    /// `invalid_client` is retried once with the credentials in the body.
    fn after(
        &self,
        spec: &Spec,
        kind: &RequestKind,
        inputs: &Inputs,
        auto: &mut Option<Auto>,
        outcome: Result<Outcome, Error>,
        preview: bool,
    ) -> Result<Next, Error> {
        let Some(a) = auto.as_mut() else {
            return Ok(Next::Done(outcome));
        };
        let refused = matches!(&outcome, Err(Error::Provider(p))
            if matches!(p.status, 400 | 401) && p.code.as_deref() == Some("invalid_client"));
        if !refused {
            if outcome.is_ok() && a.remembered != Some(a.sent) {
                tracing::debug!(
                    "client_auth auto: {} works at {}",
                    a.sent.as_str(),
                    a.token_url
                );
                self.set(LearnedClientAuth {
                    token_url: a.token_url.clone(),
                    client_id: a.client_id.clone(),
                    method: a.sent,
                });
            }
            return Ok(Next::Done(outcome));
        }
        // What was remembered no longer works (a rotated secret, a reconfigured client): the
        // next request probes again.
        if a.remembered.is_some() {
            self.forget(&a.token_url, &a.client_id);
            return Ok(Next::Done(outcome));
        }
        if a.sent != ClientAuthMethod::Basic || !inputs.contains("client_secret") {
            return Ok(Next::Done(outcome));
        }
        tracing::debug!(
            "client_auth auto: Basic refused with invalid_client at {}; retrying with the credentials in the body",
            a.token_url
        );
        a.sent = ClientAuthMethod::Post;
        Ok(Next::Retry(Box::new(spec.render_kind(
            kind,
            inputs,
            Some(ClientAuthMethod::Post),
            preview,
        )?)))
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
