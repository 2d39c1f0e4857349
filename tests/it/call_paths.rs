//! Call paths through the real daemon and `credwatch check`: the demo's
//! paths end in the documented verdicts, the gate answers for several paths
//! at once, a credential's verdict breaks a path at once, and a transient
//! fault keeps a proven path ready for one `detail_interval` only (paused
//! time). Config mistakes exit 2 naming the key path, with nothing sent.

use std::time::Duration;

use credwatch_sim::demo as d;
use credwatch_sim::{Fault, Simulator, World};
use tokio::time::Instant;

use crate::check::{credwatch, parse};
use crate::harness::{Daemon, sample, tempdir::TempDir};
use crate::support::{Doc, Item, el, tw};
use credwatch_sim::demo::CALL_PATHS;
use serde_json::json;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The problems of a `/health` call-path entry.
fn problems(entry: &serde_json::Value) -> Vec<String> {
    entry["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_call_paths_end_in_the_documented_verdicts() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let yaml = credwatch_sim::demo::config_yaml(&sim);
    let dm = Daemon::start(&yaml).await;
    dm.wait_ready(Duration::from_secs(20)).await;

    let m = dm.metrics().await;
    for path in CALL_PATHS {
        let (name, status, want) = (path.name, path.status, path.problems);
        let (code, body) = dm.get(&format!("/health?call_path={name}")).await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let entry = &v["call_paths"][0];
        assert_eq!(entry["call_path"], name, "{body}");
        assert_eq!(entry["status"], status, "{name}: {body}");
        assert_eq!(problems(entry), want.to_vec(), "{name}: {body}");
        let ready = status == "ready";
        assert_eq!(code, if ready { 200 } else { 503 }, "{name}: {body}");
        assert_eq!(
            sample(&m, "credwatch_call_path_ready", &[&format!("\"{name}\"")]),
            Some(if ready { 1.0 } else { 0.0 }),
            "{name}"
        );
    }
    assert_eq!(
        sample(
            &m,
            "credwatch_call_path_problem_info",
            &[
                "\"country-blocked\"",
                "destination_blocked",
                "destination=\"GB\""
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_call_path_info",
            &[
                "\"sales-outbound\"",
                "elevenlabs=\"el-agent-prod\"",
                "twilio=\"twilio-prod\"",
                "critical=\"true\""
            ]
        ),
        Some(1.0)
    );

    // Several paths in one gate: 200 only when every one is ready, whatever the order.
    assert_eq!(dm.get("/health?call_path=sales-outbound").await.0, 200);
    for q in [
        "call_path=sales-outbound&call_path=agent-deleted",
        "call_path=agent-deleted&call_path=sales-outbound",
    ] {
        assert_eq!(dm.get(&format!("/health?{q}")).await.0, 503, "{q}");
    }
    let (code, body) = dm
        .get("/health?call_path=sales-outbound&call_path=nope")
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no call path named nope"), "{body}");

    // The plain gate lists the paths that are not ready; verbose lists all.
    let (_, brief) = dm.get("/health").await;
    let brief: serde_json::Value = serde_json::from_str(&brief).expect("JSON");
    let listed: Vec<&str> = brief["call_paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["call_path"].as_str())
        .collect();
    assert!(!listed.contains(&"sales-outbound"), "{brief}");
    assert!(listed.contains(&"agent-deleted"), "{brief}");
    let (_, verbose) = dm.health().await;
    assert_eq!(
        verbose["call_paths"].as_array().map(Vec::len),
        Some(CALL_PATHS.len()),
        "{verbose}"
    );
    assert!(sim.forbidden_requests().is_empty());
    dm.stop().await;
}

#[test]
fn the_readme_lists_the_demo_call_paths() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("| call path | verdict |")
        .nth(1)
        .expect("the README has the demo's call-path table");
    let mut rows = Vec::new();
    for line in table.lines().skip(2) {
        let Some(rest) = line.strip_prefix("| `") else {
            break;
        };
        let (name, verdict) = rest.split_once("` | ").expect("two columns");
        let status = verdict.split(':').next().unwrap_or("").trim().to_string();
        // Backticked problems, a `(XX)` after one naming its country.
        let mut problems = Vec::new();
        let parts: Vec<&str> = verdict.split('`').collect();
        for (i, p) in parts.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            let after = parts.get(i + 1).copied().unwrap_or("");
            match after.trim_start().strip_prefix('(') {
                Some(c) if c.len() >= 3 && c.as_bytes()[2] == b')' => {
                    problems.push(format!("{p}:{}", &c[..2]))
                }
                _ => problems.push(p.to_string()),
            }
        }
        rows.push((name.to_string(), status, problems));
    }
    let want = cast_rows();
    assert_eq!(rows, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_demo_explains_every_call_path_and_gates_on_one() {
    let report = parse(&credwatch(args(&["check", "--demo", "--output", "json"]), vec![]).await);
    let got: Vec<(String, String, Vec<String>)> = report
        .call_paths
        .iter()
        .map(|p| {
            let problems = p
                .links
                .iter()
                .filter_map(|l| {
                    let problem = l.problem.clone()?;
                    Some(match &l.country {
                        Some(c) => format!("{problem}:{c}"),
                        None => problem,
                    })
                })
                .collect();
            (p.name.clone(), p.status.clone(), problems)
        })
        .collect();
    let want = cast_rows();
    assert_eq!(got, want);
    for p in &report.call_paths {
        assert_eq!(p.elevenlabs, "el-agent-prod");
        assert!(p.labels.is_empty(), "the demo's paths have no labels");
        assert!(p.twilio.starts_with("twilio-"), "{}", p.twilio);
        assert!(
            p.links
                .iter()
                .all(|l| l.status != "proven" || l.problem.is_none())
        );
        for l in p.links.iter().filter(|l| l.status != "proven") {
            assert!(
                l.fix.as_deref().is_some_and(|f| !f.is_empty()),
                "{}: {l:?}",
                p.name
            );
            assert!(!l.summary.is_empty());
        }
        if p.name == "sales-outbound" {
            assert_eq!(
                (p.critical, p.destinations.as_slice()),
                (true, &["US".to_string()][..])
            );
            assert_eq!(p.agent_id, d::EL_AGENT_ULAW_ID);
            assert_eq!(p.agent_phone_number_id, d::EL_PHONE_SUPPORT_ID);
            let convai = p
                .links
                .iter()
                .find(|l| l.link == "convai_write")
                .expect("convai_write link");
            assert!(
                convai.inferred,
                "an uncalibrated convai_write is inferred: {convai:?}"
            );
        }
    }
    let blocked = report
        .call_paths
        .iter()
        .find(|p| p.name == "country-blocked")
        .expect("country-blocked");
    let gb = blocked
        .links
        .iter()
        .find(|l| l.country.as_deref() == Some("GB"))
        .expect("the GB link");
    let ev = gb.evidence.as_ref().expect("evidence");
    assert_eq!(ev.request, "GET /v1/DialingPermissions/Countries/GB");
    assert_eq!(ev.http_status, Some(200));

    // One path: its readiness is the exit code; the text has the words of the fix.
    let ok = credwatch(
        args(&["check", "--demo", "--call-path", "sales-outbound"]),
        vec![],
    )
    .await;
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(
        ok.stdout.contains("✓ call path sales-outbound: ready"),
        "{ok:?}"
    );
    assert!(
        !ok.stdout.contains("el-revoked"),
        "only the path's credentials: {ok:?}"
    );
    let bad = credwatch(
        args(&["check", "--demo", "--call-path", "country-blocked"]),
        vec![],
    )
    .await;
    assert_eq!(bad.code, 1, "{bad:?}");
    for want in [
        "✗ call path country-blocked: broken",
        "✗ destination GB: calls to United Kingdom (GB) are blocked",
        "evidence: GET /v1/DialingPermissions/Countries/GB → HTTP 200",
        "fix: Enable the country in Twilio Console → Voice → Settings → Geo permissions",
    ] {
        assert!(bad.stdout.contains(want), "{want}\n{bad:?}");
    }
    let rotated = credwatch(
        args(&[
            "check",
            "--demo",
            "--call-path",
            "token-rotated-since-import",
        ]),
        vec![],
    )
    .await;
    assert_eq!(rotated.code, 1, "{rotated:?}");
    assert!(
        rotated
            .stdout
            .contains("fix: Re-import the number in ElevenLabs")
            && rotated
                .stdout
                .contains("current Account SID and Auth Token"),
        "{rotated:?}"
    );
    let nope = credwatch(args(&["check", "--demo", "--call-path", "nope"]), vec![]).await;
    assert_eq!(nope.code, 2, "{nope:?}");
    assert!(
        nope.stderr.contains("no call path named `nope`"),
        "{nope:?}"
    );
}

/// The demo's world with one path over el-agent-prod and twilio-prod,
/// checked every 10s, links looked at every 60s.
async fn one_path(sim: &Simulator) -> Daemon {
    let yaml = Doc::new()
        .defaults(json!({"interval": "10s", "timeout": "2s", "detail_interval": "60s"}))
        .push(
            "call_paths",
            Item::new(json!({
                "name": "p", "elevenlabs": "el", "agent_id": d::EL_AGENT_ULAW_ID,
                "agent_phone_number_id": d::EL_PHONE_SUPPORT_ID, "twilio": "tw",
                "destinations": ["US"], "labels": {"team": "voice", "env": "prod"},
            })),
        )
        .push(
            "elevenlabs",
            el("el", d::EL_AGENT_PROD_KEY, &sim.elevenlabs_url(), ""),
        )
        .push(
            "twilio",
            tw(
                "tw",
                d::TWILIO_PROD_SID,
                d::TWILIO_PROD_TOKEN,
                &sim.twilio_url(),
                "",
            )
            .set("voice_base_url", sim.twilio_url()),
        )
        .render();
    let dm = Daemon::start(&yaml).await;
    until(&dm, 200, Duration::from_secs(60)).await;
    dm
}

/// Polls `/health?call_path=p` once a (virtual) second until it answers
/// `code`; returns the body and how long it took.
async fn until(dm: &Daemon, code: u16, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let (c, body) = dm.get("/health?call_path=p").await;
        if c == code {
            return (body, start.elapsed());
        }
        assert!(
            start.elapsed() <= within,
            "still {c} after {:?}: {body}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn dialing_requests(sim: &Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/DialingPermissions/"))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_transient_fault_keeps_a_ready_path_for_one_detail_interval_then_not() {
    const DETAIL: Duration = Duration::from_secs(60);
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let dm = one_path(&sim).await;

    // Twilio answers 503 to everything from now on.
    let before = dialing_requests(&sim);
    sim.update(|w| w.twilio.fault = Some(Fault::SystemBusy));
    let start = Instant::now();
    while dialing_requests(&sim) == before {
        assert!(
            start.elapsed() <= DETAIL * 2,
            "the path was not looked at again"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let that look finish and be recorded.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, body) = dm.get("/health?call_path=p").await;
    assert_eq!(
        code, 200,
        "one look without an answer keeps the proof: {body}"
    );
    assert_eq!(
        dm.get("/health?credential=tw").await.0,
        200,
        "no verdict from a 503"
    );

    // Unknown for a whole detail_interval: not ready, and it says which links.
    let (body, _) = until(&dm, 503, DETAIL * 3).await;
    assert!(body.contains("destination_unknown:US"), "{body}");
    assert!(body.contains("twilio_number_unknown"), "{body}");
    assert!(!body.contains("agent"), "ElevenLabs still answers: {body}");

    // Twilio answers again: proven again at a later look.
    sim.update(|w| w.twilio.fault = None);
    until(&dm, 200, DETAIL * 6).await;
    assert!(sim.forbidden_requests().is_empty());
    dm.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_rejected_twilio_credential_breaks_the_path_before_its_next_look() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let dm = one_path(&sim).await;
    // Let the credentials settle into their random phase (after the first
    // round a check may wait up to two intervals), as `detection` does.
    tokio::time::sleep(Duration::from_secs(15)).await;
    until(&dm, 200, Duration::ZERO).await;
    let looks = dialing_requests(&sim);
    // The Auth Token is rotated upstream: `tw` is rejected at its next check.
    sim.update(|w| {
        w.twilio
            .rotate_token(d::TWILIO_PROD_SID, "0123456789abcdef0123456789abcdef");
    });
    let (body, took) = until(&dm, 503, Duration::from_secs(12 + 2)).await;
    assert!(
        took <= Duration::from_secs(12),
        "within interval + timeout: {took:?}"
    );
    assert!(body.contains("twilio_credential_unhealthy"), "{body}");
    assert_eq!(dialing_requests(&sim), looks, "no new look was needed");
    dm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mistakes_in_call_paths_exit_2_naming_the_key_path_and_send_nothing() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let dir = TempDir::new();
    let path_item = |name: &str, el: &str, agent: &str, tw: &str| {
        Item::new(json!({
            "name": name, "elevenlabs": el, "agent_id": agent,
            "agent_phone_number_id": "phnum_1", "twilio": tw,
        }))
    };
    let el_url = sim.elevenlabs_url();
    let yaml = Doc::new()
        .extend(
            "call_paths",
            [
                path_item("ok", "el", "agent_1", "tw"),
                path_item("wrong-kind", "tw", "agent_1", "el"),
                path_item("unknown", "el-nope", "agent/../x", "tw")
                    .set("destinations", ["US", "UK", "us"]),
                path_item("ok", "el-no-write", "agent_1", "tw")
                    .set("labels", json!({"call_path": "x"})),
            ],
        )
        .push("elevenlabs", el("el", d::EL_AGENT_PROD_KEY, &el_url, ""))
        .push(
            "elevenlabs",
            el("el-no-write", d::EL_AGENT_PROD_KEY, &el_url, "")
                .set("required_permissions", ["convai_read"]),
        )
        .push(
            "twilio",
            tw(
                "tw",
                d::TWILIO_PROD_SID,
                d::TWILIO_PROD_TOKEN,
                &sim.twilio_url(),
                "",
            ),
        )
        .render();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).expect("write");
    let path = path.to_string_lossy().into_owned();
    for cmd in ["validate", "check"] {
        let run = credwatch(args(&[cmd, "--config.file", &path]), vec![]).await;
        assert_eq!(run.code, 2, "{cmd}: {run:?}");
        for want in [
            "call_paths[1].elevenlabs: `tw` is under `twilio:`, not `elevenlabs:`; name one of the `elevenlabs:` credentials here",
            "call_paths[1].twilio: `el` is under `elevenlabs:`, not `twilio:`; name one of the `twilio:` credentials here",
            "call_paths[2].elevenlabs: `el-nope` is not the name of a configured elevenlabs credential (configured: el, el-no-write)",
            "call_paths[2].agent_id: is not an ElevenLabs id: letters, digits, `_` and `-` only, at most 64",
            "call_paths[2].destinations[1]: `UK` is not an ISO 3166-1 alpha-2 country code (e.g. US, GB, DE)",
            "call_paths[2].destinations[2]: US is listed twice",
            "call_paths[3].name: is already used by call_paths[0]; call path names must be unique",
            "call_paths[3].elevenlabs: `el-no-write` does not check `convai_write`, which placing the call needs; add it to elevenlabs[1].required_permissions",
            "call_paths[3].labels.call_path: `call_path` is a label credwatch or Prometheus already sets; choose another name",
        ] {
            assert!(
                run.stderr.contains(want),
                "{cmd}: missing {want:?}\n{}",
                run.stderr
            );
        }
    }
    assert_eq!(sim.request_count(), 0, "nothing is sent for a bad config");
}

/// The demo's el-agent-prod with `phone_numbers: true`, linked to `twilio`
/// (or to nothing), and the demo's Twilio credentials.
fn numbers_config(sim: &Simulator, twilio: Option<&str>) -> String {
    let mut el_item =
        el("el", d::EL_AGENT_PROD_KEY, &sim.elevenlabs_url(), "").set("phone_numbers", true);
    if let Some(t) = twilio {
        el_item = el_item.set("twilio", t);
    }
    let url = sim.twilio_url();
    Doc::new()
        .defaults(json!({"interval": "10s", "timeout": "2s", "detail_interval": "60s"}))
        .push("elevenlabs", el_item)
        .push(
            "twilio",
            tw(
                "tw-rotated",
                d::TWILIO_ROTATED_SID,
                d::TWILIO_ROTATED_TOKEN,
                &url,
                "",
            ),
        )
        .push(
            "twilio",
            tw(
                "tw-prod",
                d::TWILIO_PROD_SID,
                d::TWILIO_PROD_TOKEN,
                &url,
                "",
            ),
        )
        .render()
}

/// Every `problem` of `credwatch_elevenlabs_phone_number_problem_info` for one number.
fn number_problems(metrics: &str, id: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("credwatch_elevenlabs_phone_number_problem_info{")
                && l.contains(&format!("phone_number_id=\"{id}\""))
        })
        .filter_map(|l| {
            l.split("problem=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_string)
        })
        .collect()
}

/// The metrics once the cross-check (informational work, which runs after
/// the first decisive cycle, so after `/readyz`) has looked at the demo's
/// imported numbers.
async fn cross_checked(dm: &Daemon) -> String {
    dm.wait_ready(Duration::from_secs(20)).await;
    for id in [
        d::EL_PHONE_SUPPORT_ID,
        d::EL_PHONE_SPARE_ID,
        d::EL_PHONE_LEGACY_ID,
    ] {
        crate::support::wait_sample(
            dm,
            Duration::from_secs(20),
            "credwatch_elevenlabs_phone_number_ready",
            &[id],
            |_| true,
        )
        .await;
    }
    dm.metrics().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_number_is_ready_only_with_a_proven_twilio_credential_and_ownership() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");

    // Linked to a Twilio credential that is rejected: no number is ready,
    // the one on the account included.
    let dm = Daemon::start(&numbers_config(&sim, Some("tw-rotated"))).await;
    let m = cross_checked(&dm).await;
    assert_eq!(
        sample(
            &m,
            "credwatch_elevenlabs_phone_number_ready",
            &[d::EL_PHONE_SUPPORT_ID]
        ),
        Some(0.0),
        "{m}"
    );
    let support = number_problems(&m, d::EL_PHONE_SUPPORT_ID);
    assert!(
        support.contains(&"twilio_credential_unhealthy".to_string()),
        "{support:?}"
    );
    dm.stop().await;

    // The same number through the Twilio credential that owns it: ready.
    let dm = Daemon::start(&numbers_config(&sim, Some("tw-prod"))).await;
    let m = cross_checked(&dm).await;
    assert_eq!(
        sample(
            &m,
            "credwatch_elevenlabs_phone_number_ready",
            &[d::EL_PHONE_SUPPORT_ID]
        ),
        Some(1.0),
        "{m}"
    );
    assert!(number_problems(&m, d::EL_PHONE_SUPPORT_ID).is_empty());
    dm.stop().await;

    // No `twilio:` link: nothing proves ownership, so nothing is ready.
    let dm = Daemon::start(&numbers_config(&sim, None)).await;
    let m = cross_checked(&dm).await;
    for id in [
        d::EL_PHONE_SUPPORT_ID,
        d::EL_PHONE_SPARE_ID,
        d::EL_PHONE_LEGACY_ID,
    ] {
        assert_eq!(
            sample(&m, "credwatch_elevenlabs_phone_number_ready", &[id]),
            Some(0.0),
            "{id}: {m}"
        );
        assert!(
            number_problems(&m, id).contains(&"ownership_unchecked".to_string()),
            "{id}: {:?}",
            number_problems(&m, id)
        );
    }
    dm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_paths_labels_route_its_alerts_and_show_where_people_look() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let dm = one_path(&sim).await;
    let m = dm.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_call_path_info",
            &["call_path=\"p\"", "team=\"voice\"", "env=\"prod\""]
        ),
        Some(1.0),
        "{m}"
    );
    let (_, page) = dm.get("/").await;
    assert!(
        page.contains("<span class=\"tag\">team=voice</span>"),
        "{page}"
    );
    dm.stop().await;
}

/// The demo's call paths as the cast says they must show: (name, status,
/// problems, `problem:COUNTRY` for a destination's).
fn cast_rows() -> Vec<(String, String, Vec<String>)> {
    CALL_PATHS
        .iter()
        .map(|p| {
            (
                p.name.to_string(),
                p.status.to_string(),
                p.problems.iter().map(|x| x.to_string()).collect(),
            )
        })
        .collect()
}
