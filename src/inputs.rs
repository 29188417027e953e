//! The values a caller supplies for a spec's declared inputs.

use std::fmt;

use indexmap::IndexMap;

/// Input values by name (`client_id`, `code`, `region`, …).
///
/// `Debug` shows only the names: which inputs are secret is the spec's business, so no value is
/// ever printed from here.
///
/// ```
/// let inputs = specauth::Inputs::new()
///     .with("client_id", "app")
///     .with("client_secret", "s3cret");
/// assert_eq!(inputs.get("client_id"), Some("app"));
/// assert_eq!(format!("{inputs:?}"), "Inputs[client_id, client_secret]");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    values: IndexMap<String, String, foldhash::fast::RandomState>,
}

impl Inputs {
    /// No inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an input, builder style.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// Sets an input, replacing any earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// Removes an input.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.values.shift_remove(name)
    }

    /// The value of an input, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether an input is set.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Input names and values, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inputs[")?;
        for (i, name) in self.values.keys().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        f.write_str("]")
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Inputs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut inputs = Inputs::new();
        for (k, v) in iter {
            inputs.set(k, v);
        }
        inputs
    }
}

/// The environment variable that carries input `name`: `SPECAUTH_` and the name in upper
/// case, `-` as `_` (`client_secret` → `SPECAUTH_CLIENT_SECRET`). The one rule, for every
/// reader and every message.
///
/// ```
/// assert_eq!(specauth::inputs::env_var_name("client-secret"), "SPECAUTH_CLIENT_SECRET");
/// ```
pub fn env_var_name(name: &str) -> String {
    format!("SPECAUTH_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The largest file an input value is read from.
const MAX_VALUE_FILE: u64 = 1 << 20;

/// An input's value read from a file (a PEM key, a service-account file, a CI job's OIDC
/// token): a regular file of at most 1 MiB, its trailing line break dropped.
pub fn value_from_file(path: &std::path::Path) -> Result<String, crate::Error> {
    let text = crate::files::read_text(path, MAX_VALUE_FILE)?.ok_or_else(|| crate::Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}
