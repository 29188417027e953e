//! DPoP (RFC 9449): sender-constrained tokens. A [`DpopKey`] is an ES256 key pair kept with a
//! cached token; every request that obtains or uses the token carries a proof, a JWT signed
//! with that key over the request's method and URL (and the token's hash when one is
//! presented).
//!
//! ```
//! use specauth::dpop::DpopKey;
//! let key = DpopKey::generate()?;
//! let proof = key.proof("POST", "https://as.example.com/token?x=1", None, None)?;
//! // header.claims.signature; the header carries the public key, never the private one
//! assert_eq!(proof.split('.').count(), 3);
//! assert!(!format!("{key:?}").contains(key.secret().secret()));
//! # Ok::<(), specauth::Error>(())
//! ```

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::client::Client;
use crate::error::Error;
use crate::inputs::Inputs;
use crate::secret::Secret;
use crate::spec::{RequestKind, Spec};
use crate::token::Outcome;
use crate::transport::Transport;

/// How many times a request is sent again with a fresh `DPoP-Nonce` (RFC 9449 §8): a server
/// that asks for a new nonce on every try cannot keep the client in a loop.
pub const MAX_NONCE_RETRIES: usize = 2;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An ES256 (P-256) key pair for DPoP proofs. `Debug` shows only the public key's thumbprint.
#[derive(Clone)]
pub struct DpopKey {
    /// The private scalar, base64url: what the token store keeps.
    d: Secret,
    encoding: EncodingKey,
    jwk: Jwk,
    thumbprint: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for DpopKey {
    fn eq(&self, other: &Self) -> bool {
        self.d == other.d
    }
}

impl DpopKey {
    /// A fresh key pair from the OS's random source.
    pub fn generate() -> Result<DpopKey, Error> {
        // A uniformly random 32-byte string is a valid P-256 scalar but for a chance of about
        // 2^-32; a few draws are plenty.
        for _ in 0..8 {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut())
                .map_err(|e| Error::Usage(format!("no randomness from the OS: {e}")))?;
            if let Ok(key) = p256::SecretKey::from_slice(bytes.as_ref()) {
                return Self::from_secret_key(&key);
            }
        }
        Err(Error::Usage("could not draw a P-256 key".to_owned()))
    }

    /// The key whose private scalar is `d` (base64url, as [`DpopKey::secret`] gives it).
    pub fn from_secret(d: &str) -> Result<DpopKey, Error> {
        let bad = || Error::Usage("the stored DPoP key is not a P-256 private key".to_owned());
        let bytes = zeroize::Zeroizing::new(B64.decode(d.trim()).map_err(|_| bad())?);
        let key = p256::SecretKey::from_slice(&bytes).map_err(|_| bad())?;
        Self::from_secret_key(&key)
    }

    fn from_secret_key(key: &p256::SecretKey) -> Result<DpopKey, Error> {
        let der = key
            .to_pkcs8_der()
            .map_err(|_| Error::Usage("cannot encode the DPoP key".to_owned()))?;
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .map_err(|_| Error::Usage("cannot derive the DPoP public key".to_owned()))?;
        // The proof's header carries the bare public key (RFC 9449 §4.2).
        jwk.common = Default::default();
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| Error::Usage("cannot hash the DPoP public key".to_owned()))?;
        Ok(DpopKey {
            d: Secret::new(B64.encode(key.to_bytes())),
            encoding,
            jwk,
            thumbprint,
        })
    }

    /// The private scalar, base64url: for the token store only.
    pub fn secret(&self) -> &Secret {
        &self.d
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`).
    pub fn public_jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).unwrap_or(Value::Null)
    }

    /// The public key's JWK SHA-256 thumbprint (RFC 7638), the `jkt` a server binds tokens to.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A DPoP proof (RFC 9449 §4.2) for a request of `method` to `url`: `htm`, `htu` (the URL
    /// without query and fragment), `iat`, a fresh `jti`, the server's `nonce` when it asked
    /// for one, and `ath` (the access token's SHA-256, base64url) when a token is presented.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, Error> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = json!({
            "htm": method,
            "htu": htu,
            "iat": crate::client::now(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = access_token {
            claims["ath"] = json!(B64.encode(sha2::Sha256::digest(t.as_bytes())));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| Error::Usage(format!("signing the DPoP proof failed ({:?})", e.kind())))
    }
}

/// Whether the server bound `token` to the DPoP key its request proved: RFC 9449 §5 says it
/// answers `token_type: DPoP` when it did. A server that does not support DPoP ignores the
/// proof and answers `Bearer`; the token is then a plain bearer token, which a DPoP
/// `Authorization` header would only get refused.
///
/// ```
/// use specauth::{Secret, Token};
/// let mut token = Token::bearer(Secret::new("t"));
/// assert!(!specauth::dpop::binds(&token));
/// token.token_type = "DPoP".into();
/// assert!(specauth::dpop::binds(&token));
/// ```
pub fn binds(token: &crate::token::Token) -> bool {
    token.token_type.trim().eq_ignore_ascii_case("dpop")
}

/// Sends `kind` of `spec` with a DPoP proof (RFC 9449 §5), and normalises the reply.
///
/// `nonce` is the last `DPoP-Nonce` the server gave (updated from every reply). When the
/// server answers `use_dpop_nonce` with a new nonce, the request is sent again with it, at most
/// [`MAX_NONCE_RETRIES`] times.
pub fn send<T: Transport>(
    client: &Client<T>,
    spec: &Spec,
    kind: impl Into<RequestKind>,
    inputs: &Inputs,
    key: &DpopKey,
    nonce: &mut Option<String>,
) -> Result<Outcome, Error> {
    let kind = kind.into();
    let mut tries = 0;
    loop {
        let request = spec.render(&kind, inputs)?;
        tracing::debug!("→ {} (DPoP)\n{}", kind.name(), request.redacted());
        let mut request = request.into_http();
        let proof = key.proof(
            request.method().as_str(),
            &request.uri().to_string(),
            nonce.as_deref(),
            None,
        )?;
        let value = http::HeaderValue::from_str(&proof)
            .map_err(|_| Error::Usage("the DPoP proof is not a header value".to_owned()))?;
        request.headers_mut().insert("dpop", value);
        let reply = client.transport().send(request)?;
        tracing::debug!("← HTTP {}", reply.status());
        let fresh = reply
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .filter(|n| !n.is_empty() && n.len() <= 1024)
            .map(str::to_owned);
        let changed = fresh.is_some() && fresh != *nonce;
        if fresh.is_some() {
            *nonce = fresh;
        }
        let outcome = spec.normalise(&kind, inputs, &reply, crate::client::now());
        match outcome {
            Err(Error::Provider(p)) if p.code.as_deref() == Some("use_dpop_nonce") && changed => {
                if tries >= MAX_NONCE_RETRIES {
                    return Err(Error::Provider(p));
                }
                tries += 1;
                tracing::debug!("the server asked for a DPoP nonce; sending again");
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_carries_the_claims_and_verifies_with_the_public_key() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof(
                "GET",
                "https://api.example.com/r?q=1#f",
                Some("n0nce"),
                Some("tok"),
            )
            .unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        let header = decode(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header["jwk"].get("d").is_none(), "{header}");
        let claims = decode(parts[1]);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example.com/r");
        assert_eq!(claims["nonce"], "n0nce");
        // RFC 9449 §4.2: base64url(SHA-256("tok"))
        assert_eq!(
            claims["ath"],
            B64.encode(sha2::Sha256::digest(b"tok")).as_str()
        );
        assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
        // RFC 9449 §4.2: iat is now, in whole seconds (servers accept only a short window).
        let iat = claims["iat"].as_u64().expect("iat is a number");
        let now = crate::client::now();
        assert!(iat <= now && now - iat <= 5, "iat {iat}, now {now}");
        // The signature verifies with the public key in the header.
        let jwk: Jwk = serde_json::from_value(header["jwk"].clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(&proof, &decoding, &validation).unwrap();
        // Two proofs never share a jti.
        let again = key
            .proof("GET", "https://api.example.com/r", None, None)
            .unwrap();
        assert_ne!(
            decode(again.split('.').nth(1).unwrap())["jti"],
            claims["jti"]
        );
    }

    #[test]
    fn a_key_survives_the_store_and_never_shows_its_secret() {
        let key = DpopKey::generate().unwrap();
        let again = DpopKey::from_secret(key.secret().secret()).unwrap();
        assert_eq!(key, again);
        assert_eq!(key.thumbprint(), again.thumbprint());
        assert_eq!(key.thumbprint().len(), 43);
        let shown = format!("{key:?} {}", key.public_jwk());
        assert!(!shown.contains(key.secret().secret()), "{shown}");
        assert!(DpopKey::from_secret("not a key").is_err());
        assert!(DpopKey::from_secret(&B64.encode([0u8; 32])).is_err());
    }

    #[test]
    fn a_server_that_always_wants_a_new_nonce_is_given_up_on() {
        let spec = crate::Spec::from_yaml(
            "d.yaml",
            "extends: oauth2\nendpoints: { token: \"https://as.example.com/token\" }\n",
        )
        .unwrap();
        let sent = std::sync::atomic::AtomicUsize::new(0);
        let transport =
            |r: http::Request<Vec<u8>>| -> Result<http::Response<Vec<u8>>, crate::TransportError> {
                let n = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert!(r.headers().contains_key("dpop"));
                Ok(http::Response::builder()
                    .status(400)
                    .header("content-type", "application/json")
                    .header("dpop-nonce", format!("nonce-{n}"))
                    .body(br#"{"error":"use_dpop_nonce"}"#.to_vec())
                    .unwrap())
            };
        let client = Client::with_transport(transport);
        let key = DpopKey::generate().unwrap();
        let inputs = Inputs::new().with("client_id", "a");
        let mut nonce = None;
        let e = send(
            &client,
            &spec,
            "client_credentials",
            &inputs,
            &key,
            &mut nonce,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Provider(p) if p.code.as_deref() == Some("use_dpop_nonce")),
            "{e}"
        );
        assert_eq!(
            sent.load(std::sync::atomic::Ordering::SeqCst),
            1 + MAX_NONCE_RETRIES
        );
        assert_eq!(nonce.as_deref(), Some("nonce-2"));
    }
}
