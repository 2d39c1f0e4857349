//! `credwatch calibrate`: one permission probe with two keys, whether it
//! tells them apart, and the result recorded in `calibration_file:`.

use std::path::Path;
use std::process::ExitCode;

use super::{Output, load_off_runtime, off_runtime};

pub(super) async fn calibrate(
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
