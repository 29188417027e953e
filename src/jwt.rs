//! Signing JSON Web Tokens for client assertions (RFC 7523 §2.2, `private_key_jwt` and
//! `client_secret_jwt`) and for JWT-bearer grants (RFC 7523 §2.1), with the `jsonwebtoken`
//! crate. Key material never appears in an error.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// What a JWT is signed with, and what its header says.
pub(crate) struct Signing<'a> {
    /// `RS256`, `PS256`, `ES256`, `EdDSA`, `HS256`… (RFC 7518 names).
    pub(crate) alg: &'a str,
    /// A PEM private key (RSA, EC or Ed25519), or the shared secret for `HS*`.
    pub(crate) key: &'a str,
    pub(crate) kid: Option<&'a str>,
    /// The certificate's SHA-256 thumbprint (`x5t#S256`), base64url.
    pub(crate) x5t_s256: Option<&'a str>,
}

/// `claims` signed as a compact JWS, or why not (never with the key in the message).
pub(crate) fn sign(claims: &serde_json::Value, signing: &Signing) -> Result<String, String> {
    if !claims.is_object() {
        return Err("the claims must be a map".to_owned());
    }
    let alg: Algorithm = signing.alg.parse().map_err(|_| {
        format!(
            "unknown JWT algorithm `{}`; expected HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA",
            signing.alg
        )
    })?;
    let key = signing.key.as_bytes();
    let bad_key = |what: &str| format!("the key is not {what} (for {})", signing.alg);
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            if key.is_empty() {
                return Err("the shared secret is empty".to_owned());
            }
            EncodingKey::from_secret(key).map_err(|_| bad_key("a usable secret"))?
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            EncodingKey::from_rsa_pem(key).map_err(|_| bad_key("an RSA private key in PEM"))?
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            EncodingKey::from_ec_pem(key).map_err(|_| bad_key("an EC private key in PEM"))?
        }
        Algorithm::EdDSA => {
            EncodingKey::from_ed_pem(key).map_err(|_| bad_key("an Ed25519 private key in PEM"))?
        }
        #[allow(unreachable_patterns)]
        _ => return Err(format!("JWT algorithm `{}` is not supported", signing.alg)),
    };
    let mut header = Header::new(alg);
    header.kid = signing.kid.filter(|k| !k.is_empty()).map(str::to_owned);
    header.x5t_s256 = signing
        .x5t_s256
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key)
        // The crate's message can quote what it parsed; only its kind is kept.
        .map_err(|e| {
            format!("signing failed ({:?})", e.kind())
                .chars()
                .take(120)
                .collect()
        })
}

/// A JWT with its signature replaced by `[redacted]`: the header and claims of a client
/// assertion are not secret, and a preview can show them.
pub(crate) fn redact_signature(jwt: &str) -> Option<String> {
    let mut parts = jwt.split('.');
    let (header, claims, _) = (parts.next()?, parts.next()?, parts.next()?);
    parts
        .next()
        .is_none()
        .then(|| format!("{header}.{claims}.{}", crate::secret::REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// A throwaway 2048-bit RSA key for the tests (generated with openssl for this file).
    pub(crate) const RSA_KEY: &str = include_str!("../tests/keys/rsa.pem");
    pub(crate) const EC_KEY: &str = include_str!("../tests/keys/ec.pem");

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let text = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn signs_with_rsa_ec_and_hmac_and_names_bad_keys_without_quoting_them() {
        let claims = serde_json::json!({"iss": "app", "aud": "https://a.example/t", "exp": 1});
        for (alg, key) in [
            ("RS256", RSA_KEY),
            ("PS256", RSA_KEY),
            ("ES256", EC_KEY),
            ("HS256", "s3cret-shared"),
        ] {
            let jwt = sign(
                &claims,
                &Signing {
                    alg,
                    key,
                    kid: Some("k1"),
                    x5t_s256: None,
                },
            )
            .unwrap();
            assert_eq!(part(&jwt, 0)["alg"], alg);
            assert_eq!(part(&jwt, 0)["kid"], "k1");
            assert_eq!(part(&jwt, 1), claims);
        }
        let e = sign(
            &claims,
            &Signing {
                alg: "ES256",
                key: RSA_KEY,
                kid: None,
                x5t_s256: None,
            },
        )
        .unwrap_err();
        assert!(e.contains("not an EC private key"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
        let e = sign(
            &claims,
            &Signing {
                alg: "XS1",
                key: "k",
                kid: None,
                x5t_s256: None,
            },
        )
        .unwrap_err();
        assert!(e.contains("unknown JWT algorithm `XS1`"), "{e}");
        let jwt = sign(
            &claims,
            &Signing {
                alg: "RS256",
                key: RSA_KEY,
                kid: None,
                x5t_s256: Some("dGh1bWI"),
            },
        )
        .unwrap();
        assert_eq!(part(&jwt, 0)["x5t#S256"], "dGh1bWI");
        assert_eq!(redact_signature(&jwt).unwrap().matches('.').count(), 2);
        assert!(redact_signature(&jwt).unwrap().ends_with(".[redacted]"));
    }
}
