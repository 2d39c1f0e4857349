//! `credwatch demo`: the real daemon against the built-in simulator of both
//! APIs (the `credwatch-sim` crate), with healthy and broken credentials of
//! each kind, so a newcomer sees every metric and a 503 on `/health` without
//! any account.
//!
//! Compiled only with the `demo` cargo feature (on by default); nothing else
//! in credwatch uses the simulator. Without it, `cli` answers `demo` and
//! `check --demo` with a message saying so (exit 2).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use credwatch_sim::{Simulator, World};

use crate::config::Config;

/// Parses the demo config (`credwatch_sim::demo::config_yaml`: every
/// fake's cast against its listener, and the call paths). It is generated,
/// so it is valid by construction; an error here is a bug worth a clear
/// message.
pub fn config(sim: &Simulator) -> Result<Config, crate::config::ConfigError> {
    parse(&credwatch_sim::demo::config_yaml(sim))
}

fn parse(yaml: &str) -> Result<Config, crate::config::ConfigError> {
    Config::from_yaml(yaml, Path::new("<demo>"), &HashMap::<String, String>::new())
}

pub async fn run(listen: SocketAddr, enable_lifecycle: bool) -> ExitCode {
    let sim = match Simulator::start(World::demo()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("credwatch demo: cannot start the simulator: {e}");
            return ExitCode::from(1);
        }
    };
    let yaml = credwatch_sim::demo::config_yaml(&sim);
    let config = match parse(&yaml) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("credwatch demo: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match crate::listen::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("credwatch demo: cannot listen on {listen}: {e} (try --listen 127.0.0.1:0)");
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    println!(
        "credwatch demo: {n} credentials against simulated APIs ({apis}).\n\
         Some are healthy, some broken on purpose (revoked key, missing convai_write, exhausted quota,\n\
         blocked account, rotated Twilio token, suspended account). Checks run every 10s.\n\n\
         \x20 http://{addr}/          status page: what is broken, the evidence and the fix\n\
         \x20 http://{addr}/metrics   Prometheus metrics\n\
         \x20 http://{addr}/health    503 while a critical credential is broken (try ?credential=el-agent-prod)\n\
         \x20 http://{addr}/livez     liveness, never depends on credentials\n\n\
         Press Ctrl-C to stop.",
        n = config.credentials.len(),
        apis = sim
            .urls()
            .iter()
            .map(|(p, url)| format!("{p} at {url}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let code = crate::daemon::run_daemon_with(
        crate::daemon::Listeners {
            enable_lifecycle,
            ..crate::daemon::Listeners::plain(listener)
        },
        config,
        move || parse(&yaml),
        crate::daemon::shutdown_signal(),
    )
    .await;
    sim.shutdown().await;
    code
}
