//! From a merged document to a runnable [`Spec`]: every check that needs more than serde, each
//! failure pointing at `file:line:col`. The examples are checked by [`crate::examples::check`],
//! next to the code that runs them.

use std::sync::Arc;

use indexmap::IndexMap;

use super::doc::{self, At, Paths, SpecDoc};
use super::{
    Body, BodyEncoding, ClientAuth, ClientAuthMethod, DeviceMap, DurationUnit, Endpoint,
    ErrorCondition, ErrorMap, FieldDef, FieldType, InputDef, OwnDeclarations, Path, RedirectMap,
    RequestKind, RequestTemplate, Source, Spec, SpecData, Test, TokenMap, authority_of, check_url,
    check_userinfo, is_loopback, join,
};
use crate::error::{Pos, SpecError};
use crate::spec::Map;
use crate::template::{self, Classified, Piece, Tmpl};

type Result<T> = std::result::Result<T, SpecError>;

pub(crate) fn compile(
    mut doc: SpecDoc,
    own: OwnDeclarations,
    stem: &str,
    source: Arc<str>,
    examples_later: Option<super::load::SpecText>,
) -> Result<Spec> {
    let file_pos = Pos {
        file: source.clone(),
        line: 0,
        column: 0,
    };
    let id = doc
        .id
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or_else(|| stem.to_owned());
    if let Some(at) = doc.id.as_ref() {
        let ok = !at.value.is_empty()
            && at
                .value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err(SpecError::new(
                &at.pos,
                format!(
                    "id `{}` must be lowercase letters, digits, `-` or `_`",
                    at.value
                ),
            ));
        }
    }
    let name = doc
        .name
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or_else(|| id.clone());

    let mut c = Compiler {
        env: None,
        inputs: Map::default(),
        removed_inputs: std::mem::take(&mut doc.inputs.removed),
        counter: 0,
    };

    for (input_name, patch) in std::mem::take(&mut doc.inputs.map) {
        let doc::Patch::Set(input) = patch else {
            continue;
        };
        let allowed: Option<Vec<String>> = input
            .allowed
            .as_ref()
            .map(|v| v.iter().map(|a| a.value.clone()).collect());
        if let (Some(default), Some(allowed)) = (input.default.as_ref(), allowed.as_ref())
            && !allowed.contains(&default.value)
        {
            return Err(SpecError::new(
                &default.pos,
                format!(
                    "default `{}` of input `{input_name}` is not one of its enum values ({})",
                    default.value,
                    allowed.join(", ")
                ),
            ));
        }
        c.inputs.insert(
            input_name,
            InputDef {
                required: input.required.as_ref().copied().unwrap_or(false),
                secret: input.secret.as_ref().copied().unwrap_or(false),
                allowed,
                default: input.default.into_option().map(|a| a.value),
                description: input.description.into_option(),
                verbatim: input.verbatim.as_ref().copied().unwrap_or(false),
            },
        );
    }

    let mut endpoints = Map::default();
    for (ename, patch) in &doc.endpoints {
        let Some(url) = patch.as_ref() else { continue };
        let endpoint = match c.template(&format_args!("endpoints.{ename}"), url)? {
            Tmpl::Literal(u) => {
                let uri = check_url(&u).map_err(|m| SpecError::new(&url.pos, m))?;
                Endpoint::literal(u, Some(uri))
            }
            tmpl => {
                check_templated_url(url)?;
                Endpoint {
                    tmpl,
                    text: url.value.clone(),
                    uri: None,
                }
            }
        };
        endpoints.insert(ename.clone(), endpoint);
    }

    let top_auth = doc.client_auth.as_ref().cloned().unwrap_or_default();
    let defaults = doc.request.as_ref().cloned().unwrap_or_default();
    let cx = TemplateContext {
        defaults: &defaults,
        top_auth: &top_auth,
        endpoints: &endpoints,
        file_pos: &file_pos,
    };
    // Grants need their endpoint now. Other requests compile whatever endpoints exist: each
    // becomes available once its endpoint is declared (in the spec, or added by the caller).
    // Each grant and request is moved out of the document into its compiled template.
    let mut grants = Map::default();
    let mut chains = Vec::new();
    for (name, patch) in std::mem::take(&mut doc.grants.map) {
        let doc::Patch::Set(r) = patch else { continue };
        let kind = RequestKind::grant(&name);
        if !kind.is_grant() || RequestKind::from_name(&name) != kind {
            return Err(SpecError::new(
                &r.pos,
                format!("`{name}` names a request, not a grant; put it under `requests:`"),
            ));
        }
        if let Some(then) = r.value.then.as_ref() {
            chains.push((name.clone(), then.clone()));
        }
        let compiled = c.merged_template(&cx, &kind, &format_args!("grants.{name}"), r)?;
        grants.insert(name, compiled);
    }
    check_chains(&chains, &grants)?;
    let mut requests = Map::default();
    for (name, patch) in std::mem::take(&mut doc.requests.map) {
        let doc::Patch::Set(r) = patch else { continue };
        let kind = RequestKind::from_name(&name);
        if kind.is_grant() || kind == RequestKind::Authorization {
            return Err(SpecError::new(
                &r.pos,
                format!(
                    "unknown request `{name}`; expected device_authorization, revoke, introspect or par (grants go under `grants:`, the authorization URL under `authorize:`)"
                ),
            ));
        }
        let endpoint_declared = r
            .value
            .endpoint
            .as_ref()
            .is_none_or(|e| endpoints.contains_key(&e.value));
        let inherited = r.pos.file != file_pos.file;
        let compiled = match c.merged_template(&cx, &kind, &format_args!("requests.{name}"), r) {
            Ok(t) => t,
            // A request of a base that this spec cannot make (its endpoint is not declared)
            // and whose fields use inputs this spec removed is left out rather than an error:
            // a standard request added to the base (PAR) must not break every spec that trims
            // the base's inputs.
            Err(_) if inherited && !endpoint_declared => continue,
            Err(e) => return Err(e),
        };
        requests.insert(kind, compiled);
    }
    if let Some(a) = doc.authorize.as_ref() {
        let as_request = doc::RequestDoc {
            method: doc::Patch::Set(doc::At::new("GET".to_owned(), file_pos.clone())),
            endpoint: match a.endpoint.as_ref() {
                Some(e) => doc::Patch::Set(e.clone()),
                None => doc::Patch::Set(doc::At::new("authorize".to_owned(), file_pos.clone())),
            },
            body: doc::Patch::Set(doc::At::new("query".to_owned(), file_pos.clone())),
            fields: a.params.clone(),
            client_auth: doc::Patch::Set(Box::new(doc::ClientAuthDoc(doc::ClientAuthMap {
                method: doc::Patch::Set(doc::At::new("none".to_owned(), file_pos.clone())),
                ..Default::default()
            }))),
            ..Default::default()
        };
        let compiled = c.request_template(
            &cx,
            &RequestKind::Authorization,
            &"authorize",
            as_request,
            &file_pos,
        )?;
        requests.insert(RequestKind::Authorization, compiled);
    }
    let mut categories = Vec::new();
    for c in doc.categories.as_ref().map(Vec::as_slice).unwrap_or(&[]) {
        if !super::CATEGORIES.contains(&c.value.as_str()) {
            return Err(SpecError::new(
                &c.pos,
                format!(
                    "unknown category `{}`; expected one of {}",
                    c.value,
                    super::CATEGORIES.join(", ")
                ),
            ));
        }
        categories.push(c.value.clone());
    }
    if let Some(w) = doc.website.as_ref() {
        check_url(&w.value).map_err(|m| SpecError::new(&w.pos, m))?;
    }
    let mut redirect = RedirectMap::default();
    if let Some(r) = doc.authorize.as_ref().and_then(|a| a.redirect.as_ref()) {
        if let Some(code) = r.code.as_ref() {
            redirect.code = code.value.clone();
        }
        if let Some(state) = r.state.as_ref() {
            redirect.state = *state;
        }
        for (input, patch) in &r.inputs {
            let Some(param) = patch.as_ref() else {
                continue;
            };
            c.check_declared(&"authorize.redirect.inputs", input, &param.pos)?;
            redirect.inputs.push((input.clone(), param.value.clone()));
        }
    }
    let device = c.device_map(doc.device.as_ref().cloned().unwrap_or_default())?;
    let introspection_active = c.paths(
        &"introspection.active",
        doc.introspection.as_ref().and_then(|i| i.active.as_ref()),
    )?;

    // The last readers of these two: taken, not cloned.
    let token = match std::mem::take(&mut doc.token) {
        doc::Patch::Set(t) => *t,
        _ => doc::TokenDoc::default(),
    };
    let token = c.token_map(token, &file_pos)?;
    let errors = match std::mem::take(&mut doc.errors) {
        doc::Patch::Set(e) => *e,
        _ => doc::ErrorsDoc::default(),
    };
    let errors = c.error_map(errors)?;

    let mut spec = Spec::new(SpecData {
        id,
        name,
        docs: doc.docs.as_ref().map(|a| a.value.clone()),
        description: doc.description.as_ref().cloned(),
        categories,
        website: doc.website.as_ref().map(|a| a.value.clone()),
        featured: doc.featured.as_ref().map(|a| a.value),
        base: doc.base.as_ref().copied().unwrap_or(false),
        source,
        defaulted: c
            .inputs
            .values()
            .enumerate()
            .filter(|(_, d)| d.default.is_some())
            .map(|(i, _)| i)
            .collect(),
        inputs: c.inputs,
        endpoints,
        grants,
        requests,
        device,
        introspection_active,
        token,
        errors,
        redirect,
        own,
        examples: super::Examples::default(),
        // A spec whose templates all render without the engine never builds it (its builtin
        // filters and tests are a one-shot command's largest single set-up cost).
        env: c.env.unwrap_or_else(minijinja::Environment::empty),
    });
    match examples_later {
        Some(text) => spec.data_mut().examples = super::Examples::later(text),
        None => {
            crate::examples::check(&spec, &doc.examples)?;
            spec.data_mut().examples =
                super::Examples::read(doc.examples.into_iter().map(|a| a.value).collect());
        }
    }
    Ok(spec)
}

/// What `file` declares beyond `base`, the spec it extends: grants the base does not have, and
/// inputs whose allowed values the file sets itself. A spec that extends nothing declares
/// nothing beyond a base: it is a standard itself, as `oauth2` is.
pub(crate) fn own_declarations(base: Option<&SpecDoc>, file: &SpecDoc) -> OwnDeclarations {
    let Some(base) = base else {
        return OwnDeclarations::default();
    };
    let grants = file
        .grants
        .iter()
        .filter(|(name, grant)| {
            grant.as_ref().is_some() && base.grants.get(*name).and_then(|g| g.as_ref()).is_none()
        })
        .map(|(name, _)| name.clone())
        .collect();
    let enums = file
        .inputs
        .iter()
        .filter(|(_, input)| input.as_ref().is_some_and(|i| i.allowed.as_ref().is_some()))
        .map(|(name, _)| name.clone())
        .collect();
    // Token extras the file maps itself; an inherited one (`cnf` from `oauth2`) is the
    // standard's, not a quirk.
    let extras = file.token.as_ref().map_or_else(Vec::new, |t| {
        t.extras
            .iter()
            .filter(|(_, path)| path.as_ref().is_some())
            .map(|(name, _)| name.clone())
            .collect()
    });
    OwnDeclarations {
        grants,
        enums,
        extras: Some(extras),
    }
}

/// The most requests one grant may chain (`then:`).
pub(crate) const MAX_CHAIN: usize = 8;

/// Every `then:` (the `(grant, then:)` pairs of `chains`) names a compiled grant, and no
/// chain loops or runs longer than [`MAX_CHAIN`] steps.
fn check_chains(
    chains: &[(String, At<String>)],
    grants: &Map<String, RequestTemplate>,
) -> Result<()> {
    for (name, then) in chains {
        if !grants.contains_key(&then.value) {
            return Err(SpecError::new(
                &then.pos,
                format!(
                    "grant `{name}` is followed by `{}`, which is not a grant of this spec (it has: {})",
                    then.value,
                    join(grants.keys())
                ),
            ));
        }
        let mut seen = vec![name.as_str()];
        let mut at = Some(then.value.as_str());
        while let Some(step) = at {
            if seen.contains(&step) {
                return Err(SpecError::new(
                    &then.pos,
                    format!(
                        "grant `{name}` chains back to `{step}` ({} → {step}): a chain may not loop",
                        seen.join(" → ")
                    ),
                ));
            }
            seen.push(step);
            if seen.len() > MAX_CHAIN {
                return Err(SpecError::new(
                    &then.pos,
                    format!("grant `{name}` chains more than {MAX_CHAIN} requests"),
                ));
            }
            at = grants.get(step).and_then(|g| g.then.as_deref());
        }
    }
    Ok(())
}

/// A templated URL may not be plain `http://` to a literal non-loopback host.
fn check_templated_url(url: &At<String>) -> Result<()> {
    check_userinfo(authority_of(&url.value), &url.value)
        .map_err(|m| SpecError::new(&url.pos, m))?;
    if let Some(rest) = url.value.strip_prefix("http://") {
        let host_end = rest.find(['/', ':', '?']).unwrap_or(rest.len());
        let host = &rest[..host_end];
        if !host.contains('{') && !is_loopback(host) {
            return Err(SpecError::new(
                &url.pos,
                format!(
                    "`{}` is plain http:// to `{host}`, which is not a loopback host; use https://",
                    url.value
                ),
            ));
        }
    }
    Ok(())
}

/// What every request template of a spec is compiled against.
struct TemplateContext<'a> {
    /// The `request:` section, under each template.
    defaults: &'a doc::RequestDoc,
    /// The top-level `client_auth:`, under each template's own.
    top_auth: &'a doc::ClientAuthDoc,
    endpoints: &'a Map<String, Endpoint>,
    /// The loaded file, for errors about parts it only inherits.
    file_pos: &'a Pos,
}

/// Where in the spec a part is (`grants.password.fields.scope`), for messages: formatted only
/// when a message or a template's name needs it.
type What<'a> = &'a dyn std::fmt::Display;

struct Compiler {
    /// The template engine, made on the first template that needs it.
    env: Option<minijinja::Environment<'static>>,
    inputs: Map<String, InputDef>,
    /// Inputs a spec removed (`name: null`), and where.
    removed_inputs: IndexMap<String, Pos>,
    counter: usize,
}

impl Compiler {
    /// Compiles template text, checking its syntax and that it uses only declared inputs.
    fn template(&mut self, what: What<'_>, text: &At<String>) -> Result<Tmpl> {
        match template::classify(&text.value) {
            Classified::Literal => Ok(Tmpl::Literal(text.value.clone())),
            Classified::Var(v) => {
                self.check_declared(what, &v, &text.pos)?;
                Ok(Tmpl::Var(v))
            }
            // References to declared inputs only: filled in without the engine. A reference to
            // anything else (an engine global, an undeclared name) goes to the engine, which
            // either renders it or reports it.
            Classified::Parts(pieces)
                if pieces.iter().all(|p| match p {
                    // A declared input shadows an engine global of the same name (`jwt`).
                    Piece::Var(v) => self.inputs.contains_key(v),
                    Piece::Text(_) => true,
                }) =>
            {
                let mut vars: Vec<String> = Vec::new();
                for p in &pieces {
                    if let Piece::Var(v) = p
                        && !vars.contains(v)
                    {
                        vars.push(v.clone());
                    }
                }
                vars.sort();
                Ok(Tmpl::Parts { pieces, vars })
            }
            Classified::Parts(_) | Classified::Jinja => {
                self.counter += 1;
                let name = format!("{what}#{}", self.counter);
                let env = self.env.get_or_insert_with(template::environment);
                env.add_template_owned(name.clone(), text.value.clone())
                    .map_err(|e| {
                        let detail = without_template_name(&template::describe(&e), &name);
                        SpecError::new(&text.pos, format!("bad template in {what}: {detail}"))
                    })?;
                let compiled = env.get_template(&name).map_err(|e| {
                    SpecError::new(&text.pos, format!("bad template in {what}: {e}"))
                })?;
                // Globals such as `range` are the engine's, not inputs.
                let mut vars: Vec<String> = compiled
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| self.inputs.contains_key(v) || env.globals().all(|(g, _)| g != v))
                    .collect();
                vars.sort();
                for v in &vars {
                    self.check_declared(what, v, &text.pos)?;
                }
                Ok(Tmpl::Jinja { name, vars })
            }
        }
    }

    fn check_declared(&self, what: What<'_>, var: &str, pos: &Pos) -> Result<()> {
        if self.inputs.contains_key(var) {
            Ok(())
        } else if let Some(removed_at) = self.removed_inputs.get(var) {
            // The mistake is the removal, not the base's template: point at the `null`.
            let used_at = if pos.file == removed_at.file {
                format!("line {}", pos.line)
            } else {
                pos.to_string()
            };
            Err(SpecError::new(
                removed_at,
                format!(
                    "`{var}: null` removes an input that {what} (at {used_at}) still uses; remove that too (`{what}` set to null, or what holds it, e.g. `authorize: null` or a grant: `authorization_code: null`), or keep the input"
                ),
            ))
        } else {
            Err(SpecError::new(
                pos,
                format!(
                    "template in {what} uses `{var}`, which is not a declared input (declared: {})",
                    join(self.inputs.keys())
                ),
            ))
        }
    }

    fn client_auth(&mut self, doc: &doc::ClientAuthMap, file_pos: &Pos) -> Result<ClientAuth> {
        let mut chosen_by = None;
        let method = match doc.method.as_ref() {
            None => ClientAuthMethod::Basic,
            // Chosen by an input, for a provider that takes either: compiled like any template,
            // checked when rendered. Until then it counts as Basic (the client id is needed).
            Some(m) if m.value.contains("{{") => {
                chosen_by = Some(self.template(&"client_auth.method", m)?);
                ClientAuthMethod::Basic
            }
            Some(m) => match ClientAuthMethod::from_name(&m.value) {
                Some(method) => method,
                None => {
                    let other = &m.value;
                    let pos = if m.pos.line == 0 { file_pos } else { &m.pos };
                    return Err(SpecError::new(
                        pos,
                        format!(
                            "unknown client_auth method `{other}`; expected basic, post, both, none, auto, private_key_jwt, client_secret_jwt, tls_client_auth or self_signed_tls_client_auth"
                        ),
                    ));
                }
            },
        };
        let form_encode_basic = match doc.basic_encoding.as_ref() {
            None => true,
            Some(e) => match e.value.as_str() {
                "form" => true,
                "raw" => false,
                other => {
                    return Err(SpecError::new(
                        &e.pos,
                        format!("unknown basic_encoding `{other}`; expected form or raw"),
                    ));
                }
            },
        };
        let alg = match (doc.alg.as_ref(), method) {
            (Some(a), _) => a.value.clone(),
            // Decided when the method is.
            (None, _) if chosen_by.is_some() => String::new(),
            (None, ClientAuthMethod::ClientSecretJwt) => "HS256".to_owned(),
            (None, _) => "RS256".to_owned(),
        };
        if method == ClientAuthMethod::PrivateKeyJwt && !self.inputs.contains_key("private_key") {
            return Err(SpecError::new(
                file_pos,
                "client_auth private_key_jwt signs with the `private_key` input, which is not declared",
            ));
        }
        if method.is_mutual_tls() {
            for input in [
                crate::transport::tls::CERTIFICATE_INPUT,
                crate::transport::tls::KEY_INPUT,
            ] {
                if !self.inputs.contains_key(input) {
                    return Err(SpecError::new(
                        file_pos,
                        format!(
                            "client_auth {} presents the certificate from the `{input}` input, which is not declared",
                            method.as_str()
                        ),
                    ));
                }
            }
        }
        let audience = match doc.audience.as_ref() {
            Some(a) => Some(self.template(&"client_auth.audience", a)?),
            None => None,
        };
        let mut claims = Vec::new();
        for (name, patch) in &doc.claims {
            let claim = match patch.as_ref() {
                Some(text) => {
                    Some(self.template(&format_args!("client_auth.claims.{name}"), text)?)
                }
                None => None,
            };
            claims.push((name.clone(), claim));
        }
        Ok(ClientAuth {
            claims,
            method,
            chosen_by,
            alg,
            audience,
            id_field: doc
                .id_field
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_else(|| "client_id".to_owned()),
            secret_field: doc
                .secret_field
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_else(|| "client_secret".to_owned()),
            form_encode_basic,
        })
    }

    /// Compiles one entry of `grants:` or `requests:`, merged over the `request:` defaults.
    fn merged_template(
        &mut self,
        cx: &TemplateContext,
        kind: &RequestKind,
        path: What<'_>,
        r: At<doc::RequestDoc>,
    ) -> Result<RequestTemplate> {
        let mut merged = cx.defaults.clone();
        doc::Merge::merge(&mut merged, r.value);
        // Errors about the template as a whole point at it when the file being loaded writes
        // it; one only inherited from a base is the loaded file's business.
        let pos = if r.pos.file == cx.file_pos.file {
            &r.pos
        } else {
            cx.file_pos
        };
        self.request_template(cx, kind, path, merged, pos)
    }

    /// Compiles a request template; `path` is where it sits in the spec (`grants.password`),
    /// for messages.
    fn request_template(
        &mut self,
        cx: &TemplateContext,
        kind: &RequestKind,
        path: What<'_>,
        mut doc: doc::RequestDoc,
        grant_pos: &Pos,
    ) -> Result<RequestTemplate> {
        let gname = kind.name();
        let require_endpoint = kind.is_grant();
        let endpoints = cx.endpoints;
        let method = match doc.method.as_ref() {
            None => http::Method::POST,
            Some(m) => match m.value.to_ascii_uppercase().as_str() {
                "POST" => http::Method::POST,
                "GET" => http::Method::GET,
                "PUT" => http::Method::PUT,
                "PATCH" => http::Method::PATCH,
                "DELETE" => http::Method::DELETE,
                other => {
                    return Err(SpecError::new(
                        &m.pos,
                        format!(
                            "grant `{gname}`: unknown method `{other}`; expected POST, GET, PUT, PATCH or DELETE"
                        ),
                    ));
                }
            },
        };
        let endpoint = doc
            .endpoint
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_else(|| "token".to_owned());
        if require_endpoint && !endpoints.contains_key(&endpoint) {
            let pos = doc.endpoint.as_ref().map(|a| &a.pos).unwrap_or(grant_pos);
            return Err(SpecError::new(
                pos,
                format!(
                    "grant `{gname}` uses endpoint `{endpoint}`, which is not under `endpoints:` (declared: {})",
                    join(endpoints.keys())
                ),
            ));
        }
        // `required: true` on an input means every grant needs it; the authorization URL and the
        // other requests need only what they use.
        let mut required: Vec<String> = self
            .inputs
            .iter()
            .filter(|(_, d)| d.required && require_endpoint)
            .map(|(n, _)| n.clone())
            .collect();
        let mut need = |vars: &[String]| {
            for v in vars {
                if !required.contains(v) {
                    required.push(v.clone());
                }
            }
        };
        let body = match doc.body.as_ref() {
            None => Body::Fixed(BodyEncoding::Form),
            Some(b) => match self.template(&format_args!("{path}.body"), b)? {
                Tmpl::Literal(s) => Body::Fixed(BodyEncoding::parse(&s).ok_or_else(|| {
                    SpecError::new(
                        &b.pos,
                        format!("grant `{gname}`: unknown body encoding `{s}`; expected form, json, xml, query or none"),
                    )
                })?),
                t => {
                    need(t.vars());
                    Body::Template(t)
                }
            },
        };
        let xml_root = doc.xml_root.as_ref().map(|a| a.value.clone());
        let may_be_xml = matches!(body, Body::Template(_) | Body::Fixed(BodyEncoding::Xml));
        if may_be_xml && xml_root.is_none() && matches!(body, Body::Fixed(BodyEncoding::Xml)) {
            let pos = doc.body.as_ref().map(|a| &a.pos).unwrap_or(grant_pos);
            return Err(SpecError::new(
                pos,
                format!("grant `{gname}`: an xml body needs `xml_root`, the root element's name"),
            ));
        }
        let mut auth_doc = cx.top_auth.clone();
        if let doc::Patch::Set(over) = std::mem::take(&mut doc.client_auth) {
            doc::Merge::merge(&mut auth_doc, *over);
        }
        let client_auth = self.client_auth(&auth_doc.0, grant_pos)?;
        if let Some(t) = &client_auth.chosen_by {
            need(t.vars());
        }
        if client_auth.method != ClientAuthMethod::None {
            need(&["client_id".to_owned()]);
            if !self.inputs.contains_key("client_id") {
                return Err(SpecError::new(
                    grant_pos,
                    format!(
                        "grant `{gname}` authenticates the client ({}) but no input `client_id` is declared",
                        client_auth.method.as_str()
                    ),
                ));
            }
        }
        let is_authorization = *kind == RequestKind::Authorization;
        let mut fields_of = |this: &mut Self,
                             kind: &str,
                             map: &IndexMap<String, doc::Patch<doc::Field>>|
         -> Result<Vec<FieldDef>> {
            let mut out = Vec::new();
            for (fname, patch) in map {
                let Some(f) = patch.as_ref() else { continue };
                if kind == "headers" && http::HeaderName::from_bytes(fname.as_bytes()).is_err() {
                    return Err(SpecError::new(
                        &f.value.pos,
                        format!("grant `{gname}`: `{fname}` is not a valid header name"),
                    ));
                }
                let kind = if is_authorization { "params" } else { kind };
                let tmpl = this.template(&format_args!("{path}.{kind}.{fname}"), &f.value)?;
                let secret = tmpl
                    .vars()
                    .iter()
                    .any(|v| this.inputs.get(v).is_some_and(|d| d.secret));
                if !f.optional {
                    need(tmpl.vars());
                }
                let field_kind = match f.kind.as_ref().map(|k| (k.value.as_str(), &k.pos)) {
                    None | Some(("string", _)) => FieldType::String,
                    Some(("number", _)) => FieldType::Number,
                    Some(("boolean", _)) => FieldType::Boolean,
                    Some(("json", _)) => FieldType::Json,
                    Some((other, pos)) => {
                        return Err(SpecError::new(
                            pos,
                            format!(
                                "grant `{gname}` {kind} `{fname}`: unknown type `{other}`; expected string, number, boolean or json"
                            ),
                        ));
                    }
                };
                let in_query = match f.place.as_ref().map(|p| (p.value.as_str(), &p.pos)) {
                    None | Some(("body", _)) => false,
                    Some(("query", _)) => true,
                    Some((other, pos)) => {
                        return Err(SpecError::new(
                            pos,
                            format!(
                                "grant `{gname}` {kind} `{fname}`: unknown place `in: {other}`; expected body or query"
                            ),
                        ));
                    }
                };
                if kind == "headers" && (f.kind.is_some() || f.place.is_some() || f.raw) {
                    return Err(SpecError::new(
                        &f.value.pos,
                        format!(
                            "grant `{gname}`: header `{fname}` is sent as text; `type`, `in` and `raw` are for body and query fields"
                        ),
                    ));
                }
                out.push(FieldDef {
                    name: fname.clone(),
                    tmpl,
                    optional: f.optional,
                    secret,
                    repeat: f.repeat,
                    kind: field_kind,
                    in_query,
                    raw: f.raw,
                    signs: f.value.value.contains("jwt("),
                });
            }
            Ok(out)
        };
        let headers = fields_of(self, "headers", &doc.headers)?;
        let fields = fields_of(self, "fields", &doc.fields)?;
        if is_authorization {
            // The authorization URL is shown to people and handed to a browser: no secret may
            // be rendered into it.
            let endpoint_vars = endpoints
                .get(&endpoint)
                .map(|e| e.tmpl.vars().to_vec())
                .unwrap_or_default();
            let secret = fields
                .iter()
                .flat_map(|f| f.tmpl.vars())
                .chain(endpoint_vars.iter())
                .find(|v| self.inputs.get(*v).is_some_and(|d| d.secret));
            if let Some(v) = secret {
                return Err(SpecError::new(
                    grant_pos,
                    format!(
                        "the authorization URL uses secret input `{v}`; it is shown to people and sent through a browser, so it may use no secret"
                    ),
                ));
            }
        }
        let tokens = match doc.tokens.as_ref() {
            None => None,
            Some(list) => {
                for t in list {
                    if !matches!(t.value.as_str(), "access_token" | "refresh_token") {
                        return Err(SpecError::new(
                            &t.pos,
                            format!(
                                "`{path}.tokens` names `{}`; expected access_token or refresh_token",
                                t.value
                            ),
                        ));
                    }
                }
                Some(list.iter().map(|t| t.value.clone()).collect())
            }
        };
        if !kind.is_grant() && (!doc.take.is_empty() || doc.then.as_ref().is_some()) {
            let pos = doc.then.as_ref().map(|a| &a.pos).unwrap_or(grant_pos);
            return Err(SpecError::new(
                pos,
                format!("`{path}`: only a grant can be a step of a chain (`take:`, `then:`)"),
            ));
        }
        let mut take = Vec::new();
        for (name, patch) in &doc.take {
            let Some(paths) = patch.as_ref() else {
                continue;
            };
            let pos = paths.0.first().map(|p| &p.pos).unwrap_or(grant_pos);
            self.check_declared(&format_args!("{path}.take"), name, pos)?;
            take.push((
                name.clone(),
                self.paths(&format_args!("{path}.take.{name}"), Some(paths))?,
            ));
        }
        let then = doc.then.as_ref().map(|a| a.value.clone());
        Ok(RequestTemplate {
            take,
            then,
            tokens,
            method,
            endpoint,
            body,
            xml_root,
            client_auth,
            headers,
            fields,
            required,
        })
    }

    fn paths(&mut self, what: What<'_>, paths: Option<&Paths>) -> Result<Vec<Path>> {
        let Some(paths) = paths else {
            return Ok(Vec::new());
        };
        paths.0.iter().map(|p| self.path(what, p)).collect()
    }

    /// A JSONPath into the body, or a value from elsewhere in the reply: `header:NAME`,
    /// `cookie:NAME`, or `template:TEXT` over `body`, `headers` and `cookies`.
    fn path(&mut self, what: What<'_>, p: &At<String>) -> Result<Path> {
        let text = p.value.as_str();
        let elsewhere = |source: Source| -> Result<Path> {
            let mut path = compile_path(what, &At::new("$".to_owned(), p.pos.clone()))?;
            path.text = Arc::from(text);
            path.source = source;
            Ok(path)
        };
        if let Some(name) = text.strip_prefix("header:") {
            let name = name.trim();
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(SpecError::new(
                    &p.pos,
                    format!("`{text}` in {what}: `{name}` is not a header name"),
                ));
            }
            return elsewhere(Source::Header(Arc::from(name.to_ascii_lowercase())));
        }
        if let Some(name) = text.strip_prefix("cookie:") {
            let name = name.trim();
            if name.is_empty() || name.contains(['=', ';', ' ']) {
                return Err(SpecError::new(
                    &p.pos,
                    format!("`{text}` in {what}: `{name}` is not a cookie name"),
                ));
            }
            return elsewhere(Source::Cookie(Arc::from(name)));
        }
        if let Some(template) = text.strip_prefix("template:") {
            self.counter += 1;
            let name = format!("{what}#{}", self.counter);
            let env = self.env.get_or_insert_with(template::environment);
            env.add_template_owned(name.clone(), template.trim().to_owned())
                .map_err(|e| {
                    let detail = without_template_name(&template::describe(&e), &name);
                    SpecError::new(&p.pos, format!("bad template in {what}: {detail}"))
                })?;
            let compiled = env
                .get_template(&name)
                .map_err(|e| SpecError::new(&p.pos, format!("bad template in {what}: {e}")))?;
            for v in compiled.undeclared_variables(false) {
                let known = matches!(v.as_str(), "body" | "headers" | "cookies")
                    || env.globals().any(|(g, _)| g == v);
                if !known {
                    return Err(SpecError::new(
                        &p.pos,
                        format!(
                            "template in {what} uses `{v}`; a reply template sees `body` (the parsed reply), `headers` and `cookies`"
                        ),
                    ));
                }
            }
            return elsewhere(Source::Template(Arc::from(name)));
        }
        compile_path(what, p)
    }

    fn token_map(&mut self, doc: doc::TokenDoc, file_pos: &Pos) -> Result<TokenMap> {
        let access_token = self.paths(&"token.access_token", doc.access_token.as_ref())?;
        if access_token.is_empty() {
            return Err(SpecError::new(
                file_pos,
                "no `token.access_token` path: say where the access token is in a reply (or `extends: oauth2`)",
            ));
        }
        let expires_in_unit = match doc.expires_in_unit.as_ref() {
            None => None,
            Some(u) => Some(match u.value.as_str() {
                "seconds" | "s" => DurationUnit::Seconds,
                "milliseconds" | "ms" => DurationUnit::Milliseconds,
                other => {
                    return Err(SpecError::new(
                        &u.pos,
                        format!(
                            "unknown expires_in_unit `{other}`; expected seconds or milliseconds"
                        ),
                    ));
                }
            }),
        };
        let scope_separator = doc
            .scope_separator
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_else(|| " ".to_owned());
        if scope_separator.is_empty() {
            let pos = doc
                .scope_separator
                .as_ref()
                .map(|a| &a.pos)
                .unwrap_or(file_pos);
            return Err(SpecError::new(
                pos,
                "scope_separator must name at least one character",
            ));
        }
        let mut also = Vec::new();
        for (name, patch) in &doc.also {
            if let Some(sub) = patch.as_ref() {
                also.push((name.clone(), self.token_map(sub.clone(), file_pos)?));
            }
        }
        let mut secret_extras = Vec::new();
        for name in doc.secret_extras.as_ref().map(Vec::as_slice).unwrap_or(&[]) {
            if doc
                .extras
                .get(&name.value)
                .and_then(|p| p.as_ref())
                .is_none()
            {
                return Err(SpecError::new(
                    &name.pos,
                    format!(
                        "`secret_extras` names `{}`, which is not under `token.extras`",
                        name.value
                    ),
                ));
            }
            secret_extras.push(name.value.clone());
        }
        let mut extras = Vec::new();
        for (name, patch) in &doc.extras {
            if let Some(p) = patch.as_ref() {
                extras.push((
                    name.clone(),
                    self.paths(&format_args!("token.extras.{name}"), Some(p))?,
                ));
            }
        }
        let offset = match doc.timezone.as_ref() {
            None => time::UtcOffset::UTC,
            Some(tz) => parse_offset(&tz.value).ok_or_else(|| {
                SpecError::new(
                    &tz.pos,
                    format!(
                        "timezone `{}` is not a UTC offset; write it as `UTC` or `+10:00` / `-05:30`",
                        tz.value
                    ),
                )
            })?,
        };
        let date_format = match doc.date_format.as_ref() {
            Some(f) => Some(super::DateFormat {
                items: Some(
                    time::format_description::parse_strftime_owned(&f.value).map_err(|e| {
                        SpecError::new(&f.pos, format!("bad date_format `{}`: {e}", f.value))
                    })?,
                ),
                offset,
            }),
            None if doc.timezone.as_ref().is_some() => Some(super::DateFormat {
                items: None,
                offset,
            }),
            None => None,
        };
        Ok(TokenMap {
            access_token_optional: doc.access_token_optional.as_ref().copied().unwrap_or(false),
            date_format,
            never_expires: doc.never_expires.as_ref().cloned().unwrap_or_default(),
            refresh_margin: doc.refresh_margin.as_ref().map_or(0, |a| a.value),
            also,
            secret_extras,
            access_token,
            token_type: self.paths(&"token.token_type", doc.token_type.as_ref())?,
            default_token_type: doc.default_token_type.as_ref().map(|a| a.value.clone()),
            expires_in: self.paths(&"token.expires_in", doc.expires_in.as_ref())?,
            expires_in_unit,
            expires_at: self.paths(&"token.expires_at", doc.expires_at.as_ref())?,
            issued_at: self.paths(&"token.issued_at", doc.issued_at.as_ref())?,
            default_expires_in: doc.default_expires_in.as_ref().map(|a| a.value),
            refresh_token: self.paths(&"token.refresh_token", doc.refresh_token.as_ref())?,
            refresh_token_expires_in: self.paths(
                &"token.refresh_token_expires_in",
                doc.refresh_token_expires_in.as_ref(),
            )?,
            refresh_token_expires_at: self.paths(
                &"token.refresh_token_expires_at",
                doc.refresh_token_expires_at.as_ref(),
            )?,
            scope: self.paths(&"token.scope", doc.scope.as_ref())?,
            scope_separator,
            id_token: self.paths(&"token.id_token", doc.id_token.as_ref())?,
            extras,
        })
    }

    fn device_map(&mut self, doc: doc::DeviceDoc) -> Result<DeviceMap> {
        Ok(DeviceMap {
            device_code: self.paths(&"device.device_code", doc.device_code.as_ref())?,
            user_code: self.paths(&"device.user_code", doc.user_code.as_ref())?,
            verification_uri: self
                .paths(&"device.verification_uri", doc.verification_uri.as_ref())?,
            verification_uri_complete: self.paths(
                &"device.verification_uri_complete",
                doc.verification_uri_complete.as_ref(),
            )?,
            expires_in: self.paths(&"device.expires_in", doc.expires_in.as_ref())?,
            interval: self.paths(&"device.interval", doc.interval.as_ref())?,
        })
    }

    fn error_map(&mut self, doc: doc::ErrorsDoc) -> Result<ErrorMap> {
        let conditions = |what: &str, list: Option<&Vec<doc::Condition>>| {
            list.map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|c| condition(&what, c))
                .collect::<Result<Vec<_>>>()
        };
        let mut extras = Vec::new();
        for (name, patch) in &doc.extras {
            if let Some(paths) = patch.as_ref() {
                extras.push((
                    name.clone(),
                    self.paths(&format_args!("errors.extras.{name}"), Some(paths))?,
                ));
            }
        }
        Ok(ErrorMap {
            when: conditions("errors.when", doc.when.as_ref())?,
            success: conditions("errors.success", doc.success.as_ref())?,
            code: self.paths(&"errors.code", doc.code.as_ref())?,
            message: self.paths(&"errors.message", doc.message.as_ref())?,
            hint: self.paths(&"errors.hint", doc.hint.as_ref())?,
            uri: self.paths(&"errors.uri", doc.uri.as_ref())?,
            status_codes: doc
                .status_codes
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (*k, v.value.clone())).collect())
                .unwrap_or_default(),
            extras,
        })
    }
}

/// One condition of `errors.when` or `errors.success`: exactly one test.
fn condition(what: What<'_>, cond: &doc::Condition) -> Result<ErrorCondition> {
    let path = compile_path(what, &cond.path)?;
    let mut tests = Vec::new();
    if let Some(v) = &cond.equals {
        tests.push(Test::Equals(v.clone()));
    }
    if let Some(v) = &cond.not_equals {
        tests.push(Test::NotEquals(v.clone()));
    }
    if let Some(v) = &cond.one_of {
        tests.push(Test::OneOf(v.clone()));
    }
    if let Some(e) = cond.exists {
        tests.push(Test::Exists(e));
    }
    if let Some(re) = &cond.matches {
        let re = regex::RegexBuilder::new(re)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                SpecError::new(
                    &cond.path.pos,
                    format!("bad regular expression in {what}: {e}"),
                )
            })?;
        tests.push(Test::Matches(re));
    }
    match (tests.pop(), tests.is_empty()) {
        (Some(test), true) => Ok(ErrorCondition { path, test }),
        _ => Err(SpecError::new(
            &cond.path.pos,
            format!(
                "an `{what}` condition needs exactly one of `equals`, `not_equals`, `one_of`, `exists` or `matches`"
            ),
        )),
    }
}

/// `UTC`, `Z`, `+10:00`, `-0530` or `+10` as an offset.
fn parse_offset(text: &str) -> Option<time::UtcOffset> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("gmt")
    {
        return Some(time::UtcOffset::UTC);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1i8, &t[1..]),
        b'-' => (-1i8, &t[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i8 = digits.get(..2)?.parse().ok()?;
    let minutes: i8 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    time::UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

fn compile_path(what: What<'_>, p: &At<String>) -> Result<Path> {
    Path::parse(&p.value).map_err(|e| {
        SpecError::new(
            &p.pos,
            format!(
                "bad JSONPath `{}` in {what}: {}",
                p.value,
                jsonpath_detail(&p.value, &e.to_string())
            ),
        )
    })
}

/// The parser's report (`Failed to parse rule: --> 1:3 … = expected …`) as one line: where in
/// the path it stopped and what it expected there.
fn jsonpath_detail(path: &str, report: &str) -> String {
    let at = report
        .split_once("--> ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|lc| lc.rsplit(':').next())
        .and_then(|c| c.parse::<usize>().ok());
    let expected = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map(|e| e.replace("EOI", "end of path"));
    let mut out = match (at, expected) {
        (Some(at), Some(expected)) => format!("cannot parse it at character {at} ({expected})"),
        (Some(at), None) => format!("cannot parse it at character {at}"),
        _ => report.lines().next().unwrap_or("").trim().to_owned(),
    };
    if !path.starts_with('$') {
        out.push_str("; a JSONPath starts with `$`, as in `$.access_token`");
    }
    out
}

/// Drops minijinja's ` (in NAME:LINE)`: the name is internal (`what#N`) and `what` is already in
/// the message. The line is kept when the template has several.
fn without_template_name(message: &str, name: &str) -> String {
    let tag = format!(" (in {name}:");
    let Some(start) = message.find(&tag) else {
        return message.to_owned();
    };
    let after = &message[start + tag.len()..];
    let Some(close) = after.find(')') else {
        return message.to_owned();
    };
    let line = &after[..close];
    let note = if line == "1" {
        String::new()
    } else {
        format!(" (line {line} of the template)")
    };
    format!("{}{note}{}", &message[..start], &after[close + 1..])
}
