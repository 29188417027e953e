//! Sending a rendered request: the [`Transport`] trait and its ureq implementation.

use std::time::Duration;

use crate::error::{TransportError, TransportErrorKind};

pub(crate) mod tls;
pub use tls::ClientCertificate;

/// Sends one HTTP request and returns the reply, whatever its status.
///
/// Implemented by [`UreqTransport`] and by any closure with the same signature, so tests and
/// embedding applications (async runtimes, custom TLS, proxies) can bring their own.
///
/// ```
/// use specauth::{Transport, TransportError};
/// let fake = |req: http::Request<Vec<u8>>| -> Result<http::Response<Vec<u8>>, TransportError> {
///     assert_eq!(req.method(), "POST");
///     Ok(http::Response::builder().status(200).body(br#"{"access_token":"t"}"#.to_vec()).unwrap())
/// };
/// let reply = fake.send(http::Request::post("https://x.test/token").body(vec![]).unwrap()).unwrap();
/// assert_eq!(reply.status(), 200);
/// ```
pub trait Transport {
    /// Sends `request`. Non-2xx statuses are replies, not errors.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

impl<F> Transport for F
where
    F: Fn(http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, TransportError>,
{
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self(request)
    }
}

/// Settings of [`UreqTransport`]; `Default` gives the values documented on each field.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Time to establish the connection (default 10 s).
    pub connect_timeout: Duration,
    /// Time for the whole exchange, connect to last byte (default 30 s).
    pub timeout: Duration,
    /// Largest reply body read (default 1 MiB); a larger one is a
    /// [`TransportErrorKind::BodyTooLarge`] error.
    pub max_body: u64,
    /// The `User-Agent` header sent.
    pub user_agent: String,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: 1 << 20,
            user_agent: concat!("specauth/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The largest header block a reply may have (ureq's default, named here because the input
/// buffer is sized from it).
const MAX_REPLY_HEADER: usize = 64 * 1024;
/// What a connection reads into: a little more than [`MAX_REPLY_HEADER`], so a header block over
/// it is reported as too large rather than as a stalled connection. ureq's default is 128 KiB
/// in and 128 KiB out, zeroed for every connection: for a token reply of a few hundred bytes,
/// a quarter of a megabyte of memset and some 60 page faults in every one-shot process.
const INPUT_BUFFER: usize = MAX_REPLY_HEADER + 4 * 1024;
/// What a request is written through: its request line and headers must fit (a body goes
/// through in pieces). 32 KiB is a whole header block as large as common servers accept
/// (nginx's default is four 8 KiB buffers).
const OUTPUT_BUFFER: usize = 32 * 1024;

/// The default transport: ureq with timeouts, no automatic redirects (a token endpoint that
/// redirects is reported, not followed with credentials), a capped reply body, and statuses
/// returned rather than raised. Connections are kept alive and reused.
///
/// TLS is rustls with the ring provider and the Mozilla roots. For mutual TLS (RFC 8705:
/// `client_auth: tls_client_auth` or `self_signed_tls_client_auth`), give it the client's
/// certificate with [`UreqTransport::with_client_certificate`]; to trust a private CA instead
/// of the Mozilla roots, [`UreqTransport::with_root_certificates`].
///
/// ```
/// # let (cert_pem, key_pem) = (include_str!("../tests/keys/client-cert.pem"), include_str!("../tests/keys/ec.pem"));
/// use specauth::{Client, UreqTransport, transport::ClientCertificate};
/// let transport = UreqTransport::new()
///     .with_client_certificate(ClientCertificate::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?);
/// let client = Client::with_transport(transport);
/// # Ok::<(), specauth::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
    config: TransportConfig,
    client_certificate: Option<ClientCertificate>,
    roots: Option<tls::Roots>,
}

impl UreqTransport {
    /// A transport with [`TransportConfig::default`].
    pub fn new() -> Self {
        Self::with_config(&TransportConfig::default())
    }

    /// A transport with the given settings.
    pub fn with_config(config: &TransportConfig) -> Self {
        Self::build(config.clone(), None, None)
    }

    /// This transport presenting `certificate` to servers that ask for one (mutual TLS).
    /// Builds a new agent: connections of the old one are not reused.
    pub fn with_client_certificate(self, certificate: ClientCertificate) -> Self {
        Self::build(self.config, Some(certificate), self.roots)
    }

    /// This transport trusting only the certificate authorities in `pem` (one or more
    /// `BEGIN CERTIFICATE` blocks) instead of the Mozilla roots: a private PKI, or a test CA
    /// on 127.0.0.1. Builds a new agent.
    pub fn with_root_certificates(self, pem: &[u8]) -> Result<Self, crate::Error> {
        let roots = tls::Roots::from_pem(pem)?;
        Ok(Self::build(
            self.config,
            self.client_certificate,
            Some(roots),
        ))
    }

    /// This transport with the TLS settings a request of `spec` takes from its inputs: the
    /// client certificate of `client_certificate` and `client_key` (see
    /// [`ClientCertificate::for_grant`]: an error when `grant` authenticates by mutual TLS and
    /// they are missing), and the certificate authorities of `tls_ca_certificates` in place of
    /// the Mozilla roots. How the CLI builds its transport; unchanged when none is given.
    ///
    /// ```
    /// use specauth::{Inputs, Spec, UreqTransport};
    /// let spec = Spec::from_yaml("demo.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://auth.example.com/token" }
    /// "#)?;
    /// let plain = UreqTransport::new().with_tls_inputs(&spec, "client_credentials", &Inputs::new())?;
    /// assert!(plain.client_certificate().is_none());
    /// # Ok::<(), specauth::Error>(())
    /// ```
    pub fn with_tls_inputs(
        self,
        spec: &crate::Spec,
        grant: &str,
        inputs: &crate::Inputs,
    ) -> Result<Self, crate::Error> {
        let certificate = ClientCertificate::for_grant(spec, grant, inputs)?;
        let roots = match inputs.get(tls::CA_INPUT) {
            Some(pem) => Some(tls::Roots::from_pem(pem.as_bytes())?),
            None => self.roots,
        };
        if certificate.is_none() && roots.is_none() {
            return Ok(UreqTransport { roots, ..self });
        }
        Ok(Self::build(
            self.config,
            certificate.or(self.client_certificate),
            roots,
        ))
    }

    /// The client certificate this transport presents, if any.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.client_certificate.as_ref()
    }

    fn build(
        config: TransportConfig,
        client_certificate: Option<ClientCertificate>,
        roots: Option<tls::Roots>,
    ) -> Self {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
        let mut tls = TlsConfig::builder().unversioned_rustls_crypto_provider(tls::ring());
        if let Some(c) = &client_certificate {
            let chain: Vec<Certificate<'static>> = c
                .chain()
                .iter()
                .map(|d| Certificate::from_der(d.as_ref()).to_owned())
                .collect();
            // ureq takes a key from PEM only (its key kinds are not public); the key was
            // read and checked from PEM already, so this cannot fail.
            if let Ok(key) = PrivateKey::from_pem(c.key_pem().as_bytes()) {
                tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
            }
        }
        if let Some(r) = &roots {
            let certs: Vec<Certificate<'static>> =
                r.0.iter()
                    .map(|d| Certificate::from_der(d.as_ref()).to_owned())
                    .collect();
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        let agent_config = ureq::Agent::config_builder()
            .max_response_header_size(MAX_REPLY_HEADER)
            .input_buffer_size(INPUT_BUFFER)
            .output_buffer_size(OUTPUT_BUFFER)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .user_agent(config.user_agent.as_str())
            .tls_config(tls.build())
            .build();
        let agent = ureq::Agent::with_parts(
            agent_config,
            ureq::unversioned::transport::DefaultConnector::new(),
            AddressFirst::default(),
        );
        UreqTransport {
            agent,
            config,
            client_certificate,
            roots,
        }
    }

    /// The underlying agent (to share its connection pool).
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }
}

/// ureq's resolver, except that a URL whose host is an IP address is not looked up at all.
///
/// Under a timeout, ureq resolves every host on a thread of its own so that a slow lookup can
/// be abandoned, even `127.0.0.1`: a thread, its stack and about a tenth of a one-shot
/// `specauth token`'s page faults, for an address that needs no lookup. A host name still goes
/// through ureq's resolver, bounded by the timeout.
#[derive(Debug, Default)]
struct AddressFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for AddressFirst {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = literal_address(uri)
            && family_wanted(config.ip_family(), &addr)
        {
            let mut out = self.empty();
            out.push(addr);
            return Ok(out);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The socket address of a URL whose host is an IP address (`http://127.0.0.1:8080/…`,
/// `https://[::1]/…`), with the scheme's port when the URL names none.
fn literal_address(uri: &http::Uri) -> Option<std::net::SocketAddr> {
    let authority = uri.authority()?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: std::net::IpAddr = host.parse().ok()?;
    let port = match authority.port_u16() {
        Some(port) => port,
        None => match uri.scheme_str()? {
            "https" => 443,
            "http" => 80,
            _ => return None,
        },
    };
    Some(std::net::SocketAddr::new(ip, port))
}

fn family_wanted(family: ureq::config::IpFamily, addr: &std::net::SocketAddr) -> bool {
    use ureq::config::IpFamily;
    match family {
        IpFamily::Ipv4Only => addr.is_ipv4(),
        IpFamily::Ipv6Only => addr.is_ipv6(),
        _ => true,
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for UreqTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        // Kept for an error's message only: a clone of a parsed URI shares its bytes.
        let uri = request.uri().clone();
        let host = || uri.host().unwrap_or("?");
        let reply = self
            .agent
            .run(request)
            .map_err(|e| map_error(e, host(), self.config.max_body))?;
        let (parts, mut body) = reply.into_parts();
        let bytes = body
            .with_config()
            .limit(self.config.max_body)
            .read_to_vec()
            .map_err(|e| map_error(e, host(), self.config.max_body))?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}

/// ureq's error as a [`TransportError`]; the message names the host, never the path or query
/// (which may carry secrets on GET token endpoints).
fn map_error(e: ureq::Error, host: &str, max_body: u64) -> TransportError {
    use TransportErrorKind::*;
    match e {
        ureq::Error::Timeout(what) => {
            TransportError::new(Timeout, format!("timed out talking to {host} ({what})"))
        }
        ureq::Error::BodyExceedsLimit(_) => TransportError::new(
            BodyTooLarge,
            format!("reply from {host} is larger than the {max_body}-byte limit"),
        ),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            TransportError::new(Timeout, format!("timed out talking to {host}"))
        }
        ureq::Error::Io(io) => TransportError::new(Connect, format!("cannot reach {host}: {io}")),
        ureq::Error::HostNotFound => {
            TransportError::new(Connect, format!("cannot resolve host {host}"))
        }
        ureq::Error::ConnectionFailed => {
            TransportError::new(Connect, format!("cannot connect to {host}"))
        }
        ureq::Error::Tls(msg) => {
            TransportError::new(Connect, format!("TLS failure with {host}: {msg}"))
        }
        other => TransportError::new(
            Other,
            format!("HTTP failure with {host}: {}", describe(&other)),
        ),
    }
}

/// ureq's message without any URL it may quote.
fn describe(e: &ureq::Error) -> String {
    let s = e.to_string();
    match s.find("http") {
        Some(i) => s[..i].trim_end().trim_end_matches(':').to_owned(),
        None => s,
    }
}

/// A boxed future that is `Send`: what [`AsyncTransport::send`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The reply of an [`AsyncTransport`].
pub type AsyncReply<'a> = BoxFuture<'a, Result<http::Response<Vec<u8>>, TransportError>>;

/// Sends one HTTP request without blocking the thread, and returns the reply whatever its
/// status: the async twin of [`Transport`], used by [`crate::AsyncClient`].
///
/// `send` returns a boxed `Send` future rather than being an `async fn`: a trait with an
/// `async fn` cannot be used as `dyn AsyncTransport`, and its futures cannot be required to
/// be `Send` on stable Rust, which `tokio::spawn` needs. One allocation per token request is
/// nothing beside a network round trip.
///
/// Implemented by [`ReqwestTransport`] (feature `reqwest`) and by any closure that takes the
/// request and returns a `Send + 'static` future of the reply (`|req| async move { … }`), so
/// tests and applications can bring their own HTTP stack.
///
/// ```
/// use specauth::{AsyncTransport, TransportError};
/// let fake = |req: http::Request<Vec<u8>>| async move {
///     assert_eq!(req.method(), "POST");
///     Ok::<_, TransportError>(http::Response::builder().status(200)
///         .body(br#"{"access_token":"t"}"#.to_vec()).unwrap())
/// };
/// let transport: &dyn AsyncTransport = &fake;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let request = http::Request::post("https://x.test/token").body(vec![]).unwrap();
/// let reply = transport.send(request).await.unwrap();
/// assert_eq!(reply.status(), 200);
/// # });
/// ```
pub trait AsyncTransport: Send + Sync {
    /// Sends `request`. Non-2xx statuses are replies, not errors.
    fn send(&self, request: http::Request<Vec<u8>>) -> AsyncReply<'_>;
}

impl<F, Fut> AsyncTransport for F
where
    F: Fn(http::Request<Vec<u8>>) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<http::Response<Vec<u8>>, TransportError>>
        + Send
        + 'static,
{
    fn send(&self, request: http::Request<Vec<u8>>) -> AsyncReply<'_> {
        Box::pin(self(request))
    }
}

impl<T: AsyncTransport + ?Sized> AsyncTransport for std::sync::Arc<T> {
    fn send(&self, request: http::Request<Vec<u8>>) -> AsyncReply<'_> {
        (**self).send(request)
    }
}

#[cfg(feature = "reqwest")]
mod reqwest_transport;
#[cfg(feature = "reqwest")]
pub use reqwest_transport::ReqwestTransport;

#[cfg(test)]
mod tests {
    use super::literal_address;

    #[test]
    fn an_ip_address_needs_no_lookup_and_a_name_does() {
        let addr = |url: &str| literal_address(&url.parse().expect("a URL"));
        assert_eq!(
            addr("http://127.0.0.1:8080/token"),
            Some("127.0.0.1:8080".parse().expect("an address"))
        );
        assert_eq!(
            addr("https://10.1.2.3/token"),
            Some("10.1.2.3:443".parse().expect("an address"))
        );
        assert_eq!(
            addr("http://[::1]/token"),
            Some("[::1]:80".parse().expect("an address"))
        );
        assert_eq!(addr("https://auth.example.com/token"), None);
        assert_eq!(addr("https://localhost:8443/token"), None);
        // Not an address, whatever it looks like: left to the resolver, which refuses it.
        assert_eq!(addr("http://127.0.0.1.example/token"), None);
        assert_eq!(addr("http://999.1.1.1/token"), None);
    }
}
