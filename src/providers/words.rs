//! The words `credwatch check` uses around every explanation: where the
//! operator puts a new secret, dates, how a console names a permission, and
//! the citation of the evidence behind a stated cause.

use crate::providers::Credential;
use crate::section::SecretSource;

/// Where the operator has to put the new secret.
pub fn source(cred: &Credential) -> String {
    match &cred.secret().source {
        SecretSource::Literal => "the config file".into(),
        SecretSource::Env(v) => {
            format!("the environment variable `{v}` (restart credwatch after changing it)")
        }
        SecretSource::File(p) => format!(
            "the file `{}` (credwatch re-reads it on change)",
            p.display()
        ),
    }
}

/// A Unix time from upstream as an RFC 3339 date; what no calendar date
/// can show (past 9999-12-31, before 1970) as what it is, with the number.
pub fn date(unix: i64) -> String {
    match u64::try_from(unix) {
        Ok(secs) if secs <= LAST_SHOWN_SECS => {
            time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        }
        Ok(_) => format!("after 9999-12-31 (unix time {unix})"),
        Err(_) => format!("before 1970-01-01 (unix time {unix})"),
    }
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 (and `humantime`) can write.
const LAST_SHOWN_SECS: u64 = 253_402_300_799;

/// A point in time as an RFC 3339 date, never failing: `humantime` returns
/// `fmt::Error` past year 9999, which `to_string` turns into a panic.
pub fn time(t: std::time::SystemTime) -> String {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= LAST_SHOWN_SECS => humantime::format_rfc3339_seconds(t).to_string(),
        Ok(d) => format!("after 9999-12-31 (unix time {})", d.as_secs()),
        Err(_) => "before 1970-01-01".to_string(),
    }
}

/// Where `docs/upstream-evidence.md` records the evidence for a stated cause.
pub fn cite(anchor: &str) -> String {
    format!(" (evidence: docs/upstream-evidence.md#{anchor})")
}

/// A 0–1 share as a whole percentage, rounded down, so a quota never reads
/// as at the alert threshold, or as used up, before it is.
pub fn percent(share: f64) -> u64 {
    (share * 100.0).floor().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_no_calendar_can_show_are_shown_as_what_they_are() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(date(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(
            date(253_402_300_800),
            "after 9999-12-31 (unix time 253402300800)"
        );
        // The value a hostile fake sent (year ~11476).
        assert_eq!(
            date(300_000_000_000),
            "after 9999-12-31 (unix time 300000000000)"
        );
        assert_eq!(
            date(i64::MAX),
            format!("after 9999-12-31 (unix time {})", i64::MAX)
        );
        assert_eq!(date(-1), "before 1970-01-01 (unix time -1)");
        assert_eq!(
            date(i64::MIN),
            format!("before 1970-01-01 (unix time {})", i64::MIN)
        );
        let far = std::time::UNIX_EPOCH + std::time::Duration::from_secs(300_000_000_000);
        assert_eq!(time(far), "after 9999-12-31 (unix time 300000000000)");
    }
}
