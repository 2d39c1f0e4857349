//! Detection at scale: the decisive checks of a credential keep their
//! interval whatever its informational work (the phone-number cross-check)
//! is doing, and that work stops at the first 429. Paused tokio time; the
//! daemon and the simulator are the real ones, over loopback.

use std::time::Duration;

use credwatch_sim::{
    AccountBlock, Agent, ElAccount, ElKey, ElPhoneNumber, Fault, PathRule, Simulator,
    TwilioAccount, World,
};
use tokio::time::Instant;

use crate::harness::{Daemon, sample};
use crate::support::{ac_sid, config, cred, el, el_key, tw, tw_token};

const INTERVAL: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(1);
const NUMBERS: usize = 40;
/// What the cross-check's agent lookups answer through.
const AGENTS: &str = "/v1/convai/agents/agent_";
/// What its Twilio ownership lookups carry.
const OWNERSHIP: &str = "PhoneNumber=";

/// One ElevenLabs workspace with 40 imported numbers, each assigned to an
/// agent of its own, all on one Twilio account.
fn world(el_secret: &str, sid: &str, token: &str) -> World {
    let mut w = World::default();
    let mut account = ElAccount::new("ws-scale");
    let mut numbers = Vec::new();
    for i in 0..NUMBERS {
        let agent = Agent::new(
            format!("agent_{:0<28}", format!("scale{i}")),
            "Phone",
            "ulaw_8000",
        );
        let number = format!("+1500555{i:04}");
        account = account.with_agent(agent.clone()).with_phone_number(
            ElPhoneNumber::twilio(
                format!("phnum_scale{i}"),
                number.clone(),
                format!("line {i}"),
            )
            .with_twilio_credentials(sid, token)
            .assigned_to(&agent),
        );
        numbers.push(number);
    }
    w.elevenlabs.add_account(account);
    w.elevenlabs
        .add_key(el_secret.to_string(), ElKey::new("keyScale", "ws-scale"));
    w.twilio
        .add_account(TwilioAccount::new(sid, token).with_numbers(&numbers));
    w
}

async fn watched(tag: &str, w: impl FnOnce(&mut World)) -> (Simulator, Daemon, String) {
    let key = el_key(&format!("scale-{tag}"));
    let sid = ac_sid(&format!("scale-{tag}"));
    let token = tw_token(&format!("scale-{tag}"));
    let mut world = world(&key, &sid, &token);
    w(&mut world);
    let sim = Simulator::start(world).await.expect("simulator");
    let yaml = config(
        &format!(
            "defaults:\n  interval: {}s\n  timeout: {}s\n  detail_interval: {}s\n",
            INTERVAL.as_secs(),
            TIMEOUT.as_secs(),
            INTERVAL.as_secs()
        ),
        &[el(
            "el",
            &key,
            &sim.elevenlabs_url(),
            "    phone_numbers: true\n    twilio: tw\n",
        )],
        &[tw("tw", &sid, &token, &sim.twilio_url(), "")],
    );
    let d = Daemon::start(&yaml).await;
    (sim, d, key)
}

/// Polls `/health?credential=el` once a virtual 100 ms until it answers
/// `status`; returns how long that took.
async fn until_status(d: &Daemon, status: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (code, body) = d.get("/health?credential=el").await;
        if code == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= within,
            "/health still {code} after {:?}: {body}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lets `time` pass, asking `/livez` every virtual 500 ms (so the
/// client's idle keep-alive connection is not closed under it).
async fn wait(d: &Daemon, time: Duration) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        d.get("/livez").await;
    }
}

fn count(sim: &Simulator, needle: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| {
            r.path.contains(needle) || r.query.as_deref().is_some_and(|q| q.contains(needle))
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_key_flagged_upstream_turns_unhealthy_on_time_while_its_cross_check_is_slow() {
    // Every agent lookup takes 0.9 s: the 40 of one cross-check, one after
    // another, would take 36 s.
    let (sim, d, _) = watched("slow", |w| {
        w.elevenlabs.path_rules.push(PathRule {
            contains: AGENTS.into(),
            latency: Duration::from_millis(900),
            fault: None,
        });
    })
    .await;
    let first = until_status(&d, 200, Duration::from_secs(10)).await;
    assert!(
        first <= Duration::from_secs(5) + TIMEOUT,
        "first verdict took {first:?}"
    );
    // Let a few cross-checks run.
    wait(&d, 4 * INTERVAL).await;
    assert!(count(&sim, AGENTS) > 0, "the cross-check never ran");
    sim.update(|w| {
        if let Some(a) = w.elevenlabs.accounts.get_mut("ws-scale") {
            a.block = Some(AccountBlock::DetectedUnusualActivity);
        }
    });
    let took = until_status(&d, 503, INTERVAL + TIMEOUT).await;
    assert!(took <= INTERVAL + TIMEOUT, "took {took:?}");
    let (_, body) = d.get("/health?credential=el").await;
    assert!(
        body.contains("detected_unusual_activity") || body.contains("blocked"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_cross_check_keeps_to_its_deadline_and_says_what_it_could_not_look_at() {
    let (sim, d, _) = watched("deadline", |w| {
        w.elevenlabs.path_rules.push(PathRule {
            contains: AGENTS.into(),
            latency: Duration::from_millis(900),
            fault: None,
        });
    })
    .await;
    until_status(&d, 200, Duration::from_secs(10)).await;
    wait(&d, 3 * INTERVAL).await;
    let m = d.metrics().await;
    // Each number is exported, and the agents the cross-check had no time
    // for are unknown, not guessed: the numbers are not ready.
    let ready: Vec<f64> = (0..NUMBERS)
        .filter_map(|i| {
            sample(
                &m,
                "credwatch_elevenlabs_phone_number_ready",
                &[&cred("el"), &format!("phone_number_id=\"phnum_scale{i}\"")],
            )
        })
        .collect();
    assert_eq!(ready.len(), NUMBERS, "{m}");
    let unchecked = m
        .lines()
        .filter(|l| {
            l.starts_with("credwatch_elevenlabs_phone_number_problem_info{")
                && l.contains("problem=\"agent_unchecked\"")
        })
        .count();
    assert!(
        unchecked > 0,
        "no agent left unchecked by the deadline: {m}"
    );
    assert!(
        ready.iter().filter(|r| **r == 1.0).count() + unchecked <= NUMBERS,
        "a number whose agent was not looked up is ready: {m}"
    );
    // Each cross-check (one list request) looks up at most four agents at
    // once, 0.9 s each, within its deadline (the 2 s detail_interval): at most
    // 4 × ⌈2 / 0.9⌉ = 12 of its 40 agents.
    let looked = count(&sim, AGENTS);
    let lists = count(&sim, "/v1/convai/phone-numbers");
    assert!(lists > 0, "no cross-check ran");
    assert!(
        looked <= 12 * lists,
        "{looked} agent lookups in {lists} cross-checks"
    );
    // A cross-check stops at its deadline and says so.
    assert!(
        crate::harness::logs().contains("the cross-check's deadline passed"),
        "no cross-check reported its deadline"
    );
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_429_from_twilio_stops_the_cross_check_and_retry_after_is_honoured() {
    let (sim, d, _) = watched("twilio429", |w| {
        w.twilio.path_rules.push(PathRule {
            contains: OWNERSHIP.into(),
            latency: Duration::ZERO,
            fault: Some(Fault::RateLimited {
                retry_after_secs: Some(60),
            }),
        });
    })
    .await;
    until_status(&d, 200, Duration::from_secs(10)).await;
    // Five intervals, each with details: without the stop, 40 lookups each.
    wait(&d, 5 * INTERVAL).await;
    let lookups = count(&sim, OWNERSHIP);
    assert!(
        (1..=4).contains(&lookups),
        "{lookups} ownership lookups after Twilio answered 429"
    );
    let m = d.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_elevenlabs_phone_number_problem_info",
            &[
                &cred("el"),
                "phone_number_id=\"phnum_scale39\"",
                "problem=\"ownership_unchecked\""
            ],
        ),
        Some(1.0),
        "{m}"
    );
    // The decisive checks go on meanwhile.
    let (code, _) = d.get("/health?credential=el").await;
    assert_eq!(code, 200);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_429_from_elevenlabs_stops_the_agent_lookups() {
    let (sim, d, _) = watched("el429", |w| {
        w.elevenlabs.path_rules.push(PathRule {
            contains: AGENTS.into(),
            latency: Duration::ZERO,
            fault: Some(Fault::RateLimited {
                retry_after_secs: Some(60),
            }),
        });
    })
    .await;
    until_status(&d, 200, Duration::from_secs(10)).await;
    wait(&d, 5 * INTERVAL).await;
    let lookups = count(&sim, AGENTS);
    assert!(
        (1..=4).contains(&lookups),
        "{lookups} agent lookups after ElevenLabs answered 429"
    );
    let (code, _) = d.get("/health?credential=el").await;
    assert_eq!(code, 200);
    d.stop().await;
}

/// [`KEYS`] ElevenLabs keys checked every second through one host that serves
/// three requests at once (`max_concurrent_requests_per_host: 3`).
const KEYS: usize = 100;

fn crowded(sim: &Simulator) -> String {
    let keys: Vec<String> = (0..KEYS)
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

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A generous memory bound, not a timing target: issue #19's target for 32
/// credentials under hostile answers is 48 MiB of the release build, which
/// `scripts/bench-latency` measures (BENCHMARKS.md, section 9); this is the
/// debug build (larger code, slower while other tests run), which stays near
/// 37 MiB. Reading each answer to 4 MiB into a `Value` tree took 140 MiB.
const HOSTILE_RSS_LIMIT: u64 = 64 * 1024 * 1024;

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_credentials_answered_with_4_mib_hostile_bodies_keep_peak_rss_bounded() {
    // Every answer, of either API, is a 200 JSON array of zeros just under
    // 4 MiB, streamed without Content-Length: two million values each.
    let bytes = 4 * 1024 * 1024 - 1;
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-hostile"));
    let mut el_items = Vec::new();
    let mut tw_items = Vec::new();
    for i in 0..16 {
        let key = el_key(&format!("hostile-{i}"));
        w.elevenlabs.add_key(
            key.clone(),
            ElKey::new(format!("keyHostile{i}"), "ws-hostile"),
        );
        el_items.push((format!("el-{i}"), key));
        let sid = ac_sid(&format!("hostile-{i}"));
        let token = tw_token(&format!("hostile-{i}"));
        w.twilio.add_account(TwilioAccount::new(&sid, &token));
        tw_items.push((format!("tw-{i}"), sid, token));
    }
    w.elevenlabs.fault = Some(Fault::Hostile { bytes });
    w.twilio.fault = Some(Fault::Hostile { bytes });
    let sim = Simulator::start(w).await.expect("simulator");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Details every cycle: Twilio asks for full pages (the largest cap).
    let yaml = config(
        "defaults:\n  interval: 2s\n  timeout: 1500ms\n  detail_interval: 2s\n",
        &el_items
            .iter()
            .map(|(n, k)| el(n, k, &sim.elevenlabs_url(), ""))
            .collect::<Vec<_>>(),
        &tw_items
            .iter()
            .map(|(n, s, t)| tw(n, s, t, &sim.twilio_url(), ""))
            .collect::<Vec<_>>(),
    );
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("hostile.yaml");
    std::fs::write(&path, yaml).expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["serve", "--config.file"])
        .arg(&path)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn credwatch serve");
    let pid = child.id();
    credwatch::providers::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    // Five cycles of every credential at least.
    let mut checks = 0.0;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(r) = client.get(&url).send().await else {
            continue;
        };
        let m = r.text().await.unwrap_or_default();
        checks = m
            .lines()
            .filter(|l| l.starts_with("credwatch_checks_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if checks >= 32.0 * 5.0 {
            break;
        }
    }
    let peak = peak_rss(pid);
    let _ = child.kill();
    let _ = child.wait();
    assert!(checks >= 32.0 * 5.0, "only {checks} checks ran");
    let received = sim.requests().len();
    assert!(received >= 32 * 5, "only {received} requests answered");
    let peak = peak.expect("VmHWM of the daemon");
    assert!(
        peak <= HOSTILE_RSS_LIMIT,
        "peak RSS {:.1} MiB under hostile answers",
        peak as f64 / 1048576.0
    );
    eprintln!(
        "peak RSS under hostile answers: {:.1} MiB",
        peak as f64 / 1048576.0
    );
}

#[tokio::test(start_paused = true)]
async fn numbers_beyond_max_phone_numbers_are_counted_not_exported_and_duplicates_fold() {
    let key = el_key("scale-cap");
    let sid = ac_sid("scale-cap");
    let token = tw_token("scale-cap");
    let mut w = world(&key, &sid, &token);
    // The first number listed twice under its id.
    if let Some(a) = w.elevenlabs.accounts.get_mut("ws-scale") {
        let first = a.phone_numbers[0].clone();
        a.phone_numbers.push(first);
    }
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config(
        "defaults:\n  interval: 2s\n  timeout: 1s\n",
        &[el(
            "el",
            &key,
            &sim.elevenlabs_url(),
            "    phone_numbers: true\n    twilio: tw\n    max_phone_numbers: 25\n",
        )],
        &[tw("tw", &sid, &token, &sim.twilio_url(), "")],
    );
    let d = Daemon::start(&yaml).await;
    until_status(&d, 200, Duration::from_secs(10)).await;
    wait(&d, Duration::from_secs(5)).await;
    let m = d.metrics().await;
    let ready = m
        .lines()
        .filter(|l| l.starts_with("credwatch_elevenlabs_phone_number_ready{"))
        .count();
    assert_eq!(ready, 25, "{m}");
    assert_eq!(
        sample(
            &m,
            "credwatch_elevenlabs_phone_numbers_not_exported",
            &[&cred("el")]
        ),
        Some((NUMBERS - 25) as f64),
        "{m}"
    );
    // The lowest ids are the ones exported, each once.
    let first = m
        .lines()
        .filter(|l| {
            l.starts_with("credwatch_elevenlabs_phone_number_ready{")
                && l.contains("phone_number_id=\"phnum_scale0\"")
        })
        .count();
    assert_eq!(first, 1, "{m}");
    // Only the exported numbers are looked up on Twilio.
    let looked: std::collections::BTreeSet<String> = sim
        .requests()
        .iter()
        .filter_map(|r| r.query.clone())
        .filter(|q| q.contains(OWNERSHIP))
        .collect();
    assert!(looked.len() <= 2 * 25, "{} distinct lookups", looked.len());
    d.stop().await;
}

#[test]
fn the_late_alert_and_the_late_warning_use_one_threshold() {
    let rules = include_str!("../../deploy/prometheus/credwatch-rules.yml");
    let rule = rules
        .split("- alert: ")
        .find(|r| r.starts_with("CredwatchChecksLate"))
        .expect("CredwatchChecksLate in the rules");
    let late = credwatch::scheduler::LATE.as_secs();
    assert!(
        rule.contains(&format!("credwatch_scheduler_lag_seconds > {late}\n")),
        "the rule's threshold is not the log's ({late}s): {rule}"
    );
}

#[tokio::test(start_paused = true)]
async fn counting_a_large_twilio_account_never_holds_its_verdict_back_beyond_the_timeout() {
    let sid = ac_sid("scale-count");
    let token = tw_token("scale-count");
    let mut w = World::default();
    w.twilio
        .add_account(TwilioAccount::new(&sid, &token).with_generated_numbers(2500));
    // Every page after the first takes 0.9 s: the two of them, 1.8 s,
    // more than the 1 s timeout together.
    w.twilio.path_rules.push(PathRule {
        contains: "Page=".into(),
        latency: Duration::from_millis(900),
        fault: None,
    });
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config(
        "defaults:\n  interval: 2s\n  timeout: 1s\n  detail_interval: 2s\n",
        &[],
        &[tw("tw-count", &sid, &token, &sim.twilio_url(), "")],
    );
    let d = Daemon::start(&yaml).await;
    let start = Instant::now();
    loop {
        let (code, body) = d.get("/health?credential=tw-count").await;
        if code == 200 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{code}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait(&d, 3 * Duration::from_secs(2)).await;
    let m = d.metrics().await;
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &[&cred("tw-count")]),
        None,
        "a count that was never finished is not exported: {m}"
    );
    assert!(
        crate::harness::logs().contains("took longer than `timeout` together"),
        "the stale count does not say why"
    );
    // The suspension shows at the next cycle's account check, the count's
    // deadline included: within interval + 2 × timeout.
    sim.update(|w| {
        if let Some(a) = w.twilio.accounts.get_mut(&sid) {
            a.status = credwatch_sim::AccountStatus::Suspended;
        }
    });
    let changed = Instant::now();
    loop {
        let (code, _) = d.get("/health?credential=tw-count").await;
        if code == 503 {
            break;
        }
        assert!(
            changed.elapsed() <= Duration::from_secs(2 + 2),
            "still {code} after {:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop().await;
}

#[test]
fn validate_warns_when_the_cap_cannot_serve_the_configuration() {
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("big.yaml");
    // 2,000 keys every 10 s need 400 requests/s; 16 at once serve 64/s at
    // 250 ms per answer.
    let mut yaml = String::from(
        "max_concurrent_requests_per_host: 16\ndefaults:\n  interval: 10s\n  timeout: 5s\nelevenlabs:\n",
    );
    for i in 0..2000 {
        yaml += &format!("  - name: k{i}\n    api_key: sk_{i:048}\n");
    }
    std::fs::write(&path, &yaml).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["validate", "--config.file"])
        .arg(&path)
        .output()
        .expect("run validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains("max_concurrent_requests_per_host")
            && stderr.contains("need about 400 requests/s")
            && stderr.contains("at least 100"),
        "{stderr}"
    );
    // Left unset, the cap is sized to the work: no warning.
    std::fs::write(
        &path,
        yaml.replace("max_concurrent_requests_per_host: 16\n", ""),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["validate", "--config.file"])
        .arg(&path)
        .output()
        .expect("run validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("max_concurrent_requests_per_host"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_about_numbers_it_did_not_check_and_does_not_call_them_ready() {
    let key = el_key("scale-check-cap");
    let sid = ac_sid("scale-check-cap");
    let token = tw_token("scale-check-cap");
    let sim = Simulator::start(world(&key, &sid, &token))
        .await
        .expect("simulator");
    let yaml = config(
        "",
        &[el(
            "el",
            &key,
            &sim.elevenlabs_url(),
            "    phone_numbers: true\n    twilio: tw\n    max_phone_numbers: 10\n",
        )],
        &[tw("tw", &sid, &token, &sim.twilio_url(), "")],
    );
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("cap.yaml");
    std::fs::write(&path, yaml).expect("config");
    // On a blocking thread: the simulator answers on this runtime meanwhile.
    let run = path.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
            .args(["check", "--config.file"])
            .arg(&run)
            .args(["--output", "json"])
            .output()
    })
    .await
    .expect("join")
    .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let el = report["credentials"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "el"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        el["details"]["phone_numbers"].as_array().map(Vec::len),
        Some(10),
        "{stdout}"
    );
    let warning = el["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "phone_numbers_not_checked"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(warning["severity"], "warning", "{stdout}");
    assert!(
        warning["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("30 imported number(s)"),
        "{warning}"
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "30 unchecked numbers are not ready for calls: {stdout}"
    );
}
