//! Every bundled spec's documented examples, replayed offline: each example's `expect` is
//! asserted exactly, and the rendered request (redacted) and normalised outcome are snapshotted.

use specauth::{Loader, Spec};

fn describe(spec: &Spec) -> String {
    let mut out = String::new();
    for report in spec.run_examples() {
        let kind = if report.is_grant { "grant" } else { "request" };
        out.push_str(&format!(
            "## {} ({kind} {})\n\n",
            report.name, report.target
        ));
        out.push_str(&report.request);
        out.push_str("\n→ ");
        out.push_str(&serde_json::to_string_pretty(&report.outcome).unwrap_or_default());
        out.push_str("\n\n");
    }
    out
}

#[test]
fn spec_examples() {
    insta::glob!("../specs", "*.yaml", |path| {
        let spec = Loader::new()
            .load_file(path)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            spec.example_count() > 0,
            "{}: a spec needs examples",
            path.display()
        );
        let failures: Vec<String> = spec
            .run_examples()
            .into_iter()
            .flat_map(|r| {
                r.failures
                    .into_iter()
                    .map(move |f| format!("{}: {f}", r.name))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{}:\n{}",
            path.display(),
            failures.join("\n")
        );
        insta::assert_snapshot!(describe(&spec));
    });
}

#[test]
fn every_bundled_spec_is_a_file_in_specs() {
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/specs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .count();
    assert_eq!(specauth::spec::bundled_ids().count(), on_disk);
}

#[test]
fn snapshots_contain_no_secret_from_any_example() {
    // Every secret input value of every example must be absent from its snapshot text.
    let mut leaks = Vec::new();
    for id in specauth::spec::bundled_ids() {
        let spec = Loader::new().load(id).unwrap();
        let text = describe(&spec);
        for i in 0..spec.example_count() {
            let inputs = spec.example_inputs(i).unwrap();
            for (name, def) in spec.inputs() {
                if let (true, Some(v)) = (def.secret, inputs.get(name).filter(|v| !v.is_empty()))
                    && text.contains(v)
                {
                    leaks.push(format!(
                        "{id}: secret input `{name}` = `{v}` appears in the snapshot"
                    ));
                }
            }
        }
    }
    leaks.sort();
    leaks.dedup();
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

const WRONG: &str = r#"
id: wrong
extends: oauth2
endpoints: { token: "https://auth.example.com/token" }
examples:
  - name: wrong expectations
    grant: client_credentials
    inputs: { client_id: app, client_secret: s }
    reply: { status: 200, json: { access_token: t, token_type: bearer, expires_in: 60 } }
    expect:
      request:
        method: GET
        headers: { Authorization: "Basic nope" }
        absent_headers: [Accept]
        form: { grant_type: password, scope: x }
      token: { access_token: other, token_type: Bearer, expires_in: 61 }
  - name: expects an error, gets a token
    grant: client_credentials
    inputs: { client_id: app }
    reply: { status: 200, json: { access_token: t } }
    expect:
      error: { status: 400 }
  - name: expects nothing
    grant: client_credentials
    inputs: { client_id: app }
    reply: { status: 200, json: { access_token: t } }
"#;

#[test]
fn a_wrong_example_is_reported_with_every_difference() {
    let spec = Spec::from_yaml("wrong.yaml", WRONG).unwrap();
    let reports = spec.run_examples();
    assert_eq!(
        reports[0].failures,
        vec![
            "request.method: expected GET, got POST",
            "request.headers.Authorization: expected \"Basic nope\", got \"Basic [redacted]\"",
            "request.headers.Accept: expected absent, but it is present",
            "request.form.grant_type: expected \"password\", got \"client_credentials\"",
            "request.form.scope: expected \"x\", but it is absent",
            "token.access_token: expected \"[redacted]\", got \"[redacted]\" (secret values differ)",
            "token.expires_in: expected 61, got 60",
        ]
    );
    assert_eq!(reports[1].failures, vec!["expected an error, got a token"]);
    assert_eq!(
        reports[2].failures,
        vec!["the example expects nothing: add `expect.token` or `expect.error`"]
    );
}

#[test]
fn the_committed_json_schema_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/spec.schema.json"
    ))
    .unwrap();
    let generated = serde_json::to_string_pretty(&specauth::spec::spec_schema()).unwrap() + "\n";
    assert!(
        committed == generated,
        "schema/spec.schema.json is out of date: run `cargo run -- schema > schema/spec.schema.json`"
    );
}

#[test]
fn every_bundled_spec_names_the_schema_for_editors() {
    for id in specauth::spec::bundled_ids() {
        let path = format!("{}/specs/{id}.yaml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../schema/spec.schema.json"),
            "{path}: the first line must point editors at the schema"
        );
    }
}

#[test]
fn the_catalogue_has_at_least_forty_providers_besides_the_seeds_and_the_base() {
    let others = specauth::spec::bundled_ids()
        .filter(|id| !specauth::spec::is_bundled_base(id))
        .filter(|id| !["xee", "saasu", "priava"].contains(id))
        .count();
    assert!(others >= 40, "only {others} catalogue providers");
}

const REQUESTS: &str = r#"
id: withrequests
extends: oauth2
endpoints:
  token: "https://auth.example.com/token"
  authorize: "https://auth.example.com/authorize"
  device_authorization: "https://auth.example.com/device"
  revocation: "https://auth.example.com/revoke"
  introspection: "https://auth.example.com/introspect"
authorize: { params: { access_type: offline } }
examples:
  - name: the authorization URL
    request: authorize
    inputs: { client_id: app, state: s1, redirect_uri: "http://127.0.0.1:8765/cb" }
    expect:
      request:
        method: GET
        query: { response_type: code, client_id: app, redirect_uri: "http://127.0.0.1:8765/cb", state: s1, access_type: offline }
  - name: device authorization
    request: device_authorization
    inputs: { client_id: app, scope: read }
    reply: { json: { device_code: DC1, user_code: WDJB-MJHT, verification_uri: "https://auth.example.com/activate", expires_in: 900 } }
    expect:
      request: { form: { scope: read, client_id: app } }
      device: { device_code: DC1, user_code: WDJB-MJHT, interval: 5, expires_in: 900 }
  - name: revocation
    request: revoke
    inputs: { client_id: app, client_secret: s, token: RefreshTok1, token_type_hint: refresh_token }
    reply: { status: 200, body: "" }
    expect:
      request: { form: { token: RefreshTok1, token_type_hint: refresh_token } }
      revoked: true
  - name: introspection
    request: introspect
    inputs: { client_id: app, client_secret: s, token: AccessTok1 }
    reply: { json: { active: true, scope: read, client_id: app } }
    expect:
      introspection: { active: true, scope: read }
  - name: introspection expected to fail
    request: introspect
    inputs: { client_id: app, client_secret: s, token: AccessTok1 }
    reply: { status: 401, json: { error: invalid_client } }
    expect:
      introspection: { active: true }
"#;

#[test]
fn examples_cover_the_authorization_url_and_the_other_requests() {
    let spec = Spec::from_yaml("withrequests.yaml", REQUESTS).unwrap_or_else(|e| panic!("{e}"));
    let reports = spec.run_examples();
    for r in &reports[..4] {
        assert!(r.passed(), "{}: {:?}", r.name, r.failures);
    }
    assert_eq!(
        reports[0].outcome,
        serde_json::json!({"url": "https://auth.example.com/authorize?response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcb&state=s1&access_type=offline"})
    );
    assert_eq!(reports[1].outcome["device"]["device_code"], "[redacted]");
    assert_eq!(reports[2].outcome, serde_json::json!({"revoked": true}));
    assert_eq!(
        reports[4].failures,
        vec![
            "expected an introspection, got an error: provider refused the request (HTTP 401, invalid_client)"
        ]
    );
    assert!(
        spec.example_exchange(0).is_none(),
        "only grant examples are exchanges"
    );
}

/// The catalogue's evidence rules: every bundled spec names the page it was written from, its
/// categories and website, and
/// every grant it keeps has a documented (or marked illustrative) success and error.
#[test]
fn every_spec_has_docs_and_every_grant_a_success_and_an_error_example() {
    let mut problems = Vec::new();
    // A base's grants are exercised by the specs that extend it (its own examples are not inherited).
    for id in specauth::spec::bundled_ids().filter(|id| !specauth::spec::is_bundled_base(id)) {
        let spec = Loader::new().load(id).unwrap();
        if spec.docs().is_none_or(str::is_empty) {
            problems.push(format!("{id}: no `docs:`"));
        }
        if spec.categories().is_empty() || spec.website().is_none() {
            problems.push(format!("{id}: no `categories:` or `website:`"));
        }
        let reports = spec.run_examples();
        for grant in spec.grant_names() {
            let of = |kind: &str| {
                reports
                    .iter()
                    .any(|r| r.is_grant && r.target == grant && r.outcome.get(kind).is_some())
            };
            if !of("token") {
                problems.push(format!("{id}: grant `{grant}` has no success example"));
            }
            if !of("error") {
                problems.push(format!("{id}: grant `{grant}` has no error example"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A bundled spec loaded by id for use is read from its compact form (`specs/compiled/`), its
/// examples from its YAML on first use: every example replays exactly as from the file.
#[test]
fn every_bundled_spec_loaded_by_id_replays_as_its_file() {
    let loader = Loader::new();
    for id in specauth::spec::bundled_ids() {
        let by_id = loader.load(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        let path = format!("{}/specs/{id}.yaml", env!("CARGO_MANIFEST_DIR"));
        let from_file = loader
            .load_file(std::path::Path::new(&path))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(describe(&by_id), describe(&from_file), "{id}");
    }
}
