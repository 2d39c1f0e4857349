//! Twilio scenarios: paging through thousands of numbers, every kind of
//! rejected credential, suspended accounts, subaccounts, API keys, and the
//! mistakes caught before anything is sent.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use credwatch::config::Config;
use credwatch_sim::{AccountStatus, ApiKey, Fault, KeyKind, Simulator, TwilioAccount, World};

use crate::harness::{Daemon, sample};
use crate::support::Item;
use crate::support::{
    FAST_DETAILS, ac_sid, assert_error_counted, assert_only_credential_unhealthy, assert_verdict,
    config, cred, sk_sid, tw, tw_api_key, tw_key_secret, tw_token, wait_status, wait_verdict,
};

/// Starts the simulator on `world` and a daemon watching the given `twilio:` items.
async fn watch(world: World, items: impl Fn(&str) -> Vec<Item>) -> (Simulator, Daemon) {
    let sim = Simulator::start(world).await.expect("simulator");
    let items = items(&sim.twilio_url());
    let d = Daemon::start(&config(FAST_DETAILS, &[], &items)).await;
    (sim, d)
}

/// Waits until the balance check of `name` has succeeded (the account check
/// runs before it, so both have answered), asserts the verdict is healthy and
/// valid, and returns `/metrics`.
async fn healthy_once_the_balance_answered(d: &Daemon, name: &str) -> String {
    crate::support::wait_sample(
        d,
        Duration::from_secs(20),
        "credwatch_check_success",
        &[&cred(name), "check=\"balance\""],
        |v| v == 1.0,
    )
    .await;
    assert_verdict(d, name, "healthy", None, Some(true)).await;
    d.metrics().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_with_2345_numbers_over_three_pages_exports_the_exact_count() {
    let sid = ac_sid("many-numbers");
    let token = tw_token("many-numbers");
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_balance(Some("1234.56"), "EUR")
            .with_generated_numbers(2345),
    );
    let (sim, d) = watch(world, |url| {
        // The full count is a detail; the first cycle always has the details.
        vec![tw(
            "tw-many",
            &sid,
            &token,
            url,
            "    detail_interval: 30s\n",
        )]
    })
    .await;
    let c = wait_status(&d, "tw-many", "healthy").await;
    assert_eq!(c["valid"], true, "{c}");
    let me = cred("tw-many");
    crate::support::wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_twilio_balance",
        &[&me],
        |_| true,
    )
    .await;
    assert_verdict(&d, "tw-many", "healthy", None, Some(true)).await;
    let m = d.metrics().await;
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &[&me]),
        Some(2345.0)
    );
    assert_eq!(
        sample(&m, "credwatch_twilio_balance", &[&me, "currency=\"EUR\""]),
        Some(1234.56)
    );
    assert!(
        sample(
            &m,
            "credwatch_twilio_account_info",
            &[&me, "status=\"active\"", "type=\"Full\""]
        )
        .is_some()
    );
    // Three pages of at most 1,000, each following Twilio's next_page_uri.
    let pages: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/IncomingPhoneNumbers.json"))
        .filter_map(|r| r.query.clone())
        .filter(|q| q.contains("PageSize=1000"))
        .collect();
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(!pages[0].contains("PageToken"), "{pages:?}");
    assert!(
        pages[1].contains("Page=1") && pages[1].contains("PageToken=PA"),
        "{pages:?}"
    );
    assert!(
        pages[2].contains("Page=2") && pages[2].contains("PageToken=PA"),
        "{pages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_invalid_credentials_20003() {
    let sid = ac_sid("wrong-token");
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("wrong-token-current")).with_numbers(&["+15005550006"]),
    );
    let old = tw_token("wrong-token-old");
    let (_sim, d) = watch(world, |url| vec![tw("tw-wrong", &sid, &old, url, "")]).await;
    wait_verdict(&d, "tw-wrong").await;
    let m = assert_only_credential_unhealthy(&d, "tw-wrong", "invalid_credentials", false).await;
    let me = cred("tw-wrong");
    assert_error_counted(&m, "tw-wrong", "phone_numbers", "invalid_credentials");
    for family in [
        "credwatch_twilio_phone_numbers",
        "credwatch_twilio_balance",
        "credwatch_twilio_account_info",
    ] {
        assert_eq!(sample(&m, family, &[&me]), None, "{family}");
    }
}

/// Test credentials authenticate, but Twilio lets them read nothing (403
/// 20008): neither valid nor invalid, so no verdict — never a confident one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_credentials_20008_are_neither_valid_nor_invalid() {
    let sid = ac_sid("test-creds");
    let test_token = tw_token("test-creds-test");
    let mut account =
        TwilioAccount::new(&sid, tw_token("test-creds-live")).with_numbers(&["+15005550006"]);
    account.test_auth_token = Some(test_token.clone());
    let mut world = World::default();
    world.twilio.add_account(account);
    let (sim, d) = watch(world, |url| {
        vec![tw("tw-test-creds", &sid, &test_token, url, "")]
    })
    .await;
    let me = cred("tw-test-creds");
    crate::support::wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_check_errors_total",
        &[
            &me,
            "check=\"phone_numbers\"",
            "reason=\"unexpected_response\"",
        ],
        |v| v >= 1.0,
    )
    .await;
    assert_verdict(&d, "tw-test-creds", "pending", None, None).await;
    let c = d.credential("tw-test-creds").await;
    assert_eq!(c["check_error"], "unexpected_response", "{c}");
    // It really was 20008, not a plain 20003: nothing but the first list was asked.
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.path.ends_with("/IncomingPhoneNumbers.json")),
        "no answer stops the cycle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_is_account_blocked() {
    let sid = ac_sid("suspended");
    let token = tw_token("suspended");
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_status(AccountStatus::Suspended)
            .with_numbers(&["+15005550006"]),
    );
    let (_sim, d) = watch(world, |url| vec![tw("tw-suspended", &sid, &token, url, "")]).await;
    wait_verdict(&d, "tw-suspended").await;
    assert_verdict(
        &d,
        "tw-suspended",
        "unhealthy",
        Some("account_blocked"),
        Some(true),
    )
    .await;
    let me = cred("tw-suspended");
    crate::support::wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_twilio_account_info",
        &[&me, "status=\"suspended\""],
        |v| v == 1.0,
    )
    .await;
    assert_eq!(d.health().await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subaccount_has_no_balance_series_and_is_healthy() {
    let parent = ac_sid("parent");
    let sub = ac_sid("subaccount");
    let sub_token = tw_token("subaccount");
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(&parent, tw_token("parent")).with_balance(Some("99.00"), "USD"),
    );
    world.twilio.add_account(
        TwilioAccount::new(&sub, &sub_token)
            .with_parent(&parent)
            .with_numbers(&["+15005550007"]),
    );
    let (sim, d) = watch(world, |url| vec![tw("tw-sub", &sub, &sub_token, url, "")]).await;
    let me = cred("tw-sub");
    let m = healthy_once_the_balance_answered(&d, "tw-sub").await;
    assert_eq!(
        sample(&m, "credwatch_twilio_balance", &[&me]),
        None,
        "a subaccount's balance does not apply: absent, not 0"
    );
    assert!(
        sample(
            &m,
            "credwatch_twilio_account_info",
            &[&me, "status=\"active\""]
        )
        .is_some()
    );
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &[&me]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "credwatch_check_errors_total", &[&me]),
        None,
        "404 on the balance is not an error"
    );
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path == format!("/2010-04-01/Accounts/{sub}/Balance.json")),
        "the balance was asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_api_key_is_healthy_without_account_info() {
    let sid = ac_sid("standard-key");
    let key_sid = sk_sid("standard-key");
    let secret = tw_key_secret("standard-key");
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("standard-key-account"))
            .with_balance(Some("18.03"), "USD")
            .with_numbers(&["+15005550008", "+15005550009"])
            .with_key(ApiKey::new(&key_sid, &secret, KeyKind::Standard)),
    );
    let (sim, d) = watch(world, |url| {
        vec![tw_api_key("tw-standard", &sid, &key_sid, &secret, url, "")]
    })
    .await;
    let me = cred("tw-standard");
    let m = healthy_once_the_balance_answered(&d, "tw-standard").await;
    assert_eq!(
        sample(&m, "credwatch_twilio_account_info", &[&me]),
        None,
        "a Standard key may not read the account: absent"
    );
    assert_eq!(
        sample(&m, "credwatch_check_success", &[&me, "check=\"account\""]),
        Some(1.0),
        "401 on the account is a definitive answer for a Standard key"
    );
    assert_eq!(
        sample(&m, "credwatch_twilio_balance", &[&me, "currency=\"USD\""]),
        Some(18.03)
    );
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &[&me]),
        Some(2.0)
    );
    assert_eq!(d.health().await.0, 200);
    // Each refused request shows up as an authentication failure in the
    // customer's Twilio Console: asked once, not every cycle, while the
    // numbers keep being checked every interval.
    let account = format!("/2010-04-01/Accounts/{sid}.json");
    let numbers = format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json");
    let before = sim.requests().iter().filter(|r| r.path == numbers).count();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let requests = sim.requests();
    assert_eq!(
        requests.iter().filter(|r| r.path == account).count(),
        1,
        "the account was asked again after a definitive refusal"
    );
    assert!(requests.iter().filter(|r| r.path == numbers).count() >= before + 2);
}

#[test]
fn swapped_sid_and_token_are_caught_at_config_load_without_showing_either() {
    let sid = ac_sid("swapped");
    let token = tw_token("swapped");
    let file = Path::new("/etc/credwatch/swapped.yaml");
    let env = HashMap::<String, String>::new();

    let yaml = config(
        "",
        &[],
        &[tw("tw-swapped", &token, &sid, "https://api.twilio.com", "")],
    );
    let err = Config::from_yaml(&yaml, file, &env).expect_err("swapped SID and token");
    let text = err.to_string();
    assert!(text.contains("swapped"), "{text}");
    assert!(text.contains("twilio[0].account_sid"), "{text}");
    assert!(text.contains("/etc/credwatch/swapped.yaml"), "{text}");
    assert!(
        !text.contains(&token),
        "the token must not be shown: {text}"
    );

    let key_sid = sk_sid("swapped");
    let secret = tw_key_secret("swapped");
    let yaml = config(
        "",
        &[],
        &[tw_api_key(
            "tw-swapped-key",
            &sid,
            &secret,
            &key_sid,
            "https://api.twilio.com",
            "",
        )],
    );
    let err = Config::from_yaml(&yaml, file, &env).expect_err("swapped key SID and secret");
    let text = err.to_string();
    assert!(text.contains("swapped"), "{text}");
    assert!(text.contains("twilio[0].api_key_sid"), "{text}");
    assert!(
        !text.contains(&secret),
        "the secret must not be shown: {text}"
    );
}

/// The requests for the account's number list: (query, at) in order.
fn listing_requests(sim: &Simulator, sid: &str) -> Vec<(String, std::time::SystemTime)> {
    let path = format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json");
    sim.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| (r.query.unwrap_or_default(), r.at))
        .collect()
}

/// Page 1 of the listing proves authentication: when a later page answers
/// 503 or an HTML page, only the number count is affected (stale, its age
/// exported), never the verdict, and the account check still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_later_page_leaves_the_verdict_and_makes_only_the_count_stale() {
    let sid = ac_sid("page-two-fails");
    let token = tw_token("page-two-fails");
    let mut world = World::default();
    let mut account = TwilioAccount::new(&sid, &token)
        .with_balance(Some("10.00"), "USD")
        .with_generated_numbers(1500);
    account.later_page_fault = Some(Fault::SystemBusy);
    world.twilio.add_account(account);
    // Critical (the default): a wrong verdict would turn /health 503.
    let (sim, d) = watch(world, |url| vec![tw("tw-pages", &sid, &token, url, "")]).await;
    let me = cred("tw-pages");
    // Every error counted for the count check, whatever its reason.
    let count_errors = |m: &str| -> f64 {
        m.lines()
            .filter(|l| {
                l.starts_with("credwatch_check_errors_total{")
                    && l.contains("credential=\"tw-pages\"")
                    && l.contains("check=\"phone_numbers_count\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let errors_reach = |n: f64| {
        let d = &d;
        crate::support::eventually(
            Duration::from_secs(20),
            "failed counts",
            move || async move {
                let m = d.metrics().await;
                (count_errors(&m) >= n).then_some(()).ok_or(m)
            },
        )
    };
    // Page 2 answers 503 20503 from the start: healthy, no count yet.
    errors_reach(2.0).await;
    let m = d.metrics().await;
    assert_verdict(&d, "tw-pages", "healthy", None, Some(true)).await;
    assert_eq!(d.health().await.0, 200);
    assert_eq!(sample(&m, "credwatch_twilio_phone_numbers", &[&me]), None);
    assert_eq!(
        sample(
            &m,
            "credwatch_twilio_phone_numbers_counted_timestamp_seconds",
            &[&me]
        ),
        None
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_check_success",
            &[&me, "check=\"phone_numbers\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_check_success",
            &[&me, "check=\"phone_numbers_count\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "credwatch_check_success", &[&me, "check=\"account\""]),
        Some(1.0),
        "the account check still runs"
    );
    assert!(
        sample(
            &m,
            "credwatch_twilio_account_info",
            &[&me, "status=\"active\""]
        )
        .is_some()
    );

    // Page 2 answers again: the count and the time it was taken.
    sim.update(|w| {
        if let Some(a) = w.twilio.account_mut(&sid) {
            a.later_page_fault = None;
        }
    });
    let counted = crate::support::wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_twilio_phone_numbers_counted_timestamp_seconds",
        &[&me],
        |_| true,
    )
    .await;
    let m = d.metrics().await;
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &[&me]),
        Some(1500.0)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(counted <= now && counted > now - 60.0, "{counted} vs {now}");

    // Page 2 turns into an HTML page from a load balancer: the last count
    // stays, with the time it was taken, and the verdict does not move.
    sim.update(|w| {
        if let Some(a) = w.twilio.account_mut(&sid) {
            a.later_page_fault = Some(Fault::BadGatewayHtml);
        }
    });
    let before = count_errors(&d.metrics().await);
    errors_reach(before + 2.0).await;
    let m = d.metrics().await;
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &[&me]),
        Some(1500.0)
    );
    let stale = sample(
        &m,
        "credwatch_twilio_phone_numbers_counted_timestamp_seconds",
        &[&me],
    )
    .expect("the count's time stays");
    assert!(stale >= counted && stale < now + 60.0);
    assert_verdict(&d, "tw-pages", "healthy", None, Some(true)).await;
    assert_eq!(d.health().await.0, 200);
}

/// A 429 on a later page is honoured (`Retry-After`), not retried at once,
/// and the next cycle is not another full listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_later_page_is_honoured_and_not_relisted() {
    let sid = ac_sid("page-two-429");
    let token = tw_token("page-two-429");
    let slow_sid = ac_sid("page-two-429-no-retry-after");
    let slow_token = tw_token("page-two-429-no-retry-after");
    let mut world = World::default();
    let mut account = TwilioAccount::new(&sid, &token).with_generated_numbers(1200);
    account.later_page_fault = Some(Fault::RateLimited {
        retry_after_secs: Some(3600),
    });
    world.twilio.add_account(account);
    let mut other = TwilioAccount::new(&slow_sid, &slow_token).with_generated_numbers(1200);
    other.later_page_fault = Some(Fault::RateLimited {
        retry_after_secs: None,
    });
    world.twilio.add_account(other);
    let sim = Simulator::start(world).await.expect("simulator");
    let url = sim.twilio_url();
    // Interval 1s; the full listing is a detail, due once an hour.
    let yaml = config(
        "defaults:\n  interval: 1s\n  timeout: 500ms\n  detail_interval: 1h\n",
        &[],
        &[
            tw("tw-429", &sid, &token, &url, ""),
            tw("tw-429-bare", &slow_sid, &slow_token, &url, ""),
        ],
    );
    let d = Daemon::start(&yaml).await;
    // Without Retry-After: the next cycles come at the interval, each one
    // page of one number; the full listing is not repeated.
    crate::support::eventually(Duration::from_secs(20), "three more cycles", || {
        let sim = &sim;
        let slow_sid = &slow_sid;
        async move {
            let q = listing_requests(sim, slow_sid);
            (q.len() >= 5).then_some(()).ok_or(format!("{q:?}"))
        }
    })
    .await;
    let q = listing_requests(&sim, &slow_sid);
    assert!(
        q[0].0.contains("PageSize=1000") && !q[0].0.contains("Page="),
        "{q:?}"
    );
    assert!(
        q[1].0.contains("Page=1"),
        "page 2 of the first cycle: {q:?}"
    );
    for (query, _) in &q[2..] {
        assert_eq!(query, "PageSize=1", "no second full listing: {q:?}");
    }
    assert_verdict(&d, "tw-429-bare", "healthy", None, Some(true)).await;
    let m = d.metrics().await;
    assert_error_counted(&m, "tw-429-bare", "phone_numbers_count", "rate_limited");

    // With `Retry-After: 3600`: nothing more is asked of that account
    // while the other one went through several cycles.
    let q = listing_requests(&sim, &sid);
    assert_eq!(
        q.len(),
        2,
        "page 1 and page 2 of the first cycle only: {q:?}"
    );
    let account = format!("/2010-04-01/Accounts/{sid}.json");
    let asked_account = sim.requests().iter().filter(|r| r.path == account).count();
    assert_eq!(
        asked_account, 1,
        "the account check ran once, in the first cycle"
    );
    assert_verdict(&d, "tw-429", "healthy", None, Some(true)).await;
    assert_eq!(d.health().await.0, 200);
}
