//! What reaches upstream: only side-effect-free GETs of the exact shapes the
//! reference allows (a list kept here, by hand, independent of credwatch's
//! own allow-list), for every credential kind, and nothing at all because of
//! a scrape of `/metrics`, `/health` or `/`.

use std::time::Duration;

use credwatch_sim::demo as d;
use credwatch_sim::{ApiKey, KeyKind, RecordedRequest, Simulator, TwilioAccount, World};

use crate::harness::Daemon;
use crate::support::{ac_sid, cred, sk_sid, tw, tw_api_key, tw_key_secret, tw_token, wait_sample};

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
    let demo = credwatch_sim::demo::config_yaml(sim);
    let fast = demo.replace(
        "defaults:\n  interval: 10s\n  timeout: 3s\n  detail_interval: 30s\n",
        "defaults:\n  interval: 1s\n  timeout: 500ms\n  detail_interval: 1s\n",
    );
    assert_ne!(
        fast, demo,
        "the demo config's defaults changed; update this test"
    );
    let (el_items, tw_items) = fast.split_once("twilio:\n").expect("twilio section");
    let url = sim.twilio_url();
    let mut y = el_items.to_string();
    y += &crate::support::el(
        "el-all-permissions",
        d::EL_AGENT_PROD_KEY,
        &sim.elevenlabs_url(),
        "    required_permissions: [convai_write, convai_read, user_read, models_read]\n    phone_numbers: true\n    twilio: twilio-prod\n    expose_numbers: true\n",
    );
    y += "twilio:\n";
    y += tw_items;
    y += &tw_api_key(
        "twilio-main-key",
        d::TWILIO_PROD_SID,
        &sk_sid("main-key"),
        &tw_key_secret("main-key"),
        &url,
        "",
    );
    y += &tw_api_key(
        "twilio-restricted-key",
        d::TWILIO_PROD_SID,
        &sk_sid("restricted-key"),
        &tw_key_secret("restricted-key"),
        &url,
        "",
    );
    y += &tw(
        "twilio-subaccount",
        &ac_sid("safety-sub"),
        &tw_token("safety-sub"),
        &url,
        "",
    );
    y
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

/// The one agent `get-signed-url` may name: well-formed (`agent_` + 28
/// lowercase alphanumerics, elevenlabs-api.md §5.7) and nonexistent.
const PROBE_AGENT: &str = "agent_0000000000000000000000000000";

/// The calls credwatch may make, written by hand from the reference
/// (elevenlabs-api.md §5 and §9, twilio-api.md §3 and §6) and not taken from
/// credwatch's own allow-list, which `Upstream::get` already applies: a
/// mistake there must show up here. `Err` says what is wrong.
fn allowed(r: &RecordedRequest) -> Result<(), String> {
    let path = r.path.as_str();
    let query: Vec<(&str, &str)> = r
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let no_query = || {
        if query.is_empty() {
            Ok(())
        } else {
            Err("no query is ever sent here".to_string())
        }
    };
    let exactly = |want: &str| {
        if r.query.as_deref() == Some(want) {
            Ok(())
        } else {
            Err(format!("the query must be exactly `{want}`"))
        }
    };
    let id = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let account_sid = |s: &str| {
        s.len() == 34 && s.starts_with("AC") && s[2..].chars().all(|c| c.is_ascii_hexdigit())
    };
    let segments: Vec<&str> = path.split('/').collect();
    match r.upstream {
        "elevenlabs" => match segments.as_slice() {
            ["", "v1", "user", "subscription"] | ["", "v1", "user"] | ["", "v1", "models"] => {
                no_query()
            }
            ["", "v1", "convai", "agents"] => exactly("page_size=1"),
            ["", "v1", "convai", "agents", agent] if id(agent) => no_query(),
            ["", "v1", "convai", "phone-numbers"] => exactly("provider=twilio"),
            // A call path's imported number.
            ["", "v1", "convai", "phone-numbers", number] if id(number) => no_query(),
            ["", "v1", "convai", "conversation", "get-signed-url"] => {
                exactly(&format!("agent_id={PROBE_AGENT}"))
            }
            _ => Err("not an ElevenLabs path credwatch may call".into()),
        },
        "twilio" => {
            let resource = match segments.as_slice() {
                ["", "2010-04-01", "Accounts", account] => {
                    return match account.strip_suffix(".json") {
                        Some(sid) if account_sid(sid) => no_query(),
                        _ => Err("not an account resource".into()),
                    };
                }
                ["", "2010-04-01", "Accounts", sid, resource] if account_sid(sid) => *resource,
                // The Voice API (voice_base_url): one country's dialing
                // permissions, for a call path's destinations.
                ["", "v1", "DialingPermissions", "Countries", iso]
                    if iso.len() == 2 && iso.chars().all(|c| c.is_ascii_uppercase()) =>
                {
                    return no_query();
                }
                _ => return Err("not a Twilio path credwatch may call".into()),
            };
            // Paging (`PageSize`, then the `Page` and `PageToken` of
            // `next_page_uri`) and the exact-number filter `PhoneNumber`.
            let mut keys: Vec<&str> = query.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err("a query parameter is repeated".into());
            }
            for (k, v) in &query {
                let ok = match *k {
                    "PageSize" => v.parse::<u16>().is_ok_and(|n| (1..=1000).contains(&n)),
                    "Page" => v.parse::<u32>().is_ok(),
                    "PageToken" => (v.starts_with("PA") || v.starts_with("PB")) && id(v),
                    "PhoneNumber" => v
                        .strip_prefix("%2B")
                        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())),
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "query parameter `{k}={v}` is not one credwatch sends"
                    ));
                }
            }
            let has = |k: &str| keys.contains(&k);
            match resource {
                "IncomingPhoneNumbers.json" if has("PageSize") || has("PhoneNumber") => Ok(()),
                "OutgoingCallerIds.json" if has("PhoneNumber") => Ok(()),
                "Balance.json" => no_query(),
                _ => Err("not a Twilio resource credwatch may call this way".into()),
            }
        }
        other => Err(format!("no hand-written list for the `{other}` upstream")),
    }
}

#[test]
fn the_reference_list_refuses_calls_credwatch_must_never_make() {
    let request = |upstream, method: &str, target: &str| {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        RecordedRequest {
            upstream,
            method: method.into(),
            path,
            query,
            headers: Vec::new(),
            at: std::time::SystemTime::now(),
            forbidden: None,
        }
    };
    let ac = d::TWILIO_PROD_SID;
    for target in [
        "/v1/user/subscription",
        "/v1/user",
        "/v1/models",
        "/v1/convai/agents?page_size=1",
        "/v1/convai/agents/agent_ulawready0000000000000000000",
        "/v1/convai/phone-numbers?provider=twilio",
        "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000",
    ] {
        let r = request("elevenlabs", "GET", target);
        assert_eq!(allowed(&r), Ok(()), "{target}");
    }
    for target in [
        format!("/2010-04-01/Accounts/{ac}.json"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000"),
        format!(
            "/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000&Page=1&PageToken=PAPN0123"
        ),
        format!(
            "/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PhoneNumber=%2B15005550006&PageSize=20"
        ),
        format!(
            "/2010-04-01/Accounts/{ac}/OutgoingCallerIds.json?PhoneNumber=%2B15005550006&PageSize=20"
        ),
        format!("/2010-04-01/Accounts/{ac}/Balance.json"),
    ] {
        let r = request("twilio", "GET", &target);
        assert_eq!(allowed(&r), Ok(()), "{target}");
    }
    for target in [
        "/v1/convai/conversation/get-signed-url?agent_id=agent_ulawready0000000000000000000",
        "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include_conversation_id=true",
        "/v1/convai/conversation/get-signed-url",
        "/v1/convai/conversation/token?agent_id=agent_0000000000000000000000000000",
        "/v1/convai/twilio/outbound-call",
        "/v1/workspaces/api-keys/disable?api_key_name=self",
        "/v1/convai/agents?page_size=100",
        "/v1/convai/phone-numbers",
        "/v1/convai/phone-numbers/phnum_ready?x=1",
        "/v1/text-to-speech/voice",
        "/v1/user?x=1",
    ] {
        let r = request("elevenlabs", "GET", target);
        assert!(allowed(&r).is_err(), "{target} must be refused");
    }
    for target in [
        "/2010-04-01/Accounts.json".to_string(),
        format!("/2010-04-01/Accounts/{ac}/Keys.json"),
        format!("/2010-04-01/Accounts/{ac}/Calls.json"),
        format!("/2010-04-01/Accounts/{ac}/Messages.json"),
        format!("/2010-04-01/Accounts/{ac}/Tokens.json"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000&PageSize=1"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000&Beta=false"),
        format!("/2010-04-01/Accounts/{ac}/OutgoingCallerIds.json?PageSize=1000"),
        format!("/2010-04-01/Accounts/{ac}/Balance.json?PageSize=1"),
        "/2010-04-01/Accounts/ACnothex/Balance.json".to_string(),
        "/2010-04-01/Accounts/SK0123456789abcdef0123456789abcdef.json".to_string(),
    ] {
        let r = request("twilio", "GET", &target);
        assert!(allowed(&r).is_err(), "{target} must be refused");
    }
    // The same paths on the other provider are not allowed either.
    let r = request("twilio", "GET", "/v1/user");
    assert!(allowed(&r).is_err());
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
            problems.push(format!("GET {target}: {e}"));
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
            && r.query.as_deref() != Some(format!("agent_id={PROBE_AGENT}").as_str())
        {
            problems.push(format!(
                "GET {target}: a signed URL for a real agent may be minted"
            ));
        }
        match r.upstream {
            "elevenlabs" => {
                if r.header("xi-api-key").is_none() || r.header("authorization").is_some() {
                    problems.push(format!("GET {target}: ElevenLabs auth must be xi-api-key"));
                }
            }
            "twilio" => {
                if !r
                    .header("authorization")
                    .is_some_and(|a| a.starts_with("Basic "))
                {
                    problems.push(format!("GET {target}: Twilio auth must be Basic"));
                }
            }
            other => problems.push(format!("GET {target}: no auth rule for `{other}`")),
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
    let yaml = config(&sim).replace(
        "defaults:\n  interval: 1s\n  timeout: 500ms\n  detail_interval: 1s\n",
        "defaults:\n  interval: 30s\n  timeout: 5s\n  detail_interval: 30s\n",
    );
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
