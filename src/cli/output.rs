//! Writing to the terminal: stdout writes that end quietly when the reader goes away, and
//! every string from outside made printable.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use specauth::Error;

/// Set when a write to stdout found its reader gone (`specauth … | head -1`).
pub(crate) static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout, flushed, so a failure surfaces at the write that caused it. A failed write
/// is an [`Error::Io`] the command returns with `?`, ending it; when the reader went away (a
/// broken pipe), [`super::main`] then exits 0 without a word, as `head` and other pipe readers expect.
///
/// Rust ignores SIGPIPE, so `println!` would panic instead. Restoring SIGPIPE's default would
/// make the kernel kill the process at any write to a closed pipe, stderr included: `-v` logging
/// to a closed pipe could then kill a refresh between the provider rotating the refresh token
/// and the cache saving the new one. Here the output stops only at stdout writes, and every
/// command writes its result to stdout after its work is done and saved.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
            }
            Error::Io {
                action: "write",
                path: PathBuf::from("standard output"),
                source,
            }
        })
}

/// Writes to stderr; a message that cannot be written there has nowhere else to go.
pub(crate) fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `text` safe for a terminal: C0 and C1 control characters and DEL (a line break splitting a
/// one-line error, an escape sequence from a server) shown as `\u{…}` escapes. Every string
/// that came from outside passes here before it is printed.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Each line of `text` made [`printable`], line breaks kept: for text of several lines.
pub(crate) fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// stderr for `-v` logs: the requests they show carry inputs and spec values, so each log
/// line passes through [`printable`].
pub(crate) struct PrintableStderr;

impl std::io::Write for PrintableStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The subscriber formats each event whole, then writes it in one call.
        let text = printable_lines(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}
