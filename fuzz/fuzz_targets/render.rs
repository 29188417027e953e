//! Bundled specs rendering arbitrary inputs: a request or an error, never a panic; no secret
//! input value in the redacted preview or in an error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use specauth::{Inputs, Spec};

fn specs() -> &'static [Spec] {
    static SPECS: OnceLock<Vec<Spec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let loader = specauth::Loader::new();
        specauth::spec::bundled_ids()
            .filter_map(|id| loader.load(id).ok())
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let specs = specs();
    let spec = &specs[usize::from(pick) % specs.len()];
    // `name=value` lines over the spec's declared inputs; secrets get a marked value so any
    // leak is recognisable.
    let names: Vec<(&str, bool)> = spec.inputs().map(|(n, d)| (n, d.secret)).collect();
    let mut inputs = Inputs::new();
    let mut secrets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (name, secret) = names[i % names.len()];
        let value = if secret {
            let v = format!("LEAK{i}{line}");
            secrets.push(v.clone());
            v
        } else {
            line.replace("LEAK", "")
        };
        inputs.set(name, value);
    }
    for kind in spec.request_kinds() {
        let shown = match spec.render(&kind, &inputs) {
            Ok(req) => req.redacted().to_owned(),
            Err(e) => format!("{e} {}", e.to_json()),
        };
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(
                !shown.contains(s.as_str()),
                "{}: {kind}: {shown}",
                spec.id()
            );
        }
    }
});
