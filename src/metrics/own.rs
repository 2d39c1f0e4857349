//! credwatch's own metrics: build info, config and web-config reloads,
//! runtime tasks, upstream requests and the `process_*` families.
//!
//! [`render_self`] takes plain values, not the state: it is rendered at
//! every scrape, after the credentials' part.

use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::exposition::{escape, seconds, value};

/// credwatch's own metrics: build, reload, upstream requests, process.
pub struct SelfMetrics {
    registry: Registry,
    /// The process collector reads several `/proc` files; its text is
    /// reused for up to [`PROCESS_METRICS_MAX_AGE`], so a flood of scrapes
    /// does not turn into a flood of `/proc` reads.
    process: Registry,
    process_text: std::sync::Mutex<Option<(Instant, String)>>,
    pub upstream_requests: IntCounterVec,
    /// Time between two consecutive starts of a credential's checks, by
    /// its configured `interval`.
    pub check_interval: HistogramVec,
    /// The due time of the most overdue check not yet started (the
    /// scheduler sets it; a scrape reads how long ago that was).
    pub oldest_due: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// Buckets of `credwatch_check_interval_length_seconds`: the usual
/// intervals (10 s, 30 s, 60 s, …), 70 s (the default `interval + timeout`,
/// the detection promise), and the backoff's longer waits.
pub const INTERVAL_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 70.0, 90.0, 120.0, 180.0, 300.0, 600.0,
    900.0, 1800.0, 3600.0,
];

/// How old the `process_*` samples in a scrape may be.
pub(crate) const PROCESS_METRICS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

impl SelfMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "credwatch_upstream_requests_total",
                "Requests credwatch sent upstream (all of them GET), by provider.",
            ),
            &["provider"],
        )
        .expect("static metric definition is valid");
        let _ = registry.register(Box::new(upstream_requests.clone()));
        let check_interval = HistogramVec::new(
            HistogramOpts::new(
                "credwatch_check_interval_length_seconds",
                "Time between two consecutive starts of a credential's checks, by configured interval.",
            )
            .buckets(INTERVAL_BUCKETS.to_vec()),
            &["interval"],
        )
        .expect("static metric definition is valid");
        let _ = registry.register(Box::new(check_interval.clone()));
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let _ = process.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        SelfMetrics {
            registry,
            process,
            process_text: std::sync::Mutex::new(None),
            upstream_requests,
            check_interval,
            oldest_due: std::sync::Mutex::new(None),
        }
    }
}

impl SelfMetrics {
    /// How far behind its due time the most overdue check is now.
    pub fn lag(&self) -> std::time::Duration {
        let due = *self.oldest_due.lock().unwrap_or_else(|p| p.into_inner());
        due.map_or(std::time::Duration::ZERO, |due| {
            tokio::time::Instant::now().saturating_duration_since(due)
        })
    }

    /// Sets the due time of the most overdue check not yet started.
    pub fn set_oldest_due(&self, due: Option<tokio::time::Instant>) {
        *self.oldest_due.lock().unwrap_or_else(|p| p.into_inner()) = due;
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The families [`render_self`] can write, besides the `process_*` ones of
/// the `prometheus` crate's process collector. With [`FAMILIES`](super::FAMILIES), every
/// family credwatch can export; `docs/metrics.md` documents exactly these
/// (tested).
pub const SELF_FAMILIES: &[&str] = &[
    "credwatch_build_info",
    "credwatch_check_interval_length_seconds",
    "credwatch_config_last_reload_successful",
    "credwatch_config_last_reload_success_timestamp_seconds",
    "credwatch_runtime_alive_tasks",
    "credwatch_scheduler_lag_seconds",
    "credwatch_upstream_requests_total",
    // Only with --web.config.file.
    "credwatch_web_config_last_reload_successful",
    "credwatch_web_config_last_reload_success_timestamp_seconds",
];

/// When a configuration was last loaded: whether the last attempt
/// succeeded, and when the last success was.
pub type ReloadResult = (bool, Option<SystemTime>);

/// credwatch's own state, beside the credentials' (`state::State`): the
/// last config reload's result and the counters of what it did. The server
/// renders it into `/metrics` with the web config's reload result.
pub struct Own {
    reload: std::sync::Mutex<ReloadResult>,
    pub metrics: SelfMetrics,
}

impl Own {
    /// At start: the config just loaded.
    pub fn new() -> std::sync::Arc<Own> {
        std::sync::Arc::new(Own {
            reload: std::sync::Mutex::new((true, Some(SystemTime::now()))),
            metrics: SelfMetrics::new(),
        })
    }

    pub fn set_reload_result(&self, ok: bool) {
        let mut r = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        r.0 = ok;
        if ok {
            r.1 = Some(SystemTime::now());
        }
    }

    pub fn reload_result(&self) -> ReloadResult {
        *self.reload.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its part of `/metrics`, with the web config's reload result.
    pub fn render(&self, web_reload: Option<ReloadResult>) -> String {
        render_self(self.reload_result(), web_reload, &self.metrics)
    }
}

/// Renders build info, the config's reload result, the web config's (when
/// there is one), runtime tasks, upstream request counts and process metrics.
pub fn render_self(
    reload: ReloadResult,
    web_reload: Option<ReloadResult>,
    own: &SelfMetrics,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP credwatch_build_info Version and revision of the running credwatch."
    );
    let _ = writeln!(s, "# TYPE credwatch_build_info gauge");
    let _ = writeln!(
        s,
        "credwatch_build_info{{version=\"{}\",revision=\"{}\"}} 1",
        escape(crate::VERSION),
        escape(crate::REVISION)
    );
    let (ok, at) = reload;
    let _ = writeln!(
        s,
        "# HELP credwatch_config_last_reload_successful 1 if the last configuration load or reload succeeded."
    );
    let _ = writeln!(s, "# TYPE credwatch_config_last_reload_successful gauge");
    let _ = writeln!(
        s,
        "credwatch_config_last_reload_successful {}",
        if ok { 1 } else { 0 }
    );
    if let Some(at) = at {
        let _ = writeln!(
            s,
            "# HELP credwatch_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load or reload."
        );
        let _ = writeln!(
            s,
            "# TYPE credwatch_config_last_reload_success_timestamp_seconds gauge"
        );
        let _ = writeln!(
            s,
            "credwatch_config_last_reload_success_timestamp_seconds {}",
            value(seconds(at))
        );
    }
    if let Some((ok, at)) = web_reload {
        let _ = writeln!(
            s,
            "# HELP credwatch_web_config_last_reload_successful 1 if the last re-read of the web config (--web.config.file) was applied; 0 if it was invalid or would have changed the security mode."
        );
        let _ = writeln!(
            s,
            "# TYPE credwatch_web_config_last_reload_successful gauge"
        );
        let _ = writeln!(
            s,
            "credwatch_web_config_last_reload_successful {}",
            if ok { 1 } else { 0 }
        );
        if let Some(at) = at {
            let _ = writeln!(
                s,
                "# HELP credwatch_web_config_last_reload_success_timestamp_seconds Unix time of the last successful web config load or re-read."
            );
            let _ = writeln!(
                s,
                "# TYPE credwatch_web_config_last_reload_success_timestamp_seconds gauge"
            );
            let _ = writeln!(
                s,
                "credwatch_web_config_last_reload_success_timestamp_seconds {}",
                value(seconds(at))
            );
        }
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let _ = writeln!(
            s,
            "# HELP credwatch_runtime_alive_tasks Tasks alive in credwatch's async runtime (probes in flight, connections, background loops)."
        );
        let _ = writeln!(s, "# TYPE credwatch_runtime_alive_tasks gauge");
        let _ = writeln!(
            s,
            "credwatch_runtime_alive_tasks {}",
            handle.metrics().num_alive_tasks()
        );
    }
    let _ = writeln!(
        s,
        "# HELP credwatch_scheduler_lag_seconds How far behind its due time the most overdue check not yet started is now (0: every check starts on time)."
    );
    let _ = writeln!(s, "# TYPE credwatch_scheduler_lag_seconds gauge");
    let _ = writeln!(
        s,
        "credwatch_scheduler_lag_seconds {}",
        value(own.lag().as_secs_f64())
    );
    let mut buf = Vec::new();
    if TextEncoder::new()
        .encode(&own.registry.gather(), &mut buf)
        .is_ok()
    {
        s.push_str(&String::from_utf8_lossy(&buf));
    }
    // The process families sort after `credwatch_*`, as one registry would.
    let mut cached = own.process_text.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = cached
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() < PROCESS_METRICS_MAX_AGE);
    if !fresh {
        let mut buf = Vec::new();
        let text = match TextEncoder::new().encode(&own.process.gather(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => String::new(),
        };
        *cached = Some((Instant::now(), text));
    }
    if let Some((_, text)) = cached.as_ref() {
        s.push_str(text);
    }
    s
}
