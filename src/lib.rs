//! credwatch watches ElevenLabs and Twilio credentials in the background and
//! exports what it finds to Prometheus, Kubernetes probes and people.
//!
//! # Layout
//!
//! - [`config`]: the YAML file as written ([`config::raw`]) and validated into
//!   the typed [`config::Config`] every other module works with; each
//!   provider validates its own section.
//! - [`section`]: what every config section is made of (the validator,
//!   timing, base URLs, secrets from a literal, a variable or a file). A leaf.
//! - [`exposition`]: the Prometheus text format's pieces (families, the
//!   sample writer, escaping). A leaf.
//! - [`secret`]: the one type that holds a secret; it redacts itself and
//!   zeroes its memory on drop.
//! - [`providers`]: one folder per upstream (ElevenLabs, Twilio) behind
//!   plain traits ([`providers::Kind`], [`providers::Settings`] and those of
//!   its associated types), registered as a variant in the enums of
//!   `providers/registry.rs`. Each owns its
//!   config section, its allow-list arm (with each endpoint's body cap), its checks (GET requests through
//!   [`providers::http::Upstream`], which cannot send anything else) and
//!   the classification of every answer into [`outcome`] facts, its metric
//!   families and its explanations.
//! - [`outcome`] (`providers::outcome`): the vocabulary every provider answers
//!   in (facts, reasons, problems, evidence) and `clean`, the cap on upstream
//!   strings.
//! - [`scheduler`]: runs each credential's checks on its interval, with
//!   jitter, backoff and a per-host concurrency cap; polls secret files on a
//!   blocking thread.
//! - [`verdict`]: what is known about one credential, how facts change it,
//!   and the one "is this credential usable?" rule. Pure: no rendering.
//! - [`call_paths`]: the application's outbound call, link by link: its
//!   config, the one "is this path ready?" rule, its metric lines and its
//!   part of `check`'s report (the links' requests are the providers',
//!   `providers::check_call_path`).
//! - [`render`]: what people and clients read, in one place: the `/health`
//!   entries (JSON), the status page `/` (HTML), `check`'s report (its JSON
//!   schema) and its text. It uses only the domain, below `state`,
//!   `server` and `check`, which hand it what to render.
//! - [`metrics`]: Prometheus text rendering of a credential, the exposition
//!   store that keeps every credential's `/metrics` lines and `/health`
//!   entry (with gzip), and credwatch's own metrics.
//! - [`state`]: one slot per credential and the readiness latch. Written by
//!   the scheduler, read by the HTTP server through the pre-rendered store.
//! - [`server`]: `/metrics`, `/health`, `/livez`, `/readyz`, `/` (the page
//!   is [`render::page`]'s); its connection-level defences in
//!   `server::guard`.
//! - [`daemon`]: the scheduler and the server wired together for `serve` and
//!   `demo`: `run_daemon_with(listeners, config, reload, shutdown)`.
//! - `demo`: `credwatch demo` and `check --demo`, against the simulator
//!   (the `credwatch-sim` crate). Only with the `demo` cargo feature (on by
//!   default); no other module uses the simulator.
//! - [`reload`]: config reloads (SIGHUP, `POST /-/reload`), coalesced, with a deadline.
//! - [`web`]: `--web.config.file` (exporter-toolkit format): TLS, mTLS, basic
//!   auth, headers; re-read on change on a blocking thread.
//! - [`check`]: `credwatch check`, every probe once with explanations and fixes.
//! - [`cli`]: the commands, one module each; `src/main.rs` only calls
//!   [`cli::main`].

pub mod call_paths;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod exposition;
pub mod listen;
pub mod metrics;
pub mod providers;
pub mod reload;
pub mod render;
pub mod scheduler;
pub mod secret;
pub mod section;
pub mod server;
pub mod state;
pub mod verdict;
pub mod web;

/// The vocabulary every provider answers in (it lives with the providers).
pub use providers::outcome;

/// The crate version, as exported in `credwatch_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the binary was built from, when the build knew it.
pub const REVISION: &str = match option_env!("CREDWATCH_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// The User-Agent sent upstream, so providers can tell our probes apart.
pub const USER_AGENT: &str = concat!("credwatch/", env!("CARGO_PKG_VERSION"));

/// The toolchain that built the binary (`rustc --version`, from `build.rs`).
pub const TOOLCHAIN: &str = env!("CREDWATCH_TOOLCHAIN");

/// When the binary was built, UTC, `YYYYMMDD-HH:MM:SS` (from `build.rs`;
/// `SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("CREDWATCH_BUILD_DATE");

/// `credwatch --version`, in the layout of Prometheus' tools.
pub fn long_version() -> String {
    format!(
        "credwatch, version {VERSION} (revision: {REVISION})\n  build date: {BUILD_DATE}\n  toolchain:  {TOOLCHAIN}\n  platform:   {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
