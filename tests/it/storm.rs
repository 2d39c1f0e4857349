//! A 5xx storm on every credential at once: credwatch backs off instead of
//! retrying harder, and no verdict changes.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use credwatch_sim::{ElAccount, ElKey, Fault, Simulator, TwilioAccount, World};

use crate::harness::Daemon;
use crate::support::Item;
use crate::support::{FAST, ac_sid, config, el, el_key, eventually, tw, tw_token};

const EACH: usize = 10;
const INTERVAL: Duration = Duration::from_secs(1);
const STORM: Duration = Duration::from_secs(8);

/// The most attempts one credential may start within `window` once its
/// checks fail, by the policy of `credwatch::scheduler::Pacer`: never faster
/// than the interval, then exponential (interval × 2^(n-1), jitter only adds),
/// so attempts start at 0, 1, 3, 7, 15… intervals. One more is allowed for
/// the attempt that was answered just before the storm began.
fn max_attempts(interval: Duration, window: Duration) -> usize {
    let mut at = Duration::ZERO;
    let mut wait = interval;
    let mut n = 0;
    while at <= window {
        n += 1;
        at += wait;
        wait *= 2;
    }
    n + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_storm_on_every_credential_is_met_with_backoff_and_changes_no_verdict() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-storm"));
    let el_names: Vec<String> = (0..EACH).map(|i| format!("el-storm-{i}")).collect();
    let tw_names: Vec<String> = (0..EACH).map(|i| format!("tw-storm-{i}")).collect();
    for n in &el_names {
        world
            .elevenlabs
            .add_key(el_key(n), ElKey::new(format!("keyIt{n}"), "ws-storm"));
    }
    for n in &tw_names {
        world.twilio.add_account(
            TwilioAccount::new(ac_sid(n), tw_token(n)).with_numbers(&["+15005550011"]),
        );
    }
    let sim = Simulator::start(world).await.expect("simulator");
    let els: Vec<Item> = el_names
        .iter()
        .map(|n| el(n, &el_key(n), &sim.elevenlabs_url(), ""))
        .collect();
    let tws: Vec<Item> = tw_names
        .iter()
        .map(|n| tw(n, &ac_sid(n), &tw_token(n), &sim.twilio_url(), ""))
        .collect();
    let d = Daemon::start(&config(FAST, &els, &tws)).await;
    let all: Vec<&String> = el_names.iter().chain(&tw_names).collect();
    for n in &all {
        d.wait_for(n, Duration::from_secs(20), |c| {
            c["status"] == "healthy" && c["check_error"].is_null()
        })
        .await;
    }

    let began = SystemTime::now();
    let storm_start = Instant::now();
    sim.update(|w| {
        w.elevenlabs.fault = Some(Fault::ServerError);
        w.twilio.fault = Some(Fault::ServerError);
    });
    // Throughout the storm every verdict holds.
    let mut saw_errors = false;
    while storm_start.elapsed() < STORM {
        let (code, h) = d.health().await;
        assert_eq!(code, 200, "a 5xx storm must not fail /health: {h}");
        for c in h["credentials"].as_array().expect("credentials") {
            assert_eq!(c["status"], "healthy", "{c}");
            assert_eq!(c["valid"], true, "{c}");
            assert!(
                c["check_error"].is_null() || c["check_error"] == "upstream_error",
                "{c}"
            );
            saw_errors |= c["check_error"] == "upstream_error";
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sim.update(|w| {
        w.elevenlabs.fault = None;
        w.twilio.fault = None;
    });
    let ended = SystemTime::now();
    assert!(saw_errors, "the storm was seen");

    // Bounded: count what each credential sent during the storm.
    let window = ended.duration_since(began).unwrap_or_default();
    let bound = max_attempts(INTERVAL, window);
    let mut per: HashMap<String, usize> = HashMap::new();
    for r in sim.requests() {
        if r.at < began || r.at > ended {
            continue;
        }
        let who = match r.upstream {
            "elevenlabs" => el_names
                .iter()
                .find(|n| r.header("xi-api-key") == Some(el_key(n).as_str())),
            "twilio" => tw_names.iter().find(|n| r.path.contains(&ac_sid(n))),
            _ => None,
        };
        *per.entry(
            who.cloned()
                .unwrap_or_else(|| format!("unknown: {}", r.path)),
        )
        .or_default() += 1;
    }
    let total: usize = per.values().sum();
    let over: Vec<String> = per
        .iter()
        .filter(|(_, n)| **n > bound)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    assert!(
        over.is_empty(),
        "more than {bound} requests in {window:?} (interval {INTERVAL:?}, exponential backoff): {over:?}"
    );
    assert!(
        total <= bound * all.len(),
        "{total} requests from {} credentials in {window:?}",
        all.len()
    );
    // Without backoff it would be about one per interval per credential.
    let naive = all.len() * (window.as_secs_f64() / INTERVAL.as_secs_f64()) as usize;
    assert!(total < naive, "{total} requests: no backoff ({per:?})");

    // The storm over, every credential recovers without a restart.
    let m = d.metrics().await;
    for n in &all {
        assert!(
            crate::harness::sample(
                &m,
                "credwatch_check_errors_total",
                &[&crate::support::cred(n), "reason=\"upstream_error\""]
            )
            .is_some_and(|v| v >= 1.0),
            "{n} counted the storm"
        );
    }
    eventually(
        Duration::from_secs(30),
        "recovery after the storm",
        || async {
            let (code, h) = d.health().await;
            let stuck: Vec<String> = h["credentials"]
                .as_array()
                .expect("credentials")
                .iter()
                .filter(|c| !c["check_error"].is_null() || c["status"] != "healthy")
                .map(|c| c.to_string())
                .collect();
            if code == 200 && stuck.is_empty() {
                Ok(())
            } else {
                Err(stuck.join("\n"))
            }
        },
    )
    .await;
    d.stop().await;
}
