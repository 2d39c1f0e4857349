//! Starts the real daemon in-process on 127.0.0.1:0 against the simulator,
//! and captures every log line (at trace level) for the secret-leak checks.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use credwatch::config::{Config, ConfigError, ProcessEnv};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Every log line written by any daemon in this test binary.
pub fn logs() -> String {
    String::from_utf8_lossy(
        &LOGS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    )
    .into_owned()
}

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the trace-level capturing subscriber once per test binary.
pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        credwatch::providers::http::install_crypto_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

/// A running daemon.
pub struct Daemon {
    pub url: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::process::ExitCode>>,
    /// Kept alive for the daemon's lifetime (config and secret files).
    pub dir: Arc<tempdir::TempDir>,
}

/// A scratch directory removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let n: u64 = fastrand::u64(..);
            let p = std::env::temp_dir().join(format!("credwatch-it-{}-{n:x}", std::process::id()));
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Daemon {
    /// Starts a daemon whose config is `yaml`, written to `config.yaml` in a
    /// fresh directory (so `*_file` paths may be relative to it; see [`Daemon::start_in`]).
    pub async fn start(yaml: &str) -> Daemon {
        Self::start_in(Arc::new(tempdir::TempDir::new()), yaml).await
    }

    /// [`Daemon::start`] in a given directory, with `--web.enable-lifecycle`
    /// (so scenarios can `POST /-/reload`).
    pub async fn start_in(dir: Arc<tempdir::TempDir>, yaml: &str) -> Daemon {
        Self::start_with(dir, yaml, true).await
    }

    /// A daemon without `--web.enable-lifecycle`, as `serve` runs by default.
    pub async fn start_without_lifecycle(yaml: &str) -> Daemon {
        Self::start_with(Arc::new(tempdir::TempDir::new()), yaml, false).await
    }

    pub async fn start_with(dir: Arc<tempdir::TempDir>, yaml: &str, lifecycle: bool) -> Daemon {
        init_logs();
        let path: PathBuf = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).expect("write config");
        let config = Config::load(&path, &ProcessEnv)
            .unwrap_or_else(|e| panic!("test config is invalid: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let reload_path = path.clone();
        let reload =
            move || -> Result<Config, ConfigError> { Config::load(&reload_path, &ProcessEnv) };
        let task = tokio::spawn(credwatch::cli::run_daemon_with(
            credwatch::cli::Listeners {
                enable_lifecycle: lifecycle,
                ..credwatch::cli::Listeners::plain(listener)
            },
            config,
            reload,
            async move {
                let _ = stopped.await;
            },
        ));
        Daemon {
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("daemon answers");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// `POST /-/reload`: the status and the body.
    pub async fn post_reload(&self) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}/-/reload", self.url))
            .send()
            .await
            .expect("reload answers");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// `/health?verbose=1`: every credential's entry.
    pub async fn health(&self) -> (u16, serde_json::Value) {
        let (status, body) = self.get("/health?verbose=1").await;
        (status, serde_json::from_str(&body).expect("health is JSON"))
    }

    /// The `/health` entry of one credential.
    pub async fn credential(&self, name: &str) -> serde_json::Value {
        let (_, body) = self.health().await;
        body["credentials"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no credential {name} in /health"))
    }

    /// Waits (polling `/health`, real time) until `pred` holds for credential `name`.
    pub async fn wait_for(
        &self,
        name: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let c = self.credential(name).await;
            if pred(&c) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {name}; last /health entry: {c}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every credential had at least one cycle.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.get("/readyz").await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "daemon not ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The value of a sample line `name{labels} value` whose labels contain every `needle`.
pub fn sample(metrics: &str, name: &str, needles: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
