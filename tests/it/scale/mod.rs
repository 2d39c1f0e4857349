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

mod bounds;
mod lag;

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
    let yaml = crate::support::Doc::new()
        .defaults(serde_json::json!({
            "interval": format!("{}s", INTERVAL.as_secs()),
            "timeout": format!("{}s", TIMEOUT.as_secs()),
            "detail_interval": format!("{}s", INTERVAL.as_secs()),
        }))
        .push(
            "elevenlabs",
            el("el", &key, &sim.elevenlabs_url(), "")
                .set("phone_numbers", true)
                .set("twilio", "tw"),
        )
        .push("twilio", tw("tw", &sid, &token, &sim.twilio_url(), ""))
        .render();
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
