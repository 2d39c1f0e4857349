//! The verdicts: one [`Slot`] per credential, written by the scheduler and
//! read by `/metrics`, `/health`, `/` and `check`.
//!
//! Every write re-renders that credential's metric lines and `/health` entry
//! once, so readers only copy pre-rendered text: a scrape never re-does work
//! per credential, never waits on a probe, and never calls upstream. No lock
//! here is held across an `.await`.
//!
//! The text of `/metrics` and `/health` lives in one place, [`Store`]:
//! joined per block of [`BLOCK`] credentials and per metric family, with
//! each credential's offsets, so a probe result replaces that credential's
//! lines in its block (once, when it is recorded) and a scrape hands out
//! the blocks as shared buffers. For gzip, a block's family is compressed
//! at the first scrape after it changed. With 10,000 credentials a scrape
//! copies no credential text and compresses only what changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use crate::config::{Config, Credential, Provider, Spec};
use crate::metrics;
use crate::outcome::{Attempt, Fact, Problem, Quota, Reason};

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

/// What readers need of one credential at once (its metric lines and
/// `/health` entry live in [`Store`]).
#[derive(Debug, Default)]
pub struct Rendered {
    pub health: Option<Health>,
    pub critical: bool,
}

/// One credential's slot: its state and its rendering, under one short lock.
pub struct Slot {
    pub name: String,
    pub provider: Provider,
    /// Where the slot is in the current list, and so in [`Store`].
    position: AtomicUsize,
    inner: Mutex<(CredentialState, Arc<Rendered>)>,
}

impl Slot {
    fn new(cred: &Credential, position: usize) -> Self {
        let state = CredentialState {
            name: cred.name.clone(),
            provider: cred.provider(),
            settings: Settings::of(cred),
            verdict: Verdict::default(),
            checks: Vec::new(),
            fingerprint: cred.fingerprint(),
            changed_at: None,
            last_check: None,
            last_success: None,
            check_error: None,
            cycles: 0,
        };
        let rendered = Arc::new(render(&state).0);
        Slot {
            name: cred.name.clone(),
            provider: cred.provider(),
            position: AtomicUsize::new(position),
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

    /// Whether the verdict holds a problem found by `check` (without a copy).
    pub fn has_problem(&self, check: &str) -> bool {
        self.lock().0.verdict.problems.contains_key(check)
    }

    /// When a new secret was seen while running (without a copy).
    pub fn changed_at(&self) -> Option<SystemTime> {
        self.lock().0.changed_at
    }

    pub fn rendered(&self) -> Arc<Rendered> {
        self.lock().1.clone()
    }

    /// Applies `f`, re-renders, and puts the new lines in `store` (under
    /// this slot's lock, so the store never sees renderings out of order).
    fn update<T>(&self, store: &Mutex<Store>, f: impl FnOnce(&mut CredentialState) -> T) -> T {
        let mut guard = self.lock();
        let out = f(&mut guard.0);
        let (rendered, fragments, json) = render(&guard.0);
        let rendered = Arc::new(rendered);
        guard.1 = rendered.clone();
        lock(store).set(
            self.position.load(Ordering::Relaxed),
            fragments,
            json,
            &rendered,
        );
        out
    }

    /// The current rendering, metric lines and `/health` entry, without
    /// changing anything.
    fn render_now(&self) -> Rendering {
        let guard = self.lock();
        let (_, fragments, json) = render(&guard.0);
        (guard.1.clone(), fragments, json)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A credential rendered: what readers need at once, its metric lines, its
/// `/health` entry (a JSON object).
type Rendering = (Arc<Rendered>, metrics::Fragments, String);

fn render(state: &CredentialState) -> (Rendered, metrics::Fragments, String) {
    let rendered = Rendered {
        health: Some(state.health()),
        critical: state.settings.critical,
    };
    let json = serde_json::to_string(&HealthEntry::of(state)).unwrap_or_else(|_| "{}".into());
    (rendered, metrics::render_credential(state), json)
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
    slots: RwLock<Arc<Slots>>,
    generation: AtomicU64,
    ready: AtomicBool,
    /// Slots that have not finished a cycle yet (an upper bound; confirmed
    /// by a full scan when it reaches 0), so readiness is not an O(n) scan
    /// per probe result.
    unready: AtomicUsize,
    reload: Mutex<(bool, Option<SystemTime>)>,
    store: Mutex<Store>,
    web: std::sync::OnceLock<Arc<crate::web::WebConfig>>,
    pub self_metrics: metrics::SelfMetrics,
}

/// The slots in config order, and by name.
struct Slots {
    list: Arc<Vec<Arc<Slot>>>,
    by_name: HashMap<String, Arc<Slot>>,
}

impl Slots {
    fn new(list: Vec<Arc<Slot>>) -> Self {
        let by_name = list.iter().map(|s| (s.name.clone(), s.clone())).collect();
        Slots {
            list: Arc::new(list),
            by_name,
        }
    }
}

impl State {
    pub fn new(config: &Config) -> Arc<Self> {
        let slots: Vec<Arc<Slot>> = config
            .credentials
            .iter()
            .enumerate()
            .map(|(i, c)| Arc::new(Slot::new(c, i)))
            .collect();
        let store = Store::build(&slots);
        Arc::new(State {
            unready: AtomicUsize::new(slots.len()),
            slots: RwLock::new(Arc::new(Slots::new(slots))),
            generation: AtomicU64::new(1),
            ready: AtomicBool::new(false),
            reload: Mutex::new((true, Some(SystemTime::now()))),
            store: Mutex::new(store),
            web: std::sync::OnceLock::new(),
            self_metrics: metrics::SelfMetrics::new(),
        })
    }

    pub fn slots(&self) -> Arc<Vec<Arc<Slot>>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .list
            .clone()
    }

    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records one cycle's attempts for `slot`.
    pub fn record(&self, slot: &Slot, attempts: &[Attempt]) {
        let first = slot.update(&self.store, |s| {
            s.cycles += 1;
            for attempt in attempts {
                let at = match s
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
                        s.checks.reserve_exact(1);
                        s.checks.insert(at, (attempt.check.clone(), fresh));
                        at
                    }
                };
                let check = &mut s.checks[at].1;
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
            s.cycles == 1
        });
        self.bump();
        if first && !self.ready.load(Ordering::Relaxed) {
            let left = self
                .unready
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(1))
                })
                .unwrap_or(0)
                .saturating_sub(1);
            if left == 0 && self.slots().iter().all(|s| s.lock().0.cycles > 0) {
                self.ready.store(true, Ordering::Release);
            }
        }
    }

    /// Records a new secret fingerprint seen while running (a rotation).
    pub fn record_fingerprint(&self, slot: &Slot, fingerprint: String) {
        slot.update(&self.store, |s| {
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
        let old = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = Vec::with_capacity(config.credentials.len());
        for cred in &config.credentials {
            match old
                .by_name
                .get(&cred.name)
                .filter(|s| s.provider == cred.provider())
            {
                Some(slot) => {
                    let settings = Settings::of(cred);
                    let fingerprint = cred.fingerprint();
                    slot.update(&self.store, |s| {
                        s.settings = settings;
                        if s.fingerprint != fingerprint {
                            s.fingerprint = fingerprint;
                            s.changed_at = Some(SystemTime::now());
                        }
                    });
                    next.push(slot.clone());
                }
                None => next.push(Arc::new(Slot::new(cred, next.len()))),
            }
        }
        for (i, slot) in next.iter().enumerate() {
            slot.position.store(i, Ordering::Relaxed);
        }
        let store = Store::build(&next);
        *lock(&self.store) = store;
        let unready = next.iter().filter(|s| s.lock().0.cycles == 0).count();
        *self.slots.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Slots::new(next));
        self.unready.store(unready, Ordering::Release);
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

    /// The `/metrics` body as chunks: the credentials' part (shared
    /// buffers, assembled only when something changed since the last
    /// scrape), then credwatch's own metrics. With `gzip`, the same text as
    /// one gzip member.
    pub fn metrics_body(&self, gzip: bool) -> Vec<Bytes> {
        let own = metrics::render_self(self);
        let mut store = lock(&self.store);
        if !gzip {
            let mut chunks = store.metrics().to_vec();
            drop(store);
            chunks.push(Bytes::from(own));
            return chunks;
        }
        let (compressed, crc, len) = store.metrics_gzip();
        drop(store);
        let mut own_crc = flate2::Crc::new();
        own_crc.update(own.as_bytes());
        let crc = metrics::crc32_combine(crc, own_crc.sum(), own.len() as u64);
        let len = len + own.len() as u64;
        let mut chunks = Vec::with_capacity(compressed.len() + 2);
        chunks.extend_from_slice(&compressed);
        chunks.push(Bytes::from(metrics::stored(own.as_bytes())));
        chunks.push(Bytes::copy_from_slice(&metrics::gzip_end(crc, len)));
        chunks
    }

    /// One credential's health and `/health` entry (a JSON object).
    pub fn health_entry(&self, name: &str) -> Option<(Option<Health>, Bytes)> {
        let slot = self.slot(name)?;
        let health = slot.rendered().health;
        let entry = lock(&self.store).health_entry(slot.position.load(Ordering::Relaxed))?;
        Some((health, entry))
    }

    /// The `/health` body as chunks, and whether every critical credential is
    /// healthy. With `verbose`, every credential's entry; without, only those
    /// that are not healthy (unhealthy or pending), so the usual body is a
    /// few hundred bytes whatever the number of credentials.
    pub fn health_body(&self, verbose: bool) -> (bool, Vec<Bytes>) {
        let (ok, chunks) = lock(&self.store).health(verbose);
        (ok, chunks.to_vec())
    }

    /// The web config whose reload result `/metrics` exports.
    pub fn set_web_config(&self, web: Arc<crate::web::WebConfig>) {
        let _ = self.web.set(web);
    }

    pub fn web_config(&self) -> Option<&Arc<crate::web::WebConfig>> {
        self.web.get()
    }
}

/// Credentials per block of [`Store`]: small enough that replacing one
/// credential's lines (a copy of its block's family) and re-compressing a
/// block are cheap, large enough that 10,000 credentials are a few dozen
/// chunks per family.
pub const BLOCK: usize = 128;

/// Text joined from the items of one block, with each item's end offset.
#[derive(Default)]
struct Part {
    text: Bytes,
    ends: Vec<u32>,
}

impl Part {
    fn join<'a>(items: impl Iterator<Item = &'a [u8]> + Clone) -> Part {
        // Sized exactly: `Bytes` keeps a vector's spare capacity for as
        // long as the text lives, and growing by doubling leaves garbage.
        let mut text = Vec::with_capacity(items.clone().map(<[u8]>::len).sum());
        let mut ends = Vec::new();
        for item in items {
            text.extend_from_slice(item);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        Part {
            text: Bytes::from(text),
            ends,
        }
    }

    fn item(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// Replaces the items given (`None`: keep); false if nothing changed.
    fn update(&mut self, new: &[Option<&[u8]>]) -> bool {
        let changed = new
            .iter()
            .enumerate()
            .any(|(k, n)| n.is_some_and(|n| k < self.ends.len() && n != self.item(k)));
        if !changed {
            return false;
        }
        let item = |k: usize| {
            new.get(k)
                .copied()
                .flatten()
                .unwrap_or_else(|| self.item(k))
        };
        // Sized exactly (see `join`): the text is most of the heap at
        // 10,000 credentials.
        let len = (0..self.ends.len()).map(|k| item(k).len()).sum();
        let mut text = Vec::with_capacity(len);
        let mut ends = Vec::with_capacity(self.ends.len());
        for k in 0..self.ends.len() {
            text.extend_from_slice(item(k));
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        self.text = Bytes::from(text);
        self.ends = ends;
        true
    }
}

/// A credential's new rendering, waiting to be put in its block.
struct Pending {
    k: usize,
    fragments: metrics::Fragments,
    json: String,
    status: (Option<Health>, bool),
}

/// Renderings a block collects before it is re-joined (or at the next
/// scrape, whichever comes first): re-joining a block copies it, so doing it
/// once for many results keeps both the copying and the allocator's
/// fragmentation down (the first round changes every credential at once).
const FLUSH_AT: usize = 16;

/// One block of credentials in [`Store`].
#[derive(Default)]
struct Block {
    /// Per family: the block's lines, and their deflate segment once asked for.
    families: Vec<(Part, Option<metrics::Segment>)>,
    /// `/health` entries; every one but the first starts with a comma.
    health: Part,
    /// The entries of the credentials that are not healthy, comma-separated
    /// (no leading comma): the block's part of the default `/health`.
    brief: Bytes,
    /// Per credential: its health and whether it is critical.
    status: Vec<(Option<Health>, bool)>,
    /// Renderings recorded since the block was last joined.
    queued: Vec<Pending>,
    healthy: usize,
    unhealthy: usize,
    pending: usize,
    ok: bool,
}

impl Block {
    fn build(rendered: &[Rendering]) -> Block {
        let families = (0..metrics::FAMILY_COUNT)
            .map(|i| {
                let part = Part::join(rendered.iter().map(|(_, f, _)| f.family(i).as_bytes()));
                (part, None)
            })
            .collect();
        let entries: Vec<String> = rendered
            .iter()
            .enumerate()
            .map(|(k, (_, _, json))| health_item(k, json))
            .collect();
        let mut block = Block {
            families,
            health: Part::join(entries.iter().map(|e| e.as_bytes())),
            status: rendered
                .iter()
                .map(|(r, _, _)| (r.health, r.critical))
                .collect(),
            ..Block::default()
        };
        block.count();
        block.brief();
        block
    }

    /// Puts the pending renderings in place; returns the families that changed
    /// and whether anything did.
    fn flush(&mut self) -> (Vec<usize>, bool) {
        if self.queued.is_empty() {
            return (Vec::new(), false);
        }
        let pending = std::mem::take(&mut self.queued);
        let mut by_k: Vec<Option<&Pending>> = vec![None; self.status.len()];
        for p in &pending {
            if let Some(slot) = by_k.get_mut(p.k) {
                *slot = Some(p); // the latest wins
            }
        }
        let mut families = Vec::new();
        for (i, (part, segment)) in self.families.iter_mut().enumerate() {
            let new: Vec<Option<&[u8]>> = by_k
                .iter()
                .map(|p| p.map(|p| p.fragments.family(i).as_bytes()))
                .collect();
            if part.update(&new) {
                *segment = None;
                families.push(i);
            }
        }
        let items: Vec<Option<String>> = by_k
            .iter()
            .enumerate()
            .map(|(k, p)| p.map(|p| health_item(k, &p.json)))
            .collect();
        let items: Vec<Option<&[u8]>> = items
            .iter()
            .map(|i| i.as_deref().map(str::as_bytes))
            .collect();
        let mut changed = !families.is_empty() | self.health.update(&items);
        for (status, p) in self.status.iter_mut().zip(&by_k) {
            if let Some(p) = p
                && *status != p.status
            {
                *status = p.status;
                changed = true;
            }
        }
        self.count();
        if changed {
            self.brief();
        }
        (families, changed)
    }

    /// Re-joins the entries of the credentials that are not healthy.
    fn brief(&mut self) {
        let mut text = Vec::new();
        for (k, (health, _)) in self.status.iter().enumerate() {
            if *health == Some(Health::Healthy) || k >= self.health.ends.len() {
                continue;
            }
            let item = self.health.item(k);
            let item = if k > 0 {
                item.get(1..).unwrap_or(b"")
            } else {
                item
            };
            if !text.is_empty() {
                text.push(b',');
            }
            text.extend_from_slice(item);
        }
        self.brief = Bytes::from(text);
    }

    fn count(&mut self) {
        (self.healthy, self.unhealthy, self.pending, self.ok) = (0, 0, 0, true);
        for (health, critical) in &self.status {
            match health {
                Some(Health::Healthy) => self.healthy += 1,
                Some(Health::Unhealthy(_)) => self.unhealthy += 1,
                _ => self.pending += 1,
            }
            if *critical && *health != Some(Health::Healthy) {
                self.ok = false;
            }
        }
    }
}

/// A `/health` entry as stored in its block: with a leading comma unless first.
fn health_item(k: usize, json: &str) -> String {
    if k == 0 {
        json.to_string()
    } else {
        format!(",{json}")
    }
}

/// The only copy of every credential's `/metrics` lines and `/health` entry,
/// by block, plus the bodies assembled from them for the current version.
/// Written by `Slot::update`; read by scrapes. Never held while taking a
/// slot's lock.
#[derive(Default)]
pub struct Store {
    blocks: Vec<Block>,
    /// Bumped by every change; the assembled bodies are for one value of it.
    version: u64,
    metrics: Option<(u64, Arc<[Bytes]>)>,
    /// The compressed credentials' part: the gzip header and the shared
    /// deflate segments (no copy per version), with its CRC-32 and length.
    gzip: Option<(u64, Arc<[Bytes]>, u32, u64)>,
    /// Per family: CRC-32 and length of all its text, header included
    /// (`None`: recombine at the next gzip scrape).
    family_crc: Vec<Option<(u32, u64)>>,
    health: Option<(u64, bool, Arc<[Bytes]>)>,
    /// The default (not verbose) `/health` body.
    health_brief: Option<(u64, bool, Arc<[Bytes]>)>,
}

impl Store {
    fn build(slots: &[Arc<Slot>]) -> Store {
        let rendered: Vec<Rendering> = slots.iter().map(|s| s.render_now()).collect();
        Store {
            blocks: rendered.chunks(BLOCK).map(Block::build).collect(),
            version: 1,
            family_crc: vec![None; metrics::FAMILY_COUNT],
            ..Store::default()
        }
    }

    /// Records the credential at `position`'s new lines and entry; they are
    /// put in place before the next read.
    fn set(
        &mut self,
        position: usize,
        fragments: metrics::Fragments,
        json: String,
        rendered: &Rendered,
    ) {
        let (b, k) = (position / BLOCK, position % BLOCK);
        let Some(block) = self.blocks.get_mut(b) else {
            return;
        };
        block.queued.push(Pending {
            k,
            fragments,
            json,
            status: (rendered.health, rendered.critical),
        });
        if block.queued.len() >= FLUSH_AT {
            self.flush_block(b);
        }
    }

    fn flush_block(&mut self, b: usize) {
        let Some(block) = self.blocks.get_mut(b) else {
            return;
        };
        let (families, changed) = block.flush();
        for i in families {
            self.family_crc[i] = None;
        }
        if changed {
            self.version += 1;
        }
    }

    /// Puts every pending rendering in place.
    fn flush(&mut self) {
        for b in 0..self.blocks.len() {
            if !self.blocks[b].queued.is_empty() {
                self.flush_block(b);
            }
        }
    }

    /// The `/health` entry of the credential at `position` (shared, no copy).
    fn health_entry(&mut self, position: usize) -> Option<Bytes> {
        let (b, k) = (position / BLOCK, position % BLOCK);
        self.flush_block(b);
        let part = &self.blocks.get(b)?.health;
        let end = *part.ends.get(k)? as usize;
        let start = if k == 0 {
            0
        } else {
            part.ends[k - 1] as usize + 1
        };
        Some(part.text.slice(start..end))
    }

    fn family_present(&self, i: usize) -> bool {
        self.blocks.iter().any(|b| !b.families[i].0.text.is_empty())
    }

    /// The credentials' part of `/metrics`, as shared chunks.
    fn metrics(&mut self) -> Arc<[Bytes]> {
        self.flush();
        if let Some((v, chunks)) = &self.metrics
            && *v == self.version
        {
            return chunks.clone();
        }
        let mut chunks = Vec::new();
        for i in 0..metrics::FAMILY_COUNT {
            if !self.family_present(i) {
                continue;
            }
            chunks.push(metrics::header(i).text.clone());
            for b in &self.blocks {
                let text = &b.families[i].0.text;
                if !text.is_empty() {
                    chunks.push(text.clone());
                }
            }
        }
        let chunks: Arc<[Bytes]> = chunks.into();
        self.metrics = Some((self.version, chunks.clone()));
        chunks
    }

    /// The credentials' part of `/metrics` as the start of a gzip member
    /// (header and deflate segments), with its CRC-32 and length.
    fn metrics_gzip(&mut self) -> (Arc<[Bytes]>, u32, u64) {
        self.flush();
        if let Some((v, body, crc, len)) = &self.gzip
            && *v == self.version
        {
            return (body.clone(), *crc, *len);
        }
        let mut body = Vec::with_capacity(self.gzip.as_ref().map_or(64, |(_, b, _, _)| b.len()));
        body.push(Bytes::from_static(&metrics::GZIP_HEADER));
        let (mut crc, mut len) = (0u32, 0u64);
        // The compressor's state is a few hundred KiB: made when needed, not kept.
        let mut deflater: Option<metrics::Deflater> = None;
        for i in 0..metrics::FAMILY_COUNT {
            if !self.family_present(i) {
                continue;
            }
            let header = metrics::header(i);
            body.push(header.deflated.clone());
            let mut family = (header.crc, header.text.len() as u64);
            let known = self.family_crc[i];
            for b in &mut self.blocks {
                let (part, segment) = &mut b.families[i];
                if part.text.is_empty() {
                    continue;
                }
                let segment = segment.get_or_insert_with(|| {
                    deflater
                        .get_or_insert_with(metrics::Deflater::new)
                        .segment(part.text.clone())
                });
                if !segment.deflated.is_empty() {
                    body.push(segment.deflated.clone());
                }
                if known.is_none() {
                    family.0 =
                        metrics::crc32_combine(family.0, segment.crc, part.text.len() as u64);
                    family.1 += part.text.len() as u64;
                }
            }
            let family = known.unwrap_or(family);
            self.family_crc[i] = Some(family);
            crc = metrics::crc32_combine(crc, family.0, family.1);
            len += family.1;
        }
        let body: Arc<[Bytes]> = body.into();
        self.gzip = Some((self.version, body.clone(), crc, len));
        (body, crc, len)
    }

    fn health(&mut self, verbose: bool) -> (bool, Arc<[Bytes]>) {
        self.flush();
        let cached = if verbose {
            &self.health
        } else {
            &self.health_brief
        };
        if let Some((v, ok, chunks)) = cached
            && *v == self.version
        {
            return (*ok, chunks.clone());
        }
        let (mut healthy, mut unhealthy, mut pending, mut ok) = (0, 0, 0, true);
        for b in &self.blocks {
            healthy += b.healthy;
            unhealthy += b.unhealthy;
            pending += b.pending;
            ok &= b.ok;
        }
        let mut chunks = Vec::with_capacity(self.blocks.len() * 2 + 2);
        chunks.push(Bytes::from(format!(
            "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[",
            if ok { "ok" } else { "fail" }
        )));
        let mut first = true;
        for b in &self.blocks {
            let part = if verbose { &b.health.text } else { &b.brief };
            if part.is_empty() {
                continue;
            }
            if !first {
                chunks.push(Bytes::from_static(b","));
            }
            first = false;
            chunks.push(part.clone());
        }
        chunks.push(Bytes::from_static(b"]}\n"));
        let chunks: Arc<[Bytes]> = chunks.into();
        let entry = Some((self.version, ok, chunks.clone()));
        if verbose {
            self.health = entry;
        } else {
            self.health_brief = entry;
        }
        (ok, chunks)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Read;
    use std::path::Path;

    use super::*;
    use crate::outcome::{Evidence, Failure};

    fn config(n_el: usize, n_tw: usize) -> Config {
        let mut y = String::from("elevenlabs:\n");
        for i in 0..n_el {
            y += &format!(
                "  - name: el-{i}\n    api_key: sk_{i:048x}\n    base_url: http://127.0.0.1:9\n    critical: {}\n",
                i % 7 != 3
            );
        }
        y += "twilio:\n";
        for i in 0..n_tw {
            y += &format!(
                "  - name: tw-{i}\n    account_sid: AC{i:032x}\n    auth_token: {i:032x}\n    base_url: http://127.0.0.1:9\n"
            );
        }
        Config::from_yaml(&y, Path::new("t.yaml"), &HashMap::<String, String>::new())
            .expect("test config is valid")
    }

    fn attempt(check: &str, result: Result<Vec<Fact>, Failure>) -> Attempt {
        Attempt {
            check: check.into(),
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_millis(42),
            evidence: Evidence::default(),
            result,
        }
    }

    fn quota(used: u64) -> Fact {
        Fact::Quota {
            quota: Quota {
                used,
                limit: 10_000,
                reset_at: Some(1_800_000_000),
                tier: "starter".into(),
                status: "active".into(),
                ceiling: Some(10_000),
                open_invoices: None,
                exhausted: false,
            },
        }
    }

    /// Records a mix of verdicts, some credentials several times, some never.
    fn churn(state: &State, round: u64) {
        for (i, slot) in state.slots().iter().enumerate() {
            let i = i as u64;
            if (i + round) % 3 == 0 {
                continue;
            }
            let attempts = match (slot.provider, (i + round) % 4) {
                (_, 0) => vec![attempt(
                    crate::providers::auth_check(match slot.provider {
                        Provider::ElevenLabs => &ELEVENLABS_SPEC,
                        Provider::Twilio => &TWILIO_SPEC,
                    }),
                    Err(Failure::new(Reason::Timeout)),
                )],
                (Provider::ElevenLabs, 1) => vec![attempt(
                    "subscription",
                    Ok(vec![Fact::Invalid {
                        problem: Problem::InvalidApiKey,
                    }]),
                )],
                (Provider::ElevenLabs, _) => vec![
                    attempt("subscription", Ok(vec![Fact::Valid, quota(i * 10 + round)])),
                    attempt(
                        "permission_convai_write",
                        Ok(vec![Fact::Permission {
                            name: "convai_write".into(),
                            granted: round % 2 == 0,
                        }]),
                    ),
                ],
                (Provider::Twilio, _) => vec![attempt(
                    "phone_numbers",
                    Ok(vec![Fact::Valid, Fact::TwilioNumbers { count: i + round }]),
                )],
            };
            state.record(slot, &attempts);
        }
    }

    static ELEVENLABS_SPEC: std::sync::LazyLock<Spec> =
        std::sync::LazyLock::new(|| config(1, 0).credentials[0].spec.clone());
    static TWILIO_SPEC: std::sync::LazyLock<Spec> =
        std::sync::LazyLock::new(|| config(0, 1).credentials[0].spec.clone());

    /// The default `/health` body: the same, with only the credentials that
    /// are not healthy.
    fn expected_brief(state: &State) -> String {
        let snapshots: Vec<CredentialState> = state.slots().iter().map(|s| s.snapshot()).collect();
        let (mut healthy, mut unhealthy, mut pending, mut ok) = (0, 0, 0, true);
        let mut entries = Vec::new();
        for s in &snapshots {
            match s.health() {
                Health::Healthy => healthy += 1,
                Health::Unhealthy(_) => unhealthy += 1,
                Health::Pending => pending += 1,
            }
            ok &= !s.settings.critical || s.health() == Health::Healthy;
            if s.health() != Health::Healthy {
                entries.push(serde_json::to_string(&HealthEntry::of(s)).unwrap());
            }
        }
        format!(
            "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[{}]}}\n",
            if ok { "ok" } else { "fail" },
            entries.join(",")
        )
    }

    /// What the bodies must be: every credential rendered from scratch.
    fn expected(state: &State) -> (String, String, bool) {
        let fragments: Vec<metrics::Fragments> = state
            .slots()
            .iter()
            .map(|s| metrics::render_credential(&s.snapshot()))
            .collect();
        let mut text = String::new();
        for i in 0..metrics::FAMILY_COUNT {
            if fragments.iter().all(|f| f.family(i).is_empty()) {
                continue;
            }
            text.push_str(std::str::from_utf8(&metrics::header(i).text).unwrap());
            for f in &fragments {
                text.push_str(f.family(i));
            }
        }
        let snapshots: Vec<CredentialState> = state.slots().iter().map(|s| s.snapshot()).collect();
        let (mut healthy, mut unhealthy, mut pending, mut ok) = (0, 0, 0, true);
        for s in &snapshots {
            match s.health() {
                Health::Healthy => healthy += 1,
                Health::Unhealthy(_) => unhealthy += 1,
                Health::Pending => pending += 1,
            }
            ok &= !s.settings.critical || s.health() == Health::Healthy;
        }
        let entries: Vec<String> = snapshots
            .iter()
            .map(|s| serde_json::to_string(&HealthEntry::of(s)).unwrap())
            .collect();
        let health = format!(
            "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[{}]}}\n",
            if ok { "ok" } else { "fail" },
            entries.join(",")
        );
        (text, health, ok)
    }

    fn join(chunks: &[Bytes]) -> String {
        String::from_utf8(chunks.iter().flat_map(|c| c.iter().copied()).collect()).unwrap()
    }

    #[test]
    fn bodies_match_a_fresh_rendering_through_changes() {
        // Three blocks and a partial one; several rounds so blocks are
        // re-joined from queued renderings and from the flush threshold.
        let state = State::new(&config(BLOCK + 40, BLOCK + 7));
        for round in 0..6 {
            if round > 0 {
                churn(&state, round);
            }
            let (text, health, ok) = expected(&state);
            let body = state.metrics_body(false);
            let credentials = join(&body[..body.len() - 1]);
            assert_eq!(credentials, text, "round {round}");
            let (got_ok, chunks) = state.health_body(true);
            assert_eq!(join(&chunks), health, "round {round}");
            assert_eq!(got_ok, ok);
            serde_json::from_str::<serde_json::Value>(&join(&chunks)).unwrap();
            let (brief_ok, brief) = state.health_body(false);
            assert_eq!(join(&brief), expected_brief(&state), "round {round}");
            assert_eq!(brief_ok, ok);
            serde_json::from_str::<serde_json::Value>(&join(&brief)).unwrap();

            // gzip: one member whose CRC and length check out, same text.
            let gz: Vec<u8> = state
                .metrics_body(true)
                .iter()
                .flat_map(|c| c.iter().copied())
                .collect();
            let mut decoded = String::new();
            let mut decoder = flate2::read::GzDecoder::new(&gz[..]);
            decoder.read_to_string(&mut decoded).unwrap();
            let mut rest = Vec::new();
            decoder.into_inner().read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty(), "one gzip member");
            assert!(decoded.starts_with(&text), "round {round}");
            assert!(decoded[text.len()..].starts_with("# HELP credwatch_build_info"));

            for name in ["el-0", "el-129", "tw-3", "tw-134"] {
                let slot = state.slot(name).unwrap();
                let (_, entry) = state.health_entry(name).unwrap();
                assert_eq!(
                    std::str::from_utf8(&entry).unwrap(),
                    serde_json::to_string(&HealthEntry::of(&slot.snapshot())).unwrap()
                );
            }
        }
    }

    #[test]
    fn checks_total_counts_every_attempt_answered_or_not_from_the_first() {
        let state = State::new(&config(1, 0));
        let slot = state.slot("el-0").expect("slot");
        let text = |state: &State| join(&state.metrics_body(false));
        let line = |text: &str, name: &str| -> Option<String> {
            text.lines()
                .find(|l| l.starts_with(name) && l.contains("check=\"subscription\""))
                .map(str::to_owned)
        };
        assert_eq!(line(&text(&state), "credwatch_checks_total{"), None);
        // First attempt, no answer: the series appears at 1, next to its error.
        state.record(
            &slot,
            &[attempt("subscription", Err(Failure::new(Reason::Timeout)))],
        );
        let t = text(&state);
        assert!(
            line(&t, "credwatch_checks_total{").is_some_and(|l| l.ends_with(" 1")),
            "{t}"
        );
        // Then two answers and one more failure: 4 attempts, 2 errors.
        state.record(&slot, &[attempt("subscription", Ok(vec![Fact::Valid]))]);
        state.record(&slot, &[attempt("subscription", Ok(vec![Fact::Valid]))]);
        state.record(
            &slot,
            &[attempt("subscription", Err(Failure::new(Reason::Network)))],
        );
        let t = text(&state);
        assert!(
            line(&t, "credwatch_checks_total{").is_some_and(|l| l.ends_with(" 4")),
            "{t}"
        );
        let errors: f64 = t
            .lines()
            .filter(|l| l.starts_with("credwatch_check_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(errors, 2.0, "{t}");
    }

    #[test]
    fn reload_keeps_bodies_consistent() {
        let state = State::new(&config(20, 5));
        churn(&state, 1);
        state.reconcile(&config(3, 300));
        churn(&state, 2);
        let (text, health, _) = expected(&state);
        let body = state.metrics_body(false);
        assert_eq!(join(&body[..body.len() - 1]), text);
        assert_eq!(join(&state.health_body(true).1), health);
        assert_eq!(join(&state.health_body(false).1), expected_brief(&state));
    }

    #[test]
    fn parts_replace_items() {
        let mut part = Part::join(["a", "bb", "ccc"].iter().map(|s| s.as_bytes()));
        assert!(!part.update(&[None, Some(b"bb"), None]));
        assert!(part.update(&[Some(b"xyz"), None, Some(b"")]));
        assert_eq!(&part.text[..], b"xyzbb");
        assert_eq!(part.ends, vec![3, 5, 5]);
        assert_eq!(part.item(2), b"");
    }
}
