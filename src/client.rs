//! render → send → normalise in one call.

use crate::error::Error;
use crate::inputs::Inputs;
use crate::spec::Spec;
use crate::token::Token;
use crate::transport::{Transport, UreqTransport};

/// Performs grants: renders the request, sends it through a [`Transport`], normalises the reply.
///
/// ```no_run
/// let spec = specauth::Loader::new().load("xee")?;
/// let inputs = specauth::Inputs::new()
///     .with("client_id", "app")
///     .with("client_secret", std::env::var("XEE_SECRET").unwrap_or_default())
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
        let reply = self.transport.send(request.into_http())?;
        spec.normalise(grant, inputs, &reply)
    }
}
