//! `credwatch calibrate`: the real binary, two keys, one permission probe, and
//! whether the probe tells them apart — against the simulator's default
//! check order (permission first) and the one where it cannot (lookup first).

use credwatch_sim::{ElAccount, ElKey, SignedUrlMode, Simulator, World};
use serde::Deserialize;

use crate::check::{Run, assert_no_secret, credwatch};
use crate::harness::tempdir::TempDir;
use crate::support::{Doc, el, el_key};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Calibration {
    permission: String,
    request: String,
    discriminates: bool,
    results: Vec<KeyResult>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyResult {
    key: String,
    verdict: String,
    evidence: Evidence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Evidence {
    request: String,
    http_status: Option<u16>,
    upstream_code: Option<String>,
    permission: Option<String>,
    request_id: Option<String>,
    detail: String,
}

struct Setup {
    sim: Simulator,
    dir: TempDir,
    with: String,
    without: String,
    with_var: String,
    without_var: String,
}

async fn setup(mode: SignedUrlMode) -> Setup {
    let mut w = World::default();
    w.elevenlabs.signed_url_mode = mode;
    w.elevenlabs.add_account(ElAccount::new("ws-cal"));
    let with = el_key("cal-with");
    let without = el_key("cal-without");
    let monitored = el_key("cal-monitored");
    w.elevenlabs
        .add_key(with.clone(), ElKey::new("keyCalWith", "ws-cal"));
    w.elevenlabs.add_key(
        without.clone(),
        ElKey::new("keyCalWithout", "ws-cal").with_permissions(&["user_read", "convai_read"]),
    );
    w.elevenlabs
        .add_key(monitored.clone(), ElKey::new("keyCalMonitored", "ws-cal"));
    let sim = Simulator::start(w).await.expect("simulator");
    let dir = TempDir::new();
    std::fs::write(
        dir.path().join("config.yaml"),
        Doc::new()
            .push(
                "elevenlabs",
                el("el", &monitored, &sim.elevenlabs_url(), ""),
            )
            .render(),
    )
    .expect("write config");
    let tag = fastrand::u32(..);
    Setup {
        sim,
        dir,
        with,
        without,
        with_var: format!("CREDWATCH_IT_CAL_WITH_{tag:x}"),
        without_var: format!("CREDWATCH_IT_CAL_WITHOUT_{tag:x}"),
    }
}

impl Setup {
    /// `credwatch calibrate --permission convai_write …` with both keys set (plus `extra`).
    async fn run(&self, extra: &[&str], env: Vec<(String, String)>) -> Run {
        let mut args: Vec<String> = [
            "calibrate",
            "--config",
            &self.dir.path().join("config.yaml").to_string_lossy(),
            "--permission",
            "convai_write",
            "--with-key-env",
            &self.with_var,
            "--without-key-env",
            &self.without_var,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = credwatch(args, env).await;
        assert_no_secret(&run, &[self.with.clone(), self.without.clone()]);
        assert!(
            self.sim.forbidden_requests().is_empty(),
            "{:?}",
            self.sim.forbidden_requests()
        );
        run
    }

    fn keys(&self) -> Vec<(String, String)> {
        vec![
            (self.with_var.clone(), self.with.clone()),
            (self.without_var.clone(), self.without.clone()),
        ]
    }
}

fn parse(run: &Run) -> Calibration {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("calibrate --output json: {e}\n{run:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_convai_write_probe_discriminates_when_permission_is_checked_first() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    let text = s.run(&[], s.keys()).await;
    assert_eq!(text.code, 0, "{text:?}");
    for line in [
        "probe for `convai_write`: GET /v1/convai/conversation/get-signed-url?agent_id=agent_",
        "key with the permission: HTTP 404 `agent_not_found`",
        "key without the permission: HTTP 401 `missing_permissions`",
        "The probe discriminates",
    ] {
        assert!(text.stdout.contains(line), "`{line}`\n{text:?}");
    }
    assert!(text.stdout.contains("→ granted\n"), "{text:?}");
    assert!(text.stdout.contains("→ not_granted\n"), "{text:?}");
    assert!(text.stdout.contains("(request id "), "{text:?}");

    let json = s.run(&["--output", "json"], s.keys()).await;
    assert_eq!(json.code, 0, "{json:?}");
    let c = parse(&json);
    assert_eq!(c.permission, "convai_write");
    assert!(
        c.request
            .starts_with("GET /v1/convai/conversation/get-signed-url?")
    );
    assert!(c.discriminates);
    let got: Vec<(&str, &str, Option<u16>, Option<&str>)> = c
        .results
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.verdict.as_str(),
                r.evidence.http_status,
                r.evidence.upstream_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("with", "granted", Some(404), Some("agent_not_found")),
            (
                "without",
                "not_granted",
                Some(401),
                Some("missing_permissions")
            ),
        ]
    );
    let without = &c.results[1].evidence;
    assert_eq!(without.permission.as_deref(), Some("convai_write"));
    for r in &c.results {
        assert!(r.evidence.request_id.is_some(), "{r:?}");
        assert!(r.evidence.request.starts_with("GET /"), "{r:?}");
        assert!(!r.evidence.detail.is_empty(), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_does_not_discriminate_when_the_lookup_comes_first() {
    let s = setup(SignedUrlMode::LookupFirst).await;
    let text = s.run(&[], s.keys()).await;
    assert_eq!(text.code, 1, "{text:?}");
    for line in [
        "key with the permission: HTTP 404 `agent_not_found`",
        "key without the permission: HTTP 404 `agent_not_found`",
        "does NOT discriminate",
        "permission_probes:",
    ] {
        assert!(text.stdout.contains(line), "`{line}`\n{text:?}");
    }
    let json = s.run(&["--output", "json"], s.keys()).await;
    assert_eq!(json.code, 1, "{json:?}");
    let c = parse(&json);
    assert!(!c.discriminates);
    for r in &c.results {
        assert_eq!(
            (r.evidence.http_status, r.evidence.upstream_code.as_deref()),
            (Some(404), Some("agent_not_found")),
            "{r:?}"
        );
        assert_eq!(r.verdict, "granted", "what each key got is shown: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_url_flag_overrides_the_config() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    // The config's base_url points nowhere; --base-url at the simulator.
    std::fs::write(
        s.dir.path().join("config.yaml"),
        Doc::new()
            .push(
                "elevenlabs",
                el("el", &el_key("cal-monitored"), "http://127.0.0.1:9", ""),
            )
            .render(),
    )
    .expect("write config");
    let url = s.sim.elevenlabs_url();
    let run = s.run(&["--base-url", &url], s.keys()).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(s.sim.request_count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    // A missing variable.
    let only_with = vec![(s.with_var.clone(), s.with.clone())];
    let run = s.run(&[], only_with).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains(&format!("`{}`", s.without_var)),
        "names the variable\n{run:?}"
    );
    // An empty one.
    let run = s
        .run(
            &[],
            vec![
                (s.with_var.clone(), "  ".into()),
                (s.without_var.clone(), s.without.clone()),
            ],
        )
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&format!("`{}`", s.with_var)), "{run:?}");
    // A permission without a probe.
    let mut args: Vec<String> = vec![
        "calibrate".into(),
        "--config".into(),
        s.dir
            .path()
            .join("config.yaml")
            .to_string_lossy()
            .into_owned(),
        "--permission".into(),
        "voices_write".into(),
        "--with-key-env".into(),
        s.with_var.clone(),
        "--without-key-env".into(),
        s.without_var.clone(),
    ];
    let run = credwatch(args.clone(), s.keys()).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("no probe for `voices_write`") && run.stderr.contains("convai_write"),
        "{run:?}"
    );
    // A missing flag.
    args.truncate(5);
    let run = credwatch(args, s.keys()).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(s.sim.request_count(), 0, "nothing is sent on a usage error");
}

/// `--base-url` passes the config's `base_url` rules: a key would otherwise
/// go in clear to another host, or with a password in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_base_url_flag_is_validated_like_the_config() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    for (url, why) in [
        (
            "http://calibrate.invalid",
            "--base-url plain http to a non-loopback host would send the secret unencrypted",
        ),
        (
            "http://someone:hunter2@127.0.0.1:9",
            "--base-url must not contain credentials",
        ),
        ("ftp://127.0.0.1", "--base-url must be an http or https URL"),
        ("https://127.0.0.1/?x=1", "--base-url must not have a query"),
        // Spellings a parser would repair silently (issue #21).
        (
            "http:127.0.0.1:9",
            "--base-url the scheme must be followed by `//`",
        ),
        ("http://x\\@127.0.0.1:9", "--base-url contains a backslash"),
    ] {
        let run = s.run(&["--base-url", url], s.keys()).await;
        assert_eq!(run.code, 2, "{url}\n{run:?}");
        assert!(run.stderr.contains(why), "{url}\n{run:?}");
        assert!(!run.stderr.contains("hunter2"), "{run:?}");
    }
    assert_eq!(s.sim.request_count(), 0, "nothing is sent");
    // Loopback http is fine (the simulator).
    let url = s.sim.elevenlabs_url();
    let run = s.run(&["--base-url", &url], s.keys()).await;
    assert_eq!(run.code, 0, "{run:?}");
}

// ---------------------------------------------------------------------------
// The basis of a permission verdict, and the calibration file.
// ---------------------------------------------------------------------------

use std::time::Duration;

use crate::check::Report;
use crate::harness::{Daemon, sample};

const BASIS: &str = "credwatch_permission_basis_info";

impl Setup {
    /// The config with `calibration_file: calibration.json` and fast timing.
    fn with_calibration_file(&self) -> String {
        let yaml = Doc::new()
            .defaults(serde_json::json!({"interval": "1s", "timeout": "500ms"}))
            .set("calibration_file", "calibration.json")
            .push(
                "elevenlabs",
                el(
                    "el",
                    &el_key("cal-monitored"),
                    &self.sim.elevenlabs_url(),
                    "",
                ),
            )
            .render();
        std::fs::write(self.dir.path().join("config.yaml"), &yaml).expect("write config");
        yaml
    }

    /// `credwatch check --output json` on the setup's config.
    async fn check(&self) -> Report {
        let run = credwatch(
            vec![
                "check".into(),
                "--config".into(),
                self.dir
                    .path()
                    .join("config.yaml")
                    .to_string_lossy()
                    .into_owned(),
                "--output".into(),
                "json".into(),
            ],
            vec![],
        )
        .await;
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("check json: {e}\n{run:?}"))
    }
}

/// What the daemon says of `convai_write` for credential `el`: the basis
/// series' label, and the verbose `/health` entry's permission.
async fn daemon_basis(d: &Daemon) -> (Option<String>, serde_json::Value) {
    let entry = d
        .wait_for("el", Duration::from_secs(20), |c| {
            c["last_check"].is_string()
        })
        .await;
    let m = d.metrics().await;
    let basis = ["direct", "calibrated", "inferred"]
        .into_iter()
        .find(|b| {
            sample(
                &m,
                BASIS,
                &[
                    "credential=\"el\"",
                    "permission=\"convai_write\"",
                    &format!("basis=\"{b}\""),
                ],
            ) == Some(1.0)
        })
        .map(str::to_string);
    let permission = entry["permissions"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| p["permission"] == "convai_write")
                .cloned()
        })
        .unwrap_or(serde_json::Value::Null);
    (basis, permission)
}

/// No calibration: a 404 `agent_not_found` still means granted (the default
/// stays usable), and says everywhere that it is inferred.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncalibrated_grant_is_labelled_inferred_everywhere() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    let yaml = std::fs::read_to_string(s.dir.path().join("config.yaml")).expect("config");
    let yaml = Doc::parse(&yaml)
        .defaults(serde_json::json!({"interval": "1s", "timeout": "500ms"}))
        .render();
    let d = Daemon::start(&yaml).await;
    let (basis, permission) = daemon_basis(&d).await;
    assert_eq!(basis.as_deref(), Some("inferred"), "{}", d.metrics().await);
    assert_eq!(
        permission,
        serde_json::json!({"permission": "convai_write", "granted": true, "basis": "inferred"})
    );
    assert_eq!(d.credential("el").await["status"], "healthy");
    d.stop().await;

    let report = s.check().await;
    let el = &report.credentials[0];
    assert_eq!(el.permissions.get("convai_write"), Some(&true));
    assert_eq!(
        el.permission_basis.get("convai_write").map(String::as_str),
        Some("inferred")
    );
}

/// `calibrate` records a discriminating probe in `calibration_file`; `serve`
/// and `check` read it and label the verdict `calibrated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_calibration_makes_the_verdict_calibrated() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    let yaml = s.with_calibration_file();
    let run = s.run(&[], s.keys()).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Recorded in "), "{run:?}");
    let file = s.dir.path().join("calibration.json");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("calibration file written"))
            .expect("JSON");
    let entry = &recorded["calibrations"][0];
    assert_eq!(recorded["version"], 1);
    assert_eq!(entry["permission"], "convai_write");
    assert_eq!(entry["discriminates"], true);
    assert_eq!(
        entry["base_url"],
        s.sim.elevenlabs_url().trim_end_matches('/')
    );
    assert!(
        entry["calibrated_at"]
            .as_str()
            .is_some_and(|d| d.starts_with("20") && d.ends_with('Z')),
        "{entry}"
    );
    assert_eq!(entry["results"][0]["http_status"], 404);
    assert_eq!(entry["results"][1]["upstream_code"], "missing_permissions");
    for secret in [&s.with, &s.without] {
        assert!(!recorded.to_string().contains(secret.as_str()));
    }

    let d = Daemon::start_in(
        std::sync::Arc::new(crate::harness::tempdir::TempDir::new()),
        &yaml,
    )
    .await;
    // The daemon's own directory has no calibration file: inferred.
    let (basis, _) = daemon_basis(&d).await;
    assert_eq!(basis.as_deref(), Some("inferred"));
    d.stop().await;
    // With the recorded file next to the config: calibrated.
    let dir = std::sync::Arc::new(crate::harness::tempdir::TempDir::new());
    std::fs::copy(&file, dir.path().join("calibration.json")).expect("copy");
    let d = Daemon::start_in(dir, &yaml).await;
    let (basis, permission) = daemon_basis(&d).await;
    assert_eq!(
        basis.as_deref(),
        Some("calibrated"),
        "{}",
        d.metrics().await
    );
    assert_eq!(permission["basis"], "calibrated");
    assert_eq!(permission["granted"], true);
    d.stop().await;

    let report = s.check().await;
    assert_eq!(
        report.credentials[0]
            .permission_basis
            .get("convai_write")
            .map(String::as_str),
        Some("calibrated")
    );
}

/// A recorded "does not discriminate": the probe's 404 proves nothing, so
/// the permission is unknown (inconclusive), never granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_non_discriminating_probe_leaves_the_permission_unknown() {
    let s = setup(SignedUrlMode::LookupFirst).await;
    let yaml = s.with_calibration_file();
    let run = s.run(&[], s.keys()).await;
    assert_eq!(run.code, 1, "{run:?}");
    let file = s.dir.path().join("calibration.json");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    assert_eq!(recorded["calibrations"][0]["discriminates"], false);

    let dir = std::sync::Arc::new(crate::harness::tempdir::TempDir::new());
    std::fs::copy(&file, dir.path().join("calibration.json")).expect("copy");
    let d = Daemon::start_in(dir, &yaml).await;
    let m = crate::support::wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_permission_probe_inconclusive",
        &["credential=\"el\"", "permission=\"convai_write\""],
        |v| v == 1.0,
    )
    .await;
    assert_eq!(m, 1.0);
    let metrics = d.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "credwatch_permission_granted",
            &["credential=\"el\""]
        ),
        None,
        "{metrics}"
    );
    assert_eq!(sample(&metrics, BASIS, &["credential=\"el\""]), None);
    let entry = d.credential("el").await;
    assert_eq!(entry["status"], "pending", "{entry}");
    assert_eq!(entry["permissions"], serde_json::json!([]));
    d.stop().await;

    let report = s.check().await;
    let el = &report.credentials[0];
    assert_eq!(el.status, "pending");
    assert!(!el.permissions.contains_key("convai_write"), "{el:?}");
    // Said as such, with the way out.
    assert!(
        el.findings
            .iter()
            .any(|f| f.check == "permission_convai_write"
                && f.summary
                    .contains("does not tell a key with `convai_write` from one without")
                && f.fix.contains("permission_probes:")),
        "{el:?}"
    );
}

/// A calibration file that is not one stops `serve`/`check`/`validate` with
/// the key and the file named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_calibration_file_is_a_config_error() {
    let s = setup(SignedUrlMode::PermissionFirst).await;
    s.with_calibration_file();
    std::fs::write(
        s.dir.path().join("calibration.json"),
        "{\"version\": 1, \"calibrations\": [{}]}",
    )
    .expect("write");
    let config = s.dir.path().join("config.yaml");
    let run = credwatch(
        vec![
            "validate".into(),
            "--config".into(),
            config.to_string_lossy().into_owned(),
        ],
        vec![],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("calibration_file") && run.stderr.contains("calibration.json"),
        "{run:?}"
    );
}
