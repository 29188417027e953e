//! The test kit shared by every test file: the clock, reply builders, and the grant-outcome
//! helper. Each test file includes it with `mod common;` and uses what it needs.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use specauth::{Error, Inputs, Spec, Token};

/// Seconds since the Unix epoch: the one clock of the tests.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A reply with a status, a content type and a body.
pub fn reply(status: u16, content_type: &str, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .expect("a valid reply")
}

/// A JSON reply.
pub fn json_reply(status: u16, body: &str) -> http::Response<Vec<u8>> {
    reply(status, "application/json", body)
}

/// A grant's reply normalised into its token: [`Spec::normalise`] for the grant kinds.
pub trait NormaliseToken {
    /// The token, or the error, of `grant`'s reply at `now`.
    fn normalise_token(
        &self,
        grant: &str,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
        now: u64,
    ) -> Result<Token, Error>;
}

impl NormaliseToken for Spec {
    fn normalise_token(
        &self,
        grant: &str,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
        now: u64,
    ) -> Result<Token, Error> {
        self.normalise(grant, inputs, reply, now)
            .map(|o| o.into_token().expect("a grant's outcome is a token"))
    }
}
