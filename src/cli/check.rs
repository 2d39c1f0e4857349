//! `credwatch check`: every probe of a config file's credentials (or the
//! demo's) once, then the report as text or JSON, and the exit code.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::demo::{demo_check_config, stop_demo};
use super::{Output, load_off_runtime};
use crate::config::Config;

/// What `check` checks: a config file, or the demo's credentials against
/// the built-in simulator.
pub(super) enum CheckSource {
    File(PathBuf),
    Demo,
}

pub(super) async fn check(
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

pub(super) async fn check_config(
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
