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

/// A config path that is not a regular file of sane size must fail a reload
/// at once, not wedge it (issue #21: a FIFO hung `POST /-/reload` forever,
/// `/dev/zero` grew memory without bound). Each is refused promptly with the
/// generic answer, `credwatch_config_last_reload_successful` drops to 0, the
/// reason is logged, the running config keeps going, and the next good
/// reload works.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_path_that_is_a_fifo_a_directory_a_device_or_huge_is_refused_promptly() {
    let mut world = World::default();
    world.twilio.add_account(
        TwilioAccount::new(ac_sid("reload-files"), tw_token("reload-files"))
            .with_numbers(&["+15005550014"]),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let good = config(
        FAST,
        &[],
        &[tw(
            "tw-files",
            &ac_sid("reload-files"),
            &tw_token("reload-files"),
            &sim.twilio_url(),
            "",
        )],
    );
    let d = Daemon::start(&good).await;
    wait_status(&d, "tw-files", "healthy").await;
    let path = d.config_path();
    type Make = Box<dyn Fn(&std::path::Path)>;
    let make: [(&str, &str, Make); 4] = [
        (
            "a FIFO",
            "not a regular file",
            Box::new(|p| {
                let made = std::process::Command::new("mkfifo")
                    .arg(p)
                    .status()
                    .expect("mkfifo runs");
                assert!(made.success());
            }),
        ),
        (
            "a directory",
            "not a regular file",
            Box::new(|p| std::fs::create_dir(p).expect("mkdir")),
        ),
        (
            "a symlink to /dev/zero",
            "not a regular file",
            Box::new(|p| std::os::unix::fs::symlink("/dev/zero", p).expect("symlink")),
        ),
        (
            "a 1 GiB sparse file",
            "larger than 4194304 bytes",
            Box::new(|p| {
                let f = std::fs::File::create(p).expect("create");
                f.set_len(1 << 30).expect("sparse 1 GiB");
            }),
        ),
    ];
    for (what, reason, make) in make {
        let _ = std::fs::remove_file(&path);
        make(&path);
        // Without the fix a FIFO reader blocks forever, and the test runtime
        // would wait for it after the assertion failed: a writer that
        // opens and closes the FIFO on the way out releases it.
        let _release = ReleaseFifo(path.clone());
        // The harness client gives up after 10 s: a wedged reload fails here.
        let (code, body) = d.post_reload().await;
        assert_eq!(code, 500, "{what}: {body}");
        assert_eq!(body, credwatch::server::RELOAD_FAILED, "{what}");
        let m = d.metrics().await;
        assert_eq!(
            sample(&m, "credwatch_config_last_reload_successful", &[]),
            Some(0.0),
            "{what}"
        );
        let logs = crate::harness::logs();
        let file = path.display().to_string();
        let at = logs
            .rfind(&format!(
                "configuration reload failed, keeping the running one: {file}"
            ))
            .unwrap_or_else(|| panic!("{what}: the failure is logged with the file:\n{logs}"));
        assert!(
            logs[at..].contains(reason),
            "{what}: the reason ({reason}) is logged:\n{}",
            &logs[at..]
        );
        // The running config keeps going.
        assert_eq!(
            d.credential("tw-files").await["status"],
            "healthy",
            "{what}"
        );
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(&path).expect("rmdir");
        } else {
            std::fs::remove_file(&path).expect("rm");
        }
        // The next good reload works.
        std::fs::write(&path, &good).expect("write config");
        let (code, body) = d.post_reload().await;
        assert_eq!(code, 200, "after {what}: {body}");
        let m = d.metrics().await;
        assert_eq!(
            sample(&m, "credwatch_config_last_reload_successful", &[]),
            Some(1.0),
            "after {what}"
        );
    }
    d.stop().await;
}

/// Opens (non-blocking) and closes a FIFO when dropped, so a reader blocked
/// on it gets end-of-file.
#[cfg(unix)]
struct ReleaseFifo(std::path::PathBuf);

#[cfg(unix)]
impl Drop for ReleaseFifo {
    fn drop(&mut self) {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        if std::fs::symlink_metadata(&self.0).is_ok_and(|m| m.file_type().is_fifo()) {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.0);
        }
    }
}

/// SIGTERM while a reload is wedged on a config path that is a FIFO ends
/// the real binary (issue #21: a thread blocked in the read kept the
/// process alive until SIGKILL). The bound is a hang guard, not a timing
/// assertion.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_reload_of_a_fifo_ends_the_process() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "twilio:\n  - name: tw-offline\n    account_sid: AC0123456789abcdef0123456789abcdef\n    \
         auth_token: 0123456789abcdef0123456789abcdef\n    base_url: http://127.0.0.1:9\n",
    )
    .expect("write config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["serve", "--config.file"])
        .arg(&path)
        .args(["--web.listen-address", &addr])
        .env_remove("CREDWATCH_LOG")
        .env_remove("CREDWATCH_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn credwatch");
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
    let wait_line = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    };
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let sent = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    };
    wait_line("credwatch started");
    // Serving means the SIGHUP handler is installed (it is set up first);
    // before that SIGHUP would end the process.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let answers = || -> bool {
        use std::io::{Read, Write};
        let Ok(mut c) = std::net::TcpStream::connect(&addr) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let mut out = String::new();
        c.write_all(b"GET /livez HTTP/1.0\r\n\r\n").is_ok()
            && c.read_to_string(&mut out).is_ok()
            && out.starts_with("HTTP/1.")
    };
    while !answers() {
        assert!(
            std::time::Instant::now() < deadline,
            "credwatch never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(&path).expect("rm");
    let made = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    signal("-HUP");
    wait_line("SIGHUP");
    std::thread::sleep(Duration::from_millis(300));
    signal("-TERM");
    // Hang guard: the bound (scheduler drain at most 20 s, server drain 5 s,
    // plus margins) is far below it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("credwatch did not stop on SIGTERM during a wedged reload");
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// At start too: `validate`, `serve` and `check` given a config path that
/// is a FIFO or `/dev/zero` refuse it at once (exit 2, the reason named)
/// instead of blocking or reading without end.
#[cfg(unix)]
#[test]
fn a_config_path_that_is_a_fifo_or_a_device_is_refused_at_start() {
    use std::process::{Command, Stdio};
    let dir = crate::harness::tempdir::TempDir::new();
    let fifo = dir.path().join("config.yaml");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let zero = dir.path().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    for path in [&fifo, &zero] {
        for command in ["validate", "serve", "check"] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_credwatch"))
                .arg(command)
                .arg("--config.file")
                .arg(path)
                .env_remove("CREDWATCH_LOG")
                .env_remove("CREDWATCH_LOG_FORMAT")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn credwatch");
            // Hang guard, not a timing assertion.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("`{command}` blocked on {}", path.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
                .expect("stderr");
            assert_eq!(
                status.code(),
                Some(2),
                "{command} {}: {stderr}",
                path.display()
            );
            assert!(
                stderr.contains("not a regular file"),
                "{command} {}: {stderr}",
                path.display()
            );
        }
    }
}
