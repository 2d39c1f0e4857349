//! Time to detect, on paused tokio time: with the default timing (no
//! `interval`, `timeout` or `detail_interval` in the config), a change
//! upstream that breaks calls turns `/health` to 503 within
//! `interval + timeout`. The daemon and the simulator are the real ones, on
//! loopback; only the clock is virtual, so a minute passes in milliseconds.

use std::time::Duration;

use credwatch_sim::{ElAccount, ElKey, Simulator, World};
use tokio::time::Instant;

use crate::harness::Daemon;
use crate::support::{config, el, el_key};

/// The defaults the daemon runs with when the config says nothing.
const INTERVAL: Duration = Duration::from_secs(60);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `/health?credential=NAME` once a virtual second until it answers
/// `status`; returns how long that took.
async fn until_status(d: &Daemon, name: &str, status: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (code, body) = d.get(&format!("/health?credential={name}")).await;
        if code == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= within,
            "{name}: /health still {code} after {:?}: {body}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One healthy ElevenLabs key watched with the default timing, settled
/// into its random phase; returns the simulator (to change), the daemon and
/// the key.
async fn watched_at_defaults(name: &str) -> (Simulator, Daemon, String) {
    let key = el_key(&format!("detect-{name}"));
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-detect"));
    w.elevenlabs
        .add_key(key.clone(), ElKey::new(format!("keyIt{name}"), "ws-detect"));
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config("", &[el(name, &key, &sim.elevenlabs_url(), "")], &[]);
    assert!(!yaml.contains("interval") && !yaml.contains("timeout"));
    let d = Daemon::start(&yaml).await;
    // First round within the start-up spread, then healthy.
    until_status(&d, name, 200, INTERVAL).await;
    // Let the credential settle into its random phase before the change.
    tokio::time::sleep(INTERVAL + INTERVAL / 2).await;
    until_status(&d, name, 200, Duration::ZERO).await;
    (sim, d, key)
}

#[tokio::test(start_paused = true)]
async fn a_permission_removed_upstream_flips_health_within_one_interval() {
    let (sim, d, key) = watched_at_defaults("el-detect").await;
    // The key loses `convai_write` (the seeds' failure); everything else stays.
    sim.update(|w| {
        if let Some(k) = w.elevenlabs.key_mut(&key) {
            k.permissions = Some(vec!["user_read".into(), "convai_read".into()]);
        }
    });
    let took = until_status(&d, "el-detect", 503, INTERVAL + TIMEOUT).await;
    assert!(took <= INTERVAL + TIMEOUT, "took {took:?}");
    let (_, body) = d.get("/health?credential=el-detect").await;
    assert!(body.contains("missing_permission"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_key_revoked_upstream_flips_health_within_one_interval() {
    let (sim, d, key) = watched_at_defaults("el-revoke").await;
    sim.update(|w| {
        w.elevenlabs.keys.remove(&key);
    });
    let took = until_status(&d, "el-revoke", 503, INTERVAL + TIMEOUT).await;
    assert!(took <= INTERVAL + TIMEOUT, "took {took:?}");
}
