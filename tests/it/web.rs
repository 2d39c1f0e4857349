//! `--web.config.file` with real TLS (certificates generated here), real
//! client certificates and real bcrypt basic auth; the plain probe listener;
//! and an upstream whose certificate is self-signed (rejected, never trusted).

use std::sync::Arc;
use std::time::Duration;

use credwatch::cli::{Listeners, run_daemon_with};
use credwatch::config::{Config, ProcessEnv};
use credwatch_sim::{Simulator, World, demo as d};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tokio::net::TcpListener;

use crate::harness::{init_logs, tempdir::TempDir};

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "credwatch test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    let server_cert = server.signed_by(&server_key, &issuer).expect("server cert");
    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(vec!["prometheus".to_string()]).expect("client params");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).expect("client cert");
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

struct Running {
    main: String,
    main_port: u16,
    probe: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
    _sim: Simulator,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(pki: &Pki, web_yaml: &str) -> Running {
    start_checking(pki, web_yaml, "  interval: 2s\n  timeout: 1s\n").await
}

/// [`start`] with the given `defaults:` body.
async fn start_checking(pki: &Pki, web_yaml: &str, defaults: &str) -> Running {
    init_logs();
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let dir = TempDir::new();
    for (name, text) in [
        ("ca.pem", &pki.ca_pem),
        ("server.pem", &pki.server_cert),
        ("server.key", &pki.server_key),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write pki");
    }
    let web_path = dir.path().join("web.yml");
    std::fs::write(&web_path, web_yaml).expect("write web config");
    let yaml = format!(
        "defaults:\n{defaults}elevenlabs:\n  - name: el\n    api_key: {}\n    base_url: {}\n",
        d::EL_AGENT_PROD_KEY,
        sim.elevenlabs_url()
    );
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, yaml).expect("write config");
    let config = Config::load(&config_path, &ProcessEnv).expect("config");
    let web = credwatch::web::WebConfig::new(&web_path).expect("web config");
    let main = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (main_addr, probe_addr) = (
        main.local_addr().expect("addr"),
        probe.local_addr().expect("addr"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run_daemon_with(
        Listeners {
            main,
            probe: Some(probe),
            web: Some(Arc::new(web)),
            enable_lifecycle: false,
        },
        config,
        move || Config::load(&config_path, &ProcessEnv),
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        main: format!("https://localhost:{}", main_addr.port()),
        main_port: main_addr.port(),
        probe: format!("http://127.0.0.1:{}", probe_addr.port()),
        stop: Some(stop),
        _dir: dir,
        _sim: sim,
    }
}

fn client(pki: &Pki, identity: bool) -> reqwest::Client {
    credwatch::providers::http::install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("ca")]);
    if identity {
        let pem = format!("{}{}", pki.client_cert, pki.client_key);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    b.build().expect("client")
}

// "secret" hashed with bcrypt cost 4 (fast for tests).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

/// GET `url` anonymously.
async fn get(c: &reqwest::Client, url: &str) -> reqwest::Response {
    c.get(url).send().await.expect("answer")
}

/// GET `url` with Basic authentication as `user`.
async fn get_as(c: &reqwest::Client, url: &str, user: &str, password: &str) -> reqwest::Response {
    c.get(url)
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_protect_every_endpoint_while_the_probe_listener_stays_plain() {
    let pki = pki();
    let web = format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\nbasic_auth_users:\n  prometheus: \"{}\"\n",
        hash("s3cret")
    );
    let r = start(&pki, &web).await;
    let c = client(&pki, false);

    let anonymous = c
        .get(format!("{}/metrics", r.main))
        .send()
        .await
        .expect("TLS works");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"credwatch\""
    );
    let metrics = format!("{}/metrics", r.main);
    let wrong = get_as(&c, &metrics, "prometheus", "nope").await;
    assert_eq!(wrong.status(), 401);
    let ok = get_as(&c, &metrics, "prometheus", "s3cret").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert!(
        ok.text()
            .await
            .expect("body")
            .contains("credwatch_build_info")
    );

    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/livez",
            r.main.rsplit(':').next().expect("port")
        ))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));

    // The probe listener: plain HTTP, no auth, probes only.
    let p = reqwest::Client::new();
    let probe = |path: &str| format!("{}{path}", r.probe);
    assert_eq!(get(&p, &probe("/livez")).await.status(), 200);
    let health = get(&p, &probe("/health?verbose=1")).await;
    let code = health.status();
    let body = health.text().await.expect("body");
    assert!(code == 200 || code == 503, "{code}");
    // Strangers learn the status and nothing else: no names, no reasons.
    assert!(
        body == "{\"status\":\"ok\"}\n" || body == "{\"status\":\"fail\"}\n",
        "{body}"
    );
    let one = get(&p, &probe("/health?credential=el")).await;
    assert!(matches!(one.status().as_u16(), 200 | 503));
    assert!(!one.text().await.expect("body").contains("\"el\""));
    let unknown = get(&p, &probe("/health?credential=no-such-name")).await;
    assert_eq!(unknown.status(), 404);
    assert!(!unknown.text().await.expect("body").contains("no-such-name"));
    // The main, authenticated listener keeps the detail.
    let full = get_as(&c, &format!("{}/health", r.main), "prometheus", "s3cret").await;
    let full = full.text().await.expect("body");
    assert!(
        full.contains("\"healthy\":") && full.contains("\"credentials\":["),
        "{full}"
    );
    assert_eq!(get(&p, &probe("/metrics")).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let pki = pki();
    let web = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n";
    let r = start(&pki, web).await;
    let without = client(&pki, false)
        .get(format!("{}/livez", r.main))
        .send()
        .await;
    assert!(
        without.is_err(),
        "no client certificate must fail the handshake: {without:?}"
    );
    let with = client(&pki, true)
        .get(format!("{}/livez", r.main))
        .send()
        .await
        .expect("mTLS works");
    assert_eq!(with.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_picked_up_without_a_restart() {
    let first = pki();
    let web = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let r = start(&first, web).await;
    assert_eq!(
        client(&first, false)
            .get(format!("{}/livez", r.main))
            .send()
            .await
            .expect("first")
            .status(),
        200
    );
    // A new CA and certificate replace the files (as cert-manager would).
    let second = pki();
    let dir = r._dir.path();
    std::fs::write(dir.join("server.key.tmp"), &second.server_key).expect("write");
    std::fs::write(dir.join("server.pem.tmp"), &second.server_cert).expect("write");
    std::fs::rename(dir.join("server.key.tmp"), dir.join("server.key")).expect("rename");
    std::fs::rename(dir.join("server.pem.tmp"), dir.join("server.pem")).expect("rename");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Fresh clients: no connection reuse across the rotation.
        let new_ok = client(&second, false)
            .get(format!("{}/livez", r.main))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if new_ok {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        client(&first, false)
            .get(format!("{}/livez", r.main))
            .send()
            .await
            .is_err(),
        "the old CA no longer verifies the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_with_a_self_signed_certificate_is_rejected_as_a_network_failure() {
    init_logs();
    let pki = pki();
    // A TLS server with a certificate no public root signs.
    use rustls::pki_types::pem::PemObject;
    let certs = vec![
        rustls::pki_types::CertificateDer::from_pem_slice(pki.server_cert.as_bytes())
            .expect("cert"),
    ];
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).expect("key");
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let completed = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let completed = completed.clone();
            tokio::spawn(async move {
                if acceptor.accept(stream).await.is_ok() {
                    completed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    let d = crate::harness::Daemon::start(&format!(
        "defaults:\n  interval: 1s\n  timeout: 500ms\nelevenlabs:\n  - name: self-signed\n    api_key: sk_never_sent_anywhere_0001\n    base_url: https://localhost:{port}\n"
    ))
    .await;
    let c = d
        .wait_for("self-signed", Duration::from_secs(10), |c| {
            c["check_error"] == "network"
        })
        .await;
    assert_eq!(
        c["valid"],
        serde_json::Value::Null,
        "no verdict from a host we cannot trust: {c}"
    );
    assert_eq!(
        handshakes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the handshake never completed, so the key was never sent"
    );
    d.stop().await;
}

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
async fn web_reload_ok(c: &reqwest::Client, r: &Running) -> Option<f64> {
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

async fn wait_web_reload(c: &reqwest::Client, r: &Running, want: f64) {
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
async fn still_protected(c: &reqwest::Client, r: &Running) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_neither_stalls_probes_nor_checks_nor_locks_out_the_right_password() {
    let pki = pki();
    // Cost 12, as in the report: about a quarter of a second of CPU per check.
    let hash12 = tokio::task::spawn_blocking(|| bcrypt::hash("the-right-one", 12).expect("hash"))
        .await
        .expect("hash");
    let web = format!("basic_auth_users:\n  prometheus: \"{hash12}\"\n");
    let r = start_checking(&pki, &web, "  interval: 1s\n  timeout: 900ms\n").await;
    let main = format!("http://127.0.0.1:{}", r.main_port);
    let scraper = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let scrape = || async {
        scraper
            .get(format!("{main}/metrics"))
            .basic_auth("prometheus", Some("the-right-one"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    // Prometheus was scraping before the attack began.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while scrape().await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape before the attack"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let attack = Duration::from_secs(10);
    let until = std::time::Instant::now() + attack;
    let statuses = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u32>::new(),
    ));
    // The guessers run on their own runtime and thread, as another process would.
    let guessers = {
        let statuses = statuses.clone();
        let url = format!("{main}/metrics");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut guessers = tokio::task::JoinSet::new();
                for i in 0..32u8 {
                    // Each guesser from its own loopback address.
                    let local = std::net::IpAddr::from([127, 0, 0, 10 + i]);
                    let client = reqwest::Client::builder()
                        .local_address(local)
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("client");
                    let url = url.clone();
                    let statuses = statuses.clone();
                    guessers.spawn(async move {
                        while std::time::Instant::now() < until {
                            let guess = format!("guess-{:016x}", fastrand::u64(..));
                            let user = if fastrand::bool() {
                                "prometheus"
                            } else {
                                "admin"
                            };
                            let status = client
                                .get(&url)
                                .basic_auth(user, Some(guess))
                                .send()
                                .await
                                .map(|r| r.status().as_u16())
                                .unwrap_or(0);
                            *statuses.lock().unwrap().entry(status).or_default() += 1;
                        }
                    });
                }
                while guessers.join_next().await.is_some() {}
            })
        })
    };
    let requests_before = r._sim.request_count();
    // The kubelet is another process too: its own thread, a fresh
    // connection per probe, every 50 ms.
    let kubelet = {
        let url = format!("{}/livez", r.probe);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut probes = Vec::new();
                while std::time::Instant::now() < until {
                    let started = std::time::Instant::now();
                    let status = client
                        .get(&url)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    probes.push((status, started.elapsed()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                probes
            })
        })
    };
    let mut scrapes = Vec::new();
    while std::time::Instant::now() < until {
        scrapes.push(scrape().await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let upstream = r._sim.request_count() - requests_before;
    tokio::task::spawn_blocking(move || guessers.join())
        .await
        .expect("join")
        .expect("guessers");
    let probes = tokio::task::spawn_blocking(move || kubelet.join())
        .await
        .expect("join")
        .expect("kubelet");
    assert!(
        probes.iter().all(|(status, _)| *status == 200),
        "a probe failed during the attack: {probes:?}"
    );
    let mut latencies: Vec<Duration> = probes.iter().map(|(_, l)| *l).collect();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let statuses = statuses.lock().unwrap().clone();
    eprintln!(
        "probes: {} p99 {p99:?} max {:?}; guesses: {statuses:?}; scrapes: {scrapes:?}; upstream requests: {upstream}",
        latencies.len(),
        latencies.last()
    );
    assert!(
        p99 < Duration::from_millis(100),
        "/livez on the probe port: p99 {p99:?}"
    );
    assert!(
        scrapes.iter().all(|s| *s == 200),
        "the right password was refused: {scrapes:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "guessing was never throttled: {statuses:?}"
    );
    assert!(
        !statuses.contains_key(&200),
        "a random guess got in: {statuses:?}"
    );
    // One authentication check a second for 10 s; allow for a late start.
    assert!(
        upstream >= 7,
        "upstream checks fell behind: {upstream} requests in {attack:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_per_client_address() {
    let pki = pki();
    let r = start(
        &pki,
        &format!("basic_auth_users:\n  prometheus: \"{}\"\n", hash("s3cret")),
    )
    .await;
    let url = format!("http://127.0.0.1:{}/livez", r.main_port);
    let from = |host: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, host]))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    };
    let (guesser, neighbour) = (from(40), from(41));
    let burst = credwatch::server::Limits::default().auth_failure_burst;
    let mut statuses = Vec::new();
    for i in 0..burst + 5 {
        let answer = get_as(&guesser, &url, "prometheus", &format!("guess{i}")).await;
        statuses.push((
            answer.status().as_u16(),
            answer.headers().contains_key("retry-after"),
        ));
    }
    let limited = &statuses[burst as usize..];
    assert!(
        statuses[..burst as usize].iter().all(|s| s.0 == 401)
            && limited.iter().all(|s| *s == (429, true)),
        "{statuses:?}"
    );
    // In this order: the answers depend on what came before.
    for (step, from, password, want) in [
        (
            "even the right password waits, from that address, until the allowance refills",
            &guesser,
            "s3cret",
            429,
        ),
        (
            "another address is not affected (wrong password)",
            &neighbour,
            "nope",
            401,
        ),
        (
            "another address is not affected (right password)",
            &neighbour,
            "s3cret",
            200,
        ),
        (
            "once verified, the right password is served from the cache, from any address",
            &guesser,
            "s3cret",
            200,
        ),
    ] {
        let status = get_as(from, &url, "prometheus", password).await.status();
        assert_eq!(status, want, "{step}");
    }
}

/// Issue #21, for the web config: it is re-read on the request path, so a
/// FIFO put in place of it (or of the key file, or `/dev/zero` behind a
/// symlink) used to block the request that noticed the change, and every
/// request after it behind the same lock. Each is refused at once:
/// requests keep being answered, `credwatch_web_config_last_reload_successful`
/// drops to 0 with the reason logged, and a good file is applied again.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_config_or_key_file_that_is_a_fifo_or_a_device_is_refused_not_waited_on() {
    /// Without the fix a reader blocks on the FIFO forever, on a runtime
    /// worker, where no tokio timer can end the test: a writer that opens
    /// and closes it releases the reader.
    fn release(fifo: &std::path::Path) {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        if std::fs::symlink_metadata(fifo).is_ok_and(|m| m.file_type().is_fifo()) {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
        }
    }
    let pki = pki();
    let users = format!("basic_auth_users:\n  prometheus: \"{}\"\n", hash("s3cret"));
    let tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let r = start(&pki, &format!("{tls}{users}")).await;
    let c = client(&pki, false);
    wait_web_reload(&c, &r, 1.0).await;
    let dir = r._dir.path().to_path_buf();
    // A watchdog on a plain thread: every 20 s it releases whatever FIFO is
    // in place, so a blocked reader (no fix) ends in a failed assertion
    // rather than a hung test. With the fix nothing ever waits on them.
    let (done, watched) = std::sync::mpsc::channel::<()>();
    let watch_dir = dir.clone();
    std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watched.recv_timeout(Duration::from_secs(20))
        {
            for name in ["web.yml", "server.key"] {
                release(&watch_dir.join(name));
            }
        }
    });
    let cases: [(&str, bool); 3] = [
        ("web.yml", true),
        ("server.key", true),
        ("server.key", false),
    ];
    for (name, fifo) in cases {
        let file = dir.join(name);
        let good = std::fs::read(&file).expect("read");
        std::fs::remove_file(&file).expect("rm");
        if fifo {
            let made = std::process::Command::new("mkfifo")
                .arg(&file)
                .status()
                .expect("mkfifo runs");
            assert!(made.success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &file).expect("symlink");
        }
        // Requests keep being answered (the client gives up after 5 s).
        wait_web_reload(&c, &r, 0.0).await;
        let logs = crate::harness::logs();
        assert!(
            logs.lines()
                .any(|l| l.contains("web config changed but was refused")
                    && l.contains("not a regular file")),
            "{name}: the reason is logged:\n{logs}"
        );
        still_protected(&c, &r).await;
        let probe = reqwest::Client::new()
            .get(format!("{}/livez", r.probe))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the probe listener answers");
        assert_eq!(probe.status(), 200);
        std::fs::remove_file(&file).expect("rm");
        std::fs::write(&file, &good).expect("restore");
        wait_web_reload(&c, &r, 1.0).await;
    }
    drop(done);
}
