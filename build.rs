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
    if target.ends_with("-linux-gnu") {
        link_for_start_up();
    }
    // Read when the script runs, not when it was compiled: a build script copied with its
    // target folder must still bundle its own tree's specs.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let dir = Path::new(&root).join("specs");
    let mut out = String::new();
    bundle(
        &mut out,
        &dir,
        "yaml",
        "BUNDLED",
        "Bundled specs: (id, YAML text), sorted by id.",
        &|_, _| true,
    );
    // The bundled specs in compact form (src/spec/load.rs reads them instead of their YAML).
    // Only a form made from the YAML bundled beside it: a stale one is left out, and that
    // spec is parsed from its YAML (a warning says to rewrite the forms).
    let current = |id: &str, form: &Path| {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let made = made_from(&read(form), &read(&dir.join(format!("{id}.yaml"))));
        if !made {
            println!(
                "cargo:warning=specs/compiled/{id}.json was not made from specs/{id}.yaml; run `SPECAUTH_WRITE_COMPILED=1 cargo test --lib compiled_forms`"
            );
        }
        made
    };
    bundle(
        &mut out,
        &dir.join("compiled"),
        "json",
        "COMPILED",
        "Compiled forms of bundled specs, each made from the bundled YAML: (id, compact text), sorted by id.",
        &current,
    );
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(dest, out).unwrap();
}

/// How the binary is linked on Linux with glibc, for a fast start (README, Performance):
///
/// - `link/hot-text.ld` puts the code the hot one-shot commands run together at the start of
///   the code, so the process maps a few hundred kilobytes of code instead of most of `.text`:
///   a cached `print-token` (about 90 functions, spread over 24 places of `.text`) and a
///   one-shot `token` (about 700 functions, in 86 places; 332 → 276 page faults). The patterns
///   name functions without their hashes; one that matches nothing (a renamed function) only
///   costs locality, never correctness. Release builds only; `SPECAUTH_NO_HOT_TEXT=1` leaves
///   the layout to the linker. To regenerate the print-token part after that path changes
///   much (with a fresh token cached in DIR):
///
///   ```text
///   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release
///   valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file=cg \
///       target/release/specauth print-token PROVIDER --store DIR
///   grep '^fn=' cg | sed 's/^fn=//' | grep -E '^_ZN|^_R' | sort -u \
///     | sed -E 's/17h[0-9a-f]{16}E.*$/17h*/; s/\.llvm\.[0-9]+$/*/; s/Cs[0-9A-Za-z]+_/Cs*_/g' \
///     | awk '!seen[$0]++' | sed 's/^/    *(.text.*/; s/$/)/'
///   ```
///
///   and replace the lines after `main`'s, up to the generated block, with its output. The
///   generated block (the `token` path) is rewritten by `link/hot-text.py` from a profile of
///   the plain release binary (`cargo build --release`, no other targets: dev-dependencies
///   change the hashes), with a loopback server answering the token request at URL:
///
///   ```text
///   SPECAUTH_CLIENT_SECRET=s valgrind --tool=callgrind --demangle=no --callgrind-out-file=cg \
///       target/release/specauth token xee refresh_token --set client_id=app \
///       --set refresh_token=r --endpoint token=URL
///   python3 link/hot-text.py target/release/specauth cg
///   ```
/// - The unwinder (panics, backtraces) is linked in from GCC's static `libgcc_eh.a` instead of
///   loading `libgcc_s.so` at run time: Rust asks the linker for `-lgcc_s`, and a one-line
///   linker script named `libgcc_s.so` in a folder searched first answers with the static
///   library (what `gcc -static-libgcc` does for C). Skipped when the C compiler does not
///   name a `libgcc_eh.a` and when cross-compiling; `SPECAUTH_SHARED_LIBGCC=1` keeps the
///   shared one.
fn link_for_start_up() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    println!("cargo:rerun-if-env-changed=SPECAUTH_NO_HOT_TEXT");
    println!("cargo:rerun-if-env-changed=SPECAUTH_SHARED_LIBGCC");
    let script = Path::new(&root).join("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    // Optimised builds only (`release`, and `bench` which inherits it): matching its ~600
    // patterns against every section of an unoptimised build added some 17 s to each link of
    // the debug binary, for a layout only start-up time cares about.
    let optimised = std::env::var("PROFILE").as_deref() == Ok("release");
    if optimised && std::env::var_os("SPECAUTH_NO_HOT_TEXT").is_none() && script.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
    // The C compiler asked below is the host's: a cross build keeps the shared library.
    if std::env::var_os("SPECAUTH_SHARED_LIBGCC").is_some()
        || std::env::var("HOST").ok() != std::env::var("TARGET").ok()
    {
        return;
    }
    let cc = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_owned());
    let Some(libgcc_eh) = std::process::Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .map(std::path::PathBuf::from)
        // A compiler that does not know the file prints its bare name back.
        .filter(|p| p.is_absolute() && p.is_file())
    else {
        return;
    };
    let Ok(out) = std::env::var("OUT_DIR") else {
        return;
    };
    let dir = Path::new(&out).join("static-libgcc");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("libgcc_s.so"),
            format!("INPUT(\"{}\")\n", libgcc_eh.display()),
        )
    });
    if written.is_ok() {
        println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    }
}

/// Appends to `out` a static `name` of (file stem, text) for every `*.ext` file in `dir`,
/// sorted by stem, each included with `include_str!`, and tells cargo to watch them; a file for
/// which `keep(stem, path)` is false is left out.
fn bundle(
    out: &mut String,
    dir: &Path,
    ext: &str,
    name: &str,
    doc: &str,
    keep: &dyn Fn(&str, &Path) -> bool,
) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .filter_map(|p| {
                    let id = p.file_stem()?.to_str()?.to_owned();
                    Some((id, p.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    writeln!(out, "/// {doc}").unwrap();
    writeln!(out, "pub(crate) static {name}: &[(&str, &str)] = &[").unwrap();
    for (id, path) in &entries {
        println!("cargo:rerun-if-changed={path}");
        if !keep(id, Path::new(path)) {
            continue;
        }
        writeln!(out, "    ({id:?}, include_str!({path:?})),").unwrap();
    }
    out.push_str("];\n");
}

include!("src/spec/form_source.rs");
