//! Faults keep the last verdict: a verdict is first established, then the
//! simulator starts misbehaving for that one credential. Each fault must be
//! counted under its reason in `credwatch_check_errors_total`, turn
//! `credwatch_check_success` to 0, and leave the verdict (and `/health`) as
//! it was. Unreachable upstreams are `network` and never produce a verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credwatch_sim::{ElAccount, ElKey, Fault, Simulator, TwilioAccount, World};

use crate::harness::{Daemon, sample};
use crate::support::Item;
use crate::support::{
    FAST, ac_sid, config, cred, el, el_key, eventually, lines_of, tw, tw_token, wait_verdict,
};

/// A listener on another port that only counts connections: a credential
/// must never reach it through a redirect.
struct Trap {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Trap {
    async fn start() -> Trap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Trap {
            addr,
            connections,
            task,
        }
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A credential, the fault it meets once it has a verdict, and the reason
/// that fault must be counted under.
struct Case {
    name: &'static str,
    fault: Fault,
    reason: &'static str,
}

fn case(name: &'static str, fault: Fault, reason: &'static str) -> Case {
    Case {
        name,
        fault,
        reason,
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// Waits until every case's `/health` entry shows `check_error == reason`,
/// then checks that the verdict it had before the fault is unchanged.
async fn expect_faults_keep_verdicts(
    d: &Daemon,
    cases: &[Case],
    before: &[(String, serde_json::Value)],
    check: &str,
    fault_set_at: f64,
) {
    eventually(
        Duration::from_secs(30),
        "every fault counted under its reason",
        || async {
            let (_, h) = d.health().await;
            let missing: Vec<String> = cases
                .iter()
                .filter_map(|c| {
                    let entry = h["credentials"]
                        .as_array()?
                        .iter()
                        .find(|e| e["name"] == c.name)?;
                    (entry["check_error"] != c.reason)
                        .then(|| format!("{}: want {}, entry {entry}", c.name, c.reason))
                })
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing.join("\n"))
            }
        },
    )
    .await;

    let m = d.metrics().await;
    let mut failures = Vec::new();
    for c in cases {
        let me = cred(c.name);
        let entry = d.credential(c.name).await;
        let (_, was) = before
            .iter()
            .find(|(n, _)| n == c.name)
            .expect("verdict before the fault");
        for field in [
            "status",
            "valid",
            "reason",
            "healthy",
            "missing_permissions",
        ] {
            if entry[field] != was[field] {
                failures.push(format!(
                    "{} ({:?}): /health {field} changed from {} to {}",
                    c.name, c.fault, was[field], entry[field]
                ));
            }
        }
        let all = lines_of(&m, c.name);
        let expect = |ok: bool, what: &str, failures: &mut Vec<String>| {
            if !ok {
                failures.push(format!(
                    "{} ({:?}): {what}; metrics:\n{all}",
                    c.name, c.fault
                ));
            }
        };
        expect(
            sample(
                &m,
                "credwatch_check_success",
                &[&me, &format!("check=\"{check}\"")],
            ) == Some(0.0),
            "check_success must be 0",
            &mut failures,
        );
        expect(
            sample(
                &m,
                "credwatch_check_errors_total",
                &[
                    &me,
                    &format!("check=\"{check}\""),
                    &format!("reason=\"{}\"", c.reason),
                ],
            )
            .is_some_and(|v| v >= 1.0),
            &format!(
                "check_errors_total{{reason=\"{}\"}} must count it",
                c.reason
            ),
            &mut failures,
        );
        let valid = was["valid"].as_bool().map(|v| if v { 1.0 } else { 0.0 });
        expect(
            sample(&m, "credwatch_credential_valid", &[&me]) == valid,
            "credential_valid must not change",
            &mut failures,
        );
        let healthy = if was["status"] == "healthy" { 1.0 } else { 0.0 };
        expect(
            sample(&m, "credwatch_credential_healthy", &[&me]) == Some(healthy),
            "credential_healthy must not change",
            &mut failures,
        );
        expect(
            sample(&m, "credwatch_last_success_timestamp_seconds", &[&me])
                .is_some_and(|t| t <= fault_set_at + 0.5),
            "the last definitive answer is from before the fault",
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Health entries of every case, once each has a verdict and its first
/// cycle ended without a check error.
async fn settled_verdicts(d: &Daemon, cases: &[Case]) -> Vec<(String, serde_json::Value)> {
    for c in cases {
        d.wait_for(c.name, Duration::from_secs(20), |c| {
            c["status"] != "pending" && c["check_error"].is_null()
        })
        .await;
    }
    let mut out = Vec::new();
    for c in cases {
        out.push((c.name.to_string(), wait_verdict(d, c.name).await));
    }
    out
}

/// Whatever the faults did, the redirect target was never contacted and
/// nothing but GET, nothing forbidden, reached the simulator (nothing was
/// re-sent elsewhere after a redirect).
fn assert_nothing_unsafe_was_sent(trap: &Trap, sim: &Simulator) {
    assert_eq!(
        trap.connections.load(Ordering::SeqCst),
        0,
        "the redirect target must never be contacted"
    );
    assert!(
        sim.requests().iter().all(|r| r.method == "GET"),
        "only GET reaches upstream"
    );
    assert!(
        sim.forbidden_requests().is_empty(),
        "{:?}",
        sim.forbidden_requests()
    );
}

/// The `reason` field of `name`'s entry in `verdicts`.
fn reason_of<'v>(verdicts: &'v [(String, serde_json::Value)], name: &str) -> &'v serde_json::Value {
    let (_, entry) = verdicts
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} has no verdict"));
    &entry["reason"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_faults_keep_the_last_verdict_and_count_their_reason() {
    let trap = Trap::start().await;
    let cases = vec![
        case("el-500", Fault::ServerError, "upstream_error"),
        case(
            "el-500-unwrapped",
            Fault::ServerErrorUnwrapped,
            "upstream_error",
        ),
        case("el-500-empty", Fault::EmptyBody500, "upstream_error"),
        case("el-502-html", Fault::BadGatewayHtml, "upstream_error"),
        case(
            "el-429-retry-after",
            Fault::RateLimited {
                retry_after_secs: Some(3),
            },
            "rate_limited",
        ),
        case("el-429-system-busy", Fault::SystemBusy, "rate_limited"),
        case(
            "el-429-new-format",
            Fault::RateLimitExceededNew,
            "rate_limited",
        ),
        case(
            "el-cloudflare-403",
            Fault::CloudflareHtml,
            "unexpected_response",
        ),
        case(
            "el-malformed-json",
            Fault::MalformedJson,
            "unexpected_response",
        ),
        case("el-wrong-types", Fault::WrongTypes, "unexpected_response"),
        case("el-invalid-utf8", Fault::InvalidUtf8, "unexpected_response"),
        case(
            "el-oversized",
            Fault::Oversized {
                bytes: 5 * 1024 * 1024,
            },
            "unexpected_response",
        ),
        case("el-hang", Fault::Hang, "timeout"),
        case("el-trickle", Fault::Trickle, "timeout"),
        case("el-reset-mid-body", Fault::ResetMidBody, "network"),
        case(
            "el-redirect",
            Fault::Redirect {
                location: format!("http://{}/v1/user/subscription", trap.addr),
            },
            "unexpected_response",
        ),
        // An unhealthy verdict stays unhealthy just the same.
        case("el-no-write-then-500", Fault::ServerError, "upstream_error"),
    ];
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-faults"));
    for c in &cases {
        let key = ElKey::new(format!("keyIt{}", c.name), "ws-faults");
        let key = if c.name.starts_with("el-no-write") {
            key.with_permissions(&["user_read", "convai_read"])
        } else {
            key
        };
        world.elevenlabs.add_key(el_key(c.name), key);
    }
    let sim = Simulator::start(world).await.expect("simulator");
    let items: Vec<Item> = cases
        .iter()
        .map(|c| el(c.name, &el_key(c.name), &sim.elevenlabs_url(), ""))
        .collect();
    let d = Daemon::start(&config(FAST, &items, &[])).await;
    // With the permission verdict too (the first cycle has the details).
    let before = settled_verdicts(&d, &cases).await;
    assert_eq!(
        reason_of(&before, "el-no-write-then-500"),
        "missing_permission"
    );

    let fault_set_at = unix_now();
    let since = SystemTime::now();
    sim.update(|w| {
        for c in &cases {
            w.elevenlabs.key_mut(&el_key(c.name)).unwrap().fault = Some(c.fault.clone());
        }
    });
    expect_faults_keep_verdicts(&d, &cases, &before, "subscription", fault_set_at).await;

    // Retry-After: 3 s is honoured although the interval is 1 s.
    let key = el_key("el-429-retry-after");
    let times = eventually(
        Duration::from_secs(20),
        "two rate-limited attempts",
        || async {
            let at: Vec<SystemTime> = sim
                .requests()
                .iter()
                .filter(|r| r.at >= since && r.header("xi-api-key") == Some(key.as_str()))
                .map(|r| r.at)
                .collect();
            if at.len() >= 2 {
                Ok(at)
            } else {
                Err(format!("{} attempts", at.len()))
            }
        },
    )
    .await;
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(2800),
            "attempts after a 429 with Retry-After: 3 came {gap:?} apart"
        );
    }

    assert_nothing_unsafe_was_sent(&trap, &sim);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_faults_keep_the_last_verdict_and_count_their_reason() {
    let trap = Trap::start().await;
    let cases = vec![
        case("tw-500", Fault::ServerError, "upstream_error"),
        case("tw-503", Fault::SystemBusy, "upstream_error"),
        case("tw-502-html", Fault::BadGatewayHtml, "upstream_error"),
        case(
            "tw-429-retry-after",
            Fault::RateLimited {
                retry_after_secs: Some(2),
            },
            "rate_limited",
        ),
        case(
            "tw-cloudflare-403",
            Fault::CloudflareHtml,
            "unexpected_response",
        ),
        case(
            "tw-malformed-json",
            Fault::MalformedJson,
            "unexpected_response",
        ),
        case("tw-wrong-types", Fault::WrongTypes, "unexpected_response"),
        case("tw-invalid-utf8", Fault::InvalidUtf8, "unexpected_response"),
        case(
            "tw-oversized",
            Fault::Oversized {
                bytes: 5 * 1024 * 1024,
            },
            "unexpected_response",
        ),
        case("tw-hang", Fault::Hang, "timeout"),
        case("tw-trickle", Fault::Trickle, "timeout"),
        case("tw-reset-mid-body", Fault::ResetMidBody, "network"),
        case(
            "tw-redirect",
            Fault::Redirect {
                location: format!("http://{}/2010-04-01/Accounts.json", trap.addr),
            },
            "unexpected_response",
        ),
        // A wrong token stays invalid through a 5xx.
        case(
            "tw-wrong-token-then-500",
            Fault::ServerError,
            "upstream_error",
        ),
    ];
    let mut world = World::default();
    for c in &cases {
        world.twilio.add_account(
            TwilioAccount::new(ac_sid(c.name), tw_token(c.name)).with_numbers(&["+15005550006"]),
        );
    }
    let sim = Simulator::start(world).await.expect("simulator");
    let items: Vec<Item> = cases
        .iter()
        .map(|c| {
            let token = if c.name.starts_with("tw-wrong-token") {
                tw_token("not-the-token")
            } else {
                tw_token(c.name)
            };
            tw(c.name, &ac_sid(c.name), &token, &sim.twilio_url(), "")
        })
        .collect();
    let d = Daemon::start(&config(FAST, &[], &items)).await;
    let before = settled_verdicts(&d, &cases).await;
    assert_eq!(
        reason_of(&before, "tw-wrong-token-then-500"),
        "invalid_credentials"
    );

    let fault_set_at = unix_now();
    sim.update(|w| {
        for c in &cases {
            w.twilio.account_mut(&ac_sid(c.name)).unwrap().fault = Some(c.fault.clone());
        }
    });
    expect_faults_keep_verdicts(&d, &cases, &before, "phone_numbers", fault_set_at).await;
    assert_nothing_unsafe_was_sent(&trap, &sim);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstreams_are_network_errors_and_never_a_verdict() {
    // A port that was just closed: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let refused = format!("http://{closed}");
    let nxdomain = "http://nonexistent.invalid";
    let yaml = config(
        FAST,
        &[
            el("el-refused", &el_key("refused"), &refused, ""),
            el(
                "el-dns",
                &el_key("dns"),
                nxdomain,
                "    allow_insecure_http: true\n",
            ),
        ],
        &[
            tw(
                "tw-refused",
                &ac_sid("refused"),
                &tw_token("refused"),
                &refused,
                "",
            ),
            tw(
                "tw-dns",
                &ac_sid("dns"),
                &tw_token("dns"),
                nxdomain,
                "    allow_insecure_http: true\n",
            ),
        ],
    );
    let d = Daemon::start(&yaml).await;
    for (name, check) in [
        ("el-refused", "subscription"),
        ("el-dns", "subscription"),
        ("tw-refused", "phone_numbers"),
        ("tw-dns", "phone_numbers"),
    ] {
        let c = d
            .wait_for(name, Duration::from_secs(20), |c| {
                !c["check_error"].is_null()
            })
            .await;
        assert_eq!(c["check_error"], "network", "{name}: {c}");
        assert_eq!(c["status"], "pending", "{name}: {c}");
        assert_eq!(c["valid"], serde_json::Value::Null, "{name}: {c}");
        assert_eq!(c["last_success"], serde_json::Value::Null, "{name}: {c}");
        let m = d.metrics().await;
        let me = cred(name);
        let all = lines_of(&m, name);
        assert_eq!(
            sample(&m, "credwatch_credential_valid", &[&me]),
            None,
            "{name}: no verdict, no series:\n{all}"
        );
        assert_eq!(
            sample(&m, "credwatch_credential_healthy", &[&me]),
            Some(0.0),
            "{all}"
        );
        assert_eq!(
            sample(
                &m,
                "credwatch_check_success",
                &[&me, &format!("check=\"{check}\"")]
            ),
            Some(0.0),
            "{all}"
        );
        assert!(
            sample(
                &m,
                "credwatch_check_errors_total",
                &[&me, "reason=\"network\""]
            )
            .is_some_and(|v| v >= 1.0),
            "{all}"
        );
        assert_eq!(
            sample(&m, "credwatch_credential_problem_info", &[&me]),
            None,
            "pending is not a problem:\n{all}"
        );
        assert_eq!(
            sample(&m, "credwatch_last_success_timestamp_seconds", &[&me]),
            None,
            "{all}"
        );
    }
    // Every credential is broken: alive, ready (a round happened), not healthy.
    assert_eq!(d.get("/livez").await.0, 200);
    d.wait_ready(Duration::from_secs(10)).await;
    let (code, h) = d.health().await;
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["pending"], 4, "{h}");
    d.stop().await;
}
