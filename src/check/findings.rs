//! The findings of one cycle (what `credwatch check` prints, with evidence
//! and fix), and how the daemon keeps them across cycles for the status page
//! (`/`), so the page and `check` say the same words for the same answers.
//!
//! Severity: an error is why a credential is broken (its verdict, a
//! required permission, an imported number that cannot call); a warning is
//! worth acting on while the verdict is healthy (quota at or above the
//! alert threshold, low balance, Trial account, billing at risk, a check
//! without an answer, an inconclusive probe); info is advice.

use crate::config::Credential;
use crate::outcome::{Attempt, Basis, Fact, Reason};
use crate::providers::report::{Finding, Severity};
use crate::providers::{self, Linked};
use crate::verdict::{CredentialState, Health};

use super::explain;

/// Everything one cycle's attempts say about `cred`, whose state `s`
/// already has them recorded: each answer that was no answer, each
/// definitive problem, and the provider's findings about its details.
/// Errors first.
pub fn cycle(
    cred: &Credential,
    s: &CredentialState,
    attempts: &[Attempt],
    linked: Option<&Linked>,
) -> Vec<Finding> {
    let healthy = s.health() == Health::Healthy;
    let required: Vec<&str> = s
        .settings
        .required_permissions
        .iter()
        .map(String::as_str)
        .collect();
    let mut findings: Vec<Finding> = Vec::new();
    for a in attempts {
        match &a.result {
            Err(f) => {
                let (summary, fix) =
                    explain::failure(cred.provider(), f.reason, &a.evidence.detail);
                findings.push(Finding {
                    // Under a healthy verdict, a check without an answer (an
                    // inconclusive probe, a timed-out detail) is a warning.
                    severity: if healthy {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    code: f.reason.as_str().into(),
                    check: a.check.clone(),
                    summary,
                    fix,
                    evidence: Some(a.evidence.clone()),
                });
            }
            Ok(facts) => {
                // A problem of the check's own (a restricted Twilio key) already
                // explains the permission it reports missing.
                let explained = facts.iter().any(|f| {
                    matches!(f, Fact::Problem { problem } if problem.reason() == Reason::MissingPermission)
                });
                for fact in facts {
                    let mut basis = None;
                    let (severity, problem) = match fact {
                        Fact::Invalid { problem } | Fact::Problem { problem } => {
                            (Severity::Error, problem.clone())
                        }
                        Fact::Permission { granted: false, .. } if explained => continue,
                        Fact::Permission {
                            name,
                            granted: false,
                            basis: b,
                        } => (
                            {
                                basis = Some(*b);
                                if required.contains(&name.as_str()) {
                                    Severity::Error
                                } else {
                                    Severity::Info
                                }
                            },
                            providers::Problem::PermissionMissing {
                                permission: name.clone(),
                            },
                        ),
                        Fact::NotPermittedForKey { resource } => {
                            let (summary, fix) = cred.provider().explain_not_permitted(resource);
                            findings.push(Finding {
                                severity: Severity::Info,
                                code: "standard_key".into(),
                                check: a.check.clone(),
                                summary,
                                fix,
                                evidence: Some(a.evidence.clone()),
                            });
                            continue;
                        }
                        _ => continue,
                    };
                    let (mut summary, mut fix) = explain::problem(&problem, cred);
                    match basis {
                        Some(Basis::Inferred) => {
                            summary = format!(
                                "{summary} (Inferred: the probe's reading is not proven on this API; `credwatch calibrate` proves it.)"
                            )
                        }
                        Some(Basis::Calibrated) => {
                            summary =
                                format!("{summary} (Calibrated: the probe was proven on this API.)")
                        }
                        _ => {}
                    }
                    if severity == Severity::Info {
                        summary = format!(
                            "{summary} It is not required here, so the related data is unavailable."
                        );
                        fix = format!("Only if you want that data: {fix}");
                    }
                    if findings.iter().any(|f| f.code == problem.code()) {
                        continue;
                    }
                    findings.push(Finding {
                        severity,
                        code: problem.code().into(),
                        check: a.check.clone(),
                        summary,
                        fix,
                        evidence: Some(a.evidence.clone()),
                    });
                }
            }
        }
    }
    findings.extend(s.verdict.details.findings(attempts, linked));
    findings.sort_by_key(|f| f.severity);
    findings
}

/// Whether `f` says a check got no answer (its code is a failure reason).
fn is_failure(f: &Finding) -> bool {
    matches!(
        f.code.as_str(),
        "rate_limited" | "upstream_error" | "timeout" | "network" | "unexpected_response"
    )
}

/// The findings that hold after a cycle, given those that held before it:
/// a check attempted in this cycle with a definitive answer replaces its
/// findings; one without an answer keeps what its last definitive answer
/// found (the verdict stands) and says why there was none this time; a
/// check not attempted (a detail check between detail cycles, a resource
/// not asked again) keeps its findings. From nothing, one cycle's merge is
/// [`cycle`]'s list, so `check` and the status page agree. `healthy` is the
/// verdict after the cycle: a check without an answer is a warning under a
/// healthy verdict, an error otherwise.
pub fn merge(
    before: &[Finding],
    cycle: Vec<Finding>,
    attempts: &[Attempt],
    healthy: bool,
) -> Vec<Finding> {
    let attempt = |check: &str| attempts.iter().find(|a| a.check == check);
    let mut out: Vec<Finding> = before
        .iter()
        .filter(|f| match attempt(&f.check) {
            None => true,
            Some(a) => !a.is_definitive() && !is_failure(f),
        })
        .cloned()
        .collect();
    out.extend(cycle.into_iter().filter(|f| match attempt(&f.check) {
        None => false,
        Some(a) => a.is_definitive() || is_failure(f),
    }));
    for f in out.iter_mut().filter(|f| is_failure(f)) {
        f.severity = if healthy {
            Severity::Warning
        } else {
            Severity::Error
        };
    }
    out.sort_by_key(|f| f.severity);
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::outcome::{Evidence, Failure, Reason};

    fn finding(severity: Severity, code: &str, check: &str) -> Finding {
        Finding {
            severity,
            code: code.into(),
            check: check.into(),
            summary: format!("{code} summary"),
            fix: format!("{code} fix"),
            evidence: None,
        }
    }

    fn attempt(check: &str, result: Result<Vec<Fact>, Failure>) -> Attempt {
        Attempt {
            check: check.into(),
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            evidence: Evidence::default(),
            result,
        }
    }

    fn codes(f: &[Finding]) -> Vec<(&str, &str, Severity)> {
        f.iter()
            .map(|f| (f.check.as_str(), f.code.as_str(), f.severity))
            .collect()
    }

    #[test]
    fn a_check_without_an_answer_keeps_what_its_last_answer_found() {
        let before = vec![
            finding(Severity::Error, "invalid_api_key", "subscription"),
            finding(Severity::Info, "no_agent", "phone_numbers"),
        ];
        let timeout = [attempt("subscription", Err(Failure::new(Reason::Timeout)))];
        let cycle = vec![finding(Severity::Error, "timeout", "subscription")];
        let after = merge(&before, cycle, &timeout, false);
        assert_eq!(
            codes(&after),
            [
                ("subscription", "invalid_api_key", Severity::Error),
                ("subscription", "timeout", Severity::Error),
                ("phone_numbers", "no_agent", Severity::Info),
            ]
        );

        // The next answer replaces the check's findings, failure included;
        // the phone numbers, not asked this cycle, keep theirs.
        let answered = [attempt("subscription", Ok(vec![Fact::Valid]))];
        let after = merge(&after, Vec::new(), &answered, true);
        assert_eq!(
            codes(&after),
            [("phone_numbers", "no_agent", Severity::Info)]
        );
    }

    #[test]
    fn a_failure_is_a_warning_under_a_healthy_verdict_and_replaced_by_the_next() {
        let balance_timeout = [attempt("balance", Err(Failure::new(Reason::Timeout)))];
        let before = vec![finding(Severity::Warning, "balance_low", "balance")];
        let after = merge(
            &before,
            vec![finding(Severity::Error, "timeout", "balance")],
            &balance_timeout,
            true,
        );
        assert_eq!(
            codes(&after),
            [
                ("balance", "balance_low", Severity::Warning),
                ("balance", "timeout", Severity::Warning),
            ]
        );
        let network = [attempt("balance", Err(Failure::new(Reason::Network)))];
        let after = merge(
            &after,
            vec![finding(Severity::Warning, "network", "balance")],
            &network,
            false,
        );
        assert_eq!(
            codes(&after),
            [
                ("balance", "network", Severity::Error),
                ("balance", "balance_low", Severity::Warning),
            ]
        );
    }

    #[test]
    fn findings_of_a_check_not_run_in_the_cycle_are_not_taken_from_it() {
        // A detail cycle's phone findings are recomputed from the details on
        // every cycle, but only the cycle that asked may change them.
        let cycle = vec![finding(Severity::Error, "agent_missing", "phone_numbers")];
        let after = merge(
            &[],
            cycle,
            &[attempt("subscription", Ok(vec![Fact::Valid]))],
            true,
        );
        assert!(after.is_empty(), "{after:?}");
    }
}
