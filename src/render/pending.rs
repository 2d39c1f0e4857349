//! Why a credential is pending ([`PendingWhy`]), in words: the sentence
//! `/health`, `check` and the log show, `check`'s headline and the fix.

use std::time::SystemTime;

use crate::outcome::Reason;
use crate::verdict::{PendingCause, PendingWhy};

impl PendingWhy {
    /// One sentence for `/health`, `check` and the log.
    pub fn message(&self) -> String {
        let what = match &self.permission {
            Some(p) => format!("whether `{p}` is granted"),
            None => "whether the credential authenticates".to_string(),
        };
        let since = |t: Option<SystemTime>| {
            t.map(|t| format!(" since {}", crate::providers::words::time(t)))
                .unwrap_or_default()
        };
        let mut m = match self.why {
            PendingCause::NotChecked => format!("not checked yet ({what}: `{}`)", self.check),
            PendingCause::SecretChanged => format!(
                "the secret changed{}; `{}` has not been asked about the new value yet",
                since(self.secret_changed),
                self.check
            ),
            PendingCause::UpstreamUnreachable => format!(
                "upstream unreachable{} (`{}`: {}): {what} is unknown",
                since(self.since),
                self.check,
                self.reason.map_or("no answer", Reason::as_str)
            ),
            PendingCause::UnexpectedResponse => format!(
                "no answer credwatch can classify{} (`{}`): {what} is unknown",
                since(self.since),
                self.check
            ),
            PendingCause::ProbeInconclusive => format!(
                "the probe `{}` is inconclusive{}: {what} is unknown",
                self.check,
                since(self.since)
            ),
        };
        if let Some(answer) = &self.answer {
            m.push_str(&format!("; last answer: {answer}"));
        }
        if self.why != PendingCause::SecretChanged
            && let Some(t) = self.secret_changed
        {
            m.push_str(&format!(
                "; the secret changed at {} and the new value is not confirmed yet",
                crate::providers::words::time(t)
            ));
        }
        m
    }

    /// A few words without times or answers (`check`'s headline; its
    /// findings carry the evidence).
    pub fn short(&self) -> String {
        match (self.why, &self.permission) {
            (PendingCause::NotChecked, _) => "not checked yet".into(),
            (PendingCause::SecretChanged, _) => {
                "the secret changed; the new value is not checked yet".into()
            }
            (PendingCause::UpstreamUnreachable, _) => format!(
                "upstream unreachable (`{}`: {})",
                self.check,
                self.reason.map_or("no answer", Reason::as_str)
            ),
            (PendingCause::UnexpectedResponse, _) => {
                format!("no answer credwatch can classify (`{}`)", self.check)
            }
            (PendingCause::ProbeInconclusive, Some(p)) => format!(
                "the probe `{}` is inconclusive: `{p}` unknown, run `credwatch calibrate`",
                self.check
            ),
            (PendingCause::ProbeInconclusive, None) => {
                format!("the probe `{}` is inconclusive", self.check)
            }
        }
    }

    /// What to do about it, where there is something to do.
    pub fn fix(&self) -> Option<&'static str> {
        match self.why {
            PendingCause::ProbeInconclusive => Some(
                "prove what the probe tells apart on this account with two keys, one with the permission and one without: `credwatch calibrate --config FILE --permission NAME --with-key-env A --without-key-env B`",
            ),
            PendingCause::UpstreamUnreachable => Some(
                "check egress from credwatch to the provider (DNS, firewall, proxy) and the provider's status page; credwatch retries with backoff",
            ),
            PendingCause::UnexpectedResponse => Some(
                "run `credwatch check` for the evidence; an HTML answer means a proxy or CDN answered instead of the API",
            ),
            PendingCause::NotChecked | PendingCause::SecretChanged => None,
        }
    }
}
