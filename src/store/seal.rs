//! Encryption at rest: stored entries sealed with XChaCha20-Poly1305 under the application's
//! keys, a key id beside each record (feature `encryption`).
//!
//! The sealed body is `base64(nonce ‖ ciphertext+tag)` with a random 24-byte nonce; the
//! associated data binds it to its owner, provider and profile, so a body copied to another row
//! does not open. A wrong key or an altered record is an error naming the connection and the
//! key id, never garbage.

#[cfg(feature = "encryption")]
pub(crate) use imp::Sealer;
#[cfg(feature = "encryption")]
pub use imp::{Key, KeySource, Keys};

/// Without the `encryption` feature no store can be given keys: a value of this type cannot
/// exist, and a sealed record is reported as such.
#[cfg(not(feature = "encryption"))]
#[derive(Clone, Debug)]
pub(crate) enum Sealer {}

#[cfg(not(feature = "encryption"))]
impl Sealer {
    pub(crate) fn seal(
        &self,
        _aad: &[u8],
        _plain: &[u8],
    ) -> Result<(String, String), crate::Error> {
        match *self {}
    }
    pub(crate) fn open(&self, _id: &str, _aad: &[u8], _body: &str) -> Result<Vec<u8>, String> {
        match *self {}
    }
}

#[cfg(feature = "encryption")]
mod imp {
    use std::fmt;
    use std::path::Path;
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    use crate::error::Error;

    const NONCE_LEN: usize = 24;
    /// The largest key file read.
    const MAX_KEY_FILE: u64 = 64 * 1024;

    /// A 256-bit key. Its `Debug` prints `[redacted]`.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Key([u8; 32]);

    impl Key {
        /// A key from its 32 bytes.
        pub fn new(bytes: [u8; 32]) -> Key {
            Key(bytes)
        }

        /// A new random key (from the operating system's generator).
        pub fn generate() -> Result<Key, Error> {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k)
                .map_err(|e| Error::Usage(format!("cannot generate a key: {e}")))?;
            Ok(Key(k))
        }

        /// The key as standard base64, the form [`Keys::parse`] reads. It is a secret.
        pub fn to_base64(&self) -> String {
            STANDARD.encode(self.0)
        }
    }

    impl fmt::Debug for Key {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(crate::REDACTED)
        }
    }

    /// Where a store gets its keys: [`Keys`] (from an environment variable, a file or code), or
    /// an application's own source such as a KMS (implement this trait; it is called on every
    /// save and on every load of a sealed record, so cache what is expensive).
    pub trait KeySource: Send + Sync {
        /// The id and key new records are sealed with.
        fn current(&self) -> Result<(String, Key), Error>;
        /// The key with id `id`, to open records sealed before a rotation; `None` when unknown.
        fn key(&self, id: &str) -> Result<Option<Key>, Error>;
    }

    impl<K: KeySource + ?Sized> KeySource for Arc<K> {
        fn current(&self) -> Result<(String, Key), Error> {
            (**self).current()
        }
        fn key(&self, id: &str) -> Result<Option<Key>, Error> {
            (**self).key(id)
        }
    }

    /// A key ring: the current key, which seals, and older keys, which still open what they
    /// sealed. Its `Debug` shows the key ids only.
    ///
    /// The text form ([`Keys::parse`], [`Keys::from_env`], [`Keys::from_file`]) is a list of
    /// `ID:BASE64KEY` separated by commas, spaces or new lines, the current key first:
    ///
    /// ```
    /// use specauth::store::{Key, Keys};
    /// let text = format!("2025-06:{}, 2024-01:{}", Key::generate()?.to_base64(), Key::generate()?.to_base64());
    /// let keys = Keys::parse(&text)?;
    /// assert_eq!(keys.current_id(), "2025-06");
    /// # Ok::<(), specauth::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct Keys {
        keys: Vec<(String, Key)>,
    }

    impl fmt::Debug for Keys {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Keys")
                .field(
                    "ids",
                    &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                )
                .finish()
        }
    }

    impl Keys {
        /// A ring whose current key is `key`, named `id` (1 to 64 letters, digits, `-`, `_`,
        /// `.`).
        pub fn new(id: &str, key: Key) -> Result<Keys, Error> {
            check_id(id)?;
            Ok(Keys {
                keys: vec![(id.to_owned(), key)],
            })
        }

        /// Adds an older key, which opens records but seals none.
        pub fn with_old(mut self, id: &str, key: Key) -> Result<Keys, Error> {
            check_id(id)?;
            if self.keys.iter().any(|(k, _)| k == id) {
                return Err(Error::Usage(format!("key id `{id}` is given twice")));
            }
            self.keys.push((id.to_owned(), key));
            Ok(self)
        }

        /// The id new records are sealed with.
        pub fn current_id(&self) -> &str {
            &self.keys[0].0
        }

        /// Reads `ID:BASE64KEY` items (the current key first). Errors name the item's position
        /// and id, never the key.
        pub fn parse(text: &str) -> Result<Keys, Error> {
            let mut ring: Option<Keys> = None;
            let items = text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty());
            for (n, item) in items.enumerate() {
                let Some((id, b64)) = item.split_once(':') else {
                    return Err(Error::Usage(format!(
                        "store key {} is not `ID:BASE64KEY`",
                        n + 1
                    )));
                };
                let bytes = STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                let Some(bytes) = bytes else {
                    return Err(Error::Usage(format!(
                        "store key `{id}` is not 32 bytes of standard base64"
                    )));
                };
                ring = Some(match ring {
                    None => Keys::new(id, Key(bytes))?,
                    Some(r) => r.with_old(id, Key(bytes))?,
                });
            }
            ring.ok_or_else(|| Error::Usage("no store key given".to_owned()))
        }

        /// [`Keys::parse`] of the environment variable `var`.
        pub fn from_env(var: &str) -> Result<Keys, Error> {
            let text = std::env::var(var).map_err(|_| {
                Error::Usage(format!(
                    "the environment variable `{var}` holding the store keys is not set (or not UTF-8)"
                ))
            })?;
            Keys::parse(&text)
        }

        /// [`Keys::parse`] of a file (at most 64 KiB).
        pub fn from_file(path: impl AsRef<Path>) -> Result<Keys, Error> {
            let path = path.as_ref();
            let text = crate::files::read_text(path, MAX_KEY_FILE)?.ok_or_else(|| {
                Error::io(
                    "read",
                    path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such key file"),
                )
            })?;
            Keys::parse(&text)
        }
    }

    impl KeySource for Keys {
        fn current(&self) -> Result<(String, Key), Error> {
            let (id, key) = &self.keys[0];
            Ok((id.clone(), key.clone()))
        }
        fn key(&self, id: &str) -> Result<Option<Key>, Error> {
            Ok(self
                .keys
                .iter()
                .find(|(k, _)| k == id)
                .map(|(_, k)| k.clone()))
        }
    }

    fn check_id(id: &str) -> Result<(), Error> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "store key id `{id}` may only use 1 to 64 letters, digits, `-`, `_` and `.`"
            )))
        }
    }

    /// Seals and opens record bodies with a store's keys.
    #[derive(Clone)]
    pub(crate) struct Sealer(pub(crate) Arc<dyn KeySource>);

    impl fmt::Debug for Sealer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Sealer")
        }
    }

    impl Sealer {
        /// `(key id, base64(nonce ‖ ciphertext))`.
        pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<(String, String), Error> {
            let (id, key) = self.0.current()?;
            let mut nonce = [0u8; NONCE_LEN];
            getrandom::fill(&mut nonce)
                .map_err(|e| Error::Usage(format!("cannot draw a nonce: {e}")))?;
            let cipher = XChaCha20Poly1305::new((&key.0).into());
            let sealed = cipher
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
                .map_err(|_| Error::Usage("cannot seal the token record".to_owned()))?;
            let mut out = nonce.to_vec();
            out.extend_from_slice(&sealed);
            Ok((id, STANDARD.encode(out)))
        }

        /// The plain body, or why it cannot be opened (without any of its content).
        pub(crate) fn open(&self, id: &str, aad: &[u8], body: &str) -> Result<Vec<u8>, String> {
            let key = self
                .0
                .key(id)
                .map_err(|e| format!("cannot be decrypted: the key source failed: {e}"))?
                .ok_or_else(|| {
                    format!("is sealed with key `{id}`, which is not among the store's keys")
                })?;
            let raw = STANDARD
                .decode(body)
                .ok()
                .filter(|r| r.len() > NONCE_LEN)
                .ok_or_else(|| "is not a sealed record (bad encoding)".to_owned())?;
            let (nonce, sealed) = raw.split_at(NONCE_LEN);
            XChaCha20Poly1305::new((&key.0).into())
                .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
                .map_err(|_| {
                    format!(
                        "cannot be decrypted with key `{id}`: the key is wrong or the record was altered"
                    )
                })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn sealer(keys: Keys) -> Sealer {
            Sealer(Arc::new(keys))
        }

        #[test]
        fn sealed_bodies_open_with_their_key_and_aad_only() {
            let k1 = Key::generate().unwrap();
            let k2 = Key::generate().unwrap();
            let old = sealer(Keys::new("k1", k1.clone()).unwrap());
            let (id, body) = old.seal(b"a", b"secret token").unwrap();
            assert_eq!(id, "k1");
            assert!(!body.contains("secret"));
            assert_eq!(old.open("k1", b"a", &body).unwrap(), b"secret token");
            // Another row's associated data does not open it.
            assert!(old.open("k1", b"b", &body).unwrap_err().contains("wrong"));
            // Rotation: the new ring seals with k2 and still opens k1's records.
            let rotated = sealer(Keys::new("k2", k2).unwrap().with_old("k1", k1).unwrap());
            assert_eq!(rotated.open("k1", b"a", &body).unwrap(), b"secret token");
            assert_eq!(rotated.seal(b"a", b"x").unwrap().0, "k2");
            // A wrong key under the right id, and an unknown id, are clear errors.
            let wrong = sealer(Keys::new("k1", Key::generate().unwrap()).unwrap());
            let e = wrong.open("k1", b"a", &body).unwrap_err();
            assert!(e.contains("key is wrong"), "{e}");
            let e = wrong.open("k9", b"a", &body).unwrap_err();
            assert!(e.contains("not among the store's keys"), "{e}");
        }

        #[test]
        fn key_text_is_parsed_and_never_echoed() {
            let k = Key::generate().unwrap().to_base64();
            let keys = Keys::parse(&format!("new:{k}\nold:{k}")).unwrap();
            assert_eq!(keys.current_id(), "new");
            assert_eq!(format!("{keys:?}"), r#"Keys { ids: ["new", "old"] }"#);
            let e = Keys::parse("x:c2hvcnQ=").unwrap_err().to_string();
            assert!(e.contains("32 bytes") && !e.contains("c2hvcnQ"), "{e}");
            assert!(Keys::parse(&format!("a:{k},a:{k}")).is_err());
            assert!(Keys::parse("").is_err());
        }
    }
}
