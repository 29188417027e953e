//! Every bundled spec's documented examples, replayed offline: each example's `expect` is
//! asserted exactly, and the rendered request (redacted) and normalised outcome are snapshotted.

use specauth::{Loader, Spec};

fn describe(spec: &Spec) -> String {
    let mut out = String::new();
    for report in spec.run_examples() {
        out.push_str(&format!("## {} (grant {})\n\n", report.name, report.grant));
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
    assert_eq!(specauth::bundled_ids().count(), on_disk);
}

#[test]
fn snapshots_contain_no_secret_from_any_example() {
    // Every secret input value of every example must be absent from its snapshot text.
    let mut leaks = Vec::new();
    for id in specauth::bundled_ids() {
        let spec = Loader::new().load(id).unwrap();
        let text = describe(&spec);
        for i in 0..spec.example_count() {
            let (_, inputs, _, _) = spec.example_exchange(i).unwrap();
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
            "request.headers.Authorization: expected \"Basic nope\", got \"Basic YXBwOnM=\"",
            "request.headers.Accept: expected absent, but it is present",
            "request.form.grant_type: expected \"password\", got \"client_credentials\"",
            "request.form.scope: expected \"x\", but it is absent",
            "token.access_token: expected \"other\", got \"t\"",
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
    let generated = serde_json::to_string_pretty(&specauth::spec_schema()).unwrap() + "\n";
    assert!(
        committed == generated,
        "schema/spec.schema.json is out of date: run `cargo run -- schema > schema/spec.schema.json`"
    );
}

#[test]
fn every_bundled_spec_names_the_schema_for_editors() {
    for id in specauth::bundled_ids() {
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
    let others = specauth::bundled_ids()
        .filter(|id| !["oauth2", "xee", "saasu", "priava"].contains(id))
        .count();
    assert!(others >= 40, "only {others} catalogue providers");
}
