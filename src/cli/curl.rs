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
    /// For a DPoP-bound token: the resource server's last DPoP-Nonce, put in the proof.
    #[arg(long, value_name = "NONCE")]
    dpop_nonce: Option<String>,
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
    let line_break = || {
        Error::Usage(
            "the cached token holds a line break or NUL, which cannot go into a header".into(),
        )
    };
    let fits = |value: &str| !value.contains(['\n', '\r', '\0']);
    let headers = match entry.dpop_key {
        // A DPoP-bound token goes with a proof for the one request curl makes (RFC 9449 §7).
        Some(_) => {
            let (method, url) = request_of(&args.curl)?;
            let Some((authorization, proof)) =
                entry.dpop_headers(&method, &url, args.dpop_nonce.as_deref())?
            else {
                return Err(Error::Usage(
                    "the DPoP key of the cached token is gone".into(),
                ));
            };
            if !fits(authorization.secret()) || !fits(proof.secret()) {
                return Err(line_break());
            }
            format!(
                "Authorization: {}\nDPoP: {}\n",
                authorization.secret(),
                proof.secret()
            )
        }
        None => {
            let header = authorization(&entry.token);
            if !fits(&header) {
                return Err(line_break());
            }
            format!("Authorization: {header}\n")
        }
    };
    let program = std::ffi::OsString::from("curl");
    let status = with_header(&program, &headers, &args.curl)?;
    Ok(exit_code(status))
}

/// curl's short options that take a value (the rest of the cluster, or the next argument).
const SHORT_WITH_VALUE: &str = "AbcCdDeEFHKmoPQrtTuUwxXyYz";
/// Long options whose value is a URL that is not the request's.
const OTHER_URLS: &[&str] = &[
    "--proxy",
    "--preproxy",
    "--referer",
    "--doh-url",
    "--proxy1.0",
];

/// The method and URL of the one request curl's arguments `args` make, read just far enough
/// for a DPoP proof: the URL is the one `http(s)://` argument (or `--url`), skipping the values
/// of `-x/--proxy`, `-e/--referer` and the like; the method is `-X/--request`, else `HEAD`
/// for `-I`, `PUT` for `-T`, `POST` for data (`-d`, `--data*`, `-F`, `--form*`, `--json`)
/// unless `-G`, else `GET`. Refused, rather than guessed, when there is not exactly one URL
/// or several requests (`--next`).
fn request_of(args: &[std::ffi::OsString]) -> Result<(String, String), Error> {
    let refuse = |why: String| {
        Error::Usage(format!(
            "{why}: a DPoP-bound token needs a proof for the one request curl makes; give curl one http(s):// URL (and -X METHOD), or use `specauth print-token --dpop METHOD URL`"
        ))
    };
    let mut words = Vec::with_capacity(args.len());
    for a in args {
        words.push(
            a.to_str()
                .ok_or_else(|| refuse("curl's arguments are not all UTF-8".into()))?,
        );
    }
    let mut method: Option<String> = None;
    let (mut data, mut head, mut upload, mut get) = (false, false, false, false);
    let mut urls: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        i += 1;
        let mut value = || {
            let v = words.get(i).copied();
            i += 1;
            v
        };
        match word {
            "--next" | "-:" => return Err(refuse("curl's arguments make several requests".into())),
            "--request" => method = value().map(str::to_owned),
            "--url" => urls.extend(value()),
            "--head" => head = true,
            "--get" => get = true,
            "--upload-file" => {
                upload = true;
                value();
            }
            "--json" | "--form" | "--form-string" => {
                data = true;
                value();
            }
            w if w.starts_with("--data") => {
                data = true;
                value();
            }
            w if OTHER_URLS.contains(&w) => {
                value();
            }
            w if w.starts_with("--") => {}
            w if w.starts_with('-') && w.len() > 1 => {
                // A cluster of short options: flags, then at most one that takes a value.
                for (at, c) in w.char_indices().skip(1) {
                    match c {
                        'I' => head = true,
                        'G' => get = true,
                        c if SHORT_WITH_VALUE.contains(c) => {
                            let rest = &w[at + c.len_utf8()..];
                            let v = if rest.is_empty() { value() } else { Some(rest) };
                            match c {
                                'X' => method = v.map(str::to_owned),
                                'd' | 'F' => data = true,
                                'T' => upload = true,
                                _ => {}
                            }
                            break;
                        }
                        _ => {}
                    }
                }
            }
            w if w.starts_with("http://") || w.starts_with("https://") => urls.push(w),
            _ => {}
        }
    }
    let url = match urls.as_slice() {
        [one] => (*one).to_owned(),
        [] => return Err(refuse("no http(s):// URL in curl's arguments".into())),
        many => {
            return Err(refuse(format!("curl's arguments hold {} URLs", many.len())));
        }
    };
    let method = method.unwrap_or_else(|| {
        if head {
            "HEAD"
        } else if upload {
            "PUT"
        } else if data && !get {
            "POST"
        } else {
            "GET"
        }
        .to_owned()
    });
    Ok((method, url))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Result<(String, String), String> {
        let args: Vec<std::ffi::OsString> = line.split_whitespace().map(Into::into).collect();
        request_of(&args).map_err(|e| e.to_string())
    }

    fn ok(method: &str, url: &str) -> Result<(String, String), String> {
        Ok((method.to_owned(), url.to_owned()))
    }

    #[test]
    fn the_method_and_url_of_curls_one_request() {
        let u = "https://api.example.com/v1/me?x=1";
        assert_eq!(request(&format!("-sS -f {u}")), ok("GET", u));
        assert_eq!(request(&format!("-X PUT {u}")), ok("PUT", u));
        assert_eq!(request(&format!("-sXDELETE {u}")), ok("DELETE", u));
        assert_eq!(
            request(&format!("--request PATCH --url {u}")),
            ok("PATCH", u)
        );
        assert_eq!(request(&format!("-d @- {u}")), ok("POST", u));
        assert_eq!(request(&format!("-sd a=b {u}")), ok("POST", u));
        assert_eq!(
            request(&format!("--data-urlencode q=1 -G {u}")),
            ok("GET", u)
        );
        assert_eq!(request(&format!("--json {{}} {u}")), ok("POST", u));
        assert_eq!(request(&format!("-F f=@x {u}")), ok("POST", u));
        assert_eq!(request(&format!("-I {u}")), ok("HEAD", u));
        assert_eq!(request(&format!("-T file {u}")), ok("PUT", u));
        // -X wins over what the data implies; a value that looks like a URL is not one.
        assert_eq!(request(&format!("-d x -X PUT {u}")), ok("PUT", u));
        assert_eq!(
            request(&format!(
                "-x http://proxy.example:3128 -e https://ref.example {u}"
            )),
            ok("GET", u)
        );
        assert_eq!(request(&format!("-H Accept:x -o out {u}")), ok("GET", u));
    }

    #[test]
    fn curl_arguments_a_proof_cannot_cover_are_refused() {
        for (line, why) in [
            ("-s", "no http(s):// URL in curl's arguments"),
            (
                "api.example.com/me",
                "no http(s):// URL in curl's arguments",
            ),
            (
                "https://a.example/x https://b.example/y",
                "curl's arguments hold 2 URLs",
            ),
            (
                "https://a.example/x --next https://a.example/y",
                "curl's arguments make several requests",
            ),
        ] {
            let e = request(line).unwrap_err();
            assert!(e.starts_with(why), "{line}: {e}");
            assert!(e.contains("specauth print-token --dpop METHOD URL"), "{e}");
        }
    }
}
