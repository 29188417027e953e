//! The interpreter through its public API, one capability of the spec format at a time: exact
//! requests in, exact normalised values out. No network: transports here are closures.

mod common;

use common::NormaliseToken as _;
use specauth::{Client, Error, Inputs, Spec, TransportError};

fn spec(yaml: &str) -> Spec {
    Spec::from_yaml("test.yaml", yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn reply(status: u16, content_type: &str, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn body(req: &specauth::TokenRequest) -> String {
    String::from_utf8(req.http().body().clone()).unwrap()
}

fn header<'a>(req: &'a specauth::TokenRequest, name: &str) -> Option<&'a str> {
    req.http().headers().get(name).map(|v| v.to_str().unwrap())
}

const BASE: &str = "extends: oauth2\nendpoints: { token: \"https://auth.example.com/token\" }\n";

fn with(extra: &str) -> Spec {
    spec(&format!("{BASE}{extra}"))
}

#[test]
fn basic_auth_form_encodes_id_and_secret_per_rfc6749() {
    let s = with("");
    let inputs = Inputs::new()
        .with("client_id", "a b")
        .with("client_secret", "p:w/");
    let req = s.render("client_credentials", &inputs).unwrap();
    // base64("a+b:p%3Aw%2F")
    assert_eq!(
        header(&req, "authorization"),
        Some("Basic YStiOnAlM0F3JTJG")
    );
    assert_eq!(body(&req), "grant_type=client_credentials");
}

#[test]
fn basic_raw_encoding_when_the_provider_documents_it() {
    let s = with("client_auth: { method: basic, basic_encoding: raw }\n");
    let inputs = Inputs::new()
        .with("client_id", "a b")
        .with("client_secret", "p:w");
    let req = s.render("client_credentials", &inputs).unwrap();
    assert_eq!(header(&req, "authorization"), Some("Basic YSBiOnA6dw==")); // base64("a b:p:w")
}

#[test]
fn a_public_client_under_basic_sends_its_id_in_the_body() {
    let s = with("");
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("code", "c")
        .with("code_verifier", "v");
    let req = s.render("authorization_code", &inputs).unwrap();
    assert_eq!(header(&req, "authorization"), None);
    assert_eq!(
        body(&req),
        "grant_type=authorization_code&code=c&code_verifier=v&client_id=app"
    );
}

#[test]
fn post_both_none_and_renamed_credential_keys() {
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s");
    let post = with("client_auth: post\n")
        .render("client_credentials", &inputs)
        .unwrap();
    assert_eq!(
        body(&post),
        "grant_type=client_credentials&client_id=app&client_secret=s"
    );
    assert_eq!(header(&post, "authorization"), None);

    let both = with("client_auth: both\n")
        .render("client_credentials", &inputs)
        .unwrap();
    assert_eq!(header(&both, "authorization"), Some("Basic YXBwOnM="));
    assert_eq!(
        body(&both),
        "grant_type=client_credentials&client_id=app&client_secret=s"
    );

    let none = with("client_auth: none\n")
        .render("client_credentials", &inputs)
        .unwrap();
    assert_eq!(header(&none, "authorization"), None);
    assert_eq!(body(&none), "grant_type=client_credentials");

    let renamed =
        with("client_auth: { method: post, id_field: client_key, secret_field: app_secret }\n")
            .render("client_credentials", &inputs)
            .unwrap();
    assert_eq!(
        body(&renamed),
        "grant_type=client_credentials&client_key=app&app_secret=s"
    );
}

#[test]
fn optional_fields_are_omitted_never_sent_empty() {
    let s = with("");
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("refresh_token", "r");
    let req = s.render("refresh_token", &inputs).unwrap();
    assert_eq!(
        body(&req),
        "grant_type=refresh_token&refresh_token=r&client_id=app"
    );
    let req = s
        .render("refresh_token", &inputs.clone().with("scope", "a b"))
        .unwrap();
    assert_eq!(
        body(&req),
        "grant_type=refresh_token&refresh_token=r&scope=a+b&client_id=app"
    );
}

#[test]
fn json_and_xml_bodies_escape_values_so_inputs_cannot_break_out() {
    let s = with("request: { body: json }\nclient_auth: none\n");
    let inputs = Inputs::new()
        .with("username", "u\",\"admin\":\"1")
        .with("password", "p");
    let req = s.render("password", &inputs).unwrap();
    let v: serde_json::Value = serde_json::from_slice(req.http().body()).unwrap();
    assert_eq!(v["username"], "u\",\"admin\":\"1");
    assert_eq!(v.as_object().unwrap().len(), 3);
    assert_eq!(header(&req, "content-type"), Some("application/json"));

    let s = with("request: { body: xml, xml_root: Req }\nclient_auth: none\n");
    let inputs = Inputs::new()
        .with("username", "</username><admin>1</admin>")
        .with("password", "p&q");
    let req = s.render("password", &inputs).unwrap();
    assert_eq!(
        body(&req),
        "<Req><grant_type>password</grant_type><username>&lt;/username&gt;&lt;admin&gt;1&lt;/admin&gt;</username><password>p&amp;q</password></Req>"
    );
    assert_eq!(header(&req, "content-type"), Some("application/xml"));
}

#[test]
fn get_with_query_parameters_and_redacted_query_preview() {
    let s = spec(
        "extends: oauth2\nendpoints: { token: \"https://graph.example.com/oauth/access_token?v=2\" }\n\
         request: { method: GET, body: query }\nclient_auth: post\n",
    );
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s3cret")
        .with("code", "c0de");
    let req = s.render("authorization_code", &inputs).unwrap();
    assert_eq!(req.http().method(), "GET");
    assert_eq!(
        req.http().uri(),
        "https://graph.example.com/oauth/access_token?v=2&grant_type=authorization_code&code=c0de&client_id=app&client_secret=s3cret"
    );
    assert!(req.http().body().is_empty());
    assert_eq!(header(&req, "content-type"), None);
    assert_eq!(
        req.redacted().lines().next().unwrap(),
        "GET https://graph.example.com/oauth/access_token?v=2&grant_type=authorization_code&code=[redacted]&client_id=app&client_secret=[redacted]"
    );
}

#[test]
fn hosts_from_inputs_and_jinja_templates_with_filters() {
    let s = spec(
        "extends: oauth2\nendpoints: { token: \"https://{{ shop }}.shops.example/admin/oauth/access_token\" }\n\
         inputs: { shop: { required: true } }\n\
         request: { headers: { X-Tenant: \"{{ shop | upper }}\", X-Id: \"{{ client_id | b64encode }}\" } }\n",
    );
    let inputs = Inputs::new().with("shop", "blue").with("client_id", "app");
    let req = s.render("client_credentials", &inputs).unwrap();
    assert_eq!(
        req.http().uri(),
        "https://blue.shops.example/admin/oauth/access_token"
    );
    assert_eq!(header(&req, "x-tenant"), Some("BLUE"));
    assert_eq!(header(&req, "x-id"), Some("YXBw"));
    let err = s
        .render(
            "client_credentials",
            &Inputs::new().with("client_id", "app"),
        )
        .unwrap_err();
    assert_eq!(err.input_name(), Some("shop"), "{err}");
}

#[test]
fn input_errors_name_the_input() {
    let s = with("inputs: { region: { enum: [EU, US], default: EU } }\n");
    let e = s.render("client_credentials", &Inputs::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input `client_id`: required by grant `client_credentials` of `test` but not set (The client identifier issued at registration)"
    );
    // A missing input is structured: its name, description and allowed values, for the caller
    // to turn into advice (the CLI names its flags; the library does not).
    assert!(
        matches!(&e, Error::MissingInput { name, description: Some(d), allowed: None, .. }
            if name == "client_id" && d.starts_with("The client identifier")),
        "{e:?}"
    );
    let e = s
        .render(
            "client_credentials",
            &Inputs::new().with("client_id", "a").with("region", "MARS"),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "input `region`: `MARS` is not one of EU, US");
    let e = s
        .render(
            "client_credentials",
            &Inputs::new().with("client_id", "a").with("regoin", "EU"),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("input `regoin`: not declared by spec `test`"),
        "{e}"
    );
    // A value can't break out of its field: the form encoder escapes it.
    let req = s
        .render(
            "client_credentials",
            &Inputs::new().with("client_id", "a\n&scope=admin"),
        )
        .unwrap();
    assert_eq!(
        body(&req),
        "grant_type=client_credentials&client_id=a%0A%26scope%3Dadmin"
    );
}

#[test]
fn a_header_value_with_a_newline_is_refused() {
    let s = with("request: { headers: { X-Region: \"{{ scope }}\" } }\n");
    let inputs = Inputs::new()
        .with("client_id", "a")
        .with("scope", "x\r\nEvil: 1");
    let e = s.render("client_credentials", &inputs).unwrap_err();
    // The error names the input the value came from, and says which header it broke.
    assert_eq!(e.input_name(), Some("scope"), "{e}");
    assert!(e.to_string().contains("header `X-Region`"), "{e}");
}

#[test]
fn secrets_never_reach_previews_or_debug() {
    let s = with("client_auth: post\n");
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "TopSecret9")
        .with("username", "u")
        .with("password", "Hunter2Pw");
    let req = s.render("password", &inputs).unwrap();
    for text in [
        req.redacted().to_owned(),
        format!("{req:?}"),
        format!("{inputs:?}"),
    ] {
        assert!(
            !text.contains("TopSecret9") && !text.contains("Hunter2Pw"),
            "{text}"
        );
    }
    assert!(req.revealed().contains("client_secret=TopSecret9"));
}

#[test]
fn a_runaway_template_runs_out_of_fuel_instead_of_hanging() {
    let s = with(
        "request: { headers: { X-Loop: \"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\" } }\n",
    );
    let e = s
        .render("client_credentials", &Inputs::new().with("client_id", "a"))
        .unwrap_err();
    assert!(matches!(&e, Error::Render { .. }), "{e}");
    assert!(e.to_string().contains("fuel"), "{e}");
}

#[test]
fn body_encoding_chosen_by_an_input() {
    let s = with(
        "inputs: { format: { enum: [json, xml], default: json } }\n\
         request: { body: \"{{ format }}\", xml_root: R }\nclient_auth: none\n",
    );
    let json = s.render("client_credentials", &Inputs::new()).unwrap();
    assert_eq!(body(&json), r#"{"grant_type":"client_credentials"}"#);
    let xml = s
        .render("client_credentials", &Inputs::new().with("format", "xml"))
        .unwrap();
    assert_eq!(
        body(&xml),
        "<R><grant_type>client_credentials</grant_type></R>"
    );
}

// ---- normalising replies ----

fn token(s: &Spec, grant: &str, inputs: &Inputs, r: http::Response<Vec<u8>>) -> specauth::Token {
    s.normalise_token(grant, inputs, &r, 1_000_000)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn expiry_in_every_form() {
    let s = with("token: { expires_at: $.expires_at }\n");
    let none = Inputs::new();
    let t = token(
        &s,
        "client_credentials",
        &none,
        reply(
            200,
            "application/json",
            r#"{"access_token":"a","expires_in":"3600"}"#,
        ),
    );
    assert_eq!((t.expires_in, t.expires_at), (Some(3600), Some(1_003_600)));
    let t = token(
        &s,
        "client_credentials",
        &none,
        reply(
            200,
            "application/json",
            r#"{"access_token":"a","expires_at":1000600}"#,
        ),
    );
    assert_eq!((t.expires_in, t.expires_at), (Some(600), Some(1_000_600)));
    let t = s
        .normalise_token(
            "client_credentials",
            &none,
            &reply(
                200,
                "application/json",
                r#"{"access_token":"a","expires_at":"1700000600000"}"#,
            ),
            1_700_000_000,
        )
        .unwrap();
    assert_eq!(
        (t.expires_in, t.expires_at),
        (Some(600), Some(1_700_000_600)),
        "milliseconds as a string"
    );
    let t = token(
        &s,
        "client_credentials",
        &none,
        reply(
            200,
            "application/json",
            r#"{"access_token":"a","expires_at":"1970-01-12T13:56:40Z"}"#,
        ),
    );
    assert_eq!(t.expires_at, Some(1_000_600), "ISO 8601");
    let t = token(
        &s,
        "client_credentials",
        &none,
        reply(200, "application/json", r#"{"access_token":"a"}"#),
    );
    assert_eq!((t.expires_in, t.expires_at), (None, None));

    let ms = with("token: { expires_in_unit: milliseconds }\n");
    let t = token(
        &ms,
        "client_credentials",
        &none,
        reply(
            200,
            "application/json",
            r#"{"access_token":"a","expires_in":7200000}"#,
        ),
    );
    assert_eq!(t.expires_in, Some(7200));

    let dflt = with("token: { default_expires_in: 21600 }\n");
    let t = token(
        &dflt,
        "client_credentials",
        &none,
        reply(200, "application/json", r#"{"access_token":"a"}"#),
    );
    assert_eq!((t.expires_in, t.expires_at), (Some(21600), Some(1_021_600)));

    let e = s
        .normalise_token(
            "client_credentials",
            &none,
            &reply(
                200,
                "application/json",
                r#"{"access_token":"a","expires_in":"soon"}"#,
            ),
            0,
        )
        .unwrap_err();
    assert_eq!(e.kind(), "reply");
    assert!(
        e.to_string()
            .contains("expires_in `\"soon\"` is not a number of seconds"),
        "{e}"
    );
}

#[test]
fn token_type_scope_id_token_extras_and_nested_paths() {
    let s = with(
        "token:\n  access_token: [$.data.token, $.access_token]\n  scope_separator: \",\"\n  extras:\n    instance_url: $.instance_url\n    athlete: $.athlete\n",
    );
    let t = token(
        &s,
        "client_credentials",
        &Inputs::new(),
        reply(
            200,
            "application/json",
            r#"{"data":{"token":"nested"},"token_type":"BEARER","scope":"read,write","id_token":"eyJ","instance_url":"https://x.example","athlete":{"id":7}}"#,
        ),
    );
    assert_eq!(t.access_token.secret(), "nested");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.scope, Some(vec!["read".to_owned(), "write".to_owned()]));
    assert_eq!(t.id_token.as_ref().map(|s| s.secret()), Some("eyJ"));
    assert_eq!(t.extra["instance_url"], "https://x.example");
    assert_eq!(t.extra["athlete"], serde_json::json!({"id": 7}));
    let dbg = format!("{t:?}");
    assert!(!dbg.contains("nested") && !dbg.contains("eyJ"), "{dbg}");
}

#[test]
fn a_refresh_reply_without_refresh_token_keeps_the_old_one_and_a_rotated_one_replaces_it() {
    let s = with("");
    let inputs = Inputs::new()
        .with("client_id", "a")
        .with("refresh_token", "old");
    let t = token(
        &s,
        "refresh_token",
        &inputs,
        reply(200, "application/json", r#"{"access_token":"x"}"#),
    );
    assert_eq!(t.refresh_token.unwrap().secret(), "old");
    let t = token(
        &s,
        "refresh_token",
        &inputs,
        reply(
            200,
            "application/json",
            r#"{"access_token":"x","refresh_token":"new"}"#,
        ),
    );
    assert_eq!(t.refresh_token.unwrap().secret(), "new");
}

#[test]
fn errors_inside_a_200_reply_and_numeric_codes() {
    let s = with(
        "errors:\n  when: [{ path: $.ok, equals: false }, { path: $.error, exists: true }]\n  code: [$.error, $.code]\n  message: [$.error_description, $.msg]\n",
    );
    let none = Inputs::new();
    let e = s
        .normalise_token(
            "client_credentials",
            &none,
            &reply(
                200,
                "application/json",
                r#"{"ok":false,"error":"invalid_code"}"#,
            ),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = e else { panic!("{e}") };
    assert_eq!((p.status, p.code.as_deref()), (200, Some("invalid_code")));

    // GitHub-style: form-encoded error in a 200 reply.
    let e = s
        .normalise_token(
            "client_credentials",
            &none,
            &reply(
                200,
                "application/x-www-form-urlencoded",
                "error=bad_verification_code&error_description=The+code+is+wrong",
            ),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = e else { panic!("{e}") };
    assert_eq!(p.code.as_deref(), Some("bad_verification_code"));
    assert_eq!(p.message.as_deref(), Some("The code is wrong"));

    let e = s
        .normalise_token(
            "client_credentials",
            &none,
            &reply(401, "application/json", r#"{"code":40101,"msg":"bad"}"#),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = e else { panic!("{e}") };
    assert_eq!(
        (p.status, p.code.as_deref(), p.message.as_deref()),
        (401, Some("40101"), Some("bad"))
    );

    let ok = s.normalise_token(
        "client_credentials",
        &none,
        &reply(200, "application/json", r#"{"ok":true,"access_token":"t"}"#),
        0,
    );
    assert!(ok.is_ok());
}

#[test]
fn unusable_replies_name_the_status_and_redact_the_excerpt() {
    let s = with("");
    let inputs = Inputs::new()
        .with("client_id", "a")
        .with("refresh_token", "MyRefreshTok");
    let e = s
        .normalise_token(
            "refresh_token",
            &inputs,
            &reply(
                200,
                "application/json",
                r#"{"token_type":"bearer","refresh_token":"MyRefreshTok","x":1}"#,
            ),
            0,
        )
        .unwrap_err();
    let Error::Reply {
        status,
        problem,
        excerpt,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(*status, 200);
    assert_eq!(
        problem,
        "a 200 reply without an access token at $.access_token"
    );
    assert!(!excerpt.contains("MyRefreshTok"), "{excerpt}");
    assert!(!e.to_string().contains("MyRefreshTok"));

    let e = s
        .normalise_token(
            "refresh_token",
            &inputs,
            &reply(500, "application/json", "{not json"),
            0,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unusable reply (HTTP 500): the body is not valid JSON; the reply begins: {not json"
    );
}

#[test]
fn a_closure_transport_sees_the_exact_request() {
    let s = with("");
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s")
        .with("code", "abc");
    let client =
        Client::with_transport(|req: http::Request<Vec<u8>>| -> Result<_, TransportError> {
            assert_eq!(req.method(), "POST");
            assert_eq!(req.uri(), "https://auth.example.com/token");
            assert_eq!(req.headers()["authorization"], "Basic YXBwOnM=");
            assert_eq!(req.headers()["accept"], "application/json");
            assert_eq!(req.body(), b"grant_type=authorization_code&code=abc");
            Ok(reply(
                200,
                "application/json",
                r#"{"access_token":"t","token_type":"bearer","expires_in":60}"#,
            ))
        });
    let t = client.token(&s, "authorization_code", &inputs).unwrap();
    assert_eq!(t.access_token.secret(), "t");
    assert_eq!(t.expires_in, Some(60));
}

#[test]
fn unknown_grants_and_endpoints_are_usage_errors() {
    let s = with("");
    let e = s.render("implicit", &Inputs::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec `test` has no grant `implicit` (it has: authorization_code, refresh_token, password, client_credentials, device_code)"
    );
    let e = with("")
        .with_endpoint("revoke", "https://x.example/r")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec `test` has no endpoint `revoke` (it has: token)"
    );
    let e = with("")
        .with_endpoint("token", "http://evil.example/t")
        .unwrap_err();
    assert!(e.to_string().contains("not a loopback host"), "{e}");
}

#[test]
fn a_literal_endpoint_renders_the_url_it_was_last_given() {
    // The URI of a literal endpoint is parsed once and reused; each way of changing the
    // endpoint must be what the next request goes to, with or without a query added to it.
    let uri = |s: &Spec, inputs: &Inputs| {
        s.render("client_credentials", inputs)
            .unwrap()
            .http()
            .uri()
            .to_string()
    };
    let plain = Inputs::new().with("client_id", "app");
    let s = with("");
    assert_eq!(uri(&s, &plain), "https://auth.example.com/token");
    let s = s
        .with_endpoint("token", "https://other.example/oauth/token?v=2")
        .unwrap();
    assert_eq!(uri(&s, &plain), "https://other.example/oauth/token?v=2");
    let s = s.with_origin("http://127.0.0.1:9").unwrap();
    assert_eq!(uri(&s, &plain), "http://127.0.0.1:9/oauth/token?v=2");
    let q = with(
        "inputs: { account: {} }\ngrants:\n  client_credentials:\n    fields: { account: { value: \"{{ account }}\", in: query } }\n",
    )
    .with_endpoint("token", "https://other.example/t?v=2")
    .unwrap();
    assert_eq!(
        uri(&q, &plain.clone().with("account", "a 1")),
        "https://other.example/t?v=2&account=a+1"
    );
    assert_eq!(
        uri(&q, &plain.clone().with("account", "b")),
        "https://other.example/t?v=2&account=b"
    );
}

#[test]
fn a_second_token_set_in_one_reply() {
    let s = with(
        "errors: { when: [{ path: $.ok, equals: false }] }\n\
         token:\n  scope_separator: \",\"\n  also:\n    user:\n      access_token: $.authed_user.access_token\n      token_type: $.authed_user.token_type\n      scope: $.authed_user.scope\n      scope_separator: \",\"\n",
    );
    let body = r#"{"ok":true,"access_token":"xoxb-bot","token_type":"bot","scope":"commands,incoming-webhook",
        "authed_user":{"id":"U1","scope":"chat:write","access_token":"xoxp-user","token_type":"user"}}"#;
    let t = token(
        &s,
        "authorization_code",
        &Inputs::new(),
        reply(200, "application/json", body),
    );
    assert_eq!(t.access_token.secret(), "xoxb-bot");
    assert_eq!(t.token_type, "bot");
    let user = &t.also["user"];
    assert_eq!(user.access_token.secret(), "xoxp-user");
    assert_eq!(user.scope, Some(vec!["chat:write".to_owned()]));
    assert_eq!(
        t.to_json(false)["also"],
        serde_json::json!({"user": {"access_token": "[redacted]", "token_type": "user", "scope": ["chat:write"]}})
    );
    // Absent second set: no `also`.
    let t = token(
        &s,
        "authorization_code",
        &Inputs::new(),
        reply(200, "application/json", r#"{"ok":true,"access_token":"b"}"#),
    );
    assert!(t.also.is_empty());
    assert!(t.to_json(true).get("also").is_none());
}

#[test]
fn secret_extras_are_redacted_like_tokens() {
    let s = with(
        "token:\n  extras: { webhook: $.webhook, guild: $.guild }\n  secret_extras: [webhook]\n",
    );
    let body =
        r#"{"access_token":"a","webhook":{"id":"1","token":"WebhookSecret9"},"guild":{"id":"2"}}"#;
    let t = token(
        &s,
        "authorization_code",
        &Inputs::new(),
        reply(200, "application/json", body),
    );
    assert_eq!(t.extra["webhook"]["token"], "WebhookSecret9");
    let shown = t.to_json(false);
    assert_eq!(
        shown["extra"],
        serde_json::json!({"webhook": "[redacted]", "guild": {"id": "2"}})
    );
    assert!(!format!("{t:?}").contains("WebhookSecret9"));
    assert_eq!(
        t.to_json(true)["extra"]["webhook"]["token"],
        "WebhookSecret9"
    );
    let e = Spec::from_yaml(
        "t.yaml",
        &format!("{BASE}token: {{ secret_extras: [nope] }}\n"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("`secret_extras` names `nope`, which is not under `token.extras`"),
        "{e}"
    );
}

#[test]
fn expiry_counts_from_the_providers_issue_time_when_the_spec_says_where_it_is() {
    let s = with("token: { issued_at: $.created_at }\n");
    let t = token(
        &s,
        "client_credentials",
        &Inputs::new(),
        reply(
            200,
            "application/json",
            r#"{"access_token":"a","expires_in":7200,"created_at":"2023-11-14T22:00:00Z"}"#,
        ),
    );
    // 2023-11-14T22:00:00Z is 1699999200; the local clock (1_000_000 here) plays no part.
    assert_eq!(t.expires_at, Some(1_699_999_200 + 7200));
    let ms = token(
        &s,
        "client_credentials",
        &Inputs::new(),
        reply(
            200,
            "application/json",
            r#"{"access_token":"a","expires_in":60,"created_at":"1699999200000"}"#,
        ),
    );
    assert_eq!(ms.expires_at, Some(1_699_999_260));
}

#[test]
fn template_functions_sign_and_stamp_a_request() {
    // A provider that wants a signature over the client id and a timestamp, a request id and
    // a nonce (the shape of several HMAC-signed token endpoints; illustrative). The expected
    // HMAC and hash were computed independently (Python's hmac and hashlib). Fields render
    // before headers, so the nonce is the first fresh value and the request id the second.
    let s = with(
        "request:\n  headers:\n    X-Timestamp: \"{{ now() }}\"\n    X-Request-Id: \"{{ uuid() }}\"\n    X-Signature: \"{{ (client_id ~ now()) | hmac_sha256(client_secret, 'base64') }}\"\n  fields:\n    nonce: \"{{ nonce(16) }}\"\n    verifier_hash: \"{{ client_id | sha256('base64url') }}\"\nexamples:\n  - grant: client_credentials\n    inputs: { client_id: app, client_secret: key }\n    reply: { json: { access_token: t } }\n    expect:\n      request:\n        headers:\n          X-Timestamp: \"1700000000\"\n          X-Request-Id: 00000000-0000-4000-8000-000000000002\n          X-Signature: Vze4mgaoT09CigZod1OoevkiPfocsdlo2vU7Aaxzxks=\n        form: { grant_type: client_credentials, nonce: \"0000000000000001\", verifier_hash: oXLO3K5HR0thXFTVEKXYSo3qMDLpWFh0MLQTU4vj8zM }\n      token: { access_token: t }\n",
    );
    let reports = s.run_examples();
    assert!(reports[0].passed(), "{:?}", reports[0].failures);
    // Outside examples every render is fresh.
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "key");
    let a = s.render("client_credentials", &inputs).unwrap();
    let b = s.render("client_credentials", &inputs).unwrap();
    assert_ne!(header(&a, "x-request-id"), header(&b, "x-request-id"));
    assert_ne!(body(&a), body(&b));
}

#[test]
fn an_error_example_states_its_kind_and_an_empty_refusal_is_the_providers() {
    let s = with(
        "examples:\n  - name: page\n    grant: client_credentials\n    inputs: { client_id: a }\n    reply: { status: 502, headers: { Content-Type: text/html }, body: \"<html><body>bad gateway</body></html>\" }\n    expect: { error: { status: 502 } }\n  - name: page, said\n    grant: client_credentials\n    inputs: { client_id: a }\n    reply: { status: 502, headers: { Content-Type: text/html }, body: \"<html><body>bad gateway</body></html>\" }\n    expect: { error: { kind: reply, status: 502 } }\n  - name: empty 410\n    grant: client_credentials\n    inputs: { client_id: a }\n    reply: { status: 410, body: \"\" }\n    expect: { error: { status: 410 } }\n",
    );
    let reports = s.run_examples();
    assert_eq!(
        reports[0].failures,
        [
            "error.kind: expected provider, got reply (unusable reply (HTTP 502): the body is an HTML page, not a token reply; the reply begins: <html><body>bad gateway</body></html>)"
        ]
    );
    assert!(reports[1].passed(), "{:?}", reports[1].failures);
    assert!(reports[2].passed(), "{:?}", reports[2].failures);
}

#[test]
fn conditions_success_markers_status_codes_and_error_extras() {
    let s = with(
        "errors:\n  when:\n    - { path: $.status, not_equals: ok }\n    - { path: $.code, one_of: [7, 9] }\n    - { path: $.note, matches: \"^Denied\" }\n  success:\n    - { path: $.result, equals: success }\n  code: [$.error, $.code]\n  status_codes: { 428: authorization_pending, 410: expired_token }\n  extras:\n    trace_id: $.traceId\n    sub_code: $.subCode\n",
    );
    let inputs = Inputs::new().with("client_id", "a");
    let ok = r#"{"access_token":"t","status":"ok","result":"success"}"#;
    assert!(
        s.normalise_token(
            "client_credentials",
            &inputs,
            &reply(200, "application/json", ok),
            0
        )
        .is_ok()
    );
    for (body, code) in [
        (
            r#"{"access_token":"t","status":"down","result":"success"}"#,
            None,
        ),
        (
            r#"{"access_token":"t","code":9,"result":"success"}"#,
            Some("9"),
        ),
        (
            r#"{"access_token":"t","note":"Denied: x","result":"success"}"#,
            None,
        ),
        // No success marker: a refusal even with an access token.
        (r#"{"access_token":"t","result":"failure"}"#, None),
    ] {
        let e = s
            .normalise_token(
                "client_credentials",
                &inputs,
                &reply(200, "application/json", body),
                0,
            )
            .unwrap_err();
        let Error::Provider(p) = e else {
            panic!("{body}: {e}")
        };
        assert_eq!(p.code.as_deref(), code, "{body}");
    }
    // A bodiless status stands for its declared code; extras are kept, scrubbed.
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &reply(428, "text/plain", ""),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = e else { panic!("{e}") };
    assert_eq!(p.code.as_deref(), Some("authorization_pending"));
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &reply(
                400,
                "application/json",
                r#"{"error":"invalid_grant","traceId":"abc-123","subCode":42}"#,
            ),
            0,
        )
        .unwrap_err();
    assert_eq!(
        e.to_json()["extra"],
        serde_json::json!({"trace_id": "abc-123", "sub_code": 42})
    );
    // A refusal's own code wins over the status's.
    let e = s
        .normalise_token(
            "client_credentials",
            &inputs,
            &reply(410, "application/json", r#"{"error":"gone_for_good"}"#),
            0,
        )
        .unwrap_err();
    let Error::Provider(p) = e else { panic!("{e}") };
    assert_eq!(p.code.as_deref(), Some("gone_for_good"));
}

#[test]
fn delete_and_patch_requests() {
    let s = spec(
        "extends: oauth2\nendpoints:\n  token: https://auth.example.com/token\n  revocation: \"https://auth.example.com/applications/{{ client_id }}/grant\"\nrequests:\n  revoke:\n    method: DELETE\n    body: none\n",
    );
    let req = s
        .render(
            specauth::RequestKind::Revocation,
            &Inputs::new()
                .with("client_id", "app-1")
                .with("client_secret", "sec")
                .with("token", "tok"),
        )
        .unwrap();
    assert_eq!(req.http().method(), "DELETE");
    assert_eq!(
        req.http().uri(),
        "https://auth.example.com/applications/app-1/grant"
    );
    assert!(req.http().body().is_empty());
}

#[test]
fn a_grant_removes_a_header_the_request_defaults_set() {
    let s = with(
        "request:\n  headers: { X-Api: v1 }\ngrants:\n  client_credentials:\n    headers: { X-Api: null, Accept: null }\n",
    );
    let inputs = Inputs::new().with("client_id", "a");
    let req = s.render("client_credentials", &inputs).unwrap();
    assert_eq!(header(&req, "x-api"), None);
    assert_eq!(header(&req, "accept"), None);
    let req = s
        .render("refresh_token", &inputs.with("refresh_token", "r"))
        .unwrap();
    assert_eq!(header(&req, "x-api"), Some("v1"));
}

#[test]
fn private_key_jwt_and_client_secret_jwt_sign_an_assertion() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    const KEY: &str = include_str!("keys/rsa.pem");
    const PUBLIC: &str = include_str!("keys/rsa.pub.pem");
    let s = with("client_auth: private_key_jwt\n");
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("private_key", KEY)
        .with("key_id", "k-2026");
    let req = s.render("client_credentials", &inputs).unwrap();
    let form: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(req.http().body())
            .into_owned()
            .collect();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(form["client_id"], "app");
    assert!(req.http().headers().get("authorization").is_none());
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["https://auth.example.com/token"]);
    v.set_issuer(&["app"]);
    let data = decode::<serde_json::Value>(
        &form["client_assertion"],
        &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(data.header.kid.as_deref(), Some("k-2026"));
    assert_eq!(data.claims["sub"], "app");
    let exp = data.claims["exp"].as_u64().unwrap();
    assert_eq!(exp - data.claims["iat"].as_u64().unwrap(), 300);
    // The preview shows the assertion's header and claims, never its signature or the key.
    let preview = req.redacted();
    assert!(preview.contains(".[redacted]"), "{preview}");
    assert!(
        !preview.contains(data.claims["jti"].as_str().unwrap())
            || preview.contains("client_assertion=")
    );
    let signature = form["client_assertion"].rsplit('.').next().unwrap();
    assert!(!preview.contains(signature), "{preview}");
    assert!(!preview.contains("PRIVATE KEY"), "{preview}");

    // client_secret_jwt: HS256 over the client secret.
    let s =
        with("client_auth: { method: client_secret_jwt, audience: \"https://issuer.example\" }\n");
    let req = s
        .render(
            "client_credentials",
            &Inputs::new()
                .with("client_id", "app")
                .with("client_secret", "a-long-shared-secret"),
        )
        .unwrap();
    let form: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(req.http().body())
            .into_owned()
            .collect();
    assert!(!form.contains_key("client_secret"));
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["https://issuer.example"]);
    decode::<serde_json::Value>(
        &form["client_assertion"],
        &DecodingKey::from_secret(b"a-long-shared-secret").unwrap(),
        &v,
    )
    .unwrap();

    // A key that is not a key: an input error naming the input, without the key.
    let s = with("client_auth: private_key_jwt\n");
    let e = s
        .render(
            "client_credentials",
            &Inputs::new()
                .with("client_id", "app")
                .with("private_key", "not-a-key-AAAA"),
        )
        .unwrap_err();
    assert_eq!(e.input_name(), Some("private_key"), "{e}");
    assert!(!e.to_string().contains("not-a-key-AAAA"), "{e}");
}

#[test]
fn typed_json_fields_query_beside_the_body_and_raw_values() {
    let s = with(
        r#"inputs:
  account_id: {}
  days: {}
  scopes: {}
grants:
  client_credentials:
    body: json
    fields:
      count: { value: "{{ days }}", type: number }
      offline: { value: "true", type: boolean }
      scopes: { value: "{{ scopes }}", type: json }
      nested: { value: '{"a": {"b": [1, "{{ days }}"]}}', type: json }
      account: { value: "{{ account_id }}", in: query }
      scope_list: { value: "read+write,admin", in: query, raw: true }
"#,
    );
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "sec")
        .with("account_id", "a 1")
        .with("days", "30")
        .with("scopes", r#"["a", "b"]"#);
    let req = s.render("client_credentials", &inputs).unwrap();
    assert_eq!(
        req.http().uri(),
        "https://auth.example.com/token?account=a+1&scope_list=read+write,admin"
    );
    let body: serde_json::Value = serde_json::from_slice(req.http().body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "grant_type": "client_credentials",
            "count": 30,
            "offline": true,
            "scopes": ["a", "b"],
            "nested": {"a": {"b": [1, "30"]}}
        })
    );
    assert!(
        req.redacted().starts_with(
            "POST https://auth.example.com/token?account=a+1&scope_list=read+write,admin\n"
        ),
        "{}",
        req.redacted()
    );
    // A value that is not what its type says is refused, naming the input.
    let e = s
        .render("client_credentials", &inputs.clone().with("days", "thirty"))
        .unwrap_err();
    match e {
        Error::Input { name, problem } => {
            assert_eq!(name, "days");
            assert!(
                problem.contains("field `count` is not a number"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A raw value cannot smuggle in another parameter.
    let raw = with(
        "inputs: { region: {} }\ngrants:\n  client_credentials:\n    fields: { region: { value: \"{{ region }}\", raw: true } }\n",
    );
    let e = raw
        .render(
            "client_credentials",
            &Inputs::new()
                .with("client_id", "a")
                .with("region", "eu&admin=1"),
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::Input { name, .. } if name == "region"),
        "{e:?}"
    );
    // Types, places and raw are for fields: a header that sets one is a spec error.
    let e = Spec::from_yaml(
        "test.yaml",
        &format!("{BASE}grants:\n  client_credentials:\n    headers: {{ X-N: {{ value: \"1\", type: number }} }}\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.yaml:5:") && e.contains("is sent as text"),
        "{e}"
    );
    let e = Spec::from_yaml(
        "test.yaml",
        &format!("{BASE}grants:\n  client_credentials:\n    fields: {{ n: {{ value: \"1\", type: integer }} }}\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.yaml:5:") && e.contains("unknown type `integer`"),
        "{e}"
    );
}

#[test]
fn nested_xml_elements_from_slashed_field_names() {
    let s = with(
        r#"inputs: { username: {}, password: { secret: true } }
grants:
  password:
    body: xml
    xml_root: Request
    client_auth: none
    fields:
      grant_type: password
      username: null
      password: null
      Credentials/User: "{{ username }}"
      Credentials/Secret/Password: "{{ password }}"
      Options/Remember: "yes"
"#,
    );
    let req = s
        .render(
            "password",
            &Inputs::new()
                .with("username", "ann")
                .with("password", "p<w>"),
        )
        .unwrap();
    assert_eq!(
        body(&req),
        "<Request><grant_type>password</grant_type><Credentials><User>ann</User><Secret><Password>p&lt;w&gt;</Password></Secret></Credentials><Options><Remember>yes</Remember></Options></Request>"
    );
    assert!(!req.redacted().contains("p&lt;w"), "{}", req.redacted());
}

#[test]
fn client_auth_chosen_by_an_input() {
    let s = with(
        "client_auth: \"{{ auth_method }}\"\ninputs:\n  auth_method: { enum: [basic, post], default: basic }\n",
    );
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "sec");
    let req = s.render("client_credentials", &inputs).unwrap();
    assert_eq!(header(&req, "authorization"), Some("Basic YXBwOnNlYw=="));
    assert_eq!(body(&req), "grant_type=client_credentials");
    let req = s
        .render(
            "client_credentials",
            &inputs.clone().with("auth_method", "post"),
        )
        .unwrap();
    assert_eq!(header(&req, "authorization"), None);
    assert_eq!(
        body(&req),
        "grant_type=client_credentials&client_id=app&client_secret=sec"
    );
    // Without an enum, a name that is no method is refused when rendered, naming the input.
    let open = with("client_auth: \"{{ auth_method }}\"\ninputs: { auth_method: {} }\n");
    let e = open
        .render(
            "client_credentials",
            &inputs.clone().with("auth_method", "header"),
        )
        .unwrap_err();
    match e {
        Error::Input { name, problem } => {
            assert_eq!(name, "auth_method");
            assert!(
                problem.contains("selects client auth `header`"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    // And it is needed, like any input a request uses.
    assert!(matches!(
        open.render("client_credentials", &inputs).unwrap_err(),
        Error::MissingInput { name, .. } if name == "auth_method"
    ));
}

#[test]
fn a_null_map_removes_every_entry_the_base_has() {
    let s = spec(
        "extends: oauth2\nendpoints: { token: \"https://auth.example.com/token\", revocation: \"https://auth.example.com/revoke\" }\nrequests: null\ngrants:\n  client_credentials:\n    headers: null\n    fields: null\n",
    );
    assert!(
        s.render(
            specauth::RequestKind::Revocation,
            &Inputs::new().with("client_id", "a").with("token", "t")
        )
        .is_err()
    );
    let req = s
        .render("client_credentials", &Inputs::new().with("client_id", "a"))
        .unwrap();
    // No `grant_type`: only the public client's id, which client auth adds.
    assert_eq!(body(&req), "client_id=a");
    assert_eq!(header(&req, "accept"), None);
    // Entries written after the null are the child's own.
    let s = with("grants: null\n");
    assert_eq!(s.grant_names().collect::<Vec<_>>(), Vec::<&str>::new());
}

#[test]
fn dates_in_a_declared_format_and_zone_never_expiring_values_and_a_refresh_margin() {
    let json = |body: &str| reply(200, "application/json", body);
    let none = Inputs::new();
    // A 12-hour clock with a month name, in a declared zone (+10:00).
    let s = with(
        "token:\n  expires_at: $.expiry\n  issued_at: $.issued\n  date_format: \"%B %d, %Y %I:%M:%S %p\"\n  timezone: \"+10:00\"\n",
    );
    let t = token(
        &s,
        "client_credentials",
        &none,
        json(r#"{"access_token":"a","expiry":"November 30, 2026 01:15:00 PM"}"#),
    );
    // 2026-11-30T13:15:00+10:00 = 2026-11-30T03:15:00Z.
    assert_eq!(t.expires_at, Some(1_796_008_500));
    // ISO dates still read, and one without an offset is in the declared zone.
    let t = token(
        &s,
        "client_credentials",
        &none,
        json(r#"{"access_token":"a","expiry":"2026-11-30T13:15:00"}"#),
    );
    assert_eq!(t.expires_at, Some(1_796_008_500));
    // A date only, day first: midnight in the zone; tried before epoch numbers.
    let s = with("token:\n  expires_at: $.expiry\n  date_format: \"%d%m%Y\"\n");
    let t = token(
        &s,
        "client_credentials",
        &none,
        json(r#"{"access_token":"a","expiry":"30112026"}"#),
    );
    assert_eq!(t.expires_at, Some(1_795_996_800));
    // A date that fits no form is an unusable reply naming the field.
    let e = s
        .normalise_token(
            "client_credentials",
            &none,
            &json(r#"{"access_token":"a","expiry":"next week"}"#),
            1_000_000,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expires_at `\"next week\"`") && e.contains("date_format"),
        "{e}"
    );
    // A bad format or zone is a spec error at its place.
    let e = Spec::from_yaml(
        "test.yaml",
        &format!("{BASE}token:\n  date_format: \"%Q\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.yaml:4:") && e.contains("bad date_format"),
        "{e}"
    );
    let e = Spec::from_yaml("test.yaml", &format!("{BASE}token:\n  timezone: Sydney\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test.yaml:4:") && e.contains("is not a UTC offset"),
        "{e}"
    );

    // `0` and `-1` declared to mean "never": no expiry, and no default lifetime either.
    let s = with(
        "token:\n  never_expires: [0, -1]\n  default_expires_in: 3600\n  refresh_token_expires_in: $.refresh_token_expires_in\n",
    );
    let t = token(
        &s,
        "client_credentials",
        &none,
        json(
            r#"{"access_token":"a","expires_in":0,"refresh_token":"r","refresh_token_expires_in":"-1"}"#,
        ),
    );
    assert_eq!(
        (t.expires_in, t.expires_at, t.refresh_token_expires_in),
        (None, None, None)
    );
    let t = token(
        &s,
        "client_credentials",
        &none,
        json(r#"{"access_token":"a","expires_in":60,"refresh_token_expires_in":7200}"#),
    );
    assert_eq!(
        (t.expires_at, t.refresh_token_expires_in),
        (Some(1_000_060), Some(7200))
    );
    // Without the declaration, 0 is "expires now" as before.
    let t = token(
        &with(""),
        "client_credentials",
        &none,
        json(r#"{"access_token":"a","expires_in":0}"#),
    );
    assert_eq!(t.expires_at, Some(1_000_000));

    // The margin is the spec's, read by whoever decides whether a cached token is fresh.
    assert_eq!(
        with("token: { refresh_margin: 300 }\n").refresh_margin(),
        300
    );
    assert_eq!(with("").refresh_margin(), 0);
}

#[test]
fn values_from_headers_cookies_jwt_claims_and_templates() {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    // An unsigned JWT-shaped access token whose claims say when it expires and whose it is.
    let jwt = format!(
        "{}.{}.sig",
        b64(serde_json::json!({"alg": "RS256"})),
        b64(serde_json::json!({"exp": 1_000_900, "sub": "user-42"}))
    );
    let s = with(
        r#"token:
  access_token: [$.access_token, header:X-Auth-Token]
  expires_at: "template:{{ (body.access_token | jwt_claims).exp }}"
  extras:
    session: cookie:sid
    subject: "template:{{ (body.access_token | jwt_claims).sub }}"
    account: "template:{{ body.composite | regex_capture('^acct-(\\d+):') }}"
    region: "template:{{ (body.composite | split(':'))[1] }}"
    trace: header:X-Trace-Id
"#,
    );
    let r = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-trace-id", " t-77 ")
        .header("set-cookie", "other=1; Path=/")
        .header("set-cookie", "sid=abc123; HttpOnly; Secure")
        .body(
            serde_json::json!({"access_token": jwt, "composite": "acct-991:eu:x"})
                .to_string()
                .into_bytes(),
        )
        .unwrap();
    let t = token(&s, "client_credentials", &Inputs::new(), r);
    assert_eq!(t.access_token.secret(), jwt);
    assert_eq!(t.expires_at, Some(1_000_900));
    assert_eq!(t.expires_in, Some(900));
    assert_eq!(
        serde_json::Value::Object(t.extra.clone()),
        serde_json::json!({
            "session": "abc123",
            "subject": "user-42",
            "account": "991",
            "region": "eu",
            "trace": "t-77"
        })
    );
    // A token only in a header, and a claim that is absent: no expiry, no extra, no error.
    let r = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-auth-token", "opaque-1")
        .body(br#"{"composite": "nothing here"}"#.to_vec())
        .unwrap();
    let t = token(&s, "client_credentials", &Inputs::new(), r);
    assert_eq!(t.access_token.secret(), "opaque-1");
    assert_eq!(t.expires_at, None);
    assert!(!t.extra.contains_key("account"), "{:?}", t.extra);
    assert!(!t.extra.contains_key("subject"), "{:?}", t.extra);
    // A reply template sees the reply, not the inputs.
    let e = Spec::from_yaml(
        "test.yaml",
        &format!("{BASE}token:\n  extras:\n    x: \"template:{{{{ client_secret }}}}\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.yaml:5:") && e.contains("sees `body`"),
        "{e}"
    );
    let e = Spec::from_yaml(
        "test.yaml",
        &format!("{BASE}token:\n  access_token: \"header:bad name\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.yaml:4:") && e.contains("is not a header name"),
        "{e}"
    );
}

#[test]
fn a_reply_without_an_access_token_where_the_spec_allows_one() {
    let body = r#"{"access_token":null,"token_type":"Bearer","user":{"id":42}}"#;
    let strict = with("token: { extras: { user: $.user } }\n");
    let e = strict
        .normalise_token(
            "client_credentials",
            &Inputs::new(),
            &reply(200, "application/json", body),
            0,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Reply { status: 200, .. }), "{e:?}");
    let lenient = with("token: { access_token_optional: true, extras: { user: $.user } }\n");
    let t = token(
        &lenient,
        "client_credentials",
        &Inputs::new(),
        reply(200, "application/json", body),
    );
    assert!(!t.has_access_token());
    assert_eq!(
        t.to_json(true),
        serde_json::json!({"access_token": null, "token_type": "Bearer", "extra": {"user": {"id": 42}}})
    );
    // A token that is there is still checked like any other.
    let t = token(
        &lenient,
        "client_credentials",
        &Inputs::new(),
        reply(200, "application/json", r#"{"access_token":"t-1"}"#),
    );
    assert!(t.has_access_token());
}

/// A grant that is a chain: a login call whose reply gives a session id, then a second call
/// that turns the session into the token. Each step is a grant of its own, rendered, redacted
/// and example-tested like any; the client sends the chain.
#[test]
fn a_multi_step_grant_chains_requests_with_values_from_earlier_replies() {
    let s = spec(
        r#"extends: oauth2
endpoints:
  token: https://auth.example.com/login
  session: "https://{{ instance }}.example.com/session"
inputs:
  session_id: { secret: true }
  instance: {}
grants:
  password:
    client_auth: none
    take:
      session_id: $.session.id
      instance: header:X-Instance
    then: session_token
  session_token:
    endpoint: session
    client_auth: none
    headers: { X-Session: "{{ session_id }}" }
    fields: { grant_type: session }
examples:
  - name: login (200)
    grant: password
    inputs: { username: ann, password: pw-1 }
    reply: { status: 200, headers: { X-Instance: eu3 }, json: { session: { id: sess-123456 } } }
    expect: { taken: { session_id: sess-123456, instance: eu3 } }
  - name: session to token (200)
    grant: session_token
    inputs: { session_id: sess-123456, instance: eu3 }
    reply: { status: 200, json: { access_token: at-9, expires_in: 60 } }
    expect:
      request: { url: "https://eu3.example.com/session", headers: { X-Session: sess-123456 } }
      token: { access_token: at-9, expires_in: 60 }
"#,
    );
    let reports = s.run_examples();
    assert!(reports.iter().all(|r| r.passed()), "{reports:#?}");
    // The step's outcome shows the secret value redacted.
    assert_eq!(
        reports[0].outcome,
        serde_json::json!({"taken": {"session_id": "[redacted]", "instance": "eu3"}})
    );

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let client = Client::with_transport(
        move |req: http::Request<Vec<u8>>| -> Result<_, TransportError> {
            let url = req.uri().to_string();
            log.lock().unwrap().push((
                url.clone(),
                req.headers()
                    .get("x-session")
                    .map(|v| v.to_str().unwrap().to_owned()),
            ));
            Ok(if url == "https://auth.example.com/login" {
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .header("x-instance", "eu3")
                    .body(br#"{"session":{"id":"sess-123456"}}"#.to_vec())
                    .unwrap()
            } else {
                reply(
                    200,
                    "application/json",
                    r#"{"access_token":"at-9","expires_in":60}"#,
                )
            })
        },
    );
    let t = client
        .token(
            &s,
            "password",
            &Inputs::new()
                .with("username", "ann")
                .with("password", "pw-1"),
        )
        .unwrap();
    assert_eq!(t.access_token.secret(), "at-9");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("https://auth.example.com/login".to_owned(), None),
            (
                "https://eu3.example.com/session".to_owned(),
                Some("sess-123456".to_owned())
            ),
        ]
    );
    // A step whose reply lacks a value is an unusable reply naming it.
    let e = s
        .normalise(
            "password",
            &Inputs::new(),
            &reply(200, "application/json", r#"{"session":{}}"#),
            0,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("without `session_id` at $.session.id"), "{e}");

    // A chain names grants of the spec and never loops.
    for (yaml, want) in [
        (
            "grants:\n  password:\n    then: nowhere\n",
            "`nowhere`, which is not a grant",
        ),
        (
            "grants:\n  password:\n    then: client_credentials\n  client_credentials:\n    then: password\n",
            "a chain may not loop",
        ),
    ] {
        let e = Spec::from_yaml("test.yaml", &format!("{BASE}{yaml}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.yaml:5:") && e.contains(want), "{e}");
    }
}

/// Every claim of a client assertion can be set by the spec, as a template: a whole number is a
/// number, `null` removes a default claim.
#[test]
fn client_assertion_claims_are_overridable_templates() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    const KEY: &str = include_str!("keys/rsa.pem");
    const PUBLIC: &str = include_str!("keys/rsa.pub.pem");
    let s = with(
        r#"client_auth:
  method: private_key_jwt
  claims:
    sub: "svc-{{ client_id }}"
    iss: "https://issuer.example/{{ client_id }}"
    exp: "{{ now() + 60 }}"
    jti: null
    tenant: acme
"#,
    );
    let req = s
        .render(
            "client_credentials",
            &Inputs::new()
                .with("client_id", "app")
                .with("private_key", KEY),
        )
        .unwrap();
    let form: std::collections::BTreeMap<String, String> =
        form_urlencoded::parse(req.http().body())
            .into_owned()
            .collect();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["https://auth.example.com/token"]);
    let claims = decode::<serde_json::Value>(
        &form["client_assertion"],
        &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "svc-app");
    assert_eq!(claims["iss"], "https://issuer.example/app");
    assert_eq!(claims["tenant"], "acme");
    assert!(claims.get("jti").is_none(), "{claims}");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!((59..=61).contains(&(exp - iat)), "{claims}");
}

/// A key file read with `from_json` that is not JSON is an error naming where it stopped,
/// never quoting the file.
#[test]
fn from_json_reads_a_key_file_and_refuses_one_that_is_not_json() {
    let s = with(
        "inputs: { key_file: { secret: true } }\ngrants:\n  client_credentials:\n    fields: { email: \"{{ (key_file | from_json).client_email }}\" }\n",
    );
    let req = s
        .render(
            "client_credentials",
            &Inputs::new().with("client_id", "app").with(
                "key_file",
                r#"{"client_email": "svc@example.iam", "private_key": "-----BEGIN"}"#,
            ),
        )
        .unwrap();
    assert!(
        body(&req).contains("email=svc%40example.iam"),
        "{}",
        body(&req)
    );
    let e = s
        .render(
            "client_credentials",
            &Inputs::new()
                .with("client_id", "app")
                .with("key_file", "-----BEGIN PRIVATE KEY----- not json"),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field `email`: invalid operation: not JSON (line 1, column 2)"),
        "{e}"
    );
    assert!(!e.contains("PRIVATE KEY"), "{e}");
}

/// RFC 8707 §2: each resource is its own `resource` parameter, in the code exchange and in
/// the refresh the base spec renders (never one space-joined value).
#[test]
fn two_resources_are_two_resource_parameters_in_the_code_exchange_and_the_refresh() {
    let s = with("");
    let resources = "https://api.example.com/v1 urn:example:files";
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s")
        .with("resource", resources);
    let code = s
        .render(
            "authorization_code",
            &inputs.clone().with("code", "c").with("code_verifier", "v"),
        )
        .unwrap();
    assert_eq!(
        body(&code),
        "grant_type=authorization_code&code=c&code_verifier=v\
         &resource=https%3A%2F%2Fapi.example.com%2Fv1&resource=urn%3Aexample%3Afiles"
    );
    let refresh = s
        .render("refresh_token", &inputs.clone().with("refresh_token", "r"))
        .unwrap();
    assert_eq!(
        body(&refresh),
        "grant_type=refresh_token&refresh_token=r\
         &resource=https%3A%2F%2Fapi.example.com%2Fv1&resource=urn%3Aexample%3Afiles"
    );
    // Parsed as a server parses a form: two values under one name.
    let values: Vec<String> = form_urlencoded::parse(body(&refresh).as_bytes())
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(values, ["https://api.example.com/v1", "urn:example:files"]);
}

/// A loader for one exchange compiles that grant and its `then:` chain only: the request it
/// renders is the one a whole load renders, a mistake elsewhere in the spec does not stop it
/// (a whole load, and a check with examples, still report it), and a grant the spec does not
/// have is reported with every grant the spec has.
#[test]
fn a_loader_for_one_grant_compiles_that_grant_and_its_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let revoke = specauth::RequestKind::from_name("revoke");
    // A request's name keeps the requests (they are not even read for a grant's name), the
    // base's included. First in this test: the bundled base is kept for the process from its
    // second use, and only a process whose first loads skip the requests can tell whether the
    // kept copy is kept apart from a whole load's.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, BASE).expect("write the spec");
    let has_revoke = |loader: specauth::Loader| {
        let e = loader
            .load_file(&plain)
            .and_then(|s| s.render(&revoke, &Inputs::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `revocation` endpoint"), "{e}");
    };
    has_revoke(specauth::Loader::new().with_only_grant("revoke"));
    for _ in 0..3 {
        let e = specauth::Loader::new()
            .with_only_grant("password")
            .load_file(&plain)
            .and_then(|s| s.render(&revoke, &Inputs::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no request `revoke`"), "{e}");
    }
    has_revoke(specauth::Loader::new());

    let path = dir.path().join("one.yaml");
    std::fs::write(
        &path,
        format!(
            "{BASE}grants:\n  password:\n    then: session\n  session:\n    fields: {{ grant_type: session }}\n  broken:\n    endpoint: nowhere\n"
        ),
    )
    .expect("write the spec");
    let whole = specauth::Loader::new()
        .load_file(&path)
        .unwrap_err()
        .to_string();
    assert!(whole.contains("endpoint `nowhere`"), "{whole}");
    let checked = specauth::Loader::new()
        .with_examples()
        .with_only_grant("password")
        .load_file(&path)
        .unwrap_err()
        .to_string();
    assert!(checked.contains("endpoint `nowhere`"), "{checked}");

    let one = specauth::Loader::new()
        .with_only_grant("password")
        .load_file(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        one.grant_names().collect::<Vec<_>>(),
        ["password", "session"]
    );
    let e = one.render(&revoke, &Inputs::new()).unwrap_err().to_string();
    assert!(
        e.contains("has no request `revoke`"),
        "requests are left out: {e}"
    );

    // The same request as a whole load of a spec without the mistake renders.
    let inputs = Inputs::new()
        .with("client_id", "app")
        .with("client_secret", "s3cret")
        .with("username", "ann")
        .with("password", "pw");
    let full = specauth::Loader::new()
        .load("oauth2")
        .and_then(|s| s.with_endpoint("token", "https://auth.example.com/token"))
        .and_then(|s| s.render("password", &inputs))
        .unwrap_or_else(|e| panic!("{e}"));
    let only = specauth::Loader::new()
        .with_only_grant("password")
        .load("oauth2")
        .and_then(|s| s.with_endpoint("token", "https://auth.example.com/token"))
        .and_then(|s| s.render("password", &inputs))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(only.revealed(), full.revealed());

    // An unknown grant: the spec is compiled whole and the error lists what it has.
    let e = specauth::Loader::new()
        .with_only_grant("passwrd")
        .load("oauth2")
        .and_then(|s| s.render("passwrd", &inputs))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("password") && e.contains("client_credentials"),
        "{e}"
    );

    // Skipped, the other requests must still be well-formed YAML.
    std::fs::write(
        &path,
        format!("{BASE}grants:\n  password: {{}}\nrequests:\n  revoke: [unclosed\n"),
    )
    .expect("write the spec");
    let e = specauth::Loader::new()
        .with_only_grant("password")
        .load_file(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("one.yaml:"), "a YAML error names its place: {e}");
}
