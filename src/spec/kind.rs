//! Which request of a spec: the one name mapping between spec files and the interpreter.

use std::fmt;

/// A request a spec can render, and whose reply it can normalise.
///
/// Token grants are named by the spec (`authorization_code`, `refresh_token`, or a provider's
/// own); the other requests are the ones OAuth defines beside the token endpoint. Every
/// function that handles requests matches on this enum, so a new kind of request is one
/// variant the compiler makes every caller handle.
///
/// ```
/// use specauth::RequestKind;
/// assert_eq!(RequestKind::from("refresh_token"), RequestKind::grant("refresh_token"));
/// assert_eq!(RequestKind::from_name("revoke"), RequestKind::Revocation);
/// assert_eq!(RequestKind::Revocation.name(), "revoke");
/// assert_eq!(RequestKind::from_name("password").name(), "password");
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A token grant, by the name the spec gives it under `grants:`.
    Grant(String),
    /// The authorization URL a browser is sent to (RFC 6749 §4.1.1); spec section `authorize:`.
    Authorization,
    /// Device authorization (RFC 8628 §3.1); `requests.device_authorization`.
    DeviceAuthorization,
    /// Token revocation (RFC 7009); `requests.revoke`.
    Revocation,
    /// Token introspection (RFC 7662); `requests.introspect`.
    Introspection,
    /// A pushed authorization request (RFC 9126); `requests.par`. Its reply's `request_uri`
    /// stands for the authorization parameters in the authorization URL.
    PushedAuthorization,
}

impl RequestKind {
    /// The requests that are not grants, in the order listings show them.
    pub const OTHERS: [RequestKind; 5] = [
        RequestKind::Authorization,
        RequestKind::DeviceAuthorization,
        RequestKind::Revocation,
        RequestKind::Introspection,
        RequestKind::PushedAuthorization,
    ];

    /// A token grant by name.
    pub fn grant(name: impl Into<String>) -> Self {
        RequestKind::Grant(name.into())
    }

    /// The name spec files use for it: the grant's name, or `authorize`,
    /// `device_authorization`, `revoke`, `introspect`, `par`.
    pub fn name(&self) -> &str {
        match self {
            RequestKind::Grant(name) => name,
            RequestKind::Authorization => "authorize",
            RequestKind::DeviceAuthorization => "device_authorization",
            RequestKind::Revocation => "revoke",
            RequestKind::Introspection => "introspect",
            RequestKind::PushedAuthorization => "par",
        }
    }

    /// The request a spec name means (`request:` in examples, keys of `requests:`); any other
    /// name is a grant's. The inverse of [`RequestKind::name`].
    pub fn from_name(name: &str) -> RequestKind {
        Self::OTHERS
            .into_iter()
            .find(|k| k.name() == name)
            .unwrap_or_else(|| RequestKind::grant(name))
    }

    /// Whether this is a token grant.
    pub fn is_grant(&self) -> bool {
        matches!(self, RequestKind::Grant(_))
    }
}

/// A plain string names a grant: `spec.render("client_credentials", &inputs)`.
impl From<&str> for RequestKind {
    fn from(name: &str) -> Self {
        RequestKind::grant(name)
    }
}

impl From<&RequestKind> for RequestKind {
    fn from(kind: &RequestKind) -> Self {
        kind.clone()
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestKind::Grant(name) => write!(f, "grant `{name}`"),
            other => write!(f, "request `{}`", other.name()),
        }
    }
}
