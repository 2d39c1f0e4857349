//! Build facts for `credwatch --version` (as Prometheus' tools print them):
//! the toolchain (`rustc --version`) and the build date. The date is
//! `SOURCE_DATE_EPOCH` when set (reproducible builds), else the time this
//! script last ran (Cargo re-runs it when a file of the package changes).
//! The revision comes from `CREDWATCH_REVISION` (see `src/lib.rs`).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    // No `rerun-if` lines: Cargo then re-runs this whenever a file of the
    // package changes, so the date follows the sources being built.

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let toolchain = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CREDWATCH_TOOLCHAIN={toolchain}");

    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=CREDWATCH_BUILD_DATE={}", utc(epoch));
}

/// `YYYYMMDD-HH:MM:SS` (UTC), the format of Prometheus' build date.
fn utc(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
