//! The probes Kubernetes and people use: `/livez` never depends on
//! credentials, `/readyz` waits for the first round, `/health` answers for
//! all critical credentials or for one (`?credential=`).

use std::time::Duration;

use credwatch::simulator::{ElAccount, ElKey, Simulator, TwilioAccount, World};

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

    // The broken credential is not critical: overall health is fine.
    let (code, h) = d.health().await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["unhealthy"], 1, "{h}");
    assert!(
        d.metrics()
            .await
            .contains("credwatch_credential_info{provider=\"elevenlabs\",credential=\"el-bad-not-critical\",critical=\"false\"} 1")
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
