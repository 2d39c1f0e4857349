//! Listen addresses as the Prometheus exporters write them: `:9863` (every
//! interface), `0.0.0.0:9863`, `127.0.0.1:9863`, `[::]:9863`, `[::1]:9863`,
//! for `--web.listen-address`, `--probe.listen-address`, `demo` and the
//! config's `listen:`.
//!
//! `:PORT` and `[::]:PORT` mean every interface, IPv4 and IPv6, as in Go's
//! `net.Listen`: one dual-stack socket, or IPv4 alone where the kernel has
//! no IPv6.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

/// The accepted forms, for error messages.
pub const FORMS: &str =
    "`:9863` (every interface), `0.0.0.0:9863`, `127.0.0.1:9863` or `[::]:9863`";

/// Parses a listen address; `:PORT` is `[::]:PORT` (every interface).
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix(':') {
        return port
            .parse::<u16>()
            .map(|port| SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
            .map_err(|_| format!("`:PORT` needs a port number from 0 to 65535; e.g. {FORMS}"));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| format!("is not a listen address; use {FORMS}"))
}

/// Binds `addr`. For `[::]` (every interface) the socket accepts IPv4 too,
/// whatever `net.ipv6.bindv6only` says, and falls back to `0.0.0.0` on a
/// kernel without IPv6.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if addr.ip() != Ipv6Addr::UNSPECIFIED {
        return TcpListener::bind(addr).await;
    }
    match dual_stack(addr) {
        Ok(listener) => Ok(listener),
        Err(e) if no_ipv6(&e) => {
            TcpListener::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port())).await
        }
        Err(e) => Err(e),
    }
}

fn dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As tokio's `TcpListener::bind` does: a restart rebinds at once.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// The errors of a kernel (or container) without IPv6.
fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(97 /* EAFNOSUPPORT */ | 99 /* EADDRNOTAVAIL */)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_style_addresses_are_accepted() {
        let all = |port| SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
        for (text, want) in [
            (":9863", all(9863)),
            ("[::]:9863", all(9863)),
            ("0.0.0.0:9100", "0.0.0.0:9100".parse().unwrap()),
            ("127.0.0.1:0", "127.0.0.1:0".parse().unwrap()),
            ("[::1]:9863", "[::1]:9863".parse().unwrap()),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn anything_else_says_which_forms_work() {
        for text in ["9863", ":", ":http", ":70000", "localhost", "1.2.3.4"] {
            let e = parse(text).expect_err(text);
            assert!(e.contains("`:9863` (every interface)"), "{text}: {e}");
        }
    }

    #[tokio::test]
    async fn every_interface_takes_ipv4_and_ipv6_clients() {
        let listener = bind(parse(":0").unwrap()).await.expect("bind :0");
        let port = listener.local_addr().expect("addr").port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                let _ = listener.accept().await;
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("an IPv4 client reaches `:PORT`");
        // Where the machine has IPv6 loopback, it reaches the same socket.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            tokio::net::TcpStream::connect(("::1", port))
                .await
                .expect("an IPv6 client reaches `:PORT`");
        }
        accept.abort();
    }
}
