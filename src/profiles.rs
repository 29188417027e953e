//! Per-provider, per-profile inputs kept in a config file, so `client_id`, `region` or
//! `redirect_uri` need not be typed each time.
//!
//! ```yaml
//! # ~/.config/specauth/profiles.yaml
//! acme:
//!   default:
//!     client_id: my-app
//!     scope: users_read cars_read
//!   sandbox:
//!     client_id: my-app-sandbox
//!     host: sandbox.acme.example
//! ```
//!
//! Secrets do not belong here: keep them in `SPECAUTH_<NAME>` variables or pass
//! `--set NAME=-` and type them on stdin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Pos, SpecError};

/// The profiles file, parsed.
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    map: BTreeMap<String, BTreeMap<String, BTreeMap<String, crate::spec::doc::ScalarString>>>,
}

impl Profiles {
    /// `$XDG_CONFIG_HOME/specauth/profiles.yaml` (and the platform's equivalents).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "specauth")
            .map(|d| d.config_dir().join("profiles.yaml"))
    }

    /// Reads the file; a missing file is no profiles. Errors name `file:line:col`.
    pub fn load(path: &Path) -> Result<Profiles, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profiles::default()),
            Err(e) => return Err(Error::Usage(format!("cannot read {}: {e}", path.display()))),
        };
        if text.trim().is_empty() {
            return Ok(Profiles::default());
        }
        serde_saphyr::from_str(&text)
            .map(|map| Profiles { map })
            .map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                let file: Arc<str> = Arc::from(path.display().to_string());
                let message = e.without_snippet().to_string();
                let message = message.lines().next().unwrap_or("").to_owned();
                Error::Spec(SpecError {
                    pos: Pos { file, line, column },
                    message: format!("profiles: {message}"),
                })
            })
    }

    /// The inputs of `provider` + `profile` (empty when the file has none).
    pub fn inputs(&self, provider: &str, profile: &str) -> BTreeMap<String, String> {
        self.map
            .get(provider)
            .and_then(|p| p.get(profile))
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default()
    }
}
