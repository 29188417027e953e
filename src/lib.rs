//! # specauth — a declarative OAuth 2 client
//!
//! Each provider is one YAML spec: its endpoints, how the client authenticates, the inputs it
//! needs, the request each grant sends, and where the token and the error are in its replies.
//! One interpreter turns a spec and your inputs into the exact HTTP request, and the provider's
//! reply into a normalised [`Token`] or [`ProviderError`]. Adding a provider, or fixing a
//! provider's quirk, is a data change.
//!
//! ## The data path
//!
//! ```text
//! spec YAML ──Loader──▶ Spec (templates and JSONPaths compiled once)
//! RequestKind + Inputs ──Spec::render──▶ TokenRequest (http::Request + redacted preview)  no I/O
//!                          │ Transport (UreqTransport, or a closure, or your own)
//!                          ▼
//!          http::Response<Vec<u8>> ──Spec::normalise──▶ Outcome | Error              no I/O
//! ```
//!
//! [`RequestKind`] says which request: a grant by name (a plain `&str`), the authorization
//! URL, device authorization, revocation or introspection. [`Spec::render`] and
//! [`Spec::normalise`] are the only two entry points and never touch the network, so an async
//! application can bring its own HTTP client, and tests need no server.
//!
//! ## The crate's parts
//!
//! - The root holds the data path: [`Spec`], [`Loader`], [`RequestKind`], [`Inputs`],
//!   [`TokenRequest`], [`Outcome`] and what it carries, [`Client`], [`Transport`], [`Error`].
//!   A [`Spec`] is cheap to clone and `Send + Sync`.
//! - [`spec`]: the format's read API, the JSON Schema, the bundled ids.
//! - [`session`] (feature `session`): browser and device sign-in, the token store and
//!   single-flight refresh, profiles and input precedence, logout and revocation policy.
//! - [`discovery`]: RFC 8414 / OpenID metadata to a spec. [`examples`]: replaying a spec's
//!   documented examples. [`testing`] (feature `replay`): a loopback server that stands in for a
//!   provider. [`transport`], [`error`], [`inputs`]: the details of their root types.
//! - [`AsyncClient`] and [`AsyncTransport`]: the same over an async transport, for async
//!   applications; `transport::ReqwestTransport` (feature `reqwest`) is the reqwest one, and
//!   `middleware` (feature `middleware`) a reqwest-middleware middleware that adds the token
//!   to each request and refreshes it single-flight.
//! - Features: `cli` (default; the `specauth` binary), `session`, `replay`, `reqwest`,
//!   `middleware`. With `--no-default-features` only the interpreter core builds.
//!
//! ## Use a bundled spec
//!
//! `specauth providers` lists the bundled providers; `oauth2` is the generic RFC 6749 client
//! they all build on.
//!
//! ```
//! use specauth::{Inputs, Loader, TransportError};
//!
//! let spec = Loader::new().load("oauth2")?;
//! let inputs = Inputs::new()
//!     .with("token_url", "https://auth.example.com/token")
//!     .with("client_id", "app")
//!     .with("client_secret", "s3cret")
//!     .with("code", "theawesomecode");
//!
//! // Render: the exact request, and a preview safe to log.
//! let request = spec.render("authorization_code", &inputs)?;
//! assert_eq!(request.http().uri(), "https://auth.example.com/token");
//! assert!(request.redacted().contains("Authorization: Basic [redacted]"));
//!
//! // Send it with any transport; here a closure stands in for the provider.
//! let transport = |_req: http::Request<Vec<u8>>| -> Result<_, TransportError> {
//!     Ok(http::Response::builder().status(200)
//!         .header("content-type", "application/json")
//!         .body(br#"{"access_token":"22fe","expires_in":3600,"token_type":"bearer"}"#.to_vec())
//!         .unwrap())
//! };
//! let token = specauth::Client::with_transport(transport)
//!     .token(&spec, "authorization_code", &inputs)?;
//! assert_eq!(token.access_token.secret(), "22fe");
//! assert_eq!(token.token_type, "Bearer");
//! assert_eq!(format!("{:?}", token.access_token), "[redacted]");
//! # Ok::<(), specauth::Error>(())
//! ```
//!
//! With the network, [`Client::new`] uses [`UreqTransport`]: 10 s connect timeout, 30 s for
//! the whole exchange, no automatic redirects, reply bodies capped at 1 MiB, and non-2xx
//! statuses handed to the normaliser rather than raised (see [`transport::TransportConfig`]).
//!
//! ## Write your own spec
//!
//! ```
//! let spec = specauth::Spec::from_yaml("acme.yaml", r#"
//! id: acme
//! extends: oauth2                 # RFC 6749 defaults: grants, inputs, reply and error paths
//! endpoints:
//!   token: "https://{{ tenant }}.acme.example/oauth/token"
//! client_auth: post               # client_id and client_secret in the body
//! inputs:
//!   tenant: { required: true, description: Your Acme tenant }
//! token:
//!   expires_in: [$.expires_in, $.data.ttl]   # first path that matches wins
//! errors:
//!   when: [{ path: $.ok, equals: false }]     # an error even inside a 200 reply
//!   message: [$.error_description, $.detail]
//! "#)?;
//! let inputs = specauth::Inputs::new().with("tenant", "blue").with("client_id", "app");
//! let req = spec.render("client_credentials", &inputs)?;
//! assert_eq!(req.http().uri(), "https://blue.acme.example/oauth/token");
//! assert_eq!(req.http().body(), b"grant_type=client_credentials&client_id=app");
//! # Ok::<(), specauth::Error>(())
//! ```
//!
//! The README holds the full spec format with an example of every key.
//!
//! ## Errors
//!
//! One [`Error`] type, `#[non_exhaustive]`; [`Error::kind`] gives its [`ErrorKind`]. Spec
//! errors carry `file:line:col` ([`SpecError`]); input errors name the input (a missing one
//! with its description and allowed values); unusable replies give the status and a short
//! redacted excerpt; provider refusals are normalised into [`ProviderError`]. Messages never
//! name command-line flags: the CLI adds its own advice.
//!
//! ## Secrets
//!
//! Inputs declared `secret: true` (client secret, password, codes, tokens, verifier), and the
//! token's secret parts, are [`Secret`]s or are redacted in every preview, `Debug` output,
//! error message and snapshot. Only [`Secret::secret`], [`TokenRequest::revealed`] and
//! [`Token::to_json`] with `reveal` show them.
#![deny(missing_docs)]

mod client;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod examples;
mod files;
pub mod inputs;
mod jwt;
#[cfg(any(feature = "session", feature = "replay"))]
mod loopback;
#[cfg(feature = "middleware")]
pub mod middleware;
mod normalise;
mod render;
mod reply;
mod secret;
#[cfg(feature = "session")]
pub mod session;
pub mod spec;
#[cfg(feature = "session")]
pub mod store;
mod template;
#[cfg(feature = "replay")]
pub mod testing;
mod token;
pub mod transport;

pub use client::{AsyncClient, Client};
pub use error::{Error, ErrorKind, ProviderError, SpecError, TransportError};
pub use inputs::Inputs;
pub use render::TokenRequest;
pub use secret::{REDACTED, Secret};
pub use spec::{Loader, RequestKind, Spec};
pub use token::{DeviceAuthorization, Introspection, Outcome, PushedAuthorization, Step, Token};
pub use transport::{AsyncTransport, Transport, UreqTransport};
