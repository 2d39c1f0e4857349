//! The slots: one [`Slot`] per credential, written by the scheduler and
//! read by `/metrics`, `/health`, `/` and `check`, and the readiness latch.
//!
//! Every write applies the attempt to the credential's
//! [`CredentialState`] (the rules are in [`crate::verdict`]) and re-renders
//! that credential once into the exposition store
//! ([`crate::metrics::store`]), so readers only copy pre-rendered text: a
//! scrape never re-does work per credential, never waits on a probe, and
//! never calls upstream. No lock here is held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;

use crate::call_paths::{Credentials, Observation, PathState};
use crate::config::{Config, Credential, Provider};
use crate::metrics;
use crate::metrics::store::{Chunk, Entry, Store};
use crate::outcome::Attempt;
use crate::providers::report::Finding;
use crate::verdict::{CredentialState, Health, Recorded, Settings, Standing};

mod paths;
pub use paths::PathSlot;

/// One credential's slot: its state, under one short lock.
pub struct Slot {
    pub name: String,
    pub provider: Provider,
    /// Where the slot is in the current list, and so in the store.
    position: AtomicUsize,
    inner: Mutex<CredentialState>,
    /// What `check` says about the answers so far (`check::findings::merge`),
    /// for the status page, with the fingerprint of the secret they are about.
    findings: Mutex<(String, Vec<Finding>)>,
}

impl Slot {
    fn new(cred: &Credential, position: usize) -> Self {
        Slot {
            name: cred.name.clone(),
            provider: cred.provider(),
            position: AtomicUsize::new(position),
            inner: Mutex::new(CredentialState::new(cred)),
            findings: Mutex::new((String::new(), Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CredentialState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> CredentialState {
        self.lock().clone()
    }

    /// A copy of the current state and the findings about its secret (none
    /// when they were about a secret since replaced).
    pub fn view(&self) -> (CredentialState, Vec<Finding>) {
        let state = self.snapshot();
        let findings = lock(&self.findings);
        let findings = if findings.0 == state.fingerprint {
            findings.1.clone()
        } else {
            Vec::new()
        };
        (state, findings)
    }

    /// Replaces the findings with `f(state, findings so far)`; the findings
    /// so far are none when they were about another secret.
    pub fn explain(&self, f: impl FnOnce(&CredentialState, &[Finding]) -> Vec<Finding>) {
        let state = self.lock();
        let mut findings = lock(&self.findings);
        let before: &[Finding] = if findings.0 == state.fingerprint {
            &findings.1
        } else {
            &[]
        };
        let next = f(&state, before);
        // Most credentials have nothing to say: keep no copy of the
        // fingerprint for them.
        *findings = if next.is_empty() {
            (String::new(), next)
        } else {
            (state.fingerprint.clone(), next)
        };
    }

    /// Whether the verdict holds a problem found by `check` (without a copy).
    pub fn has_problem(&self, check: &str) -> bool {
        self.lock().verdict.problems.contains_key(check)
    }

    /// When a new secret was seen while running (without a copy).
    pub fn changed_at(&self) -> Option<SystemTime> {
        self.lock().changed_at
    }

    /// `provider/account` of the account whose series it may export.
    fn account_key(&self) -> Option<String> {
        let account = self.lock().settings.account.clone()?;
        Some(format!("{}/{account}", self.provider.as_str()))
    }

    /// What credwatch refuses in the secret's value, if it does.
    pub fn refusal(&self) -> Option<String> {
        self.lock().refused.clone()
    }

    /// The credential's health (without a copy).
    pub(crate) fn health(&self) -> Health {
        self.lock().health()
    }

    /// Whether a cycle of its checks has ended (answered or not).
    pub fn has_finished_a_cycle(&self) -> bool {
        self.lock().cycles > 0
    }

    /// Whether it is usable now; `None` while it has no verdict.
    pub fn usable(&self) -> Option<bool> {
        match self.lock().health() {
            Health::Healthy => Some(true),
            Health::Unhealthy(_) => Some(false),
            Health::Pending => None,
        }
    }

    /// What one of its permission verdicts rests on (without a copy).
    pub(crate) fn permission_basis(&self, name: &str) -> Option<crate::outcome::Basis> {
        self.lock().verdict.permission_basis.get(name).copied()
    }

    /// What upstream said of one of its permissions (without a copy).
    pub(crate) fn permission(&self, name: &str) -> Option<bool> {
        self.lock().verdict.permissions.get(name).copied()
    }

    /// Applies `f`, re-renders, and puts the new lines in `store` (under
    /// this slot's lock, so the store never sees renderings out of order).
    fn update<T>(&self, store: &Mutex<Store>, f: impl FnOnce(&mut CredentialState) -> T) -> T {
        let mut guard = self.lock();
        let out = f(&mut guard);
        let entry = Entry::of(&guard);
        lock(store).set(self.position.load(Ordering::Relaxed), entry);
        out
    }

    /// The current metric lines and `/health` entry, without changing anything.
    fn render_now(&self) -> Entry {
        Entry::of(&self.lock())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A store of `slots`' current renderings, in order.
fn build_store(slots: &[Arc<Slot>]) -> Store {
    let entries: Vec<Entry> = slots.iter().map(|s| s.render_now()).collect();
    Store::build(&entries)
}

/// The state of every credential, plus credwatch's own.
pub struct State {
    slots: RwLock<Arc<Slots>>,
    /// The call paths, in config order.
    paths: RwLock<Arc<Vec<Arc<PathSlot>>>>,
    ready: AtomicBool,
    /// Every call path has been looked at once (checked once `ready` is set).
    paths_ready: AtomicBool,
    /// Slots that have not finished a cycle yet (an upper bound; confirmed
    /// by a full scan when it reaches 0), so readiness is not an O(n) scan
    /// per probe result.
    unready: AtomicUsize,
    store: Mutex<Store>,
    /// Held while deciding which credential exports an account's series,
    /// so two decisions never interleave.
    accounts: Mutex<()>,
}

/// The slots in config order, by name, and by account.
struct Slots {
    list: Arc<Vec<Arc<Slot>>>,
    by_name: HashMap<String, Arc<Slot>>,
    /// The credentials of each account (`provider/account`), in config order.
    by_account: HashMap<String, Vec<Arc<Slot>>>,
}

impl Slots {
    fn new(list: Vec<Arc<Slot>>) -> Self {
        let by_name = list.iter().map(|s| (s.name.clone(), s.clone())).collect();
        let mut by_account: HashMap<String, Vec<Arc<Slot>>> = HashMap::new();
        for s in &list {
            if let Some(key) = s.account_key() {
                by_account.entry(key).or_default().push(s.clone());
            }
        }
        Slots {
            list: Arc::new(list),
            by_name,
            by_account,
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
        let store = build_store(&slots);
        let state = Arc::new(State {
            unready: AtomicUsize::new(slots.len()),
            slots: RwLock::new(Arc::new(Slots::new(slots))),
            paths: RwLock::new(Arc::new(paths::reconcile(&[], config))),
            ready: AtomicBool::new(false),
            paths_ready: AtomicBool::new(false),
            store: Mutex::new(store),
            accounts: Mutex::new(()),
        });
        state.settle_accounts();
        state
    }

    /// Decides, for the account of `slot`, which of its credentials exports
    /// the account's series (quota, balance): the first in config order
    /// that holds the values and is not rejected, else the first that holds
    /// them, else the first. Re-renders the credentials whose part changed.
    /// Called after every write, outside the slot's lock.
    fn settle_account(&self, slot: &Slot) {
        let Some(key) = slot.account_key() else {
            return;
        };
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(members) = slots.by_account.get(&key) {
            self.settle(members);
        }
    }

    fn settle_accounts(&self) {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        for members in slots.by_account.values() {
            self.settle(members);
        }
    }

    fn settle(&self, members: &[Arc<Slot>]) {
        let _one_at_a_time = lock(&self.accounts);
        let seen: Vec<(bool, bool, bool)> = members
            .iter()
            .map(|m| {
                let s = m.lock();
                (
                    s.verdict.details.account_values(),
                    s.verdict.valid != Some(false),
                    s.owns_account,
                )
            })
            .collect();
        let owner = seen
            .iter()
            .position(|(values, accepted, _)| *values && *accepted)
            .or_else(|| seen.iter().position(|(values, _, _)| *values))
            .unwrap_or(0);
        for (i, (m, (_, _, owns))) in members.iter().zip(&seen).enumerate() {
            if *owns != (i == owner) {
                m.update(&self.store, |s| s.owns_account = i == owner);
            }
        }
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

    /// Records one cycle's attempts for `slot`; says what changed, for the log.
    pub fn record(&self, slot: &Slot, attempts: &[Attempt]) -> Recorded {
        let recorded = slot.update(&self.store, |s| s.record(attempts));
        self.settle_account(slot);
        if recorded.first {
            self.settled_one();
        }
        recorded
    }

    /// One more credential has its first outcome: ready once all have.
    fn settled_one(&self) {
        if self.ready.load(Ordering::Relaxed) {
            return;
        }
        let left = self
            .unready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0)
            .saturating_sub(1);
        if left == 0 && self.slots().iter().all(|s| s.lock().settled()) {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// Records a new secret seen while running (a rotation): the credential
    /// starts from nothing until the new value gets a definitive answer
    /// ([`CredentialState::secret_changed`]). Also ends a refusal.
    pub fn record_fingerprint(&self, slot: &Slot, fingerprint: String) {
        slot.update(&self.store, |s| {
            s.secret_changed(fingerprint, SystemTime::now());
        });
    }

    /// Records that credwatch refuses the secret's new value (`why`: the
    /// key path and what is wrong, never the value): unhealthy,
    /// `invalid_config`, until the value changes.
    pub fn record_refusal(&self, slot: &Slot, why: String) {
        let first = slot.update(&self.store, |s| {
            let first = !s.settled();
            s.refuse(why);
            first
        });
        if first {
            self.settled_one();
        }
    }

    /// How the credential stands now (for the log).
    pub fn standing(&self, slot: &Slot) -> Standing {
        slot.lock().standing()
    }

    /// Every credential has finished at least one cycle, and every call path
    /// has been looked at once (a latch: it stays set).
    pub fn ready(&self) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        if self.paths_ready.load(Ordering::Acquire) {
            return true;
        }
        let all = self.paths().iter().all(|p| p.state().checked_at.is_some());
        if all {
            self.paths_ready.store(true, Ordering::Release);
        }
        all
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
                        s.secret_changed(fingerprint, SystemTime::now());
                    });
                    next.push(slot.clone());
                }
                None => next.push(Arc::new(Slot::new(cred, next.len()))),
            }
        }
        for (i, slot) in next.iter().enumerate() {
            slot.position.store(i, Ordering::Relaxed);
        }
        let store = build_store(&next);
        *lock(&self.store) = store;
        let paths = paths::reconcile(&self.paths(), config);
        *self.paths.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(paths);
        let unready = next.iter().filter(|s| !s.lock().settled()).count();
        *self.slots.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Slots::new(next));
        self.unready.store(unready, Ordering::Release);
        self.settle_accounts();
    }

    /// The call paths' slots, in config order.
    pub fn paths(&self) -> Arc<Vec<Arc<PathSlot>>> {
        self.paths.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn path(&self, name: &str) -> Option<Arc<PathSlot>> {
        self.paths().iter().find(|p| p.name == name).cloned()
    }

    /// Records one cycle of a call path's looks.
    pub fn record_path(&self, name: &str, observations: Vec<Observation>) {
        if let Some(slot) = self.path(name) {
            slot.record(observations);
        }
    }

    /// One path's state, its credential links read from their slots now.
    pub fn path_state(&self, slot: &PathSlot) -> PathState {
        let state = slot.state();
        let caller = self.slot(&state.path.caller);
        let carrier = self.slot(&state.path.carrier);
        let credentials = Credentials {
            caller: caller.as_ref().map(|s| s.health()),
            convai_write: caller.as_ref().and_then(|s| s.permission("convai_write")),
            convai_write_basis: caller
                .as_ref()
                .and_then(|s| s.permission_basis("convai_write")),
            carrier: carrier.as_ref().map(|s| s.health()),
        };
        paths::with_credentials(state, credentials)
    }

    /// Every path's state now, in config order.
    pub fn path_states(&self) -> Vec<PathState> {
        self.paths().iter().map(|p| self.path_state(p)).collect()
    }

    /// One path's readiness and `/health` entry.
    pub(crate) fn path_health(&self, name: &str) -> Option<(bool, Bytes)> {
        let slot = self.path(name)?;
        let state = self.path_state(&slot);
        let now = tokio::time::Instant::now();
        Some((
            state.ready(now),
            Bytes::from(crate::render::health::call_path(&state, now)),
        ))
    }

    /// The `/metrics` body as chunks: the credentials' part (the store's
    /// pieces, inflated as they are written), the call paths', then `own`
    /// (credwatch's own metrics, `metrics::own::Own::render`). With `gzip`,
    /// the same text as one gzip member.
    pub(crate) fn metrics_body(&self, mut own: String, gzip: bool) -> Vec<Chunk> {
        let paths = self.path_states();
        if !paths.is_empty() {
            own =
                crate::call_paths::exposition::metrics(&paths, tokio::time::Instant::now()) + &own;
        }
        metrics::store::metrics_body(&self.store, own, gzip)
    }

    /// One credential's health and `/health` entry (a JSON object).
    pub(crate) fn health_entry(&self, name: &str) -> Option<(Option<Health>, Bytes)> {
        let slot = self.slot(name)?;
        let health = Some(slot.health());
        let entry = lock(&self.store).health_entry(slot.position.load(Ordering::Relaxed))?;
        Some((health, entry))
    }

    /// The `/health` body as chunks, and whether every critical credential is
    /// healthy. With `verbose`, every credential's entry; without, only those
    /// that are not healthy (unhealthy or pending), so the usual body is a
    /// few hundred bytes whatever the number of credentials.
    pub(crate) fn health_body(&self, verbose: bool) -> (bool, Vec<Chunk>) {
        let (ok, chunks) = lock(&self.store).health(verbose);
        let paths = self.path_states();
        if paths.is_empty() {
            return (ok, chunks.to_vec());
        }
        let now = tokio::time::Instant::now();
        let mut paths_ok = true;
        let mut entries = Vec::new();
        for p in &paths {
            let ready = p.ready(now);
            paths_ok &= ready || !p.path.critical;
            if verbose || !ready {
                entries.push(crate::render::health::call_path(p, now));
            }
        }
        (ok && paths_ok, with_paths(&chunks, ok, paths_ok, &entries))
    }
}

/// The credentials' `/health` body (`{"status":…,"credentials":[…]}\n`)
/// with the paths' entries added as `"call_paths":[…]`, and its status
/// turned to `fail` when a critical path is not ready.
fn with_paths(chunks: &[Chunk], ok: bool, paths_ok: bool, entries: &[String]) -> Vec<Chunk> {
    let mut out = chunks.to_vec();
    if ok
        && !paths_ok
        && let Some(Chunk::Ready(first)) = out.first_mut()
        && let Some(rest) = first.strip_prefix(b"{\"status\":\"ok\"".as_slice())
    {
        let mut head = b"{\"status\":\"fail\"".to_vec();
        head.extend_from_slice(rest);
        *first = Bytes::from(head);
    }
    if let Some(Chunk::Ready(last)) = out.last_mut()
        && last.as_ref() == b"]}\n"
    {
        *last = Bytes::from(format!("],\"call_paths\":[{}]}}\n", entries.join(",")));
    }
    out
}

#[cfg(test)]
mod tests;
