//! The command line: `serve`, `validate`, `demo`, `check`, `calibrate`,
//! `healthcheck`, `completions`, `man`.
//!
//! Flags follow the Prometheus style (`--config.file`, `--web.listen-address`,
//! `--log.level`, `--log.format`); the older `--config`, `--listen`,
//! `--log-level` and `--log-format` are aliases.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
//!
//! This module parses the arguments (`args`), sets up logging and the
//! runtime and dispatches; each command is a module of its own (`serve` with
//! `healthcheck`, `check`, `demo`, `calibrate`); `validate`, `completions`
//! and `man` are a few lines here.

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::config::{Config, ConfigError, ProcessEnv};
// The daemon's entry points, where scripts and tests have always found them.
pub use crate::daemon::{Listeners, run_daemon, run_daemon_with, shutdown_signal};

mod args;
mod calibrate;
mod check;
mod demo;
mod serve;

pub use args::{Cli, Command, DEFAULT_LISTEN, LogFormat, Output};
use calibrate::calibrate;
use check::{CheckSource, check};
use demo::demo;
use serve::{healthcheck, serve};

/// Up to this many credentials, `serve` runs on a single-threaded runtime.
pub const SINGLE_THREAD_CREDENTIALS: usize = 100;

pub fn main() -> ExitCode {
    // Before any secret is read: a core file would hold all of them.
    let core_dumps = crate::secret::disable_core_dumps();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, matches)) => {
            if let Some(("check", sub)) = matches.subcommand()
                && sub.get_flag("demo")
                && sub.value_source("config") == Some(clap::parser::ValueSource::CommandLine)
            {
                eprintln!(
                    "error: `credwatch check --demo` checks the built-in demo credentials; \
                     it takes no --config.file"
                );
                return ExitCode::from(2);
            }
            cli
        }
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayVersion => {
                    println!("{}", crate::long_version());
                    ExitCode::SUCCESS
                }
                clap::error::ErrorKind::DisplayHelp => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
            };
        }
    };
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man => return man(),
        _ => {}
    }
    init_tracing(cli.log_format, &cli.log_level);
    if let Err(e) = core_dumps {
        tracing::warn!("cannot disable core dumps (RLIMIT_CORE): {e}");
    }
    crate::providers::http::install_crypto_provider();
    // `serve` loads its config before the runtime exists: a small config runs
    // on one thread (no worker threads, no per-thread allocator arenas), a
    // large one on two workers so scrapes and probes run side by side.
    let mut preloaded = match &cli.command {
        Command::Serve { config, .. } => match load(config) {
            Ok(c) => Some(c),
            Err(code) => return code,
        },
        _ => None,
    };
    let small = preloaded
        .as_ref()
        .is_some_and(|c| c.credentials.len() <= SINGLE_THREAD_CREDENTIALS);
    let mut builder = if small {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("credwatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                config,
                listen,
                web_config_file,
                probe_listen_address,
                web_enable_lifecycle,
            } => {
                let Some(loaded) = preloaded.take() else {
                    return ExitCode::from(2);
                };
                serve(
                    &config,
                    loaded,
                    listen,
                    web_config_file.as_deref(),
                    probe_listen_address,
                    web_enable_lifecycle,
                )
                .await
            }
            Command::Validate { config } => off_runtime(move || validate(&config))
                .await
                .unwrap_or_else(|code| code),
            Command::Demo {
                listen,
                web_enable_lifecycle,
            } => demo(listen, web_enable_lifecycle).await,
            Command::Healthcheck { url } => healthcheck(&url).await,
            Command::Check {
                config,
                demo,
                output,
                credential,
                call_path,
                fail_on_warning,
            } => {
                let source = match (config, demo) {
                    (_, true) => CheckSource::Demo,
                    (Some(path), false) => CheckSource::File(path),
                    (None, false) => return ExitCode::from(2),
                };
                let only = match (&credential, &call_path) {
                    (Some(c), _) => crate::check::Only::Credential(c),
                    (None, Some(p)) => crate::check::Only::CallPath(p),
                    (None, None) => crate::check::Only::All,
                };
                check(source, output, only, fail_on_warning).await
            }
            Command::Calibrate {
                config,
                permission,
                with_key_env,
                without_key_env,
                base_url,
                output,
            } => {
                calibrate(
                    &config,
                    &permission,
                    &with_key_env,
                    &without_key_env,
                    base_url,
                    output,
                )
                .await
            }
            Command::Completions { .. } | Command::Man => ExitCode::SUCCESS,
        }
    });
    // Dropping a runtime waits for every blocking thread; a read blocked
    // on one (a file on a hung mount) must not keep the process alive.
    runtime.shutdown_timeout(crate::daemon::EXIT_GRACE);
    code
}

fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "credwatch", &mut std::io::stdout());
    ExitCode::SUCCESS
}

fn man() -> ExitCode {
    let cmd = Cli::command().version(crate::VERSION);
    match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credwatch man: {e}");
            ExitCode::from(1)
        }
    }
}

/// Whether text logs may carry ANSI colour: only when stderr is a terminal
/// and NO_COLOR is unset or empty (<https://no-color.org>). Pipes,
/// `kubectl logs` and log shippers get plain text.
pub fn log_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = match format {
        LogFormat::Logfmt => tracing_logfmt::builder()
            .subscriber_builder()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .try_init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(log_colour())
            .try_init(),
    };
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    match Config::load(path, &ProcessEnv) {
        Ok(config) => {
            for w in &config.warnings {
                tracing::warn!("{}: {}", path.display(), w);
            }
            Ok(config)
        }
        Err(e) => {
            eprintln!("credwatch: invalid configuration\n{e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs blocking file-system work (loading a config or a web config,
/// writing a calibration) on a blocking thread, never on the runtime's.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ExitCode> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        eprintln!("credwatch: {e}");
        ExitCode::from(1)
    })
}

/// [`Config::load`] on a blocking thread.
async fn load_off_runtime(path: &Path) -> Result<Result<Config, ConfigError>, ExitCode> {
    let path = path.to_path_buf();
    off_runtime(move || Config::load(&path, &ProcessEnv)).await
}

fn validate(path: &Path) -> ExitCode {
    match Config::load(path, &ProcessEnv) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("warning: {}: {}", path.display(), w);
            }
            println!(
                "{}: valid ({} credential{})",
                path.display(),
                config.credentials.len(),
                if config.credentials.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
