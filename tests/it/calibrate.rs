//! `credwatch calibrate`: the real binary, two keys, one permission probe, and
//! whether the probe tells them apart — against the simulator's default
//! check order (permission first) and the one where it cannot (lookup first).

use credwatch::simulator::{ElAccount, ElKey, SignedUrlMode, Simulator, World};
use serde::Deserialize;

use crate::check::{Run, assert_no_secret, credwatch};
use crate::harness::tempdir::TempDir;
use crate::support::el_key;

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
        format!(
            "elevenlabs:\n  - name: el\n    api_key: {monitored}\n    base_url: {}\n",
            sim.elevenlabs_url()
        ),
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
        format!(
            "elevenlabs:\n  - name: el\n    api_key: {}\n    base_url: http://127.0.0.1:9\n",
            el_key("cal-monitored")
        ),
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
