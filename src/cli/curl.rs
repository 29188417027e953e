//! `specauth curl PROVIDER -- ARGS…`: curl with a fresh `Authorization` header, as google's
//! oauth2l does, except that the token never appears on a command line.
//!
//! The header reaches curl as `-H @FILE` (curl ≥ 7.55 reads headers from a file), where the
//! file is a pipe this process writes the header into: `/dev/fd/N` on Unix, with the pipe's read
//! end inherited as descriptor N. An argument (`-H "Authorization: Bearer …"`) would show the
//! token to every user of the machine through `ps` and `/proc/PID/cmdline`; a temporary file
//! would put it on disk; `-H @-` would take stdin from the request body (`-d @-`, `-T -`).
//! Elsewhere than Unix, the header goes through stdin.

use std::io::Write as _;
use std::process::Command;
#[cfg(not(unix))]
use std::process::Stdio;

use clap::Args;
use specauth::Error;

use super::adapters::Freshness;
use super::format::authorization;
use super::session::valid_token;
use super::{Ctx, InputArgs};

#[derive(Args, Debug)]
pub(crate) struct CurlArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    #[command(flatten)]
    freshness: Freshness,
    /// curl's own arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CURL_ARGS")]
    curl: Vec<std::ffi::OsString>,
}

/// Runs curl and returns its exit code as specauth's.
pub(crate) fn run(ctx: &Ctx, args: &CurlArgs) -> Result<u8, Error> {
    let entry = valid_token(
        ctx,
        &args.provider,
        &args.inputs,
        args.freshness.min_valid,
        args.freshness.timeout,
    )?;
    let header = authorization(&entry.token);
    if header.contains(['\n', '\r', '\0']) {
        return Err(Error::Usage(
            "the cached token holds a line break or NUL, which cannot go into a header".into(),
        ));
    }
    let program = std::ffi::OsString::from("curl");
    let status = with_header(&program, &format!("Authorization: {header}\n"), &args.curl)?;
    Ok(exit_code(status))
}

fn spawn_error(program: &std::ffi::OsStr, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::Usage(format!(
            "`{}` is not installed or not on PATH: install curl (Debian: apt-get install curl)",
            program.to_string_lossy()
        ))
    } else {
        Error::Usage(format!("cannot run `{}`: {e}", program.to_string_lossy()))
    }
}

#[cfg(unix)]
fn with_header(
    program: &std::ffi::OsStr,
    header: &str,
    rest: &[std::ffi::OsString],
) -> Result<std::process::ExitStatus, Error> {
    use std::os::fd::AsRawFd as _;
    let pipe_error = |e: std::io::Error| Error::Usage(format!("cannot make a pipe for curl: {e}"));
    let (reader, mut writer) = std::io::pipe().map_err(pipe_error)?;
    let fd = reader.as_raw_fd();
    // The read end is made inheritable (std creates it close-on-exec), so curl finds it at the
    // same number. The write end stays close-on-exec: curl must see the end of the header.
    // SAFETY: fcntl on a descriptor this function owns; no memory is involved.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(pipe_error(std::io::Error::last_os_error()));
    }
    let mut child = Command::new(program)
        .arg("-H")
        .arg(format!("@/dev/fd/{fd}"))
        .args(rest)
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    drop(reader);
    // curl may exit before reading (a bad option): its exit code says why, not this write.
    let _ = writer.write_all(header.as_bytes());
    drop(writer);
    child
        .wait()
        .map_err(|e| Error::Usage(format!("waiting for curl: {e}")))
}

#[cfg(not(unix))]
fn with_header(
    program: &std::ffi::OsStr,
    header: &str,
    rest: &[std::ffi::OsString],
) -> Result<std::process::ExitStatus, Error> {
    let mut child = Command::new(program)
        .args(["-H", "@-"])
        .args(rest)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(header.as_bytes());
    }
    child
        .wait()
        .map_err(|e| Error::Usage(format!("waiting for curl: {e}")))
}

/// curl's exit code; killed by a signal, 128 + the signal as shells report it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(u8::MAX);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(u8::MAX);
        }
    }
    u8::MAX
}
