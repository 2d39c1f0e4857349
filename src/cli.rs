//! The command line: `serve`, `validate`, `demo`, `check`, `calibrate`,
//! `healthcheck`, `completions`, `man`.
//!
//! Flags follow the Prometheus style (`--config.file`, `--web.listen-address`,
//! `--log.level`, `--log.format`); the older `--config`, `--listen`,
//! `--log-level` and `--log-format` are aliases.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use std::io::Write as _;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError, ProcessEnv};
// The daemon's entry points, where scripts and tests have always found them.
pub use crate::daemon::{Listeners, run_daemon, run_daemon_with, shutdown_signal};

/// `0.0.0.0:9863`: every interface, credwatch's port.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9863);

#[derive(Parser, Debug)]
#[command(
    name = "credwatch",
    version,
    about = "Watches ElevenLabs and Twilio credentials and exports their health to Prometheus"
)]
pub struct Cli {
    /// Log format: `logfmt`, `json`, or `text` (for people; coloured only
    /// when stderr is a terminal and NO_COLOR is unset).
    #[arg(
        long = "log.format",
        visible_alias = "log-format",
        global = true,
        value_enum,
        default_value_t = LogFormat::Logfmt,
        env = "CREDWATCH_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`) or a filter such
    /// as `info,credwatch=debug`.
    #[arg(
        long = "log.level",
        visible_alias = "log-level",
        global = true,
        default_value = "info",
        env = "CREDWATCH_LOG",
        value_parser = parse_log_level
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `ts=… level=… target=… message=… key=value …`, one event a line.
    Logfmt,
    /// One JSON object a line.
    Json,
    /// Human-readable; ANSI colour only on a terminal without NO_COLOR.
    Text,
}

fn parse_log_level(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| {
            format!("not a log level or filter ({e}); use error, warn, info, debug or trace")
        })
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: background checks, /metrics, /health.
    Serve {
        /// Config file.
        #[arg(
            long = "config.file",
            visible_alias = "config",
            env = "CREDWATCH_CONFIG"
        )]
        config: PathBuf,
        /// Listen address (overrides `listen:` in the config; default 0.0.0.0:9863;
        /// `:PORT` is every interface).
        #[arg(long = "web.listen-address", visible_alias = "listen", value_parser = crate::listen::parse)]
        listen: Option<SocketAddr>,
        /// exporter-toolkit web config: TLS, client certificates, basic auth, headers.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
        /// Extra plain-HTTP listener serving only /livez, /readyz and /health
        /// (for kubelet probes when the main port needs TLS or auth).
        #[arg(long = "probe.listen-address", value_parser = crate::listen::parse)]
        probe_listen_address: Option<SocketAddr>,
        /// Allow `POST /-/reload` (otherwise 403; SIGHUP always reloads).
        #[arg(long = "web.enable-lifecycle")]
        web_enable_lifecycle: bool,
    },
    /// Load and validate a config (secrets resolved, nothing sent upstream).
    Validate {
        /// Config file.
        #[arg(
            long = "config.file",
            visible_alias = "config",
            env = "CREDWATCH_CONFIG"
        )]
        config: PathBuf,
    },
    /// Run the daemon against a built-in simulator of both APIs: no account needed.
    Demo {
        /// Listen address.
        #[arg(
            long = "web.listen-address",
            visible_alias = "listen",
            default_value = "127.0.0.1:9863",
            value_parser = crate::listen::parse
        )]
        listen: SocketAddr,
        /// Allow `POST /-/reload` (otherwise 403; SIGHUP always reloads).
        #[arg(long = "web.enable-lifecycle")]
        web_enable_lifecycle: bool,
    },
    /// Run every check once and explain each problem with its evidence and fix.
    /// Exit 0 when every credential is healthy, 1 when any is not (or, with
    /// --fail-on-warning, when any warning is marked `!`), 2 on config errors.
    Check {
        /// Config file.
        #[arg(
            long = "config.file",
            visible_alias = "config",
            env = "CREDWATCH_CONFIG",
            required_unless_present = "demo"
        )]
        config: Option<PathBuf>,
        /// Check the demo credentials (those of `credwatch demo`) against the
        /// built-in simulator instead of a config: no account needed.
        /// (`--config.file` given on the command line is an error with it;
        /// CREDWATCH_CONFIG is ignored.)
        #[arg(long)]
        demo: bool,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Check only this credential.
        #[arg(long, conflicts_with = "call_path")]
        credential: Option<String>,
        /// Check only this call path (and its two credentials); exit 1 when
        /// it is not ready.
        #[arg(long = "call-path")]
        call_path: Option<String>,
        /// Exit 1 on a warning too (quota at or above the alert threshold, low
        /// balance, Trial account, billing at risk, a check without an answer).
        #[arg(long)]
        fail_on_warning: bool,
    },
    /// Test whether a permission probe tells a key with the permission from one without.
    Calibrate {
        /// Config file.
        #[arg(
            long = "config.file",
            visible_alias = "config",
            env = "CREDWATCH_CONFIG"
        )]
        config: PathBuf,
        /// The permission whose probe to test, e.g. `convai_write`.
        #[arg(long)]
        permission: String,
        /// Environment variable holding a key that HAS the permission.
        #[arg(long)]
        with_key_env: String,
        /// Environment variable holding a key that LACKS the permission.
        #[arg(long)]
        without_key_env: String,
        /// ElevenLabs base URL (default: the first ElevenLabs credential's, else the public API).
        #[arg(long)]
        base_url: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// GET a local /livez and exit 0 if it answers 200 (for Docker HEALTHCHECK).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9863/livez")]
        url: String,
    },
    /// Print a shell completion script, e.g. `credwatch completions bash > /etc/bash_completion.d/credwatch`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `credwatch man > /usr/local/share/man/man1/credwatch.1`.
    Man,
}

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

async fn serve(
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

async fn healthcheck(url: &str) -> ExitCode {
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

/// What `check` checks: a config file, or the demo's credentials against
/// the built-in simulator.
enum CheckSource {
    File(PathBuf),
    Demo,
}

async fn check(
    source: CheckSource,
    output: Output,
    only: crate::check::Only<'_>,
    fail_on_warning: bool,
) -> ExitCode {
    let (config, sim) = match &source {
        CheckSource::File(path) => match load_off_runtime(path).await {
            Err(code) => return code,
            Ok(Ok(c)) => (c, None),
            Ok(Err(e)) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        CheckSource::Demo => match demo_check_config().await {
            Ok((c, sim)) => (c, Some(sim)),
            Err(code) => return code,
        },
    };
    let code = check_config(&source, &config, output, only, fail_on_warning).await;
    if let Some(sim) = sim {
        stop_demo(sim).await;
    }
    code
}

/// What `demo` and `check --demo` say in a build without the `demo` cargo
/// feature (exit 2: the command cannot be run as asked).
#[cfg(not(feature = "demo"))]
const NO_DEMO: &str = "this credwatch was built without the `demo` cargo feature \
     (`cargo build --no-default-features`), so it has no built-in simulator and no demo; \
     build it with the default features (`cargo build --release`) or use the container image";

/// `credwatch demo`.
#[cfg(feature = "demo")]
async fn demo(listen: SocketAddr, enable_lifecycle: bool) -> ExitCode {
    crate::demo::run(listen, enable_lifecycle).await
}

#[cfg(not(feature = "demo"))]
async fn demo(_listen: SocketAddr, _enable_lifecycle: bool) -> ExitCode {
    eprintln!("credwatch demo: {NO_DEMO}");
    ExitCode::from(2)
}

/// The simulator `check --demo` runs against, stopped when the check is done.
#[cfg(feature = "demo")]
type DemoUpstreams = credwatch_sim::Simulator;
/// Without the `demo` feature there is no simulator (`demo_check_config`
/// never returns one).
#[cfg(not(feature = "demo"))]
enum DemoUpstreams {}

/// The demo's config against a freshly started simulator, for `check --demo`.
#[cfg(feature = "demo")]
async fn demo_check_config() -> Result<(Config, DemoUpstreams), ExitCode> {
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
async fn demo_check_config() -> Result<(Config, DemoUpstreams), ExitCode> {
    eprintln!("credwatch check --demo: {NO_DEMO}");
    Err(ExitCode::from(2))
}

#[cfg(feature = "demo")]
async fn stop_demo(sim: DemoUpstreams) {
    sim.shutdown().await;
}

#[cfg(not(feature = "demo"))]
async fn stop_demo(sim: DemoUpstreams) {
    match sim {}
}

async fn check_config(
    source: &CheckSource,
    config: &Config,
    output: Output,
    only: crate::check::Only<'_>,
    fail_on_warning: bool,
) -> ExitCode {
    let origin = || match source {
        CheckSource::File(path) => path.display().to_string(),
        CheckSource::Demo => "the demo".to_owned(),
    };
    if let crate::check::Only::Credential(name) = only
        && config.credential(name).is_none()
    {
        let names: Vec<&str> = config.credentials.iter().map(|c| c.name.as_str()).collect();
        eprintln!(
            "credwatch check: no credential named `{name}` in {} (configured: {})",
            origin(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    if let crate::check::Only::CallPath(name) = only
        && !config.call_paths.iter().any(|p| p.name == name)
    {
        let names: Vec<&str> = config.call_paths.iter().map(|p| p.name.as_str()).collect();
        eprintln!(
            "credwatch check: no call path named `{name}` in {} (configured: {})",
            origin(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::from(2);
    }
    let report = match crate::check::run(config, only).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("credwatch check: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = match output {
        Output::Json => serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(stdout)),
        Output::Text => crate::render::text::render_text(
            &report,
            &crate::render::text::Style::detect(),
            &mut stdout,
        ),
    };
    if let Err(e) = written {
        eprintln!("credwatch check: cannot write the report: {e}");
        return ExitCode::from(1);
    }
    if report.ok && !(fail_on_warning && report.warnings() > 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn calibrate(
    path: &Path,
    permission: &str,
    with_env: &str,
    without_env: &str,
    base_url: Option<String>,
    output: Output,
) -> ExitCode {
    let config = match load_off_runtime(path).await {
        Err(code) => return code,
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let key = |var: &str| -> Option<crate::secret::Secret> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Some(crate::secret::Secret::new(v.trim())),
            _ => {
                eprintln!("credwatch calibrate: environment variable `{var}` is not set or empty");
                None
            }
        }
    };
    let (Some(with), Some(without)) = (key(with_env), key(without_env)) else {
        return ExitCode::from(2);
    };
    // The same rules as the config's `base_url` (no insecure opt-in here:
    // configure the credential with `allow_insecure_http` and omit the flag).
    let base_url = match base_url
        .map(|u| crate::config::check_base_url(&u, false))
        .transpose()
    {
        Ok(checked) => checked.map(|c| c.url),
        Err(why) => {
            eprintln!("credwatch calibrate: --base-url {why}");
            return ExitCode::from(2);
        }
    };
    let probe = match crate::check::calibrate::probe(&config.shared, permission) {
        Ok(probe) => probe,
        Err(why) => {
            eprintln!("credwatch calibrate: {why}");
            return ExitCode::from(2);
        }
    };
    let base_url =
        base_url.unwrap_or_else(|| crate::check::calibrate::base_url(&config.credentials));
    match crate::check::calibrate::run(&probe, base_url.trim_end_matches('/'), with, without).await
    {
        Ok(c) => {
            match output {
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&c).unwrap_or_default())
                }
                Output::Text => print!("{}", crate::check::calibrate::render_text(&c)),
            }
            // Kept for `serve` and `check` when the config names a `calibration_file:`.
            let el = &config.shared.elevenlabs;
            if let Some(file) = &el.calibration_file {
                let job = (el.clone(), c.clone(), base_url.clone(), file.clone());
                let recorded = off_runtime(move || {
                    let (el, c, base_url, file) = job;
                    crate::check::calibrate::record(&el, &c, &base_url, &file)
                })
                .await;
                match recorded {
                    Err(code) => return code,
                    Ok(Ok(())) => {
                        let line = format!(
                            "Recorded in {} (calibration_file): `serve` and `check` read it at start and on reload.",
                            file.display()
                        );
                        match output {
                            Output::Json => eprintln!("{line}"),
                            Output::Text => println!("{line}"),
                        }
                    }
                    Ok(Err(e)) => {
                        eprintln!(
                            "credwatch calibrate: cannot record the result in calibration_file `{}`: {e}",
                            file.display()
                        );
                        return ExitCode::from(1);
                    }
                }
            }
            if c.discriminates {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("credwatch calibrate: {e}");
            ExitCode::from(1)
        }
    }
}
