//! The verdict domain: what is known about one credential, how an attempt's
//! facts change it, the one rule for "is this credential usable?"
//! ([`CredentialState::health`]).
//!
//! Pure data and rules: no locks, no I/O, no rendering (its `/health` entry
//! and the words for why it is pending are [`crate::render`]'s). The
//! slots that hold a [`CredentialState`] per credential are in
//! [`crate::state`]; `/metrics` ([`crate::metrics`]), `/health` and `check`
//! all judge a credential through [`CredentialState::health`], so they
//! cannot disagree. Only a definitive answer changes a [`Verdict`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::outcome::{Attempt, Basis, Fact, Failure, Problem, Reason};
use crate::providers::Details;
use crate::providers::{Credential, Provider};

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
    /// What each of those verdicts rests on.
    pub permission_basis: BTreeMap<String, Basis>,
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
            permission_basis: BTreeMap::new(),
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
                Fact::Permission {
                    name,
                    granted,
                    basis,
                } => {
                    self.permissions.insert(name.clone(), *granted);
                    self.permission_basis.insert(name.clone(), *basis);
                }
                Fact::Problem { problem } => {
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
    /// Since when its attempts get no definitive answer (the first of the
    /// current run of failures); `None` after a definitive one.
    #[serde(skip)]
    pub failing_since: Option<SystemTime>,
    /// What the last answer was, in our words, when it was inconclusive or
    /// could not be classified (never a secret or raw body).
    #[serde(skip)]
    pub answer: Option<String>,
    /// Whether it was attempted for the secret in use (false after a change).
    #[serde(skip)]
    pub current: bool,
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
    /// Routing labels, on `credwatch_credential_info`.
    pub labels: crate::section::Labels,
    /// The account (Twilio Account SID, ElevenLabs `account:`) whose
    /// quota or balance this credential reads; its `account` label.
    pub account: Option<String>,
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
            labels: cred.labels.clone(),
            account: cred.account().map(str::to_string),
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
    /// The secret changed and no definitive answer about the new value has
    /// arrived yet.
    pub unconfirmed: bool,
    /// credwatch refuses the secret's current value (a local verdict,
    /// [`Reason::InvalidConfig`]): the key path and what is wrong, never
    /// the value.
    pub refused: Option<String>,
    /// The auth check's last attempt and last definitive answer.
    pub last_check: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    /// The reason of the auth check's last attempt when it got no definitive answer.
    pub check_error: Option<Reason>,
    pub cycles: u64,
    /// This credential exports its account's series (decided across the
    /// account's credentials by [`crate::state::State`]).
    pub owns_account: bool,
}

/// What recording a cycle did, for the scheduler's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The credential's first cycle.
    pub first: bool,
    pub before: Standing,
    pub after: Standing,
    /// Per attempt: whether its check's outcome (answered or not, and the
    /// reason) differs from that check's previous attempt for this secret
    /// (a first clean answer is no change).
    pub changed: Vec<bool>,
}

/// A credential's health and, while pending, why: what a state-change log
/// line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub health: Health,
    pub pending: Option<PendingCause>,
}

impl Standing {
    /// Something for an operator to look at: unhealthy, or pending for a
    /// reason other than not having been asked yet.
    pub fn failing(&self) -> bool {
        match self.health {
            Health::Healthy => false,
            Health::Unhealthy(_) => true,
            Health::Pending => !matches!(
                self.pending,
                None | Some(PendingCause::NotChecked | PendingCause::SecretChanged)
            ),
        }
    }
}

/// Why a credential has no verdict: the `why` label of
/// `credwatch_credential_pending_info` and of `/health`'s `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingCause {
    /// The check that decides has not been asked yet.
    NotChecked,
    /// The secret changed and the check that decides has not been asked
    /// about the new value yet.
    SecretChanged,
    /// Its attempts get no answer (timeout, network, 429, 5xx) since `since`.
    UpstreamUnreachable,
    /// Upstream answered, but with nothing credwatch can classify (HTML
    /// from a proxy, an unknown code, …).
    UnexpectedResponse,
    /// A permission probe got an answer that proves neither granted nor
    /// missing: it needs `credwatch calibrate`.
    ProbeInconclusive,
}

impl PendingCause {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingCause::NotChecked => "not_checked",
            PendingCause::SecretChanged => "secret_changed",
            PendingCause::UpstreamUnreachable => "upstream_unreachable",
            PendingCause::UnexpectedResponse => "unexpected_response",
            PendingCause::ProbeInconclusive => "probe_inconclusive",
        }
    }
}

/// Why a credential is [`Health::Pending`], with what an operator needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWhy {
    pub why: PendingCause,
    /// The check whose answer is missing.
    pub check: String,
    /// The permission that stays unknown, when it is one.
    pub permission: Option<String>,
    /// The failure reason of the check's last attempt.
    pub reason: Option<Reason>,
    /// Since when: the first attempt of the current run of failures, or the
    /// secret change.
    pub since: Option<SystemTime>,
    /// When the secret changed, while its new value is unconfirmed.
    pub secret_changed: Option<SystemTime>,
    /// The last answer, in our words (inconclusive or unclassified).
    pub answer: Option<String>,
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
            unconfirmed: false,
            refused: None,
            last_check: None,
            last_success: None,
            check_error: None,
            cycles: 0,
            owns_account: false,
        }
    }

    /// Records one cycle's attempts: check bookkeeping for every attempt,
    /// the facts of the definitive ones into the verdict. Says whether this
    /// was the credential's first cycle, how its [`Standing`] moved and
    /// which attempts changed their check's outcome (for the log).
    pub(crate) fn record(&mut self, attempts: &[Attempt]) -> Recorded {
        let before = self.standing();
        self.cycles += 1;
        let mut changed = Vec::with_capacity(attempts.len());
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
                        failing_since: None,
                        answer: None,
                        current: false,
                        attempts: 0,
                        errors: BTreeMap::new(),
                    };
                    self.checks.reserve_exact(1);
                    self.checks.insert(at, (attempt.check.clone(), fresh));
                    at
                }
            };
            let check = &mut self.checks[at].1;
            let outcome_before = (check.current, check.success, check.last_reason);
            check.attempts += 1;
            check.current = true;
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
            match &attempt.result {
                Ok(_) => {
                    check.failing_since = None;
                    check.answer = None;
                }
                Err(f) => {
                    check.failing_since.get_or_insert(attempt.started_at);
                    check.answer = (!f.ends_cycle()).then(|| attempt.evidence.detail.to_string());
                }
            }
            // A change worth a line: a new failure or negative answer, or a
            // different one, or a recovery; not a first clean answer.
            let first_clean = !outcome_before.0 && check.last_reason.is_none();
            changed
                .push(!first_clean && outcome_before != (true, check.success, check.last_reason));
            if let Some(reason) = check.last_reason {
                *check.errors.entry(reason).or_insert(0) += 1;
            }
            if attempt.check == self.settings.auth_check {
                self.last_check = Some(attempt.started_at + attempt.duration);
                match &attempt.result {
                    Ok(_) => {
                        self.last_success = Some(attempt.started_at + attempt.duration);
                        self.check_error = None;
                        self.unconfirmed = false;
                    }
                    Err(f) => self.check_error = Some(f.reason),
                }
            }
            if let Ok(facts) = &attempt.result {
                self.verdict.apply(&attempt.check, facts);
            }
        }
        Recorded {
            first: self.cycles == 1 && self.refused.is_none(),
            before,
            after: self.standing(),
            changed,
        }
    }

    /// The secret in use changed (a re-read file, a reload): nothing known
    /// about the old value holds for the new one. The verdict, permissions
    /// and details start from nothing, and stay pending until a definitive
    /// answer about the new value arrives; history (counters, timings) stays.
    /// Also ends a refusal, when the value is the one in use again.
    /// Returns whether anything changed.
    pub(crate) fn secret_changed(&mut self, fingerprint: String, at: SystemTime) -> bool {
        if self.fingerprint == fingerprint && self.refused.is_none() {
            return false;
        }
        // Back to the same value after a refusal is not a new secret (a
        // linked ElevenLabs import, for one, is not stale because of it).
        if self.fingerprint != fingerprint {
            self.fingerprint = fingerprint;
            self.changed_at = Some(at);
        }
        self.refused = None;
        self.forget(true);
        true
    }

    /// credwatch refuses the secret's new value (`why`: the key path and
    /// what is wrong, never the value): a local, definitive verdict,
    /// unhealthy with [`Reason::InvalidConfig`], until the value changes.
    /// The fingerprint and `changed_at` stay those of the last value
    /// accepted.
    pub(crate) fn refuse(&mut self, why: String) {
        self.refused = Some(why);
        self.forget(false);
    }

    fn forget(&mut self, unconfirmed: bool) {
        self.verdict = Verdict::new(self.provider);
        self.unconfirmed = unconfirmed;
        self.check_error = None;
        for (_, check) in &mut self.checks {
            check.current = false;
            check.inconclusive = None;
            check.failing_since = None;
            check.answer = None;
        }
    }

    /// Whether it has an outcome of its own: a cycle recorded, or a refused
    /// secret (which is never sent, so has no cycle). `/readyz` waits for it.
    pub fn settled(&self) -> bool {
        self.cycles > 0 || self.refused.is_some()
    }

    /// How the credential stands, for the log: its health and, while
    /// pending, why.
    pub fn standing(&self) -> Standing {
        let health = self.health();
        Standing {
            health,
            pending: match health {
                Health::Pending => self.pending_why().map(|p| p.why),
                _ => None,
            },
        }
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

    /// The one rule for "is this credential usable?": a secret credwatch
    /// accepts to send (else [`Reason::InvalidConfig`]), valid, no definitive
    /// problem (an account block first, as it explains everything else),
    /// and every required permission granted. [`Health::Pending`] until
    /// the answers needed are in.
    pub fn health(&self) -> Health {
        if self.refused.is_some() {
            return Health::Unhealthy(Reason::InvalidConfig);
        }
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

    /// Why the credential is pending; `None` when it is not. The check
    /// that decides is the auth check until it has answered, then each
    /// required permission's probe in turn.
    pub fn pending_why(&self) -> Option<PendingWhy> {
        if self.health() != Health::Pending {
            return None;
        }
        let (check, permission) = if self.verdict.valid.is_none() {
            (self.settings.auth_check.to_string(), None)
        } else {
            let p = self
                .settings
                .required_permissions
                .iter()
                .find(|p| !self.verdict.permissions.contains_key(*p))?;
            (format!("permission_{p}"), Some(p.clone()))
        };
        let state = self
            .checks
            .iter()
            .find(|(name, _)| *name == check)
            .map(|(_, c)| c)
            .filter(|c| c.current);
        let secret_changed = if self.unconfirmed {
            self.changed_at
        } else {
            None
        };
        let mut why = PendingWhy {
            why: PendingCause::NotChecked,
            check,
            permission,
            reason: None,
            since: None,
            secret_changed,
            answer: None,
        };
        match state {
            None if secret_changed.is_some() => {
                why.why = PendingCause::SecretChanged;
                why.since = secret_changed;
            }
            None => {}
            Some(c) => {
                why.reason = c.last_reason;
                why.since = c.failing_since;
                why.answer = c.answer.clone();
                why.why = match (c.inconclusive, c.last_reason) {
                    (Some(true), _) => PendingCause::ProbeInconclusive,
                    (_, Some(r)) if Failure::new(r).ends_cycle() => {
                        PendingCause::UpstreamUnreachable
                    }
                    // Not classified, or answered without establishing the
                    // permission (e.g. while the account is blocked).
                    _ => PendingCause::UnexpectedResponse,
                };
            }
        }
        Some(why)
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

/// Why credwatch will not send `cred`'s secret ([`Secret::unsendable`]),
/// naming the key path and the source, never the value; `new` is `"new "`
/// for a re-read value. The one rule the scheduler and `check` apply
/// before anything is sent; a refusal is [`Reason::InvalidConfig`].
///
/// [`Secret::unsendable`]: crate::secret::Secret::unsendable
pub fn refusal(cred: &Credential, key_path: &str, new: &str) -> Option<String> {
    let secret = cred.secret();
    let what = secret.value.unsendable()?;
    Some(format!(
        "{key_path}: the {new}{} from {} {what}; fix the source (credwatch sends nothing until then)",
        cred.secret_name(),
        secret.source
    ))
}

#[cfg(test)]
mod tests;
