//! Signed client assertions (RFC 7523 §2.2, OpenID Connect Core §9) against the oidc-provider
//! peer: `private_key_jwt` with RS256 and ES256 keys the peer made for this run, and
//! `client_secret_jwt` (HS256), through the library and the CLI; and the refusals: a key of no
//! client, an assertion sent twice (the same `jti`), an expired one, one for another audience.

use specauth::{Client, Error, Inputs, Spec};

use super::common::NormaliseToken as _;
use super::harness::{Sandbox, Timer, peer};
use super::{assert_exit, issuer, now, send};

const SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";

/// A spec for the peer's token endpoint with `client_auth` as given (YAML, one line).
fn spec_yaml(client_auth: &str) -> String {
    format!(
        "id: peer-jwt\nextends: oauth2\nendpoints: {{ token: \"{}/token\" }}\nclient_auth: {client_auth}\n",
        issuer()
    )
}

fn spec(client_auth: &str) -> Spec {
    Spec::from_yaml("peer-jwt.yaml", &spec_yaml(client_auth)).unwrap()
}

fn inputs(client_id: &str, key: &str) -> Inputs {
    Inputs::new()
        .with("client_id", client_id)
        .with("private_key", key)
        .with("scope", "api:read")
}

fn assert_issued(token: &specauth::Token) {
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, Some(300));
    assert_eq!(token.scope.as_deref(), Some(&["api:read".to_owned()][..]));
    let at = token.expires_at.unwrap();
    assert!((now() + 290..=now() + 300).contains(&at));
}

fn assert_invalid_client(result: Result<specauth::Token, Error>, what: &str) {
    match result {
        Err(Error::Provider(p)) => assert_eq!(
            (p.status, p.code.as_deref()),
            (401, Some("invalid_client")),
            "{what}: {p:?}\npeer log:\n{}",
            peer().log_tail()
        ),
        other => panic!("{what}: expected invalid_client, got {other:?}"),
    }
}

#[test]
fn private_key_jwt_rs256_and_es256_and_client_secret_jwt_are_accepted() {
    let _t = Timer::start("private_key_jwt_rs256_and_es256_and_client_secret_jwt_are_accepted");
    let keys = &peer().jwt_keys;
    let client = Client::new();
    let rs = spec("private_key_jwt");
    let token = client
        .token(
            &rs,
            "client_credentials",
            &inputs("jwt-rs256-client", &keys.rs256),
        )
        .unwrap();
    assert_issued(&token);
    let es = spec("{ method: private_key_jwt, alg: ES256 }");
    let token = client
        .token(
            &es,
            "client_credentials",
            &inputs("jwt-es256-client", &keys.es256),
        )
        .unwrap();
    assert_issued(&token);
    let hs = spec("client_secret_jwt");
    let token = client
        .token(
            &hs,
            "client_credentials",
            &Inputs::new()
                .with("client_id", "jwt-secret-client")
                .with("client_secret", SECRET)
                .with("scope", "api:read"),
        )
        .unwrap();
    assert_issued(&token);

    // The CLI, with the key from a file.
    let sb = Sandbox::new();
    let specs = sb.dir.path().join("jwt-specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(
        specs.join("peer-jwt.yaml"),
        spec_yaml("{ method: private_key_jwt, alg: ES256 }"),
    )
    .unwrap();
    let key_file = sb.dir.path().join("es256.pem");
    std::fs::write(&key_file, &keys.es256).unwrap();
    let key_arg = format!("private_key=@{}", key_file.display());
    let out = sb
        .spawn_command(sb.command_with_specs(
            &specs,
            &[
                "--json",
                "token",
                "peer-jwt",
                "client_credentials",
                "--set",
                "client_id=jwt-es256-client",
                "--set",
                &key_arg,
                "--set",
                "scope=api:read",
            ],
            &[],
        ))
        .finish();
    assert_exit(&out, 0, "CLI private_key_jwt ES256");
    let t: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], serde_json::json!(["api:read"]));
    assert!(!out.stdout.contains("PRIVATE KEY") && !out.stderr.contains("PRIVATE KEY"));
}

#[test]
fn a_wrong_key_a_replayed_an_expired_or_a_misdirected_assertion_is_invalid_client() {
    let _t = Timer::start(
        "a_wrong_key_a_replayed_an_expired_or_a_misdirected_assertion_is_invalid_client",
    );
    let keys = &peer().jwt_keys;
    let client = Client::new();
    let rs = spec("private_key_jwt");

    // A key no client is registered with.
    assert_invalid_client(
        client.token(
            &rs,
            "client_credentials",
            &inputs("jwt-rs256-client", &keys.stranger),
        ),
        "a stranger's key",
    );

    // The same assertion twice: the first is accepted, the second (same jti) refused.
    let request = rs
        .render(
            "client_credentials",
            &inputs("jwt-rs256-client", &keys.rs256),
        )
        .unwrap();
    let http = request.into_http();
    let again = http.clone();
    let first = send(http);
    assert_eq!(
        first.status(),
        200,
        "{}",
        String::from_utf8_lossy(first.body())
    );
    let second = send(again);
    assert_invalid_client(
        rs.normalise_token("client_credentials", &Inputs::new(), &second, now()),
        "a replayed assertion",
    );

    // Expired a minute ago, and made for another audience.
    let expired = spec("{ method: private_key_jwt, claims: { exp: \"{{ now() - 60 }}\" } }");
    assert_invalid_client(
        client.token(
            &expired,
            "client_credentials",
            &inputs("jwt-rs256-client", &keys.rs256),
        ),
        "an expired assertion",
    );
    let elsewhere =
        spec("{ method: private_key_jwt, audience: \"https://elsewhere.example/token\" }");
    assert_invalid_client(
        client.token(
            &elsewhere,
            "client_credentials",
            &inputs("jwt-rs256-client", &keys.rs256),
        ),
        "an assertion for another audience",
    );
    // client_secret_jwt with a wrong secret.
    let hs = spec("client_secret_jwt");
    assert_invalid_client(
        client.token(
            &hs,
            "client_credentials",
            &Inputs::new()
                .with("client_id", "jwt-secret-client")
                .with("client_secret", "not-the-secret-0123456789abcdef")
                .with("scope", "api:read"),
        ),
        "client_secret_jwt with a wrong secret",
    );
}
