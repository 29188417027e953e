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
    let is_jwk = signing.key.trim_start().starts_with('{');
    let mut jwk_kid = None;
    let key = match alg {
        _ if is_jwk => {
            let (key, kid) = jwk_key(alg, signing.key)?;
            jwk_kid = kid;
            key
        }
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
    header.kid = signing
        .kid
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .or(jwk_kid);
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

/// A private key given as a JWK (RFC 7517, RFC 7518 §6): RSA (`n`, `e`, `d`, `p`, `q`, `dp`,
/// `dq`, `qi`), EC P-256 / P-384 (`d`) or OKP Ed25519 (`d`), as the DER `jsonwebtoken` signs
/// with, and the JWK's `kid`. Errors name the member, never its value.
fn jwk_key(alg: Algorithm, text: &str) -> Result<(EncodingKey, Option<String>), String> {
    use base64::Engine as _;
    use p256::pkcs8::EncodePrivateKey as _;
    let jwk: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| "the key starts like a JWK but is not JSON".to_owned())?;
    let member = |name: &str| -> Result<Vec<u8>, String> {
        let text = jwk
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("the JWK has no `{name}` (a private key needs it)"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("the JWK's `{name}` is not base64url"))
    };
    let kty = jwk.get("kty").and_then(serde_json::Value::as_str);
    let crv = jwk.get("crv").and_then(serde_json::Value::as_str);
    let wrong = |what: &str| format!("the JWK is {what}, which cannot sign {alg:?}");
    let key = match (kty, crv) {
        (Some("RSA"), _) => {
            if !matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) {
                return Err(wrong("an RSA key"));
            }
            let parts = ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
                .map(member)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            fn uint(bytes: &[u8]) -> Result<pkcs1::UintRef<'_>, String> {
                pkcs1::UintRef::new(bytes)
                    .map_err(|_| "the JWK has an RSA member that is not a number".to_owned())
            }
            let der = pkcs1::der::Encode::to_der(&pkcs1::RsaPrivateKey {
                modulus: uint(&parts[0])?,
                public_exponent: uint(&parts[1])?,
                private_exponent: uint(&parts[2])?,
                prime1: uint(&parts[3])?,
                prime2: uint(&parts[4])?,
                exponent1: uint(&parts[5])?,
                exponent2: uint(&parts[6])?,
                coefficient: uint(&parts[7])?,
                other_prime_infos: None,
            })
            .map_err(|_| "the JWK's RSA key cannot be encoded".to_owned())?;
            EncodingKey::from_rsa_der(&der)
        }
        (Some("EC"), Some("P-256")) if alg == Algorithm::ES256 => {
            let der = p256::SecretKey::from_slice(&member("d")?)
                .and_then(|k| k.to_pkcs8_der().map_err(|_| p256::elliptic_curve::Error))
                .map_err(|_| "the JWK's `d` is not a P-256 private key".to_owned())?;
            EncodingKey::from_ec_der(der.as_bytes())
        }
        (Some("EC"), Some("P-384")) if alg == Algorithm::ES384 => {
            let der = p384::SecretKey::from_slice(&member("d")?)
                .and_then(|k| k.to_pkcs8_der().map_err(|_| p384::elliptic_curve::Error))
                .map_err(|_| "the JWK's `d` is not a P-384 private key".to_owned())?;
            EncodingKey::from_ec_der(der.as_bytes())
        }
        (Some("OKP"), Some("Ed25519")) if alg == Algorithm::EdDSA => {
            let d: [u8; 32] = member("d")?
                .try_into()
                .map_err(|_| "the JWK's `d` is not an Ed25519 private key".to_owned())?;
            let der = ed25519_dalek::SigningKey::from_bytes(&d)
                .to_pkcs8_der()
                .map_err(|_| "the JWK's Ed25519 key cannot be encoded".to_owned())?;
            EncodingKey::from_ed_der(der.as_bytes())
        }
        (Some(kty), crv) => {
            return Err(wrong(&format!(
                "a key of type `{kty}`{}",
                crv.map(|c| format!(" on curve `{c}`")).unwrap_or_default()
            )));
        }
        (None, _) => return Err("the JWK has no `kty`".to_owned()),
    };
    let kid = jwk
        .get("kid")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    Ok((key, kid))
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

    /// A private key as a JWK signs exactly as the same key in PEM (RS256, ES256 and EdDSA are
    /// deterministic here), and takes the JWK's `kid` unless one is given.
    #[test]
    fn a_jwk_signs_like_the_same_key_in_pem() {
        let claims = serde_json::json!({"iss": "app", "iat": 1_700_000_000});
        for (alg, pem, jwk, kid) in [
            (
                "RS256",
                RSA_KEY,
                include_str!("../tests/keys/rsa.jwk.json"),
                "rsa-test",
            ),
            (
                "PS256",
                RSA_KEY,
                include_str!("../tests/keys/rsa.jwk.json"),
                "rsa-test",
            ),
            (
                "ES256",
                EC_KEY,
                include_str!("../tests/keys/ec.jwk.json"),
                "ec-test",
            ),
            (
                "EdDSA",
                include_str!("../tests/keys/ed25519.pem"),
                include_str!("../tests/keys/ed25519.jwk.json"),
                "ed-test",
            ),
        ] {
            let with = |key: &str, kid: Option<&str>| {
                sign(
                    &claims,
                    &Signing {
                        alg,
                        key,
                        kid,
                        x5t_s256: None,
                    },
                )
                .unwrap_or_else(|e| panic!("{alg}: {e}"))
            };
            let from_pem = with(pem, Some(kid));
            let from_jwk = with(jwk, None);
            assert_eq!(part(&from_jwk, 0)["kid"], kid, "{alg}");
            if alg != "PS256" {
                // PSS signatures are salted: equal headers and claims are enough there.
                assert_eq!(from_pem, from_jwk, "{alg}");
            } else {
                assert_eq!(
                    from_pem.rsplit_once('.').map(|p| p.0.to_owned()),
                    from_jwk.rsplit_once('.').map(|p| p.0.to_owned())
                );
            }
            // A given key id wins over the JWK's.
            assert_eq!(part(&with(jwk, Some("mine")), 0)["kid"], "mine");
        }
        // The wrong kind of key, a missing member, or not JSON: errors that quote nothing.
        let ec_jwk = include_str!("../tests/keys/ec.jwk.json");
        let e = sign(
            &claims,
            &Signing {
                alg: "RS256",
                key: ec_jwk,
                kid: None,
                x5t_s256: None,
            },
        )
        .unwrap_err();
        assert!(
            e.contains("a key of type `EC` on curve `P-256`, which cannot sign RS256"),
            "{e}"
        );
        let e = sign(
            &claims,
            &Signing {
                alg: "RS256",
                key: r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#,
                kid: None,
                x5t_s256: None,
            },
        )
        .unwrap_err();
        assert_eq!(e, "the JWK has no `d` (a private key needs it)");
        let e = sign(
            &claims,
            &Signing {
                alg: "ES256",
                key: "{ not json d=secret",
                kid: None,
                x5t_s256: None,
            },
        )
        .unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
