//! The status page, `/`, as a person sees it: the demo's page rendered by a
//! real headless Chromium (Debian's package; `scripts/install-chromium.sh`,
//! run by `scripts/test`). The test fails, never skips, without it.
//!
//! Set `CREDWATCH_UPDATE_SCREENSHOT=1` to write the screenshot to
//! `docs/status-page.png` (the one the README shows).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use credwatch_sim::{ElAccount, ElKey, Simulator, Subscription, World};

use crate::harness::{Daemon, tempdir::TempDir};
use crate::support::{FAST_DETAILS, config, cred, el, el_key, wait_sample};

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CREDWATCH_CHROMIUM") {
        return PathBuf::from(p);
    }
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|tool| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "chromium not found on PATH: the status-page test renders `/` in a real browser \
                 (run `bash scripts/install-chromium.sh`, as root or with sudo; scripts/test does it, \
                 or set CREDWATCH_CHROMIUM)"
            )
        })
}

/// Runs headless Chromium on `url` with a fresh profile and `extra`
/// arguments; its stdout. Killed after 60 s.
async fn browse(url: String, extra: Vec<String>) -> String {
    let bin = chromium();
    tokio::task::spawn_blocking(move || {
        let profile = TempDir::new();
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(&extra)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match child.try_wait().expect("wait on chromium") {
                Some(_) => break,
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    panic!("chromium did not finish within 60s on {url}");
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let out = child.wait_with_output().expect("chromium output");
        assert!(out.status.success(), "chromium failed on {url}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .expect("join")
}

/// The rendered DOM's text as a person reads it: no style sheet, no tags,
/// entities decoded, whitespace collapsed.
fn visible_text(dom: &str) -> String {
    let mut rest = dom;
    let mut text = String::new();
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        text.push(' ');
        let tail = &rest[at..];
        let end = if tail.starts_with("<style") {
            tail.find("</style>").map(|e| e + "</style>".len())
        } else {
            tail.find('>').map(|e| e + 1)
        };
        rest = &tail[end.unwrap_or(tail.len())..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of the card of `name`, from its heading to the next card.
fn card<'a>(text: &'a str, name: &str, next: &[&str]) -> &'a str {
    let start = text
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("no card for {name}: {text}"));
    let rest = &text[start..];
    let end = next
        .iter()
        .filter_map(|n| rest[1..].find(&format!("{n} ")).map(|e| e + 1))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_in_a_real_browser_shows_what_is_broken_first_with_its_fix() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let yaml = credwatch_sim::demo::config_yaml(&sim);
    let d = Daemon::start(&yaml).await;
    d.wait_ready(Duration::from_secs(15)).await;

    // The headers a strict page needs: nothing may load, no script runs.
    let r = d.client.get(format!("{}/", d.url)).send().await.expect("/");
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    let html = r.text().await.expect("body");
    assert!(!html.contains("<script"), "no script on the page");
    assert!(
        !html.contains("src=") && !html.contains("<link"),
        "nothing loaded from anywhere"
    );

    let dom = browse(format!("{}/", d.url), vec!["--dump-dom".into()]).await;
    let text = visible_text(&dom);
    let names: Vec<&str> = credwatch_sim::demo::cast().map(|c| c.name).collect();

    // Broken first, then warnings, then healthy. The counts follow the
    // cast: unhealthy, or healthy but firing a critical alert (imported
    // numbers not ready), is broken; healthy firing only warnings is a
    // warning.
    let cast: Vec<_> = credwatch_sim::demo::cast().collect();
    let count =
        |f: &dyn Fn(&credwatch_sim::demo::CastMember) -> bool| cast.iter().filter(|m| f(m)).count();
    let broken_rule = |m: &credwatch_sim::demo::CastMember| {
        m.status == "unhealthy" || m.alerts.iter().any(|a| a.severity == "critical")
    };
    let broken = format!("Broken {}", count(&|m| broken_rule(m)));
    let warnings = format!(
        "Warnings {}",
        count(&|m| !broken_rule(m) && !m.alerts.is_empty())
    );
    let healthy = format!(
        "Healthy {}",
        count(&|m| !broken_rule(m) && m.alerts.is_empty())
    );
    let (broken, warnings, healthy) = (broken.as_str(), warnings.as_str(), healthy.as_str());
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("`{s}` not on the page: {text}"))
    };
    assert!(at(broken) < at(warnings), "{text}");
    assert!(at(warnings) < at(healthy), "{text}");
    assert!(at("el-revoked elevenlabs") < at("el-quota-high elevenlabs"));
    assert!(at("el-quota-high elevenlabs") < at("twilio-prod twilio"));
    assert!(at("el-agent-prod elevenlabs") < at(warnings));

    // The call paths come first: the one question that matters, will the
    // call go through? Not ready first, each link that is not proven with
    // check's words.
    assert!(at("Call paths 1 of 7 ready") < at(broken), "{text}");
    let paths = &text[at("Call paths 1 of 7 ready")..at(broken)];
    for needle in [
        "country-blocked call path broken",
        "✗ destination GB calls to United Kingdom (GB) are blocked by the account's geo permissions",
        "evidence GET /v1/DialingPermissions/Countries/GB → HTTP 200",
        "fix Enable the country in Twilio Console → Voice → Settings → Geo permissions",
        "Runbook: CredwatchCallPathBroken",
        "✗ carrier_credential Twilio credential `twilio-rotated-token` is unhealthy (invalid_credentials)",
        "✓ convai_write inferred",
    ] {
        assert!(paths.contains(needle), "`{needle}` not in: {paths}");
    }
    assert!(
        paths.find("sales-outbound call path").unwrap_or(0)
            > paths
                .find("twilio-token-rejected call path")
                .unwrap_or(usize::MAX),
        "the ready path comes last: {paths}"
    );
    // The credentials' cards, after the call paths.
    let text = &text[at(broken)..];

    // The revoked key: its reason, the evidence line and the fix, in check's words.
    let revoked = card(text, "el-revoked", &names);
    for needle in [
        "invalid_credentials",
        "ElevenLabs does not accept this API key (401 invalid_api_key).",
        "evidence GET /v1/user/subscription → HTTP 401, code invalid_api_key, request id ",
        "fix The key was deleted, regenerated or mistyped. Create a key in ElevenLabs → Settings → API Keys",
        "runbook: CredwatchCredentialInvalid",
        "Last definitive answer",
    ] {
        assert!(revoked.contains(needle), "`{needle}` not in: {revoked}");
    }

    // The quota bar: 93% of the ceiling (475,000 of 510,000), as the alert says.
    let high = card(text, "el-quota-high", &names);
    for needle in [
        "healthy, 1 warning",
        "93% used",
        "475000 of 510000 characters (the ceiling: limit 500000 + usage-based billing); resets ",
        "93% of the quota is used (475000 of 510000 characters; the alert threshold is 90%).",
        "runbook: CredwatchQuotaHigh",
    ] {
        assert!(high.contains(needle), "`{needle}` not in: {high}");
    }
    assert!(dom.contains("aria-valuenow=\"93\""), "the bar is at 93%");
    assert!(
        dom.contains("style=\"width:93%\""),
        "the bar is drawn at 93%"
    );

    // Balance with its currency, the Trial account, imported numbers.
    let trial = card(text, "twilio-trial-low-balance", &names);
    for needle in [
        "healthy, 2 warnings",
        "Balance 0.85 USD below the alert threshold of 5 USD",
        "This is a Twilio Trial account",
        "Account active (Trial)",
    ] {
        assert!(trial.contains(needle), "`{needle}` not in: {trial}");
    }
    let prod = card(text, "el-agent-prod", &names);
    for needle in [
        "imported numbers not ready",
        "Imported numbers 2 of 3 ready",
        "✗ +14155550199 Legacy line agent_not_ulaw not_on_twilio_account",
        "runbook: CredwatchPhoneNumberNotReady",
        "convai_write granted (required) basis:",
    ] {
        assert!(prod.contains(needle), "`{needle}` not in: {prod}");
    }
    assert!(
        card(text, "twilio-prod", &names).contains("Balance 42.17 USD"),
        "{text}"
    );

    // One credential in full.
    let detail = visible_text(
        &browse(
            format!("{}/?credential=el-revoked", d.url),
            vec!["--dump-dom".into()],
        )
        .await,
    );
    for needle in [
        "← every credential",
        "ElevenLabs does not accept this API key",
        "Checks",
        "subscription",
        "answered: invalid_credentials",
    ] {
        assert!(detail.contains(needle), "`{needle}` not in: {detail}");
    }

    // The picture: a real PNG of the page as drawn.
    let shots = TempDir::new();
    let png = shots.path().join("status-page.png");
    browse(
        format!("{}/", d.url),
        vec![
            "--window-size=1000,6600".into(),
            format!("--screenshot={}", png.display()),
        ],
    )
    .await;
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 50_000,
        "{} bytes: an empty page?",
        bytes.len()
    );
    if std::env::var_os("CREDWATCH_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png");
        std::fs::copy(&png, &docs).expect("write docs/status-page.png");
    }

    assert!(sim.forbidden_requests().is_empty());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_upstream_strings_are_text_on_the_page() {
    let evil_tier = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'";
    let key = el_key("page-hostile");
    let mut w = World::default();
    w.elevenlabs.add_account(
        ElAccount::new("ws-page-hostile").with_subscription(Subscription {
            tier: evil_tier.into(),
            ..Subscription::default()
        }),
    );
    w.elevenlabs.add_key(
        key.clone(),
        ElKey::new("keyItPageHostile", "ws-page-hostile"),
    );
    let sim = Simulator::start(w).await.expect("simulator");
    // Names are label-safe by validation; upstream strings and the query are not.
    let yaml = config(
        FAST_DETAILS,
        &[el("el-hostile", &key, &sim.elevenlabs_url(), "")],
        &[],
    );
    let d = Daemon::start(&yaml).await;
    d.wait_ready(Duration::from_secs(15)).await;
    for (path, expected) in [
        ("/", 200),
        ("/?credential=el-hostile", 200),
        ("/?credential=%3Cscript%3Ealert(3)%3C/script%3E%22%27", 404),
    ] {
        let (status, body) = d.get(path).await;
        assert_eq!(status, expected, "{path}");
        assert!(!body.contains("<script"), "{path}: {body}");
        assert!(!body.contains("<img"), "{path}: {body}");
    }
    let (_, page) = d.get("/").await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x"),
        "the tier shows as text: {page}"
    );
    let (_, missing) = d
        .get("/?credential=%3Cscript%3Ealert(3)%3C/script%3E%22%27")
        .await;
    assert!(
        missing.contains("&lt;script&gt;alert(3)&lt;/script&gt;&quot;&#39;"),
        "{missing}"
    );
    d.stop().await;
}

/// A probe that stops being conclusive leaves the last definitive verdict
/// standing (healthy), and the page says so where people look: a warning
/// with check's words, the fix (`credwatch calibrate`) and the runbook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_turned_inconclusive_is_a_warning_under_the_standing_verdict() {
    let key = el_key("page-probe");
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-page-probe"));
    w.elevenlabs
        .add_key(key.clone(), ElKey::new("keyItPageProbe", "ws-page-probe"));
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config(
        FAST_DETAILS,
        &[el("el-probe", &key, &sim.elevenlabs_url(), "")],
        &[],
    );
    let d = Daemon::start(&yaml).await;
    d.wait_for("el-probe", Duration::from_secs(15), |c| {
        c["status"] == "healthy"
    })
    .await;
    let text = visible_text(&d.get("/").await.1);
    assert!(text.contains("Healthy 1"), "{text}");

    // ElevenLabs starts refusing the probe's agent id: 400 `invalid_uid`.
    sim.update(|w| {
        w.elevenlabs.validate_agent_ids = true;
        w.elevenlabs.signed_url_mode = credwatch_sim::SignedUrlMode::RejectEveryIdInvalidUid;
    });
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_permission_probe_inconclusive",
        &[&cred("el-probe"), "permission=\"convai_write\""],
        |v| v == 1.0,
    )
    .await;
    let c = d.credential("el-probe").await;
    assert_eq!(c["status"], "healthy", "the verdict stands: {c}");
    let text = visible_text(&d.get("/").await.1);
    assert!(text.contains("Warnings 1"), "{text}");
    let card = card(&text, "el-probe", &[]);
    for needle in [
        "healthy, 1 warning",
        "! No verdict:",
        "evidence GET /v1/convai/conversation/get-signed-url?agent_id=",
        "HTTP 400, code invalid_uid",
        "credwatch calibrate",
        "runbook: CredwatchPermissionProbeInconclusive",
        "convai_write granted (required)",
    ] {
        assert!(card.contains(needle), "`{needle}` not in: {card}");
    }
    d.stop().await;
}

/// After a reload changes a credential, the page says only what its new
/// checks say: a permission no longer required (no longer probed) leaves no
/// finding behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_leaves_no_finding_of_a_check_no_longer_run() {
    let key = el_key("page-reload");
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-page-reload"));
    w.elevenlabs.add_key(
        key.clone(),
        ElKey::new("keyItPageReload", "ws-page-reload")
            .with_permissions(&["user_read", "convai_read"]),
    );
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = |extra: &str| {
        config(
            FAST_DETAILS,
            &[el("el-reload", &key, &sim.elevenlabs_url(), extra)],
            &[],
        )
    };
    let d = Daemon::start(&yaml("")).await;
    d.wait_for("el-reload", Duration::from_secs(15), |c| {
        c["reason"] == "missing_permission"
    })
    .await;
    let text = visible_text(&d.get("/").await.1);
    assert!(text.contains("This key lacks `convai_write`."), "{text}");

    std::fs::write(
        d.config_path(),
        yaml("    required_permissions: [convai_read]\n"),
    )
    .expect("write config");
    assert_eq!(d.post_reload().await.0, 200);
    d.wait_for("el-reload", Duration::from_secs(15), |c| {
        c["status"] == "healthy"
    })
    .await;
    // The healthy verdict and the page's words come from the same cycle.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = visible_text(&d.get("/").await.1);
        if text.contains("Healthy 1") {
            assert!(!text.contains("lacks `convai_write`"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.stop().await;
}
