//! The one way this crate listens: a TCP listener on 127.0.0.1.

/// A blocking TCP listener on `127.0.0.1:port` (0 picks a free port), and the port it got.
pub(crate) fn bind(port: u16) -> std::io::Result<(std::net::TcpListener, u16)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}
