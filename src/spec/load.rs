//! Finding spec files, parsing them, and resolving `extends:` chains.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::Spec;
use super::doc::{self, Merge, SpecDoc};
use super::kind::RequestKind;
use crate::error::{Error, Pos, SpecError};

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// Spec files larger than this are refused before parsing.
const MAX_SPEC_BYTES: usize = 1 << 20;
/// `extends:` chains longer than this are refused (they are surely a mistake).
const MAX_EXTENDS_DEPTH: usize = 16;

/// Whether a provider argument names a spec file rather than an id: it has a folder separator,
/// or ends in `.yaml` or `.yml`. The one rule, for loading and for the token cache's fast path.
///
/// ```
/// assert!(specauth::spec::is_path("my-specs/acme.yaml"));
/// assert!(specauth::spec::is_path("acme.yml"));
/// assert!(!specauth::spec::is_path("acme"));
/// ```
pub fn is_path(id_or_path: &str) -> bool {
    id_or_path.contains('/')
        || id_or_path.contains(std::path::MAIN_SEPARATOR)
        || id_or_path.ends_with(".yaml")
        || id_or_path.ends_with(".yml")
}

/// Ids of the specs bundled into the crate, sorted.
pub fn bundled_ids() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|(id, _)| *id)
}

/// Whether `id` is one of the bundled bases, which other specs extend and which are not
/// providers: the bundled specs that say `base: true`.
pub fn is_bundled_base(id: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct BaseOnly {
        base: Option<bool>,
    }
    let Some((_, text)) = BUNDLED.iter().find(|(bid, _)| *bid == id) else {
        return false;
    };
    let options = serde_saphyr::options! { strict_booleans: true };
    // Only a top-level key is needed: the examples are not read.
    let blanked = without_examples(text);
    let text = blanked.as_deref().unwrap_or(text);
    serde_saphyr::from_str_with_options::<BaseOnly>(text, options)
        .ok()
        .and_then(|b| b.base)
        .unwrap_or(false)
}

/// Finds and loads specs: by id from folders given with [`Loader::with_dir`], then from the
/// bundled specs; or by file path.
///
/// In the folders, a spec's id is the `id:` it declares, or else its file name (`ID.yaml` or
/// `ID.yml`). An id is looked up as a file name first (folders in order), then among the ids
/// the folders' specs declare, then among the bundled specs; so a folder's spec shadows the
/// bundled one of the same id. Only the spec asked for and its `extends:` chain are compiled.
///
/// ```
/// let loader = specauth::Loader::new();
/// let spec = loader.load("oauth2").unwrap();
/// assert_eq!(spec.id(), "oauth2");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Loader {
    dirs: Vec<PathBuf>,
    /// Whether specs are loaded with their examples read and checked ([`Loader::with_examples`]).
    examples: bool,
    /// The folders' spec files with the id each declares, read once, when first needed;
    /// shared by clones with the same folders.
    declared: Arc<OnceLock<Vec<(String, PathBuf)>>>,
    /// The one grant compiled, with its `then:` chain ([`Loader::with_only_grant`]).
    only_grant: Option<Arc<str>>,
}

enum Source {
    File(PathBuf),
    Bundled(&'static str, &'static str),
}

impl Loader {
    /// A loader that knows only the bundled specs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also look for specs (`ID.yaml`, `ID.yml`, or any spec file declaring `id: ID`) in
    /// `dir`, before the bundled ones.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self.declared = Arc::default();
        self
    }

    /// Reads and checks each spec's `examples:` as it loads, so a broken example fails the load:
    /// for checking and testing specs. Without it (loading for use) examples are skipped, which
    /// makes loading about three times faster; [`Spec::run_examples`] and the other example
    /// methods still work, reading a spec's examples on first use.
    pub fn with_examples(mut self) -> Self {
        self.examples = true;
        self
    }

    /// Compiles only grant `name` of each spec that declares it and the grants its `then:`
    /// chain follows: for a process that makes that one exchange, such as `specauth token`.
    /// The spec's other grants are read but not compiled; its other requests (revocation,
    /// introspection, PAR, device authorization) and its authorization URL are not even read
    /// (they must still be well-formed YAML), so a mistake in one of them is not reported
    /// here; `specauth check` (a loader without this) reports it. A spec that does not declare
    /// grant `name` is compiled whole but for those, so that an unknown grant is reported with
    /// every grant the spec has; naming a request (`revoke`) instead keeps them. No effect
    /// together with [`Loader::with_examples`], whose examples use everything.
    ///
    /// ```
    /// let spec = specauth::Loader::new().with_only_grant("refresh_token").load("oauth2").unwrap();
    /// assert_eq!(spec.grant_names().collect::<Vec<_>>(), ["refresh_token"]);
    /// ```
    pub fn with_only_grant(mut self, name: &str) -> Self {
        self.only_grant = Some(Arc::from(name));
        self
    }

    /// Loads a spec by id, or by path when `id_or_path` names an existing file (see
    /// [`is_path`]).
    pub fn load(&self, id_or_path: &str) -> Result<Spec, Error> {
        let as_path = Path::new(id_or_path);
        if is_path(id_or_path) && as_path.is_file() {
            return self.load_file(as_path);
        }
        let source = match self
            .find_file(id_or_path)
            .or_else(|| self.find_declared(id_or_path))
        {
            Some(p) => Some(Source::File(p)),
            None => find_bundled(id_or_path),
        };
        match source {
            Some(Source::File(p)) => self.load_file(&p),
            Some(Source::Bundled(id, text)) => {
                self.compile(Arc::from(bundled_name(id)), SpecText::Bundled(id, text))
            }
            None => Err(Error::Usage(format!(
                "no spec `{id_or_path}`: not a file, not in {}the bundled specs{}",
                if self.dirs.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{}, not in ",
                        self.dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                crate::error::did_you_mean(id_or_path, self.ids().iter().map(String::as_str))
            ))),
        }
    }

    /// Loads a spec file.
    pub fn load_file(&self, path: &Path) -> Result<Spec, Error> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        let text = read_limited(path, &file)?;
        let mut loader = self.clone();
        if let Some(dir) = path.parent() {
            // A spec's siblings come first when resolving its `extends:`.
            if !loader.dirs.iter().any(|d| d == dir) {
                loader.dirs.insert(0, dir.to_path_buf());
                loader.declared = Arc::default();
            }
        }
        loader.compile(file, SpecText::Shared(Arc::from(text)))
    }

    /// Loads a spec from text; `file` names it in errors.
    pub fn load_text(&self, file: &str, text: &str) -> Result<Spec, Error> {
        self.compile(Arc::from(file), SpecText::Shared(Arc::from(text)))
    }

    /// Every spec id this loader can find: the folders' (each spec's declared `id:`, or its
    /// file name), then the bundled ones not shadowed. Specs are read for their `id:` only,
    /// not compiled.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for (id, _) in self.declared() {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        for id in bundled_ids() {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_owned());
            }
        }
        ids
    }

    /// A spec file named `ID.yaml` or `ID.yml`, in the folders' order.
    fn find_file(&self, id: &str) -> Option<PathBuf> {
        self.dirs.iter().find_map(|dir| {
            ["yaml", "yml"]
                .into_iter()
                .map(|ext| dir.join(format!("{id}.{ext}")))
                .find(|p| p.is_file())
        })
    }

    /// A spec file in the folders that declares `id: ID`.
    fn find_declared(&self, id: &str) -> Option<PathBuf> {
        self.declared()
            .iter()
            .find(|(declared, _)| declared == id)
            .map(|(_, path)| path.clone())
    }

    /// Where `extends:` finds a base: a file named after it, else a bundled spec.
    fn find(&self, id: &str) -> Option<Source> {
        match self.find_file(id) {
            Some(p) => Some(Source::File(p)),
            None => find_bundled(id),
        }
    }

    /// Each folder's spec files (sorted by id) with the id each declares, or its file name.
    fn declared(&self) -> &[(String, PathBuf)] {
        self.declared.get_or_init(|| {
            let mut all = Vec::new();
            for dir in &self.dirs {
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut here: Vec<(String, PathBuf)> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    })
                    .filter_map(|p| {
                        let id = declared_id(&p).or_else(|| {
                            p.file_stem().and_then(|s| s.to_str()).map(str::to_owned)
                        })?;
                        Some((id, p))
                    })
                    .collect();
                here.sort();
                all.extend(here);
            }
            all
        })
    }

    fn compile(&self, file: Arc<str>, text: SpecText) -> Result<Spec, Error> {
        // Loaded for one grant, the authorization URL and the other requests are dropped below
        // whether or not the spec declares the grant (an unknown grant's error lists grants
        // only), so they are not even read. A request's name (`revoke`) keeps them.
        let one_grant = self.only_grant.as_deref().filter(|_| !self.examples);
        let skip_other = one_grant.is_some_and(|g| RequestKind::from_name(g).is_grant());
        let (doc, base) = doc::with_other_requests_skipped(skip_other, || {
            let doc = match text {
                // A bundled spec loaded for use is read from its compiled form when it has one.
                SpecText::Bundled(id, t) if !self.examples => bundled_doc(id, &file, t)?,
                _ => parse(&file, &text, !self.examples)?,
            };
            let base = self.base(&doc, &mut vec![file.to_string()])?;
            Ok::<_, Error>((doc, base))
        })?;
        let stem = Path::new(&*file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("spec")
            .to_owned();
        let own = super::compile::own_declarations(base.as_ref(), &doc);
        let mut merged = layer(base, doc);
        if let Some(grant) = one_grant {
            keep_only_grant(&mut merged, grant);
        }
        // Loaded for use, the examples are read from the text on first use, if ever.
        let later = (!self.examples).then_some(text);
        Ok(super::compile::compile(merged, own, &stem, file, later)?)
    }

    /// Merges `doc` over its `extends:` chain.
    fn resolve(&self, doc: SpecDoc, seen: &mut Vec<String>) -> Result<SpecDoc, Error> {
        let base = self.base(&doc, seen)?;
        Ok(layer(base, doc))
    }

    /// What `doc` extends, merged over its own chain; `None` when it extends nothing. `seen`
    /// holds the files already in the chain, to refuse cycles.
    fn base(&self, doc: &SpecDoc, seen: &mut Vec<String>) -> Result<Option<SpecDoc>, Error> {
        let Some(base) = doc.extends.as_ref() else {
            return Ok(None);
        };
        if seen.len() > MAX_EXTENDS_DEPTH {
            return Err(SpecError::new(&base.pos, "`extends:` chain is too deep").into());
        }
        // A base is a spec id, or a path below the spec's own folder: never `..` or absolute,
        // so a spec cannot pull in arbitrary files.
        let escapes = base.value.starts_with('/')
            || base.value.contains('\\')
            || base
                .value
                .split('/')
                .any(|seg| seg == ".." || seg.is_empty());
        if escapes {
            return Err(SpecError::new(
                &base.pos,
                format!(
                    "`extends: {}` must be a spec id or a path inside the spec's folder (no `..`, no leading `/`)",
                    base.value
                ),
            )
            .into());
        }
        let (base_file, base_text, bundled): (Arc<str>, String, Option<&'static str>) = match self
            .find(&base.value)
        {
            Some(Source::File(p)) => {
                let f: Arc<str> = Arc::from(p.display().to_string());
                let t = read_limited(&p, &f)?;
                (f, t, None)
            }
            Some(Source::Bundled(id, t)) => (Arc::from(bundled_name(id)), t.to_owned(), Some(id)),
            None => {
                return Err(SpecError::new(
                    &base.pos,
                    format!(
                        "unknown base spec `{}` in `extends:`; expected a bundled spec id ({}) or a spec in the same folder",
                        base.value,
                        bundled_ids().collect::<Vec<_>>().join(", ")
                    ),
                )
                .into());
            }
        };
        if seen.iter().any(|s| **s == *base_file) {
            return Err(SpecError::new(
                &base.pos,
                format!(
                    "`extends: {}` makes a cycle ({} → {})",
                    base.value,
                    seen.join(" → "),
                    base_file
                ),
            )
            .into());
        }
        seen.push(base_file.to_string());
        let base_doc = match bundled {
            Some(id) => bundled_base(id, &base_file, &base_text)?,
            None => parse(&base_file, &base_text, true)?,
        };
        Ok(Some(self.resolve(base_doc, seen)?))
    }
}

/// Drops every grant of `doc` but `grant` and those its `then:` chain follows, and every
/// request that is not a grant, when `doc` declares `grant`. A chain that loops or names a
/// missing grant keeps what it reached; the compiler reports it.
fn keep_only_grant(doc: &mut SpecDoc, grant: &str) {
    let set = |name: &str| doc.grants.get(name).and_then(|g| g.as_ref());
    if set(grant).is_none() {
        return;
    }
    let mut keep: Vec<String> = vec![grant.to_owned()];
    let mut at = set(grant).and_then(|g| g.value.then.as_ref());
    while let Some(next) = at {
        if keep.contains(&next.value) {
            break;
        }
        keep.push(next.value.clone());
        at = set(&next.value).and_then(|g| g.value.then.as_ref());
    }
    doc.grants.retain(|name, _| keep.contains(name));
    doc.requests.clear();
    doc.authorize = doc::Patch::Absent;
}

/// `doc` merged over its resolved base, if any. `extends:` is the loader's, so it is dropped.
fn layer(base: Option<SpecDoc>, mut doc: SpecDoc) -> SpecDoc {
    let Some(mut merged) = base else {
        return doc;
    };
    doc.extends = doc::Patch::Absent;
    merged.merge(doc);
    merged
}

fn find_bundled(id: &str) -> Option<Source> {
    BUNDLED
        .iter()
        .find(|(bid, _)| *bid == id)
        .map(|(bid, text)| Source::Bundled(bid, text))
}

/// The `id:` a spec file declares, read without compiling the spec; `None` when it declares
/// none, or cannot be read or parsed (its file name stands for it then).
fn declared_id(path: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    let text = crate::files::read_text(path, MAX_SPEC_BYTES as u64).ok()??;
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options::<IdOnly>(&text, options)
        .ok()?
        .id
}

/// A bundled spec read as a base, read at most twice per process: nearly every spec extends the
/// bundled `oauth2`, and reading it dominated loading. The first use keeps no copy (a process
/// that loads one spec, such as `specauth token`, would only pay for cloning it); the second
/// reads it again and keeps it for every later use. A base's examples are not inherited, so
/// they are skipped.
fn bundled_base(id: &'static str, file: &Arc<str>, text: &str) -> Result<SpecDoc, SpecError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    /// By id and whether other requests were skipped: `None` once read, the document once
    /// read twice.
    type Key = (&'static str, bool);
    static CACHE: OnceLock<Mutex<HashMap<Key, Option<SpecDoc>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (id, doc::other_requests_skipped());
    let seen = match cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        Some(Some(doc)) => return Ok(doc.clone()),
        Some(None) => true,
        None => false,
    };
    let doc = bundled_doc(id, file, text)?;
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, seen.then(|| doc.clone()));
    Ok(doc)
}

/// Bundled spec `id`'s document without its examples: read from its compiled form when it has
/// one, else parsed from `text`.
fn bundled_doc(id: &str, file: &Arc<str>, text: &str) -> Result<SpecDoc, SpecError> {
    match compiled_form(id) {
        // A compiled form that does not read (it cannot, unless edited by hand) costs only the
        // time: the YAML is the truth.
        Some(form) => from_compact(file, form).or_else(|_| parse(file, text, true)),
        None => parse(file, text, true),
    }
}

/// The compiled form of bundled spec `id`, when there is one.
///
/// A compiled form is the spec's document (examples skipped) in the compact form of
/// [`doc::with_compact`], after a first line naming the YAML it was made from; a unit test
/// keeps every one current (`SPECAUTH_WRITE_COMPILED=1 cargo test --lib compiled_forms`
/// rewrites them). build.rs bundles only the forms made from the YAML it bundles
/// (`src/spec/form_source.rs`), so an edited spec is never served stale, only parsed, and
/// no process spends time checking.
fn compiled_form(id: &str) -> Option<&'static str> {
    let (_, form) = COMPILED.iter().find(|(cid, _)| *cid == id)?;
    form.split_once('\n').map(|(_, body)| body)
}

/// A bundled spec's document read from its compact form.
fn from_compact(file: &Arc<str>, form: &str) -> Result<SpecDoc, serde_json::Error> {
    doc::with_file(file, || {
        doc::with_compact(|| serde_json::from_str::<SpecDoc>(form))
    })
}

fn bundled_name(id: &str) -> String {
    format!("<bundled>/{id}.yaml")
}

fn read_limited(path: &Path, file: &Arc<str>) -> Result<String, Error> {
    let pos = Pos {
        file: file.clone(),
        line: 0,
        column: 0,
    };
    match crate::files::read_text(path, MAX_SPEC_BYTES as u64) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(SpecError::new(&pos, "cannot read: no such file").into()),
        Err(Error::Io { source, .. }) => {
            Err(SpecError::new(&pos, format!("cannot read: {source}")).into())
        }
        Err(e) => Err(e),
    }
}

/// A spec file's text, kept by a spec loaded for use to read its examples on first use.
#[derive(Clone, Debug)]
pub(crate) enum SpecText {
    /// A bundled spec: its id and text.
    Bundled(&'static str, &'static str),
    Shared(Arc<str>),
}

impl std::ops::Deref for SpecText {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            SpecText::Bundled(_, s) => s,
            SpecText::Shared(s) => s,
        }
    }
}

/// The `examples:` of a spec file, with positions, every other key ignored.
pub(crate) fn parse_examples(
    file: &Arc<str>,
    text: &str,
) -> Result<Vec<doc::At<doc::ExampleDoc>>, SpecError> {
    parse_as::<doc::ExamplesOnly>(file, text).map(|e| e.examples)
}

/// Parses one file into its document layer, mapping YAML and shape errors to `file:line:col`;
/// `skip_examples` leaves `examples:` unread (it must still be well-formed YAML).
pub(crate) fn parse(
    file: &Arc<str>,
    text: &str,
    skip_examples: bool,
) -> Result<SpecDoc, SpecError> {
    // Blanking the block spares the YAML parser two thirds of a typical spec; where that is not
    // safe, the parser skips the examples itself.
    let blanked = if skip_examples {
        without_examples(text)
    } else {
        None
    };
    let text = blanked.as_deref().unwrap_or(text);
    doc::with_examples_skipped(skip_examples, || parse_as::<SpecDoc>(file, text))
}

/// `text` with its top-level `examples:` block turned into blank lines, when that can be done
/// safely by lines: one block-style `examples:` key at column 0, no alias elsewhere that could
/// refer to an anchor inside it, no second document. Lines are kept, so every position after
/// the block is unchanged. `None` when it cannot be done safely: the YAML parser then skips the
/// examples itself (slower, same result).
fn without_examples(text: &str) -> Option<String> {
    // Byte by byte, lines found with memchr: the scan runs over every spec loaded for use, and
    // a line's first byte decides nearly everything.
    let bytes = text.as_bytes();
    let mut start = None;
    let mut end = None;
    let mut at = 0;
    while at < bytes.len() {
        let next = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i + 1);
        let line = &bytes[at..next];
        let mut body_len = line.len();
        while body_len > 0 && matches!(line[body_len - 1], b'\n' | b'\r') {
            body_len -= 1;
        }
        let body = &line[..body_len];
        if body.starts_with(b"---") || body.starts_with(b"...") {
            return None;
        }
        let top_level_key = !body.is_empty() && !matches!(body[0], b' ' | b'\t' | b'#' | b'-');
        if start.is_some() && end.is_none() && top_level_key {
            end = Some(at);
        }
        if let Some(rest) = body.strip_prefix(b"examples:") {
            let rest = rest.trim_ascii_start();
            if start.is_some() || !(rest.is_empty() || rest[0] == b'#') {
                // A second `examples:` (a duplicate the parser must report), or a flow value.
                return None;
            }
            start = Some(at);
            end = None;
        }
        at = next;
    }
    let start = start?;
    let end = end.unwrap_or(text.len());
    let alias = |s: &[u8]| {
        memchr::memchr_iter(b'*', s).any(|i| {
            s.get(i + 1)
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
        })
    };
    if alias(&bytes[..start]) || alias(&bytes[end..]) {
        return None;
    }
    let lines = memchr::memchr_iter(b'\n', &bytes[start..end]).count();
    let mut out = String::with_capacity(start + lines + (text.len() - end));
    out.push_str(&text[..start]);
    out.extend(std::iter::repeat_n('\n', lines));
    out.push_str(&text[end..]);
    Some(out)
}

fn parse_as<T: serde::de::DeserializeOwned>(file: &Arc<str>, text: &str) -> Result<T, SpecError> {
    if text.len() > MAX_SPEC_BYTES {
        let pos = Pos {
            file: file.clone(),
            line: 0,
            column: 0,
        };
        return Err(SpecError::new(
            &pos,
            format!(
                "spec is {} bytes; the limit is {MAX_SPEC_BYTES}",
                text.len()
            ),
        ));
    }
    // YAML 1.2 booleans only: `yes`, `no`, `on`, `off`, `y` and `n` stay strings (a field value
    // `no` must not become `false`), and `required: "yes"` is an error rather than `true`.
    let options = serde_saphyr::options! { strict_booleans: true };
    doc::with_file(file, || {
        serde_saphyr::from_str_with_options::<T>(text, options)
    })
    .map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = yaml_message(&e, text);
        SpecError {
            pos: Pos {
                file: file.clone(),
                line,
                column,
            },
            message,
        }
    })
}

/// serde-saphyr's message without its own location prefix or source snippet; type mismatches
/// are reworded for spec authors ("expected a map, found a list") with the offending text.
fn yaml_message(e: &serde_saphyr::Error, source: &str) -> String {
    use serde_saphyr::Error as E;
    let mut root = e;
    while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = root {
        root = error;
    }
    let expected = match root {
        E::Unexpected { expected, .. } => match *expected {
            "mapping start" => Some("a map (`key: value` lines or `{ … }`)".to_owned()),
            "sequence start" => Some("a list (`- item` lines or `[ … ]`)".to_owned()),
            "string scalar" => Some("a string".to_owned()),
            _ => None,
        },
        E::InvalidBooleanStrict { .. } => Some("`true` or `false`".to_owned()),
        E::InvalidScalar { ty, .. } => match *ty {
            "u8" => Some(format!("a whole number from 0 to {}", u8::MAX)),
            "u16" => Some(format!("a whole number from 0 to {}", u16::MAX)),
            "u32" | "u64" => Some("a whole number (0 or more)".to_owned()),
            "boolean" => Some("`true` or `false`".to_owned()),
            _ => None,
        },
        _ => None,
    };
    if let E::DuplicateMappingKey { key, .. } = root {
        return match key {
            Some(key) => format!("duplicate key `{key}`; a key may appear only once in a map"),
            None => "duplicate key; a key may appear only once in a map".to_owned(),
        };
    }
    if let Some(expected) = expected {
        let found = e
            .location()
            .and_then(|l| found_at(source, l.line(), l.column()));
        return match found {
            Some(found) => format!("expected {expected}, found {found}"),
            None => format!("expected {expected}"),
        };
    }
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    // Messages read "...at line L, column C"; the position is printed by us.
    let trimmed = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let trimmed = trimmed.trim_end_matches(':');
    // The parser's classic messages, said in terms of what the author most likely did.
    let hint = match trimmed {
        "mapping values are not allowed in this context" => {
            "; is this line indented more than the one above, or does a value hold an unquoted `: `?"
        }
        "while parsing a block mapping, did not find expected key" => {
            "; is this line indented less than the ones above it?"
        }
        "while parsing a flow mapping, did not find expected ',' or '}'" => {
            "; is a `{ … }` above left unclosed?"
        }
        "while parsing a flow sequence, did not find expected ',' or ']'" => {
            "; is a `[ … ]` above left unclosed?"
        }
        _ => "",
    };
    format!("{trimmed}{hint}")
}

/// What the YAML at 1-based `line`:`column` is, for "found …": a list, a map, or a scalar's text.
fn found_at(source: &str, line: u64, column: u64) -> Option<String> {
    let text = source
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let rest: String = text
        .chars()
        .skip(usize::try_from(column).ok()?.saturating_sub(1))
        .collect();
    let rest = rest.trim_end();
    if rest.starts_with('[') || rest == "-" || rest.starts_with("- ") {
        return Some("a list".to_owned());
    }
    if rest.starts_with('{') {
        return Some("a map".to_owned());
    }
    let scalar = match rest.chars().next()? {
        q @ ('"' | '\'') => match rest[1..].find(q) {
            Some(end) => &rest[..end + 2],
            None => rest,
        },
        _ => {
            let end = rest
                .find([',', '}', ']'])
                .into_iter()
                .chain(rest.find(" #"))
                .min()
                .unwrap_or(rest.len());
            let plain = rest[..end].trim_end();
            if plain.ends_with(':') || plain.contains(": ") {
                return Some("a map".to_owned());
            }
            plain
        }
    };
    if scalar.is_empty() {
        return None;
    }
    let mut shown: String = scalar.chars().take(40).collect();
    if shown.len() < scalar.len() {
        shown.push('…');
    }
    Some(format!("`{shown}`"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::error::{Pos, SpecError};

    include!("form_source.rs");

    /// The compiled form of a bundled spec's YAML: what `compiled_form` reads back.
    fn compile_form(file: &Arc<str>, text: &str) -> Result<String, SpecError> {
        let doc = super::parse(file, text, true)?;
        let body = serde_json::to_string(&doc).map_err(|e| {
            SpecError::new(
                &Pos::default(),
                format!("cannot write the compact form: {e}"),
            )
        })?;
        Ok(format!("{}\n{body}\n", source_line(text)))
    }

    use super::without_examples;

    #[test]
    fn the_examples_block_becomes_blank_lines() {
        let text = "id: a\nexamples:\n- grant: g\n  reply:\n    json: { a: 1 }\n# note\ntoken: { access_token: $.a }\n";
        let out = without_examples(text).expect("a block that can be blanked");
        assert_eq!(out, "id: a\n\n\n\n\n\ntoken: { access_token: $.a }\n");
        assert_eq!(out.lines().count(), text.lines().count());
        // Indented items, and a block at the end of the file.
        let text = "id: a\nexamples:\n  - grant: g\n";
        assert_eq!(without_examples(text).as_deref(), Some("id: a\n\n\n"));
    }

    #[test]
    fn anything_unusual_is_left_to_the_parser() {
        for text in [
            "id: a\n",                                        // no examples
            "examples: [{ grant: g }]\n",                     // a flow value
            "examples:\n- grant: g\nexamples:\n- grant: h\n", // a duplicate key
            "examples:\n- &e { grant: g }\ntoken: *e\n",      // an alias to inside it
            "examples:\n- grant: g\n---\nid: b\n",            // a second document
        ] {
            assert_eq!(without_examples(text), None, "{text:?}");
        }
    }

    /// Every bundled spec has a compiled form, made from its current YAML, that reads back as
    /// exactly the document its YAML gives (every value and every position); no form is left
    /// over from a spec that is gone. `SPECAUTH_WRITE_COMPILED=1` rewrites the forms instead
    /// (then rebuild to bundle them).
    #[test]
    fn compiled_forms_are_current_and_read_back_as_their_yaml() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/compiled");
        let write = std::env::var_os("SPECAUTH_WRITE_COMPILED").is_some();
        let again = "run `SPECAUTH_WRITE_COMPILED=1 cargo test --lib compiled_forms`";
        assert!(super::BUNDLED.len() > 100, "the bundled specs");
        if write {
            // Forms of specs that are gone go too.
            for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                std::fs::remove_file(entry.path()).expect("remove an old compiled form");
            }
        }
        for (id, text) in super::BUNDLED {
            let file: std::sync::Arc<str> = super::bundled_name(id).into();
            let form = compile_form(&file, text).expect("a bundled spec compiles");
            let path = root.join(format!("{id}.json"));
            if write {
                std::fs::create_dir_all(&root).expect("specs/compiled");
                std::fs::write(&path, &form).expect("write the compiled form");
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == form,
                "{} is missing or stale: {again}",
                path.display()
            );
            let bundled = super::compiled_form(id).unwrap_or_else(|| {
                panic!("the binary bundles no current compiled form of {id}: rebuild")
            });
            let read = super::from_compact(&file, bundled).expect("the compact form reads");
            let parsed = super::parse(&file, text, true).expect("the YAML parses");
            assert_eq!(
                read, parsed,
                "{id}: the compact form reads back differently"
            );
            // Positions survive: the `token` endpoint is where the YAML writes it.
            if let Some(super::doc::Patch::Set(token)) = read.endpoints.get("token") {
                assert!(token.pos.line > 0 && token.pos.column > 0, "{token:?}");
                assert_eq!(&*token.pos.file, &*file);
            }
        }
        if !write {
            for (id, _) in super::COMPILED {
                assert!(
                    super::BUNDLED.iter().any(|(b, _)| b == id),
                    "specs/compiled/{id}.json has no spec: {again}"
                );
            }
        }
    }

    /// A compiled form made from other YAML is not bundled (build.rs asks `made_from`): an
    /// edited spec is parsed, never served stale.
    #[test]
    fn a_compiled_form_of_other_yaml_is_not_current() {
        let (id, text) = super::BUNDLED
            .iter()
            .find(|(id, _)| super::COMPILED.iter().any(|(c, _)| c == id))
            .expect("a bundled spec with a compiled form");
        let file: Arc<str> = super::bundled_name(id).into();
        let form = compile_form(&file, text).expect("a bundled spec compiles");
        assert!(made_from(&form, text));
        let edited = text.replacen("token", "tokens", 1);
        assert!(!made_from(&form, &edited));
        assert!(!made_from("", text));
        assert!(super::compiled_form("no-such-spec").is_none());
    }
}
