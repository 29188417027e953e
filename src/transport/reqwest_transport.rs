//! The async transport over reqwest (feature `reqwest`).

use std::error::Error as _;

use super::tls::Roots;
use super::{AsyncReply, AsyncTransport, ClientCertificate, TransportConfig};
use crate::error::{TransportError, TransportErrorKind};

/// The async transport: a reqwest client with the guarantees of [`super::UreqTransport`]:
/// a connect timeout and a timeout for the whole exchange (connect to last body byte), no
/// automatic redirects (a token endpoint that redirects is reported as its 3xx reply, never
/// followed with credentials), a capped reply body, and statuses returned rather than raised.
///
/// The client is built here from a [`TransportConfig`] rather than taken from the caller,
/// because redirects and timeouts are settings of a whole `reqwest::Client`: a client built
/// elsewhere could follow a redirect with the client secret. Clones share one connection pool.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use specauth::{AsyncClient, Inputs, Spec};
/// use specauth::transport::ReqwestTransport;
/// let server = specauth::testing::ReplayServer::start().unwrap();
/// server.push(http::Response::builder().status(200)
///     .header("content-type", "application/json")
///     .body(br#"{"access_token":"t","expires_in":60}"#.to_vec()).unwrap());
/// let spec = Spec::from_yaml("demo.yaml", r#"
/// extends: oauth2
/// endpoints: { token: "https://auth.example.com/oauth/token" }
/// "#).unwrap().with_origin(&server.origin()).unwrap();
/// let client = AsyncClient::with_transport(ReqwestTransport::new().unwrap());
/// let token = client.token(&spec, "client_credentials", &Inputs::new().with("client_id", "app"))
///     .await.unwrap();
/// assert_eq!(token.access_token.secret(), "t");
/// # });
/// ```
///
/// For mutual TLS (RFC 8705), [`ReqwestTransport::with_client_certificate`]; to trust a private
/// CA instead of the Mozilla roots, [`ReqwestTransport::with_root_certificates`].
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    config: TransportConfig,
    client_certificate: Option<ClientCertificate>,
    roots: Option<Roots>,
}

impl ReqwestTransport {
    /// A transport with [`TransportConfig::default`]. Fails only when the TLS backend cannot
    /// be set up.
    pub fn new() -> Result<Self, TransportError> {
        Self::with_config(&TransportConfig::default())
    }

    /// A transport with the given settings.
    pub fn with_config(config: &TransportConfig) -> Result<Self, TransportError> {
        Self::build(config.clone(), None, None)
    }

    /// This transport presenting `certificate` to servers that ask for one (mutual TLS).
    /// Builds a new client: connections of the old one are not reused.
    pub fn with_client_certificate(
        self,
        certificate: ClientCertificate,
    ) -> Result<Self, TransportError> {
        Self::build(self.config, Some(certificate), self.roots)
    }

    /// This transport trusting only the certificate authorities in `pem` (one or more
    /// `BEGIN CERTIFICATE` blocks) instead of the Mozilla roots: a private PKI, or a test CA
    /// on 127.0.0.1. Builds a new client.
    pub fn with_root_certificates(self, pem: &[u8]) -> Result<Self, crate::Error> {
        let roots = Roots::from_pem(pem)?;
        Ok(Self::build(
            self.config,
            self.client_certificate,
            Some(roots),
        )?)
    }

    fn build(
        config: TransportConfig,
        client_certificate: Option<ClientCertificate>,
        roots: Option<Roots>,
    ) -> Result<Self, TransportError> {
        let tls = tls_config(client_certificate.as_ref(), roots.as_ref())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.as_str())
            .build()
            .map_err(|e| {
                TransportError::new(
                    TransportErrorKind::Other,
                    format!("cannot set up the HTTP client: {}", describe(&e)),
                )
            })?;
        Ok(ReqwestTransport {
            client,
            config,
            client_certificate,
            roots,
        })
    }

    /// The underlying client (to share its connection pool with the rest of the application;
    /// it follows no redirects).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let host = request.uri().host().unwrap_or("?").to_owned();
        let request = reqwest::Request::try_from(request).map_err(|e| map_error(&e, &host))?;
        let mut reply = self
            .client
            .execute(request)
            .await
            .map_err(|e| map_error(&e, &host))?;
        let too_large = || {
            TransportError::new(
                TransportErrorKind::BodyTooLarge,
                format!(
                    "reply from {host} is larger than the {}-byte limit",
                    self.config.max_body
                ),
            )
        };
        // A declared length over the cap is refused before reading; the count below holds
        // for replies that declare none (or lie).
        if reply
            .content_length()
            .is_some_and(|n| n > self.config.max_body)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = reply.chunk().await.map_err(|e| map_error(&e, &host))? {
            if body.len() as u64 + chunk.len() as u64 > self.config.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = reply.status();
        *out.version_mut() = reply.version();
        *out.headers_mut() = std::mem::take(reply.headers_mut());
        Ok(out)
    }
}

/// rustls with the ring provider and the webpki roots (or the given ones): the TLS stack ureq
/// uses, so the crate carries one crypto library.
fn tls_config(
    certificate: Option<&ClientCertificate>,
    roots: Option<&Roots>,
) -> Result<rustls::ClientConfig, TransportError> {
    let setup = |e: rustls::Error| {
        TransportError::new(TransportErrorKind::Other, format!("cannot set up TLS: {e}"))
    };
    let store = match roots {
        None => rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(r) => {
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(r.0.iter().cloned());
            store
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(super::tls::ring())
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .with_root_certificates(store);
    let mut config = match certificate {
        None => builder.with_no_client_auth(),
        // Checked when the certificate was read; an error here names no key material.
        Some(c) => builder
            .with_client_auth_cert(c.chain().to_vec(), c.key().clone_key())
            .map_err(setup)?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl AsyncTransport for ReqwestTransport {
    fn send(&self, request: http::Request<Vec<u8>>) -> AsyncReply<'_> {
        Box::pin(self.exchange(request))
    }
}

/// reqwest's error as a [`TransportError`]; the message names the host, never the path or
/// query (which may carry secrets on GET token endpoints).
fn map_error(e: &reqwest::Error, host: &str) -> TransportError {
    use TransportErrorKind::*;
    let detail = describe(e);
    if e.is_timeout() {
        TransportError::new(Timeout, format!("timed out talking to {host} ({detail})"))
    } else if e.is_connect() {
        TransportError::new(Connect, format!("cannot reach {host}: {detail}"))
    } else {
        TransportError::new(Other, format!("HTTP failure with {host}: {detail}"))
    }
}

/// The error and its causes, without any URL they may quote.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![without_urls(&e.to_string())];
    let mut source = e.source();
    while let Some(s) = source {
        let text = without_urls(&s.to_string());
        if !text.is_empty() && !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.retain(|p| !p.is_empty());
    parts.join(": ")
}

/// `text` cut before the first URL it quotes (reqwest names the request's URL, query
/// included, in its messages).
fn without_urls(text: &str) -> String {
    let cut = text.find("http://").or_else(|| text.find("https://"));
    let kept = cut.map_or(text, |i| &text[..i]);
    kept.trim_end()
        .trim_end_matches(['(', ':', ' '])
        .trim_end_matches(" for url")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::without_urls;

    #[test]
    fn urls_are_cut_from_messages() {
        assert_eq!(
            without_urls("error sending request for url (https://x.test/token?code=secret)"),
            "error sending request"
        );
        assert_eq!(without_urls("connection refused"), "connection refused");
    }
}
