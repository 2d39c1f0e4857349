//! The probes Kubernetes and people use: `/livez` never depends on
//! credentials, `/readyz` waits for the first round, `/health` answers for
//! all critical credentials or for one (`?credential=`), lists only the
//! credentials that are not healthy unless `?verbose=1`, and says only its
//! status on the probe listener. `POST /-/reload` needs
//! `--web.enable-lifecycle` and coalesces a flood of requests.

use std::time::Duration;

use credwatch_sim::{ElAccount, ElKey, Simulator, TwilioAccount, World};

use crate::harness::Daemon;
use crate::support::{FAST, ac_sid, config, el, el_key, tw, tw_token, wait_status, wait_verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_the_first_round_then_200_and_livez_is_always_200() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-ready"));
    world
        .elevenlabs
        .add_key(el_key("ready"), ElKey::new("keyItReady", "ws-ready"));
    world.twilio.add_account(
        TwilioAccount::new(ac_sid("ready"), tw_token("ready")).with_numbers(&["+15005550014"]),
    );
    // Every answer takes 1.5 s: the first round cannot be over before that.
    world.elevenlabs.latency = Duration::from_millis(1500);
    world.twilio.latency = Duration::from_millis(1500);
    let sim = Simulator::start(world).await.expect("simulator");
    let yaml = config(
        "defaults:\n  interval: 3s\n  timeout: 2500ms\n",
        &[el(
            "el-ready",
            &el_key("ready"),
            &sim.elevenlabs_url(),
            "    required_permissions: []\n",
        )],
        &[tw(
            "tw-ready",
            &ac_sid("ready"),
            &tw_token("ready"),
            &sim.twilio_url(),
            "",
        )],
    );
    let d = Daemon::start(&yaml).await;
    let (code, body) = d.get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(d.get("/livez").await.0, 200);
    let (code, h) = d.health().await;
    assert_eq!(code, 503, "pending critical credentials are not ok: {h}");
    assert_eq!(h["pending"], 2, "{h}");
    assert_eq!(d.get("/health?credential=el-ready").await.0, 503);

    d.wait_ready(Duration::from_secs(20)).await;
    assert_eq!(d.get("/livez").await.0, 200);
    wait_status(&d, "el-ready", "healthy").await;
    wait_status(&d, "tw-ready", "healthy").await;
    let (code, h) = d.health().await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["healthy"], 2, "{h}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_is_200_while_every_credential_is_broken() {
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(ac_sid("broken"), tw_token("broken-current"))
            .with_numbers(&["+15005550015"]),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let yaml = config(
        FAST,
        &[el(
            "el-broken",
            &el_key("broken-never-issued"),
            &sim.elevenlabs_url(),
            "",
        )],
        &[tw(
            "tw-broken",
            &ac_sid("broken"),
            &tw_token("broken-old"),
            &sim.twilio_url(),
            "",
        )],
    );
    let d = Daemon::start(&yaml).await;
    for name in ["el-broken", "tw-broken"] {
        let c = wait_verdict(&d, name).await;
        assert_eq!(c["reason"], "invalid_credentials", "{c}");
    }
    let (code, h) = d.health().await;
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["unhealthy"], 2, "{h}");
    let (code, body) = d.get("/livez").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(d.get("/readyz").await.0, 200);
    // The old alias, one letter from `/health`, is gone and says where to go.
    let (code, body) = d.get("/healthz").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("use /livez for liveness"), "{body}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_per_credential_and_only_critical_ones_fail_it() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-per"));
    world
        .elevenlabs
        .add_key(el_key("per-good"), ElKey::new("keyItPerGood", "ws-per"));
    let sim = Simulator::start(world).await.expect("simulator");
    let url = sim.elevenlabs_url();
    let yaml = config(
        FAST,
        &[
            el("el-good", &el_key("per-good"), &url, ""),
            el(
                "el-bad-not-critical",
                &el_key("per-never-issued"),
                &url,
                "    critical: false\n",
            ),
        ],
        &[],
    );
    let d = Daemon::start(&yaml).await;
    wait_status(&d, "el-good", "healthy").await;
    wait_status(&d, "el-bad-not-critical", "unhealthy").await;

    let (code, body) = d.get("/health?credential=el-good").await;
    assert_eq!(code, 200, "{body}");
    let one: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(one["status"], "ok");
    assert_eq!(one["credentials"][0]["name"], "el-good");
    assert_eq!(one["credentials"].as_array().map(Vec::len), Some(1));

    let (code, body) = d.get("/health?credential=el-bad-not-critical").await;
    assert_eq!(code, 503, "{body}");
    let one: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(one["status"], "fail");
    assert_eq!(one["credentials"][0]["reason"], "invalid_credentials");
    assert_eq!(one["credentials"][0]["critical"], false);

    let (code, body) = d.get("/health?credential=no-such-credential").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no-such-credential"), "{body}");

    // Several credentials in one gate (a repeated parameter): 200 only when
    // every one is healthy, whatever the order; 404 naming each unknown one.
    for path in [
        "/health?credential=el-good&credential=el-bad-not-critical",
        "/health?credential=el-bad-not-critical&credential=el-good",
    ] {
        let (code, body) = d.get(path).await;
        assert_eq!(code, 503, "{path}: {body}");
        let both: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(both["status"], "fail", "{path}");
        let names: Vec<&str> = both["credentials"]
            .as_array()
            .expect("credentials")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names.len(), 2, "{path}: {body}");
        assert!(names.contains(&"el-good") && names.contains(&"el-bad-not-critical"));
    }
    let (code, body) = d.get("/health?credential=el-good&credential=el-good").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = d
        .get("/health?credential=ghost-1&credential=el-good&credential=ghost-2")
        .await;
    assert_eq!(code, 404, "{body}");
    let unknown: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        unknown["unknown"],
        serde_json::json!(["ghost-1", "ghost-2"]),
        "{body}"
    );
    assert!(!body.contains("el-good"), "{body}");

    // The broken credential is not critical: overall health is fine.
    let (code, h) = d.health().await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["unhealthy"], 1, "{h}");
    assert!(
        d.metrics()
            .await
            .contains("credwatch_credential_info{provider=\"elevenlabs\",credential=\"el-bad-not-critical\",critical=\"false\",account=\"el-bad-not-critical\"} 1")
    );

    // Methods and paths.
    let post = d
        .client
        .post(format!("{}/metrics", d.url))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), 405);
    assert_eq!(d.get("/-/reload").await.0, 405);
    assert_eq!(d.get("/metrics/extra").await.0, 404);
    d.stop().await;
}

/// Serves a state of `n` ElevenLabs credentials (no permissions required),
/// every one recorded healthy, on a main and a probe-only listener.
async fn many_healthy(
    n: usize,
) -> (
    std::sync::Arc<credwatch::state::State>,
    String,
    String,
    tokio_util::sync::CancellationToken,
) {
    use credwatch::outcome::{Attempt, Evidence, Fact};
    use credwatch::server::{self, App, Limits};
    let yaml = crate::support::Doc::new().extend(
        "elevenlabs",
        (0..n).map(|i| {
            el(
                &format!("el-{i:05}"),
                &format!("sk_{i:048x}"),
                "http://127.0.0.1:9",
                "",
            )
            .set("required_permissions", Vec::<String>::new())
        }),
    );
    let config = credwatch::config::Config::from_yaml(
        &yaml.render(),
        std::path::Path::new("many.yaml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("config");
    let state = credwatch::state::State::new(&config);
    for slot in state.slots().iter() {
        state.record(
            slot,
            &[Attempt {
                check: "subscription".into(),
                started_at: std::time::SystemTime::now(),
                duration: Duration::from_millis(5),
                evidence: Evidence::default(),
                result: Ok(vec![Fact::Valid]),
            }],
        );
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let mut urls = Vec::new();
    for probe_only in [false, true] {
        let app = std::sync::Arc::new(App {
            state: state.clone(),
            own: credwatch::metrics::own::Own::new(),
            reloader: None,
            lifecycle: false,
            web: None,
            probe_only,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        urls.push(format!("http://{}", listener.local_addr().expect("addr")));
        tokio::spawn(server::run(
            listener,
            app,
            Limits::default(),
            stop.clone().cancelled_owned(),
        ));
    }
    let probe = urls.pop().expect("probe");
    let main = urls.pop().expect("main");
    (state, main, probe, stop)
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("answer");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_lists_only_credentials_that_are_not_healthy_unless_asked_for_all() {
    let (state, main, probe, stop) = many_healthy(10_000).await;
    let (code, body) = get(&format!("{main}/health")).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.len() < 1024,
        "10,000 healthy credentials: {} bytes",
        body.len()
    );
    let h: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["healthy"], 10_000);
    assert_eq!(h["credentials"], serde_json::json!([]), "{h}");

    let (code, body) = get(&format!("{main}/health?verbose=1")).await;
    assert_eq!(code, 200);
    let all: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(all["credentials"].as_array().map(Vec::len), Some(10_000));

    // One breaks: it, and only it, is listed by default.
    let broken = state.slot("el-04321").expect("slot");
    state.record(
        &broken,
        &[credwatch::outcome::Attempt {
            check: "subscription".into(),
            started_at: std::time::SystemTime::now(),
            duration: Duration::from_millis(5),
            evidence: credwatch::outcome::Evidence::default(),
            result: Ok(vec![credwatch::outcome::Fact::Invalid {
                problem: credwatch::providers::elevenlabs::Problem::InvalidApiKey.into(),
            }]),
        }],
    );
    let (code, body) = get(&format!("{main}/health")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.len() < 1024, "{} bytes", body.len());
    let h: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (h["healthy"].clone(), h["unhealthy"].clone()),
        (9_999.into(), 1.into())
    );
    let listed = h["credentials"].as_array().expect("credentials");
    assert_eq!(listed.len(), 1, "{h}");
    assert_eq!(listed[0]["name"], "el-04321");
    assert_eq!(listed[0]["reason"], "invalid_credentials");
    // ?credential= is unchanged, healthy or not.
    let (code, body) = get(&format!("{main}/health?credential=el-00007")).await;
    assert_eq!(code, 200);
    assert!(body.contains("\"name\":\"el-00007\""), "{body}");

    // The probe listener says the status and nothing else.
    for path in [
        "/health",
        "/health?verbose=1",
        "/health?credential=el-04321",
    ] {
        let (code, body) = get(&format!("{probe}{path}")).await;
        assert_eq!(
            (code, body.as_str()),
            (503, "{\"status\":\"fail\"}\n"),
            "{path}"
        );
    }
    let (code, body) = get(&format!("{probe}/health?credential=el-00007")).await;
    assert_eq!((code, body.as_str()), (200, "{\"status\":\"ok\"}\n"));
    let (code, body) = get(&format!("{probe}/health?credential=nobody")).await;
    assert_eq!(code, 404);
    assert!(!body.contains("nobody"), "{body}");
    // A gate of several on the probe listener: every one must be healthy.
    for path in [
        "/health?credential=el-00007&credential=el-04321",
        "/health?credential=el-04321&credential=el-00007",
    ] {
        let (code, body) = get(&format!("{probe}{path}")).await;
        assert_eq!(
            (code, body.as_str()),
            (503, "{\"status\":\"fail\"}\n"),
            "{path}"
        );
    }
    let (code, body) = get(&format!(
        "{probe}/health?credential=el-00007&credential=el-00008"
    ))
    .await;
    assert_eq!((code, body.as_str()), (200, "{\"status\":\"ok\"}\n"));
    let (code, body) = get(&format!(
        "{probe}/health?credential=el-00007&credential=nobody"
    ))
    .await;
    assert_eq!(code, 404);
    assert!(!body.contains("nobody"), "{body}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_over_http_needs_web_enable_lifecycle() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-lifecycle"));
    world.elevenlabs.add_key(
        el_key("lifecycle"),
        ElKey::new("keyItLifecycle", "ws-lifecycle"),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let one = el("el-one", &el_key("lifecycle"), &sim.elevenlabs_url(), "");
    let two = el("el-two", &el_key("lifecycle"), &sim.elevenlabs_url(), "");
    let d = Daemon::start_without_lifecycle(&config(FAST, std::slice::from_ref(&one), &[])).await;
    std::fs::write(d.config_path(), config(FAST, &[one, two], &[])).expect("write config");
    let (code, body) = d.post_reload().await;
    assert_eq!(code, 403);
    assert_eq!(body, credwatch::server::LIFECYCLE_DISABLED);
    assert_eq!(body.trim_end().lines().count(), 1, "{body}");
    assert!(body.contains("--web.enable-lifecycle"), "{body}");
    assert_eq!(
        d.get("/health?credential=el-two").await.0,
        404,
        "nothing was reloaded"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_reload_requests_is_coalesced() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    crate::harness::init_logs();
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "elevenlabs:\n  - name: el\n    api_key: sk_coalesce_test_key\n    base_url: http://127.0.0.1:9\n",
    )
    .expect("write");
    let config =
        credwatch::config::Config::load(&path, &credwatch::config::ProcessEnv).expect("config");
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/-/reload", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(credwatch::cli::run_daemon_with(
        credwatch::cli::Listeners {
            enable_lifecycle: true,
            ..credwatch::cli::Listeners::plain(listener)
        },
        config,
        move || {
            // A reload that takes a while (a slow disk, a big config).
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(500));
            credwatch::config::Config::load(&path, &credwatch::config::ProcessEnv)
        },
        async move {
            let _ = stopped.await;
        },
    ));
    // 100 at once, from 4 client addresses (25 each: under the per-address cap).
    let clients: Vec<reqwest::Client> = (0..4u8)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 20 + i]))
                .build()
                .expect("client")
        })
        .collect();
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (client, url) = (clients[i % 4].clone(), url.clone());
        posts.spawn(async move {
            client
                .post(url)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.expect("task").expect("answer"), 200);
    }
    let n = runs.load(Ordering::SeqCst);
    assert!(n <= 3, "100 reload requests ran {n} reloads");
    let _ = stop.send(());
}
