//! What reaches upstream: only side-effect-free GETs of the exact shapes the
//! reference allows (each fake's list, `Fake::read_only_check`, kept by hand
//! in the simulator, independent of credwatch's own allow-list), with the
//! upstream's own authentication, for every credential kind, and nothing at
//! all because of a scrape of `/metrics`, `/health` or `/`.

use std::time::Duration;

use credwatch_sim::demo as d;
use credwatch_sim::{ApiKey, KeyKind, RecordedRequest, Simulator, TwilioAccount, World};

use crate::harness::Daemon;
use crate::support::{
    Doc, ac_sid, cred, el, sk_sid, tw, tw_api_key, tw_key_secret, tw_token, wait_sample,
};
use serde_json::json;

/// The demo world plus the credential kinds it lacks: Main and Restricted
/// Twilio keys, a subaccount, an ElevenLabs key checked for every permission.
pub fn world() -> World {
    let mut w = World::demo();
    let prod = w.twilio.account_mut(d::TWILIO_PROD_SID).expect("prod");
    prod.api_keys.push(ApiKey::new(
        sk_sid("main-key"),
        tw_key_secret("main-key"),
        KeyKind::Main,
    ));
    prod.api_keys.push(ApiKey::new(
        sk_sid("restricted-key"),
        tw_key_secret("restricted-key"),
        KeyKind::Restricted {
            can_read_numbers: true,
            can_read_balance: false,
        },
    ));
    w.twilio.add_account(
        TwilioAccount::new(ac_sid("safety-sub"), tw_token("safety-sub"))
            .with_parent(d::TWILIO_PROD_SID)
            .with_numbers(&["+15005550010"]),
    );
    w
}

/// The demo config at one check (with every detail) per second, plus the extra kinds.
pub fn config(sim: &Simulator) -> String {
    doc(sim).render()
}

/// [`config`] as a value.
fn doc(sim: &Simulator) -> Doc {
    let url = sim.twilio_url();
    Doc::parse(&credwatch_sim::demo::config_yaml(sim))
        .defaults(json!({"interval": "1s", "timeout": "500ms", "detail_interval": "1s"}))
        .push(
            "elevenlabs",
            el(
                "el-all-permissions",
                d::EL_AGENT_PROD_KEY,
                &sim.elevenlabs_url(),
                "",
            )
            .set(
                "required_permissions",
                ["convai_write", "convai_read", "user_read", "models_read"],
            )
            .set("phone_numbers", true)
            .set("twilio", "twilio-prod")
            .set("expose_numbers", true),
        )
        .push(
            "twilio",
            tw_api_key(
                "twilio-main-key",
                d::TWILIO_PROD_SID,
                &sk_sid("main-key"),
                &tw_key_secret("main-key"),
                &url,
                "",
            ),
        )
        .push(
            "twilio",
            tw_api_key(
                "twilio-restricted-key",
                d::TWILIO_PROD_SID,
                &sk_sid("restricted-key"),
                &tw_key_secret("restricted-key"),
                &url,
                "",
            ),
        )
        .push(
            "twilio",
            tw(
                "twilio-subaccount",
                &ac_sid("safety-sub"),
                &tw_token("safety-sub"),
                &url,
                "",
            ),
        )
}

/// Waits until every detail check of every kind has answered at least once.
async fn wait_full_cycle(dm: &Daemon) {
    let within = Duration::from_secs(30);
    dm.wait_ready(within).await;
    for (name, family, needle) in [
        (
            "el-all-permissions",
            "credwatch_permission_granted",
            "permission=\"models_read\"",
        ),
        (
            "el-all-permissions",
            "credwatch_elevenlabs_phone_number_ready",
            "phone_number_id=",
        ),
        (
            "el-agent-prod",
            "credwatch_elevenlabs_phone_number_ready",
            "phone_number_id=",
        ),
        ("twilio-prod", "credwatch_twilio_balance", "currency="),
        (
            "twilio-main-key",
            "credwatch_twilio_account_info",
            "status=",
        ),
        (
            "twilio-restricted-key",
            "credwatch_check_success",
            "check=\"balance\"",
        ),
        (
            "twilio-standard-key",
            "credwatch_check_success",
            "check=\"balance\"",
        ),
        (
            "twilio-subaccount",
            "credwatch_check_success",
            "check=\"balance\"",
        ),
        (
            "twilio-suspended",
            "credwatch_check_success",
            "check=\"balance\"",
        ),
    ] {
        wait_sample(dm, within, family, &[&cred(name), needle], |_| true).await;
    }
}

/// What a read-only prober may send `r`'s upstream: the fake's own list,
/// written by hand from the reference (`Fake::read_only_check`), and the way
/// it must authenticate (`Fake::auth_check`).
fn allowed(r: &RecordedRequest) -> Result<(), String> {
    let fake = credwatch_sim::FAKES
        .iter()
        .find(|f| f.name() == r.upstream)
        .ok_or_else(|| format!("no fake called `{}`", r.upstream))?;
    fake.read_only_check(r)?;
    fake.auth_check(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cycle_with_details_for_every_credential_kind_sends_only_allowed_gets() {
    let sim = Simulator::start(world()).await.expect("simulator");
    let dm = Daemon::start(&config(&sim)).await;
    wait_full_cycle(&dm).await;
    // And one more round of everything, with the details again.
    let seen = sim.request_count();
    crate::support::eventually(Duration::from_secs(20), "another round", || async {
        let n = sim.request_count();
        if n >= seen + 40 {
            Ok(())
        } else {
            Err(format!("{} more requests", n - seen))
        }
    })
    .await;
    dm.stop().await;

    let requests = sim.requests();
    assert!(!requests.is_empty());
    let forbidden = sim.forbidden_requests();
    assert!(forbidden.is_empty(), "forbidden requests: {forbidden:#?}");
    let mut problems = Vec::new();
    for r in &requests {
        let target = match &r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.clone(),
        };
        if r.method != "GET" {
            problems.push(format!("{} {target}: not a GET", r.method));
        }
        if let Err(e) = allowed(r) {
            problems.push(format!("{} {target}: {e}", r.method));
        }
        if r.header("content-length").is_some_and(|l| l != "0")
            || r.header("transfer-encoding").is_some()
        {
            problems.push(format!("GET {target} has a body"));
        }
        for never in [
            "outbound-call",
            "conversation/token",
            "api-keys/disable",
            "/Keys.json",
            "/Calls.json",
            "/Messages.json",
        ] {
            if target.contains(never) {
                problems.push(format!("GET {target}: never-call endpoint"));
            }
        }
        if target == "/2010-04-01/Accounts.json" {
            problems.push("the account list (every subaccount's token) was asked".into());
        }
        if r.path.ends_with("get-signed-url")
            && r.query.as_deref()
                != Some(format!("agent_id={}", credwatch_sim::elevenlabs::PROBE_AGENT).as_str())
        {
            problems.push(format!(
                "GET {target}: a signed URL for a real agent may be minted"
            ));
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every kind of request was made, so the checks above covered them.
    for path in [
        "/v1/user/subscription",
        "/v1/user",
        "/v1/models",
        "/v1/convai/agents",
        "/v1/convai/phone-numbers",
        "/v1/convai/conversation/get-signed-url",
    ] {
        assert!(
            requests.iter().any(|r| r.path == path),
            "{path} never asked"
        );
    }
    for suffix in [
        "/IncomingPhoneNumbers.json",
        "/OutgoingCallerIds.json",
        "/Balance.json",
    ] {
        assert!(
            requests.iter().any(|r| r.path.ends_with(suffix)),
            "{suffix} never asked"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.path == format!("/2010-04-01/Accounts/{}.json", d::TWILIO_PROD_SID)),
        "the account was never asked"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/v1/convai/agents/")),
        "no assigned agent was ever read"
    );
    for suffix in ["/IncomingPhoneNumbers.json", "/OutgoingCallerIds.json"] {
        assert!(
            requests.iter().any(|r| r.path.ends_with(suffix)
                && r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("PhoneNumber="))),
            "{suffix} was never asked for one number"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_the_landing_page_never_call_upstream() {
    let sim = Simulator::start(world()).await.expect("simulator");
    // A long interval: after the first round, nothing is due for 30 s.
    let yaml = doc(&sim)
        .defaults(json!({"interval": "30s", "timeout": "5s", "detail_interval": "30s"}))
        .render();
    let dm = Daemon::start(&yaml).await;
    dm.wait_ready(Duration::from_secs(20)).await;
    let before = sim.request_count();
    for _ in 0..30 {
        let (m, h, one, landing, live, ready) = tokio::join!(
            dm.get("/metrics"),
            dm.get("/health"),
            dm.get("/health?credential=twilio-prod"),
            dm.get("/"),
            dm.get("/livez"),
            dm.get("/readyz"),
        );
        assert_eq!(m.0, 200);
        assert_eq!(h.0, 503, "the demo has broken critical credentials");
        assert_eq!(one.0, 200, "{}", one.1);
        assert_eq!(landing.0, 200);
        assert!(landing.1.contains("twilio-prod"));
        assert_eq!(live.0, 200);
        assert_eq!(ready.0, 200);
        let head = dm
            .client
            .head(format!("{}/metrics", dm.url))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), 200);
    }
    assert_eq!(
        sim.request_count(),
        before,
        "a scrape must never reach upstream"
    );
    dm.stop().await;
}
