//! The timing policy, on paused tokio time.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MIN: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn the_first_round_is_fast_then_credentials_spread_over_the_interval() {
    let mut rng = fastrand::Rng::with_seed(7);
    let epoch = Instant::now();
    let mut seconds = Vec::new();
    for _ in 0..200 {
        let mut p = Pacer::new(MIN, &mut rng);
        let first = p.first_delay(&mut rng);
        assert!(
            first <= STARTUP_SPREAD,
            "first check within the startup spread"
        );
        let started = epoch + first;
        let second = p.next(epoch, started, Paced::Definitive, &mut rng);
        assert!(second >= started + MIN, "never faster than the interval");
        assert!(
            second <= epoch + 2 * MIN,
            "the second check lands within the next interval"
        );
        seconds.push((second - epoch - MIN).as_secs());
    }
    // Spread: every 10-second bucket of the interval gets some credentials.
    for bucket in 0..6 {
        let n = seconds.iter().filter(|s| **s / 10 == bucket).count();
        assert!(n >= 10, "bucket {bucket} has {n} of 200: {seconds:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn steady_state_keeps_the_interval() {
    let mut rng = fastrand::Rng::with_seed(1);
    let epoch = Instant::now();
    let mut p = Pacer::new(MIN, &mut rng);
    let mut at = p.next(epoch, epoch, Paced::Definitive, &mut rng);
    for _ in 0..10 {
        tokio::time::advance(at - Instant::now()).await;
        let next = p.next(epoch, Instant::now(), Paced::Definitive, &mut rng);
        assert_eq!(next - at, MIN);
        at = next;
    }
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_within_bounds_and_reset_on_success() {
    let mut rng = fastrand::Rng::with_seed(3);
    let epoch = Instant::now();
    let mut p = Pacer::new(MIN, &mut rng);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let now = Instant::now();
        let next = p.next(epoch, now, Paced::Failed { retry_after: None }, &mut rng);
        let wait = next - now;
        assert!(wait >= MIN, "never faster than the interval: {wait:?}");
        assert!(wait <= MAX_BACKOFF.mul_f64(1.2), "bounded: {wait:?}");
        waits.push(wait);
        tokio::time::advance(wait).await;
    }
    assert!(
        waits[1] > waits[0] && waits[2] > waits[1],
        "grows: {waits:?}"
    );
    assert!(waits[7] >= MAX_BACKOFF, "reaches the cap: {waits:?}");
    assert_eq!(p.failures(), 8);
    let now = Instant::now();
    assert_eq!(p.next(epoch, now, Paced::Definitive, &mut rng) - now, MIN);
    assert_eq!(p.failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_but_never_shortens_the_interval() {
    let mut rng = fastrand::Rng::with_seed(5);
    let epoch = Instant::now();
    let mut p = Pacer::new(MIN, &mut rng);
    let now = Instant::now();
    let long = p.next(
        epoch,
        now,
        Paced::Failed {
            retry_after: Some(Duration::from_secs(300)),
        },
        &mut rng,
    );
    assert!(long - now >= Duration::from_secs(300));
    let mut p = Pacer::new(MIN, &mut rng);
    let short = p.next(
        epoch,
        now,
        Paced::Failed {
            retry_after: Some(Duration::from_secs(1)),
        },
        &mut rng,
    );
    assert!(short - now >= MIN);
}

/// The scheduler loop itself, on paused time, against the in-process
/// simulator over loopback: only the clock is virtual.
mod the_loop {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::Config;
    use crate::outcome::Reason;
    use crate::providers::http::Upstream;
    use crate::state::State;
    use credwatch_sim::{ElAccount, ElKey, Fault, Simulator, World};

    const KEY: &str = "sk_loop0123456789abcdef0123456789abcdef0123456789";
    const NEW_KEY: &str = "sk_loop9876543210fedcba9876543210fedcba9876543210";

    async fn simulator() -> Simulator {
        let mut w = World::default();
        w.elevenlabs.add_account(ElAccount::new("ws-loop"));
        w.elevenlabs.add_key(KEY, ElKey::new("keyLoop", "ws-loop"));
        w.elevenlabs
            .add_key(NEW_KEY, ElKey::new("keyLoopNew", "ws-loop"));
        Simulator::start(w).await.expect("simulator")
    }

    fn config(yaml: &str, dir: &Path) -> Config {
        Config::from_yaml(
            yaml,
            &dir.join("config.yaml"),
            &HashMap::<String, String>::new(),
        )
        .expect("valid test config")
    }

    fn upstream() -> Arc<Upstream> {
        Arc::new(Upstream::new(4, None).expect("client"))
    }

    /// Waits (virtually) until the first probe is in flight upstream.
    async fn first_request(sim: &Simulator) {
        let mut waited = Duration::ZERO;
        while sim.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
            assert!(waited < Duration::from_secs(10), "no probe started");
        }
    }

    /// SIGTERM's path: no new checks, the ones in flight finish (here: run
    /// into their 10 s timeout against a server that never answers) and are
    /// recorded before `shutdown` returns.
    #[tokio::test(start_paused = true)]
    async fn a_graceful_stop_waits_for_checks_in_flight() {
        let sim = simulator().await;
        sim.update(|w| {
            if let Some(k) = w.elevenlabs.key_mut(KEY) {
                k.fault = Some(Fault::Hang);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!(
            "elevenlabs:\n  - name: hung\n    api_key: {KEY}\n    base_url: {}\n",
            sim.elevenlabs_url()
        );
        let config = Arc::new(config(&yaml, dir.path()));
        let state = State::new(&config);
        let handle = super::super::spawn(
            config,
            state.clone(),
            crate::metrics::own::Own::new(),
            upstream(),
        );
        first_request(&sim).await;
        let slot = state.slot("hung").expect("slot");
        assert_eq!(slot.snapshot().cycles, 0, "still in flight");
        handle.shutdown().await;
        let s = slot.snapshot();
        assert_eq!(s.cycles, 1, "the check in flight was awaited and recorded");
        assert_eq!(s.check_error, Some(Reason::Timeout));
        let requests = sim.request_count();
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(sim.request_count(), requests, "nothing runs after the stop");
    }

    /// A reload that shortens `secret_poll_interval` takes effect: a rotated
    /// secret file is seen within the new period, not the old one.
    #[tokio::test(start_paused = true)]
    async fn a_reloaded_secret_poll_interval_takes_effect() {
        let sim = simulator().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("key");
        std::fs::write(&secret, KEY).expect("write secret");
        let yaml = |poll: &str| {
            format!(
                "secret_poll_interval: {poll}\nelevenlabs:\n  - name: filed\n    api_key_file: {}\n    base_url: {}\n",
                secret.display(),
                sim.elevenlabs_url()
            )
        };
        let first = Arc::new(config(&yaml("1h"), dir.path()));
        let state = State::new(&first);
        let handle = super::super::spawn(
            first,
            state.clone(),
            crate::metrics::own::Own::new(),
            upstream(),
        );
        let slot = state.slot("filed").expect("slot");
        let old = slot.snapshot().fingerprint;
        // Past the first poll tick (at start), then reload with 2s.
        tokio::time::sleep(Duration::from_secs(5)).await;
        handle.reload(Arc::new(config(&yaml("2s"), dir.path())));
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(&secret, NEW_KEY).expect("rotate secret");
        let mut waited = Duration::ZERO;
        while slot.snapshot().fingerprint == old {
            tokio::time::sleep(Duration::from_millis(250)).await;
            waited += Duration::from_millis(250);
            assert!(
                waited <= Duration::from_secs(3),
                "the rotation was not seen within the reloaded 2s poll"
            );
        }
        handle.shutdown().await;
    }

    /// A secret rotated while a probe with the old one is in flight: that
    /// probe's answer is about the old secret, so it is dropped (its
    /// generation is stale) and the new secret is probed at once.
    #[tokio::test(start_paused = true)]
    async fn answers_about_a_replaced_secret_are_dropped_and_the_new_one_probed() {
        let sim = simulator().await;
        sim.update(|w| {
            if let Some(k) = w.elevenlabs.key_mut(KEY) {
                k.fault = Some(Fault::Hang);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("key");
        std::fs::write(&secret, KEY).expect("write secret");
        let yaml = format!(
            "secret_poll_interval: 1s\nelevenlabs:\n  - name: rotated\n    api_key_file: {}\n    base_url: {}\n",
            secret.display(),
            sim.elevenlabs_url()
        );
        let config = Arc::new(config(&yaml, dir.path()));
        let state = State::new(&config);
        let handle = super::super::spawn(
            config,
            state.clone(),
            crate::metrics::own::Own::new(),
            upstream(),
        );
        first_request(&sim).await;
        // The old key's probe hangs; rotate the file under it.
        std::fs::write(&secret, NEW_KEY).expect("rotate secret");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let s = state.slot("rotated").expect("slot").snapshot();
        assert_eq!(s.cycles, 1, "only the new secret's cycle is recorded");
        assert_eq!(s.check_error, None, "the old probe's timeout was dropped");
        assert_eq!(s.verdict.valid, Some(true));
        handle.shutdown().await;
    }
}
