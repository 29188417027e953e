//! Standing in for a provider on 127.0.0.1 without credentials or network (feature `replay`):
//! a local HTTP server that answers with queued replies, as the demo and the tests use it.

use std::collections::VecDeque;
use std::io::Read as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// A request as the [`ReplayServer`] received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// `POST`, `GET`, …
    pub method: String,
    /// Path and query, as sent.
    pub url: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address (a keep-alive connection keeps its port).
    pub peer: Option<std::net::SocketAddr>,
}

impl ReceivedRequest {
    /// The value of header `name` (any case), when sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A server on `127.0.0.1` (a free port) that answers each request with the next queued reply,
/// and records what it received. It stops when dropped.
///
/// ```
/// let server = specauth::testing::ReplayServer::start().unwrap();
/// server.push(http::Response::builder().status(200)
///     .header("content-type", "application/json")
///     .body(br#"{"access_token":"t"}"#.to_vec()).unwrap());
/// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
/// extends: oauth2
/// endpoints: { token: "https://auth.example.com/oauth/token" }
/// "#).unwrap().with_origin(&server.origin()).unwrap();
/// let inputs = specauth::Inputs::new().with("client_id", "app");
/// let token = specauth::Client::new().token(&spec, "client_credentials", &inputs).unwrap();
/// assert_eq!(token.access_token.secret(), "t");
/// assert_eq!(server.received()[0].url, "/oauth/token");
/// ```
pub struct ReplayServer {
    server: Arc<tiny_http::Server>,
    port: u16,
    queue: Queue,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
    threads: Vec<JoinHandle<()>>,
}

type Queue = Arc<Mutex<VecDeque<http::Response<Vec<u8>>>>>;

/// Answers a request: how a [`ReplayServer::with_handler`] server replies.
pub type Handler = Box<dyn Fn(&ReceivedRequest) -> http::Response<Vec<u8>> + Send + Sync>;

/// Threads answering requests.
const WORKERS: usize = 4;

/// Requests larger than this are answered 413 and not recorded whole.
const MAX_REQUEST_BODY: u64 = 1 << 20;

impl ReplayServer {
    /// Starts the server on a free loopback port; it answers with the replies [`push`]ed.
    ///
    /// [`push`]: ReplayServer::push
    pub fn start() -> std::io::Result<ReplayServer> {
        Self::serve(None)
    }

    /// Starts a server that answers each request with `handler`'s reply (replies pushed
    /// first still go first): a provider that computes its answer, such as one that echoes
    /// what it received.
    ///
    /// ```
    /// use specauth::testing::ReplayServer;
    /// let server = ReplayServer::with_handler(|req| {
    ///     http::Response::builder().status(400)
    ///         .header("content-type", "application/json")
    ///         .body(format!(r#"{{"error":"bad","error_description":"saw {}"}}"#, req.url).into_bytes())
    ///         .unwrap()
    /// }).unwrap();
    /// # drop(server);
    /// ```
    pub fn with_handler(
        handler: impl Fn(&ReceivedRequest) -> http::Response<Vec<u8>> + Send + Sync + 'static,
    ) -> std::io::Result<ReplayServer> {
        Self::serve(Some(Box::new(handler)))
    }

    fn serve(handler: Option<Handler>) -> std::io::Result<ReplayServer> {
        let (listener, port) = crate::loopback::bind(0)?;
        let server = Arc::new(
            tiny_http::Server::from_listener(listener, None).map_err(std::io::Error::other)?,
        );
        let queue: Queue = Arc::default();
        let received: Arc<Mutex<Vec<ReceivedRequest>>> = Arc::default();
        let handler = handler.map(Arc::new);
        // Several workers, so one slow reply does not hold up the others.
        let threads = (0..WORKERS)
            .map(|_| {
                let (server, queue, received) = (server.clone(), queue.clone(), received.clone());
                let handler = handler.clone();
                std::thread::spawn(move || {
                    for mut request in server.incoming_requests() {
                        let mut body = Vec::new();
                        let read = request
                            .as_reader()
                            .take(MAX_REQUEST_BODY + 1)
                            .read_to_end(&mut body);
                        let recorded = ReceivedRequest {
                            method: request.method().as_str().to_owned(),
                            url: request.url().to_owned(),
                            headers: request
                                .headers()
                                .iter()
                                .map(|h| {
                                    (
                                        h.field.as_str().as_str().to_ascii_lowercase(),
                                        h.value.as_str().to_owned(),
                                    )
                                })
                                .collect(),
                            body,
                            peer: request.remote_addr().copied(),
                        };
                        let too_big =
                            read.is_err() || recorded.body.len() as u64 > MAX_REQUEST_BODY;
                        // Recorded before it is answered: a test sees a request its handler is
                        // still working on (a slow reply).
                        received
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(recorded.clone());
                        // The queue's lock is released before the handler runs, so handlers
                        // run in parallel.
                        let queued = if too_big {
                            None
                        } else {
                            queue
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .pop_front()
                        };
                        let reply = if too_big {
                            None
                        } else {
                            queued.or_else(|| {
                                // A panicking handler answers 500 instead of ending the server.
                                handler.as_ref().map(|h| {
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        h(&recorded)
                                    }))
                                    .unwrap_or_else(|_| {
                                        let mut r =
                                            http::Response::new(b"the handler panicked".to_vec());
                                        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                                        r
                                    })
                                })
                            })
                        };
                        let response = match reply {
                        Some(reply) => to_tiny(reply),
                        None => tiny_http::Response::from_data(
                            br#"{"error":"server_error","error_description":"no reply queued"}"#
                                .to_vec(),
                        )
                        .with_status_code(500),
                    };
                        // The client may have given up (timeouts): nothing to do about it here.
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        Ok(ReplayServer {
            server,
            port,
            queue,
            received,
            threads,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queues the reply for the next request.
    pub fn push(&self, reply: http::Response<Vec<u8>>) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(reply);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn to_tiny(reply: http::Response<Vec<u8>>) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let (parts, body) = reply.into_parts();
    let mut response = tiny_http::Response::from_data(body).with_status_code(parts.status.as_u16());
    for (name, value) in &parts.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_str().as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    response
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.server.unblock();
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer")
            .field("port", &self.port)
            .finish()
    }
}

/// One documented exchange of a spec sent for real: rendered, sent through a transport to a
/// [`ReplayServer`] that answers with the documented reply, and normalised.
#[derive(Debug, Clone)]
pub struct LiveExchange {
    /// The example's name.
    pub name: String,
    /// The request it makes.
    pub kind: crate::RequestKind,
    /// The request as rendered, secrets redacted (empty when it could not be rendered).
    pub request: String,
    /// The outcome as [`crate::examples::outcome_json`] shows it, or why there is none.
    pub outcome: Result<serde_json::Value, String>,
    /// The same example's outcome replayed offline.
    pub offline: serde_json::Value,
    /// Whether the server received exactly one request, with the body as rendered.
    pub received_as_rendered: bool,
}

impl LiveExchange {
    /// Whether the live exchange went as the offline replay says it does.
    pub fn matches(&self) -> bool {
        self.received_as_rendered && self.outcome.as_ref().is_ok_and(|o| *o == self.offline)
    }
}

/// Sends each of `spec`'s grant examples through `transport` to `server` (which answers with
/// the documented reply), and compares each outcome with the offline replay: the demo's proof
/// that the real HTTP path and the offline examples agree. `spec` must point at the server
/// ([`crate::Spec::with_origin`]).
pub fn replay_live<T: crate::Transport>(
    spec: &crate::Spec,
    server: &ReplayServer,
    transport: &T,
) -> Vec<LiveExchange> {
    let offline = spec.run_examples();
    let mut out = Vec::new();
    for (i, expected) in offline.iter().enumerate() {
        let Some((kind, inputs, reply, now)) = spec.example_exchange(i) else {
            continue;
        };
        let mut live = LiveExchange {
            name: expected.name.clone(),
            kind: kind.clone(),
            request: String::new(),
            outcome: Err(String::new()),
            offline: expected.outcome.clone(),
            received_as_rendered: false,
        };
        let request = match spec.render(&kind, &inputs) {
            Ok(r) => r,
            Err(e) => {
                live.outcome = Err(format!("cannot render: {e}"));
                out.push(live);
                continue;
            }
        };
        live.request = request.redacted().to_owned();
        let before = server.received().len();
        let sent_body = request.http().body().clone();
        server.push(reply);
        let outcome = transport
            .send(request.into_http())
            .map_err(crate::Error::from)
            .and_then(|r| spec.normalise(&kind, &inputs, &r, now));
        // The same function built the offline outcome, so the two compare exactly.
        live.outcome = Ok(crate::examples::outcome_json(&outcome));
        let received = server.received();
        live.received_as_rendered = received.len() == before + 1
            && received.get(before).is_some_and(|r| r.body == sent_body);
        out.push(live);
    }
    out
}
