//! The one error type of the crate, and the normalised provider error.

use std::fmt;

/// Where in a spec file something is: file, line and column (1-based; 0 when unknown).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// The file the value came from (a path, or `<bundled>/ID.yaml` for bundled specs).
    pub file: std::sync::Arc<str>,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// A spec that cannot be loaded: the place (`file:line:col`) and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(pos: &Pos, message: impl Into<String>) -> Self {
        SpecError {
            pos: pos.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for SpecError {}

/// The provider refused the request: its error reply, normalised.
///
/// Built from the spec's `errors:` paths. Values are the provider's own words; secrets sent in the
/// request are never copied into it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProviderError {
    /// HTTP status of the reply.
    pub status: u16,
    /// Machine-readable code (`invalid_grant`, `PARAMETERS_ERROR`, …), when the reply has one.
    pub code: Option<String>,
    /// Human-readable message, when the reply has one.
    pub message: Option<String>,
    /// A hint on how to fix it, when the provider gives one.
    pub hint: Option<String>,
    /// A link to documentation about the error, when the provider gives one.
    pub uri: Option<String>,
    /// Further values the spec keeps (`errors.extras`: trace ids, sub-codes), scrubbed.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider refused the request (HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, ", {code}")?;
        }
        f.write_str(")")?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        if let Some(uri) = &self.uri {
            write!(f, " <{uri}>")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// How a request failed to travel: no reply was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// A description (never contains secrets: it is built from the URL's host and the I/O error).
    pub message: String,
}

/// The kinds of [`TransportError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Connecting, or the whole exchange, took longer than the configured timeout.
    Timeout,
    /// The reply body was larger than the configured cap.
    BodyTooLarge,
    /// Could not connect (refused, DNS, TLS).
    Connect,
    /// Anything else the transport reported.
    Other,
}

impl TransportError {
    /// A transport error of the given kind.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}

/// Everything that can go wrong, from loading a spec to reading the provider's reply.
///
/// [`Error::kind`] sorts each variant into an [`ErrorKind`] (the CLI prints its name in `--json`
/// errors and maps it to an exit code). Messages say what is wrong in the library's terms; they
/// never name command-line flags.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec file is malformed; the error names `file:line:col`.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// An input has a value the spec does not allow, or is not declared.
    #[error("input `{name}`: {problem}")]
    Input {
        /// The input's name as declared in the spec.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A request needs an input that was not given.
    #[error("input `{name}`: required by {needed_by} of `{spec}` but not set{}{}",
        description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(),
        allowed.as_ref().map(|a| format!("; one of {}", a.join(", "))).unwrap_or_default())]
    MissingInput {
        /// The input's name.
        name: String,
        /// What needs it (`grant \`client_credentials\``).
        needed_by: String,
        /// The spec's id.
        spec: String,
        /// The input's description in the spec.
        description: Option<String>,
        /// The values the input may take, when the spec fixes them.
        allowed: Option<Vec<String>>,
    },
    /// A request needs an endpoint the spec does not declare.
    #[error("spec `{spec}` declares no `{endpoint}` endpoint, which {needed_by} needs")]
    MissingEndpoint {
        /// The spec's id.
        spec: String,
        /// The endpoint's name (`revocation`, `authorize`, …).
        endpoint: String,
        /// What needs it.
        needed_by: String,
    },
    /// No usable cached token for a provider and profile: never signed in, the token expired
    /// and cannot be refreshed, or the provider refused its refresh token (`invalid_grant`:
    /// expired or revoked). Signing in again is the way out.
    #[error("{}", match (reason, refusal) {
        (NotSignedInReason::NoEntry, _) => format!("no cached token for `{provider}` (profile `{profile}`)"),
        (NotSignedInReason::ExpiredWithoutRefresh, _) => format!("the cached token for `{provider}` (profile `{profile}`) has expired and has no refresh token"),
        (NotSignedInReason::RefreshRefused, Some(p)) => format!("the refresh token cached for `{provider}` (profile `{profile}`) is no longer accepted: {p}"),
        (NotSignedInReason::RefreshRefused, None) => format!("the refresh token cached for `{provider}` (profile `{profile}`) is no longer accepted"),
    })]
    NotSignedIn {
        /// The provider id.
        provider: String,
        /// The profile.
        profile: String,
        /// Why there is no usable token.
        reason: NotSignedInReason,
        /// The provider's refusal, for [`NotSignedInReason::RefreshRefused`].
        refusal: Option<Box<ProviderError>>,
    },
    /// Reading or writing a local file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `lock`, …).
        action: &'static str,
        /// The file or folder.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else the caller asked for that does not fit the spec (unknown grant…).
    #[error("{0}")]
    Usage(String),
    /// A template failed while rendering (runs out of fuel, a filter refused its value…).
    #[error("rendering {what}: {message}")]
    Render {
        /// Which template (grant, field).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The request could not be sent or the reply could not be read.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A reply came back but cannot be understood; `excerpt` is short and redacted.
    #[error("unusable reply (HTTP {status}): {problem}; the reply begins: {excerpt}")]
    Reply {
        /// HTTP status of the reply.
        status: u16,
        /// What could not be understood.
        problem: String,
        /// The beginning of the body, with secrets redacted.
        excerpt: String,
    },
    /// The provider refused the request (boxed: it is the largest variant).
    #[error("{0}")]
    Provider(Box<ProviderError>),
}

impl From<ProviderError> for Error {
    fn from(p: ProviderError) -> Self {
        Error::Provider(Box::new(p))
    }
}

/// Why [`Error::NotSignedIn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotSignedInReason {
    /// No cache entry.
    NoEntry,
    /// The token expired and there is no refresh token.
    ExpiredWithoutRefresh,
    /// The provider answered the refresh with `invalid_grant` (RFC 6749 §5.2: the refresh
    /// token is invalid, expired or revoked).
    RefreshRefused,
}

/// The kind of an [`Error`]: what the caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A spec is malformed.
    Spec,
    /// An input is missing or wrong.
    Input,
    /// The request does not fit the spec, or local state (files, the cache) is in the way.
    Usage,
    /// A template failed at render time.
    Render,
    /// No reply was read.
    Transport,
    /// A reply that cannot be understood.
    Reply,
    /// The provider refused.
    Provider,
    /// No usable cached token: sign in again ([`Error::NotSignedIn`]).
    SignIn,
}

impl ErrorKind {
    /// A short, stable name: `spec`, `input`, `usage`, `render`, `transport`, `reply`,
    /// `provider` or `sign_in`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Spec => "spec",
            ErrorKind::Input => "input",
            ErrorKind::Usage => "usage",
            ErrorKind::Render => "render",
            ErrorKind::Transport => "transport",
            ErrorKind::Reply => "reply",
            ErrorKind::Provider => "provider",
            ErrorKind::SignIn => "sign_in",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Error {
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Spec(_) => ErrorKind::Spec,
            Error::Input { .. } | Error::MissingInput { .. } => ErrorKind::Input,
            Error::Usage(_) | Error::MissingEndpoint { .. } | Error::Io { .. } => ErrorKind::Usage,
            Error::NotSignedIn { .. } => ErrorKind::SignIn,
            Error::Render { .. } => ErrorKind::Render,
            Error::Transport(_) => ErrorKind::Transport,
            Error::Reply { .. } => ErrorKind::Reply,
            Error::Provider(_) => ErrorKind::Provider,
        }
    }

    /// The input an error is about, when it is about one.
    pub fn input_name(&self) -> Option<&str> {
        match self {
            Error::Input { name, .. } | Error::MissingInput { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The HTTP status involved, when a reply was read.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Reply { status, .. } => Some(*status),
            Error::Provider(p) => Some(p.status),
            Error::NotSignedIn {
                refusal: Some(p), ..
            } => Some(p.status),
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Error {
    /// The error as the CLI prints it with `--json`: `{"kind", "status", "code", "message",
    /// "hint", "uri"}` (absent parts are `null`). Never contains secrets.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_with(None)
    }

    /// [`Error::to_json`] with `advice` (how to fix it, in the caller's terms) appended to the
    /// message.
    pub fn to_json_with(&self, advice: Option<&str>) -> serde_json::Value {
        let with_advice = |m: String| match advice {
            Some(a) => format!("{m}; {a}"),
            None => m,
        };
        let (code, message, hint, uri) = match self {
            Error::Provider(p) => (
                p.code.clone(),
                p.message.clone(),
                p.hint.clone(),
                p.uri.clone(),
            ),
            Error::NotSignedIn {
                refusal: Some(p), ..
            } => (
                p.code.clone(),
                Some(with_advice(self.to_string())),
                p.hint.clone(),
                p.uri.clone(),
            ),
            other => (
                other.input_name().map(str::to_owned),
                Some(with_advice(other.to_string())),
                None,
                None,
            ),
        };
        let mut out = serde_json::json!({
            "kind": self.kind().as_str(),
            "status": self.status(),
            "code": code,
            "message": message,
            "hint": hint,
            "uri": uri,
        });
        if let Error::Provider(p) = self
            && !p.extra.is_empty()
        {
            out["extra"] = serde_json::Value::Object(p.extra.clone());
        }
        out
    }
}

/// `; did you mean `x`?` when one of `candidates` is close to `given` (a typo: a small edit
/// distance for its length, a swap of two letters counting as one edit, or the same letters in another case), else nothing. For messages
/// about unknown names: providers, grants, inputs.
pub(crate) fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let given_lower = given.to_lowercase();
    let limit = (given.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != given)
        .map(|c| {
            (
                strsim::damerau_levenshtein(&given_lower, &c.to_lowercase()),
                c,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, c)| (*distance, c.len()))
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}
