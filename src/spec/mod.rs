//! Specs: loading YAML, merging `extends:` layers, validating with `file:line:col`, and the
//! compiled form the interpreter runs (templates and JSONPaths compiled once).

mod compile;
pub(crate) mod doc;
mod kind;
mod load;
#[cfg(any(test, feature = "schema"))]
mod schema;

use std::sync::Arc;

use indexmap::IndexMap;
use jsonpath_rust::parser::model::JpQuery;

pub(crate) use compile::MAX_CHAIN;
pub use kind::RequestKind;
pub use load::{Loader, bundled_ids, is_bundled_base, is_path};

/// The JSON Schema (draft 7) of the spec format, generated from the types the loader reads.
/// `specauth schema` prints it; `schema/spec.schema.json` is this, committed. Needs the
/// `schema` feature (on with `cli`), so a library build does not compile the generator.
///
/// ```
/// let schema = specauth::spec::schema();
/// assert_eq!(schema["title"], "specauth provider spec");
/// assert!(schema["properties"]["grants"].is_object());
/// ```
#[cfg(feature = "schema")]
pub fn schema() -> serde_json::Value {
    schema::schema()
}

/// The same as [`schema()`], under its first name.
#[cfg(feature = "schema")]
pub fn spec_schema() -> serde_json::Value {
    schema()
}

use crate::error::Error;
use crate::template::Tmpl;

/// A map with foldhash's fast hasher: the maps rendering looks names up in on every request
/// (inputs, endpoints, requests), whose keys come from specs and callers, never from a reply.
/// SipHash, the default, was a quarter of render + normalise.
pub(crate) type Map<K, V> = IndexMap<K, V, foldhash::fast::RandomState>;

/// A provider spec, loaded, merged with its base and compiled.
///
/// Load one with [`Spec::from_yaml`], [`Spec::from_file`] or through a [`Loader`]; then
/// [`render`](Spec::render) requests and [`normalise`](Spec::normalise) replies.
///
/// ```
/// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
/// id: demo
/// extends: oauth2
/// endpoints: { token: "https://auth.example.com/token" }
/// "#).unwrap();
/// assert_eq!(spec.id(), "demo");
/// assert!(spec.grant_names().any(|g| g == "client_credentials"));
/// ```
///
/// A `Spec` is cheap to clone (the compiled form is shared behind an [`Arc`]) and is
/// `Send + Sync`, so it can sit in an application's state and be handed to tasks as is.
///
/// ```
/// fn shared<T: Clone + Send + Sync + 'static>(_: &T) {}
/// let spec = specauth::Loader::new().load("oauth2").unwrap();
/// shared(&spec);
/// let copy = spec.clone(); // a reference count, not a recompile
/// std::thread::spawn(move || assert_eq!(copy.id(), "oauth2")).join().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Spec {
    inner: Arc<SpecData>,
}

impl Spec {
    pub(crate) fn new(data: SpecData) -> Spec {
        Spec {
            inner: Arc::new(data),
        }
    }

    /// The compiled form, for changing it: copied first when another clone shares it.
    pub(crate) fn data_mut(&mut self) -> &mut SpecData {
        Arc::make_mut(&mut self.inner)
    }
}

// Internal reads (`spec.grants`, `spec.token`…) go through the shared compiled form.
#[doc(hidden)]
impl std::ops::Deref for Spec {
    type Target = SpecData;
    fn deref(&self) -> &SpecData {
        &self.inner
    }
}

/// The compiled form of a [`Spec`], shared by its clones; internal to the crate.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct SpecData {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) docs: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) website: Option<String>,
    pub(crate) featured: Option<u64>,
    pub(crate) base: bool,
    pub(crate) source: Arc<str>,
    pub(crate) inputs: Map<String, InputDef>,
    /// Where in `inputs` the ones with a default are: rendering fills in only those, without
    /// reading every declaration at every request.
    pub(crate) defaulted: Vec<usize>,
    pub(crate) endpoints: Map<String, Endpoint>,
    pub(crate) grants: Map<String, RequestTemplate>,
    /// The requests that are not grants (the authorization URL is a GET template too).
    pub(crate) requests: Map<RequestKind, RequestTemplate>,
    pub(crate) device: DeviceMap,
    pub(crate) introspection_active: Vec<Path>,
    pub(crate) token: TokenMap,
    pub(crate) errors: ErrorMap,
    /// What the authorization redirect carries.
    pub(crate) redirect: RedirectMap,
    /// What the spec's own file adds to its base, for [`Spec::quirks`].
    pub(crate) own: OwnDeclarations,
    pub(crate) examples: Examples,
    pub(crate) env: minijinja::Environment<'static>,
}

/// A spec's examples: read and checked with the spec ([`Loader::with_examples`]), or read from
/// its text on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct Examples {
    read: std::sync::OnceLock<Result<Vec<doc::ExampleDoc>, crate::error::SpecError>>,
    /// The spec file's text, for examples not read yet.
    text: Option<load::SpecText>,
}

impl Examples {
    pub(crate) fn read(examples: Vec<doc::ExampleDoc>) -> Examples {
        Examples {
            read: std::sync::OnceLock::from(Ok(examples)),
            text: None,
        }
    }

    pub(crate) fn later(text: load::SpecText) -> Examples {
        Examples {
            read: std::sync::OnceLock::new(),
            text: Some(text),
        }
    }
}

impl Spec {
    /// The spec's examples, read and checked now if they were not read with it.
    pub(crate) fn examples(&self) -> Result<&[doc::ExampleDoc], &crate::error::SpecError> {
        self.examples
            .read
            .get_or_init(|| {
                let Some(text) = self.examples.text.as_deref() else {
                    return Ok(Vec::new());
                };
                let examples = load::parse_examples(&self.source, text)?;
                crate::examples::check(self, &examples)?;
                Ok(examples.into_iter().map(|a| a.value).collect())
            })
            .as_deref()
    }
}

/// Where the authorization redirect's values are.
#[derive(Debug, Clone)]
pub(crate) struct RedirectMap {
    /// The query parameter that carries the code.
    pub(crate) code: String,
    /// (input, query parameter) pairs taken from the redirect.
    pub(crate) inputs: Vec<(String, String)>,
    /// Whether the redirect carries `state` back (it must then match).
    pub(crate) state: bool,
}

impl Default for RedirectMap {
    fn default() -> Self {
        RedirectMap {
            code: "code".to_owned(),
            inputs: Vec::new(),
            state: true,
        }
    }
}

/// What a spec's own file declares beyond the spec it `extends:`, as opposed to what it
/// inherits: how listings tell a provider's quirks from the standard it builds on.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnDeclarations {
    /// Grants its base does not have.
    pub(crate) grants: Vec<String>,
    /// Inputs whose allowed values (`enum:`) the file sets itself.
    pub(crate) enums: Vec<String>,
    /// Token extras the file maps itself; `None` when it extends nothing (all are its own).
    pub(crate) extras: Option<Vec<String>>,
}

/// The categories a spec's `categories:` may name, for listing and filtering the catalogue.
pub const CATEGORIES: &[&str] = &[
    "identity",
    "developer",
    "cloud",
    "crm",
    "support",
    "productivity",
    "documents",
    "storage",
    "finance",
    "hr",
    "commerce",
    "marketing",
    "media",
    "social",
    "communication",
    "health",
    "games",
    "education",
    "mobility",
    "smart-home",
];

/// A declared input.
#[derive(Clone, Debug, Default)]
pub struct InputDef {
    /// Required by every grant (other inputs are required when a grant's non-optional fields use
    /// them).
    pub required: bool,
    /// Redacted in previews, logs, errors and snapshots.
    pub secret: bool,
    /// The values allowed, when the provider has a fixed set.
    pub allowed: Option<Vec<String>>,
    /// Value used when the caller gives none.
    pub default: Option<String>,
    /// What the input is, for `--help` and listings.
    pub description: Option<String>,
    /// Inserted into endpoint URLs as given rather than percent-encoded (the input is a URL or
    /// a `host[:port][/path]` itself).
    pub verbatim: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) tmpl: Tmpl,
    /// The URL or template as written.
    pub(crate) text: String,
    /// A literal URL, parsed and checked once: a request to it without a query string reuses
    /// it rather than parsing and checking the same text again.
    pub(crate) uri: Option<http::Uri>,
}

impl Endpoint {
    /// A literal URL; `uri` is what [`check_url`] made of it, if it accepted it.
    pub(crate) fn literal(url: String, uri: Option<http::Uri>) -> Endpoint {
        Endpoint {
            tmpl: Tmpl::Literal(url.clone()),
            text: url,
            uri,
        }
    }
}

/// How the client proves who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    Basic,
    /// Client id and secret as body fields.
    Post,
    /// Both the Basic header and the body fields.
    Both,
    /// No client authentication added by the interpreter.
    None,
    /// A JWT assertion signed with the client's private key (RFC 7523 §2.2, OpenID Connect
    /// Core §9 `private_key_jwt`), from the `private_key` input.
    PrivateKeyJwt,
    /// A JWT assertion signed with the client secret (HMAC; `client_secret_jwt`).
    ClientSecretJwt,
    /// Basic first; when the provider refuses it with `invalid_client` (HTTP 400 or 401),
    /// body credentials once. [`Client`](crate::Client) remembers which worked per token URL
    /// and client id; rendering alone renders Basic.
    Auto,
    /// Mutual TLS with a certificate from a CA the server trusts, matched by its subject
    /// (RFC 8705 §2.1): the client id in the body, no secret. The certificate belongs to the
    /// transport, not the request (see [`ClientCertificate`](crate::transport::ClientCertificate)).
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate registered in the client's JWKS (RFC 8705
    /// §2.2): rendered as [`TlsClientAuth`](ClientAuthMethod::TlsClientAuth).
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// The name used in specs (`basic`, `post`, `both`, `none`, `auto`…).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::Basic => "basic",
            ClientAuthMethod::Post => "post",
            ClientAuthMethod::Both => "both",
            ClientAuthMethod::None => "none",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::ClientSecretJwt => "client_secret_jwt",
            ClientAuthMethod::Auto => "auto",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the client proves who it is with a TLS client certificate (RFC 8705): the
    /// transport must present one.
    pub fn is_mutual_tls(self) -> bool {
        matches!(
            self,
            ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth
        )
    }
}

/// The client authentication that worked at a token endpoint under `client_auth: auto`:
/// what a [`Client`](crate::Client) remembers, and what a cached token
/// ([`StoredToken`](crate::session::StoredToken)) carries so the next process goes straight
/// to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedClientAuth {
    /// The token endpoint's URL (without a query).
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The method the endpoint accepted ([`ClientAuthMethod::Basic`] or
    /// [`ClientAuthMethod::Post`]).
    pub method: ClientAuthMethod,
}

impl ClientAuthMethod {
    /// The method named `name` in a spec (`basic`, `post`, `auto`…).
    pub fn from_name(name: &str) -> Option<ClientAuthMethod> {
        Some(match name {
            "basic" => ClientAuthMethod::Basic,
            "post" => ClientAuthMethod::Post,
            "both" => ClientAuthMethod::Both,
            "none" => ClientAuthMethod::None,
            "private_key_jwt" => ClientAuthMethod::PrivateKeyJwt,
            "client_secret_jwt" => ClientAuthMethod::ClientSecretJwt,
            "auto" => ClientAuthMethod::Auto,
            "tls_client_auth" => ClientAuthMethod::TlsClientAuth,
            "self_signed_tls_client_auth" => ClientAuthMethod::SelfSignedTlsClientAuth,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ClientAuth {
    /// The method, or where the method is chosen from an input, what it is without one.
    pub(crate) method: ClientAuthMethod,
    /// The template that names the method from inputs (`"{{ auth_method }}"`), when chosen
    /// by the caller.
    pub(crate) chosen_by: Option<Tmpl>,
    pub(crate) id_field: String,
    pub(crate) secret_field: String,
    pub(crate) form_encode_basic: bool,
    /// The JWT methods' signing algorithm.
    pub(crate) alg: String,
    /// The JWT methods' `aud`; the request's URL when absent.
    pub(crate) audience: Option<Tmpl>,
    /// The JWT methods' claims over the defaults: a template, or `None` to remove the claim.
    pub(crate) claims: Vec<(String, Option<Tmpl>)>,
}

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// A JSON object of strings.
    Json,
    /// An XML document with a named root element.
    Xml,
    /// No body; the fields go in the URL's query string.
    Query,
    /// No body and no fields.
    None,
}

impl BodyEncoding {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "form" => BodyEncoding::Form,
            "json" => BodyEncoding::Json,
            "xml" => BodyEncoding::Xml,
            "query" => BodyEncoding::Query,
            "none" => BodyEncoding::None,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Body {
    Fixed(BodyEncoding),
    Template(Tmpl),
}

#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    pub(crate) name: String,
    pub(crate) tmpl: Tmpl,
    pub(crate) optional: bool,
    pub(crate) secret: bool,
    /// Sent as one parameter per space-separated item.
    pub(crate) repeat: bool,
    /// What the text becomes in a JSON body.
    pub(crate) kind: FieldType,
    /// Sent in the URL's query string whatever the body encoding.
    pub(crate) in_query: bool,
    /// Not percent-encoded.
    pub(crate) raw: bool,
    /// The value is a JWT the template signs (`jwt(…)`): previews show its header and claims.
    pub(crate) signs: bool,
}

/// What a field's rendered text becomes in a JSON body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FieldType {
    #[default]
    String,
    Number,
    Boolean,
    Json,
}

/// One request's template: a grant's, or another request's.
#[derive(Clone, Debug)]
pub(crate) struct RequestTemplate {
    pub(crate) method: http::Method,
    pub(crate) endpoint: String,
    pub(crate) body: Body,
    pub(crate) xml_root: Option<String>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) headers: Vec<FieldDef>,
    pub(crate) fields: Vec<FieldDef>,
    /// Inputs without which this grant cannot be rendered (besides its endpoint's).
    pub(crate) required: Vec<String>,
    /// The token types a revocation or introspection takes; `None`: both.
    pub(crate) tokens: Option<Vec<String>>,
    /// Values of the reply that become inputs of the next step.
    pub(crate) take: Vec<(String, Vec<Path>)>,
    /// The grant sent next, for a step of a chain.
    pub(crate) then: Option<String>,
}

/// A compiled JSONPath with its source text. Identical paths share one parse
/// ([`Path::parse`]): most specs repeat their base's paths.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pub(crate) text: Arc<str>,
    pub(crate) query: Arc<JpQuery>,
    /// Where in the reply the value is: the body (`query` applies), or elsewhere.
    pub(crate) source: Source,
    /// The path is one member of the top-level object (`$.access_token`), whose name is
    /// [`Path::member`]: found without walking `query`, which lies elsewhere in memory.
    member: bool,
}

/// Where a path reads its value from.
#[derive(Clone, Debug, Default)]
pub(crate) enum Source {
    /// The parsed body, through the JSONPath.
    #[default]
    Body,
    /// A reply header (`header:X-Auth-Token`), by lowercase name.
    Header(Arc<str>),
    /// A `Set-Cookie` cookie (`cookie:session_id`).
    Cookie(Arc<str>),
    /// A template over `body`, `headers` and `cookies` (`template:{{ … }}`), by its name in
    /// the spec's engine.
    Template(Arc<str>),
}

impl Path {
    /// The most distinct paths kept parsed for the process; beyond them, paths are parsed anew
    /// each time, so a process loading endless distinct specs stays bounded.
    const CACHED: usize = 4096;

    /// `text` parsed, from the process's cache when it was parsed before.
    pub(crate) fn parse(text: &str) -> Result<Path, jsonpath_rust::parser::errors::JsonPathError> {
        use std::collections::HashMap;
        use std::sync::{Mutex, OnceLock, PoisonError};
        static CACHE: OnceLock<Mutex<HashMap<Arc<str>, Arc<JpQuery>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some((text, query)) = cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_key_value(text)
        {
            return Ok(Path {
                text: text.clone(),
                query: query.clone(),
                source: Source::Body,
                member: is_member(text),
            });
        }
        let query = match simple_path(text) {
            Some(query) => query,
            None => jsonpath_rust::parser::parse_json_path(text)?,
        };
        let path = Path {
            text: Arc::from(text),
            query: Arc::new(query),
            source: Source::Body,
            member: is_member(text),
        };
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() < Self::CACHED {
            cache.insert(path.text.clone(), path.query.clone());
        }
        Ok(path)
    }
}

/// The query of a path made only of member names and indexes (`$.access_token`,
/// `$.errors[0].message`), built without the general parser: nearly every path in a spec is
/// one, and the general parser took about 27 k instructions for each, 8 % of a one-shot
/// `specauth token`. The same query the general parser builds (a test compares them); `None`
/// for anything else, which the general parser then reads (and reports, if it is wrong).
impl Path {
    /// The name of the top-level member the path is, for a path of the body that is one
    /// (`$.access_token`: `access_token`).
    pub(crate) fn member(&self) -> Option<&str> {
        match self.source {
            Source::Body if self.member => self.text.get(2..),
            _ => None,
        }
    }
}

/// `$.name`, a path [`simple_path`] reads as one member.
fn is_member(text: &str) -> bool {
    text.strip_prefix("$.")
        .is_some_and(|name| !name.is_empty() && name_len(name) == name.len())
}

/// How long the member name `rest` starts with is, as a `.name` segment of a simple path has
/// it (letters, digits and `_`, not first a digit); 0 when it starts with none.
fn name_len(rest: &str) -> usize {
    if rest.starts_with(|c: char| c.is_ascii_digit()) {
        return 0;
    }
    rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len())
}

fn simple_path(text: &str) -> Option<JpQuery> {
    use jsonpath_rust::parser::model::{Segment, Selector};
    let mut rest = text.strip_prefix('$')?;
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = name_len(after);
            let name = &after[..end];
            if name.is_empty() {
                return None;
            }
            segments.push(Segment::Selector(Selector::Name(name.to_owned())));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let digits = &after[..end];
            let canonical = digits == "0"
                || (!digits.is_empty()
                    && digits.len() <= 9
                    && !digits.starts_with('0')
                    && digits.bytes().all(|b| b.is_ascii_digit()));
            if !canonical {
                return None;
            }
            segments.push(Segment::Selector(Selector::Index(digits.parse().ok()?)));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(JpQuery::new(segments))
}

/// A declared date format: strftime items, and the offset of dates that state none.
#[derive(Clone, Debug)]
pub(crate) struct DateFormat {
    pub(crate) items: Option<time::format_description::OwnedFormatItem>,
    pub(crate) offset: time::UtcOffset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DurationUnit {
    Seconds,
    Milliseconds,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TokenMap {
    pub(crate) access_token: Vec<Path>,
    /// A success may carry no access token.
    pub(crate) access_token_optional: bool,
    pub(crate) token_type: Vec<Path>,
    pub(crate) default_token_type: Option<String>,
    pub(crate) expires_in: Vec<Path>,
    pub(crate) expires_in_unit: Option<DurationUnit>,
    pub(crate) expires_at: Vec<Path>,
    /// How `expires_at` and `issued_at` dates are written, when not ISO 8601.
    pub(crate) date_format: Option<DateFormat>,
    /// Values meaning "never expires".
    pub(crate) never_expires: Vec<serde_json::Value>,
    /// Seconds before expiry at which a cached token is refreshed.
    pub(crate) refresh_margin: u64,
    pub(crate) issued_at: Vec<Path>,
    pub(crate) default_expires_in: Option<u64>,
    pub(crate) refresh_token: Vec<Path>,
    pub(crate) refresh_token_expires_in: Vec<Path>,
    pub(crate) refresh_token_expires_at: Vec<Path>,
    pub(crate) scope: Vec<Path>,
    pub(crate) scope_separator: String,
    pub(crate) id_token: Vec<Path>,
    pub(crate) extras: Vec<(String, Vec<Path>)>,
    /// Further token sets in the same reply; each is kept when its access token is present.
    pub(crate) also: Vec<(String, TokenMap)>,
    pub(crate) secret_extras: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceMap {
    pub(crate) device_code: Vec<Path>,
    pub(crate) user_code: Vec<Path>,
    pub(crate) verification_uri: Vec<Path>,
    pub(crate) verification_uri_complete: Vec<Path>,
    pub(crate) expires_in: Vec<Path>,
    pub(crate) interval: Vec<Path>,
}

#[derive(Clone, Debug)]
pub(crate) enum Test {
    Equals(serde_json::Value),
    NotEquals(serde_json::Value),
    OneOf(Vec<serde_json::Value>),
    Exists(bool),
    Matches(regex::Regex),
}

#[derive(Clone, Debug)]
pub(crate) struct ErrorCondition {
    pub(crate) path: Path,
    pub(crate) test: Test,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ErrorMap {
    pub(crate) when: Vec<ErrorCondition>,
    pub(crate) success: Vec<ErrorCondition>,
    pub(crate) code: Vec<Path>,
    pub(crate) message: Vec<Path>,
    pub(crate) hint: Vec<Path>,
    pub(crate) uri: Vec<Path>,
    pub(crate) status_codes: Vec<(u16, String)>,
    pub(crate) extras: Vec<(String, Vec<Path>)>,
}

impl Spec {
    /// Loads a spec from YAML text, its examples read and checked too. `file` names it in error
    /// messages; `extends:` is resolved against the bundled specs.
    pub fn from_yaml(file: &str, text: &str) -> Result<Spec, Error> {
        Loader::new().with_examples().load_text(file, text)
    }

    /// Loads a spec file, its examples read and checked too; `extends:` is resolved against the
    /// file's folder, then the bundled specs.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Spec, Error> {
        let path = path.as_ref();
        let mut loader = Loader::new().with_examples();
        if let Some(dir) = path.parent() {
            loader = loader.with_dir(dir);
        }
        loader.load_file(path)
    }

    /// The spec's id (`oauth2`, or a provider's, such as `acme`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The provider's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Link to the provider's token-endpoint documentation.
    pub fn docs(&self) -> Option<&str> {
        self.docs.as_deref()
    }

    /// Free-text description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The provider's categories (see [`CATEGORIES`]).
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The endpoints' URLs (or URL templates) as written.
    pub fn endpoint_urls(&self) -> impl Iterator<Item = &str> {
        self.endpoints.values().map(|e| e.text.as_str())
    }

    /// The provider's homepage.
    pub fn website(&self) -> Option<&str> {
        self.website.as_deref()
    }

    /// The rank under `featured:` (1 first), for tools that show a few providers first.
    pub fn featured(&self) -> Option<u64> {
        self.featured
    }

    /// Whether the spec is a generic base other specs extend (`base: true`), not a provider.
    pub fn is_base(&self) -> bool {
        self.base
    }

    /// Seconds before expiry at which a cached token of this provider counts as expired
    /// (`token.refresh_margin`; 0 when the spec sets none).
    pub fn refresh_margin(&self) -> u64 {
        self.token.refresh_margin
    }

    /// The file the spec was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the spec can make `kind` now: a grant it has, or another request whose
    /// endpoint is declared (a base spec defines revocation; a provider enables it by
    /// declaring its `revocation` endpoint).
    ///
    /// ```
    /// use specauth::RequestKind;
    /// let spec = specauth::Loader::new().load("oauth2").unwrap();
    /// assert!(spec.supports(&RequestKind::grant("client_credentials")));
    /// assert!(!spec.supports(&RequestKind::Revocation));
    /// ```
    pub fn supports(&self, kind: &RequestKind) -> bool {
        match kind {
            RequestKind::Grant(name) => self.grants.contains_key(name),
            other => self
                .requests
                .get(other)
                .is_some_and(|r| self.endpoints.contains_key(&r.endpoint)),
        }
    }

    /// Every request the spec can make now: its grants, then the other requests whose endpoint
    /// is declared.
    pub fn request_kinds(&self) -> impl Iterator<Item = RequestKind> + '_ {
        self.grant_names()
            .map(RequestKind::grant)
            .chain(RequestKind::OTHERS.into_iter().filter(|k| self.supports(k)))
    }

    /// The query parameter of the authorization redirect that carries the code (`code`
    /// unless the spec's `authorize.redirect.code` names another).
    pub fn redirect_code_param(&self) -> &str {
        &self.redirect.code
    }

    /// Whether the provider returns `state` on the authorization redirect (unless the spec
    /// says `authorize.redirect.state: false`).
    pub fn redirect_has_state(&self) -> bool {
        self.redirect.state
    }

    /// The inputs the code exchange takes from the authorization redirect, as (input, query
    /// parameter) pairs (`authorize.redirect.inputs`).
    ///
    /// ```
    /// let spec = specauth::Spec::from_yaml("r.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://{{ region }}.example.com/token", authorize: "https://example.com/a" }
    /// inputs: { region: { required: true } }
    /// authorize: { redirect: { code: authCode, inputs: { region: accounts_region } } }
    /// "#).unwrap();
    /// assert_eq!(spec.redirect_code_param(), "authCode");
    /// assert_eq!(spec.redirect_inputs().collect::<Vec<_>>(), [("region", "accounts_region")]);
    /// ```
    pub fn redirect_inputs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.redirect
            .inputs
            .iter()
            .map(|(i, p)| (i.as_str(), p.as_str()))
    }

    /// Names of the grants the spec supports.
    pub fn grant_names(&self) -> impl Iterator<Item = &str> {
        self.grants.keys().map(String::as_str)
    }

    /// The template of `kind`, or a usage error naming what the spec has.
    pub(crate) fn template(&self, kind: &RequestKind) -> Result<&RequestTemplate, Error> {
        let found = match kind {
            RequestKind::Grant(name) => self.grants.get(name),
            other => self.requests.get(other),
        };
        found.ok_or_else(|| {
            let have: Vec<String> = match kind {
                RequestKind::Grant(_) => self.grants.keys().cloned().collect(),
                _ => self.requests.keys().map(|k| k.name().to_owned()).collect(),
            };
            let given = kind.name();
            Error::Usage(format!(
                "spec `{}` has no {kind} (it has: {}){}",
                self.id,
                join(have.iter()),
                crate::error::did_you_mean(given, have.iter().map(String::as_str))
            ))
        })
    }

    /// Declared inputs, by name.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, &InputDef)> {
        self.inputs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Declared endpoints' names.
    pub fn endpoint_names(&self) -> impl Iterator<Item = &str> {
        self.endpoints.keys().map(String::as_str)
    }

    /// Whether `kind` of request (a revocation, an introspection) takes a token of type `hint`
    /// (`access_token`, `refresh_token`): what its `tokens:` says, both when it says nothing.
    pub fn takes_token(&self, kind: &RequestKind, hint: &str) -> bool {
        self.template(kind)
            .ok()
            .and_then(|t| t.tokens.as_ref())
            .is_none_or(|types| types.iter().any(|t| t == hint))
    }

    /// The client authentication method of a grant.
    ///
    /// Where an input chooses the method (`client_auth: "{{ auth_method }}"`), the method its
    /// default names; see [`Spec::client_auth_input`].
    pub fn client_auth(&self, grant: &str) -> Option<ClientAuthMethod> {
        let auth = &self.grants.get(grant)?.client_auth;
        let by_default = self
            .client_auth_input(grant)
            .and_then(|name| self.inputs.get(name)?.default.as_deref())
            .and_then(ClientAuthMethod::from_name);
        Some(by_default.unwrap_or(auth.method))
    }

    /// The input that chooses a grant's client authentication method, when one does.
    pub fn client_auth_input(&self, grant: &str) -> Option<&str> {
        match &self.grants.get(grant)?.client_auth.chosen_by {
            Some(Tmpl::Var(name)) => Some(name),
            Some(t) => t.vars().first().map(String::as_str),
            None => None,
        }
    }

    /// The inputs a grant cannot do without: those declared `required`, those its non-optional
    /// fields and headers use, and those its endpoint URL uses.
    pub fn required_inputs(&self, grant: &str) -> Option<Vec<&str>> {
        let g = self.grants.get(grant)?;
        let mut out: Vec<&str> = g.required.iter().map(String::as_str).collect();
        if let Some(endpoint) = self.endpoints.get(&g.endpoint) {
            for v in endpoint.tmpl.vars() {
                if !out.contains(&v.as_str()) {
                    out.push(v);
                }
            }
        }
        Some(out)
    }

    /// What is notable about this provider, derived from the spec itself (for listings such as
    /// the README's providers table): URLs built from inputs, the allowed values of inputs and
    /// the grants its own file declares beyond its `extends:` base, body encodings, separate
    /// endpoints, errors inside 2xx replies, expiry forms, extra values.
    ///
    /// ```
    /// let spec = specauth::Spec::from_yaml("acme.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://acme.example/token" }
    /// inputs:
    ///   code_challenge_method: { enum: [S256] }
    /// grants:
    ///   jwt: { fields: { grant_type: jwt } }
    /// "#).unwrap();
    /// assert_eq!(spec.quirks(), ["`code_challenge_method`: S256", "custom grant `jwt`"]);
    /// ```
    pub fn quirks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut url_vars: Vec<&str> = Vec::new();
        for endpoint in self.endpoints.values() {
            for v in endpoint.tmpl.vars() {
                if !url_vars.contains(&v.as_str()) {
                    url_vars.push(v);
                }
            }
        }
        if !url_vars.is_empty() {
            out.push(format!("URL from `{}`", url_vars.join("`, `")));
        }
        for (name, def) in &self.inputs {
            if let Some(allowed) = &def.allowed
                && self.own.enums.contains(name)
            {
                out.push(format!("`{name}`: {}", allowed.join("/")));
            }
        }
        let mut push = |s: String| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        for (gname, g) in &self.grants {
            match &g.body {
                Body::Fixed(BodyEncoding::Json) => push("JSON body".into()),
                Body::Fixed(BodyEncoding::Xml) => push("XML body".into()),
                Body::Fixed(BodyEncoding::Query) => {
                    push(format!("{} with query parameters", g.method))
                }
                Body::Template(_) => push("body format chosen by an input".into()),
                _ => {}
            }
            if g.endpoint != "token" {
                push(format!("`{gname}` at its own endpoint"));
            }
            if g.client_auth.id_field != "client_id" {
                push(format!("client id sent as `{}`", g.client_auth.id_field));
            }
            if !g.client_auth.form_encode_basic
                && matches!(
                    g.client_auth.method,
                    ClientAuthMethod::Basic | ClientAuthMethod::Both | ClientAuthMethod::Auto
                )
            {
                push("Basic credentials not form-encoded".into());
            }
            if self.own.grants.contains(gname) {
                push(format!("custom grant `{gname}`"));
            }
        }
        if !self.errors.when.is_empty() {
            push("errors inside 2xx replies".into());
        }
        if !self.token.expires_at.is_empty() {
            push("absolute `expires_at`".into());
        }
        if !self.token.issued_at.is_empty() {
            push("expiry from the reply's issue time".into());
        }
        if let Some(d) = self.token.default_expires_in {
            push(format!("default lifetime {d} s"));
        }
        if !self.token.refresh_token_expires_in.is_empty()
            || !self.token.refresh_token_expires_at.is_empty()
        {
            push("refresh-token expiry".into());
        }
        if self.token.date_format.is_some() {
            push("dates in a declared format".into());
        }
        if !self.token.never_expires.is_empty() {
            push("values that mean \"never expires\"".into());
        }
        if self.token.refresh_margin > 0 {
            push(format!("refreshed {} s early", self.token.refresh_margin));
        }
        if self.token.scope_separator != " " {
            push(format!("scopes split on `{}`", self.token.scope_separator));
        }
        for (name, _) in &self.token.also {
            push(format!("second token set `{name}`"));
        }
        let names: Vec<&str> = self
            .token
            .extras
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                self.own
                    .extras
                    .as_ref()
                    .is_none_or(|own| own.iter().any(|o| o == n))
            })
            .collect();
        if !names.is_empty() {
            push(format!("extras: {}", names.join(", ")));
        }
        out
    }

    /// Number of documented examples the spec carries (0 when they cannot be read: see
    /// [`Spec::check_examples`]).
    pub fn example_count(&self) -> usize {
        self.examples().map_or(0, <[_]>::len)
    }

    /// Reads and checks the spec's examples, when it was loaded without them (loading for use
    /// skips them; [`Loader::with_examples`] and [`Spec::from_yaml`] read them at once). A
    /// broken example is a spec error naming its `file:line:col`.
    pub fn check_examples(&self) -> Result<(), Error> {
        self.examples()
            .map(|_| ())
            .map_err(|e| Error::Spec(e.clone()))
    }

    /// Replaces an endpoint's URL (for sandboxes, tests and demos). The URL must be `https://`,
    /// or `http://` to a loopback host, with no user name or password before the host.
    ///
    /// ```
    /// let spec = specauth::Spec::from_yaml("demo.yaml", r#"
    /// extends: oauth2
    /// endpoints: { token: "https://auth.example.com/token" }
    /// "#).unwrap()
    /// .with_endpoint("token", "http://127.0.0.1:8080/token").unwrap();
    /// let req = spec.render("client_credentials", &specauth::Inputs::new().with("client_id", "a")).unwrap();
    /// assert_eq!(req.http().uri(), "http://127.0.0.1:8080/token");
    /// ```
    /// An endpoint that a request or the authorization URL names but the spec leaves out (such
    /// as `revocation`) can be added this way too.
    pub fn with_endpoint(mut self, name: &str, url: &str) -> Result<Spec, Error> {
        let referenced = self.requests.values().any(|r| r.endpoint == name);
        if !self.endpoints.contains_key(name) && !referenced {
            return Err(Error::Usage(format!(
                "spec `{}` has no endpoint `{name}` (it has: {})",
                self.id,
                join(self.endpoints.keys())
            )));
        }
        let uri = check_url(url).map_err(Error::Usage)?;
        self.data_mut().endpoints.insert(
            name.to_owned(),
            Endpoint::literal(url.to_owned(), Some(uri)),
        );
        Ok(self)
    }

    /// Points every endpoint at `origin` (`http://127.0.0.1:PORT`), keeping each one's path:
    /// how the demo and tests aim real specs at a local server.
    pub fn with_origin(mut self, origin: &str) -> Result<Spec, Error> {
        check_url(origin).map_err(Error::Usage)?;
        let origin = origin.trim_end_matches('/');
        for endpoint in self.data_mut().endpoints.values_mut() {
            let path = endpoint
                .text
                .split_once("://")
                .map(|(_, rest)| &rest[host_end(rest)..])
                .filter(|p| p.starts_with('/'))
                .unwrap_or("/");
            // A path still holding template syntax (a tenant, a realm) keeps only its literal
            // head: a local server has no tenants.
            let path = path.split(['{']).next().unwrap_or("/");
            // Left to the request to report, as any URL it cannot use.
            let url = format!("{origin}{path}");
            let uri = check_url(&url).ok();
            *endpoint = Endpoint::literal(url, uri);
        }
        Ok(self)
    }
}

/// Where the host part of a URL template (the text after `://`) ends: at the first `/`, `?`
/// or `#` outside template tags, whose expressions may hold those characters.
pub(crate) fn host_end(rest: &str) -> usize {
    let mut depth = 0usize;
    for (i, b) in rest.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'/' | b'?' | b'#' if depth == 0 => return i,
            _ => {}
        }
    }
    rest.len()
}

pub(crate) fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// `https://` anywhere, `http://` only to a loopback host; no user name or password. The URL,
/// parsed, when it passes.
pub(crate) fn check_url(url: &str) -> Result<http::Uri, String> {
    let shown = without_userinfo(url);
    if !url.contains("://") {
        return Err(format!("`{shown}` must start with https://"));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{shown}` is not a valid URL: {e}"))?;
    check_uri(&uri, url)?;
    Ok(uri)
}

/// The rules of [`check_url`] on a parsed URI; `url` is how it is named in messages.
pub(crate) fn check_uri(uri: &http::Uri, url: &str) -> Result<(), String> {
    check_userinfo(uri.authority().map_or("", |a| a.as_str()), url)?;
    if uri.scheme().is_none() {
        return Err(format!("`{url}` must start with https://"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = uri.host().unwrap_or("");
            if is_loopback(host) {
                Ok(())
            } else {
                Err(format!(
                    "`{url}` is plain http:// to `{host}`, which is not a loopback host; use https://"
                ))
            }
        }
        _ => Err(format!("`{url}` must start with https://")),
    }
}

/// The one rule on credentials in endpoint URLs: `user:password@` before the host is refused.
/// URLs are shown in previews, `-v` logs and errors, and client credentials travel as the
/// spec's `client_auth` says, where they are redacted. `authority` is the URL's `user@host:port`
/// part (or, for a template, the text in its place); `url` names the URL in the message, with
/// its user name and password left out.
pub(crate) fn check_userinfo(authority: &str, url: &str) -> Result<(), String> {
    if authority.contains('@') {
        return Err(format!(
            "`{}` has a user name or password before its host; endpoint URLs must not carry credentials",
            without_userinfo(url)
        ));
    }
    Ok(())
}

/// The authority of a URL as written: from after `://` (or the start) to the path, query or
/// fragment.
pub(crate) fn authority_of(url: &str) -> &str {
    &url[authority_range(url)]
}

fn authority_range(url: &str) -> std::ops::Range<usize> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    start..end
}

/// `url` with anything before `@` in its authority replaced by [`crate::REDACTED`].
fn without_userinfo(url: &str) -> String {
    let authority = authority_range(url);
    match url[authority.clone()].rfind('@') {
        Some(at) => format!(
            "{}{}{}",
            &url[..authority.start],
            crate::REDACTED,
            &url[authority.start + at..]
        ),
        None => url.to_owned(),
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::{Path, simple_path};

    #[test]
    fn a_member_path_names_the_one_member_its_query_selects() {
        use jsonpath_rust::parser::model::{Segment, Selector};
        // A name given as a member is what the compiled query would select; other paths,
        // `$['a']` included, are left to the query.
        for (text, member) in [
            ("$.access_token", Some("access_token")),
            ("$._x", Some("_x")),
            ("$.C9", Some("C9")),
            ("$.a_b.C9", None),
            ("$.errors[0]", None),
            ("$", None),
            ("$['a']", None),
            ("$[0]", None),
        ] {
            let path = Path::parse(text).expect(text);
            assert_eq!(path.member(), member, "{text}");
            if let Some(name) = member {
                assert!(
                    matches!(&path.query.segments[..], [Segment::Selector(Selector::Name(n))] if n == name),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn simple_paths_are_the_queries_the_general_parser_builds() {
        for text in [
            "$",
            "$.access_token",
            "$.errors[0].message",
            "$[0].type",
            "$.data.tokens[12].value",
            "$.a_b.C9",
            "$._x",
            "$[0][1]",
        ] {
            let general = jsonpath_rust::parser::parse_json_path(text).expect(text);
            assert_eq!(simple_path(text).as_ref(), Some(&general), "{text}");
        }
        // Anything else is the general parser's: quoted names, hyphens, negative or padded
        // indexes, wildcards, filters, descendants, and malformed paths it must report.
        for text in [
            "$['a']", "$.a-b", "$[-1]", "$[01]", "$.*", "$..a", "$[?@.a]", "$.1a", "$.a.", "$.a[0",
            "a.b", "$ .a", "$[1:2]",
        ] {
            assert!(simple_path(text).is_none(), "{text}");
        }
    }
}
