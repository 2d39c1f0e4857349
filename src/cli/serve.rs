//! `credwatch serve` (the daemon, with its web config and listeners) and
//! `credwatch healthcheck` (the probe for container runtimes).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{DEFAULT_LISTEN, off_runtime};
use crate::config::{Config, ProcessEnv};
use crate::daemon::{Listeners, run_daemon_with, shutdown_signal};

pub(super) async fn serve(
    path: &Path,
    config: Config,
    listen: Option<SocketAddr>,
    web_config: Option<&Path>,
    probe: Option<SocketAddr>,
    enable_lifecycle: bool,
) -> ExitCode {
    let web_config = web_config.map(Path::to_path_buf);
    let web = match off_runtime(move || {
        web_config
            .as_deref()
            .map(crate::web::WebConfig::new)
            .transpose()
    })
    .await
    {
        Err(code) => return code,
        Ok(Ok(w)) => w.map(Arc::new),
        Ok(Err(e)) => {
            eprintln!("credwatch: invalid web config: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = listen.or(config.listen).unwrap_or(DEFAULT_LISTEN);
    let bind = |addr: SocketAddr| async move {
        crate::listen::bind(addr).await.map_err(|e| {
            eprintln!("credwatch: cannot listen on {addr}: {e}");
            ExitCode::from(1)
        })
    };
    let listener = match bind(addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let probe_listener = match probe {
        Some(p) => match bind(p).await {
            Ok(l) => Some(l),
            Err(code) => return code,
        },
        None => None,
    };
    tracing::info!(
        listen = %addr,
        // Only when set: never `probe_listen=None`.
        probe_listen = probe.map(tracing::field::display),
        tls = web.as_ref().is_some_and(|w| w.current().tls.is_some()),
        credentials = config.credentials.len(),
        config = %path.display(),
        version = crate::VERSION,
        "credwatch started"
    );
    let reload_path = path.to_path_buf();
    run_daemon_with(
        Listeners {
            main: listener,
            probe: probe_listener,
            web,
            enable_lifecycle,
        },
        config,
        move || Config::load(&reload_path, &ProcessEnv),
        shutdown_signal(),
    )
    .await
}

pub(super) async fn healthcheck(url: &str) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(_) => return ExitCode::from(1),
    };
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("credwatch healthcheck: {url} answered {}", r.status());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("credwatch healthcheck: {url}: {}", e.without_url());
            ExitCode::from(1)
        }
    }
}
