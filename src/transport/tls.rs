//! TLS settings shared by the transports: the client certificate of mutual TLS (RFC 8705)
//! and the certificate authorities a transport trusts instead of the bundled Mozilla roots.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// The input a spec declares for the client certificate chain (PEM).
pub const CERTIFICATE_INPUT: &str = "client_certificate";
/// The input a spec declares for the client certificate's private key (PEM, secret).
pub const KEY_INPUT: &str = "client_key";
/// The input a spec declares for the certificate authorities to trust instead of the Mozilla
/// roots (PEM).
pub const CA_INPUT: &str = "tls_ca_certificates";

/// A client certificate chain and its private key: the client's credential under mutual TLS
/// (`tls_client_auth` and `self_signed_tls_client_auth`, RFC 8705 §2).
///
/// Rendering is sans-IO, so the certificate is not part of a rendered request: it belongs to
/// the connection. Give it to the transport
/// ([`UreqTransport::with_client_certificate`](crate::UreqTransport::with_client_certificate),
/// `ReqwestTransport::with_client_certificate`), which presents it to every server that asks
/// for one. The key is checked against the certificate when read, and `Debug` shows neither.
///
/// ```
/// # let (cert_pem, key_pem) = (include_str!("../../tests/keys/client-cert.pem"), include_str!("../../tests/keys/ec.pem"));
/// use specauth::transport::ClientCertificate;
/// let certificate = ClientCertificate::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
/// assert_eq!(certificate.thumbprint().len(), 43); // base64url SHA-256, the `x5t#S256`
/// let transport = specauth::UreqTransport::new().with_client_certificate(certificate);
/// # Ok::<(), specauth::Error>(())
/// ```
pub struct ClientCertificate {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientCertificate {
    /// The certificate chain (leaf first) and the private key (PKCS#8, PKCS#1 or SEC1), both
    /// PEM. Errors name the input (`client_certificate`, `client_key`) and what is wrong,
    /// never the key's content.
    pub fn from_pem(certificate_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let chain = certificates(certificate_pem, CERTIFICATE_INPUT)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| Error::Input {
            name: KEY_INPUT.to_owned(),
            problem: match e {
                pem::Error::NoItemsFound => {
                    "no PEM private key found (expected BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)".to_owned()
                }
                other => format!("not a readable PEM private key ({})", pem_problem(&other)),
            },
        })?;
        // The check ureq and reqwest would make when connecting, made now so a wrong key is
        // an error naming the input rather than a failure inside the TLS stack.
        rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &ring()).map_err(
            |e| Error::Input {
                name: KEY_INPUT.to_owned(),
                problem: match e {
                    rustls::Error::InconsistentKeys(_) => {
                        "the key does not belong to the certificate in `client_certificate`"
                            .to_owned()
                    }
                    _ => "the key cannot be used for TLS (unsupported or damaged key)".to_owned(),
                },
            },
        )?;
        Ok(ClientCertificate { chain, key })
    }

    /// The certificate from the inputs `client_certificate` and `client_key` (PEM values;
    /// `--set client_key=@key.pem` on the command line), or `None` when neither is set. One
    /// without the other is an error naming the missing one.
    ///
    /// ```
    /// use specauth::{Inputs, transport::ClientCertificate};
    /// assert!(ClientCertificate::from_inputs(&Inputs::new().with("client_id", "app"))?.is_none());
    /// let half = Inputs::new().with("client_key", "-----BEGIN PRIVATE KEY-----");
    /// let err = ClientCertificate::from_inputs(&half).unwrap_err().to_string();
    /// assert!(err.starts_with("input `client_certificate`"), "{err}");
    /// # Ok::<(), specauth::Error>(())
    /// ```
    pub fn from_inputs(inputs: &crate::Inputs) -> Result<Option<Self>, Error> {
        let missing = |name: &str, other: &str| Error::Input {
            name: name.to_owned(),
            problem: format!("not set, but `{other}` is: mutual TLS needs both"),
        };
        match (inputs.get(CERTIFICATE_INPUT), inputs.get(KEY_INPUT)) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(missing(KEY_INPUT, CERTIFICATE_INPUT)),
            (None, Some(_)) => Err(missing(CERTIFICATE_INPUT, KEY_INPUT)),
            (Some(cert), Some(key)) => Self::from_pem(cert.as_bytes(), key.as_bytes()).map(Some),
        }
    }

    /// The certificate a request of `spec` presents: the one in the inputs (see
    /// [`ClientCertificate::from_inputs`]); when there is none and `grant` authenticates the
    /// client by mutual TLS (`tls_client_auth`, `self_signed_tls_client_auth`), an error
    /// naming the missing `client_certificate` input. How the CLI builds its transport.
    ///
    /// ```
    /// use specauth::{Inputs, Spec, transport::ClientCertificate};
    /// let spec = Spec::from_yaml("mtls.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://mtls.example.com/token" }
    /// client_auth: tls_client_auth
    /// "#)?;
    /// let err = ClientCertificate::for_grant(&spec, "client_credentials", &Inputs::new().with("client_id", "app"))
    ///     .unwrap_err().to_string();
    /// assert!(err.starts_with("input `client_certificate`: required by grant `client_credentials` (tls_client_auth)"), "{err}");
    /// # Ok::<(), specauth::Error>(())
    /// ```
    pub fn for_grant(
        spec: &crate::Spec,
        grant: &str,
        inputs: &crate::Inputs,
    ) -> Result<Option<Self>, Error> {
        let found = Self::from_inputs(inputs)?;
        match spec.client_auth(grant) {
            Some(method) if method.is_mutual_tls() && found.is_none() => Err(Error::MissingInput {
                name: CERTIFICATE_INPUT.to_owned(),
                needed_by: format!("grant `{grant}` ({})", method.as_str()),
                spec: spec.id().to_owned(),
                description: spec
                    .inputs()
                    .find(|(n, _)| *n == CERTIFICATE_INPUT)
                    .and_then(|(_, d)| d.description.clone()),
                allowed: None,
            }),
            _ => Ok(found),
        }
    }

    /// The SHA-256 thumbprint of the leaf certificate, base64url without padding: the
    /// `x5t#S256` a server binds its tokens to (RFC 8705 §3.1), in their `cnf` claim.
    pub fn thumbprint(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let leaf = self.chain.first().map_or(&[][..], |c| c.as_ref());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(leaf))
    }

    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// The key as PEM again (wiped when dropped).
    pub(crate) fn key_pem(&self) -> zeroize::Zeroizing<String> {
        use base64::Engine as _;
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        let body = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(self.key.secret_der()),
        );
        let mut pem =
            zeroize::Zeroizing::new(String::with_capacity(body.len() + body.len() / 64 + 128));
        pem.push_str(&format!("-----BEGIN {label}-----\n"));
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str(&format!("-----END {label}-----\n"));
        pem
    }
}

impl Clone for ClientCertificate {
    fn clone(&self) -> Self {
        ClientCertificate {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .field("chain_len", &self.chain.len())
            .field("key", &crate::REDACTED)
            .finish()
    }
}

/// Certificate authorities to trust instead of the bundled Mozilla roots (a private PKI, a
/// test CA), read from PEM.
#[derive(Clone, Debug)]
pub(crate) struct Roots(pub(crate) Arc<Vec<CertificateDer<'static>>>);

impl Roots {
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        certificates(pem, CA_INPUT).map(|c| Roots(Arc::new(c)))
    }
}

/// Every certificate in `pem`, at least one.
fn certificates(pem: &[u8], input: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |problem: String| Error::Input {
        name: input.to_owned(),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not readable PEM ({})", pem_problem(&e))))?;
    if chain.is_empty() {
        return Err(bad(
            "no PEM certificate found (expected BEGIN CERTIFICATE)".to_owned()
        ));
    }
    Ok(chain)
}

/// What is wrong with a PEM text, without quoting it (a base64 error would quote the key).
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "the base64 inside is damaged",
        pem::Error::NoItemsFound => "nothing found",
        _ => "unreadable",
    }
}

/// The crypto provider both transports use: ring, as ureq does by default, so a key checked
/// here is a key the transport accepts.
pub(crate) fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::ClientCertificate;

    const CERT: &str = include_str!("../../tests/keys/client-cert.pem");
    const KEY: &str = include_str!("../../tests/keys/ec.pem");
    const OTHER_KEY: &str = include_str!("../../tests/keys/rsa.pem");

    fn err(cert: &str, key: &str) -> String {
        ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_certificate_and_its_key_are_read_and_shown_redacted() {
        let c = ClientCertificate::from_pem(CERT.as_bytes(), KEY.as_bytes()).unwrap();
        let shown = format!("{c:?}");
        assert_eq!(
            shown,
            format!(
                "ClientCertificate {{ x5t#S256: \"{}\", chain_len: 1, key: \"[redacted]\" }}",
                c.thumbprint()
            )
        );
        // The PEM handed to ureq is the same key.
        assert_eq!(
            rustls::pki_types::pem::PemObject::from_pem_slice(c.key_pem().as_bytes())
                .map(|k: rustls::pki_types::PrivateKeyDer| k.secret_der().to_vec())
                .unwrap(),
            c.key().secret_der()
        );
    }

    #[test]
    fn bad_pem_is_named_without_quoting_it() {
        assert_eq!(
            err(CERT, OTHER_KEY),
            "input `client_key`: the key does not belong to the certificate in `client_certificate`"
        );
        assert_eq!(
            err(CERT, "not a key"),
            "input `client_key`: no PEM private key found (expected BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
        );
        assert_eq!(
            err(KEY, KEY),
            "input `client_certificate`: no PEM certificate found (expected BEGIN CERTIFICATE)"
        );
        // A damaged key: the message names the damage, not the content.
        let damaged = KEY.replacen("M", "!", 1);
        let message = err(CERT, &damaged);
        assert_eq!(
            message,
            "input `client_key`: not a readable PEM private key (the base64 inside is damaged)"
        );
        let truncated = &KEY[..KEY.len() - 30];
        let message = err(CERT, truncated);
        assert_eq!(
            message,
            "input `client_key`: not a readable PEM private key (a section has no END line)"
        );
    }
}
