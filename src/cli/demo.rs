//! `credwatch demo` and the simulator `check --demo` runs against; without
//! the `demo` cargo feature, a message that this build has no demo (exit 2).

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::config::Config;

/// What `demo` and `check --demo` say in a build without the `demo` cargo
/// feature (exit 2: the command cannot be run as asked).
#[cfg(not(feature = "demo"))]
pub(super) const NO_DEMO: &str = "this credwatch was built without the `demo` cargo feature \
     (`cargo build --no-default-features`), so it has no built-in simulator and no demo; \
     build it with the default features (`cargo build --release`) or use the container image";

/// `credwatch demo`.
#[cfg(feature = "demo")]
pub(super) async fn demo(listen: SocketAddr, enable_lifecycle: bool) -> ExitCode {
    crate::demo::run(listen, enable_lifecycle).await
}

#[cfg(not(feature = "demo"))]
pub(super) async fn demo(_listen: SocketAddr, _enable_lifecycle: bool) -> ExitCode {
    eprintln!("credwatch demo: {NO_DEMO}");
    ExitCode::from(2)
}

/// The simulator `check --demo` runs against, stopped when the check is done.
#[cfg(feature = "demo")]
pub(super) type DemoUpstreams = credwatch_sim::Simulator;
/// Without the `demo` feature there is no simulator (`demo_check_config`
/// never returns one).
#[cfg(not(feature = "demo"))]
pub(super) enum DemoUpstreams {}

/// The demo's config against a freshly started simulator, for `check --demo`.
#[cfg(feature = "demo")]
pub(super) async fn demo_check_config() -> Result<(Config, DemoUpstreams), ExitCode> {
    let sim = match credwatch_sim::Simulator::start(credwatch_sim::World::demo()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("credwatch check --demo: cannot start the simulator: {e}");
            return Err(ExitCode::from(1));
        }
    };
    match crate::demo::config(&sim) {
        Ok(c) => Ok((c, sim)),
        Err(e) => {
            eprintln!("credwatch check --demo: {e}");
            sim.shutdown().await;
            Err(ExitCode::from(1))
        }
    }
}

#[cfg(not(feature = "demo"))]
pub(super) async fn demo_check_config() -> Result<(Config, DemoUpstreams), ExitCode> {
    eprintln!("credwatch check --demo: {NO_DEMO}");
    Err(ExitCode::from(2))
}

#[cfg(feature = "demo")]
pub(super) async fn stop_demo(sim: DemoUpstreams) {
    sim.shutdown().await;
}

#[cfg(not(feature = "demo"))]
pub(super) async fn stop_demo(sim: DemoUpstreams) {
    match sim {}
}
