//! The device authorization flow (RFC 8628) as one call, with the clock and the sleep injected.

use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::inputs::Inputs;
use crate::spec::{RequestKind, Spec};
use crate::token::{DeviceAuthorization, Outcome, Token};
use crate::transport::Transport;

/// Time as the device flow sees it: a monotonic clock and a way to wait. [`SystemClock`] is the
/// real one; tests pass one that only pretends to sleep.
pub trait Clock {
    /// Time elapsed since some fixed moment (monotonic).
    fn elapsed(&self) -> Duration;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);
}

/// The process's monotonic clock and `std::thread::sleep`.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// How long the device flow waits, and how it paces its polls.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// Give up after this long without approval (the device code's own lifetime, when shorter,
    /// wins). Default 300 s.
    pub timeout: Duration,
    /// Added to the interval on each `slow_down` (RFC 8628 §3.5 says 5 s).
    pub slow_down_step: Duration,
    /// The longest interval between polls, whatever the server asks (an interval of a day
    /// would otherwise outlive any timeout). Default 60 s.
    pub max_interval: Duration,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            timeout: Duration::from_secs(300),
            slow_down_step: Duration::from_secs(5),
            max_interval: Duration::from_secs(60),
        }
    }
}

/// What one poll of the token endpoint said (RFC 8628 §3.5).
enum Poll {
    Token(Box<Token>),
    Pending,
    SlowDown,
}

/// The one place that decides what a poll's reply means: `authorization_pending` and
/// `slow_down` are not errors; `access_denied`, `expired_token` and anything else are.
fn poll_result(result: Result<Outcome, Error>) -> Result<Poll, Error> {
    match result {
        Ok(Outcome::Token(token)) => Ok(Poll::Token(token)),
        Ok(other) => Err(Error::Usage(format!(
            "the device_code grant answered with {} instead of a token",
            other.name()
        ))),
        Err(Error::Provider(p)) if p.code.as_deref() == Some("authorization_pending") => {
            Ok(Poll::Pending)
        }
        Err(Error::Provider(p)) if p.code.as_deref() == Some("slow_down") => Ok(Poll::SlowDown),
        Err(e) => Err(e),
    }
}

/// Runs the device flow: requests a device code, hands it to `show` (print the verification
/// URI and user code), then polls the token endpoint at the provider's interval until the user
/// approves, refuses, or time runs out.
///
/// The interval is clamped to [1 s, `max_interval`], and no sleep outlasts the deadline: a
/// server cannot stall the caller past `timeout`.
pub fn device_login<T: Transport>(
    client: &Client<T>,
    spec: &Spec,
    inputs: &Inputs,
    options: &DeviceOptions,
    clock: &dyn Clock,
    show: impl FnOnce(&DeviceAuthorization),
) -> Result<Token, Error> {
    device_login_bound(client, spec, inputs, options, clock, None, show)
}

/// [`device_login`] with the token bound to `key` (RFC 9449) when one is given: every poll of
/// the token endpoint carries a DPoP proof, sent again with the server's `DPoP-Nonce` when it
/// asks for one (the nonce is kept from poll to poll). Whether the server bound the token
/// says its `token_type` ([`crate::dpop::binds`]).
pub fn device_login_bound<T: Transport>(
    client: &Client<T>,
    spec: &Spec,
    inputs: &Inputs,
    options: &DeviceOptions,
    clock: &dyn Clock,
    key: Option<&crate::dpop::DpopKey>,
    show: impl FnOnce(&DeviceAuthorization),
) -> Result<Token, Error> {
    let device = match client.send(spec, RequestKind::DeviceAuthorization, inputs)? {
        Outcome::DeviceAuthorization(d) => d,
        other => {
            return Err(Error::Usage(format!(
                "the device authorization request answered with {}",
                other.name()
            )));
        }
    };
    show(&device);
    let lifetime = device
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(options.timeout)
        .min(options.timeout);
    let deadline = clock.elapsed().saturating_add(lifetime);
    let clamp = |d: Duration| {
        d.clamp(
            Duration::from_secs(1),
            options.max_interval.max(Duration::from_secs(1)),
        )
    };
    // An interval of 0 would poll in a busy loop; a second is the least any provider means.
    let mut interval = clamp(Duration::from_secs(device.interval));
    let mut poll_inputs = inputs.clone();
    poll_inputs.set("device_code", device.device_code.secret());
    let mut nonce = None;
    loop {
        let left = deadline.saturating_sub(clock.elapsed());
        if left.is_zero() {
            return Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!(
                    "the device code was not approved within {} s",
                    lifetime.as_secs()
                ),
            )
            .into());
        }
        clock.sleep(interval.min(left));
        if clock.elapsed() >= deadline {
            continue;
        }
        let sent = match key {
            Some(key) => {
                crate::dpop::send(client, spec, "device_code", &poll_inputs, key, &mut nonce)
            }
            None => client.send(spec, "device_code", &poll_inputs),
        };
        match poll_result(sent)? {
            Poll::Token(token) => return Ok(*token),
            Poll::Pending => {}
            Poll::SlowDown => interval = clamp(interval.saturating_add(options.slow_down_step)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that advances only when slept on.
    struct FakeClock(Cell<Duration>);

    impl Clock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }
        fn sleep(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    fn reply(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn spec() -> Spec {
        Spec::from_yaml(
            "d.yaml",
            "extends: oauth2\nendpoints: { token: https://a.example/t, device_authorization: https://a.example/d }\n",
        )
        .unwrap()
    }

    #[test]
    fn a_huge_interval_cannot_outlast_the_timeout() {
        let replies = std::sync::Mutex::new(vec![reply(
            200,
            r#"{"device_code":"d","user_code":"U","verification_uri":"https://a.example/v","interval":1e30}"#,
        )]);
        let polls = Cell::new(0);
        let client = Client::with_transport(|_req: http::Request<Vec<u8>>| {
            let next = replies.lock().unwrap().pop();
            polls.set(polls.get() + 1);
            Ok(next.unwrap_or_else(|| reply(400, r#"{"error":"authorization_pending"}"#)))
        });
        let clock = FakeClock(Cell::new(Duration::ZERO));
        let options = DeviceOptions {
            timeout: Duration::from_secs(120),
            ..DeviceOptions::default()
        };
        let inputs = Inputs::new().with("client_id", "c");
        let e = device_login(&client, &spec(), &inputs, &options, &clock, |_| {}).unwrap_err();
        assert!(
            matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
            "{e}"
        );
        // Polled every 60 s (the clamp), and stopped at the deadline.
        assert_eq!(clock.elapsed(), Duration::from_secs(120));
        assert_eq!(polls.get(), 2);
    }

    #[test]
    fn slow_down_adds_the_step_and_a_token_ends_the_flow() {
        let replies = std::sync::Mutex::new(vec![
            reply(200, r#"{"access_token":"t","token_type":"bearer"}"#),
            reply(400, r#"{"error":"slow_down"}"#),
            reply(400, r#"{"error":"authorization_pending"}"#),
            reply(
                200,
                r#"{"device_code":"d","user_code":"U","verification_uri":"https://a.example/v","interval":2,"expires_in":600}"#,
            ),
        ]);
        let client = Client::with_transport(|_req: http::Request<Vec<u8>>| {
            Ok(replies.lock().unwrap().pop().unwrap())
        });
        let clock = FakeClock(Cell::new(Duration::ZERO));
        let shown = Cell::new(false);
        let inputs = Inputs::new().with("client_id", "c");
        let token = device_login(
            &client,
            &spec(),
            &inputs,
            &DeviceOptions::default(),
            &clock,
            |d| shown.set(d.user_code == "U"),
        )
        .unwrap();
        assert_eq!(token.access_token.secret(), "t");
        assert!(shown.get());
        // 2 s, 2 s, then 2 + 5 s after slow_down.
        assert_eq!(clock.elapsed(), Duration::from_secs(11));
    }

    #[test]
    fn access_denied_ends_the_flow_with_the_providers_error() {
        let replies = std::sync::Mutex::new(vec![
            reply(400, r#"{"error":"access_denied"}"#),
            reply(
                200,
                r#"{"device_code":"d","user_code":"U","verification_uri":"https://a.example/v"}"#,
            ),
        ]);
        let client = Client::with_transport(|_req: http::Request<Vec<u8>>| {
            Ok(replies.lock().unwrap().pop().unwrap())
        });
        let clock = FakeClock(Cell::new(Duration::ZERO));
        let inputs = Inputs::new().with("client_id", "c");
        let e = device_login(
            &client,
            &spec(),
            &inputs,
            &DeviceOptions::default(),
            &clock,
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(&e, Error::Provider(p) if p.code.as_deref() == Some("access_denied")));
    }
}
