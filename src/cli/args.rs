//! The command-line interface as clap reads it: [`Cli`], its [`Command`]s,
//! their flags (Prometheus-style names, the old ones as aliases), and the
//! values they take ([`Output`], [`LogFormat`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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

pub(super) fn parse_log_level(s: &str) -> Result<String, String> {
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
