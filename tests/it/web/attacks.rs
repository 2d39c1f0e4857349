//! Attacks on the web listener: password guessing beside the probes and
//! checks, per-address login limits, a FIFO or device as the web config.

use super::sessions::{still_protected, wait_web_reload};
use super::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_neither_stalls_probes_nor_checks_nor_locks_out_the_right_password() {
    let pki = pki();
    // Cost 12, as in the report: about a quarter of a second of CPU per check.
    let hash12 = tokio::task::spawn_blocking(|| bcrypt::hash("the-right-one", 12).expect("hash"))
        .await
        .expect("hash");
    let web = format!("basic_auth_users:\n  prometheus: \"{hash12}\"\n");
    let r = start_checking(&pki, &web, json!({"interval": "1s", "timeout": "900ms"})).await;
    let main = format!("http://127.0.0.1:{}", r.main_port);
    let scraper = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let scrape = || async {
        scraper
            .get(format!("{main}/metrics"))
            .basic_auth("prometheus", Some("the-right-one"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    // Prometheus was scraping before the attack began.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while scrape().await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape before the attack"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let attack = Duration::from_secs(10);
    let until = std::time::Instant::now() + attack;
    let statuses = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u32>::new(),
    ));
    // The guessers run on their own runtime and thread, as another process would.
    let guessers = {
        let statuses = statuses.clone();
        let url = format!("{main}/metrics");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut guessers = tokio::task::JoinSet::new();
                for i in 0..32u8 {
                    // Each guesser from its own loopback address.
                    let local = std::net::IpAddr::from([127, 0, 0, 10 + i]);
                    let client = reqwest::Client::builder()
                        .local_address(local)
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("client");
                    let url = url.clone();
                    let statuses = statuses.clone();
                    guessers.spawn(async move {
                        while std::time::Instant::now() < until {
                            let guess = format!("guess-{:016x}", fastrand::u64(..));
                            let user = if fastrand::bool() {
                                "prometheus"
                            } else {
                                "admin"
                            };
                            let status = client
                                .get(&url)
                                .basic_auth(user, Some(guess))
                                .send()
                                .await
                                .map(|r| r.status().as_u16())
                                .unwrap_or(0);
                            *statuses.lock().unwrap().entry(status).or_default() += 1;
                        }
                    });
                }
                while guessers.join_next().await.is_some() {}
            })
        })
    };
    let requests_before = r._sim.request_count();
    // The kubelet is another process too: its own thread, a fresh
    // connection per probe, every 50 ms.
    let kubelet = {
        let url = format!("{}/livez", r.probe);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut probes = Vec::new();
                while std::time::Instant::now() < until {
                    let started = std::time::Instant::now();
                    let status = client
                        .get(&url)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    probes.push((status, started.elapsed()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                probes
            })
        })
    };
    let mut scrapes = Vec::new();
    while std::time::Instant::now() < until {
        scrapes.push(scrape().await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let upstream = r._sim.request_count() - requests_before;
    tokio::task::spawn_blocking(move || guessers.join())
        .await
        .expect("join")
        .expect("guessers");
    let probes = tokio::task::spawn_blocking(move || kubelet.join())
        .await
        .expect("join")
        .expect("kubelet");
    assert!(
        probes.iter().all(|(status, _)| *status == 200),
        "a probe failed during the attack: {probes:?}"
    );
    let mut latencies: Vec<Duration> = probes.iter().map(|(_, l)| *l).collect();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let statuses = statuses.lock().unwrap().clone();
    eprintln!(
        "probes: {} p99 {p99:?} max {:?}; guesses: {statuses:?}; scrapes: {scrapes:?}; upstream requests: {upstream}",
        latencies.len(),
        latencies.last()
    );
    // Not a speed target (those are scripts/bench's): bcrypt on the
    // runtime threads would hold probes for whole guessing rounds (seconds);
    // 1 s leaves room for a loaded CI machine.
    assert!(
        p99 < Duration::from_secs(1),
        "/livez on the probe port: p99 {p99:?}"
    );
    assert!(
        scrapes.iter().all(|s| *s == 200),
        "the right password was refused: {scrapes:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "guessing was never throttled: {statuses:?}"
    );
    assert!(
        !statuses.contains_key(&200),
        "a random guess got in: {statuses:?}"
    );
    // One authentication check a second for 10 s; allow for a late start.
    assert!(
        upstream >= 7,
        "upstream checks fell behind: {upstream} requests in {attack:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_per_client_address() {
    let pki = pki();
    let r = start(
        &pki,
        &format!("basic_auth_users:\n  prometheus: \"{}\"\n", hash("s3cret")),
    )
    .await;
    let url = format!("http://127.0.0.1:{}/livez", r.main_port);
    let from = |host: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, host]))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    };
    let (guesser, neighbour) = (from(40), from(41));
    let burst = credwatch::server::Limits::default().auth_failure_burst;
    let mut statuses = Vec::new();
    for i in 0..burst + 5 {
        let answer = get_as(&guesser, &url, "prometheus", &format!("guess{i}")).await;
        statuses.push((
            answer.status().as_u16(),
            answer.headers().contains_key("retry-after"),
        ));
    }
    let limited = &statuses[burst as usize..];
    assert!(
        statuses[..burst as usize].iter().all(|s| s.0 == 401)
            && limited.iter().all(|s| *s == (429, true)),
        "{statuses:?}"
    );
    // In this order: the answers depend on what came before.
    for (step, from, password, want) in [
        (
            "even the right password waits, from that address, until the allowance refills",
            &guesser,
            "s3cret",
            429,
        ),
        (
            "another address is not affected (wrong password)",
            &neighbour,
            "nope",
            401,
        ),
        (
            "another address is not affected (right password)",
            &neighbour,
            "s3cret",
            200,
        ),
        (
            "once verified, the right password is served from the cache, from any address",
            &guesser,
            "s3cret",
            200,
        ),
    ] {
        let status = get_as(from, &url, "prometheus", password).await.status();
        assert_eq!(status, want, "{step}");
    }
}

/// Issue #21, for the web config: it is re-read on the request path, so a
/// FIFO put in place of it (or of the key file, or `/dev/zero` behind a
/// symlink) used to block the request that noticed the change, and every
/// request after it behind the same lock. Each is refused at once:
/// requests keep being answered, `credwatch_web_config_last_reload_successful`
/// drops to 0 with the reason logged, and a good file is applied again.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_config_or_key_file_that_is_a_fifo_or_a_device_is_refused_not_waited_on() {
    /// Without the fix a reader blocks on the FIFO forever, on a runtime
    /// worker, where no tokio timer can end the test: a writer that opens
    /// and closes it releases the reader.
    fn release(fifo: &std::path::Path) {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        if std::fs::symlink_metadata(fifo).is_ok_and(|m| m.file_type().is_fifo()) {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
        }
    }
    let pki = pki();
    let users = format!("basic_auth_users:\n  prometheus: \"{}\"\n", hash("s3cret"));
    let tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let r = start(&pki, &format!("{tls}{users}")).await;
    let c = client(&pki, false);
    wait_web_reload(&c, &r, 1.0).await;
    let dir = r._dir.path().to_path_buf();
    // A watchdog on a plain thread: every 20 s it releases whatever FIFO is
    // in place, so a blocked reader (no fix) ends in a failed assertion
    // rather than a hung test. With the fix nothing ever waits on them.
    let (done, watched) = std::sync::mpsc::channel::<()>();
    let watch_dir = dir.clone();
    std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watched.recv_timeout(Duration::from_secs(20))
        {
            for name in ["web.yml", "server.key"] {
                release(&watch_dir.join(name));
            }
        }
    });
    let cases: [(&str, bool); 3] = [
        ("web.yml", true),
        ("server.key", true),
        ("server.key", false),
    ];
    for (name, fifo) in cases {
        let file = dir.join(name);
        let good = std::fs::read(&file).expect("read");
        std::fs::remove_file(&file).expect("rm");
        if fifo {
            let made = std::process::Command::new("mkfifo")
                .arg(&file)
                .status()
                .expect("mkfifo runs");
            assert!(made.success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &file).expect("symlink");
        }
        // Requests keep being answered (the client gives up after 5 s).
        wait_web_reload(&c, &r, 0.0).await;
        let logs = crate::harness::logs();
        assert!(
            logs.lines()
                .any(|l| l.contains("web config changed but was refused")
                    && l.contains("not a regular file")),
            "{name}: the reason is logged:\n{logs}"
        );
        still_protected(&c, &r).await;
        let probe = reqwest::Client::new()
            .get(format!("{}/livez", r.probe))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the probe listener answers");
        assert_eq!(probe.status(), 200);
        std::fs::remove_file(&file).expect("rm");
        std::fs::write(&file, &good).expect("restore");
        wait_web_reload(&c, &r, 1.0).await;
    }
    drop(done);
}
