//! Writing a spec from an authorization server's discovery metadata (RFC 8414, OpenID Connect
//! Discovery 1.0).

use std::fmt::Write as _;

use serde_json::Value;

use crate::error::Error;
use crate::transport::Transport;

/// The discovery metadata of `issuer`: tries each of [`discovery_urls`] in turn and returns the
/// first URL that answers with a JSON object, and that object.
///
/// The issuer must be `https://`, or `http://` to a loopback host, like every endpoint.
pub fn discover<T: Transport>(transport: &T, issuer: &str) -> Result<(String, Value), Error> {
    crate::spec::check_url(issuer).map_err(Error::Usage)?;
    let mut tried = Vec::new();
    for url in discovery_urls(issuer) {
        let request = http::Request::get(&url)
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| Error::Usage(format!("`{url}` is not a valid URL: {e}")))?;
        let reply = transport.send(request)?;
        match serde_json::from_slice::<Value>(reply.body()) {
            Ok(m) if reply.status().is_success() && m.is_object() => return Ok((url, m)),
            _ => tried.push(format!("{url} (HTTP {})", reply.status().as_u16())),
        }
    }
    Err(Error::Usage(format!(
        "no discovery metadata found at {}",
        tried.join(", ")
    )))
}

/// Where the metadata of `issuer` may be published, in the order to try: the OpenID
/// configuration, then RFC 8414's `oauth-authorization-server` (path inserted after the host).
///
/// ```
/// assert_eq!(
///     specauth::discovery::discovery_urls("https://id.example.com/tenant1"),
///     ["https://id.example.com/tenant1/.well-known/openid-configuration",
///      "https://id.example.com/.well-known/oauth-authorization-server/tenant1"]
/// );
/// ```
pub fn discovery_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{issuer}/.well-known/openid-configuration")];
    let (origin, path) = match issuer.split_once("://") {
        Some((scheme, rest)) => match rest.find('/') {
            Some(i) => (format!("{scheme}://{}", &rest[..i]), &rest[i..]),
            None => (issuer.to_owned(), ""),
        },
        None => (issuer.to_owned(), ""),
    };
    urls.push(format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    ));
    urls
}

/// The most metadata read (protected resource or authorization server metadata); a larger
/// document is refused rather than parsed.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// `GET url` as JSON: `Some(object)` for a 2xx JSON object, `None` for anything else but a
/// document over [`MAX_METADATA_BYTES`], which is an error.
fn get_json<T: Transport>(transport: &T, url: &str) -> Result<(u16, Option<Value>), Error> {
    crate::spec::check_url(url).map_err(Error::Usage)?;
    let request = http::Request::get(url)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| Error::Usage(format!("`{url}` is not a valid URL: {e}")))?;
    let reply = transport.send(request)?;
    let status = reply.status().as_u16();
    if reply.body().len() > MAX_METADATA_BYTES {
        return Err(Error::Reply {
            status,
            problem: format!(
                "the metadata at {url} is {} bytes, over the {MAX_METADATA_BYTES}-byte cap",
                reply.body().len()
            ),
            excerpt: String::new(),
        });
    }
    let value = serde_json::from_slice::<Value>(reply.body())
        .ok()
        .filter(|v| reply.status().is_success() && v.is_object());
    Ok((status, value))
}

/// The scheme, host and port of a URL (`https://a.example:8443`).
pub fn origin(url: &str) -> &str {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            &url[..scheme.len() + 3 + end]
        }
        None => url,
    }
}

/// Where the protected resource metadata of `resource` may be (RFC 9728 §3.1), in the order
/// to try: the well-known path inserted before the resource's path, then at the root.
///
/// ```
/// assert_eq!(
///     specauth::discovery::protected_resource_metadata_urls("https://mcp.example.com/v1/mcp"),
///     ["https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp",
///      "https://mcp.example.com/.well-known/oauth-protected-resource"]
/// );
/// ```
pub fn protected_resource_metadata_urls(resource: &str) -> Vec<String> {
    let origin = origin(resource);
    let path = resource[origin.len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let root = format!("{origin}/.well-known/oauth-protected-resource");
    if path.is_empty() {
        vec![root]
    } else {
        vec![format!("{root}{path}"), root]
    }
}

/// The protected resource metadata (RFC 9728) of `resource`: from `hint` (the
/// `resource_metadata` of a `WWW-Authenticate` challenge) when given, else from
/// [`protected_resource_metadata_urls`]. Refused: a hint on another origin than the resource,
/// metadata whose `resource` is not `resource` exactly (§3.3), metadata without
/// `authorization_servers`, and documents over [`MAX_METADATA_BYTES`].
pub fn discover_resource<T: Transport>(
    transport: &T,
    resource: &str,
    hint: Option<&str>,
) -> Result<(String, Value), Error> {
    crate::spec::check_url(resource).map_err(Error::Usage)?;
    let urls = match hint {
        Some(h) if origin(h) != origin(resource) => {
            return Err(Error::Usage(format!(
                "the server at {resource} points to its metadata at {h}, on another origin; refusing to follow it"
            )));
        }
        Some(h) => vec![h.to_owned()],
        None => protected_resource_metadata_urls(resource),
    };
    let mut tried = Vec::new();
    for url in urls {
        match get_json(transport, &url)? {
            (_, Some(m)) => {
                let named = m.get("resource").and_then(Value::as_str);
                if named != Some(resource) {
                    return Err(Error::Usage(format!(
                        "the protected resource metadata at {url} is for `{}`, not for `{resource}` (RFC 9728 §3.3)",
                        named.unwrap_or("(no resource)")
                    )));
                }
                let servers = m.get("authorization_servers").and_then(Value::as_array);
                if !servers.is_some_and(|s| s.iter().any(Value::is_string)) {
                    return Err(Error::Usage(format!(
                        "the protected resource metadata at {url} names no authorization_servers"
                    )));
                }
                return Ok((url, m));
            }
            (status, None) => tried.push(format!("{url} (HTTP {status})")),
        }
    }
    Err(Error::Usage(format!(
        "no protected resource metadata found at {}",
        tried.join(", ")
    )))
}

/// The metadata of the authorization server `issuer` (RFC 8414, then OpenID Connect
/// Discovery), refused unless its `issuer` is `issuer` exactly (RFC 8414 §3.3: metadata that
/// names another issuer may be an impersonation).
pub fn discover_issuer<T: Transport>(
    transport: &T,
    issuer: &str,
) -> Result<(String, Value), Error> {
    crate::spec::check_url(issuer).map_err(Error::Usage)?;
    let mut urls = discovery_urls(issuer);
    urls.reverse();
    let mut tried = Vec::new();
    for url in urls {
        match get_json(transport, &url)? {
            (_, Some(m)) => {
                let named = m.get("issuer").and_then(Value::as_str);
                if named != Some(issuer) {
                    return Err(Error::Usage(format!(
                        "the metadata at {url} names issuer `{}`, not `{issuer}`; refusing it (RFC 8414 §3.3)",
                        named.unwrap_or("(none)")
                    )));
                }
                return Ok((url, m));
            }
            (status, None) => tried.push(format!("{url} (HTTP {status})")),
        }
    }
    Err(Error::Usage(format!(
        "no authorization server metadata found at {}",
        tried.join(", ")
    )))
}

/// A spec for `url`, what `specauth import` writes: `url` is an authorization server's issuer
/// (its discovery metadata, [`discover`], naming that issuer), or else a protected resource
/// (RFC 9728: its metadata names the authorization server, whose metadata must name that same
/// issuer; the spec then asks for tokens for that `resource`). Returns the metadata's URL, the spec's id and the
/// spec.
pub fn import_spec<T: Transport>(
    transport: &T,
    url: &str,
    id: Option<&str>,
) -> Result<(String, String, String), Error> {
    import_spec_for(transport, url, id, ClientCredential::Secret)
}

/// What the client will prove itself with: [`spec_from_metadata_for`] picks the strongest
/// method the server offers that it can satisfy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A client secret (or none, for a public client).
    #[default]
    Secret,
    /// A private key (`private_key_jwt`), and a secret when the server offers no key method.
    PrivateKey,
    /// A TLS client certificate from a CA the server trusts (`tls_client_auth`, RFC 8705
    /// §2.1); the spec then uses the server's `mtls_endpoint_aliases`.
    Certificate,
    /// A self-signed TLS client certificate registered with the server
    /// (`self_signed_tls_client_auth`, RFC 8705 §2.2); the spec then uses the server's
    /// `mtls_endpoint_aliases`.
    SelfSignedCertificate,
}

impl ClientCredential {
    /// Whether the client presents a TLS client certificate.
    pub fn is_certificate(self) -> bool {
        matches!(
            self,
            ClientCredential::Certificate | ClientCredential::SelfSignedCertificate
        )
    }
}

/// [`import_spec`], with the client authentication chosen for `credential`.
pub fn import_spec_for<T: Transport>(
    transport: &T,
    url: &str,
    id: Option<&str>,
    credential: ClientCredential,
) -> Result<(String, String, String), Error> {
    let id = id.map_or_else(|| id_from_issuer(url), str::to_owned);
    // An authorization server that names itself is one. Anything else may be a protected
    // resource whose origin serves a copy of its authorization server's metadata (the MCP SDK
    // does), which would import without the resource: its own metadata decides.
    let as_server = discover(transport, url);
    let names_itself = |m: &Value| {
        m.get("issuer")
            .and_then(Value::as_str)
            .is_some_and(|i| i.trim_end_matches('/') == url.trim_end_matches('/'))
    };
    let as_resource = match &as_server {
        Ok((_, m)) if names_itself(m) => None,
        _ => Some(discover_resource(transport, url, None)),
    };
    let (prm_url, prm) = match (as_server, as_resource) {
        (_, Some(Ok(found))) => found,
        (Ok((source, metadata)), as_resource) => {
            // RFC 8414 §3.3 (and OpenID Connect Discovery §4.3): the issuer the metadata names
            // must be the one it was fetched for, exactly; another may be an impersonation,
            // and would become the spec's issuer, the `iss` every login then trusts.
            let named = metadata.get("issuer").and_then(Value::as_str);
            if named != Some(url) {
                let not_resource = match as_resource {
                    Some(Err(e)) => format!("; nor is `{url}` a protected resource: {e}"),
                    _ => String::new(),
                };
                return Err(Error::Usage(format!(
                    "the metadata at {source} names issuer `{}`, but `{url}` was expected; refusing it (RFC 8414 §3.3: the issuer must be the URL imported, character for character){not_resource}",
                    named.unwrap_or("(none)")
                )));
            }
            let yaml = spec_from_metadata_for(&id, &metadata, &source, &[], credential)?;
            return Ok((source, id, yaml));
        }
        (Err(as_issuer), Some(Err(as_resource))) => {
            return Err(Error::Usage(format!(
                "`{url}` is neither an authorization server ({as_issuer}) nor a protected resource ({as_resource})"
            )));
        }
        (Err(e), None) => return Err(e),
    };
    let issuer = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find_map(Value::as_str))
        .unwrap_or_default();
    let (source, metadata) = discover_issuer(transport, issuer)?;
    let mut defaults = vec![("resource", url)];
    let scopes = prm
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        });
    if let Some(s) = scopes.as_deref().filter(|s| !s.is_empty()) {
        defaults.push(("scope", s));
    }
    let yaml = spec_from_metadata_for(&id, &metadata, &source, &defaults, credential)?.replacen(
        "# Written by `specauth import` from",
        &format!(
            "# Written by `specauth import` for the protected resource {url} ({prm_url}), from"
        ),
        1,
    );
    Ok((source, id, yaml))
}

/// The grants of the base spec, and the `grant_types_supported` value that enables each.
const GRANTS: &[(&str, &str)] = &[
    ("authorization_code", "authorization_code"),
    ("refresh_token", "refresh_token"),
    ("password", "password"),
    ("client_credentials", "client_credentials"),
    (
        "device_code",
        "urn:ietf:params:oauth:grant-type:device_code",
    ),
];

/// A spec (YAML text) for the server described by `metadata`, extending the bundled base.
///
/// Endpoints come from `token_endpoint`, `authorization_endpoint`,
/// `device_authorization_endpoint`, `revocation_endpoint`, `introspection_endpoint` and
/// `pushed_authorization_request_endpoint` (RFC 9126: `login` then pushes); the `issuer` and
/// `authorization_response_iss_parameter_supported` become the defaults of the inputs `login`
/// checks the redirect's `iss` with (RFC 9207), and `require_pushed_authorization_requests`
/// the input that makes `login` refuse to run without pushing; client
/// authentication from `token_endpoint_auth_methods_supported` (Basic when offered, as RFC 6749
/// prefers, else body credentials, else `client_secret_jwt`; see [`spec_from_metadata_for`]
/// for a client with a private key); grants from `grant_types_supported`; PKCE parameters are
/// removed when `code_challenge_methods_supported` does not offer `S256`.
pub fn spec_from_metadata(id: &str, metadata: &Value, source: &str) -> Result<String, Error> {
    spec_from_metadata_with(id, metadata, source, &[])
}

/// [`spec_from_metadata`], with `defaults` written as the defaults of those inputs (a
/// registered `client_id`, the `resource` and `scope` an MCP server asks for).
pub fn spec_from_metadata_with(
    id: &str,
    metadata: &Value,
    source: &str,
    defaults: &[(&str, &str)],
) -> Result<String, Error> {
    spec_from_metadata_for(id, metadata, source, defaults, ClientCredential::Secret)
}

/// The `client_auth` for a server offering `methods` (its
/// `token_endpoint_auth_methods_supported`; RFC 8414 §2: absent means `client_secret_basic`),
/// signing with one of `algs` (its `token_endpoint_auth_signing_alg_values_supported`): the
/// strongest method the client can satisfy with `credential`. A private key signs
/// (`private_key_jwt`) when the server offers it; a secret goes in a Basic header, then in the
/// body, then signs (`client_secret_jwt`); a server offering only key-based methods gets
/// `private_key_jwt` (the spec then needs a key). A certificate authenticates by mutual TLS
/// (`tls_client_auth`, or `self_signed_tls_client_auth` for a self-signed one) when the
/// server offers it, else as a secret would.
///
/// ```
/// use specauth::discovery::{ClientCredential, client_auth_for};
/// let offered = ["client_secret_post", "client_secret_basic", "private_key_jwt"];
/// assert_eq!(client_auth_for(&offered, &[], ClientCredential::PrivateKey), "private_key_jwt");
/// assert_eq!(client_auth_for(&offered, &[], ClientCredential::Secret), "basic");
/// assert_eq!(client_auth_for(&["private_key_jwt"], &["ES256"], ClientCredential::PrivateKey),
///            "{ method: private_key_jwt, alg: ES256 }");
/// let mtls = ["client_secret_basic", "tls_client_auth", "self_signed_tls_client_auth"];
/// assert_eq!(client_auth_for(&mtls, &[], ClientCredential::Certificate), "tls_client_auth");
/// assert_eq!(client_auth_for(&mtls, &[], ClientCredential::SelfSignedCertificate),
///            "self_signed_tls_client_auth");
/// assert_eq!(client_auth_for(&mtls, &[], ClientCredential::Secret), "basic");
/// ```
pub fn client_auth_for(methods: &[&str], algs: &[&str], credential: ClientCredential) -> String {
    let offers = |m: &str| methods.contains(&m);
    // RS256 is every signer's default (OpenID Connect Core §9); another only when it is not
    // offered and the server names what it takes.
    let signed =
        |method: &str, default: &str, known: &[&str]| match algs.iter().find(|a| known.contains(a))
        {
            Some(alg) if !algs.is_empty() && !algs.contains(&default) => {
                format!("{{ method: {method}, alg: {alg} }}")
            }
            _ => method.to_owned(),
        };
    const KEY_ALGS: &[&str] = &[
        "RS256", "PS256", "ES256", "EdDSA", "RS384", "RS512", "PS384", "PS512", "ES384",
    ];
    const SECRET_ALGS: &[&str] = &["HS256", "HS384", "HS512"];
    if credential == ClientCredential::PrivateKey && offers("private_key_jwt") {
        return signed("private_key_jwt", "RS256", KEY_ALGS);
    }
    if credential == ClientCredential::Certificate && offers("tls_client_auth") {
        return "tls_client_auth".to_owned();
    }
    if credential == ClientCredential::SelfSignedCertificate
        && offers("self_signed_tls_client_auth")
    {
        return "self_signed_tls_client_auth".to_owned();
    }
    if offers("client_secret_basic") {
        "basic".to_owned()
    } else if offers("client_secret_post") {
        "post".to_owned()
    } else if offers("client_secret_jwt") {
        signed("client_secret_jwt", "HS256", SECRET_ALGS)
    } else if offers("private_key_jwt") {
        signed("private_key_jwt", "RS256", KEY_ALGS)
    } else if offers("none") {
        "none".to_owned()
    } else {
        // Only methods this credential cannot satisfy (mutual TLS without a certificate…).
        "basic".to_owned()
    }
}

/// [`spec_from_metadata_with`], with the client authentication chosen for `credential`
/// ([`client_auth_for`]).
pub fn spec_from_metadata_for(
    id: &str,
    metadata: &Value,
    source: &str,
    defaults: &[(&str, &str)],
    credential: ClientCredential,
) -> Result<String, Error> {
    // Metadata is data: a value that would be read as template syntax in the spec (and could
    // pull a secret input into a URL) is refused, not written.
    for (key, value) in metadata.as_object().into_iter().flatten() {
        if let Some(v) = value.as_str()
            && ["{{", "{%", "{#"].iter().any(|t| v.contains(t))
        {
            return Err(Error::Usage(format!(
                "the metadata at {source} has template syntax in `{key}`; refusing to write it into a spec"
            )));
        }
    }
    let list = |k: &str| -> Option<Vec<&str>> {
        metadata
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
    };
    // RFC 8705 §5: where a client presenting a certificate sends its requests. Used only by
    // such a client: the others stay at the plain endpoints.
    let aliases = metadata
        .get("mtls_endpoint_aliases")
        .and_then(Value::as_object)
        .filter(|_| credential.is_certificate());
    if let Some(a) = aliases
        && let Some((key, _)) = a.iter().find(|(_, v)| {
            v.as_str()
                .is_some_and(|v| ["{{", "{%", "{#"].iter().any(|t| v.contains(t)))
        })
    {
        return Err(Error::Usage(format!(
            "the metadata at {source} has template syntax in `mtls_endpoint_aliases.{key}`; refusing to write it into a spec"
        )));
    }
    // The browser, not the client, opens the authorization endpoint: never an alias.
    let text = |k: &str| {
        aliases
            .filter(|_| !matches!(k, "issuer" | "authorization_endpoint"))
            .and_then(|a| a.get(k))
            .or_else(|| metadata.get(k))
            .and_then(Value::as_str)
    };
    let token = text("token_endpoint")
        .ok_or_else(|| Error::Usage(format!("the metadata at {source} has no token_endpoint")))?;
    let issuer = text("issuer").unwrap_or(source);
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "# Written by `specauth import` from {source}.");
    let _ = writeln!(out, "id: {}", q(id));
    let _ = writeln!(out, "name: {}", q(issuer));
    let _ = writeln!(out, "extends: oauth2");
    let _ = writeln!(out, "docs: {}", q(source));
    let _ = writeln!(out, "\nendpoints:\n  token: {}", q(token));
    for (name, key) in [
        ("authorize", "authorization_endpoint"),
        ("device_authorization", "device_authorization_endpoint"),
        ("revocation", "revocation_endpoint"),
        ("introspection", "introspection_endpoint"),
        (
            "pushed_authorization_request",
            "pushed_authorization_request_endpoint",
        ),
    ] {
        if let Some(url) = text(key) {
            let _ = writeln!(out, "  {name}: {}", q(url));
        }
    }
    // RFC 8414 §2: absent means client_secret_basic.
    let methods = list("token_endpoint_auth_methods_supported")
        .unwrap_or_else(|| vec!["client_secret_basic"]);
    let algs = list("token_endpoint_auth_signing_alg_values_supported").unwrap_or_default();
    let auth = client_auth_for(&methods, &algs, credential);
    let _ = writeln!(out, "\nclient_auth: {auth}");
    let _ = writeln!(out, "\ninputs:\n  token_url: null");
    // RFC 9207: the redirect's `iss` is checked against the issuer the metadata names.
    if let Some(issuer) = text("issuer") {
        let _ = writeln!(out, "  issuer:\n    default: {}", q(issuer));
    }
    for flag in [
        "authorization_response_iss_parameter_supported",
        "require_pushed_authorization_requests",
    ] {
        if metadata.get(flag).and_then(Value::as_bool) == Some(true) {
            let _ = writeln!(out, "  {flag}:\n    default: \"true\"");
        }
    }
    for (name, value) in defaults {
        if ["{{", "{%", "{#"].iter().any(|t| value.contains(t)) {
            return Err(Error::Usage(format!(
                "the value of `{name}` has template syntax; refusing to write it into a spec"
            )));
        }
        let _ = writeln!(out, "  {name}:\n    default: {}", q(value));
    }

    // RFC 8414 §2: absent means authorization_code and implicit.
    let supported =
        list("grant_types_supported").unwrap_or_else(|| vec!["authorization_code", "implicit"]);
    let dropped: Vec<&str> = GRANTS
        .iter()
        .filter(|(_, uri)| !supported.contains(uri))
        .map(|(g, _)| *g)
        .collect();
    if !dropped.is_empty() {
        let _ = writeln!(out, "\ngrants:");
        for g in dropped {
            let _ = writeln!(out, "  {g}: null");
        }
    }
    let pkce = list("code_challenge_methods_supported").is_some_and(|m| m.contains(&"S256"));
    if !pkce {
        let _ = writeln!(
            out,
            "\nauthorize:                # the server does not advertise PKCE S256\n  params:\n    code_challenge: null\n    code_challenge_method: null"
        );
    }
    Ok(out)
}

/// A spec id from an issuer URL: its host (and path), lowercased, other characters as `-`.
///
/// ```
/// assert_eq!(specauth::discovery::id_from_issuer("https://Login.Example.com/realms/acme"), "login-example-com-realms-acme");
/// ```
pub fn id_from_issuer(issuer: &str) -> String {
    let rest = issuer.split_once("://").map(|(_, r)| r).unwrap_or(issuer);
    let mut id = String::new();
    for c in rest.trim_end_matches('/').chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_certificate_uses_the_mtls_endpoint_aliases() {
        let metadata = json!({
            "issuer": "https://id.example.com",
            "authorization_endpoint": "https://id.example.com/auth",
            "token_endpoint": "https://id.example.com/token",
            "revocation_endpoint": "https://id.example.com/revoke",
            "introspection_endpoint": "https://id.example.com/introspect",
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "tls_client_auth", "self_signed_tls_client_auth"],
            "mtls_endpoint_aliases": {
                "token_endpoint": "https://mtls.id.example.com/token",
                "revocation_endpoint": "https://mtls.id.example.com/revoke",
                "authorization_endpoint": "https://mtls.id.example.com/auth"
            }
        });
        let src = "https://id.example.com/.well-known/openid-configuration";
        let endpoints = |yaml: &str| -> Vec<String> {
            let start = yaml.find("endpoints:").unwrap();
            let end = yaml[start..].find("\n\n").unwrap() + start;
            yaml[start..end]
                .lines()
                .skip(1)
                .map(str::trim)
                .map(str::to_owned)
                .collect()
        };
        let plain =
            spec_from_metadata_for("x", &metadata, src, &[], ClientCredential::Secret).unwrap();
        assert!(plain.contains("client_auth: basic"), "{plain}");
        assert_eq!(
            endpoints(&plain),
            [
                "token: \"https://id.example.com/token\"",
                "authorize: \"https://id.example.com/auth\"",
                "revocation: \"https://id.example.com/revoke\"",
                "introspection: \"https://id.example.com/introspect\"",
            ]
        );
        for (credential, method) in [
            (ClientCredential::Certificate, "tls_client_auth"),
            (
                ClientCredential::SelfSignedCertificate,
                "self_signed_tls_client_auth",
            ),
        ] {
            let yaml = spec_from_metadata_for("x", &metadata, src, &[], credential).unwrap();
            assert!(yaml.contains(&format!("client_auth: {method}\n")), "{yaml}");
            assert_eq!(
                endpoints(&yaml),
                [
                    "token: \"https://mtls.id.example.com/token\"",
                    "authorize: \"https://id.example.com/auth\"",
                    "revocation: \"https://mtls.id.example.com/revoke\"",
                    "introspection: \"https://id.example.com/introspect\"",
                ]
            );
            let spec = crate::Spec::from_yaml("x.yaml", &yaml).unwrap();
            assert_eq!(
                spec.client_auth("authorization_code").map(|m| m.as_str()),
                Some(method)
            );
        }
        let bad = json!({ "token_endpoint": "https://id.example.com/token",
                          "mtls_endpoint_aliases": { "token_endpoint": "https://{{ client_secret }}.x/" } });
        assert_eq!(
            spec_from_metadata_for("x", &bad, src, &[], ClientCredential::Certificate)
                .unwrap_err()
                .to_string(),
            format!(
                "the metadata at {src} has template syntax in `mtls_endpoint_aliases.token_endpoint`; refusing to write it into a spec"
            )
        );
    }

    #[test]
    fn a_full_server_becomes_a_spec_that_loads() {
        let metadata = json!({
            "issuer": "https://id.example.com",
            "authorization_endpoint": "https://id.example.com/auth",
            "token_endpoint": "https://id.example.com/token",
            "device_authorization_endpoint": "https://id.example.com/device/auth",
            "revocation_endpoint": "https://id.example.com/token/revocation",
            "introspection_endpoint": "https://id.example.com/token/introspection",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                      "urn:ietf:params:oauth:grant-type:device_code"],
            "code_challenge_methods_supported": ["S256"]
        });
        let yaml = spec_from_metadata(
            "idx",
            &metadata,
            "https://id.example.com/.well-known/openid-configuration",
        )
        .unwrap();
        let spec =
            crate::Spec::from_yaml("idx.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(spec.id(), "idx");
        assert_eq!(
            spec.grant_names().collect::<Vec<_>>(),
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "device_code"
            ]
        );
        assert_eq!(
            spec.client_auth("client_credentials"),
            Some(crate::spec::ClientAuthMethod::Basic)
        );
        assert_eq!(
            spec.request_kinds()
                .filter(|k| !k.is_grant())
                .map(|k| k.name().to_owned())
                .collect::<Vec<_>>(),
            ["authorize", "device_authorization", "revoke", "introspect"]
        );
        let inputs = crate::Inputs::new()
            .with("client_id", "a")
            .with("state", "s")
            .with("code_challenge", "c")
            .with("code_challenge_method", "S256");
        assert_eq!(
            spec.render(crate::RequestKind::Authorization, &inputs)
                .unwrap()
                .http()
                .uri()
                .to_string(),
            "https://id.example.com/auth?response_type=code&client_id=a&state=s&code_challenge=c&code_challenge_method=S256"
        );
    }

    #[test]
    fn defaults_when_the_metadata_is_minimal() {
        let metadata = json!({ "token_endpoint": "https://a.example/t" });
        let yaml = spec_from_metadata("min", &metadata, "https://a.example").unwrap();
        let spec =
            crate::Spec::from_yaml("min.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(
            spec.grant_names().collect::<Vec<_>>(),
            ["authorization_code"]
        );
        assert!(!spec.supports(&crate::RequestKind::Authorization));
        assert!(yaml.contains("code_challenge: null"));
        let e = spec_from_metadata("x", &json!({}), "https://a.example").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the metadata at https://a.example has no token_endpoint"
        );
    }

    #[test]
    fn import_picks_the_strongest_client_auth_the_client_can_satisfy() {
        use crate::spec::ClientAuthMethod as M;
        let load = |methods: serde_json::Value, algs: serde_json::Value, credential| {
            let metadata = json!({
                "token_endpoint": "https://a.example/t",
                "token_endpoint_auth_methods_supported": methods,
                "token_endpoint_auth_signing_alg_values_supported": algs,
            });
            let yaml = spec_from_metadata_for("k", &metadata, "https://a.example", &[], credential)
                .unwrap();
            let spec =
                crate::Spec::from_yaml("k.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            (spec.client_auth("authorization_code").unwrap(), yaml)
        };
        let all = json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ]);
        let key = ClientCredential::PrivateKey;
        let secret = ClientCredential::Secret;
        assert_eq!(load(all.clone(), json!(null), key).0, M::PrivateKeyJwt);
        assert_eq!(load(all, json!(null), secret).0, M::Basic);
        assert_eq!(
            load(json!(["client_secret_post"]), json!(null), key).0,
            M::Post
        );
        assert_eq!(
            load(json!(["client_secret_jwt"]), json!(null), secret).0,
            M::ClientSecretJwt
        );
        assert_eq!(
            load(json!(["private_key_jwt"]), json!(null), secret).0,
            M::PrivateKeyJwt
        );
        assert_eq!(load(json!(["none"]), json!(null), key).0, M::None);
        // A server that does not take RS256 gets what it names.
        let (method, yaml) = load(json!(["private_key_jwt"]), json!(["ES256", "HS256"]), key);
        assert_eq!(method, M::PrivateKeyJwt);
        assert!(
            yaml.contains("client_auth: { method: private_key_jwt, alg: ES256 }"),
            "{yaml}"
        );
        let (_, yaml) = load(json!(["private_key_jwt"]), json!(["RS256", "ES256"]), key);
        assert!(yaml.contains("client_auth: private_key_jwt\n"), "{yaml}");
    }

    #[test]
    fn template_syntax_in_metadata_is_refused() {
        let metadata = json!({
            "token_endpoint": "https://a.example/t",
            "authorization_endpoint": "https://a.example/auth?s={{ client_secret }}"
        });
        let e = spec_from_metadata("x", &metadata, "https://a.example").unwrap_err();
        assert!(
            e.to_string()
                .contains("template syntax in `authorization_endpoint`"),
            "{e}"
        );
    }

    #[test]
    fn discovery_over_plain_http_to_a_remote_host_is_refused() {
        let transport =
            |_r: http::Request<Vec<u8>>| -> Result<http::Response<Vec<u8>>, crate::TransportError> {
                panic!("no request may be sent")
            };
        let e = discover(&transport, "http://id.example.com").unwrap_err();
        assert!(e.to_string().contains("not a loopback host"), "{e}");
    }

    type Reply = Result<http::Response<Vec<u8>>, crate::TransportError>;

    fn json_reply(status: u16, body: &serde_json::Value) -> Reply {
        Ok(http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .unwrap())
    }

    #[test]
    fn metadata_naming_another_issuer_is_refused() {
        let transport = |r: http::Request<Vec<u8>>| -> Reply {
            assert_eq!(
                r.uri().to_string(),
                "https://as.example.com/.well-known/oauth-authorization-server"
            );
            json_reply(
                200,
                &json!({ "issuer": "https://evil.example.com", "token_endpoint": "https://evil.example.com/t" }),
            )
        };
        let e = discover_issuer(&transport, "https://as.example.com").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the metadata at https://as.example.com/.well-known/oauth-authorization-server names issuer `https://evil.example.com`, not `https://as.example.com`; refusing it (RFC 8414 §3.3)"
        );
        // No normalisation: a trailing slash is another issuer.
        let slash = |_r: http::Request<Vec<u8>>| -> Reply {
            json_reply(200, &json!({ "issuer": "https://as.example.com/" }))
        };
        assert!(discover_issuer(&slash, "https://as.example.com").is_err());
    }

    #[test]
    fn metadata_over_the_cap_is_refused() {
        let transport = |_r: http::Request<Vec<u8>>| -> Reply {
            let big = "x".repeat(MAX_METADATA_BYTES + 1);
            json_reply(
                200,
                &json!({ "resource": "https://mcp.example.com/mcp", "pad": big }),
            )
        };
        let e = discover_resource(&transport, "https://mcp.example.com/mcp", None).unwrap_err();
        assert!(e.to_string().contains("over the 65536-byte cap"), "{e}");
    }

    #[test]
    fn resource_metadata_elsewhere_or_for_another_resource_is_refused() {
        let never = |_r: http::Request<Vec<u8>>| -> Reply { panic!("no request may be sent") };
        let e = discover_resource(
            &never,
            "https://mcp.example.com/mcp",
            Some("https://evil.example.com/.well-known/oauth-protected-resource"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("on another origin; refusing to follow it"),
            "{e}"
        );
        let e = discover_resource(&never, "http://mcp.example.com/mcp", None).unwrap_err();
        assert!(e.to_string().contains("not a loopback host"), "{e}");
        let e = discover_issuer(&never, "http://as.example.com").unwrap_err();
        assert!(e.to_string().contains("not a loopback host"), "{e}");

        let other = |r: http::Request<Vec<u8>>| -> Reply {
            assert_eq!(
                r.uri().to_string(),
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
            );
            json_reply(
                200,
                &json!({ "resource": "https://other.example.com/mcp",
                                     "authorization_servers": ["https://as.example.com"] }),
            )
        };
        let e = discover_resource(&other, "https://mcp.example.com/mcp", None).unwrap_err();
        assert!(
            e.to_string()
                .contains("is for `https://other.example.com/mcp`"),
            "{e}"
        );
    }

    #[test]
    fn a_protected_resource_imports_as_a_spec_bound_to_it() {
        let transport = |r: http::Request<Vec<u8>>| -> Reply {
            match r.uri().to_string().as_str() {
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp" => json_reply(
                    200,
                    &json!({ "resource": "https://mcp.example.com/mcp",
                             "authorization_servers": ["https://as.example.com"],
                             "scopes_supported": ["mcp:tools"] }),
                ),
                "https://as.example.com/.well-known/oauth-authorization-server" => json_reply(
                    200,
                    &json!({ "issuer": "https://as.example.com",
                             "authorization_endpoint": "https://as.example.com/authorize",
                             "token_endpoint": "https://as.example.com/token",
                             "pushed_authorization_request_endpoint": "https://as.example.com/par",
                             "authorization_response_iss_parameter_supported": true,
                             "code_challenge_methods_supported": ["S256"] }),
                ),
                other => json_reply(404, &json!({ "unexpected": other })),
            }
        };
        let (source, id, yaml) =
            import_spec(&transport, "https://mcp.example.com/mcp", None).unwrap();
        assert_eq!(
            source,
            "https://as.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(id, "mcp-example-com-mcp");
        let spec =
            crate::Spec::from_yaml("x.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert!(spec.supports(&crate::RequestKind::PushedAuthorization));
        let default = |name: &str| {
            spec.inputs()
                .find(|(n, _)| *n == name)
                .and_then(|(_, d)| d.default.clone())
        };
        assert_eq!(
            default("resource").as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(default("scope").as_deref(), Some("mcp:tools"));
        assert_eq!(default("issuer").as_deref(), Some("https://as.example.com"));
        assert_eq!(
            default("authorization_response_iss_parameter_supported").as_deref(),
            Some("true")
        );
    }

    #[test]
    fn import_refuses_an_authorization_server_naming_another_issuer() {
        let serving = |issuer: &'static str| {
            move |r: http::Request<Vec<u8>>| -> Reply {
                match r.uri().to_string().as_str() {
                    "https://as.example.com/.well-known/openid-configuration" => json_reply(
                        200,
                        &json!({ "issuer": issuer,
                                 "authorization_endpoint": "https://as.example.com/authorize",
                                 "token_endpoint": "https://as.example.com/token" }),
                    ),
                    _ => json_reply(404, &json!({})),
                }
            }
        };
        let e = import_spec(
            &serving("https://evil.example.com"),
            "https://as.example.com",
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the metadata at https://as.example.com/.well-known/openid-configuration names issuer `https://evil.example.com`, but `https://as.example.com` was expected; refusing it (RFC 8414 §3.3: the issuer must be the URL imported, character for character); nor is `https://as.example.com` a protected resource: no protected resource metadata found at https://as.example.com/.well-known/oauth-protected-resource (HTTP 404)"
        );
        // No normalisation: a trailing slash is another issuer.
        let e = import_spec(
            &serving("https://as.example.com/"),
            "https://as.example.com",
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the metadata at https://as.example.com/.well-known/openid-configuration names issuer `https://as.example.com/`, but `https://as.example.com` was expected"),
            "{e}"
        );
        // The issuer itself imports, and is the spec's issuer.
        let (_, _, yaml) = import_spec(
            &serving("https://as.example.com"),
            "https://as.example.com",
            None,
        )
        .unwrap();
        assert!(
            yaml.contains("issuer:\n    default: \"https://as.example.com\"\n"),
            "{yaml}"
        );
    }
}
