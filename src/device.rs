//! Device authorization (RFC 8628), revocation (RFC 7009) and introspection (RFC 7662) replies.

use serde_json::Value;

use crate::error::Error;
use crate::inputs::Inputs;
use crate::normalise::{first, number, scalar_string};
use crate::secret::Secret;
use crate::spec::Spec;

/// Interval between polls when the provider states none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: u64 = 5;

/// A device authorization reply: what the user is shown, and what the client polls with.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceAuthorization {
    /// Sent back on every poll of the token endpoint (grant `device_code`).
    pub device_code: Secret,
    /// The code the user types at the verification URI.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The verification URI with the user code filled in, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire, when stated.
    pub expires_in: Option<u64>,
    /// Seconds to wait between polls.
    pub interval: u64,
}

impl DeviceAuthorization {
    /// As JSON (`device_code` redacted unless `reveal`).
    pub fn to_json(&self, reveal: bool) -> Value {
        let mut m = serde_json::Map::new();
        let code = if reveal {
            self.device_code.secret()
        } else {
            crate::secret::REDACTED
        };
        m.insert("device_code".into(), Value::String(code.to_owned()));
        m.insert("user_code".into(), Value::String(self.user_code.clone()));
        m.insert(
            "verification_uri".into(),
            Value::String(self.verification_uri.clone()),
        );
        if let Some(c) = &self.verification_uri_complete {
            m.insert("verification_uri_complete".into(), Value::String(c.clone()));
        }
        if let Some(e) = self.expires_in {
            m.insert("expires_in".into(), Value::from(e));
        }
        m.insert("interval".into(), Value::from(self.interval));
        Value::Object(m)
    }
}

impl Spec {
    /// Normalises the reply to the `device_authorization` request.
    pub fn normalise_device(
        &self,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<DeviceAuthorization, Error> {
        let value = self.successful_reply(inputs, reply)?;
        let map = &self.device;
        let text = |paths, what: &str| -> Result<String, Error> {
            first(paths, &value)
                .and_then(scalar_string)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    self.reply_error(
                        reply,
                        inputs,
                        format!("a device authorization reply without `{what}`"),
                    )
                })
        };
        Ok(DeviceAuthorization {
            device_code: Secret::new(text(&map.device_code, "device_code")?),
            user_code: text(&map.user_code, "user_code")?,
            verification_uri: text(&map.verification_uri, "verification_uri")?,
            verification_uri_complete: first(&map.verification_uri_complete, &value)
                .and_then(scalar_string),
            expires_in: first(&map.expires_in, &value).and_then(number),
            interval: first(&map.interval, &value)
                .and_then(number)
                .unwrap_or(DEFAULT_INTERVAL),
        })
    }

    /// Checks the reply to the `revoke` request: any 2xx is success (RFC 7009 §2.2).
    pub fn normalise_revocation(
        &self,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<(), Error> {
        self.successful_reply(inputs, reply).map(|_| ())
    }

    /// Normalises the reply to the `introspect` request: whether the token is active, and the
    /// whole reply (RFC 7662 §2.2: `scope`, `client_id`, `exp`, …).
    pub fn normalise_introspection(
        &self,
        inputs: &Inputs,
        reply: &http::Response<Vec<u8>>,
    ) -> Result<(bool, Value), Error> {
        let value = self.successful_reply(inputs, reply)?;
        let active = match first(&self.introspection_active, &value) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => {
                return Err(self.reply_error(
                    reply,
                    inputs,
                    "an introspection reply without a boolean `active`".to_owned(),
                ));
            }
        };
        Ok((active, value))
    }
}
