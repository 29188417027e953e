//! The one rule for reading a local file: a regular file, read up to a size limit.

use std::io::Read as _;
use std::path::Path;

use crate::error::Error;

/// Reads `path` as UTF-8 text when it is a regular file of at most `limit` bytes. `Ok(None)`
/// when it does not exist. A device, a FIFO, a folder or a larger file is refused before it is
/// read whole, so no file can make a reader wait forever or exhaust memory.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<Option<String>, Error> {
    read_opened(path, limit, std::fs::OpenOptions::new().read(true))
}

/// [`read_text`] that refuses a symbolic link at `path` (Unix), for files in folders whose
/// contents are trusted (the token store).
#[cfg_attr(not(feature = "session"), allow(dead_code))]
pub(crate) fn read_text_no_follow(path: &Path, limit: u64) -> Result<Option<String>, Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    read_opened(path, limit, &options)
}

fn read_opened(
    path: &Path,
    limit: u64,
    options: &std::fs::OpenOptions,
) -> Result<Option<String>, Error> {
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            "read",
            path,
            std::io::Error::other("not a regular file"),
        ));
    }
    if meta.len() > limit {
        return Err(too_big(path, limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(path, limit));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::io("read", path, std::io::Error::other("not UTF-8 text")))
}

fn too_big(path: &Path, limit: u64) -> Error {
    Error::io(
        "read",
        path,
        std::io::Error::other(format!("larger than the limit of {limit} bytes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_large_files_are_refused_and_missing_ones_are_none() {
        let e = read_text(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let e = read_text(&big, 1024).unwrap_err();
        assert!(e.to_string().contains("limit of 1024 bytes"), "{e}");
        assert_eq!(read_text(&dir.path().join("none"), 10).unwrap(), None);
        std::fs::write(&big, b"ok").unwrap();
        assert_eq!(read_text(&big, 10).unwrap().as_deref(), Some("ok"));
    }
}
