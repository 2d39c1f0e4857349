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
use crate::metrics::store::{Entry, Store};
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

    /// The `/metrics` body as chunks: the credentials' part (shared
    /// buffers, assembled only when something changed since the last
    /// scrape), the call paths', then `own` (credwatch's own metrics,
    /// `metrics::own::Own::render`). With `gzip`, the same text as one gzip
    /// member.
    pub(crate) fn metrics_body(&self, mut own: String, gzip: bool) -> Vec<Bytes> {
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
    pub(crate) fn health_body(&self, verbose: bool) -> (bool, Vec<Bytes>) {
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
fn with_paths(chunks: &[Bytes], ok: bool, paths_ok: bool, entries: &[String]) -> Vec<Bytes> {
    let mut out = chunks.to_vec();
    if ok
        && !paths_ok
        && let Some(first) = out.first_mut()
        && let Some(rest) = first.strip_prefix(b"{\"status\":\"ok\"".as_slice())
    {
        let mut head = b"{\"status\":\"fail\"".to_vec();
        head.extend_from_slice(rest);
        *first = Bytes::from(head);
    }
    if let Some(last) = out.last_mut()
        && last.as_ref() == b"]}\n"
    {
        *last = Bytes::from(format!("],\"call_paths\":[{}]}}\n", entries.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    /// credwatch's own part of `/metrics`, as the server adds it.
    fn own() -> String {
        crate::metrics::own::Own::new().render(None)
    }

    use std::io::Read;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::metrics::store::BLOCK;
    use crate::outcome::{Evidence, Fact, Failure, Reason};

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

    /// Records a mix of verdicts, some credentials several times, some never.
    fn churn(state: &State, round: u64) {
        for (i, slot) in state.slots().iter().enumerate() {
            let i = i as u64;
            if (i + round) % 3 == 0 {
                continue;
            }
            let p = slot.provider;
            let attempts = match (i + round) % 4 {
                0 => vec![attempt(p.auth_check(), Err(Failure::new(Reason::Timeout)))],
                1 => vec![attempt(
                    p.auth_check(),
                    Ok(vec![Fact::Invalid {
                        problem: p.sample_problem(),
                    }]),
                )],
                _ => vec![
                    attempt(
                        p.auth_check(),
                        Ok(vec![Fact::Valid, p.sample_detail(i * 10 + round)]),
                    ),
                    attempt(
                        "permission_convai_write",
                        Ok(vec![Fact::Permission {
                            name: "convai_write".into(),
                            granted: round % 2 == 0,
                            basis: crate::outcome::Basis::Inferred,
                        }]),
                    ),
                ],
            };
            state.record(slot, &attempts);
        }
    }

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
                entries.push(crate::render::health::credential(s));
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
            .map(crate::render::health::credential)
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
            let body = state.metrics_body(own(), false);
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
                .metrics_body(own(), true)
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
                    crate::render::health::credential(&slot.snapshot())
                );
            }
        }
    }

    #[test]
    fn checks_total_counts_every_attempt_answered_or_not_from_the_first() {
        let state = State::new(&config(1, 0));
        let slot = state.slot("el-0").expect("slot");
        let text = |state: &State| join(&state.metrics_body(own(), false));
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
        let body = state.metrics_body(own(), false);
        assert_eq!(join(&body[..body.len() - 1]), text);
        assert_eq!(join(&state.health_body(true).1), health);
        assert_eq!(join(&state.health_body(false).1), expected_brief(&state));
    }
}
