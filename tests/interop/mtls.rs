//! Mutual TLS (RFC 8705) against the peer's https listener on 127.0.0.1: `tls_client_auth`
//! with a certificate from the test CA (its subject DN registered), `self_signed_tls_client_auth`
//! with a self-signed certificate in the client's JWKS, tokens bound to the certificate
//! (`cnf.x5t#S256`), and the refusals of a wrong or missing certificate. The certificates are
//! generated with rcgen for each test process (harness::Certificates).

use serde_json::{Value, json};
use specauth::transport::ClientCertificate;
use specauth::{Client, Error, Inputs, UreqTransport};

use super::harness::{Certificates, Pem, Sandbox, Timer, peer};
use super::{assert_exit, issuer, load, provider_error};

const PKI_ID: &str = "mtls-pki-client";
const SELF_SIGNED_ID: &str = "mtls-self-signed-client";

fn certs() -> &'static Certificates {
    &peer().mtls.certificates
}

fn origin() -> &'static str {
    &peer().mtls.origin
}

fn inputs(client_id: &str) -> Inputs {
    Inputs::new()
        .with("issuer", issuer())
        .with("mtls_origin", origin())
        .with("client_id", client_id)
        .with("scope", "api:read")
}

/// The library's client over a transport that trusts the test CA and presents `pem` (or no
/// certificate).
fn client(pem: Option<&Pem>) -> Client<UreqTransport> {
    let mut transport = UreqTransport::new()
        .with_root_certificates(certs().ca.as_bytes())
        .unwrap();
    if let Some(pem) = pem {
        transport = transport.with_client_certificate(
            ClientCertificate::from_pem(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap(),
        );
    }
    Client::with_transport(transport)
}

/// The claims of a JWT, unverified (the peer signed it; the test reads what it bound).
fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT access token");
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A token issued to `client_id` and bound to `pem`: in the reply (kept as the `cnf` extra) and
/// in the access token itself.
fn assert_bound(token: &specauth::Token, client_id: &str, pem: &Pem) {
    let cnf = json!({ "x5t#S256": pem.thumbprint() });
    assert_eq!(token.extra.get("cnf"), Some(&cnf), "{token:?}");
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, Some(300));
    assert_eq!(token.scope.as_deref(), Some(&["api:read".to_owned()][..]));
    let claims = jwt_claims(token.access_token.secret());
    assert_eq!(claims["cnf"], cnf, "{claims}");
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["aud"], "urn:specauth:mtls-api");
    assert_eq!(claims["iss"], issuer());
}

/// The certificate files of `pem` and the test CA in the sandbox, as `--set` arguments.
fn cert_args(sb: &Sandbox, name: &str, pem: &Pem) -> Vec<String> {
    let dir = sb.dir.path();
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let ca = dir.join("ca.pem");
    std::fs::write(&cert, &pem.cert).unwrap();
    std::fs::write(&key, &pem.key).unwrap();
    std::fs::write(&ca, &certs().ca).unwrap();
    vec![
        "--set".into(),
        format!("client_certificate=@{}", cert.display()),
        "--set".into(),
        format!("client_key=@{}", key.display()),
        "--set".into(),
        format!("tls_ca_certificates=@{}", ca.display()),
    ]
}

fn cli_token(sb: &Sandbox, provider: &str, client_id: &str, extra: &[String]) -> super::Out {
    let mut args: Vec<String> = [
        "--json",
        "token",
        provider,
        "client_credentials",
        "--set",
        &format!("client_id={client_id}"),
        "--set",
        "scope=api:read",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sb.run(&args, &[("SPECAUTH_MTLS_ORIGIN", origin())])
}

fn assert_cli_bound(out: &super::Out, client_id: &str, pem: &Pem) {
    assert_exit(out, 0, client_id);
    let t: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let cnf = json!({ "x5t#S256": pem.thumbprint() });
    assert_eq!(t["extra"], json!({ "cnf": cnf }), "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], json!(["api:read"]));
    assert_eq!(jwt_claims(t["access_token"].as_str().unwrap())["cnf"], cnf);
}

fn assert_invalid_client(result: Result<specauth::Token, Error>, what: &str) {
    match result {
        Err(Error::Provider(p)) => {
            assert_eq!(
                (p.status, p.code.as_deref(), p.message.as_deref()),
                (
                    401,
                    Some("invalid_client"),
                    Some("client authentication failed")
                ),
                "{what}"
            );
        }
        other => panic!("{what}: expected invalid_client, got {other:?}"),
    }
}

#[test]
fn tls_client_auth_issues_a_token_bound_to_the_certificate() {
    let _t = Timer::start("tls_client_auth_issues_a_token_bound_to_the_certificate");
    let spec = load("peer-mtls");
    let pem = &certs().pki;
    // specauth's thumbprint is the one computed here from rcgen's DER.
    let certificate = ClientCertificate::from_pem(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap();
    assert_eq!(certificate.thumbprint(), pem.thumbprint());

    // The request names the client and carries no secret.
    let request = spec.render("client_credentials", &inputs(PKI_ID)).unwrap();
    assert_eq!(
        request.http().uri().to_string(),
        format!("{}/token", origin())
    );
    assert!(request.http().headers().get("authorization").is_none());
    assert_eq!(
        request.http().body(),
        b"grant_type=client_credentials&scope=api%3Aread&client_id=mtls-pki-client"
    );

    // Library.
    let token = client(Some(pem))
        .token(&spec, "client_credentials", &inputs(PKI_ID))
        .unwrap();
    assert_bound(&token, PKI_ID, pem);

    // CLI: the certificate from files; `render` shows neither the key nor the certificate.
    let sb = Sandbox::new();
    let args = cert_args(&sb, "pki", pem);
    assert_cli_bound(&cli_token(&sb, "peer-mtls", PKI_ID, &args), PKI_ID, pem);
    let mut render = vec![
        "render",
        "peer-mtls",
        "client_credentials",
        "--set",
        "client_id=mtls-pki-client",
    ];
    render.extend(args.iter().map(String::as_str));
    let out = sb.run(&render, &[("SPECAUTH_MTLS_ORIGIN", origin())]);
    assert_exit(&out, 0, "render peer-mtls");
    assert!(
        out.stdout.contains("client_id=mtls-pki-client"),
        "{}",
        out.stdout
    );
    let key_body: String = pem
        .key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for leaked in ["PRIVATE KEY", "CERTIFICATE", &key_body[..20]] {
        assert!(!out.stdout.contains(leaked), "{leaked} in {}", out.stdout);
        assert!(!out.stderr.contains(leaked), "{leaked} in {}", out.stderr);
    }
}

#[test]
fn self_signed_tls_client_auth_issues_a_token_bound_to_the_certificate() {
    let _t = Timer::start("self_signed_tls_client_auth_issues_a_token_bound_to_the_certificate");
    let spec = load("peer-mtls-self-signed");
    let pem = &certs().self_signed;
    let token = client(Some(pem))
        .token(&spec, "client_credentials", &inputs(SELF_SIGNED_ID))
        .unwrap();
    assert_bound(&token, SELF_SIGNED_ID, pem);

    let sb = Sandbox::new();
    let args = cert_args(&sb, "self-signed", pem);
    assert_cli_bound(
        &cli_token(&sb, "peer-mtls-self-signed", SELF_SIGNED_ID, &args),
        SELF_SIGNED_ID,
        pem,
    );
}

#[test]
fn a_wrong_or_missing_certificate_is_invalid_client() {
    let _t = Timer::start("a_wrong_or_missing_certificate_is_invalid_client");
    let pki = load("peer-mtls");
    let self_signed = load("peer-mtls-self-signed");
    let c = certs();
    // Library: the subject matches but another CA issued it; a self-signed certificate for the
    // CA client; another key for the self-signed client; no certificate at all.
    for (spec, id, pem, what) in [
        (&pki, PKI_ID, Some(&c.rogue), "tls_client_auth, another CA"),
        (
            &pki,
            PKI_ID,
            Some(&c.self_signed),
            "tls_client_auth, self-signed",
        ),
        (&pki, PKI_ID, None, "tls_client_auth, no certificate"),
        (
            &self_signed,
            SELF_SIGNED_ID,
            Some(&c.other_self_signed),
            "self-signed, another key",
        ),
        (
            &self_signed,
            SELF_SIGNED_ID,
            Some(&c.pki),
            "self-signed, the CA's certificate",
        ),
        (
            &self_signed,
            SELF_SIGNED_ID,
            None,
            "self-signed, no certificate",
        ),
    ] {
        assert_invalid_client(
            client(pem).token(spec, "client_credentials", &inputs(id)),
            what,
        );
    }

    // CLI: the same refusal for a wrong certificate; without one it does not send at all.
    let sb = Sandbox::new();
    for (provider, id, pem) in [
        ("peer-mtls", PKI_ID, &c.rogue),
        (
            "peer-mtls-self-signed",
            SELF_SIGNED_ID,
            &c.other_self_signed,
        ),
    ] {
        let out = cli_token(&sb, provider, id, &cert_args(&sb, provider, pem));
        assert_exit(&out, 1, provider);
        assert_eq!(
            out.json_error(),
            provider_error(401, "invalid_client", "client authentication failed")
        );
    }
    let out = cli_token(&sb, "peer-mtls", PKI_ID, &[]);
    assert_exit(&out, 2, "peer-mtls without a certificate");
    let message = out.json_error()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            "input `client_certificate`: required by grant `client_credentials` (tls_client_auth) of `peer-mtls` but not set"
        ),
        "{message}"
    );
    // A key that is not the certificate's is refused before any connection, naming the input.
    let mut args = cert_args(&sb, "mixed", &c.pki);
    let other_key = sb.dir.path().join("other-key.pem");
    std::fs::write(&other_key, &c.rogue.key).unwrap();
    args[3] = format!("client_key=@{}", other_key.display());
    let out = cli_token(&sb, "peer-mtls", PKI_ID, &args);
    assert_exit(&out, 2, "peer-mtls with another key");
    assert_eq!(
        out.json_error()["error"]["message"],
        "input `client_key`: the key does not belong to the certificate in `client_certificate`"
    );
}

#[test]
fn import_with_a_certificate_uses_the_mtls_aliases_and_works() {
    let _t = Timer::start("import_with_a_certificate_uses_the_mtls_aliases_and_works");
    let sb = Sandbox::new();
    for (kind, method, id, pem) in [
        ("ca", "tls_client_auth", PKI_ID, &certs().pki),
        (
            "self-signed",
            "self_signed_tls_client_auth",
            SELF_SIGNED_ID,
            &certs().self_signed,
        ),
    ] {
        let path = sb.dir.path().join(format!("imported-{kind}.yaml"));
        let path_s = path.to_str().unwrap();
        let out = sb.run(
            &["import", issuer(), "--certificate", kind, "-o", path_s],
            &[],
        );
        assert_exit(&out, 0, "import --certificate");
        let imported = specauth::Loader::new().load_file(&path).unwrap();
        assert_eq!(
            imported
                .client_auth("client_credentials")
                .map(|m| m.as_str()),
            Some(method)
        );
        // The aliases for what the client sends; the plain issuer for the browser.
        let inputs = Inputs::new()
            .with("client_id", id)
            .with("token", "t")
            .with("state", "s");
        let uri = |kind: specauth::RequestKind| {
            imported
                .render(kind, &inputs)
                .unwrap()
                .http()
                .uri()
                .to_string()
        };
        assert_eq!(
            uri("client_credentials".into()),
            format!("{}/token", origin())
        );
        assert_eq!(
            uri(specauth::RequestKind::Revocation),
            format!("{}/token/revocation", origin())
        );
        assert_eq!(
            uri(specauth::RequestKind::Introspection),
            format!("{}/token/introspection", origin())
        );
        assert!(
            uri(specauth::RequestKind::Authorization).starts_with(&format!("{}/auth?", issuer()))
        );

        let token = client(Some(pem))
            .token(
                &imported,
                "client_credentials",
                &Inputs::new()
                    .with("client_id", id)
                    .with("scope", "api:read"),
            )
            .unwrap();
        assert_bound(&token, id, pem);
    }
    // Without --certificate the import keeps the plain endpoints and Basic.
    let path = sb.dir.path().join("plain.yaml");
    let out = sb.run(&["import", issuer(), "-o", path.to_str().unwrap()], &[]);
    assert_exit(&out, 0, "import");
    let plain = specauth::Loader::new().load_file(&path).unwrap();
    assert_eq!(
        plain.client_auth("client_credentials"),
        Some(specauth::spec::ClientAuthMethod::Basic)
    );
}
