//! The daemon: the scheduler and the HTTP server over one [`State`], wired
//! once for `serve` and `demo` alike.
//!
//! [`run_daemon_with`] takes already-bound listeners, a reload function and a
//! shutdown future (the mini-redis `run(listener, shutdown)` shape), so tests
//! run the real daemon on `127.0.0.1:0` and stop it cleanly. On shutdown the
//! server drains its requests while the scheduler starts nothing new and
//! awaits the checks in flight. It never reads the process environment or
//! arguments: that is `cli`'s job.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::providers::http::Upstream;
use crate::reload::Reloader;
use crate::scheduler::{self, SchedulerHandle};
use crate::server::{self, App, Limits};
use crate::state::State;

/// Where the daemon serves.
pub struct Listeners {
    pub main: TcpListener,
    /// Plain HTTP, probes only.
    pub probe: Option<TcpListener>,
    pub web: Option<Arc<crate::web::WebConfig>>,
    /// `--web.enable-lifecycle`: `POST /-/reload` reloads (otherwise 403).
    pub enable_lifecycle: bool,
}

impl Listeners {
    /// One plain-HTTP listener, no probe listener, lifecycle API off.
    pub fn plain(main: TcpListener) -> Listeners {
        Listeners {
            main,
            probe: None,
            web: None,
            enable_lifecycle: false,
        }
    }
}

/// [`run_daemon_with`] on one plain-HTTP listener.
pub async fn run_daemon<F>(
    listener: TcpListener,
    config: Config,
    reload_config: F,
    shutdown: impl std::future::Future<Output = ()>,
) -> ExitCode
where
    F: Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync + 'static,
{
    run_daemon_with(Listeners::plain(listener), config, reload_config, shutdown).await
}

/// Runs the scheduler and the server until `shutdown` resolves (SIGTERM or
/// SIGINT for the binary); SIGHUP and (with `enable_lifecycle`)
/// `POST /-/reload` call `reload_config`, on a blocking thread, coalesced.
pub async fn run_daemon_with<F>(
    listeners: Listeners,
    config: Config,
    reload_config: F,
    shutdown: impl std::future::Future<Output = ()>,
) -> ExitCode
where
    F: Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync + 'static,
{
    let state = State::new(&config);
    let own = crate::metrics::own::Own::new();
    let upstream = match Upstream::new(
        config.max_concurrent_requests_per_host,
        Some(own.metrics.upstream_requests.clone()),
    ) {
        Ok(u) => Arc::new(u),
        Err(e) => {
            eprintln!("credwatch: cannot build the HTTP client: {e}");
            return ExitCode::from(1);
        }
    };
    let listen = config.listen;
    let scheduler: Arc<SchedulerHandle> = Arc::new(scheduler::spawn(
        Arc::new(config),
        state.clone(),
        own.clone(),
        upstream,
    ));
    let stop = tokio_util::sync::CancellationToken::new();
    let reloader = {
        let scheduler = scheduler.clone();
        let reload: Arc<crate::reload::ReloadFn> = Arc::new(move || match reload_config() {
            Ok(config) => {
                for w in &config.warnings {
                    tracing::warn!("{}: {}", config.source.display(), w);
                }
                if config.listen != listen {
                    tracing::warn!("`listen` changed; it takes effect at the next restart");
                }
                tracing::info!(
                    credentials = config.credentials.len(),
                    "configuration reloaded"
                );
                scheduler.reload(Arc::new(config));
                Ok(())
            }
            Err(e) => {
                tracing::error!("configuration reload failed, keeping the running one: {e}");
                Err(e.to_string())
            }
        });
        // Every outcome, a reload past its deadline included.
        let report = {
            let own = own.clone();
            Arc::new(move |ok: bool| own.set_reload_result(ok))
        };
        Reloader::spawn(reload, report, stop.clone(), crate::reload::RELOAD_DEADLINE)
    };
    let sighup = spawn_sighup(reloader.clone(), stop.clone());
    let app = Arc::new(App {
        state: state.clone(),
        own: own.clone(),
        reloader: Some(reloader.clone()),
        lifecycle: listeners.enable_lifecycle,
        web: listeners.web,
        probe_only: false,
    });
    let probe_server = listeners.probe.map(|probe| {
        let app = Arc::new(App {
            state,
            own,
            reloader: None,
            lifecycle: false,
            web: None,
            probe_only: true,
        });
        let stop = stop.clone();
        tokio::spawn(async move {
            server::run(probe, app, Limits::default(), stop.cancelled_owned()).await
        })
    });
    let main = server::run(
        listeners.main,
        app,
        Limits::default(),
        stop.clone().cancelled_owned(),
    );
    // On the signal the server drains its requests while the scheduler
    // starts no new checks and waits for the ones in flight (the reloader
    // holds a clone of its handle, so it stops through a shared reference).
    // The reload worker and the SIGHUP task stop with `stop`; a reload
    // blocked on its thread is left behind (`cli` does not wait for it).
    let trigger = async {
        shutdown.await;
        tracing::info!("shutting down");
        stop.cancel();
        scheduler.shutdown_within(scheduler::MAX_DRAIN).await;
        reloader.join().await;
        if let Some(task) = sighup {
            let _ = task.await;
        }
    };
    tokio::join!(main, trigger);
    if let Some(p) = probe_server {
        let _ = p.await;
    }
    ExitCode::SUCCESS
}

/// How long the process may take to stop after the daemon returns: what is
/// still running then (a read blocked on its thread) is abandoned.
pub const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(unix)]
fn spawn_sighup(
    reload: Reloader,
    stop: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    got = hup.recv() => {
                        if got.is_none() {
                            break;
                        }
                        tracing::info!("SIGHUP: reloading the configuration");
                        reload.trigger();
                    }
                }
            }
        })),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP: {e}");
            None
        }
    }
}

#[cfg(not(unix))]
fn spawn_sighup(
    _: Reloader,
    _: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    None
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
