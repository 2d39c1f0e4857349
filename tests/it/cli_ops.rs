//! What an SRE expects of the binary: Prometheus-style flags (the old names
//! still work), `--version` with revision, build date and toolchain, shell
//! completions and a man page, logs in logfmt or JSON without colour codes
//! (colour only in `text` on a terminal without NO_COLOR), and `check --demo`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::check::credwatch;
use crate::harness::tempdir::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_credwatch");

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A config with one Twilio credential pointing at a closed local port:
/// valid, and nothing upstream answers.
fn offline_config(dir: &TempDir) -> String {
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "twilio:\n  - name: tw-offline\n    account_sid: AC0123456789abcdef0123456789abcdef\n    \
         auth_token_env: CREDWATCH_IT_OFFLINE_TOKEN\n    base_url: http://127.0.0.1:9\n",
    )
    .expect("write config");
    path.display().to_string()
}

const OFFLINE_TOKEN: (&str, &str) = (
    "CREDWATCH_IT_OFFLINE_TOKEN",
    "0123456789abcdef0123456789abcdef",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_prints_version_revision_build_date_and_toolchain() {
    for flag in ["--version", "-V"] {
        let run = credwatch(args(&[flag]), vec![]).await;
        assert_eq!(run.code, 0, "{run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "credwatch, version {} (revision: {})",
                env!("CARGO_PKG_VERSION"),
                credwatch::REVISION
            ),
            "{run:?}"
        );
        let field = |name: &str| -> String {
            lines
                .iter()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no `{name}` line: {run:?}"))
        };
        let date = field("build date:");
        // YYYYMMDD-HH:MM:SS, as Prometheus prints it.
        assert_eq!(date.len(), 17, "{date}");
        assert!(
            date[..8].chars().all(|c| c.is_ascii_digit()) && &date[8..9] == "-",
            "{date}"
        );
        assert!(date.starts_with("20"), "{date}");
        assert!(field("toolchain:").starts_with("rustc 1."), "{run:?}");
        assert!(field("platform:").contains('/'), "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_and_its_old_name_config_both_work() {
    let dir = TempDir::new();
    let config = offline_config(&dir);
    let env = vec![(OFFLINE_TOKEN.0.to_string(), OFFLINE_TOKEN.1.to_string())];
    for flag in ["--config.file", "--config"] {
        let run = credwatch(args(&["validate", flag, &config]), env.clone()).await;
        assert_eq!(run.code, 0, "validate {flag}: {run:?}");
        assert!(run.stdout.contains("valid (1 credential)"), "{run:?}");
    }
    // `=` forms, as Prometheus' own flags are often written.
    let run = credwatch(args(&["validate", &format!("--config.file={config}")]), env).await;
    assert_eq!(run.code, 0, "{run:?}");
    // Neither given: a usage error naming the new flag.
    let run = credwatch(args(&["validate"]), vec![]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--config.file"), "{run:?}");
}

/// Spawns `credwatch <args>` with stderr piped, waits (real time, bounded)
/// until a stderr line contains `until`, then kills it. Returns every stderr
/// line read.
pub(crate) fn run_until(args: &[&str], env: &[(&str, &str)], until: &str) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("CREDWATCH_LOG")
        .env_remove("CREDWATCH_LOG_FORMAT")
        .env_remove("CREDWATCH_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child: Child = cmd.spawn().expect("spawn credwatch");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(until);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no stderr line with {until:?} in time; got:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_logfmt_by_default_json_on_request_and_never_coloured_when_piped() {
    let dir = TempDir::new();
    let config = offline_config(&dir);
    let env = [OFFLINE_TOKEN];
    let serve = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "serve",
            "--config.file",
            config.as_str(),
            "--web.listen-address",
            "127.0.0.1:0",
        ];
        a.extend_from_slice(extra);
        run_until(&a, &env, "credwatch started")
    };

    // Default: logfmt.
    let lines = serve(&[]);
    let started = lines.last().expect("a line");
    assert!(started.starts_with("ts="), "{started}");
    assert!(started.contains(" level=info "), "{started}");
    assert!(
        started.contains(r#"message="credwatch started""#),
        "{started}"
    );
    assert!(started.contains("credentials=1"), "{started}");
    // The same with the flag spelled out, and with the old name of the flag.
    for flags in [["--log.format", "logfmt"], ["--log-format", "logfmt"]] {
        let lines = serve(&flags);
        assert!(
            lines.last().expect("a line").starts_with("ts="),
            "{lines:?}"
        );
    }

    // JSON: one object a line.
    for flags in [["--log.format", "json"], ["--log-format", "json"]] {
        let lines = serve(&flags);
        let v: serde_json::Value =
            serde_json::from_str(lines.last().expect("a line")).expect("a JSON log line");
        assert_eq!(v["message"], "credwatch started", "{v}");
        assert_eq!(v["level"], "INFO", "{v}");
    }

    // Text, piped (kubectl logs, Loki): no escape sequences although
    // NO_COLOR is unset.
    let lines = serve(&["--log.format", "text"]);
    assert!(
        lines.last().expect("a line").contains("credwatch started"),
        "{lines:?}"
    );
    for lines in [serve(&["--log.format", "text"]), serve(&[])] {
        for l in &lines {
            assert!(
                !l.contains('\x1b'),
                "colour code in a piped log line: {l:?}"
            );
        }
    }

    // --log.level (and its old name): a level that does not parse is a
    // usage error, not a silent fallback.
    for flag in ["--log.level", "--log-level"] {
        let run = credwatch(
            args(&["validate", flag, "credwatch=loud", "--config.file", &config]),
            vec![],
        )
        .await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("log level"), "{run:?}");
    }
}

/// Runs `credwatch serve … --log.format FORMAT` under a pseudo-terminal
/// (`script`) for two seconds and returns what it wrote.
async fn serve_on_a_tty(config: &str, format: &str, no_color: Option<&str>) -> String {
    let cmd = format!(
        "timeout 2 {BIN} serve --config.file {config} --web.listen-address 127.0.0.1:0 --log.format {format}"
    );
    crate::support::on_a_tty(cmd, &[OFFLINE_TOKEN], no_color).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_are_coloured_only_on_a_terminal_without_no_color() {
    let dir = TempDir::new();
    let config = offline_config(&dir);
    let tty = serve_on_a_tty(&config, "text", None).await;
    assert!(tty.contains("credwatch started"), "{tty:?}");
    assert!(
        tty.contains('\x1b'),
        "text on a terminal is coloured: {tty:?}"
    );
    let no_color = serve_on_a_tty(&config, "text", Some("1")).await;
    assert!(no_color.contains("credwatch started"), "{no_color:?}");
    assert!(!no_color.contains('\x1b'), "NO_COLOR: {no_color:?}");
    let logfmt = serve_on_a_tty(&config, "logfmt", None).await;
    assert!(logfmt.contains("credwatch started"), "{logfmt:?}");
    // An unset option is left out, never printed as a Rust `Option`.
    assert!(
        !logfmt.contains("None") && !logfmt.contains("Some("),
        "{logfmt:?}"
    );
    assert!(
        !logfmt.contains('\x1b'),
        "logfmt is never coloured: {logfmt:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_listen_address_and_its_old_name_listen_both_bind() {
    // `:PORT` is every interface, as the Prometheus exporters take it.
    for (flag, every_interface) in [
        ("--web.listen-address", false),
        ("--listen", false),
        ("--web.listen-address", true),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let given = if every_interface {
            format!(":{port}")
        } else {
            addr.clone()
        };
        let mut child = Command::new(BIN)
            .args(["demo", flag, &given])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn demo");
        credwatch::providers::http::install_crypto_provider();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let ok = loop {
            match client.get(format!("http://{addr}/livez")).send().await {
                Ok(r) if r.status() == 200 => break true,
                _ if Instant::now() > deadline => break false,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(ok, "demo {flag} {given}: /livez never answered on {addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_page_cover_the_new_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = credwatch(args(&["completions", shell]), vec![]).await;
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        for word in ["config.file", "web.listen-address", "log.format"] {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let run = credwatch(args(&["completions", "tcsh"]), vec![]).await;
    assert_eq!(run.code, 2, "{run:?}");

    let run = credwatch(args(&["man"]), vec![]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(".TH credwatch 1"), "{}", run.stdout);
    for word in ["log.format", "log.level", "serve", "check", "completions"] {
        assert!(run.stdout.contains(word), "man page lacks {word}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_demo_shows_the_demo_verdicts_without_any_account() {
    let run = credwatch(args(&["check", "--demo", "--output", "json"]), vec![]).await;
    assert_eq!(run.code, 1, "the demo has broken credentials: {run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let got: Vec<(String, String, Option<String>)> = report["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().map(str::to_string),
            )
        })
        .collect();
    // The demo's cast (the README's table is held to it too).
    let want: Vec<(String, String, Option<String>)> = credwatch_sim::demo::cast()
        .map(|c| {
            (
                c.name.to_string(),
                c.status.to_string(),
                c.reason.map(str::to_string),
            )
        })
        .collect();
    assert_eq!(got, want);
    // The demo's routing labels, in JSON and text.
    let agent = &report["credentials"][0];
    assert_eq!(
        agent["labels"],
        serde_json::json!({"environment": "prod", "team": "voice"}),
        "{agent}"
    );
    // The imported number that is not on the linked Twilio account is explained.
    let legacy = agent["details"]["phone_numbers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["phone_number_id"] == "phnum_demo_legacy_line")
        .expect("the legacy line");
    assert_eq!(legacy["ready"], false, "{legacy}");

    // Text, one credential; CREDWATCH_CONFIG (set in the environment) is
    // ignored with --demo.
    let out = tokio::task::spawn_blocking(|| {
        Command::new(BIN)
            .args(["check", "--demo", "--credential", "el-revoked"])
            .env("CREDWATCH_CONFIG", "/nonexistent.yaml")
            .env_remove("NO_COLOR")
            .output()
            .expect("run credwatch")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("✗ el-revoked (elevenlabs): invalid_credentials"),
        "{stdout}"
    );
    assert!(stdout.contains("fix:"), "{stdout}");
    // A config file and --demo together is a usage error.
    let run = credwatch(
        args(&["check", "--demo", "--config.file", "x.yaml"]),
        vec![],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--demo"), "{run:?}");
}
