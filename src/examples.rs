//! A spec's documented examples: checked when the spec is compiled, replayed offline as the
//! spec's own test suite.

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::error::{Error, SpecError};
use crate::inputs::Inputs;
use crate::secret::REDACTED;
use crate::spec::doc::{At, ExampleDoc, RequestExpect};
use crate::spec::{RequestKind, Spec, join};

/// The clock examples run at unless they set `now:` (2023-11-14T22:13:20Z).
pub const EXAMPLE_NOW: u64 = 1_700_000_000;

/// What one example did: the request it rendered (redacted), the normalised outcome (redacted),
/// and every way it differed from the example's `expect`.
#[derive(Clone, Debug)]
pub struct ExampleReport {
    /// The example's name (or `TARGET #N`).
    pub name: String,
    /// The grant or request it exercises.
    pub target: String,
    /// Whether `target` is a grant (else a request: `authorize`, `revoke`, …).
    pub is_grant: bool,
    /// The rendered request with secrets redacted (empty when rendering failed).
    pub request: String,
    /// `{"token": …}`, `{"url": …}`, `{"device": …}`, `{"revoked": true}`,
    /// `{"introspection": …}` or `{"error": …}`, secrets redacted.
    pub outcome: Value,
    /// Differences from `expect`; empty when the example passes.
    pub failures: Vec<String>,
    /// Where the example is: the position of its `grant:` or `request:` (file, line and
    /// column; line 0 when unknown).
    pub pos: crate::error::Pos,
}

impl ExampleReport {
    /// Whether the example matched everything it expects.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl Spec {
    /// Replays every example: renders its request, checks it against `expect.request`, feeds the
    /// documented reply to the normaliser and checks the outcome against `expect.token` or
    /// `expect.error`. No network.
    pub fn run_examples(&self) -> Vec<ExampleReport> {
        let examples = match self.examples() {
            Ok(examples) => examples,
            Err(e) => {
                return vec![ExampleReport {
                    name: "examples".to_owned(),
                    target: "examples".to_owned(),
                    is_grant: false,
                    request: String::new(),
                    outcome: json!({ "error": Error::Spec(e.clone()).to_json() }),
                    failures: vec![format!("the examples cannot be read: {e}")],
                    pos: e.pos.clone(),
                }];
            }
        };
        examples
            .iter()
            .enumerate()
            .map(|(i, ex)| {
                // Templates' now(), uuid() and nonce() are fixed: the same request every run.
                crate::template::with_fixed_clock(ex.now.unwrap_or(EXAMPLE_NOW), || {
                    self.run_example(i, ex)
                })
            })
            .collect()
    }

    /// The grant, inputs, reply and clock of example `index`, when it is a grant example (for
    /// replay servers and demos).
    pub fn example_exchange(
        &self,
        index: usize,
    ) -> Option<(RequestKind, Inputs, http::Response<Vec<u8>>, u64)> {
        let ex = self.examples().ok()?.get(index)?;
        let grant = ex.grant.as_ref()?;
        Some((
            RequestKind::grant(&grant.value),
            example_inputs(ex),
            example_reply(ex)?,
            ex.now.unwrap_or(EXAMPLE_NOW),
        ))
    }

    /// The inputs example `index` sets (for every kind of example).
    pub fn example_inputs(&self, index: usize) -> Option<Inputs> {
        self.examples().ok()?.get(index).map(example_inputs)
    }

    fn run_example(&self, index: usize, ex: &ExampleDoc) -> ExampleReport {
        let kind = example_kind(ex);
        let target = kind.name().to_owned();
        let is_grant = kind.is_grant();
        let name = ex
            .name
            .clone()
            .unwrap_or_else(|| format!("{target} #{}", index + 1));
        let mut report = ExampleReport {
            name,
            target,
            is_grant,
            request: String::new(),
            outcome: Value::Null,
            failures: Vec::new(),
            pos: ex
                .grant
                .as_ref()
                .or(ex.request.as_ref())
                .map(|at| at.pos.clone())
                .unwrap_or_default(),
        };
        let inputs = example_inputs(ex);
        match self.render(&kind, &inputs) {
            Ok(req) => {
                report.request = req.redacted().to_owned();
                if let Some(expect) = &ex.expect.request {
                    // Scrubbed once, at the end; an authorization URL (which returns early)
                    // carries no secret by the compiler's rule.
                    check_request(expect, req.http(), &mut report.failures);
                }
            }
            Err(e) => {
                report.failures.push(format!("rendering failed: {e}"));
                report.outcome = json!({ "error": e.to_json() });
                return report;
            }
        }
        let expect = &ex.expect;
        let expectations: Vec<(&str, Value)> = [
            ("token", expect.token.clone()),
            ("device", expect.device.clone()),
            ("introspection", expect.introspection.clone()),
            ("revoked", expect.revoked.map(Value::Bool)),
            ("pushed", expect.pushed.clone()),
            ("taken", expect.taken.clone()),
            ("error", expect.error.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();

        let Some(reply) = example_reply(ex) else {
            // An authorization URL: the request is the whole example.
            let url = report
                .request
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            report.outcome = json!({ "url": url });
            if expect.request.is_none() {
                report
                    .failures
                    .push("the example expects nothing: add `expect.request`".into());
            }
            if let Some((k, _)) = expectations.first() {
                report.failures.push(format!(
                    "an authorize example has no reply, so no `expect.{k}`"
                ));
            }
            return report;
        };
        let now = ex.now.unwrap_or(EXAMPLE_NOW);
        let result = self.normalise(&kind, &inputs, &reply, now);
        // (kind, the outcome with secrets to compare, the outcome as failures may show it)
        let (outcome_kind, actual, shown) = match &result {
            Ok(outcome) => {
                report.outcome = outcome.to_json(false);
                (
                    outcome.name(),
                    outcome.value_json(true),
                    outcome.value_json(false),
                )
            }
            Err(e) => {
                report.outcome = json!({ "error": error_fields(e) });
                ("error", error_fields(e), error_fields(e))
            }
        };
        match expectations.as_slice() {
            [] => report.failures.push(format!(
                "the example expects nothing: add `expect.{}` or `expect.error`",
                if is_grant { "token" } else { outcome_kind }
            )),
            [(want_kind, want)] if *want_kind == outcome_kind => {
                if let Value::Bool(_) = want {
                    if *want != actual {
                        report
                            .failures
                            .push(format!("{outcome_kind}: expected {want}, got {actual}"));
                    }
                } else {
                    let got = Outcome {
                        revealed: &actual,
                        shown: &shown,
                    };
                    let mut want = want.clone();
                    if let (Err(e), Some(w)) = (&result, want.as_object_mut()) {
                        // A refusal and an unusable reply are different outcomes: `kind`
                        // (default `provider`) says which one the example documents.
                        let want_kind = match w.remove("kind") {
                            Some(Value::String(k)) => k,
                            Some(other) => other.to_string(),
                            None => "provider".to_owned(),
                        };
                        if want_kind != e.kind().as_str() {
                            report.failures.push(format!(
                                "error.kind: expected {want_kind}, got {} ({e})",
                                e.kind()
                            ));
                        }
                    }
                    compare_subset(outcome_kind, &want, &got, &mut report.failures);
                }
            }
            [(want_kind, _)] => match &result {
                Err(e) => report
                    .failures
                    .push(format!("expected {}, got an error: {e}", noun(want_kind))),
                Ok(_) => report.failures.push(format!(
                    "expected {}, got {}",
                    noun(want_kind),
                    noun(outcome_kind)
                )),
            },
            _ => report.failures.push(format!(
                "the example expects more than one outcome ({}); keep one",
                expectations
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        // Failure lines quote what was sent and received: no secret input may show in them,
        // in any encoding (the Basic credential included).
        let scrubber = self.scrubber(&inputs);
        for line in &mut report.failures {
            *line = scrubber.scrub(line);
        }
        report
    }
}

/// Checks a spec's examples against the spec they belong to: each names a grant or a request the
/// spec has, has a reply unless it is an authorization URL, sets only declared inputs, and gives
/// its reply as `json` or as `body`. The compiler calls this last; each error points at the
/// example, or at the part of it that is wrong.
pub(crate) fn check(spec: &Spec, examples: &[At<ExampleDoc>]) -> Result<(), SpecError> {
    for at in examples {
        let example = &at.value;
        match (&example.grant, &example.request) {
            (Some(g), None) if !spec.grants.contains_key(&g.value) => {
                return Err(SpecError::new(
                    &g.pos,
                    format!(
                        "example uses grant `{}`, which the spec does not have (it has: {})",
                        g.value,
                        join(spec.grants.keys())
                    ),
                ));
            }
            (Some(_), None) => {}
            (None, Some(r)) => {
                let kind = RequestKind::from_name(&r.value);
                if kind.is_grant() || !spec.requests.contains_key(&kind) {
                    let names: Vec<String> =
                        spec.requests.keys().map(|k| k.name().to_owned()).collect();
                    return Err(SpecError::new(
                        &r.pos,
                        format!(
                            "example makes request `{}`, which the spec does not have (it has: {})",
                            r.value,
                            join(names.iter())
                        ),
                    ));
                }
            }
            _ => {
                return Err(SpecError::new(
                    &at.pos,
                    "an example names either a `grant:` or a `request:` (authorize, device_authorization, revoke, introspect, par)",
                ));
            }
        }
        let wants_reply = example
            .request
            .as_ref()
            .is_none_or(|r| RequestKind::from_name(&r.value) != RequestKind::Authorization);
        if wants_reply != example.reply.is_some() {
            return Err(SpecError::new(
                &at.pos,
                if wants_reply {
                    "example has no `reply:`; give the provider's reply"
                } else {
                    "an `authorize` example has no reply: remove `reply:`"
                },
            ));
        }
        for (iname, value) in &example.inputs {
            if !spec.inputs.contains_key(iname) {
                return Err(SpecError::new(
                    &value.pos,
                    format!(
                        "example sets input `{iname}`, which is not declared (declared: {})",
                        join(spec.inputs.keys())
                    ),
                ));
            }
        }
        if example
            .reply
            .as_ref()
            .is_some_and(|r| r.json.is_some() && r.body.is_some())
        {
            return Err(SpecError::new(
                &at.pos,
                "example reply has both `json` and `body`; give one",
            ));
        }
    }
    Ok(())
}

/// The request an example exercises.
fn example_kind(ex: &ExampleDoc) -> RequestKind {
    match (&ex.grant, &ex.request) {
        (Some(g), _) => RequestKind::grant(&g.value),
        (None, Some(r)) => RequestKind::from_name(&r.value),
        // The compiler refuses an example with neither.
        (None, None) => RequestKind::grant(""),
    }
}

/// An outcome's kind, as a noun with its article.
fn noun(kind: &str) -> &'static str {
    match kind {
        "token" => "a token",
        "error" => "an error",
        "device" => "a device authorization",
        "introspection" => "an introspection",
        "pushed" => "a pushed authorization",
        "taken" => "a step's values",
        _ => "a revocation",
    }
}

fn example_inputs(ex: &ExampleDoc) -> Inputs {
    ex.inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.value.0.clone()))
        .collect()
}

fn example_reply(ex: &ExampleDoc) -> Option<http::Response<Vec<u8>>> {
    let reply = ex.reply.as_ref()?;
    let mut builder = http::Response::builder().status(reply.status);
    let has_ct = reply
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match (&reply.json, &reply.body) {
        (Some(j), _) => {
            if !has_ct {
                builder = builder.header("content-type", "application/json");
            }
            j.to_string().into_bytes()
        }
        (None, Some(b)) => b.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    Some(builder.body(body).unwrap_or_else(|_| {
        // Header names and values from YAML that HTTP does not allow: keep the body alone.
        let mut r = http::Response::new(Vec::new());
        *r.status_mut() = http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::OK);
        r
    }))
}

/// The parts of an error an example can pin down.
/// A grant's outcome as [`ExampleReport::outcome`] shows it: `{"token": …}` with secrets
/// redacted, or `{"error": …}` with the provider error's parts that are present (or, for other
/// errors, [`Error::to_json`]).
pub fn outcome_json(result: &Result<crate::Outcome, Error>) -> Value {
    match result {
        Ok(outcome) => outcome.to_json(false),
        Err(e) => json!({ "error": error_fields(e) }),
    }
}

fn error_fields(e: &Error) -> Value {
    match e {
        Error::Provider(p) => {
            let mut m = serde_json::Map::new();
            m.insert("status".into(), json!(p.status));
            for (k, v) in [
                ("code", &p.code),
                ("message", &p.message),
                ("hint", &p.hint),
                ("uri", &p.uri),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
            if !p.extra.is_empty() {
                m.insert("extra".into(), Value::Object(p.extra.clone()));
            }
            Value::Object(m)
        }
        other => other.to_json(),
    }
}

/// An outcome as compared (secrets revealed) and as a failure line may show it (redacted).
struct Outcome<'a> {
    revealed: &'a Value,
    shown: &'a Value,
}

fn compare_subset(what: &str, want: &Value, got: &Outcome, failures: &mut Vec<String>) {
    let Some(want) = want.as_object() else {
        failures.push(format!("`expect.{what}` must be a map"));
        return;
    };
    for (k, w) in want {
        let g = got.revealed.get(k).unwrap_or(&Value::Null);
        if !same(w, g) {
            let shown = got.shown.get(k).unwrap_or(&Value::Null);
            // A value with a secret in it is shown redacted on both sides: a failing example
            // must not print the token it got (or the one it expected).
            if shown != g {
                failures.push(format!(
                    "{what}.{k}: expected {REDACTED:?}, got {REDACTED:?} (secret values differ)"
                ));
            } else {
                failures.push(format!("{what}.{k}: expected {w}, got {g}"));
            }
        }
    }
}

/// JSON equality where `3600` and `3600.0` are equal.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn check_request(expect: &RequestExpect, req: &http::Request<Vec<u8>>, failures: &mut Vec<String>) {
    if let Some(m) = &expect.method
        && !req.method().as_str().eq_ignore_ascii_case(m)
    {
        failures.push(format!(
            "request.method: expected {m}, got {}",
            req.method()
        ));
    }
    if let Some(u) = &expect.url
        && req.uri().to_string() != *u
    {
        failures.push(format!("request.url: expected {u}, got {}", req.uri()));
    }
    for (name, want) in &expect.headers {
        match req
            .headers()
            .get(name.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        {
            Some(got) if got == *want => {}
            Some(got) => failures.push(format!(
                "request.headers.{name}: expected {want:?}, got {got:?}"
            )),
            None => failures.push(format!(
                "request.headers.{name}: expected {want:?}, but it is absent"
            )),
        }
    }
    for name in &expect.absent_headers {
        if req.headers().contains_key(name.as_str()) {
            failures.push(format!(
                "request.headers.{name}: expected absent, but it is present"
            ));
        }
    }
    let body = String::from_utf8_lossy(req.body());
    if let Some(form) = &expect.form {
        compare_pairs("form", form, form_pairs(&body), failures);
    }
    if let Some(query) = &expect.query {
        compare_pairs(
            "query",
            query,
            form_pairs(req.uri().query().unwrap_or("")),
            failures,
        );
    }
    if let Some(j) = &expect.json {
        match serde_json::from_str::<Value>(&body) {
            Ok(got) if same(j, &got) => {}
            Ok(got) => failures.push(format!("request.json: expected {j}, got {got}")),
            Err(_) => failures.push(format!("request.json: the body is not JSON: {body}")),
        }
    }
    if let Some(b) = &expect.body
        && body != *b
    {
        failures.push(format!("request.body: expected {b:?}, got {body:?}"));
    }
}

fn form_pairs(text: &str) -> IndexMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn compare_pairs(
    what: &str,
    want: &IndexMap<String, String>,
    got: IndexMap<String, String>,
    failures: &mut Vec<String>,
) {
    for (k, w) in want {
        match got.get(k) {
            Some(g) if g == w => {}
            Some(g) => failures.push(format!("request.{what}.{k}: expected {w:?}, got {g:?}")),
            None => failures.push(format!(
                "request.{what}.{k}: expected {w:?}, but it is absent"
            )),
        }
    }
    for k in got.keys() {
        if !want.contains_key(k) {
            failures.push(format!("request.{what}.{k}: present but not expected"));
        }
    }
}
