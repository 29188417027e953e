//! The `specauth` binary as a process: the public contract of commands, output and exit codes.

use std::process::{Command, Output};

use specauth::testing::ReplayServer;

fn specauth(args: &[&str]) -> Output {
    specauth_env(args, &[])
}

fn specauth_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
    cmd.args(args);
    // A developer's own SPECAUTH_* variables must not leak into the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("SPECAUTH_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_reply(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

#[test]
fn token_prints_the_normalised_token_and_reads_secrets_from_the_environment() {
    let server = ReplayServer::start().unwrap();
    server.push(json_reply(
        200,
        r#"{"access_token":"22fe","expires_at":1382962374,"expires_in":3600,"refresh_token":"8eb6","token_type":"bearer"}"#,
    ));
    let endpoint = format!("token={}/v3/auth/access_token", server.origin());
    let out = specauth_env(
        &[
            "token",
            "xee",
            "authorization_code",
            "--set",
            "client_id=app",
            "--set",
            "code=abc",
            "--endpoint",
            &endpoint,
        ],
        &[("SPECAUTH_CLIENT_SECRET", "s3cret")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        token,
        serde_json::json!({
            "access_token": "22fe", "token_type": "Bearer", "expires_in": 3600,
            "expires_at": 1382962374u64, "refresh_token": "8eb6"
        })
    );
    let got = &server.received()[0];
    assert_eq!(got.url, "/v3/auth/access_token");
    assert!(
        got.headers
            .contains(&("authorization".into(), "Basic YXBwOnMzY3JldA==".into()))
    );
    assert_eq!(got.body, b"grant_type=authorization_code&code=abc");
}

#[test]
fn set_overrides_the_environment_and_can_read_stdin() {
    let server = ReplayServer::start().unwrap();
    server.push(json_reply(200, r#"{"access_token":"t"}"#));
    let endpoint = format!("token={}/token", server.origin());
    let mut child = Command::new(env!("CARGO_BIN_EXE_specauth"))
        .args(["token", "priava", "refresh_token", "--endpoint", &endpoint])
        .args([
            "--set",
            "region=EU",
            "--set",
            "client_id=from-flag",
            "--set",
            "client_secret=-",
        ])
        .args([
            "--set",
            "refresh_token=r1",
            "--set",
            "redirect_uri=https://app.example/cb",
        ])
        .env("SPECAUTH_CLIENT_ID", "from-env")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let body = String::from_utf8(server.received()[0].body.clone()).unwrap();
    assert!(body.contains("client_id=from-flag"), "{body}");
    assert!(body.contains("client_secret=from-stdin"), "{body}");
    assert!(
        server.received()[0]
            .headers
            .contains(&("tenantregion".into(), "EU".into()))
    );
}

#[test]
fn a_provider_refusal_exits_1_and_json_errors_go_to_stderr() {
    let server = ReplayServer::start().unwrap();
    server.push(json_reply(
        400,
        r#"[{"type":"PARAMETERS_ERROR","message":"Missing parameter","tip":"Check it"}]"#,
    ));
    let endpoint = format!("token={}/t", server.origin());
    let out = specauth(&[
        "--json",
        "token",
        "xee",
        "refresh_token",
        "--endpoint",
        &endpoint,
        "--set",
        "client_id=app",
        "--set",
        "client_secret=s3cret",
        "--set",
        "refresh_token=r-secret",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(
        err,
        serde_json::json!({"error": {"kind": "provider", "status": 400, "code": "PARAMETERS_ERROR",
            "message": "Missing parameter", "hint": "Check it", "uri": null}})
    );
    // Without --json: one line.
    server.push(json_reply(403, r#"{"message":"Invalid authentication"}"#));
    let out = specauth(&[
        "token",
        "xee",
        "refresh_token",
        "--endpoint",
        &endpoint,
        "--set",
        "client_id=app",
        "--set",
        "client_secret=s3cret",
        "--set",
        "refresh_token=r-secret",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "specauth: provider refused the request (HTTP 403): Invalid authentication\n"
    );
}

#[test]
fn bad_input_exits_2_naming_the_input() {
    let out = specauth(&[
        "render",
        "priava",
        "authorization_code",
        "--set",
        "region=MARS",
        "--set",
        "client_id=a",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "specauth: input `region`: `MARS` is not one of APAC, EU, US\n"
    );

    let out = specauth(&[
        "--json",
        "render",
        "saasu",
        "password",
        "--set",
        "username=u",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["kind"], "input");
    assert_eq!(err["error"]["code"], "password");

    let out = specauth(&["render", "xee", "password"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "specauth: spec `xee` has no grant `password` (it has: authorization_code, refresh_token)\n"
    );

    // The library says what is missing; the CLI adds how to give it, naming its own flags.
    let out = specauth(&["render", "xee", "refresh_token"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "specauth: input `client_secret`: required by grant `refresh_token` of `xee` but not set (The client secret (omit for public clients)); give it with --set client_secret=… or SPECAUTH_CLIENT_SECRET\n"
    );
    let out = specauth(&["--json", "render", "xee", "refresh_token"]);
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["code"], "client_secret");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("give it with --set client_secret=… or SPECAUTH_CLIENT_SECRET"),
        "{err}"
    );

    let out = specauth(&["render", "nope", "password"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no spec `nope`"), "{}", stderr(&out));

    let out = specauth(&["render", "xee", "refresh_token", "--set", "colour=blue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("specauth: input `colour`: not declared by spec `xee`"),
        "{}",
        stderr(&out)
    );

    // clap's own usage errors keep exit code 2 too.
    let out = specauth(&["token"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn transport_failures_and_unusable_replies_exit_3() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("token=http://127.0.0.1:{port}/t");
    let out = specauth(&[
        "--json",
        "token",
        "xee",
        "authorization_code",
        "--endpoint",
        &endpoint,
        "--set",
        "client_id=a",
        "--set",
        "client_secret=s3cret",
        "--set",
        "code=c0de",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["kind"], "transport");

    let server = ReplayServer::start().unwrap();
    server.push(
        http::Response::builder()
            .status(502)
            .header("content-type", "text/html")
            .body(b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec())
            .unwrap(),
    );
    let endpoint = format!("token={}/t", server.origin());
    let out = specauth(&[
        "token",
        "xee",
        "authorization_code",
        "--endpoint",
        &endpoint,
        "--set",
        "client_id=a",
        "--set",
        "client_secret=s3cret",
        "--set",
        "code=c0de",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(
        e.contains("HTTP 502") && e.contains("HTML") && e.contains("502 Bad Gateway"),
        "{e}"
    );
}

#[test]
fn render_redacts_secrets_unless_revealed() {
    let args = [
        "render",
        "priava",
        "refresh_token",
        "--set",
        "region=EU",
        "--set",
        "client_id=app",
        "--set",
        "client_secret=TopSecret9",
        "--set",
        "refresh_token=RefreshMe7",
        "--set",
        "redirect_uri=https://app.example/cb",
    ];
    let out = specauth(&args);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "POST https://api.priava.com/api/rest/oauth/token\n\
         Accept: application/json\n\
         Content-Type: application/x-www-form-urlencoded;charset=utf-8\n\
         TenantRegion: EU\n\
         \n\
         grant_type=refresh_token&refresh_token=[redacted]&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&client_id=app&client_secret=[redacted]\n"
    );
    let mut revealed = args.to_vec();
    revealed.push("--reveal");
    let out = specauth(&revealed);
    let text = stdout(&out);
    assert!(
        text.contains("client_secret=TopSecret9") && text.contains("refresh_token=RefreshMe7"),
        "{text}"
    );
}

#[test]
fn check_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nextends: oauth2\nendpoints:\n  token: http://auth.example.com/token\n",
    )
    .unwrap();
    let out = specauth(&["check", "specs", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("ok    specs/xee.yaml (xee: 2 grants, 7 examples)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "error {}:4:10: `http://auth.example.com/token` is plain http:// to `auth.example.com`, which is not a loopback host; use https://",
            bad.display()
        )),
        "{text}"
    );
}

#[test]
fn test_reports_each_example_and_fails_on_a_wrong_one() {
    let out = specauth(&["test", "specs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("PASS  saasu › password grant, XML"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with("passed, 0 failed"), "{last}");

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        "extends: oauth2\nendpoints: { token: \"https://a.example/t\" }\nexamples:\n  - grant: client_credentials\n    inputs: { client_id: a }\n    reply: { json: { access_token: t } }\n    expect: { token: { access_token: u } }\n",
    )
    .unwrap();
    let out = specauth(&["test", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "FAIL  wrong › client_credentials #1 ({}:4:12)\n        token.access_token: expected \"[redacted]\", got \"[redacted]\" (secret values differ)\n0 passed, 1 failed\n",
            wrong.display()
        )
    );

    // --json: one entry per example, with where it is and each difference.
    let out = specauth(&["--json", "test", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        report,
        serde_json::json!({
            "passed": 0, "failed": 1, "problems": [],
            "examples": [{
                "spec": "wrong", "name": "client_credentials #1",
                "file": wrong.display().to_string(), "line": 4, "column": 12, "passed": false,
                "differences": ["token.access_token: expected \"[redacted]\", got \"[redacted]\" (secret values differ)"]
            }]
        })
    );
}

#[test]
fn check_json_gives_file_line_column_and_message_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nextends: oauth2\nendpoints:\n  token: http://auth.example.com/token\n",
    )
    .unwrap();
    let out = specauth(&["--json", "check", "specs/xee.yaml", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        report,
        serde_json::json!({
            "ok": [{"file": "specs/xee.yaml", "id": "xee", "grants": 2, "examples": 7}],
            "problems": [{
                "file": bad.display().to_string(), "line": 4, "column": 10,
                "message": "`http://auth.example.com/token` is plain http:// to `auth.example.com`, which is not a loopback host; use https://"
            }]
        })
    );
}

#[test]
fn new_scaffolds_a_spec_that_passes_check_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    let out = specauth(&["new", "acme", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(yaml.starts_with("# yaml-language-server: $schema=spec.schema.json\n"));
    assert!(yaml.contains("\nid: acme\n") && yaml.contains("\nextends: oauth2"));
    assert!(yaml.contains("\nexamples:\n"));
    // The comment above `client_auth:` names every method the schema allows.
    fn client_auth_methods(v: &serde_json::Value) -> Option<Vec<String>> {
        match v {
            serde_json::Value::Object(o) => {
                let methods = o.get("enum").and_then(|e| e.as_array()).filter(|e| {
                    e.iter().any(|m| m == "basic") && e.iter().any(|m| m == "private_key_jwt")
                });
                match methods {
                    Some(e) => Some(
                        e.iter()
                            .filter_map(|m| m.as_str().map(str::to_owned))
                            .collect(),
                    ),
                    None => o.values().find_map(client_auth_methods),
                }
            }
            serde_json::Value::Array(a) => a.iter().find_map(client_auth_methods),
            _ => None,
        }
    }
    let schema: serde_json::Value = serde_json::from_str(&stdout(&specauth(&["schema"]))).unwrap();
    let methods = client_auth_methods(&schema).expect("the schema lists the client_auth methods");
    let before = yaml.split("\nclient_auth:").next().unwrap();
    let comment: Vec<&str> = before
        .lines()
        .rev()
        .take_while(|l| l.starts_with('#'))
        .flat_map(|l| l.split([' ', '|', ':', '(', ')']))
        .collect();
    assert!(methods.len() >= 9, "{methods:?}");
    for method in &methods {
        assert!(
            comment.contains(&method.as_str()),
            "`{method}` is not in the comment above client_auth:"
        );
    }
    // The schema the modeline names is written beside it, and is the one `schema` prints.
    let schema = std::fs::read_to_string(dir.path().join("spec.schema.json")).unwrap();
    assert_eq!(schema, stdout(&specauth(&["schema"])));
    let out = specauth(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = specauth(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("1 passed, 0 failed\n"));
    // An existing file is never overwritten; an id must be one.
    let out = specauth(&["new", "acme", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = specauth(&["new", "Acme Corp"]);
    assert_eq!(out.status.code(), Some(2));
    // Without -o: stdout.
    let out = specauth(&["new", "other"]);
    assert!(stdout(&out).contains("\nid: other\n"));
}

#[test]
fn unknown_names_get_a_suggestion_and_an_empty_stdin_secret_is_refused() {
    let out = specauth(&["render", "gitlba", "authorization_code"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `gitlab`?"),
        "{}",
        stderr(&out)
    );
    let out = specauth(&["render", "xee", "refesh_token"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `refresh_token`?"),
        "{}",
        stderr(&out)
    );
    let out = specauth(&["render", "xee", "refresh_token", "--set", "client_ids=app"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("input `client_ids`")
            && stderr(&out).contains("did you mean `client_id`?"),
        "{}",
        stderr(&out)
    );
    // Nothing near: no suggestion.
    let out = specauth(&["render", "zzzzzzzz", "x"]);
    assert!(!stderr(&out).contains("did you mean"), "{}", stderr(&out));

    // `--set client_secret=-` with nothing on stdin names the input.
    let out = Command::new(env!("CARGO_BIN_EXE_specauth"))
        .args(["render", "xee", "refresh_token", "--set", "client_secret=-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "specauth: input `client_secret`: `--set client_secret=-` read nothing from stdin\n"
    );
}

#[test]
fn help_shows_the_commands_own_options_before_the_global_ones() {
    let out = specauth(&["print-token", "--help"]);
    let help = stdout(&out);
    let own = help.find("--format").expect("--format in help");
    let global = help
        .find("Global options:")
        .expect("a Global options heading");
    assert!(own < global, "{help}");
    assert_eq!(help.matches("--store").count(), 1, "{help}");
    // Examples name bundled providers.
    let bundled = stdout(&specauth(&["providers", "--json"]));
    for cmd in [
        "token",
        "render",
        "login",
        "print-token",
        "logout",
        "revoke",
        "introspect",
    ] {
        let help = stdout(&specauth(&[cmd, "--help"]));
        let examples = help
            .split_once("\nExample")
            .unwrap_or_else(|| panic!("{cmd}: no example\n{help}"))
            .1;
        let example = examples
            .lines()
            .find(|l| l.contains(&format!("specauth {cmd} ")))
            .unwrap_or_else(|| panic!("{cmd}: no example\n{help}"));
        let provider = example
            .split_whitespace()
            .skip_while(|w| !w.ends_with(cmd))
            .nth(1)
            .unwrap_or_else(|| panic!("{example}"))
            .trim_end_matches([')', '"']);
        assert!(
            bundled.contains(&format!("\"id\":\"{provider}\"")),
            "{cmd}: example provider `{provider}` is not bundled"
        );
    }
}

/// Each command's own `--help` opens with the description `specauth --help` lists for it, and
/// completion offers the same one: clap builds a command's arguments only when it runs
/// (`defer`), and a doc comment on an argument struct would then replace the description.
#[test]
fn every_command_help_opens_with_its_listed_description() {
    let root = stdout(&specauth(&["--help"]));
    let listed: Vec<(String, String)> = root
        .split_once("Commands:\n")
        .expect("a Commands list")
        .1
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let (name, about) = l.trim().split_once(char::is_whitespace)?;
            Some((name.to_owned(), about.trim().to_owned()))
        })
        .filter(|(name, _)| name != "help")
        .collect();
    assert!(listed.len() >= 20, "{root}");
    for (name, about) in &listed {
        let help = stdout(&specauth(&[name, "--help"]));
        let first = help.lines().next().unwrap_or("");
        // The list cuts a long description at its first sentence or line; the help has it whole.
        assert!(
            first.starts_with(about.trim_end_matches('.')),
            "`{name} --help` opens with {first:?}, `--help` lists {about:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_specauth"))
        .env("COMPLETE", "fish")
        .args(["--", "specauth", "tok"])
        .output()
        .unwrap();
    let offered = stdout(&out);
    assert!(
        offered
            .contains("token\tPerform a grant and print the normalised token as one JSON object"),
        "{offered}"
    );
    // A command's own options are offered before the global ones (bash and fish keep the order).
    let out = Command::new(env!("CARGO_BIN_EXE_specauth"))
        .env("COMPLETE", "fish")
        .args(["--", "specauth", "token", "--"])
        .output()
        .unwrap();
    let offered = stdout(&out);
    let own = offered.find("--set\t").expect("--set offered");
    let global = offered.find("--specs\t").expect("--specs offered");
    assert!(own < global, "{offered}");
}

#[test]
fn completion_is_computed_from_specs_and_profiles_at_each_tab() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("profiles.yaml"),
        "gitlab:\n  work: { client_id: a }\n",
    )
    .unwrap();
    let complete = |words: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
        cmd.env("COMPLETE", "fish")
            .env("SPECAUTH_CONFIG", dir.path().join("profiles.yaml"))
            .env("SPECAUTH_STORE", dir.path().join("store"))
            .arg("--")
            .arg("specauth")
            .args(words);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert!(complete(&["print-token", "gitl"]).contains(&"gitlab".to_owned()));
    let values = |words: &[&str]| {
        complete(words)
            .into_iter()
            .filter(|c| !c.starts_with('-'))
            .collect::<Vec<_>>()
    };
    let grants = values(&["token", "xee", ""]);
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    // Flags before the provider, with and without values.
    let grants = values(&["--json", "token", "--timeout", "5", "xee", ""]);
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    let profiles = values(&["print-token", "gitlab", "--profile", ""]);
    assert_eq!(profiles, ["default", "work"], "{profiles:?}");
    // The script `completions` prints calls back into specauth.
    let script = stdout(&specauth(&["completions", "bash"]));
    assert!(
        script.contains("COMPLETE=\"bash\"") && script.contains("specauth"),
        "{script}"
    );
}

#[test]
fn specs_folders_add_providers_and_shadow_bundled_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.yaml"),
        "name: Acme\nextends: oauth2\nendpoints: { token: \"https://acme.example/token\" }\n",
    )
    .unwrap();
    let out = specauth(&[
        "--specs",
        dir.path().to_str().unwrap(),
        "providers",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "acme");
    assert!(ids.contains(&"xee") && ids.contains(&"saasu") && ids.contains(&"priava"));
    let out = specauth(&[
        "--specs",
        dir.path().to_str().unwrap(),
        "render",
        "acme",
        "client_credentials",
        "--set",
        "client_id=a",
    ]);
    assert!(
        stdout(&out).starts_with("POST https://acme.example/token\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn demo_runs_every_bundled_exchange_over_loopback() {
    let out = specauth(&["demo"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // One screen: the three seed providers first, a row each, then the others in one row.
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains('✓')).collect();
    assert_eq!(rows.len(), 4, "{text}");
    for (row, id) in rows.iter().zip(["xee ", "saasu ", "priava "]) {
        assert!(row.starts_with(id), "{row}");
    }
    assert!(rows[3].contains(" more "), "{}", rows[3]);
    assert!(text.lines().count() < 24, "more than one screen:\n{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.contains(" exchanges over ") && last.ends_with("each matched its offline replay."),
        "{last}"
    );
    // The transcript: `demo PROVIDER`, or every provider with -v.
    let out = specauth(&["-v", "demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let full = stdout(&out);
    for id in ["xee", "saasu", "priava"] {
        assert!(
            full.contains(&format!("━━ {id} ·")),
            "{id} missing from the demo"
        );
    }
    assert_eq!(full.lines().last(), Some(last), "the same count");
    let xee = stdout(&specauth(&["demo", "xee"]));
    assert!(
        xee.contains("━━ xee ·") && !xee.contains("━━ saasu ·"),
        "{xee}"
    );
    // Real expiry times: Xee's example token expires at 1382962374.
    assert!(xee.contains("expires 2013-10-28T12:12:54Z"), "{xee}");
    for text in [&text, &full] {
        assert!(
            !text.contains("s3cret") && !text.contains("StrongPassword"),
            "a secret leaked into the demo"
        );
    }
}

#[test]
fn import_writes_a_spec_from_discovery_metadata_that_passes_check() {
    let server = ReplayServer::start().unwrap();
    let o = server.origin();
    // The OpenID configuration is missing (404); RFC 8414's metadata answers.
    server.push(json_reply(404, r#"{"error":"not_found"}"#));
    server.push(json_reply(
        200,
        &format!(
            r#"{{"issuer":"{o}","authorization_endpoint":"{o}/auth","token_endpoint":"{o}/token",
               "revocation_endpoint":"{o}/revoke","token_endpoint_auth_methods_supported":["client_secret_post"],
               "grant_types_supported":["authorization_code","refresh_token"],"code_challenge_methods_supported":["S256"]}}"#
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peer.yaml");
    let out = specauth(&["import", &o, "--id", "peer", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let urls: Vec<String> = server.received().iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server"
        ]
    );
    let out = specauth(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("(peer: 2 grants, 0 examples)"),
        "{}",
        stdout(&out)
    );
    let out = specauth(&[
        "render",
        file.to_str().unwrap(),
        "refresh_token",
        "--set",
        "client_id=a",
        "--set",
        "client_secret=b",
        "--set",
        "refresh_token=r",
    ]);
    assert_eq!(
        stdout(&out),
        format!(
            "POST {o}/token\nAccept: application/json\nContent-Type: application/x-www-form-urlencoded\n\n\
             grant_type=refresh_token&refresh_token=[redacted]&client_id=a&client_secret=[redacted]\n"
        )
    );
}

/// The first fenced block opening with `fence` after `after` in `text`, without its fences.
fn fenced<'a>(text: &'a str, after: &str, fence: &str) -> &'a str {
    let from = text.find(after).unwrap_or_else(|| panic!("no `{after}`")) + after.len();
    let start = text[from..]
        .find(fence)
        .unwrap_or_else(|| panic!("no {fence} block after `{after}`"))
        + from
        + fence.len();
    let end = text[start..].find("```\n").expect("a closing fence") + start;
    &text[start..end]
}

/// The README's async and middleware examples are complete programs, compiled as `no_run` doc
/// tests in the rustdoc of `AsyncClient::new` and of `middleware`: each README block must be
/// its doc test, character for character, and name a bundled provider that has the grant it
/// uses. (The README's other Rust blocks are illustrative fragments, so the whole README is
/// not compiled.)
#[test]
fn the_readme_async_examples_are_the_compiled_doc_tests() {
    let read = |file: &str| {
        std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let readme = read("README.md");
    for (heading, source) in [
        ("### Async applications", "src/client.rs"),
        ("### The HTTP client middleware", "src/middleware.rs"),
    ] {
        let shown = fenced(&readme, heading, "```rust\n");
        // The doc comment's lines, without their `///` or `//!` and one space.
        let docs: String = read(source)
            .lines()
            .map(|l| l.trim_start())
            .map(|l| l.strip_prefix("///").or(l.strip_prefix("//!")).unwrap_or(l))
            .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
            .collect();
        let compiled = fenced(
            &docs,
            "(the README's example, compiled here)",
            "```no_run\n",
        );
        assert!(
            shown == compiled,
            "README's block under `{heading}` differs from the doc test in {source}:\n{shown}\n---\n{compiled}"
        );
        let provider = shown
            .split("load(\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the example loads a spec");
        let spec = specauth::Loader::new().load(provider).unwrap();
        assert!(
            spec.grant_names().any(|g| g == "client_credentials"),
            "{provider} has no client_credentials grant"
        );
        assert!(shown.contains("client_credentials"));
    }
}

#[test]
fn import_refuses_metadata_naming_another_issuer_and_writes_nothing() {
    let server = ReplayServer::start().unwrap();
    let o = server.origin();
    server.push(json_reply(
        200,
        r#"{"issuer":"https://evil.example.com","authorization_endpoint":"https://evil.example.com/auth",
            "token_endpoint":"https://evil.example.com/token","code_challenge_methods_supported":["S256"]}"#,
    ));
    // Nor is it a protected resource.
    server.push(json_reply(404, r#"{"error":"not_found"}"#));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peer.yaml");
    let out = specauth(&["import", &o, "--id", "peer", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "specauth: the metadata at {o}/.well-known/openid-configuration names issuer `https://evil.example.com`, but `{o}` was expected; refusing it (RFC 8414 §3.3: the issuer must be the URL imported, character for character); nor is `{o}` a protected resource: no protected resource metadata found at {o}/.well-known/oauth-protected-resource (HTTP 404)\n"
        )
    );
    assert!(!file.exists());
}

#[test]
fn the_readme_catalogue_and_the_providers_page_are_current() {
    let out = specauth(&["providers", "--readme"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- providers:start -->\n")
        .expect("README has the providers:start marker")
        + "<!-- providers:start -->\n".len();
    let end = readme
        .find("<!-- providers:end -->")
        .expect("README has the providers:end marker");
    assert!(
        readme[start..end] == stdout(&out),
        "README.md's catalogue block is out of date: replace it with `specauth providers --readme`"
    );
    let out = specauth(&["providers", "--markdown"]);
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/providers.md")).unwrap();
    assert!(
        page == stdout(&out),
        "docs/providers.md is out of date: write it with `specauth providers --markdown > docs/providers.md`"
    );
    // The count in the README is the count of rows on the page, less the bases'.
    let rows = page
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|id| !specauth::spec::is_bundled_base(id))
        .count();
    assert!(
        readme[start..end].starts_with(&format!("{rows} providers are bundled")),
        "{rows} provider rows"
    );
}

#[test]
fn providers_filter_by_category_and_search() {
    let out = specauth(&["--json", "providers", "--category", "crm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 5, "{rows:?}");
    assert!(rows.iter().all(|r| {
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "crm")
    }));
    assert!(rows.iter().any(|r| r["id"] == "salesforce"));
    let out = specauth(&["--json", "providers", "--search", "GITLAB.COM"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["gitlab"]
    );
    let out = specauth(&["providers", "--category", "crmm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown category `crmm`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `specauth … | head -c 10`: the reader is gone before the first write, so every write to
    // stdout fails with a broken pipe. The command ends quietly, as `head` expects.
    let commands: [&[&str]; 8] = [
        &["providers", "--json"],
        &["providers"],
        &["providers", "--markdown"],
        &["test", "specs"],
        &["demo"],
        &["schema"],
        &["completions", "bash"],
        &["--help"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
        cmd.args(args).stdout(writer);
        for (k, _) in std::env::vars() {
            if k.starts_with("SPECAUTH_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd.output().expect("the binary runs");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}");
    }
}

/// Control characters, for terminal output: C0 (ESC, CR, LF…), DEL and C1.
fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

#[test]
fn a_providers_error_message_cannot_drive_the_terminal() {
    let server = ReplayServer::start().unwrap();
    server.push(json_reply(
        403,
        r#"{"message":"denied \u001b[31mred\u001b[0m\r\nspecauth: all good\u009b2J\u007f"}"#,
    ));
    let endpoint = format!("token={}/t", server.origin());
    let out = specauth(&[
        "token",
        "xee",
        "refresh_token",
        "--endpoint",
        &endpoint,
        "--set",
        "client_id=app",
        "--set",
        "client_secret=s3cret",
        "--set",
        "refresh_token=r",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert_eq!(controls(&err), Vec::<char>::new(), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("specauth: provider refused"), "{err:?}");
}

#[test]
fn text_from_specs_and_the_token_cache_is_printed_with_controls_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    std::fs::write(
        specs.join("evil.yaml"),
        "name: \"Evil \\x1b[2J Corp\"\nextends: oauth2\n\
         endpoints: { token: \"https://evil.example/token\" }\n\
         examples:\n  - name: \"wipes \\x1b[2J the screen\\r\"\n    grant: client_credentials\n    \
         inputs: { client_id: a }\n    reply: { json: { access_token: \"t\\x1b[31m\" } }\n    \
         expect: { token: { access_token: u } }\n",
    )
    .unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "extends: oauth2\nendpoints: { token: \"https://evil\\x1b[2J.example/\\u009b\" }\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(
        store.join("evil@default.json"),
        r#"{"provider":"evil\u001b[2J","profile":"default\r","obtained_at":1,"inputs":{},
            "token":{"access_token":"t","token_type":"Bearer"}}"#,
    )
    .unwrap();
    let specs = specs.to_str().unwrap();
    let runs: [&[&str]; 6] = [
        &["--specs", specs, "providers"],
        &["--specs", specs, "providers", "--markdown"],
        &["test", specs],
        &["check", specs, broken.to_str().unwrap()],
        &["--specs", specs, "demo", "evil"],
        &["--store", store.to_str().unwrap(), "tokens"],
    ];
    for args in runs {
        let out = specauth(args);
        let (o, e) = (stdout(&out), stderr(&out));
        assert_eq!(controls(&o), Vec::<char>::new(), "{args:?}: {o}");
        assert_eq!(controls(&e), Vec::<char>::new(), "{args:?}: {e}");
        assert!(!o.is_empty(), "{args:?} printed nothing: {e}");
    }
}

#[test]
fn a_spec_is_found_by_its_declared_id_and_yml_works_like_yaml() {
    let server = ReplayServer::start().unwrap();
    let o = server.origin();
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    // As `import` without `--id` leaves it: the file is named after one thing, the spec another.
    std::fs::write(
        specs.join("foo.yaml"),
        format!("id: bar\nname: Bar\nextends: oauth2\nendpoints: {{ token: \"{o}/token\" }}\n"),
    )
    .unwrap();
    std::fs::write(
        specs.join("baz.yml"),
        "name: Baz\nextends: oauth2\nendpoints: { token: \"https://baz.example/token\" }\n",
    )
    .unwrap();
    std::fs::write(
        specs.join("qux.yml"),
        "id: \"quux\"\nextends: oauth2\nendpoints: { token: \"https://quux.example/token\" }\n",
    )
    .unwrap();
    // Shadows the bundled `xee` by its declared id, as a file named xee.yaml would.
    std::fs::write(
        specs.join("my-xee.yaml"),
        "id: xee\nname: My Xee\nextends: oauth2\nendpoints: { token: \"https://xee.example/token\" }\n",
    )
    .unwrap();
    let specs = specs.to_str().unwrap();

    let out = specauth(&["--specs", specs, "providers", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for id in ["bar", "baz", "quux", "xee"] {
        assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{id}: {ids:?}");
    }
    let xee = list.as_array().unwrap().iter().find(|p| p["id"] == "xee");
    assert_eq!(xee.unwrap()["name"], "My Xee");

    // Every id `providers` shows can be used.
    for (id, url) in [
        ("bar", format!("{o}/token")),
        ("foo", format!("{o}/token")),
        ("baz", "https://baz.example/token".to_owned()),
        ("quux", "https://quux.example/token".to_owned()),
        ("xee", "https://xee.example/token".to_owned()),
    ] {
        let out = specauth(&[
            "--specs",
            specs,
            "render",
            id,
            "client_credentials",
            "--set",
            "client_id=a",
        ]);
        assert_eq!(out.status.code(), Some(0), "{id}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("POST {url}\n")),
            "{id}: {}",
            stdout(&out)
        );
    }

    // A token cached under the declared id is refreshed through the spec that declares it.
    let store = dir.path().join("store");
    specauth::session::TokenStore::new(&store)
        .save(&specauth::session::StoredToken {
            provider: "bar".into(),
            profile: "default".into(),
            token: specauth::Token {
                expires_at: Some(1),
                refresh_token: Some(specauth::Secret::new("r1")),
                ..specauth::Token::bearer(specauth::Secret::new("old"))
            },
            inputs: [("client_id".to_owned(), "app".to_owned())].into(),
            dpop_key: None,
            resources: Vec::new(),
            issuer: None,
            obtained_at: 1,
            endpoints: Default::default(),
            refresh_margin: 0,
            client_auth: Vec::new(),
        })
        .unwrap();
    server.push(json_reply(
        200,
        r#"{"access_token":"new","token_type":"bearer","expires_in":3600}"#,
    ));
    let out = specauth_env(
        &[
            "--specs",
            specs,
            "--store",
            store.to_str().unwrap(),
            "print-token",
            "bar",
        ],
        &[("SPECAUTH_CLIENT_SECRET", "s3cret")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "new\n");
    let got = &server.received()[0];
    assert_eq!(got.url, "/token");
    assert!(
        String::from_utf8_lossy(&got.body).contains("refresh_token=r1"),
        "{got:?}"
    );
}

#[test]
fn check_and_test_refuse_a_folder_without_specs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a spec").unwrap();
    let empty = dir.path().to_str().unwrap();
    for args in [
        ["check", empty].as_slice(),
        &["test", empty],
        &["check", "specs", empty],
        &["test", "specs/xee.yaml", empty],
    ] {
        let out = specauth(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            stderr(&out),
            format!("specauth: {empty}: no spec files (*.yaml or *.yml) in this folder\n"),
            "{args:?}"
        );
    }
    let out = specauth(&["--json", "check", empty]);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["kind"], "usage");
}

#[test]
fn endpoint_urls_with_a_user_name_or_password_are_refused() {
    let secret_inputs = [
        "--set",
        "client_id=a",
        "--set",
        "client_secret=s",
        "--set",
        "refresh_token=r",
    ];
    // Given with --endpoint: refused before any preview or log could show it.
    for command in [&["render"][..], &["-v", "token"]] {
        let mut args = command.to_vec();
        args.extend([
            "xee",
            "refresh_token",
            "--endpoint",
            "token=http://user:hunter2@127.0.0.1:9/t",
        ]);
        args.extend(secret_inputs);
        let out = specauth(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(
            stderr(&out),
            "specauth: `http://[redacted]@127.0.0.1:9/t` has a user name or password before its \
             host; endpoint URLs must not carry credentials\n",
            "{args:?}"
        );
    }

    // Written in a spec, as a URL or around a template: check names the place.
    let dir = tempfile::tempdir().unwrap();
    let literal = dir.path().join("literal.yaml");
    std::fs::write(
        &literal,
        "extends: oauth2\nendpoints:\n  token: https://user:hunter2@auth.example.com/token\n",
    )
    .unwrap();
    let templated = dir.path().join("templated.yaml");
    std::fs::write(
        &templated,
        "extends: oauth2\ninputs: { tenant: { required: true } }\n\
         endpoints:\n  token: \"https://user:hunter2@{{ tenant }}.example.com/token\"\n",
    )
    .unwrap();
    let out = specauth(&[
        "check",
        literal.to_str().unwrap(),
        templated.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(!text.contains("hunter2"), "{text}");
    for (file, line, url) in [
        (&literal, 3, "https://[redacted]@auth.example.com/token"),
        (
            &templated,
            4,
            "https://[redacted]@{{ tenant }}.example.com/token",
        ),
    ] {
        assert!(
            text.contains(&format!(
                "error {}:{line}:10: `{url}` has a user name or password before its host",
                file.display()
            )),
            "{text}"
        );
    }

    // Made by a template from an input: refused when rendered.
    let host = dir.path().join("host.yaml");
    std::fs::write(
        &host,
        "extends: oauth2\ninputs: { host: { required: true } }\n\
         endpoints:\n  token: \"https://{{ host }}/token\"\n",
    )
    .unwrap();
    let out = specauth(&[
        "render",
        host.to_str().unwrap(),
        "client_credentials",
        "--set",
        "client_id=a",
        "--set",
        "host=user:hunter2@auth.example.com",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        !err.contains("hunter2") && err.contains("has a user name or password"),
        "{err}"
    );
}

#[test]
fn a_private_key_from_a_file_signs_the_assertion_and_never_shows() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/rsa.pem");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pkj.yaml");
    std::fs::write(
        &spec,
        "extends: oauth2\nendpoints: { token: \"https://a.example/token\" }\nclient_auth: private_key_jwt\n",
    )
    .unwrap();
    let set_key = format!("private_key=@{key}");
    let out = specauth(&[
        "render",
        spec.to_str().unwrap(),
        "client_credentials",
        "--set",
        "client_id=app",
        "--set",
        &set_key,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        ),
        "{text}"
    );
    assert!(
        text.contains("client_assertion=eyJ") && text.contains(".[redacted]"),
        "{text}"
    );
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("MII"),
        "{text}"
    );
    // An unreadable file is an input error naming the input.
    let out = specauth(&[
        "--json",
        "render",
        spec.to_str().unwrap(),
        "client_credentials",
        "--set",
        "client_id=app",
        "--set",
        "private_key=@/nonexistent/key.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["code"], "private_key");
}
