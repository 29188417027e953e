//! The `specauth` command line: a thin layer over the library.
//!
//! On Linux with glibc the process starts at the C `main` below instead of Rust's own start-up routine
//! (`#![no_main]`): that routine spent a sixth of a cached `print-token` (107 k of 633 k
//! instructions, measured with callgrind) reading `/proc/self/maps` to find the main thread's
//! stack, only to print a message on a stack overflow. What the CLI relies on from it is done
//! here: SIGPIPE ignored (a write to a closed pipe is an error the CLI handles, see
//! `cli/output.rs`), a panic reported with exit code 101, and the standard streams flushed at
//! exit (`std::process::exit` does). Arguments come from the C runtime as before: the standard
//! library reads them itself on glibc (not on musl, where the usual start-up stays).
// Not in the unit tests of the binary (`cargo test --bins`): their harness brings its own `main`.
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod cli;

/// The process entry point, called by the C runtime.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: sets a signal's disposition to "ignore" before any thread exists, as Rust's own
    // start-up does.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = std::panic::catch_unwind(cli::main).unwrap_or(101);
    std::process::exit(code.into())
}

/// libm's `pow`, from the `libm` crate (Rust's port of musl's), defined here so that the binary
/// needs no libm.so: minijinja's `**` on floats was the only reference to it, and loading libm
/// cost a cached `print-token` about 24 k instructions, 9 page faults and 340 KB of resident
/// memory (README, Performance). Both it and glibc's are within an ulp of the exact result.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(any(not(all(target_os = "linux", target_env = "gnu")), test))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cli::main())
}
