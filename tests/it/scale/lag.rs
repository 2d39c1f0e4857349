//! Upstream too slow for the interval: the scheduler's lag shows and is
//! logged once; checks on time show none.

use super::*;
use crate::support::Item;

/// [`KEYS`] ElevenLabs keys checked every second through one host that serves
/// three requests at once (`max_concurrent_requests_per_host: 3`).
const KEYS: usize = 100;

fn crowded(sim: &Simulator) -> String {
    let keys: Vec<Item> = (0..KEYS)
        .map(|i| {
            el(
                &format!("el-{i}"),
                &el_key(&format!("crowded-{i}")),
                &sim.elevenlabs_url(),
                "",
            )
        })
        .collect();
    config(
        "max_concurrent_requests_per_host: 3\ndefaults:\n  interval: 1s\n  timeout: 900ms\n",
        &keys,
        &[],
    )
}

/// The lateness warnings of the scenario with this in-flight cap (3 and 4
/// are no other scenario's).
fn late_lines(cap: usize) -> usize {
    let cap = format!("in_flight_cap={cap}");
    crate::harness::logs()
        .lines()
        .filter(|l| l.contains("checks are running late") && l.contains(&cap))
        .count()
}

#[tokio::test(start_paused = true)]
async fn when_upstream_is_too_slow_for_the_interval_the_lag_shows_and_is_logged_once() {
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-crowded"));
    for i in 0..KEYS {
        w.elevenlabs.add_key(
            el_key(&format!("crowded-{i}")),
            ElKey::new(format!("keyCrowded{i}"), "ws-crowded"),
        );
    }
    // 300 ms per answer: three at once serve 10 requests a second, and 100
    // keys checked every second need 200: a round takes 20 s.
    w.elevenlabs.latency = Duration::from_millis(300);
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = crowded(&sim);

    // `validate` and start-up say so before any request is sent.
    let config = credwatch::config::Config::from_yaml(
        &yaml,
        std::path::Path::new("crowded.yaml"),
        &credwatch::config::ProcessEnv,
    )
    .expect("valid config");
    let warning = config
        .warnings
        .iter()
        .map(ToString::to_string)
        .find(|w| w.contains("max_concurrent_requests_per_host"))
        .unwrap_or_else(|| panic!("no capacity warning: {:?}", config.warnings));
    assert!(warning.contains("100 credential(s)"), "{warning}");
    assert!(
        warning.contains("serve at most 12/s at 250 ms"),
        "{warning}"
    );

    let d = Daemon::start(&yaml).await;
    wait(&d, Duration::from_secs(60)).await;
    let m = d.metrics().await;
    let lag = sample(&m, "credwatch_scheduler_lag_seconds", &[]).expect("lag gauge");
    assert!(lag > 10.0, "lag {lag}: {m}");
    // The intervals achieved are longer than the one configured.
    let sum = sample(
        &m,
        "credwatch_check_interval_length_seconds_sum",
        &["interval=\"1s\""],
    )
    .expect("interval histogram");
    let count = sample(
        &m,
        "credwatch_check_interval_length_seconds_count",
        &["interval=\"1s\""],
    )
    .expect("interval histogram");
    assert!(
        count > 0.0 && sum / count > 1.5,
        "mean interval {}",
        sum / count
    );
    let within = sample(
        &m,
        "credwatch_check_interval_length_seconds_bucket",
        &["interval=\"1s\"", "le=\"1\""],
    )
    .unwrap_or(0.0);
    assert!(within < count, "every interval within 1s: {m}");
    // One warning for the episode, naming both rates.
    assert_eq!(late_lines(3), 1, "{}", crate::harness::logs());
    let line = crate::harness::logs()
        .lines()
        .find(|l| l.contains("checks are running late") && l.contains("in_flight_cap=3"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("required_requests_per_second"), "{line}");
    assert!(line.contains("achieved_requests_per_second"), "{line}");
    wait(&d, Duration::from_secs(60)).await;
    assert_eq!(late_lines(3), 1, "logged again within the same episode");

    // Upstream answers fast again: the lag goes back to 0.
    sim.update(|w| w.elevenlabs.latency = Duration::ZERO);
    wait(&d, Duration::from_secs(90)).await;
    let m = d.metrics().await;
    let lag = sample(&m, "credwatch_scheduler_lag_seconds", &[]).expect("lag gauge");
    assert!(lag < 1.0, "lag {lag}");
    assert!(
        crate::harness::logs().contains("checks are on time again"),
        "the end of the episode is not logged"
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn checks_on_time_show_no_lag_and_log_nothing() {
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-crowded"));
    for i in 0..KEYS {
        w.elevenlabs.add_key(
            el_key(&format!("crowded-{i}")),
            ElKey::new(format!("keyCrowded{i}"), "ws-crowded"),
        );
    }
    let sim = Simulator::start(w).await.expect("simulator");
    // (Four at once: this scenario's log lines are told from the other's.)
    let yaml = crowded(&sim)
        .replace("interval: 1s", "interval: 10s")
        .replace("per_host: 3", "per_host: 4");
    let d = Daemon::start(&yaml).await;
    wait(&d, Duration::from_secs(60)).await;
    let m = d.metrics().await;
    let lag = sample(&m, "credwatch_scheduler_lag_seconds", &[]).expect("lag gauge");
    assert!(lag < 1.0, "lag {lag}");
    assert_eq!(late_lines(4), 0);
    let count = sample(
        &m,
        "credwatch_check_interval_length_seconds_count",
        &["interval=\"10s\""],
    )
    .expect("interval histogram");
    let within = sample(
        &m,
        "credwatch_check_interval_length_seconds_bucket",
        &["interval=\"10s\"", "le=\"10\""],
    )
    .expect("bucket");
    assert_eq!(within, count, "{m}");
    d.stop().await;
}
