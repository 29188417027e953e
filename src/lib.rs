//! specauth — a declarative OAuth 2 client.
#![deny(missing_docs)]

mod error;
mod inputs;
mod secret;
mod spec;
mod template;

pub use error::{Error, Pos, ProviderError, SpecError, TransportError, TransportErrorKind};
pub use inputs::Inputs;
pub use secret::{REDACTED, Secret};
pub use spec::{BodyEncoding, ClientAuthMethod, InputDef, Loader, Spec, bundled_ids};
mod render;
pub use render::TokenRequest;
mod normalise;
mod token;
pub use token::Token;
mod client;
mod transport;
pub use client::Client;
pub use transport::{Transport, TransportConfig, UreqTransport};
mod examples;
pub use examples::{EXAMPLE_NOW, ExampleReport};
mod replay;
pub use replay::{ReceivedRequest, ReplayServer};
