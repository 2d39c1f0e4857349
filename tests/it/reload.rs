//! `POST /-/reload`: new credentials start, removed ones disappear with their
//! series, unchanged ones keep their state and history; a bad config is
//! refused (its file named in the log, a generic answer to the client) and
//! the running one keeps going. Without `--web.enable-lifecycle` the endpoint
//! answers 403; a flood of reload requests is coalesced.

use std::time::Duration;

use credwatch_sim::{ElAccount, ElKey, Fault, Simulator, TwilioAccount, World};

use crate::harness::{Daemon, sample};
use crate::support::{
    FAST, ac_sid, config, cred, el, el_key, eventually, lines_of, tw, tw_token, wait_sample,
    wait_status,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_keeps_credentials_and_refuses_a_bad_config() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-reload"));
    world
        .elevenlabs
        .add_key(el_key("reload-keep"), ElKey::new("keyItKeep", "ws-reload"));
    world.elevenlabs.add_key(
        el_key("reload-remove"),
        ElKey::new("keyItRemove", "ws-reload"),
    );
    world.twilio.add_account(
        TwilioAccount::new(ac_sid("reload-add"), tw_token("reload-add"))
            .with_numbers(&["+15005550013"]),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let keep = el("el-keep", &el_key("reload-keep"), &sim.elevenlabs_url(), "");
    let remove = el(
        "el-remove",
        &el_key("reload-remove"),
        &sim.elevenlabs_url(),
        "",
    );
    let add = tw(
        "tw-add",
        &ac_sid("reload-add"),
        &tw_token("reload-add"),
        &sim.twilio_url(),
        "",
    );
    // A fourth credential whose settings change: it keeps its history too.
    let change = |extra: &str| {
        el(
            "el-change",
            &el_key("reload-never-issued"),
            &sim.elevenlabs_url(),
            extra,
        )
    };
    let d = Daemon::start(&config(FAST, &[keep.clone(), remove, change("")], &[])).await;
    wait_status(&d, "el-keep", "healthy").await;
    wait_status(&d, "el-remove", "healthy").await;
    let change_me = cred("el-change");
    let change_errors_before = wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_check_errors_total",
        &[&change_me, "reason=\"invalid_credentials\""],
        |v| v >= 2.0,
    )
    .await;

    // el-keep gets a history that only its own slot knows: a healthy verdict
    // it can no longer confirm, and a count of 5xx answers.
    sim.update(|w| {
        w.elevenlabs.key_mut(&el_key("reload-keep")).unwrap().fault = Some(Fault::ServerError);
    });
    let keep_me = cred("el-keep");
    let errors_before = wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_check_errors_total",
        &[&keep_me, "reason=\"upstream_error\""],
        |v| v >= 1.0,
    )
    .await;
    let m = d.metrics().await;
    let success_before =
        sample(&m, "credwatch_last_success_timestamp_seconds", &[&keep_me]).expect("last success");
    let reloaded_at_before = sample(
        &m,
        "credwatch_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .expect("reload timestamp");
    assert_eq!(
        sample(&m, "credwatch_config_last_reload_successful", &[]),
        Some(1.0)
    );

    // Reload: el-keep unchanged, el-remove gone, tw-add new, el-change slower.
    let changed = change("    interval: 2s\n");
    std::fs::write(
        d.config_path(),
        config(
            FAST,
            &[keep.clone(), changed.clone()],
            std::slice::from_ref(&add),
        ),
    )
    .expect("write config");
    let (code, body) = d.post_reload().await;
    assert_eq!(code, 200, "{body}");

    let m = d.metrics().await;
    let all = lines_of(&m, "el-keep");
    assert!(
        sample(
            &m,
            "credwatch_check_errors_total",
            &[&keep_me, "reason=\"upstream_error\""]
        )
        .is_some_and(|v| v >= errors_before),
        "the unchanged credential's counter was reset:\n{all}"
    );
    assert_eq!(
        sample(&m, "credwatch_last_success_timestamp_seconds", &[&keep_me]),
        Some(success_before),
        "{all}"
    );
    let c = d.credential("el-keep").await;
    assert_eq!(c["status"], "healthy", "its verdict survived: {c}");
    assert_eq!(c["valid"], true, "{c}");
    assert_eq!(c["check_error"], "upstream_error", "{c}");
    assert!(
        sample(
            &m,
            "credwatch_config_last_reload_success_timestamp_seconds",
            &[]
        )
        .is_some_and(|t| t >= reloaded_at_before)
    );
    assert_eq!(
        sample(&m, "credwatch_config_last_reload_successful", &[]),
        Some(1.0)
    );
    // The removed credential is gone from everything.
    eventually(Duration::from_secs(5), "el-remove gone", || async {
        let m = d.metrics().await;
        let (_, h) = d.get("/health?verbose=1").await;
        if m.contains("credential=\"el-remove\"") || h.contains("el-remove") {
            Err(lines_of(&m, "el-remove"))
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(d.get("/health?credential=el-remove").await.0, 404);
    // The new one starts and gets its verdict.
    wait_status(&d, "tw-add", "healthy").await;
    crate::support::assert_verdict(&d, "tw-add", "healthy", None, Some(true)).await;

    // A bad config: refused, the file named, the running config kept.
    // A changed credential keeps its history with the new settings.
    assert!(
        sample(
            &m,
            "credwatch_check_errors_total",
            &[&change_me, "reason=\"invalid_credentials\""]
        )
        .is_some_and(|v| v >= change_errors_before),
        "the changed credential's counter was reset:\n{}",
        lines_of(&m, "el-change")
    );
    wait_sample(
        &d,
        Duration::from_secs(5),
        "credwatch_check_interval_seconds",
        &[&change_me],
        |v| v == 2.0,
    )
    .await;

    let bad = config(FAST, &[keep, changed], &[add]) + "unknown_top_level_key: true\n";
    std::fs::write(d.config_path(), &bad).expect("write config");
    let tw_last_check = wait_sample(
        &d,
        Duration::from_secs(10),
        "credwatch_last_check_timestamp_seconds",
        &[&cred("tw-add")],
        |_| true,
    )
    .await;
    let (code, body) = d.post_reload().await;
    assert_eq!(code, 500, "{body}");
    // The client gets a short generic answer; the detail is in the log.
    assert_eq!(body, credwatch::server::RELOAD_FAILED);
    let file = d.config_path().display().to_string();
    let logs = crate::harness::logs();
    let at = logs
        .find(&format!(
            "configuration reload failed, keeping the running one: {file}"
        ))
        .unwrap_or_else(|| panic!("the failure is logged with the file named:\n{logs}"));
    assert!(
        logs[at..].contains("unknown_top_level_key"),
        "the log has the detail"
    );
    let m = d.metrics().await;
    assert_eq!(
        sample(&m, "credwatch_config_last_reload_successful", &[]),
        Some(0.0)
    );
    // Still running the previous config: tw-add keeps being checked.
    wait_sample(
        &d,
        Duration::from_secs(10),
        "credwatch_last_check_timestamp_seconds",
        &[&cred("tw-add")],
        |t| t > tw_last_check,
    )
    .await;
    assert_eq!(d.credential("tw-add").await["status"], "healthy");
    assert_eq!(d.credential("el-keep").await["status"], "healthy");

    // Only POST reloads; unknown paths are 404.
    let (code, _) = d.get("/-/reload").await;
    assert_eq!(code, 405);
    let (code, _) = d.get("/no/such/path").await;
    assert_eq!(code, 404);
    d.stop().await;
}
