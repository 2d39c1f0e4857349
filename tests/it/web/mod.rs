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
use crate::support::{Doc, el};

mod attacks;
mod sessions;

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
    start_checking(
        pki,
        web_yaml,
        serde_json::json!({"interval": "2s", "timeout": "1s"}),
    )
    .await
}

/// [`start`] with the given `defaults:` body.
async fn start_checking(pki: &Pki, web_yaml: &str, defaults: serde_json::Value) -> Running {
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
    let yaml = Doc::new()
        .defaults(defaults)
        .push(
            "elevenlabs",
            el("el", d::EL_AGENT_PROD_KEY, &sim.elevenlabs_url(), ""),
        )
        .render();
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
    let yaml = Doc::new()
        .defaults(serde_json::json!({"interval": "1s", "timeout": "500ms"}))
        .push(
            "elevenlabs",
            el(
                "self-signed",
                "sk_never_sent_anywhere_0001",
                &format!("https://localhost:{port}"),
                "",
            ),
        );
    let d = crate::harness::Daemon::start(&yaml.render()).await;
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
