//! Hostile clients of credwatch's own server: slow headers, huge headers,
//! floods of connections, clients that pipeline and never read, clients
//! that idle. The kubelet's probes must keep answering.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so a test
//! client can bind a source address of its own (127.0.0.2, …) and play a
//! distinct client address.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use credwatch::config::Config;
use credwatch::server::{self, App, Limits};
use credwatch::state::State;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(limits: Limits) -> (String, tokio::sync::oneshot::Sender<()>) {
    serve_credentials(limits, 1).await
}

/// A server whose state holds `n` (pending) credentials: `/metrics` grows
/// with `n` (about 1 KiB each).
async fn serve_credentials(limits: Limits, n: usize) -> (String, tokio::sync::oneshot::Sender<()>) {
    let yaml = crate::support::Doc::new().extend(
        "elevenlabs",
        (0..n).map(|i| {
            crate::support::el(
                &format!("a{i}"),
                &format!("sk_limits_test_key_{i}"),
                "http://127.0.0.1:9",
                "",
            )
        }),
    );
    let config = Config::from_yaml(
        &yaml.render(),
        Path::new("limits.yaml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("config");
    let app = Arc::new(App {
        state: State::new(&config),
        own: credwatch::metrics::own::Own::new(),
        reloader: None,
        lifecycle: false,
        web: None,
        probe_only: false,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::run(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// One request on a fresh connection; the status code, or None if the server closed it.
async fn request(addr: &str, path: &str) -> Option<u16> {
    let s = TcpStream::connect(addr).await.ok()?;
    get_to_the_end(s, path).await
}

/// `GET path` on `s` with `Connection: close`, read to the end: the status,
/// or None if the server closed the connection without one.
async fn get_to_the_end(mut s: TcpStream, path: &str) -> Option<u16> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
    head.split(' ').nth(1)?.parse().ok()
}

fn small() -> Limits {
    Limits {
        max_connections: 4,
        overflow_connections: 4,
        header_read_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

#[tokio::test]
async fn probes_still_answer_when_slow_clients_hold_every_connection() {
    let (addr, _stop) = serve(small()).await;
    // Slowloris: four connections that never finish their headers.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        request(&addr, "/livez").await,
        Some(200),
        "liveness answered from the overflow pool"
    );
    assert!(
        matches!(request(&addr, "/health").await, Some(200 | 503)),
        "readiness answered from the overflow pool"
    );
    assert_eq!(
        request(&addr, "/metrics").await,
        Some(503),
        "scrapes are shed while the server is full"
    );
    // The header timeout frees the slots.
    let deadline = Instant::now() + Duration::from_secs(6);
    while request(&addr, "/metrics").await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "slow connections were not timed out"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(slow);
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_by_the_header_timeout() {
    let (addr, _stop) = serve(small()).await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let started = Instant::now();
    s.write_all(b"GET /livez HTTP/1.1\r\n")
        .await
        .expect("write");
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(6) {
        // One header byte at a time, never finishing.
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                closed = true; // an error response, then close
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the connection stayed open");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn oversized_headers_and_request_lines_are_refused() {
    let (addr, _stop) = serve(Limits::default()).await;
    let huge = "a".repeat(64 * 1024);
    for req in [
        format!("GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n"),
        format!("GET /{huge} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ] {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        let _ = s.write_all(req.as_bytes()).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        let head = String::from_utf8_lossy(&buf);
        assert!(
            !head.starts_with("HTTP/1.1 200"),
            "an oversized request was served: {head}"
        );
    }
    assert_eq!(
        request(&addr, "/livez").await,
        Some(200),
        "and the server still works"
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let (addr, _stop) = serve(Limits::default()).await;
    assert_eq!(request(&addr, "/nope").await, Some(404));
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let head = String::from_utf8_lossy(&buf);
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
}

/// A connection from the loopback address `127.0.0.{host}` with a small
/// receive buffer (a client that reads nothing fills it at once).
async fn connect_from(host: u8, addr: &str) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, host], 0)))?;
    socket
        .connect(addr.parse().map_err(std::io::Error::other)?)
        .await
}

/// `GET path` on a fresh connection from `127.0.0.{host}`, read to the end:
/// the status, or None if the server closed the connection without one.
async fn request_from(host: u8, addr: &str, path: &str) -> Option<u16> {
    let s = connect_from(host, addr).await.ok()?;
    get_to_the_end(s, path).await
}

/// Opens a connection from `127.0.0.{host}` that pipelines `requests`
/// `GET /metrics` and never reads (None if the server refused it).
async fn never_reading(host: u8, addr: &str, requests: usize) -> Option<TcpStream> {
    let mut s = connect_from(host, addr).await.ok()?;
    let pipeline = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(requests);
    // The server may stop reading (and the write block) once it is stuck writing.
    let _ =
        tokio::time::timeout(Duration::from_millis(500), s.write_all(pipeline.as_bytes())).await;
    Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_at_the_write_deadline_and_held_to_its_address_cap() {
    let (addr, _stop) = serve_credentials(
        Limits {
            max_connections_per_address: 1,
            write_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        500,
    )
    .await;
    let stuck = never_reading(2, &addr, 200).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        request_from(2, &addr, "/livez").await,
        None,
        "a second connection from the same address is closed at once"
    );
    assert_eq!(
        request_from(1, &addr, "/livez").await,
        Some(200),
        "other addresses are served"
    );
    // The write deadline frees the address's slot.
    let deadline = Instant::now() + Duration::from_secs(8);
    while request_from(2, &addr, "/livez").await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the never-reading connection was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_never_reading_and_trickling_clients_lock_out_neither_probes_nor_scrapes() {
    let limits = Limits {
        max_connections: 64,
        overflow_connections: 8,
        max_connections_per_address: 16,
        write_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let (addr, _stop) = serve_credentials(limits, 300).await;
    let attack = Instant::now() + Duration::from_secs(6);
    // 200 connections pipelining 200 scrapes each, never reading, from 127.0.0.2.
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Some(s) = never_reading(2, &addr, 200).await {
            held.push(s);
        }
    }
    // 80 clients from 127.0.0.3 trickling header bytes, reconnecting when cut off.
    let mut tricklers = tokio::task::JoinSet::new();
    for _ in 0..80 {
        let addr = addr.clone();
        tricklers.spawn(async move {
            while Instant::now() < attack {
                if let Ok(mut s) = connect_from(3, &addr).await {
                    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n").await;
                    while Instant::now() < attack && s.write_all(b"X").await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let (mut probes, mut scrapes) = (0, 0);
    while Instant::now() < attack {
        for path in ["/livez", "/readyz", "/health"] {
            let status = request_from(1, &addr, path).await;
            assert!(
                matches!(status, Some(200 | 503)) && (path != "/livez" || status == Some(200)),
                "probe {path} got {status:?} during the attack"
            );
            probes += 1;
        }
        assert_eq!(
            request_from(1, &addr, "/metrics").await,
            Some(200),
            "a fresh scrape was not served during the attack"
        );
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        probes > 10 && scrapes > 3,
        "{probes} probes, {scrapes} scrapes"
    );
    while tricklers.join_next().await.is_some() {}
    drop(held);
}

#[tokio::test]
async fn one_connection_serves_a_bounded_number_of_requests() {
    let (addr, _stop) = serve(Limits::default()).await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(
        "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
            .repeat(150)
            .as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("the server closes the connection")
        .expect("read");
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(
        text.matches("HTTP/1.1 200").count(),
        Limits::default().max_requests_per_connection
    );
    assert!(text.to_ascii_lowercase().contains("connection: close"));
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_deadline() {
    let (addr, _stop) = serve(Limits {
        idle_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the idle connection stayed open");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}
