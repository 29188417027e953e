//! The one way this crate listens: an HTTP server on 127.0.0.1.

/// An HTTP server on `127.0.0.1:port` (0 picks a free port), and the port it got.
pub(crate) fn bind(port: u16) -> std::io::Result<(tiny_http::Server, u16)> {
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(std::io::Error::other)?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or_else(|| std::io::Error::other("the server has no IP address"))?;
    Ok((server, port))
}
