//! Hostile clients of credwatch's own server: slow headers, huge headers,
//! floods of connections. The kubelet's probes must keep answering.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use credwatch::config::Config;
use credwatch::server::{self, App, Limits};
use credwatch::state::State;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(limits: Limits) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = Config::from_yaml(
        "elevenlabs:\n  - name: a\n    api_key: sk_limits_test_key\n    base_url: http://127.0.0.1:9\n",
        Path::new("limits.yaml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("config");
    let app = Arc::new(App {
        state: State::new(&config),
        reloader: None,
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
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf);
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
