//! Whether checks run late: the most overdue check's due time
//! (`credwatch_scheduler_lag_seconds`) and, once per episode of lateness,
//! a warning with the request rate needed and achieved.

use std::cmp::Reverse;
use std::time::Duration;

use tokio::time::Instant;

use super::Scheduler;
use crate::providers;

/// Checks this late (the most overdue one) start an episode of lateness:
/// one warning naming the request rate needed and achieved.
pub const LATE: Duration = Duration::from_secs(10);

/// An episode ends after the checks were on time (lag under [`LATE`]) this long.
const CALM: Duration = Duration::from_secs(60);

/// The achieved request rate is measured over the last 30 to 60 s.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// Whether checks run late, and the request counts to say how late.
pub(super) struct Lateness {
    /// Since when checks have run late, if they do.
    episode: Option<Instant>,
    calm_since: Option<Instant>,
    /// Two samples of (time, requests sent), [`RATE_WINDOW`] apart.
    older: (Instant, u64),
    newer: (Instant, u64),
}

impl Lateness {
    /// On time, with no requests sent yet.
    pub(super) fn new(now: Instant) -> Self {
        Lateness {
            episode: None,
            calm_since: None,
            older: (now, 0),
            newer: (now, 0),
        }
    }
}

impl Scheduler {
    /// Drops stale entries at the head of the queue, publishes the due time
    /// of the most overdue check not yet started
    /// (`credwatch_scheduler_lag_seconds`), and logs once per episode of
    /// lateness the request rate needed and achieved.
    pub(super) fn watch_lag(&mut self) {
        while let Some(Reverse((_, ticket, name))) = self.queue.peek() {
            let live = self
                .entries
                .get(name)
                .is_some_and(|e| e.ticket == *ticket && !e.running);
            if live {
                break;
            }
            self.queue.pop();
        }
        let due = self.queue.peek().map(|Reverse((at, _, _))| *at);
        self.own.metrics.set_oldest_due(due);
        let now = Instant::now();
        let sent = self.upstream.sent();
        let l = &mut self.lateness;
        if now.duration_since(l.newer.0) >= RATE_WINDOW {
            l.older = l.newer;
            l.newer = (now, sent);
        }
        let lag = due.map_or(Duration::ZERO, |d| now.saturating_duration_since(d));
        if lag < LATE {
            if l.episode.is_some() {
                let calm = *l.calm_since.get_or_insert(now);
                if now.duration_since(calm) >= CALM {
                    l.episode = None;
                    l.calm_since = None;
                    tracing::info!("checks are on time again");
                }
            }
            return;
        }
        l.calm_since = None;
        if l.episode.is_some() {
            return;
        }
        l.episode = Some(now);
        let window = now.duration_since(l.older.0).as_secs_f64();
        let achieved = if window > 0.0 {
            sent.saturating_sub(l.older.1) as f64 / window
        } else {
            0.0
        };
        let required: f64 = self
            .entries
            .values()
            .map(|e| providers::request_rate(&e.cred))
            .sum();
        tracing::warn!(
            lag_seconds = lag.as_secs(),
            required_requests_per_second = format!("{required:.1}"),
            achieved_requests_per_second = format!("{achieved:.1}"),
            in_flight_cap = self.max_in_flight,
            "checks are running late: the most overdue is {}s behind its interval; the configuration needs about {required:.1} requests/s and {achieved:.1}/s were sent (raise max_concurrent_requests_per_host, lengthen `interval`, or see docs/performance.md)",
            lag.as_secs()
        );
    }
}
