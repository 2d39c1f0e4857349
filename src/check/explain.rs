//! What each finding means for the person reading `credwatch check`, and how
//! to fix it, in the user's terms. Each provider explains its own problems
//! (`providers::<provider>::explain`); what is left here is the same for
//! every provider: answers that were no answer.

use crate::config::{Credential, Provider};
use crate::outcome::{Problem, Reason};

/// (summary, fix) for a definitive problem, from the provider that reports it.
pub fn problem(p: &Problem, cred: &Credential) -> (String, String) {
    crate::providers::explain(p, cred)
}

/// (summary, fix) for a check that got no definitive answer: the
/// provider's words for an answer only it sends, else the same for all.
pub fn failure(provider: Provider, reason: Reason, detail: &str) -> (String, String) {
    let summary = format!("No verdict: {detail}.");
    if let Some(fix) = provider.failure_fix(reason, detail) {
        return (summary, fix.to_string());
    }
    let fix = match reason {
        Reason::RateLimited => {
            "Upstream is rate-limiting (the limits are shared with production traffic). credwatch backs off; nothing to fix unless it persists."
        }
        Reason::UpstreamError => {
            "Upstream had a server error. Nothing to fix on your side; retry later or check the provider's status page."
        }
        Reason::Timeout => {
            "No answer within the timeout. Check egress from this host (firewall, proxy, DNS) or raise `timeout`."
        }
        Reason::Network => {
            "credwatch could not connect. Check DNS, egress firewall rules and proxies (HTTPS_PROXY) from this host, and `base_url`."
        }
        Reason::UnexpectedResponse if detail.contains("HTML") || detail.contains("non-JSON") => {
            "A CDN or firewall in front of the API answered instead of the API (e.g. a Cloudflare challenge for hosting or VPN \
             IPs, or a corporate proxy): this is not a credential problem. Run from another network, or ask the provider to \
             allow this IP."
        }
        Reason::UnexpectedResponse if detail.contains("this probe does not tell") => {
            "`credwatch calibrate` recorded (in `calibration_file`) that this probe gives a key with the permission and \
             one without the same answer on this API, so its answers prove nothing and the permission stays unknown. \
             Configure a probe that discriminates under `permission_probes:`, calibrate it, and the verdict returns."
        }
        Reason::UnexpectedResponse if detail.contains("calibrate") => {
            "The permission probe got an answer it cannot read, so the permission is unknown (neither granted nor missing): \
             the probe itself needs attention. Prove what the probe tells apart on your account with two keys, one with \
             the permission and one without: `credwatch calibrate --config FILE --permission NAME --with-key-env A \
             --without-key-env B` (see docs/check.md, \"Calibrating a permission probe\")."
        }
        Reason::UnexpectedResponse => {
            "An answer credwatch cannot classify. If it persists, run `credwatch check --output json` and report the evidence \
             (status, code, request id)."
        }
        _ => "See the evidence.",
    };
    (summary, fix.to_string())
}

#[cfg(test)]
mod tests {
    /// Every cause `check` states cites an anchor that exists on the
    /// evidence page.
    #[test]
    fn every_citation_points_at_the_evidence_page() {
        let page = include_str!("../../docs/upstream-evidence.md");
        let sources = [
            include_str!("../providers/elevenlabs/explain.rs"),
            include_str!("../providers/twilio/explain.rs"),
        ];
        let mut cited = 0;
        for part in sources.iter().flat_map(|s| s.split("cite(\"").skip(1)) {
            let Some(anchor) = part.split('"').next() else {
                continue;
            };
            if anchor.is_empty() || anchor.contains(' ') {
                continue;
            }
            cited += 1;
            assert!(
                page.contains(&format!("id=\"{anchor}\"")),
                "docs/upstream-evidence.md has no anchor `{anchor}`"
            );
        }
        assert!(cited >= 10, "only {cited} citations found");
    }
}
