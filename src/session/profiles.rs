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
//! Secrets do not belong here: keep them in `SPECAUTH_<NAME>` variables, or give them from
//! stdin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Pos, SpecError};
use crate::inputs::{Inputs, env_var_name};
use crate::spec::Spec;

/// The largest profiles file read.
const MAX_PROFILES_BYTES: u64 = 1 << 20;

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
        let Some(text) = crate::files::read_text(path, MAX_PROFILES_BYTES)? else {
            return Ok(Profiles::default());
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

    /// Every profile name in the file, of any provider (for completion), sorted, once each.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.map.values().flat_map(|p| p.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
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

/// Where a session's inputs come from, lowest precedence first: the spec's defaults (applied
/// when rendering), the profiles file, `SPECAUTH_<NAME>` environment variables, then values
/// given directly.
///
/// ```
/// use specauth::session::InputSources;
/// let spec = specauth::Loader::new().load("oauth2").unwrap();
/// let mut sources = InputSources::new();
/// sources.profile.insert("client_id".into(), "from-profile".into());
/// sources.given.push(("scope".into(), "a b".into()));
/// sources.env = Box::new(|var| Ok((var == "SPECAUTH_CLIENT_ID").then(|| "from-env".to_owned())));
/// let inputs = sources.gather(&spec).unwrap();
/// assert_eq!(inputs.get("client_id"), Some("from-env"));
/// assert_eq!(inputs.get("scope"), Some("a b"));
/// ```
pub struct InputSources {
    /// The profile's values from the [`Profiles`] file. A secret input here is refused.
    pub profile: BTreeMap<String, String>,
    /// Reads an environment variable: `Ok(None)` when unset, `Err(())` when set but not
    /// UTF-8. The default reads the process's environment.
    #[allow(clippy::type_complexity)]
    pub env: Box<dyn Fn(&str) -> Result<Option<String>, ()>>,
    /// Values given directly (on a command line, by the application), in order; later ones
    /// win.
    pub given: Vec<(String, String)>,
}

impl Default for InputSources {
    fn default() -> Self {
        InputSources {
            profile: BTreeMap::new(),
            env: Box::new(|var| match std::env::var(var) {
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(()),
            }),
            given: Vec::new(),
        }
    }
}

impl std::fmt::Debug for InputSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSources")
            .field("profile", &self.profile.keys().collect::<Vec<_>>())
            .field(
                "given",
                &self.given.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl InputSources {
    /// No profile values, the process environment, nothing given.
    pub fn new() -> Self {
        Self::default()
    }

    /// The inputs for `spec`, by precedence. A secret in the profile, a profile value the
    /// spec does not declare, a variable that is not UTF-8, and an empty secret are input
    /// errors naming the input: none is silently dropped.
    pub fn gather(&self, spec: &Spec) -> Result<Inputs, Error> {
        let mut inputs = Inputs::new();
        for (name, value) in &self.profile {
            match spec.inputs().find(|(n, _)| n == name) {
                Some((_, def)) if def.secret => {
                    return Err(Error::Input {
                        name: name.clone(),
                        problem: format!(
                            "is secret and does not belong in the profiles file; use {} or give it from stdin",
                            env_var_name(name)
                        ),
                    });
                }
                Some(_) => inputs.set(name, value),
                None => {
                    return Err(Error::Input {
                        name: name.clone(),
                        problem: format!(
                            "is in the profiles file but not declared by spec `{}`{}",
                            spec.id(),
                            crate::error::did_you_mean(name, spec.inputs().map(|(n, _)| n))
                        ),
                    });
                }
            }
        }
        for (name, _) in spec.inputs() {
            let var = env_var_name(name);
            match (self.env)(&var) {
                Ok(Some(value)) => inputs.set(name, value),
                Ok(None) => {}
                Err(()) => {
                    return Err(Error::Input {
                        name: name.to_owned(),
                        problem: format!("{var} is set but is not valid UTF-8"),
                    });
                }
            }
        }
        for (name, value) in &self.given {
            inputs.set(name, value);
        }
        for (name, def) in spec.inputs() {
            if def.secret && inputs.get(name).is_some_and(str::is_empty) {
                return Err(Error::Input {
                    name: name.to_owned(),
                    problem: "is secret and was given empty".to_owned(),
                });
            }
        }
        Ok(inputs)
    }
}
