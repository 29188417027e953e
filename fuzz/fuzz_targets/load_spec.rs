//! Spec loading from arbitrary bytes: an error naming file:line:col, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = specauth::Spec::from_yaml("fuzz.yaml", text) {
        // A spec that loads runs its examples without panicking too.
        let _ = spec.run_examples();
    }
});
