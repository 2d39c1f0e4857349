//! Web-config changes on a running server: a user removed mid-connection,
//! and a reload that would switch TLS or auth off.

use super::*;

/// Sends `GET {path}` on an open connection and reads one response: its
/// status, or `None` if the server closed the connection.
async fn keep_alive_get(
    s: &mut tokio::net::TcpStream,
    path: &str,
    authorization: Option<(&str, &str)>,
) -> Option<u16> {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let auth = authorization
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").as_bytes())
        .await
        .ok()?;
    // Read the head, then exactly Content-Length bytes: the connection stays usable.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    head.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_from_the_web_config_gets_401_on_its_next_request_on_a_kept_alive_connection()
 {
    let pki = pki();
    let users = |names: &[&str]| {
        let mut y = String::from("basic_auth_users:\n");
        for n in names {
            y += &format!("  {n}: \"{}\"\n", hash(&format!("{n}-password")));
        }
        y
    };
    let r = start(&pki, &users(&["alice", "bob"])).await;
    let addr = format!("127.0.0.1:{}", r.main_port);
    let mut alice = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    assert_eq!(
        keep_alive_get(&mut alice, "/livez", Some(("alice", "alice-password"))).await,
        Some(200)
    );
    // alice is removed (bob stays, so basic auth stays on).
    std::fs::write(r._dir.path().join("web.yml"), users(&["bob"])).expect("write");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        keep_alive_get(&mut alice, "/livez", Some(("alice", "alice-password"))).await,
        Some(401),
        "the same connection, authenticated before, is refused now"
    );
    let mut bob = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    assert_eq!(
        keep_alive_get(&mut bob, "/livez", Some(("bob", "bob-password"))).await,
        Some(200)
    );
}

/// Scrapes `/metrics` over TLS with the right password; the value of
/// `credwatch_web_config_last_reload_successful`.
pub(super) async fn web_reload_ok(c: &reqwest::Client, r: &Running) -> Option<f64> {
    let m = c
        .get(format!("{}/metrics", r.main))
        .basic_auth("prometheus", Some("s3cret"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    crate::harness::sample(&m, "credwatch_web_config_last_reload_successful", &[])
}

pub(super) async fn wait_web_reload(c: &reqwest::Client, r: &Running, want: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while web_reload_ok(c, r).await != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "credwatch_web_config_last_reload_successful never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What an attacker would see: plain HTTP on the TLS port, and an anonymous
/// TLS request.
pub(super) async fn still_protected(c: &reqwest::Client, r: &Running) {
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/metrics", r.main_port))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.is_ok_and(|p| p.status() != 200),
        "plain HTTP got /metrics on the TLS port"
    );
    let anonymous = c
        .get(format!("{}/metrics", r.main))
        .send()
        .await
        .expect("TLS still works");
    assert_eq!(anonymous.status(), 401, "authentication was switched off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_config_reload_cannot_switch_tls_or_auth_off() {
    let pki = pki();
    let users = format!("basic_auth_users:\n  prometheus: \"{}\"\n", hash("s3cret"));
    let tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let r = start(&pki, &format!("{tls}{users}")).await;
    let c = client(&pki, false);
    wait_web_reload(&c, &r, 1.0).await;
    let web = r._dir.path().join("web.yml");
    let refusals = || {
        let file = web.display().to_string();
        crate::harness::logs()
            .lines()
            .filter(|l| l.contains(&file) && l.contains("changes the security mode"))
            .count()
    };

    // A non-atomic editor write: the file is empty for a moment.
    std::fs::write(&web, "").expect("truncate");
    wait_web_reload(&c, &r, 0.0).await;
    assert_eq!(refusals(), 1);
    still_protected(&c, &r).await;

    // `tls_server_config:` with no value (YAML null), users kept.
    std::fs::write(&web, format!("tls_server_config:\n{users}")).expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while refusals() < 2 {
        assert!(std::time::Instant::now() < deadline, "not refused");
        let _ = web_reload_ok(&c, &r).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    still_protected(&c, &r).await;
    assert_eq!(web_reload_ok(&c, &r).await, Some(0.0));

    // Every user removed, TLS kept: refused too.
    std::fs::write(&web, tls).expect("write");
    while refusals() < 3 {
        assert!(std::time::Instant::now() < deadline, "not refused");
        let _ = web_reload_ok(&c, &r).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    still_protected(&c, &r).await;

    // The same mode with a new password is applied.
    std::fs::write(
        &web,
        format!(
            "{tls}basic_auth_users:\n  prometheus: \"{}\"\n  other: \"{}\"\n",
            hash("s3cret"),
            hash("other")
        ),
    )
    .expect("write");
    wait_web_reload(&c, &r, 1.0).await;
    let other = get_as(&c, &format!("{}/livez", r.main), "other", "other").await;
    assert_eq!(other.status(), 200);
}
