//! Config reloads (`SIGHUP`, `POST /-/reload` with `--web.enable-lifecycle`),
//! coalesced: one reload runs at a time, off the async runtime (it reads
//! files), and every request that arrives meanwhile is served by the one
//! queued after it. A flood of requests costs at most two reloads in a row.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// Runs a reload; `Err` carries the detail, which goes to the log only.
pub type ReloadFn = dyn Fn() -> Result<(), String> + Send + Sync;

/// A handle on the reload worker.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tickets handed out; a reload started after ticket `t` was handed out serves it.
    requested: AtomicU64,
    wake: Notify,
    /// (last ticket served, whether that reload succeeded).
    done: watch::Sender<(u64, bool)>,
}

impl Reloader {
    /// Starts the worker on the current runtime; it stops with `stop`.
    pub fn spawn(reload: Arc<ReloadFn>, stop: CancellationToken) -> Reloader {
        let (done, _) = watch::channel((0, true));
        let inner = Arc::new(Inner {
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            done,
        });
        let worker = inner.clone();
        tokio::spawn(async move {
            let mut served = 0u64;
            loop {
                let target = worker.requested.load(Ordering::Acquire);
                if target > served {
                    let reload = reload.clone();
                    let ok = match tokio::task::spawn_blocking(move || reload()).await {
                        Ok(result) => result.is_ok(),
                        Err(e) => {
                            tracing::error!("configuration reload panicked: {e}");
                            false
                        }
                    };
                    served = target;
                    worker.done.send_replace((served, ok));
                    continue;
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = worker.wake.notified() => {}
                }
            }
        });
        Reloader { inner }
    }

    /// Asks for a reload and waits for one that started after this call;
    /// whether it succeeded (`false` also when the worker has stopped).
    pub async fn reload(&self) -> bool {
        let mut rx = self.inner.done.subscribe();
        let ticket = self.request();
        loop {
            let (served, ok) = *rx.borrow_and_update();
            if served >= ticket {
                return ok;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Asks for a reload without waiting (SIGHUP).
    pub fn trigger(&self) {
        self.request();
    }

    fn request(&self) -> u64 {
        let ticket = self.inner.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.wake.notify_one();
        ticket
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_requests_costs_at_most_two_reloads_in_a_row() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let stop = CancellationToken::new();
        let reloader = Reloader::spawn(
            Arc::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            }),
            stop.clone(),
        );
        let mut waiters = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let r = reloader.clone();
            waiters.spawn(async move { r.reload().await });
        }
        while let Some(ok) = waiters.join_next().await {
            assert!(ok.expect("waiter"));
        }
        let n = runs.load(Ordering::SeqCst);
        assert!((1..=3).contains(&n), "200 requests ran {n} reloads");
        // A request after those is served by a new reload.
        assert!(reloader.reload().await);
        assert_eq!(runs.load(Ordering::SeqCst), n + 1);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_failed_reload_is_reported_to_the_waiters() {
        let stop = CancellationToken::new();
        let reloader = Reloader::spawn(Arc::new(|| Err("bad".into())), stop.clone());
        assert!(!reloader.reload().await);
        stop.cancel();
    }
}
