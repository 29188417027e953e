//! The YAML document layer: what one spec file says, before `extends:` merging and compilation.
//!
//! Every value that can be wrong in a way serde cannot see (a template, a JSONPath, a URL, a name
//! that must refer to something) is an [`At`], so the compiler can point at `file:line:col`.
//! Struct fields are [`Patch`]es so a child spec can leave a key alone (absent), remove it
//! (`null`) or replace / deep-merge it.

use std::cell::RefCell;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::Pos;

thread_local! {
    /// The file being deserialized. `At<T>` values pick it up so positions survive merging
    /// values from several files. Set only for the duration of one `from_str` call.
    static CURRENT_FILE: RefCell<Arc<str>> = RefCell::new(Arc::from(""));
}

thread_local! {
    /// Whether `examples:` is skipped rather than read: set while a spec is loaded for use.
    static SKIP_EXAMPLES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

thread_local! {
    /// Whether documents are read from their compact form (a bundled spec's, see
    /// [`with_compact`]) rather than from YAML.
    static COMPACT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` reading documents in their compact form: what [`Serialize`] writes, JSON in
/// practice, in which every [`At`] is `[line, column, value]` and every value written short in
/// YAML is written long. Every bundled spec is kept in this form too, so a process that needs
/// one does not parse its YAML: JSON of known shape reads several times faster, positions
/// included.
pub(crate) fn with_compact<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&COMPACT, true, f)
}

/// Runs `f` with the thread-local `flag` set to `value`, then sets it back.
fn with_flag<R>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    value: bool,
    f: impl FnOnce() -> R,
) -> R {
    let previous = flag.with(|c| c.replace(value));
    let out = f();
    flag.with(|c| c.set(previous));
    out
}

fn compact() -> bool {
    COMPACT.with(std::cell::Cell::get)
}

/// Runs `f` with `examples:` sections skipped (`true`) or read (`false`).
pub(crate) fn with_examples_skipped<R>(skip: bool, f: impl FnOnce() -> R) -> R {
    with_flag(&SKIP_EXAMPLES, skip, f)
}

/// `examples:` as written, or nothing when loading for use: a spec's examples are two thirds of
/// its text and most of its parsing, and no token exchange uses them. Skipped YAML is still
/// well-formed YAML (the parser checks it), so a syntax error anywhere is still found.
fn examples_or_skip<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<At<ExampleDoc>>, D::Error> {
    if SKIP_EXAMPLES.with(std::cell::Cell::get) {
        de::IgnoredAny::deserialize(d)?;
        Ok(Vec::new())
    } else {
        Vec::deserialize(d)
    }
}

thread_local! {
    /// Whether `authorize:` and `requests:` are skipped rather than read: set while a spec is
    /// loaded to make one token grant's exchange ([`with_other_requests_skipped`]).
    static SKIP_OTHER_REQUESTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with `authorize:` and `requests:` skipped (`true`) or read (`false`): a process
/// that makes one grant's exchange uses neither (a third of the bundled base). Skipped text is
/// still well-formed (the parser checks it).
pub(crate) fn with_other_requests_skipped<R>(skip: bool, f: impl FnOnce() -> R) -> R {
    with_flag(&SKIP_OTHER_REQUESTS, skip, f)
}

/// Whether `authorize:` and `requests:` are being skipped.
pub(crate) fn other_requests_skipped() -> bool {
    SKIP_OTHER_REQUESTS.with(std::cell::Cell::get)
}

/// A section read as written, or its default (absent) while other requests are skipped.
fn unless_other_requests_skipped<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    if other_requests_skipped() {
        de::IgnoredAny::deserialize(d)?;
        Ok(T::default())
    } else {
        T::deserialize(d)
    }
}

/// The compact form is for loading for use, which skips examples: none are written.
fn no_examples<S: Serializer>(_: &[At<ExampleDoc>], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_seq(Some(0))?.end()
}

/// A spec file's `examples:` alone, every other key ignored: how examples are read later, on
/// first use, for a spec loaded without them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ExamplesOnly {
    pub examples: Vec<At<ExampleDoc>>,
}

/// Runs `f` with `file` as the file that deserialized [`At`] values belong to.
pub(crate) fn with_file<R>(file: &Arc<str>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT_FILE.with(|c| c.replace(file.clone()));
    let out = f();
    CURRENT_FILE.with(|c| *c.borrow_mut() = previous);
    out
}

/// A value with the place it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> At<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        At { value, pos }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if compact() {
            let (line, column, value) = <(u64, u64, T)>::deserialize(d)?;
            let file = CURRENT_FILE.with(|c| c.borrow().clone());
            return Ok(At {
                value,
                pos: Pos { file, line, column },
            });
        }
        let spanned = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let file = CURRENT_FILE.with(|c| c.borrow().clone());
        Ok(At {
            value: spanned.value,
            pos: Pos {
                file,
                line: spanned.referenced.line(),
                column: spanned.referenced.column(),
            },
        })
    }
}

/// The compact form: `[line, column, value]`; the file is the reader's.
impl<T: Serialize> Serialize for At<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.pos.line, self.pos.column, &self.value).serialize(s)
    }
}

/// A long form written in the compact form of an [`At`] with no position of its own: how the
/// kinds read through `At<Written<…>>` are written.
fn unplaced<T: Serialize, S: Serializer>(long: T, s: S) -> Result<S::Ok, S::Error> {
    (0u64, 0u64, long).serialize(s)
}

/// Which document fields the compact form leaves out: those that read back as their default.
trait Unwritten {
    fn unwritten(&self) -> bool;
}

impl<T> Unwritten for Patch<T> {
    fn unwritten(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

impl<T> Unwritten for Entries<T> {
    fn unwritten(&self) -> bool {
        !self.cleared && self.map.is_empty() && self.removed.is_empty()
    }
}

impl<T> Unwritten for Vec<T> {
    fn unwritten(&self) -> bool {
        self.is_empty()
    }
}

/// A key of a child spec: absent (inherit), `null` (remove), or set (replace or deep-merge).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

/// `Absent` is never written (its field is left out); `Null` is `null`.
impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

impl<T> Patch<T> {
    pub fn as_ref(&self) -> Option<&T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The value, if set.
    pub fn into_option(self) -> Option<T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Set(v),
            None => Patch::Null,
        })
    }
}

/// How one kind of value may be written: short, as a scalar read as its text (`basic`,
/// `$.access_token`, `"{{ code }}"`), or long, as a map or a list. [`Written`] reads every such
/// kind with one visitor, so they take scalars alike and word their errors alike.
trait ShortOrLong: Sized {
    /// What the value must be, for errors (serde says "invalid type: …, expected THIS").
    const EXPECTING: &str;
    /// Whether numbers and booleans are read as their text too, or only strings are.
    const ANY_SCALAR: bool;

    /// The value written as a map, for a kind that may be.
    fn from_map<'de, A: MapAccess<'de>>(_map: A) -> Result<Self, A::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::Map,
            &Self::EXPECTING,
        ))
    }

    /// The value written as a list, for a kind that may be.
    fn from_list<'de, A: SeqAccess<'de>>(_list: A) -> Result<Self, A::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::Seq,
            &Self::EXPECTING,
        ))
    }
}

/// A value as written: the text of a short one, or what a long one reads as. Read it inside an
/// [`At`] to know where a short one was written.
enum Written<T> {
    Short(String),
    Long(T),
}

impl<'de, T: ShortOrLong> Deserialize<'de> for Written<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: ShortOrLong> V<T> {
            fn scalar<E: de::Error>(
                &self,
                text: impl ToString,
                what: de::Unexpected,
            ) -> Result<Written<T>, E> {
                if T::ANY_SCALAR {
                    Ok(Written::Short(text.to_string()))
                } else {
                    Err(E::invalid_type(what, self))
                }
            }
        }
        impl<'de, T: ShortOrLong> Visitor<'de> for V<T> {
            type Value = Written<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Written::Short(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.scalar(v, de::Unexpected::Signed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.scalar(v, de::Unexpected::Unsigned(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                self.scalar(v, de::Unexpected::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                self.scalar(v, de::Unexpected::Bool(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::from_map(map).map(Written::Long)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, list: A) -> Result<Self::Value, A::Error> {
                T::from_list(list).map(Written::Long)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Deep merge of a child layer over a base layer.
pub trait Merge {
    fn merge(&mut self, over: Self);
}

impl<T: Merge> Merge for Patch<T> {
    fn merge(&mut self, over: Self) {
        match over {
            Patch::Absent => {}
            Patch::Null => *self = Patch::Null,
            Patch::Set(v) => match self {
                Patch::Set(mine) => mine.merge(v),
                _ => *self = Patch::Set(v),
            },
        }
    }
}

impl<T: Merge> Merge for IndexMap<String, Patch<T>> {
    fn merge(&mut self, over: Self) {
        for (key, value) in over {
            match value {
                // Kept as a tombstone, not removed: a grant's `Accept: null` must still remove
                // the header when the grant is merged over the `request:` defaults later.
                // Readers skip null entries.
                Patch::Null => {
                    self.insert(key, Patch::Null);
                }
                value => self.entry(key).or_insert(Patch::Absent).merge(value),
            }
        }
    }
}

/// A map of named entries (`grants:`, `headers:`, `extras:`…) a child merges key by key: a
/// key set to `null` removes that entry, and the whole map set to `null` removes every entry
/// the base has (`requests: null`) before the child's own are added.
#[derive(Clone, Debug, PartialEq)]
pub struct Entries<T> {
    pub map: IndexMap<String, Patch<T>>,
    /// Written as `null`: nothing of the base's map is kept.
    pub cleared: bool,
    /// Where each entry set to `null` was removed, for errors about what still uses it.
    pub removed: IndexMap<String, Pos>,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries {
            map: IndexMap::new(),
            cleared: false,
            removed: IndexMap::new(),
        }
    }
}

impl<T> std::ops::Deref for Entries<T> {
    type Target = IndexMap<String, Patch<T>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<T> std::ops::DerefMut for Entries<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl<'a, T> IntoIterator for &'a Entries<T> {
    type Item = (&'a String, &'a Patch<T>);
    type IntoIter = indexmap::map::Iter<'a, String, Patch<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<T> FromIterator<(String, Patch<T>)> for Entries<T> {
    fn from_iter<I: IntoIterator<Item = (String, Patch<T>)>>(iter: I) -> Self {
        Entries {
            map: iter.into_iter().collect(),
            ..Entries::default()
        }
    }
}

impl<'de, T: Deserialize<'de> + PartialEq> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(
            match Option::<IndexMap<String, At<Patch<T>>>>::deserialize(d)? {
                Some(written) => {
                    let mut entries = Entries::default();
                    for (key, at) in written {
                        if at.value == Patch::Null {
                            entries.removed.insert(key.clone(), at.pos);
                        }
                        entries.map.insert(key, at.value);
                    }
                    entries
                }
                None => Entries {
                    cleared: true,
                    ..Entries::default()
                },
            },
        )
    }
}

/// `null` when cleared, else each entry as an `At` (a removed entry's position is where it was
/// removed; a kept one's is not read back).
impl<T: Serialize> Serialize for Entries<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.cleared && self.map.is_empty() {
            return s.serialize_none();
        }
        let mut out = s.serialize_map(Some(self.map.len()))?;
        for (key, value) in &self.map {
            let (line, column) = self.removed.get(key).map_or((0, 0), |p| (p.line, p.column));
            out.serialize_entry(key, &(line, column, value))?;
        }
        out.end()
    }
}

impl<T: Merge + PartialEq> Merge for Entries<T> {
    fn merge(&mut self, over: Self) {
        if over.cleared {
            // The base's entries are gone, tombstones included: the child starts afresh.
            *self = over;
        } else {
            for (key, value) in &over.map {
                if *value != Patch::Null {
                    self.removed.shift_remove(key);
                }
            }
            self.removed.extend(over.removed);
            self.map.merge(over.map);
        }
    }
}

/// A large document kept boxed, so the documents that hold it stay small to move.
impl<T: Merge> Merge for Box<T> {
    fn merge(&mut self, over: Self) {
        (**self).merge(*over)
    }
}

/// Values that a child replaces whole instead of merging.
macro_rules! replace_on_merge {
    ($($t:ty),*) => {$(
        impl Merge for $t {
            fn merge(&mut self, over: Self) { *self = over; }
        }
    )*};
}
replace_on_merge!(
    At<String>,
    At<u64>,
    At<bool>,
    String,
    bool,
    Paths,
    Field,
    Vec<At<String>>,
    Vec<Condition>,
    Vec<serde_json::Value>,
    IndexMap<u16, At<String>>
);

/// Declares a document struct and its [`Merge`] in one place, so a field added to the struct
/// is merged too. Every key is optional (missing keys take the [`Default`]) and an unknown key
/// is an error.
///
/// A field merges by its type: a [`Patch`] keeps the base's value when the child leaves the
/// key out, removes it on `null`, and deep-merges or replaces it when the child sets it; a map
/// of patches does so key by key. A field marked `=> own` belongs to the file that writes it:
/// the child's value is taken even when the child leaves the key out.
macro_rules! document {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty $(=> $rule:ident)?,
            )*
        }
    ) => {
        #[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
        #[serde(default, deny_unknown_fields)]
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(skip_serializing_if = "Unwritten::unwritten")]
                pub $field: $ty,
            )*
        }

        impl Merge for $name {
            fn merge(&mut self, over: Self) {
                $( merge_field!(self.$field, over.$field $(, $rule)?); )*
            }
        }
    };
}

/// One field's merge, by its rule in [`document!`].
macro_rules! merge_field {
    ($mine:expr, $over:expr) => {
        $mine.merge($over)
    };
    ($mine:expr, $over:expr, own) => {
        $mine = $over
    };
}

document! {
    /// One spec file as written.
    #[cfg_attr(any(test, feature = "schema"), schemars(title = "specauth provider spec"))]
    pub struct SpecDoc {
        // Identity is the file's own: a child without `id:` is named after its file, not its
        // base. `extends` is consumed by the loader.
        /// Identifier; defaults to the file stem.
        pub id: Patch<At<String>> => own,
        /// Display name of the provider (defaults to the id).
        pub name: Patch<At<String>> => own,
        /// The spec this one builds on.
        pub extends: Patch<At<String>> => own,
        /// Where the provider documents its token endpoint.
        pub docs: Patch<At<String>> => own,
        /// Free text about the provider or the spec, shown in listings.
        pub description: Patch<String> => own,
        /// The provider's kinds, from a fixed list (`identity`, `crm`, `finance`, …).
        pub categories: Patch<Vec<At<String>>> => own,
        /// The provider's own homepage.
        pub website: Patch<At<String>> => own,
        /// Shown first, in this rank (1 first), where a tool shows a few providers before the
        /// rest: the demo's opening rows.
        pub featured: Patch<At<u64>> => own,
        /// `true`: a generic base other specs extend (`oauth2`), not a provider; listings and
        /// the catalogue's rules for providers leave it out.
        pub base: Patch<bool> => own,
        /// URLs by name (`token`, `authorize`, `revocation`, `device_authorization`,
        /// `introspection`, or your own): `https://`, or a template over inputs (`https://{{ tenant
        /// }}.example.com/token`).
        pub endpoints: Entries<At<String>>,
        /// How the client authenticates at the token endpoint, for every grant: `basic` (default),
        /// `post`, `both`, `none`, `private_key_jwt`, `client_secret_jwt`, `tls_client_auth`,
        /// `self_signed_tls_client_auth` (mutual TLS, RFC 8705: the `client_certificate` and
        /// `client_key` inputs), or a map with renamed keys.
        pub client_auth: Patch<Box<ClientAuthDoc>>,
        /// The values callers supply (`client_id`, `code`, `tenant`…), by name: whether required or
        /// secret, allowed values, a default, a description.
        pub inputs: Entries<InputDoc>,
        /// Defaults shared by every grant's request.
        pub request: Patch<Box<RequestDoc>>,
        /// The grants, by name (`authorization_code`, `client_credentials`, or your own): each a
        /// request template over the `request:` defaults; `null` removes one the base has.
        // Each grant keeps where it is written, for errors about the grant as a whole.
        pub grants: Entries<At<RequestDoc>>,
        /// The authorization request a browser is sent to (RFC 6749 §4.1.1).
        #[serde(deserialize_with = "unless_other_requests_skipped")]
        pub authorize: Patch<Box<AuthorizeDoc>>,
        /// Requests that are not grants: `device_authorization` (RFC 8628), `revoke` (RFC 7009),
        /// `introspect` (RFC 7662). Each is available when its endpoint is declared.
        #[serde(deserialize_with = "unless_other_requests_skipped")]
        pub requests: Entries<At<RequestDoc>>,
        /// Where the device authorization reply's values are.
        pub device: Patch<DeviceDoc>,
        /// Where the introspection reply's values are.
        pub introspection: Patch<IntrospectionDoc>,
        /// Where the token's parts are in a successful reply (JSONPaths), and how to read them.
        pub token: Patch<Box<TokenDoc>>,
        /// How an error reply is recognised (even inside a 2xx reply), and where its code, message,
        /// hint and URI are.
        pub errors: Patch<Box<ErrorsDoc>>,
        /// Not inherited: examples belong to the file that states them.
        #[serde(deserialize_with = "examples_or_skip", serialize_with = "no_examples")]
        pub examples: Vec<At<ExampleDoc>> => own,
    }
}

document! {
    /// A declared input.
    pub struct InputDoc {
        /// Every grant needs it (other inputs are needed when a grant's non-optional fields use
        /// them).
        pub required: Patch<bool>,
        /// Redacted in previews, logs, errors and snapshots (client secrets, passwords, codes,
        /// tokens).
        pub secret: Patch<bool>,
        /// The only values the input may take; others are refused, naming the input.
        #[serde(rename = "enum")]
        pub allowed: Patch<Vec<At<String>>>,
        /// The value used when the caller gives none.
        pub default: Patch<At<String>>,
        /// What the input is, for `--help`, listings and error messages.
        pub description: Patch<String>,
        /// Inserted into endpoint URLs as given, not percent-encoded: for inputs that are URLs
        /// or `host[:port][/path]` themselves. The rendered URL must still keep the template's
        /// literal host part.
        pub verbatim: Patch<bool>,
    }
}

document! {
    /// How the client authenticates: `basic`, `post`, `both` or `none`, or a map with renamed keys.
    pub struct ClientAuthMap {
        /// `basic` (default), `post`, `both`, `none`, `auto` (Basic, then body credentials after
        /// an `invalid_client`), `private_key_jwt`, `client_secret_jwt`, `tls_client_auth` or
        /// `self_signed_tls_client_auth` (mutual TLS, RFC 8705: the client id in the body, the
        /// certificate from the `client_certificate` and `client_key` inputs on the connection).
        pub method: Patch<At<String>>,
        /// Body key for the client id (`client_id` unless renamed).
        pub id_field: Patch<At<String>>,
        /// Body key for the client secret (`client_secret` unless renamed).
        pub secret_field: Patch<At<String>>,
        /// `form` (RFC 6749 §2.3.1: form-urlencode id and secret before base64) or `raw`.
        pub basic_encoding: Patch<At<String>>,
        /// For `private_key_jwt` and `client_secret_jwt`: the signing algorithm (default RS256,
        /// HS256 for `client_secret_jwt`).
        pub alg: Patch<At<String>>,
        /// For the JWT methods: the assertion's `aud` (a template; default the URL the request
        /// goes to).
        pub audience: Patch<At<String>>,
        /// For the JWT methods: claims over the RFC 7523 defaults (`iss`, `sub`, `jti`, `iat`,
        /// `exp`, or others), each a template; a value that renders as a whole number is a
        /// JSON number (`exp: "{{ now() + 60 }}"`), and `null` removes a default claim.
        pub claims: Entries<At<String>>,
    }
}

/// `client_auth:` is either a method name or a [`ClientAuthMap`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientAuthDoc(pub ClientAuthMap);

impl Merge for ClientAuthDoc {
    fn merge(&mut self, over: Self) {
        self.0.merge(over.0)
    }
}

impl ShortOrLong for ClientAuthDoc {
    const EXPECTING: &str = "a client auth method (basic, post, both, none) or a map with `method`";
    const ANY_SCALAR: bool = false;

    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        ClientAuthMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(ClientAuthDoc)
    }
}

impl Serialize for ClientAuthDoc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        unplaced(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for ClientAuthDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = At::<Written<Self>>::deserialize(d)?;
        Ok(match at.value {
            Written::Short(method) => ClientAuthDoc(ClientAuthMap {
                method: Patch::Set(At::new(method, at.pos)),
                ..Default::default()
            }),
            Written::Long(auth) => auth,
        })
    }
}

document! {
    /// A request template: defaults under `request:`, or one grant under `grants:`.
    pub struct RequestDoc {
        /// `POST` (default) or `GET`.
        pub method: Patch<At<String>>,
        /// Name of the endpoint under `endpoints:` (default `token`).
        pub endpoint: Patch<At<String>>,
        /// Body encoding: `form`, `json`, `xml`, `query` or `none`; may be a template over inputs.
        pub body: Patch<At<String>>,
        /// Root element of an XML body.
        pub xml_root: Patch<At<String>>,
        /// This request's own client authentication, over the spec's `client_auth`.
        pub client_auth: Patch<Box<ClientAuthDoc>>,
        /// Request headers by name: templates over inputs; `null` removes one the base sets.
        pub headers: Entries<Field>,
        /// Body (or query) fields by name: templates over inputs; `{ value, optional: true }`
        /// leaves one out when its input is absent; `null` removes one the base sets.
        pub fields: Entries<Field>,
        /// For `revoke` and `introspect`: the token types the endpoint takes (`access_token`,
        /// `refresh_token`; default both), so `logout` and `revoke` never send another.
        pub tokens: Patch<Vec<At<String>>>,
        /// For a grant that is the first step of a chain: values of its reply, by input name,
        /// that become inputs of the next step (`session_id: $.session.id`).
        pub take: Entries<Paths>,
        /// For a grant that is a step of a chain: the grant sent next, with the inputs taken
        /// from this reply added; the token comes from the last step.
        pub then: Patch<At<String>>,
    }
}

/// A grant merged over its base keeps the place of the layer that last wrote it.
impl Merge for At<RequestDoc> {
    fn merge(&mut self, over: Self) {
        self.value.merge(over.value);
        self.pos = over.pos;
    }
}

document! {
    /// The authorization request: its endpoint and query parameters.
    pub struct AuthorizeDoc {
        /// Name of the endpoint under `endpoints:` (default `authorize`).
        pub endpoint: Patch<At<String>>,
        /// Query parameters of the authorization URL by name: templates over inputs, optional like
        /// request fields.
        pub params: Entries<Field>,
        /// What the redirect back carries besides `state`.
        pub redirect: Patch<RedirectDoc>,
    }
}

document! {
    /// The redirect back from the authorization page: where the code is, and which other
    /// parameters become inputs of the code exchange (and are kept for refreshes).
    pub struct RedirectDoc {
        /// The query parameter that carries the code (default `code`).
        pub code: Patch<At<String>>,
        /// Input name → the query parameter it is taken from (`realm_id: realmId`).
        pub inputs: Entries<At<String>>,
        /// `false`: the provider returns no `state` (its authorization request takes none), so
        /// the redirect is accepted without one; PKCE, where the provider takes it, and the
        /// one-shot loopback listener are then what tie the redirect to this sign-in.
        pub state: Patch<bool>,
    }
}

document! {
    /// Paths into a device authorization reply (RFC 8628 §3.2).
    pub struct DeviceDoc {
        /// Where the device code is.
        pub device_code: Patch<Paths>,
        /// Where the code the person types is.
        pub user_code: Patch<Paths>,
        /// Where the URL the person opens is.
        pub verification_uri: Patch<Paths>,
        /// Where the URL with the user code already in it is.
        pub verification_uri_complete: Patch<Paths>,
        /// Where the lifetime of the device code (seconds) is.
        pub expires_in: Patch<Paths>,
        /// Where the polling interval (seconds) is.
        pub interval: Patch<Paths>,
    }
}

document! {
    /// Paths into an introspection reply (RFC 7662 §2.2).
    pub struct IntrospectionDoc {
        /// Where the `active` flag is.
        pub active: Patch<Paths>,
    }
}

/// A header or body field: a template, or `{ value: template, optional: true, … }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Field {
    pub value: At<String>,
    pub optional: bool,
    /// The value is a space-separated list, sent as one parameter per item (RFC 8707's
    /// repeated `resource`); form and query encodings only.
    pub repeat: bool,
    /// `string` (default), `number`, `boolean` or `json`: what the rendered text becomes in a
    /// JSON body.
    pub kind: Option<At<String>>,
    /// `query`: sent in the URL's query string whatever the body encoding is.
    pub place: Option<At<String>>,
    /// Sent as rendered, not percent-encoded (form and query).
    pub raw: bool,
}

impl Default for At<String> {
    fn default() -> Self {
        At::new(String::new(), Pos::default())
    }
}

impl ShortOrLong for Field {
    const EXPECTING: &str = "a template string or a map with `value` and `optional`";
    const ANY_SCALAR: bool = true;

    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FieldMap {
            value: At<ScalarString>,
            #[serde(default)]
            optional: bool,
            #[serde(default)]
            repeat: bool,
            #[serde(default, rename = "type")]
            kind: Option<At<String>>,
            #[serde(default, rename = "in")]
            place: Option<At<String>>,
            #[serde(default)]
            raw: bool,
        }
        let FieldMap {
            value,
            optional,
            repeat,
            kind,
            place,
            raw,
        } = FieldMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Field {
            value: At::new(value.value.0, value.pos),
            optional,
            repeat,
            kind,
            place,
            raw,
        })
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct FieldMap<'a> {
            value: &'a At<String>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            optional: bool,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            repeat: bool,
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            kind: &'a Option<At<String>>,
            #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
            place: &'a Option<At<String>>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            raw: bool,
        }
        let long = FieldMap {
            value: &self.value,
            optional: self.optional,
            repeat: self.repeat,
            kind: &self.kind,
            place: &self.place,
            raw: self.raw,
        };
        unplaced(long, s)
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = At::<Written<Self>>::deserialize(d)?;
        Ok(match at.value {
            Written::Short(template) => Field {
                value: At::new(template, at.pos),
                ..Field::default()
            },
            Written::Long(field) => field,
        })
    }
}

/// A string written as any YAML scalar (`123456`, `true` and `"abc"` all become strings).
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarString(pub String);

impl ShortOrLong for ScalarString {
    const EXPECTING: &str = "a string, number or boolean";
    const ANY_SCALAR: bool = true;
}

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Asked for a string, the YAML layer hands over a plain scalar's text as written, so
        // `0123456789012345678901` keeps its leading zero and every digit (read as a number
        // it would not). No position: callers that want one read an `At<ScalarString>`.
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = ScalarString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(ScalarString::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ScalarString, E> {
                Ok(ScalarString(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
        }
        d.deserialize_string(Text)
    }
}

/// One JSONPath or a list of them; the first that matches wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Paths(pub Vec<At<String>>);

impl ShortOrLong for Paths {
    const EXPECTING: &str = "a JSONPath string or a list of JSONPath strings";
    const ANY_SCALAR: bool = false;

    fn from_list<'de, A: SeqAccess<'de>>(list: A) -> Result<Self, A::Error> {
        Vec::deserialize(de::value::SeqAccessDeserializer::new(list)).map(Paths)
    }
}

impl Serialize for Paths {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        unplaced(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = At::<Written<Self>>::deserialize(d)?;
        Ok(match at.value {
            Written::Short(path) => Paths(vec![At::new(path, at.pos)]),
            Written::Long(paths) => paths,
        })
    }
}

document! {
    /// How a reply becomes a token: where each value is, and how to read it.
    pub struct TokenDoc {
        /// Where the access token is (required of every token reply unless
        /// `access_token_optional`).
        pub access_token: Patch<Paths>,
        /// A successful reply may carry no access token (a flow that only identifies the user):
        /// the token's `access_token` is then empty (`null` in JSON).
        pub access_token_optional: Patch<bool>,
        /// Where the token type is (`bearer` is normalised to `Bearer`).
        pub token_type: Patch<Paths>,
        /// Used when the reply has no token type.
        pub default_token_type: Patch<At<String>>,
        /// Where the lifetime is: seconds (or `expires_in_unit`), a number or a numeric string.
        pub expires_in: Patch<Paths>,
        /// `seconds` (default) or `milliseconds`.
        pub expires_in_unit: Patch<At<String>>,
        /// Absolute expiry: epoch seconds, epoch milliseconds or an ISO 8601 / RFC 3339 date
        /// (or a date in `date_format`).
        pub expires_at: Patch<Paths>,
        /// How `expires_at` and `issued_at` dates are written when not ISO 8601: a strftime
        /// format (`"%d/%m/%Y %I:%M:%S %p"`, `"%B %d, %Y %H:%M"`).
        pub date_format: Patch<At<String>>,
        /// The UTC offset of dates that state none (`"+10:00"`; default `UTC`).
        pub timezone: Patch<At<String>>,
        /// Values of `expires_in`, `expires_at` or `refresh_token_expires_in` that mean the
        /// token never expires (`[0]`, `[-1]`), rather than that it expired.
        pub never_expires: Patch<Vec<serde_json::Value>>,
        /// Seconds before expiry at which a cached token counts as expired and is refreshed
        /// (default 0; `print-token --min-valid` asks for more when it is larger).
        pub refresh_margin: Patch<At<u64>>,
        /// When the provider issued the token (epoch seconds or milliseconds, or an ISO date): a
        /// relative `expires_in` counts from here instead of from the local clock.
        pub issued_at: Patch<Paths>,
        /// Lifetime in seconds assumed when the reply states none.
        pub default_expires_in: Patch<At<u64>>,
        /// Where the refresh token is; when a refresh reply has none, the one sent is kept.
        pub refresh_token: Patch<Paths>,
        /// Where the refresh token's lifetime (seconds) is.
        pub refresh_token_expires_in: Patch<Paths>,
        /// Where the refresh token's absolute expiry is (a date, read like `expires_at`).
        pub refresh_token_expires_at: Patch<Paths>,
        /// Where the granted scopes are: a string split on `scope_separator`, or a list.
        pub scope: Patch<Paths>,
        /// Characters that separate scopes in a string (default: a space; `" ,+"` accepts any of them).
        pub scope_separator: Patch<At<String>>,
        /// Where the OpenID Connect ID token is.
        pub id_token: Patch<Paths>,
        /// Provider-specific values kept under `extra`.
        pub extras: Entries<Paths>,
        /// Further token sets in the same reply (a user token beside a bot token), by name.
        pub also: Entries<TokenDoc>,
        /// Names under `extras` whose values are secrets (webhook tokens…): redacted like tokens.
        pub secret_extras: Patch<Vec<At<String>>>,
    }
}

document! {
    /// How a reply is recognised as an error, and where its parts are.
    pub struct ErrorsDoc {
        /// Conditions that make even a 2xx reply an error; any one is enough.
        pub when: Patch<Vec<Condition>>,
        /// Conditions a 2xx reply must all meet to be a success (`{ path: $.result, equals:
        /// success }`); a reply that misses one is the provider's refusal.
        pub success: Patch<Vec<Condition>>,
        /// Where the machine-readable error code is (`invalid_grant`…).
        pub code: Patch<Paths>,
        /// Where the human-readable message is.
        pub message: Patch<Paths>,
        /// Where a hint on how to fix it is.
        pub hint: Patch<Paths>,
        /// Where a link to documentation about the error is.
        pub uri: Patch<Paths>,
        /// The error code an HTTP status stands for when the reply names none (a bodiless
        /// `428` that means `authorization_pending`).
        pub status_codes: Patch<IndexMap<u16, At<String>>>,
        /// Further values kept on the provider error (trace ids, sub-codes), by name.
        pub extras: Entries<Paths>,
    }
}

/// A test of one value of a reply: `{ path: $.ok, equals: false }`, `{ path: $.error,
/// exists: true }`, `{ path: $.status, not_equals: ok }`, `{ path: $.code, one_of: [1, 2] }`
/// or `{ path: $.message, matches: "^Invalid" }`; exactly one test each.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The JSONPath of the value tested.
    pub path: At<String>,
    /// The value equals this (`false` equals `"false"`: form and XML replies hold strings).
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// The value is present and differs from this.
    #[serde(default)]
    pub not_equals: Option<serde_json::Value>,
    /// The value equals one of these.
    #[serde(default)]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// The value is present (`true`) or absent or null (`false`).
    #[serde(default)]
    pub exists: Option<bool>,
    /// The value, as text, matches this regular expression.
    #[serde(default)]
    pub matches: Option<String>,
}

/// A documented exchange: inputs, the provider's reply, and what is expected of both.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ExampleDoc {
    /// What the example shows; names it in test reports.
    pub name: Option<String>,
    /// The grant the example performs…
    pub grant: Option<At<String>>,
    /// …or the other request it makes: `authorize` (the URL; no reply), `device_authorization`,
    /// `revoke` or `introspect`.
    pub request: Option<At<String>>,
    /// The inputs the example passes, by name.
    pub inputs: IndexMap<String, At<ScalarString>>,
    /// The clock, in epoch seconds, used to normalise the reply (default 1700000000).
    pub now: Option<u64>,
    /// The provider's reply (every example but `request: authorize` has one).
    pub reply: Option<ReplyDoc>,
    /// What the rendered request and the normalised outcome must be.
    pub expect: ExpectDoc,
}

/// The provider's reply in an example.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ReplyDoc {
    /// HTTP status (default 200).
    pub status: u16,
    /// Reply headers by name (`Content-Type` decides how the body is parsed).
    pub headers: IndexMap<String, String>,
    /// A JSON body (sent with `Content-Type: application/json` unless headers say otherwise).
    pub json: Option<serde_json::Value>,
    /// A raw body (XML, form-encoded, HTML…).
    pub body: Option<String>,
}

impl Default for ReplyDoc {
    /// A `200 OK` with no headers and no body.
    fn default() -> Self {
        ReplyDoc {
            status: 200,
            headers: IndexMap::new(),
            json: None,
            body: None,
        }
    }
}

/// What an example expects.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ExpectDoc {
    /// The parts of the rendered request that must match.
    pub request: Option<RequestExpect>,
    /// The normalised token, as the CLI prints it (listed keys are compared exactly).
    pub token: Option<serde_json::Value>,
    /// The normalised provider error (listed keys are compared exactly).
    pub error: Option<serde_json::Value>,
    /// The normalised device authorization (listed keys are compared exactly).
    pub device: Option<serde_json::Value>,
    /// The introspection reply (listed keys are compared exactly).
    pub introspection: Option<serde_json::Value>,
    /// `true`: the revocation succeeds.
    pub revoked: Option<bool>,
    /// The pushed authorization reply (`request_uri`, `expires_in`; RFC 9126).
    pub pushed: Option<serde_json::Value>,
    /// For a step of a chain (`then:`): the values its reply gives the next step, by input
    /// name (listed keys are compared exactly).
    pub taken: Option<serde_json::Value>,
}

/// The parts of the rendered request an example pins down.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RequestExpect {
    /// The HTTP method, exactly.
    pub method: Option<String>,
    /// The whole URL, query included, exactly.
    pub url: Option<String>,
    /// Headers that must be present with exactly these values (others may be present too).
    pub headers: IndexMap<String, String>,
    /// Headers that must be absent.
    pub absent_headers: Vec<String>,
    /// The form body, exactly (every field, in any order).
    pub form: Option<IndexMap<String, String>>,
    /// The query string of the URL, exactly.
    pub query: Option<IndexMap<String, String>>,
    /// The JSON body, exactly.
    pub json: Option<serde_json::Value>,
    /// The raw body, exactly (for XML bodies).
    pub body: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;

    use super::*;

    fn parse<T: DeserializeOwned>(file: &str, yaml: &str) -> T {
        with_file(&Arc::from(file), || serde_saphyr::from_str(yaml))
            .unwrap_or_else(|e| panic!("{file}: {e}\n{yaml}"))
    }

    /// The keys the schema gives `T`: every field, as spec files spell it.
    fn keys<T: schemars::JsonSchema>() -> Vec<String> {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
        let properties = schema.get("properties").and_then(|p| p.as_object());
        properties
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// `base` and `child` set every field of `T` (so a new field must be added here), each to a
    /// different value; merged, the child's value of every field survives.
    fn child_overrides_every_field<T>(base: &str, child: &str)
    where
        T: Merge + DeserializeOwned + schemars::JsonSchema + Clone + Debug + PartialEq,
    {
        let name = std::any::type_name::<T>();
        let base_keys: IndexMap<String, serde_json::Value> = parse("base.yaml", base);
        let child_keys: IndexMap<String, serde_json::Value> = parse("child.yaml", child);
        let fields = keys::<T>();
        assert!(!fields.is_empty(), "{name} has no fields in the schema");
        for (layer, set) in [("base", &base_keys), ("child", &child_keys)] {
            let set: Vec<&String> = set.keys().collect();
            assert_eq!(
                set,
                fields.iter().collect::<Vec<_>>(),
                "{name}: the {layer} must set every field"
            );
        }
        for field in &fields {
            let alone = |layer: &IndexMap<String, serde_json::Value>| -> T {
                let one = serde_json::json!({ field: layer[field] }).to_string();
                parse("one.yaml", &one)
            };
            assert_ne!(
                alone(&base_keys),
                alone(&child_keys),
                "{name}.{field}: the base and the child must differ"
            );
        }
        let child: T = parse("child.yaml", child);
        let mut merged: T = parse("base.yaml", base);
        merged.merge(child.clone());
        assert_eq!(
            merged, child,
            "{name}: a child's value was lost in the merge"
        );
    }

    #[test]
    fn scalar_strings_keep_their_text_as_written() {
        let m: std::collections::BTreeMap<String, ScalarString> = serde_saphyr::from_str(
            "a: 0123456789012345678901\nb: 42\nc: true\nd: 1.50\ne: \"x y\"\n",
        )
        .unwrap();
        let got: Vec<&str> = m.values().map(|v| v.0.as_str()).collect();
        assert_eq!(got, ["0123456789012345678901", "42", "true", "1.50", "x y"]);
    }

    #[test]
    fn a_child_overrides_every_field_of_every_document() {
        child_overrides_every_field::<SpecDoc>(
            r#"
id: base
name: Base
extends: root
docs: https://base.example/docs
description: the base
categories: [crm]
website: https://base.example
featured: 1
base: false
endpoints: { token: "https://base.example/token" }
client_auth: basic
inputs: { tenant: { description: base } }
request: { method: POST }
grants: { g: { endpoint: token } }
authorize: { endpoint: authorize }
requests: { revoke: { endpoint: revocation } }
device: { user_code: $.a }
introspection: { active: $.a }
token: { access_token: $.a }
errors: { code: $.a }
examples: [{ grant: g }]
"#,
            r#"
id: child
name: Child
extends: base
docs: https://child.example/docs
description: the child
categories: [finance]
website: https://child.example
featured: 2
base: true
endpoints: { token: "https://child.example/token" }
client_auth: post
inputs: { tenant: { description: child } }
request: { method: GET }
grants: { g: { endpoint: other } }
authorize: { endpoint: login }
requests: { revoke: { endpoint: revoke } }
device: { user_code: $.b }
introspection: { active: $.b }
token: { access_token: $.b }
errors: { code: $.b }
examples: [{ grant: h }]
"#,
        );
        child_overrides_every_field::<InputDoc>(
            "{ required: false, secret: false, enum: [a, b], default: a, description: base, verbatim: false }",
            "{ required: true, secret: true, enum: [c], default: c, description: child, verbatim: true }",
        );
        child_overrides_every_field::<ClientAuthMap>(
            "{ method: basic, id_field: client_id, secret_field: client_secret, basic_encoding: form, alg: RS256, audience: a, claims: { sub: a } }",
            "{ method: post, id_field: client_key, secret_field: app_secret, basic_encoding: raw, alg: ES256, audience: b, claims: { sub: b } }",
        );
        child_overrides_every_field::<RequestDoc>(
            "{ method: POST, endpoint: token, body: form, xml_root: a, client_auth: basic, headers: { Accept: a }, fields: { f: a }, tokens: [access_token], take: { x: $.a }, then: g1 }",
            "{ method: GET, endpoint: other, body: json, xml_root: b, client_auth: post, headers: { Accept: b }, fields: { f: b }, tokens: [refresh_token], take: { x: $.b }, then: g2 }",
        );
        child_overrides_every_field::<AuthorizeDoc>(
            "{ endpoint: authorize, params: { p: a }, redirect: { code: a } }",
            "{ endpoint: login, params: { p: b }, redirect: { code: b } }",
        );
        child_overrides_every_field::<RedirectDoc>(
            "{ code: a, inputs: { x: a }, state: true }",
            "{ code: b, inputs: { x: b }, state: false }",
        );
        child_overrides_every_field::<DeviceDoc>(
            "{ device_code: $.a, user_code: $.a, verification_uri: $.a, verification_uri_complete: $.a, expires_in: $.a, interval: $.a }",
            "{ device_code: $.b, user_code: $.b, verification_uri: [$.b, $.c], verification_uri_complete: $.b, expires_in: $.b, interval: $.b }",
        );
        child_overrides_every_field::<IntrospectionDoc>("{ active: $.a }", "{ active: $.b }");
        child_overrides_every_field::<TokenDoc>(
            r#"
access_token: $.a
access_token_optional: false
token_type: $.a
default_token_type: Bearer
expires_in: $.a
expires_in_unit: seconds
expires_at: $.a
date_format: "%d/%m/%Y"
timezone: "+10:00"
never_expires: [0]
refresh_margin: 60
issued_at: $.a
default_expires_in: 3600
refresh_token: $.a
refresh_token_expires_in: $.a
refresh_token_expires_at: $.a
scope: $.a
scope_separator: " "
id_token: $.a
extras: { x: $.a }
also: { user: { access_token: $.a } }
secret_extras: [x]
"#,
            r#"
access_token: $.b
access_token_optional: true
token_type: $.b
default_token_type: bearer
expires_in: $.b
expires_in_unit: milliseconds
expires_at: $.b
date_format: "%Y-%m-%d"
timezone: UTC
never_expires: [-1]
refresh_margin: 300
issued_at: $.b
default_expires_in: 60
refresh_token: $.b
refresh_token_expires_in: $.b
refresh_token_expires_at: $.b
scope: $.b
scope_separator: ","
id_token: $.b
extras: { x: $.b }
also: { user: { access_token: $.b } }
secret_extras: [y]
"#,
        );
        child_overrides_every_field::<ErrorsDoc>(
            "{ when: [{ path: $.ok, equals: false }], success: [{ path: $.r, equals: a }], code: $.a, message: $.a, hint: $.a, uri: $.a, status_codes: { 400: a }, extras: { t: $.a } }",
            "{ when: [{ path: $.error, exists: true }], success: [{ path: $.r, equals: b }], code: $.b, message: $.b, hint: $.b, uri: $.b, status_codes: { 400: b }, extras: { t: $.b } }",
        );
    }

    /// What a child leaves out it inherits, what it sets to `null` it removes; but a file's own
    /// fields (identity, examples) are never inherited.
    #[test]
    fn a_child_inherits_what_it_leaves_out_except_its_own_fields() {
        let base = "{ id: base, token: { access_token: $.a, scope: $.a, id_token: $.a }, examples: [{ grant: g }] }";
        let mut merged: SpecDoc = parse("base.yaml", base);
        merged.merge(parse(
            "child.yaml",
            "{ token: { scope: $.b, id_token: null } }",
        ));
        let token = merged.token.as_ref().expect("the token map is inherited");
        let first = |p: &Patch<Paths>| p.as_ref().map(|p| p.0[0].value.clone());
        assert_eq!(first(&token.access_token).as_deref(), Some("$.a"));
        assert_eq!(first(&token.scope).as_deref(), Some("$.b"));
        assert_eq!(token.id_token, Patch::Null);
        assert_eq!(merged.id, Patch::Absent);
        assert!(merged.examples.is_empty());
    }

    /// Scalars are read alike wherever a string may be written short; where only a string may,
    /// the error says what is expected.
    #[test]
    fn short_forms_read_scalars_alike() {
        for (yaml, text) in [
            ("abc", "abc"),
            ("12", "12"),
            ("-3", "-3"),
            ("1.5", "1.5"),
            ("true", "true"),
        ] {
            let field: Field = parse("f.yaml", yaml);
            assert_eq!(field.value.value, text);
            assert!(!field.optional);
            assert_eq!(parse::<ScalarString>("s.yaml", yaml).0, text);
        }
        let field: Field = parse("f.yaml", "{ value: 7, optional: true }");
        assert_eq!((field.value.value.as_str(), field.optional), ("7", true));
        let paths: Paths = parse("p.yaml", "[$.a, $.b]");
        assert_eq!(paths.0.len(), 2);

        fn refused<T: DeserializeOwned + Debug>(yaml: &str) -> String {
            let error = serde_saphyr::from_str::<T>(yaml).expect_err(yaml);
            error.without_snippet().to_string()
        }
        let expected = [
            (
                refused::<Paths>("5"),
                "integer `5`, expected a JSONPath string or a list of JSONPath strings",
            ),
            (
                refused::<Paths>("{ a: 1 }"),
                "map, expected a JSONPath string",
            ),
            (
                refused::<ClientAuthDoc>("[basic]"),
                "sequence, expected a client auth method (basic, post, both, none) or a map with `method`",
            ),
            (
                refused::<ClientAuthDoc>("true"),
                "boolean `true`, expected a client auth method",
            ),
        ];
        // A scalar string is read as text as written, and says so when it is not a scalar.
        let message = refused::<ScalarString>("[a]");
        assert!(message.contains("expected string scalar"), "{message}");
        for (message, want) in expected {
            assert!(
                message.contains(&format!("invalid type: {want}")),
                "{message}"
            );
        }
    }
}
