//! Config reloads (`SIGHUP`, `POST /-/reload` with `--web.enable-lifecycle`),
//! coalesced: one reload runs at a time, off the async runtime (it reads
//! files), and every request that arrives meanwhile is served by the one
//! queued after it. A flood of requests costs at most two reloads in a row.
//!
//! A reload has a deadline ([`RELOAD_DEADLINE`]): one that has not finished
//! by then (a file on a hung network mount) is reported failed, its waiters
//! answered, and no other reload starts until it returns. The worker stops
//! at once on `stop`, without waiting for a reload in progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs a reload; `Err` carries the detail, which goes to the log only.
pub type ReloadFn = dyn Fn() -> Result<(), String> + Send + Sync;

/// Told the outcome of every reload, including one that timed out or
/// panicked (`credwatch_config_last_reload_successful`).
pub type ReportFn = dyn Fn(bool) + Send + Sync;

/// How long a reload may take before it is reported failed.
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(30);

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
    /// The worker task, taken by [`Reloader::join`].
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Reloader {
    /// Starts the worker on the current runtime; it stops with `stop`.
    pub fn spawn(
        reload: Arc<ReloadFn>,
        report: Arc<ReportFn>,
        stop: CancellationToken,
        deadline: Duration,
    ) -> Reloader {
        let (done, _) = watch::channel((0, true));
        let inner = Arc::new(Inner {
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            done,
            worker: Mutex::new(None),
        });
        let worker = inner.clone();
        let task = tokio::spawn(async move {
            let mut served = 0u64;
            // A reload past its deadline, still running on its thread.
            let mut overdue: Option<JoinHandle<Result<(), String>>> = None;
            loop {
                let target = worker.requested.load(Ordering::Acquire);
                if target > served {
                    let ok = match overdue.take() {
                        Some(late) if !late.is_finished() => {
                            tracing::error!(
                                "configuration reload refused: the previous one is still blocked (reading a file?); keeping the running configuration"
                            );
                            overdue = Some(late);
                            false
                        }
                        _ => {
                            let reload = reload.clone();
                            let mut task = tokio::task::spawn_blocking(move || reload());
                            tokio::select! {
                                _ = stop.cancelled() => break,
                                result = tokio::time::timeout(deadline, &mut task) => match result {
                                    Ok(Ok(result)) => result.is_ok(),
                                    Ok(Err(e)) => {
                                        tracing::error!("configuration reload panicked: {e}");
                                        false
                                    }
                                    Err(_) => {
                                        tracing::error!(
                                            "configuration reload did not finish within {deadline:?} (a file that blocks?); keeping the running configuration"
                                        );
                                        overdue = Some(task);
                                        false
                                    }
                                },
                            }
                        }
                    };
                    report(ok);
                    served = target;
                    worker.done.send_replace((served, ok));
                    continue;
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = worker.wake.notified() => {}
                    // A reload that overran its deadline and has now
                    // returned: its outcome is the state of things (it may
                    // have applied a config), so it is reported too.
                    late = async {
                        match overdue.as_mut() {
                            Some(task) => task.await,
                            None => std::future::pending().await,
                        }
                    }, if overdue.is_some() => {
                        overdue = None;
                        let ok = matches!(late, Ok(Ok(())));
                        tracing::warn!(ok, "a configuration reload that overran its deadline has returned");
                        report(ok);
                    }
                }
            }
            // Stopped: every waiter, now and later, gets a failure.
            worker.done.send_replace((u64::MAX, false));
        });
        *inner.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Reloader { inner }
    }

    /// Waits for the worker to end (after `stop`); a reload blocked on its
    /// thread is not waited for.
    pub async fn join(&self) {
        let task = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
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
            Arc::new(|_| {}),
            stop.clone(),
            RELOAD_DEADLINE,
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
        let reported = Arc::new(Mutex::new(Vec::new()));
        let r = reported.clone();
        let reloader = Reloader::spawn(
            Arc::new(|| Err("bad".into())),
            Arc::new(move |ok| r.lock().expect("lock").push(ok)),
            stop.clone(),
            RELOAD_DEADLINE,
        );
        assert!(!reloader.reload().await);
        assert_eq!(*reported.lock().expect("lock"), [false]);
        stop.cancel();
        reloader.join().await;
    }

    /// A reload blocked on its thread (a read that never returns) is
    /// reported failed at its deadline, refuses the next request promptly
    /// while it is still blocked, and does not hold up the worker's stop.
    /// Once it returns, reloads work again.
    #[tokio::test]
    async fn a_blocked_reload_fails_at_its_deadline_and_never_holds_up_a_stop() {
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let reported = Arc::new(Mutex::new(Vec::new()));
        let r = reported.clone();
        let stop = CancellationToken::new();
        let reloader = Reloader::spawn(
            Arc::new(move || {
                if first.swap(false, Ordering::SeqCst) {
                    // Blocks until the test releases it.
                    let _ = blocked.lock().expect("lock").recv();
                }
                Ok(())
            }),
            Arc::new(move |ok| r.lock().expect("lock").push(ok)),
            stop.clone(),
            Duration::from_millis(200),
        );
        assert!(!reloader.reload().await, "past its deadline: failed");
        assert!(!reloader.reload().await, "still blocked: refused");
        assert_eq!(*reported.lock().expect("lock"), [false, false]);
        release.send(()).expect("release");
        // Its late success is reported (it applied a config).
        let reported_late = tokio::time::timeout(Duration::from_secs(30), async {
            while reported.lock().expect("lock").len() < 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(reported_late.is_ok());
        assert_eq!(*reported.lock().expect("lock"), [false, false, true]);
        // The blocked one returns; the next reload works (hang guard only).
        let ok = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if reloader.reload().await {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(ok, Ok(true));
        // A stop during a blocked reload ends the worker at once.
        let (_release, blocked) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let stop = CancellationToken::new();
        let wedged = Reloader::spawn(
            Arc::new(move || {
                let _ = blocked.lock().expect("lock").recv();
                Ok(())
            }),
            Arc::new(|_| {}),
            stop.clone(),
            RELOAD_DEADLINE,
        );
        wedged.trigger();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), wedged.join())
            .await
            .expect("the worker ends while its reload is blocked");
        drop(_release);
    }
}
