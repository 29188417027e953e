// Which YAML a compiled form (`specs/compiled/ID.json`) was made from. `include!`d by build.rs,
// which bundles only the forms made from the YAML beside them, and by the tests of
// src/spec/load.rs, which write the forms: one definition for both.

/// What a compiled form's first line says of the YAML it was made from: its length and an
/// FNV-1a hash (a check against editing, not against an adversary: both files are bundled).
fn source_line(yaml: &str) -> String {
    let hash = yaml.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("yaml {} {hash:016x}", yaml.len())
}

/// Whether compiled form `form` was made from `yaml`.
fn made_from(form: &str, yaml: &str) -> bool {
    form.split_once('\n')
        .is_some_and(|(source, _)| source == source_line(yaml))
}
