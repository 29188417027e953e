//! Every bundled spec normalising arbitrary replies to every request it can make: a token or
//! an error, never a panic, and no secret input in any error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use specauth::{Inputs, RequestKind, Spec};

const SECRET: &str = "FUZZsecret/+=&%é";

fn specs() -> &'static [Spec] {
    static SPECS: OnceLock<Vec<Spec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let loader = specauth::Loader::new();
        specauth::spec::bundled_ids()
            .filter_map(|id| loader.load(id).ok())
            .collect()
    })
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "text/html",
    "text/plain",
    "",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let specs = specs();
    let spec = &specs[usize::from(data[0]) % specs.len()];
    let status = 100 + u16::from(data[1]) * 2 % 500;
    let content_type = CONTENT_TYPES[usize::from(data[2]) % CONTENT_TYPES.len()];
    let mut builder = http::Response::builder().status(status);
    if !content_type.is_empty() {
        builder = builder.header("content-type", content_type);
    }
    let Ok(reply) = builder.body(data[3..].to_vec()) else {
        return;
    };
    let inputs = Inputs::new()
        .with("client_id", "fuzz-app")
        .with("client_secret", SECRET)
        .with("refresh_token", "FUZZrefresh42");
    for kind in spec.request_kinds() {
        if kind == RequestKind::Authorization {
            continue;
        }
        if let Err(e) = spec.normalise(&kind, &inputs, &reply, 1_700_000_000) {
            let text = format!("{e} {:?}", e.to_json());
            assert!(!text.contains(SECRET), "{}: {text}", spec.id());
        }
    }
});
