//! Hardening: secret canaries through every command against a loopback server that echoes
//! what it received in every form, hostile replies, and limits. Each test names the item of the
//! hardening issue it guards.

mod common;

use std::process::{Command, Output};

use base64::Engine as _;
use common::NormaliseToken as _;
use specauth::testing::{ReceivedRequest, ReplayServer};
use specauth::{Error, Inputs, Spec};

const CLIENT_ID: &str = "canary-app";
/// Every character the issue names as breaking naive redaction: `/ + = & " < > % é`.
const SECRET: &str = "CANARYsec/+=&\"<>%é9";
const CODE: &str = "CANARYcode42";
const REFRESH: &str = "CANARYrefresh77";
const PASSWORD: &str = "CANARYpass-55";

fn form(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every form a canary may take in output: raw, form- and percent-encoded, JSON-escaped, and
/// inside the Basic credential (both encodings).
fn forbidden() -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = vec![
        b64(format!("{}:{}", form(CLIENT_ID), form(SECRET))),
        b64(format!("{CLIENT_ID}:{SECRET}")),
    ];
    for c in [SECRET, CODE, REFRESH, PASSWORD] {
        out.push(c.to_owned());
        out.push(form(c));
        out.push(form(c).replace('+', "%20"));
        let json = serde_json::to_string(c).unwrap();
        out.push(json.trim_matches('"').to_owned());
    }
    out.push("CANARY".to_owned());
    out
}

fn assert_clean(what: &str, text: &str) {
    for f in forbidden() {
        assert!(!text.contains(&f), "{what} leaks `{f}`:\n{text}");
    }
}

/// A provider that refuses every request, quoting it back: the Authorization header, the URL
/// and the body, raw.
fn echo_refusal(req: &ReceivedRequest) -> http::Response<Vec<u8>> {
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&req.body);
    let message = format!("rejected {auth} for {} with {body}", req.url);
    let json = serde_json::json!({"error": "invalid_client", "error_description": message, "error_uri": format!("https://x.example/?{body}")});
    common::json_reply(401, &json.to_string())
}

/// A provider whose 200 reply has the tokens under keys the spec does not read, the request
/// echoed beside them: an unusable reply whose excerpt must still hide it all.
fn echo_unusable(req: &ReceivedRequest) -> http::Response<Vec<u8>> {
    let body = String::from_utf8_lossy(&req.body);
    let json =
        serde_json::json!({"accessToken": "CANARYat1", "refreshToken": "CANARYrt1", "echo": body});
    common::json_reply(200, &json.to_string())
}

fn specauth(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_specauth"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SPECAUTH_") {
            cmd.env_remove(k);
        }
    }
    let store = tempfile::tempdir().unwrap();
    cmd.env("SPECAUTH_STORE", store.path().join("store"));
    cmd.env("SPECAUTH_CLIENT_SECRET", SECRET);
    cmd.output().expect("the binary runs")
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Items 1, 2, 3 and 6: no canary in any output, log or error of the commands that talk to
/// a provider, in text or `--json`, with `-v`.
#[test]
fn no_secret_canary_reaches_any_output() {
    for handler in [echo_refusal, echo_unusable] {
        let server = ReplayServer::with_handler(handler).unwrap();
        let url = format!("{}/token", server.origin());
        let set_url = format!("token_url={url}");
        let set_id = format!("client_id={CLIENT_ID}");
        let set_code = format!("code={CODE}");
        let set_refresh = format!("refresh_token={REFRESH}");
        let set_password = format!("password={PASSWORD}");
        let runs: Vec<Vec<&str>> = vec![
            vec!["token", "oauth2", "authorization_code", "--set", &set_code],
            vec!["token", "oauth2", "refresh_token", "--set", &set_refresh],
            vec![
                "token",
                "oauth2",
                "password",
                "--set",
                "username=u",
                "--set",
                &set_password,
            ],
            vec!["render", "oauth2", "refresh_token", "--set", &set_refresh],
        ];
        for run in runs {
            for flags in [&["-v"][..], &["-v", "--json"][..]] {
                let mut args: Vec<&str> = flags.to_vec();
                args.extend(&run);
                args.extend(["--set", &set_url, "--set", &set_id]);
                let out = specauth(&args);
                let text = all_output(&out);
                assert_clean(&args.join(" "), &text);
                if run[0] == "token" {
                    assert!(
                        matches!(out.status.code(), Some(1) | Some(3)),
                        "{args:?}: {text}"
                    );
                }
            }
        }
    }
}

/// The positive control: with `--reveal`, the same canaries do show, so the test above would
/// see a leak.
#[test]
fn reveal_shows_the_canaries() {
    let set_refresh = format!("refresh_token={REFRESH}");
    let out = specauth(&[
        "render",
        "oauth2",
        "refresh_token",
        "--reveal",
        "--set",
        "token_url=https://a.example/t",
        "--set",
        &format!("client_id={CLIENT_ID}"),
        "--set",
        &set_refresh,
    ]);
    let text = all_output(&out);
    assert!(text.contains(REFRESH), "{text}");
    assert!(text.contains(&form(REFRESH)), "{text}");
}

fn spec() -> Spec {
    Spec::from_yaml(
        "h.yaml",
        "extends: oauth2\nendpoints: { token: \"https://a.example/t\" }\n",
    )
    .unwrap()
}

/// Item 1: a server quoting the request's `Authorization: Basic …` in its error.
#[test]
fn an_echoed_basic_credential_is_redacted() {
    let s = spec();
    let inputs = Inputs::new()
        .with("client_id", CLIENT_ID)
        .with("client_secret", SECRET);
    let request = s.render("client_credentials", &inputs).unwrap();
    let auth = request.http().headers()["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = serde_json::json!({"error": "invalid_client", "error_description": format!("bad header {auth}")});
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &common::json_reply(401, &body.to_string()),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = &e else {
        panic!("{e}")
    };
    assert_eq!(p.message.as_deref(), Some("bad header Basic [redacted]"));
    assert_clean("error", &e.to_string());
}

/// Item 2: a secret echoed form-encoded inside a JSON error.
#[test]
fn an_encoded_secret_in_an_error_is_redacted() {
    let s = spec();
    let inputs = Inputs::new()
        .with("client_id", CLIENT_ID)
        .with("client_secret", SECRET);
    let body = serde_json::json!({"error": "invalid_client", "error_description": format!("client_secret={}", form(SECRET))});
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &common::json_reply(400, &body.to_string()),
            0,
        )
        .unwrap_err();
    assert_clean("error", &e.to_string());
    assert!(e.to_string().contains("[redacted]"), "{e}");
}

/// Item 3: tokens under the keys the spec reads them from (not the standard names) in an
/// unusable reply's excerpt.
#[test]
fn tokens_under_the_specs_own_keys_are_redacted_in_excerpts() {
    let s = Spec::from_yaml(
        "h.yaml",
        "extends: oauth2\nendpoints: { token: \"https://a.example/t\" }\ntoken:\n  access_token: $.Token\n  refresh_token: $.Renewal\n",
    )
    .unwrap();
    // XML whose root holds the tokens, but no access token where the spec looks: the
    // reply is unusable; its excerpt shows the shape, not the values.
    let reply = common::reply(
        200,
        "application/xml",
        "<R><Token></Token><Renewal>CANARYrenew</Renewal><Other>CANARYat</Other></R>",
    );
    let e = s
        .normalise_token("client_credentials", &Inputs::new(), &reply, 0)
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("<Renewal>[redacted]</Renewal>"), "{text}");
    let reply = common::json_reply(200, r#"{"accessToken":"CANARYx","refreshToken":"CANARYy"}"#);
    let e = s
        .normalise_token("client_credentials", &Inputs::new(), &reply, 0)
        .unwrap_err();
    assert!(!e.to_string().contains("CANARYx"), "{e}");
    assert!(!e.to_string().contains("CANARYy"), "{e}");
}

/// Item 12: a request larger than 1 MiB is refused before it is all built.
#[test]
fn a_huge_rendered_request_is_refused() {
    let big = "x".repeat(300_000);
    let s = Spec::from_yaml(
        "h.yaml",
        "extends: oauth2\nendpoints: { token: \"https://a.example/t\" }\nrequest:\n  fields:\n    a: \"{{ scope }}\"\n    b: \"{{ scope }}\"\n    c: \"{{ scope }}\"\n    d: \"{{ scope }}\"\n",
    )
    .unwrap();
    let inputs = Inputs::new().with("client_id", "a").with("scope", big);
    let e = s.render("client_credentials", &inputs).unwrap_err();
    assert!(
        e.to_string()
            .contains("larger than the limit of 1048576 bytes"),
        "{e}"
    );
}

/// Item 17: an access token with a line break (header injection in
/// `curl -H "Authorization: Bearer $(specauth print-token …)"`) is refused at normalise time.
#[test]
fn a_token_that_is_not_a_token_string_is_refused() {
    let s = spec();
    for bad in [
        r#"{"access_token":"abc\r\nX-Evil: 1"}"#,
        r#"{"access_token":"a b"}"#,
        r#"{"access_token":"t","token_type":"Bearer\nX: y"}"#,
    ] {
        let e = s
            .normalise_token(
                "client_credentials",
                &Inputs::new(),
                &common::json_reply(200, bad),
                0,
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("characters a token cannot have"),
            "{bad}: {e}"
        );
    }
    // Real tokens with `|` (Amazon's `Atza|…`) stay valid.
    let ok = s.normalise_token(
        "client_credentials",
        &Inputs::new(),
        &common::json_reply(200, r#"{"access_token":"Atza|IQEB-x.y_z~+/="}"#),
        0,
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// Item 7: an input in an endpoint URL cannot move the request to another host, encoded or
/// declared `verbatim`; values from every source go through the same rendering.
#[test]
fn an_input_cannot_change_the_endpoint_host() {
    let yaml = |verbatim: bool| {
        format!(
            "extends: oauth2\nendpoints: {{ token: \"https://{{{{ subdomain }}}}.provider.example/oauth/token\" }}\ninputs:\n  subdomain: {{ required: true, verbatim: {verbatim} }}\n"
        )
    };
    for verbatim in [false, true] {
        let s = Spec::from_yaml("h.yaml", &yaml(verbatim)).unwrap();
        let inputs = Inputs::new()
            .with("client_id", "a")
            .with("client_secret", SECRET);
        for evil in [
            "evil.example/x?",
            "evil.example#",
            "u@evil.example/",
            "evil.example:443/",
        ] {
            let e = s
                .render(
                    "client_credentials",
                    &inputs.clone().with("subdomain", evil),
                )
                .unwrap_err();
            assert_eq!(e.input_name(), Some("subdomain"), "{evil}: {e}");
            assert_clean("error", &e.to_string());
        }
        let ok = s
            .render(
                "client_credentials",
                &inputs.clone().with("subdomain", "acme-eu"),
            )
            .unwrap();
        assert_eq!(
            ok.http().uri(),
            "https://acme-eu.provider.example/oauth/token"
        );
    }
    // A path segment is encoded, so it stays one segment.
    let s = Spec::from_yaml(
        "h.yaml",
        "extends: oauth2\nendpoints: { token: \"https://id.example/realms/{{ realm }}/token\" }\ninputs:\n  realm: { required: true }\n",
    )
    .unwrap();
    let req = s
        .render(
            "client_credentials",
            &Inputs::new()
                .with("client_id", "a")
                .with("realm", "../admin?x=1"),
        )
        .unwrap();
    assert_eq!(
        req.http().uri(),
        "https://id.example/realms/..%2Fadmin%3Fx%3D1/token"
    );
}

/// Format issue items 1 and 2: a form body under a lying `text/html` is decoded, and a
/// plain-text refusal is the provider's refusal (exit 1) with its sentence as the message,
/// scrubbed and bounded; an HTML page stays an unusable reply (exit 3).
#[test]
fn lying_content_types_and_plain_text_refusals() {
    let s = spec();
    let inputs = Inputs::new()
        .with("client_id", CLIENT_ID)
        .with("client_secret", SECRET);
    let t = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &common::reply(
                200,
                "text/html",
                "access_token=abc&token_type=bearer&expires_in=60",
            ),
            1000,
        )
        .unwrap();
    assert_eq!((t.access_token.secret(), t.expires_at), ("abc", Some(1060)));
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &common::reply(
                401,
                "text/plain",
                &format!("Invalid client credentials for {SECRET}\n"),
            ),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = &e else {
        panic!("{e}")
    };
    assert_eq!(p.status, 401);
    assert_eq!(
        p.message.as_deref(),
        Some("Invalid client credentials for [redacted]")
    );
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &common::reply(502, "text/html", "<html><body>Bad gateway</body></html>"),
            0,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Reply { status: 502, .. }), "{e}");
}

/// A revocation answered `200 OK` in plain text is a revocation (RFC 7009 §2.2: any 2xx).
#[test]
fn any_2xx_revocation_reply_is_success() {
    let s = Spec::from_yaml(
        "h.yaml",
        "extends: oauth2\nendpoints: { token: \"https://a.example/t\", revocation: \"https://a.example/r\" }\n",
    )
    .unwrap();
    for body in ["OK", "", "<html><body>done</body></html>"] {
        let outcome = s
            .normalise(
                specauth::RequestKind::Revocation,
                &Inputs::new(),
                &common::reply(200, "text/plain", body),
                0,
            )
            .unwrap();
        assert_eq!(outcome, specauth::Outcome::Revoked, "{body:?}");
    }
}

/// A hostile server on a raw socket: `serve` gets each accepted connection once.
fn hostile(serve: impl Fn(std::net::TcpStream) + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // One connection is all a test makes; the thread ends with it.
        if let Ok((stream, _)) = listener.accept() {
            let rest = stream.try_clone();
            serve(stream);
            // Read what the client sent and `serve` did not, until it hangs up: closing a
            // socket with unread data resets the connection, and the client would see "peer
            // disconnected" instead of the limit the test is about.
            if let Ok(mut rest) = rest {
                let _ = rest.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let _ = std::io::copy(&mut rest, &mut std::io::sink());
            }
        }
    });
    origin
}

fn quick_transport() -> specauth::UreqTransport {
    specauth::UreqTransport::with_config(&specauth::transport::TransportConfig {
        timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    })
}

fn exchange_against(origin: &str) -> Result<specauth::Token, Error> {
    let spec = spec().with_origin(origin).unwrap();
    specauth::Client::with_transport(quick_transport()).token(
        &spec,
        "client_credentials",
        &Inputs::new()
            .with("client_id", "a")
            .with("client_secret", SECRET),
    )
}

/// A server that drips one byte at a time forever is cut off by the total timeout; one
/// that sends an endless body, or a small gzip body that inflates past the cap, by the cap.
#[test]
fn drips_endless_bodies_and_bombs_are_bounded() {
    use std::io::{Read as _, Write as _};
    let drip = hostile(|mut s| {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        );
        for _ in 0..600 {
            if s.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let start = std::time::Instant::now();
    let e = exchange_against(&drip).unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == specauth::error::TransportErrorKind::Timeout),
        "{e}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(10));

    let endless = hostile(|mut s| {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 65536, "a".repeat(65536));
        for _ in 0..64 {
            if s.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    let e = exchange_against(&endless).unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == specauth::error::TransportErrorKind::BodyTooLarge),
        "{e}"
    );

    // Compressed before the server starts: done per connection, on a loaded machine it could
    // outlast the client's timeout and turn the test into one about timeouts.
    let body = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 50 << 20]).unwrap();
        std::sync::Arc::new(gz.finish().unwrap())
    };
    let bomb = hostile(move |mut s| {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = body.clone();
        let _ = s.write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
        );
        let _ = s.write_all(&body);
    });
    let e = exchange_against(&bomb).unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == specauth::error::TransportErrorKind::BodyTooLarge),
        "{e}"
    );
}

/// Keys are secrets too: no line of a private key, and no signature of the assertion made
/// with it, reaches any output of `token` (with a provider quoting the request back) or
/// `render`, in text or `--json`; a key that cannot be used is an error naming the input, not
/// quoting it.
#[test]
fn no_key_material_reaches_any_output() {
    const KEY: &str = include_str!("keys/rsa.pem");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, KEY).unwrap();
    let bad_key_file = dir.path().join("bad.pem");
    std::fs::write(
        &bad_key_file,
        "-----BEGIN PRIVATE KEY-----\nCANARYkeyMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    // Every 24-character run of the key's base64 lines: any of them in output is a leak.
    let key_runs: Vec<String> = KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| {
            l.as_bytes()
                .chunks(24)
                .filter(|c| c.len() == 24)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let server = ReplayServer::with_handler(echo_refusal).unwrap();
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    std::fs::write(
        specs.join("signed.yaml"),
        format!(
            "id: signed\nextends: oauth2\nendpoints: {{ token: \"{}/token\" }}\nclient_auth: private_key_jwt\n",
            server.origin()
        ),
    )
    .unwrap();
    let specs_arg = specs.to_str().unwrap();
    let good = format!("private_key=@{}", key_file.display());
    let bad = format!("private_key=@{}", bad_key_file.display());
    let set_id = format!("client_id={CLIENT_ID}");
    for key in [&good, &bad] {
        for command in ["token", "render"] {
            for flags in [&["-v"][..], &["-v", "--json"][..]] {
                let mut args: Vec<&str> = flags.to_vec();
                args.extend([
                    "--specs",
                    specs_arg,
                    command,
                    "signed",
                    "client_credentials",
                ]);
                args.extend(["--set", &set_id, "--set", key.as_str()]);
                let out = specauth(&args);
                let text = all_output(&out);
                assert_clean(&args.join(" "), &text);
                for run in &key_runs {
                    assert!(
                        !text.contains(run.as_str()),
                        "{args:?} leaks key material `{run}`:\n{text}"
                    );
                }
                // An assertion's signature is the part that makes it a credential.
                for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                {
                    let parts: Vec<&str> = word.split('.').collect();
                    if parts.len() == 3 && parts[0].starts_with("eyJ") {
                        assert!(
                            parts[2].len() < 16,
                            "{args:?} shows a signed assertion whole: {word}\n{text}"
                        );
                    }
                }
                if key == &bad {
                    assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
                    assert!(text.contains("private_key"), "{args:?}: {text}");
                }
            }
        }
    }
}
