//! Bundles every `specs/*.yaml` into the binary, so `specauth token ID …` works without the
//! source tree. The list is generated, so adding a provider stays a data change.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Pack the binary's relative relocations (DT_RELR, glibc ≥ 2.36 and binutils ≥ 2.38):
    // about 20,000 of them, and applying them at start-up was half of a cached `print-token`.
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-gnu") && std::env::var_os("SPECAUTH_NO_PACKED_RELOCS").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=SPECAUTH_NO_PACKED_RELOCS");
    // Opt-in: a position-dependent executable has no relative relocations at all, a third
    // fewer start-up instructions for a cached `print-token` (642 k → 434 k measured), at the
    // price of address-space layout randomisation for the executable: off unless asked for.
    if target.ends_with("-linux-gnu") && std::env::var_os("SPECAUTH_NO_PIE").is_some() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-env-changed=SPECAUTH_NO_PIE");
    // Read when the script runs, not when it was compiled: a build script copied with its
    // target folder must still bundle its own tree's specs.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let dir = Path::new(&root).join("specs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .filter_map(|p| {
                    let id = p.file_stem()?.to_str()?.to_owned();
                    Some((id, p.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let mut out = String::from("/// Bundled specs: (id, YAML text), sorted by id.\n");
    out.push_str("pub(crate) static BUNDLED: &[(&str, &str)] = &[\n");
    for (id, path) in &entries {
        println!("cargo:rerun-if-changed={path}");
        writeln!(out, "    ({id:?}, include_str!({path:?})),").unwrap();
    }
    out.push_str("];\n");
    // The bundled bases in compact form (src/spec/load.rs reads them instead of their YAML).
    let compiled = dir.join("compiled");
    println!("cargo:rerun-if-changed={}", compiled.display());
    let mut forms: Vec<(String, String)> = std::fs::read_dir(&compiled)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| {
                    let id = p.file_stem()?.to_str()?.to_owned();
                    Some((id, p.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    forms.sort();
    out.push_str("/// Compiled forms of bundled bases: (id, compact text), sorted by id.\n");
    out.push_str("pub(crate) static COMPILED: &[(&str, &str)] = &[\n");
    for (id, path) in &forms {
        println!("cargo:rerun-if-changed={path}");
        writeln!(out, "    ({id:?}, include_str!({path:?})),").unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(dest, out).unwrap();
}
