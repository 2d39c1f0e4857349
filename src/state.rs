//! The verdicts: one [`Slot`] per credential, written by the scheduler and
//! read by `/metrics`, `/health`, `/` and `check`.
//!
//! Every write re-renders that credential's metric lines and `/health` entry
//! once, so readers only copy pre-rendered text: a scrape never re-does work
//! per credential, never waits on a probe, and never calls upstream. No lock
//! here is held across an `.await`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use crate::config::{Config, Credential, Provider, Spec};
use crate::metrics;
use crate::outcome::{Attempt, Evidence, Fact, Problem, Quota, Reason};

/// What is known about one credential. Only definitive answers change it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// `None` until the first definitive answer.
    pub valid: Option<bool>,
    /// Why it is invalid, when it is.
    pub invalid: Option<Problem>,
    /// Definitive problems other than invalidity, by the check that found them.
    pub problems: BTreeMap<String, Problem>,
    /// Every permission upstream told us about.
    pub permissions: BTreeMap<String, bool>,
    pub quota: Option<Quota>,
    pub twilio_numbers: Option<u64>,
    pub twilio_account: Option<TwilioAccount>,
    pub twilio_balance: Option<TwilioBalance>,
    /// Resources this key type may not read (Twilio standard keys).
    pub not_permitted: BTreeSet<&'static str>,
    /// The balance does not apply (subaccount).
    pub balance_not_applicable: bool,
    /// The imported Twilio numbers, when `phone_numbers: true`.
    pub phone_numbers: Option<Vec<crate::outcome::PhoneNumber>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwilioAccount {
    pub status: String,
    pub kind: String,
    pub subaccount: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwilioBalance {
    pub amount: f64,
    pub currency: String,
}

impl Verdict {
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
                Fact::Quota { quota } => self.quota = Some(quota.clone()),
                Fact::QuotaUnreadable => self.quota = None,
                Fact::TwilioNumbers { count } => self.twilio_numbers = Some(*count),
                Fact::TwilioAccount {
                    status,
                    kind,
                    subaccount,
                } => {
                    self.not_permitted.remove("account");
                    self.twilio_account = Some(TwilioAccount {
                        status: status.clone(),
                        kind: kind.clone(),
                        subaccount: *subaccount,
                    });
                }
                Fact::TwilioBalance { amount, currency } => {
                    self.not_permitted.remove("balance");
                    self.balance_not_applicable = false;
                    self.twilio_balance = amount.map(|amount| TwilioBalance {
                        amount,
                        currency: currency.clone(),
                    });
                }
                Fact::TwilioBalanceNotApplicable => {
                    self.balance_not_applicable = true;
                    self.twilio_balance = None;
                }
                Fact::PhoneNumbers { numbers } => self.phone_numbers = Some(numbers.clone()),
                Fact::PhoneNumbersUnreadable => self.phone_numbers = None,
                Fact::NotPermittedForKey { resource } => {
                    self.not_permitted.insert(resource);
                    match *resource {
                        "account" => self.twilio_account = None,
                        "balance" => self.twilio_balance = None,
                        _ => {}
                    }
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
    pub evidence: Evidence,
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
    fn of(cred: &Credential) -> Self {
        Settings {
            critical: cred.critical,
            interval: cred.interval,
            required_permissions: match &cred.spec {
                Spec::ElevenLabs(el) => el.required_permissions.clone(),
                Spec::Twilio(_) => Vec::new(),
            },
            auth_check: crate::providers::auth_check(&cred.spec),
            expose_numbers: matches!(&cred.spec, Spec::ElevenLabs(el) if el.expose_numbers),
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
    pub checks: BTreeMap<String, CheckState>,
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

/// Pre-rendered output for one credential.
#[derive(Debug, Default)]
pub struct Rendered {
    /// One fragment per metric family, in [`metrics::FAMILIES`] order.
    pub metrics: Vec<String>,
    /// This credential's `/health` entry, a JSON object.
    pub health_json: String,
    pub health: Option<Health>,
    pub critical: bool,
}

/// One credential's slot: its state and its rendering, under one short lock.
pub struct Slot {
    pub name: String,
    pub provider: Provider,
    inner: Mutex<(CredentialState, Arc<Rendered>)>,
}

impl Slot {
    fn new(cred: &Credential) -> Self {
        let state = CredentialState {
            name: cred.name.clone(),
            provider: cred.provider(),
            settings: Settings::of(cred),
            verdict: Verdict::default(),
            checks: BTreeMap::new(),
            fingerprint: cred.fingerprint(),
            changed_at: None,
            last_check: None,
            last_success: None,
            check_error: None,
            cycles: 0,
        };
        let rendered = Arc::new(render(&state));
        Slot {
            name: cred.name.clone(),
            provider: cred.provider(),
            inner: Mutex::new((state, rendered)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (CredentialState, Arc<Rendered>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> CredentialState {
        self.lock().0.clone()
    }

    pub fn rendered(&self) -> Arc<Rendered> {
        self.lock().1.clone()
    }

    fn update(&self, f: impl FnOnce(&mut CredentialState)) {
        let mut guard = self.lock();
        f(&mut guard.0);
        guard.1 = Arc::new(render(&guard.0));
    }
}

fn render(state: &CredentialState) -> Rendered {
    Rendered {
        metrics: metrics::render_credential(state),
        health_json: serde_json::to_string(&HealthEntry::of(state)).unwrap_or_else(|_| "{}".into()),
        health: Some(state.health()),
        critical: state.settings.critical,
    }
}

/// One credential in the `/health` body.
#[derive(Serialize)]
pub struct HealthEntry<'a> {
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
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

impl<'a> HealthEntry<'a> {
    fn of(s: &'a CredentialState) -> Self {
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

/// The state of every credential, plus credwatch's own.
pub struct State {
    slots: RwLock<Arc<Vec<Arc<Slot>>>>,
    generation: AtomicU64,
    ready: AtomicBool,
    reload: Mutex<(bool, Option<SystemTime>)>,
    metrics_cache: Mutex<Option<(u64, Bytes)>>,
    health_cache: Mutex<Option<(u64, bool, Bytes)>>,
    pub self_metrics: metrics::SelfMetrics,
}

impl State {
    pub fn new(config: &Config) -> Arc<Self> {
        let slots = config
            .credentials
            .iter()
            .map(|c| Arc::new(Slot::new(c)))
            .collect();
        Arc::new(State {
            slots: RwLock::new(Arc::new(slots)),
            generation: AtomicU64::new(1),
            ready: AtomicBool::new(false),
            reload: Mutex::new((true, Some(SystemTime::now()))),
            metrics_cache: Mutex::new(None),
            health_cache: Mutex::new(None),
            self_metrics: metrics::SelfMetrics::new(),
        })
    }

    pub fn slots(&self) -> Arc<Vec<Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots().iter().find(|s| s.name == name).cloned()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records one cycle's attempts for `slot`.
    pub fn record(&self, slot: &Slot, attempts: &[Attempt]) {
        slot.update(|s| {
            s.cycles += 1;
            for attempt in attempts {
                let check = s
                    .checks
                    .entry(attempt.check.clone())
                    .or_insert_with(|| CheckState {
                        success: false,
                        duration: Duration::ZERO,
                        last_attempt: attempt.started_at,
                        last_reason: None,
                        evidence: Evidence::default(),
                        errors: BTreeMap::new(),
                    });
                check.success = attempt.is_definitive();
                check.duration = attempt.duration;
                check.last_attempt = attempt.started_at;
                check.evidence = attempt.evidence.clone();
                check.last_reason = attempt.error_reason();
                if let Some(reason) = check.last_reason {
                    *check.errors.entry(reason).or_insert(0) += 1;
                }
                if attempt.check == s.settings.auth_check {
                    s.last_check = Some(attempt.started_at + attempt.duration);
                    match &attempt.result {
                        Ok(_) => {
                            s.last_success = Some(attempt.started_at + attempt.duration);
                            s.check_error = None;
                        }
                        Err(f) => s.check_error = Some(f.reason),
                    }
                }
                if let Ok(facts) = &attempt.result {
                    s.verdict.apply(&attempt.check, facts);
                }
            }
        });
        self.bump();
        if !self.ready.load(Ordering::Relaxed) && self.slots().iter().all(|s| s.lock().0.cycles > 0)
        {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// Records a new secret fingerprint seen while running (a rotation).
    pub fn record_fingerprint(&self, slot: &Slot, fingerprint: String) {
        slot.update(|s| {
            if s.fingerprint != fingerprint {
                s.fingerprint = fingerprint;
                s.changed_at = Some(SystemTime::now());
            }
        });
        self.bump();
    }

    /// Every credential has finished at least one cycle.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Applies a new config: unchanged credentials keep their slot (state and
    /// history), changed ones keep their history with new settings, removed
    /// ones disappear with their series, new ones start pending.
    pub fn reconcile(&self, config: &Config) {
        let old = self.slots();
        let mut next = Vec::with_capacity(config.credentials.len());
        for cred in &config.credentials {
            match old
                .iter()
                .find(|s| s.name == cred.name && s.provider == cred.provider())
            {
                Some(slot) => {
                    let settings = Settings::of(cred);
                    let fingerprint = cred.fingerprint();
                    slot.update(|s| {
                        s.settings = settings;
                        if s.fingerprint != fingerprint {
                            s.fingerprint = fingerprint;
                            s.changed_at = Some(SystemTime::now());
                        }
                    });
                    next.push(slot.clone());
                }
                None => next.push(Arc::new(Slot::new(cred))),
            }
        }
        *self.slots.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        self.bump();
    }

    pub fn set_reload_result(&self, ok: bool) {
        let mut r = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        r.0 = ok;
        if ok {
            r.1 = Some(SystemTime::now());
        }
        drop(r);
        self.bump();
    }

    pub fn reload_result(&self) -> (bool, Option<SystemTime>) {
        *self.reload.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `/metrics` body as chunks: the credentials' part, rebuilt only when
    /// something changed since the last scrape, then credwatch's own metrics.
    pub fn metrics_body(&self) -> Vec<Bytes> {
        let generation = self.generation();
        let mut cache = self.metrics_cache.lock().unwrap_or_else(|p| p.into_inner());
        let credentials = match &*cache {
            Some((g, body)) if *g == generation => body.clone(),
            _ => {
                let rendered: Vec<Arc<Rendered>> =
                    self.slots().iter().map(|s| s.rendered()).collect();
                let body = Bytes::from(metrics::assemble(&rendered));
                *cache = Some((generation, body.clone()));
                body
            }
        };
        drop(cache);
        vec![credentials, Bytes::from(metrics::render_self(self))]
    }

    /// The `/health` body and whether every critical credential is healthy,
    /// rebuilt only when something changed.
    pub fn health_body(&self) -> (bool, Bytes) {
        let generation = self.generation();
        let mut cache = self.health_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, ok, body)) = &*cache
            && *g == generation
        {
            return (*ok, body.clone());
        }
        let rendered: Vec<Arc<Rendered>> = self.slots().iter().map(|s| s.rendered()).collect();
        let (mut healthy, mut unhealthy, mut pending) = (0usize, 0usize, 0usize);
        let mut ok = true;
        for r in &rendered {
            match r.health {
                Some(Health::Healthy) => healthy += 1,
                Some(Health::Unhealthy(_)) => unhealthy += 1,
                _ => pending += 1,
            }
            if r.critical && r.health != Some(Health::Healthy) {
                ok = false;
            }
        }
        let size: usize = rendered.iter().map(|r| r.health_json.len() + 1).sum();
        let mut body = String::with_capacity(size + 128);
        body.push_str(&format!(
            "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[",
            if ok { "ok" } else { "fail" }
        ));
        for (i, r) in rendered.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&r.health_json);
        }
        body.push_str("]}\n");
        let body = Bytes::from(body);
        *cache = Some((generation, ok, body.clone()));
        (ok, body)
    }
}
