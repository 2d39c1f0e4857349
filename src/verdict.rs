//! The verdict domain: what is known about one credential, how an attempt's
//! facts change it, the one rule for "is this credential usable?"
//! ([`CredentialState::health`]) and its `/health` JSON entry.
//!
//! Pure data and rules: no locks, no I/O, no rendering of metric text. The
//! slots that hold a [`CredentialState`] per credential are in
//! [`crate::state`]; `/metrics` ([`crate::metrics`]), `/health` and `check`
//! all judge a credential through [`CredentialState::health`], so they
//! cannot disagree. Only a definitive answer changes a [`Verdict`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::{Credential, Provider};
use crate::outcome::{Attempt, Fact, Problem, Reason};
use crate::providers::Details;

/// What is known about one credential. Only definitive answers change it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `None` until the first definitive answer.
    pub valid: Option<bool>,
    /// Why it is invalid, when it is.
    pub invalid: Option<Problem>,
    /// Definitive problems other than invalidity, by the check that found them.
    pub problems: BTreeMap<String, Problem>,
    /// Every permission upstream told us about.
    pub permissions: BTreeMap<String, bool>,
    /// Resources this key type may not read (Twilio standard keys).
    pub not_permitted: BTreeSet<&'static str>,
    /// What only the credential's provider knows (quota, balance, numbers, …).
    pub details: Details,
}

impl Verdict {
    /// Nothing known yet about a credential of `provider`.
    pub fn new(provider: Provider) -> Self {
        Verdict {
            valid: None,
            invalid: None,
            problems: BTreeMap::new(),
            permissions: BTreeMap::new(),
            not_permitted: BTreeSet::new(),
            details: Details::new(provider),
        }
    }

    fn apply(&mut self, check: &str, facts: &[Fact]) {
        self.problems.remove(check);
        for fact in facts {
            match fact {
                Fact::Valid => {
                    self.valid = Some(true);
                    self.invalid = None;
                }
                Fact::Invalid { problem } => {
                    self.valid = Some(false);
                    self.invalid = Some(problem.clone());
                }
                Fact::Permission { name, granted } => {
                    self.permissions.insert(name.clone(), *granted);
                }
                Fact::Blocked { problem } => {
                    self.problems.insert(check.to_string(), problem.clone());
                }
                Fact::NotPermittedForKey { resource } => {
                    self.not_permitted.insert(resource);
                    self.details.not_permitted(resource);
                }
                Fact::Detail(detail) => {
                    if let Some(resource) = detail.resource() {
                        self.not_permitted.remove(resource);
                    }
                    self.details.apply(detail);
                }
            }
        }
    }
}

/// The last attempt of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckState {
    pub success: bool,
    #[serde(skip)]
    pub duration: Duration,
    #[serde(skip)]
    pub last_attempt: SystemTime,
    /// The reason of the last attempt, when it was not a clean success.
    pub last_reason: Option<Reason>,
    /// For probes: whether the last answer upstream gave could not be read
    /// by the probe (it needs calibration). `None` until the first answer;
    /// a failure to reach upstream leaves it as it was.
    pub inconclusive: Option<bool>,
    /// Attempts, answered or not (`credwatch_checks_total`).
    #[serde(skip)]
    pub attempts: u64,
    #[serde(skip)]
    pub errors: BTreeMap<Reason, u64>,
}

/// Settings that may change on reload without losing history.
#[derive(Debug, Clone)]
pub struct Settings {
    pub critical: bool,
    pub interval: Duration,
    pub required_permissions: Vec<String>,
    pub auth_check: &'static str,
    /// Put E.164 numbers in phone-number labels.
    pub expose_numbers: bool,
}

impl Settings {
    pub(crate) fn of(cred: &Credential) -> Self {
        Settings {
            critical: cred.critical,
            interval: cred.interval,
            required_permissions: cred.required_permissions().to_vec(),
            auth_check: cred.provider().auth_check(),
            expose_numbers: cred.expose_numbers(),
        }
    }
}

/// Everything known about one credential.
#[derive(Debug, Clone)]
pub struct CredentialState {
    pub name: String,
    pub provider: Provider,
    pub settings: Settings,
    pub verdict: Verdict,
    /// The last attempt of each check, by check name (sorted; a handful
    /// per credential, so a vector: a B-tree node would be ~2.5 KiB each).
    pub checks: Vec<(String, CheckState)>,
    pub fingerprint: String,
    /// When a new fingerprint was seen while running.
    pub changed_at: Option<SystemTime>,
    /// The auth check's last attempt and last definitive answer.
    pub last_check: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    /// The reason of the auth check's last attempt when it got no definitive answer.
    pub check_error: Option<Reason>,
    pub cycles: u64,
}

/// Overall judgement, derived from the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No definitive answer yet.
    Pending,
    Healthy,
    Unhealthy(Reason),
}

impl CredentialState {
    /// A credential before its first check.
    pub(crate) fn new(cred: &Credential) -> Self {
        CredentialState {
            name: cred.name.clone(),
            provider: cred.provider(),
            settings: Settings::of(cred),
            verdict: Verdict::new(cred.provider()),
            checks: Vec::new(),
            fingerprint: cred.fingerprint(),
            changed_at: None,
            last_check: None,
            last_success: None,
            check_error: None,
            cycles: 0,
        }
    }

    /// Records one cycle's attempts: check bookkeeping for every attempt,
    /// the facts of the definitive ones into the verdict. Returns whether
    /// this was the credential's first cycle.
    pub(crate) fn record(&mut self, attempts: &[Attempt]) -> bool {
        self.cycles += 1;
        for attempt in attempts {
            let at = match self
                .checks
                .binary_search_by(|(name, _)| name.as_str().cmp(&attempt.check))
            {
                Ok(at) => at,
                Err(at) => {
                    let fresh = CheckState {
                        success: false,
                        duration: Duration::ZERO,
                        last_attempt: attempt.started_at,
                        last_reason: None,
                        inconclusive: None,
                        attempts: 0,
                        errors: BTreeMap::new(),
                    };
                    self.checks.reserve_exact(1);
                    self.checks.insert(at, (attempt.check.clone(), fresh));
                    at
                }
            };
            let check = &mut self.checks[at].1;
            check.attempts += 1;
            check.success = attempt.is_definitive();
            check.duration = attempt.duration;
            check.last_attempt = attempt.started_at;
            check.last_reason = attempt.error_reason();
            match &attempt.result {
                Ok(_) => check.inconclusive = Some(false),
                Err(f) if f.inconclusive => check.inconclusive = Some(true),
                Err(f) if !f.ends_cycle() => check.inconclusive = Some(false),
                Err(_) => {}
            }
            if let Some(reason) = check.last_reason {
                *check.errors.entry(reason).or_insert(0) += 1;
            }
            if attempt.check == self.settings.auth_check {
                self.last_check = Some(attempt.started_at + attempt.duration);
                match &attempt.result {
                    Ok(_) => {
                        self.last_success = Some(attempt.started_at + attempt.duration);
                        self.check_error = None;
                    }
                    Err(f) => self.check_error = Some(f.reason),
                }
            }
            if let Ok(facts) = &attempt.result {
                self.verdict.apply(&attempt.check, facts);
            }
        }
        self.cycles == 1
    }

    /// Whether the credential is usable: [`Health::Healthy`]. The one
    /// answer `/health`, `/metrics` and `check` give.
    pub fn usable(&self) -> bool {
        self.health() == Health::Healthy
    }

    /// Ready for calls beyond being usable, as the provider judges it
    /// (ElevenLabs: every imported phone number can place calls as far as
    /// credwatch can tell; true when none are watched). Not part of
    /// [`usable`](Self::usable), so not of `/health`: one released number
    /// among several does not make a key unusable. Exported per number
    /// (`credwatch_elevenlabs_phone_number_ready`, alerted on by
    /// `CredwatchPhoneNumberNotReady`).
    pub fn numbers_ready(&self) -> bool {
        self.verdict.details.numbers_ready()
    }

    /// Ready for outbound calls: usable, and every imported number ready.
    /// `credwatch check`'s exit code; `/health` is [`usable`](Self::usable)
    /// alone, and `check` says which of the two failed.
    pub fn ready_for_calls(&self) -> bool {
        self.usable() && self.numbers_ready()
    }

    /// The one rule for "is this credential usable?": valid, no definitive
    /// problem (an account block first, as it explains everything else),
    /// and every required permission granted. [`Health::Pending`] until
    /// the answers needed are in.
    pub fn health(&self) -> Health {
        match self.verdict.valid {
            None => Health::Pending,
            Some(false) => Health::Unhealthy(
                self.verdict
                    .invalid
                    .as_ref()
                    .map_or(Reason::InvalidCredentials, Problem::reason),
            ),
            Some(true) => {
                // Blocked accounts first: they explain everything else.
                let problem = self
                    .verdict
                    .problems
                    .values()
                    .map(Problem::reason)
                    .min_by_key(|r| match r {
                        Reason::AccountBlocked => 0,
                        Reason::MissingPermission => 1,
                        _ => 2,
                    });
                if let Some(reason) = problem {
                    return Health::Unhealthy(reason);
                }
                let mut pending = false;
                for p in &self.settings.required_permissions {
                    match self.verdict.permissions.get(p) {
                        Some(false) => return Health::Unhealthy(Reason::MissingPermission),
                        None => pending = true,
                        Some(true) => {}
                    }
                }
                if pending {
                    Health::Pending
                } else {
                    Health::Healthy
                }
            }
        }
    }

    /// Required permissions not granted (definitively).
    pub fn missing_permissions(&self) -> Vec<&str> {
        self.settings
            .required_permissions
            .iter()
            .filter(|p| self.verdict.permissions.get(*p) == Some(&false))
            .map(String::as_str)
            .collect()
    }
}

/// One credential in the `/health` body.
#[derive(Serialize)]
pub(crate) struct HealthEntry<'a> {
    pub name: &'a str,
    pub provider: &'static str,
    pub critical: bool,
    pub healthy: bool,
    pub status: &'static str,
    pub valid: Option<bool>,
    /// Why it is unhealthy.
    pub reason: Option<Reason>,
    /// Why the last check got no definitive answer, when it did not.
    pub check_error: Option<Reason>,
    pub missing_permissions: Vec<&'a str>,
    pub last_success: Option<String>,
    pub last_check: Option<String>,
}

fn rfc3339(t: Option<SystemTime>) -> Option<String> {
    t.map(crate::providers::words::time)
}

impl<'a> HealthEntry<'a> {
    pub(crate) fn of(s: &'a CredentialState) -> Self {
        let health = s.health();
        HealthEntry {
            name: &s.name,
            provider: s.provider.as_str(),
            critical: s.settings.critical,
            healthy: health == Health::Healthy,
            status: match health {
                Health::Pending => "pending",
                Health::Healthy => "healthy",
                Health::Unhealthy(_) => "unhealthy",
            },
            valid: s.verdict.valid,
            reason: match health {
                Health::Unhealthy(r) => Some(r),
                _ => None,
            },
            check_error: s.check_error,
            missing_permissions: s.missing_permissions(),
            last_success: rfc3339(s.last_success),
            last_check: rfc3339(s.last_check),
        }
    }
}

impl CredentialState {
    /// The credential's `/health` entry, a JSON object.
    pub fn health_json(&self) -> String {
        serde_json::to_string(&HealthEntry::of(self)).unwrap_or_else(|_| "{}".into())
    }
}
