//! No secret ever leaves credwatch: not in a log line (at trace level), a
//! label, a metric, an error message, `/health` or the landing page — also
//! not encoded as a Basic credential, and not the `auth_token` Twilio puts in
//! the account body.

use std::time::Duration;

use base64::Engine as _;
use credwatch_sim::demo as d;
use credwatch_sim::twilio::AUTH_TOKEN_SENTINEL;
use credwatch_sim::{Fault, Simulator};

use crate::harness::{Daemon, logs};
use crate::support::{Doc, Item, el, registered_secrets, sk_sid, tw, tw_key_secret};
use serde_json::json;

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Every secret of the demo world and of this module's extra credentials, in
/// every form it could leak in.
fn needles() -> Vec<String> {
    let mut secrets: Vec<String> = [
        d::EL_AGENT_PROD_KEY,
        d::EL_NO_CONVAI_WRITE_KEY,
        d::EL_REVOKED_KEY,
        d::EL_QUOTA_EXHAUSTED_KEY,
        d::EL_QUOTA_HIGH_KEY,
        d::EL_RESTRICTED_KEY,
        d::EL_BLOCKED_KEY,
        d::TWILIO_PROD_TOKEN,
        d::TWILIO_ROTATED_TOKEN,
        d::TWILIO_ROTATED_CURRENT_TOKEN,
        d::TWILIO_STANDARD_ACCOUNT_TOKEN,
        d::TWILIO_STANDARD_KEY_SECRET,
        d::TWILIO_TRIAL_TOKEN,
        d::TWILIO_SUSPENDED_TOKEN,
        AUTH_TOKEN_SENTINEL,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (user, password) in [
        (d::TWILIO_PROD_SID, d::TWILIO_PROD_TOKEN),
        (d::TWILIO_ROTATED_SID, d::TWILIO_ROTATED_TOKEN),
        (d::TWILIO_STANDARD_KEY_SID, d::TWILIO_STANDARD_KEY_SECRET),
        (d::TWILIO_TRIAL_SID, d::TWILIO_TRIAL_TOKEN),
        (d::TWILIO_SUSPENDED_SID, d::TWILIO_SUSPENDED_TOKEN),
    ] {
        secrets.push(basic(user, password));
    }
    secrets.push(basic(&sk_sid("main-key"), &tw_key_secret("main-key")));
    secrets.push(basic(
        &sk_sid("restricted-key"),
        &tw_key_secret("restricted-key"),
    ));
    // Everything any scenario of this binary configured so far.
    secrets.extend(registered_secrets());
    secrets.sort();
    secrets.dedup();
    secrets
}

fn leaks(haystack: &str, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for n in needles {
        for (i, line) in haystack.lines().enumerate() {
            if line.contains(n.as_str()) {
                found.push(format!("`{n}` on line {}: {line}", i + 1));
                break;
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_metrics_health_or_errors_even_when_upstream_misbehaves() {
    let sim = Simulator::start(crate::upstream_safety::world())
        .await
        .expect("simulator");
    let yaml = crate::upstream_safety::config(&sim);
    let dm = Daemon::start(&yaml).await;
    dm.wait_ready(Duration::from_secs(30)).await;
    // Let the details (account bodies with their auth_token) be read.
    crate::support::wait_sample(
        &dm,
        Duration::from_secs(20),
        "credwatch_twilio_account_info",
        &["credential=\"twilio-prod\""],
        |_| true,
    )
    .await;

    // Now make upstream misbehave in every way that gets logged.
    sim.update(|w| {
        let el = &mut w.elevenlabs;
        el.key_mut(d::EL_QUOTA_HIGH_KEY).unwrap().fault = Some(Fault::WrongTypes);
        el.key_mut(d::EL_NO_CONVAI_WRITE_KEY).unwrap().fault = Some(Fault::ResetMidBody);
        el.key_mut(d::EL_RESTRICTED_KEY).unwrap().fault = Some(Fault::CloudflareHtml);
        el.key_mut(d::EL_QUOTA_EXHAUSTED_KEY).unwrap().fault = Some(Fault::Hang);
        el.key_mut(d::EL_BLOCKED_KEY).unwrap().fault = Some(Fault::Redirect {
            location: format!("http://127.0.0.1:9/?key={}", d::EL_BLOCKED_KEY),
        });
        let tw = &mut w.twilio;
        tw.account_mut(d::TWILIO_TRIAL_SID).unwrap().fault = Some(Fault::MalformedJson);
        tw.account_mut(d::TWILIO_STANDARD_ACCOUNT_SID)
            .unwrap()
            .fault = Some(Fault::InvalidUtf8);
        tw.account_mut(d::TWILIO_SUSPENDED_SID).unwrap().fault = Some(Fault::Custom {
            status: 400,
            content_type: "application/json".into(),
            body: format!(
                "{{\"code\": 99999, \"message\": \"echo {}\", \"status\": 400}}",
                d::TWILIO_SUSPENDED_TOKEN
            ),
        });
    });
    for name in [
        "el-quota-high",
        "el-no-convai-write",
        "el-restricted",
        "el-quota-exhausted",
        "el-blocked",
        "twilio-trial-low-balance",
        "twilio-standard-key",
        "twilio-suspended",
    ] {
        dm.wait_for(name, Duration::from_secs(20), |c| {
            !c["check_error"].is_null()
        })
        .await;
    }

    // A reload that fails on a config holding secrets (swapped SID and token).
    let good = std::fs::read_to_string(dm.config_path()).expect("config");
    let swapped = Doc::parse(&good).push(
        "twilio",
        Item::new(json!({
            "name": "twilio-swapped",
            "account_sid": d::TWILIO_PROD_TOKEN,
            "auth_token": d::TWILIO_PROD_SID,
        })),
    );
    std::fs::write(dm.config_path(), swapped.render()).expect("write config");
    let (code, reload_error) = dm.post_reload().await;
    assert_eq!(code, 500);
    assert_eq!(reload_error, credwatch::server::RELOAD_FAILED);

    let mut bodies = vec![
        ("POST /-/reload", reload_error),
        ("/metrics", dm.metrics().await),
        ("/health", dm.get("/health").await.1),
        ("/health?verbose=1", dm.get("/health?verbose=1").await.1),
        ("/", dm.get("/").await.1),
    ];
    let (_, h) = dm.health().await;
    for c in h["credentials"].as_array().expect("credentials") {
        let name = c["name"].as_str().expect("name");
        bodies.push((
            "/health?credential=",
            dm.get(&format!("/health?credential={name}")).await.1,
        ));
    }
    dm.stop().await;

    let needles = needles();
    let mut found = Vec::new();
    for (what, body) in &bodies {
        for leak in leaks(body, &needles) {
            found.push(format!("{what}: {leak}"));
        }
    }
    let logs = logs();
    // The capture works, and it saw the trouble.
    assert!(logs.contains("no definitive answer"), "no error was logged");
    assert!(
        logs.contains("configuration reload failed") && logs.contains("swapped"),
        "the failed reload's detail is in the log"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "not at trace level"
    );
    for leak in leaks(&logs, &needles) {
        found.push(format!("log: {leak}"));
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// A secret typed under the wrong key (`critical: sk_…`, `interval: sk_…`,
/// `base_url: sk_…`, …) is refused naming the file, the key path and what was
/// expected — by `credwatch validate`, `credwatch check` and a reload — and
/// never repeated (serde's own messages quote the value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_typed_under_the_wrong_key_is_never_echoed() {
    use crate::check::credwatch;
    use crate::harness::tempdir::TempDir;

    let secret = crate::support::el_key("typed-under-the-wrong-key");
    let tw_secret = crate::support::tw_token("typed-under-the-wrong-key");
    let good_key = crate::support::el_key("wrong-key-good");
    let a = || Item::new(json!({"name": "a", "api_key": good_key}));
    let item = |a: Item| Doc::new().push("elevenlabs", a).render();
    let key = |v: String| item(Item::new(json!({"name": "a", "api_key": v})));
    // serde stops at the first wrong type, so one file per wrong type; the
    // validator's own checks are all reported from one file.
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            item(a().set("critical", &secret)),
            vec!["elevenlabs[0].critical", "expected `true` or `false`"],
        ),
        (
            item(a().set("interval", &secret)),
            vec!["elevenlabs[0].interval", "expected a duration"],
        ),
        (
            item(a().set("required_permissions", &tw_secret)),
            vec!["elevenlabs[0].required_permissions", "expected a list"],
        ),
        // A secret with a wrapper (quotes, `Bearer `, a dotenv line) is named
        // as such, with the fix, and not repeated.
        (
            key(format!("\"{secret}\"")),
            vec!["elevenlabs[0].api_key", "is wrapped in quotes"],
        ),
        (
            key(format!("Bearer {secret}")),
            vec!["elevenlabs[0].api_key", "starts with `Bearer `"],
        ),
        (
            key(format!("ELEVENLABS_API_KEY={secret}")),
            vec![
                "elevenlabs[0].api_key",
                "is a whole `ELEVENLABS_API_KEY=…` line",
            ],
        ),
        (
            Doc::new()
                .set("max_concurrent_requests_per_host", &tw_secret)
                .render(),
            vec![
                "max_concurrent_requests_per_host",
                "expected a whole number",
            ],
        ),
        (
            item(a().set(&secret, true)),
            vec!["elevenlabs[0]: an unknown key"],
        ),
        (
            Doc::new()
                .set("listen", &secret)
                .push(
                    "elevenlabs",
                    a().set("base_url", &secret)
                        .set("phone_numbers", true)
                        .set("twilio", &tw_secret)
                        .set("required_permissions", [&secret]),
                )
                .push(
                    "elevenlabs",
                    Item::new(json!({"name": "b", "api_key_env": tw_secret})),
                )
                .render(),
            vec![
                "listen: is not a listen address",
                "elevenlabs[0].base_url: is not a URL",
                "elevenlabs[0].twilio: is not the name of a configured Twilio credential",
                "elevenlabs[0].required_permissions[0]: credwatch has no side-effect-free probe",
                "elevenlabs[1].api_key_env: the environment variable this key names",
            ],
        ),
    ];
    let dir = TempDir::new();
    let path = dir.path().join("config.yaml");
    let path_text = path.to_string_lossy().into_owned();
    for (yaml, expected) in &cases {
        std::fs::write(&path, yaml).expect("write config");
        for command in ["validate", "check"] {
            let run = credwatch(
                vec![command.into(), "--config".into(), path_text.clone()],
                vec![],
            )
            .await;
            assert_eq!(run.code, 2, "{yaml}\n{run:?}");
            for s in [&secret, &tw_secret] {
                assert!(
                    !run.stdout.contains(s.as_str()) && !run.stderr.contains(s.as_str()),
                    "`{command}` echoed the secret:\n{yaml}\n{run:?}"
                );
            }
            assert!(run.stderr.contains(&path_text), "{run:?}");
            for e in expected {
                assert!(run.stderr.contains(e), "`{e}` missing:\n{yaml}\n{run:?}");
            }
        }
    }

    // A reload: the answer and the log say what is wrong, not the value.
    let mut world = credwatch_sim::World::default();
    world
        .elevenlabs
        .add_account(credwatch_sim::ElAccount::new("ws-wrong-key"));
    world.elevenlabs.add_key(
        good_key.clone(),
        credwatch_sim::ElKey::new("keyItWrongKey", "ws-wrong-key"),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let based = || a().set("base_url", sim.elevenlabs_url());
    let dm = crate::harness::Daemon::start(&item(based())).await;
    std::fs::write(dm.config_path(), item(based().set("critical", &secret))).expect("write config");
    let (code, body) = dm.post_reload().await;
    assert_eq!(code, 500);
    dm.stop().await;
    assert!(!body.contains(&secret), "{body}");
    // The answer is generic; the detail is in the log only.
    assert_eq!(
        body.trim(),
        credwatch::server::RELOAD_FAILED.trim(),
        "{body}"
    );
    let logs = logs();
    assert!(
        logs.contains("elevenlabs[0].critical: expected `true` or `false`"),
        "the failed reload was not logged"
    );
    assert!(
        leaks(&logs, &[secret]).is_empty(),
        "the log echoed the secret"
    );
}

/// A core file would hold every secret: the binary sets its core-file limit
/// to 0 at start, even when started with core dumps allowed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_with_core_dumps_disabled() {
    use crate::harness::tempdir::TempDir;

    /// Stops the child however the test ends.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let dir = TempDir::new();
    let config = dir.path().join("config.yaml");
    let key = crate::support::el_key("core-dumps");
    let yaml = Doc::new().push("elevenlabs", el("a", &key, "http://127.0.0.1:9", ""));
    std::fs::write(&config, yaml.render()).expect("write config");
    // The shell allows core files (soft limit 1 KiB), then becomes credwatch.
    let child = Child(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -S -c 1024 2>/dev/null; exec \"$0\" serve --config \"$1\" --listen 127.0.0.1:0")
            .arg(env!("CARGO_BIN_EXE_credwatch"))
            .arg(&config)
            .env_remove("CREDWATCH_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start credwatch"),
    );
    let proc_dir = format!("/proc/{}", child.0.id());
    let line = crate::support::eventually(
        std::time::Duration::from_secs(30),
        "credwatch to run with a core-file limit of 0",
        || {
            let proc_dir = proc_dir.clone();
            async move {
                // Only once `sh` has become credwatch.
                let exe =
                    std::fs::read_link(format!("{proc_dir}/exe")).map_err(|e| e.to_string())?;
                if !exe.to_string_lossy().contains("credwatch") {
                    return Err(format!("still {}", exe.display()));
                }
                let text = std::fs::read_to_string(format!("{proc_dir}/limits"))
                    .map_err(|e| e.to_string())?;
                let line = text
                    .lines()
                    .find(|l| l.starts_with("Max core file size"))
                    .ok_or("no core line")?
                    .to_string();
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.get(4..6) == Some(&["0", "0"][..]) {
                    Ok(line)
                } else {
                    Err(line)
                }
            }
        },
    )
    .await;
    drop(child);
    assert!(line.starts_with("Max core file size"), "{line}");
}

/// A proxy on 127.0.0.1 that records every byte it is sent and answers 502.
struct FakeProxy {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProxy {
    async fn start() -> FakeProxy {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, c) = (seen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let seen = s.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 65536 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock().expect("lock").extend_from_slice(&got);
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        FakeProxy {
            url,
            seen,
            connections,
            task,
        }
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("lock")).into_owned()
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The attack: with `HTTP_PROXY` (and every other proxy variable) set, a
/// plain-http upstream was reached through the proxy, which read the
/// `xi-api-key` and the Basic `Authorization` header in clear. The real
/// binary, started with those variables, goes to the (loopback) upstream
/// directly; the proxy receives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_never_sees_a_secret_sent_over_plain_http() {
    use crate::harness::tempdir::TempDir;
    use crate::support::{ac_sid, el_key, tw_token};
    use credwatch_sim::{ElAccount, ElKey, TwilioAccount, World};

    let proxy = FakeProxy::start().await;
    let key = el_key("through-a-proxy");
    let (sid, token) = (ac_sid("through-a-proxy"), tw_token("through-a-proxy"));
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-proxy"));
    world
        .elevenlabs
        .add_key(key.clone(), ElKey::new("keyItProxy", "ws-proxy"));
    world.twilio.add_account(
        TwilioAccount::new(sid.clone(), token.clone()).with_numbers(&["+15005550006"]),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let dir = TempDir::new();
    let config = dir.path().join("config.yaml");
    let yaml = Doc::new()
        .push(
            "elevenlabs",
            el("el", &key, &sim.elevenlabs_url(), "")
                .set("allow_insecure_http", true)
                .set("required_permissions", Vec::<String>::new()),
        )
        .push(
            "twilio",
            tw("tw", &sid, &token, &sim.twilio_url(), "").set("allow_insecure_http", true),
        );
    std::fs::write(&config, yaml.render()).expect("write config");
    let proxy_url = proxy.url.clone();
    let run = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"));
        cmd.args(["check", "--config"]).arg(&config);
        for var in ["CREDWATCH_CONFIG", "NO_PROXY", "no_proxy"] {
            cmd.env_remove(var);
        }
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env(var, &proxy_url);
        }
        cmd.output().expect("run credwatch")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let seen = proxy.seen();
    let basic = basic(&sid, &token);
    for secret in [key.as_str(), token.as_str(), basic.as_str()] {
        assert!(
            !seen.contains(secret),
            "the proxy received a secret:\n{seen}"
        );
    }
    assert_eq!(
        proxy.connections(),
        0,
        "plain http went through the proxy:\n{seen}"
    );
    // The upstream was reached directly, and answered.
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(sim.request_count() >= 2);
}

/// https upstreams honour `HTTPS_PROXY` through a CONNECT tunnel (the proxy
/// sees the host, never a header), and `NO_PROXY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_goes_through_a_connect_tunnel_and_no_proxy_is_honoured() {
    use credwatch::config::Provider;
    use credwatch::providers::http::{Auth, Upstream};
    use credwatch::secret::Secret;
    use std::collections::HashMap;

    let proxy = FakeProxy::start().await;
    let key = Secret::new(crate::support::el_key("connect-tunnel"));
    let env: HashMap<String, String> = [
        ("HTTPS_PROXY".to_string(), proxy.url.clone()),
        ("HTTP_PROXY".to_string(), proxy.url.clone()),
    ]
    .into();
    // GET /v1/user with the key from a client built on `env`, at a port
    // nothing listens on.
    let get_user = |env: HashMap<String, String>| {
        let key = &key;
        async move {
            Upstream::with_env(4, None, &env)
                .expect("client")
                .get(
                    Provider::ElevenLabs,
                    "https://127.0.0.1:1",
                    "/v1/user",
                    Auth::Header {
                        name: "xi-api-key",
                        prefix: "",
                        secret: key,
                    },
                    Duration::from_secs(5),
                )
                .await
        }
    };
    let answer = get_user(env.clone()).await;
    assert!(answer.is_err(), "the proxy refused the tunnel: {answer:?}");
    let seen = proxy.seen();
    assert!(
        seen.starts_with("CONNECT 127.0.0.1:1 HTTP/1.1\r\n"),
        "no CONNECT:\n{seen}"
    );
    assert!(
        !seen.contains(key.expose()) && !seen.to_ascii_lowercase().contains("xi-api-key"),
        "{seen}"
    );

    let before = proxy.connections();
    let mut env = env;
    env.insert("NO_PROXY".into(), "127.0.0.1".into());
    let answer = get_user(env).await;
    assert!(answer.is_err(), "nothing listens on port 1: {answer:?}");
    assert_eq!(proxy.connections(), before, "NO_PROXY was not honoured");
}
