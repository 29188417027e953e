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
/// [`Error::kind`] gives a stable short name for each variant (the CLI prints it in `--json`
/// errors and maps it to an exit code).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec file is malformed; the error names `file:line:col`.
    #[error("{0}")]
    Spec(#[from] SpecError),
    /// An input is missing or has a value the spec does not allow.
    #[error("input `{name}`: {problem}")]
    Input {
        /// The input's name as declared in the spec.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Anything else the caller asked for that does not fit the spec (unknown grant or endpoint…).
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
    /// The provider refused the request.
    #[error("{0}")]
    Provider(#[from] ProviderError),
}

impl Error {
    /// A short, stable name for the kind of error: `spec`, `input`, `usage`, `render`,
    /// `transport`, `reply` or `provider`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Spec(_) => "spec",
            Error::Input { .. } => "input",
            Error::Usage(_) => "usage",
            Error::Render { .. } => "render",
            Error::Transport(_) => "transport",
            Error::Reply { .. } => "reply",
            Error::Provider(_) => "provider",
        }
    }

    /// The HTTP status involved, when a reply was read.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Reply { status, .. } => Some(*status),
            Error::Provider(p) => Some(p.status),
            _ => None,
        }
    }
}

impl Error {
    /// The error as the CLI prints it with `--json`: `{"kind", "status", "code", "message",
    /// "hint", "uri"}` (absent parts are `null`). Never contains secrets.
    pub fn to_json(&self) -> serde_json::Value {
        let (code, message, hint, uri) = match self {
            Error::Provider(p) => (
                p.code.clone(),
                p.message.clone(),
                p.hint.clone(),
                p.uri.clone(),
            ),
            Error::Input { name, .. } => (Some(name.clone()), Some(self.to_string()), None, None),
            other => (None, Some(other.to_string()), None, None),
        };
        serde_json::json!({
            "kind": self.kind(),
            "status": self.status(),
            "code": code,
            "message": message,
            "hint": hint,
            "uri": uri,
        })
    }
}
