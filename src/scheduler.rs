//! The scheduler: runs every credential's checks on its own interval.
//!
//! One loop owns a timer queue; a probe task exists only while a probe is in
//! flight, so 10,000 idle credentials cost a heap entry each, not a task.
//! Probes of one credential never overlap. The first round starts within a
//! few seconds; after it, each credential settles on a random phase of its
//! interval so checks spread evenly instead of arriving in bursts. A check
//! that gets no definitive answer backs off (never probing faster than the
//! interval, honouring `Retry-After`). Secret files are polled and a changed
//! secret is re-probed at once.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Credential, Shared};
use crate::metrics::own::Own;
use crate::outcome::{Attempt, Fact};
use crate::providers::{self, Context, Plan, http::Upstream};
use crate::state::{Slot, State};
use crate::verdict::{Health, PendingCause, Recorded, Standing, refusal};

/// The first round is spread over at most this long.
pub const STARTUP_SPREAD: Duration = Duration::from_secs(5);
/// Backoff never waits longer than this (or the interval, if longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// A failure that persists (the same reason, the same standing) is logged
/// when it starts, then at most once per this period ("still failing").
pub const STILL_FAILING_LOG_EVERY: Duration = Duration::from_secs(15 * 60);

/// When to check next: the timing policy, free of I/O so it is tested on paused time.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    /// Where in the interval this credential settles after the first round.
    phase: Duration,
    cycles: u64,
    failures: u32,
}

/// How the auth check of a cycle ended, as far as timing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paced {
    Definitive,
    Failed { retry_after: Option<Duration> },
}

impl Pacer {
    pub fn new(interval: Duration, rng: &mut fastrand::Rng) -> Self {
        Pacer {
            interval,
            phase: interval.mul_f64(rng.f64()),
            cycles: 0,
            failures: 0,
        }
    }

    pub fn set_interval(&mut self, interval: Duration, rng: &mut fastrand::Rng) {
        if interval != self.interval {
            self.interval = interval;
            self.phase = interval.mul_f64(rng.f64());
        }
    }

    /// Delay of the very first check: random, within [`STARTUP_SPREAD`].
    pub fn first_delay(&self, rng: &mut fastrand::Rng) -> Duration {
        self.interval.min(STARTUP_SPREAD).mul_f64(rng.f64())
    }

    /// Cycles finished.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Consecutive cycles without a definitive answer.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A new secret: the old one's failures say nothing about it.
    pub fn forget_failures(&mut self) {
        self.failures = 0;
    }

    /// When the next cycle is due, given when this one started and how it ended.
    pub fn next(
        &mut self,
        epoch: Instant,
        started: Instant,
        outcome: Paced,
        rng: &mut fastrand::Rng,
    ) -> Instant {
        self.cycles += 1;
        match outcome {
            Paced::Definitive => {
                self.failures = 0;
                let regular = started + self.interval;
                if self.cycles == 1 {
                    // Leave the startup burst for this credential's own phase.
                    regular.max(epoch + self.interval + self.phase)
                } else {
                    regular
                }
            }
            Paced::Failed { retry_after } => {
                self.failures = self.failures.saturating_add(1);
                let cap = MAX_BACKOFF.max(self.interval);
                let exp = self.failures.saturating_sub(1).min(16);
                let backoff = self.interval.saturating_mul(1u32 << exp).min(cap);
                // Up to 20 % jitter so credentials failing together do not retry together.
                let jittered = backoff.mul_f64(1.0 + 0.2 * rng.f64()).min(cap.mul_f64(1.2));
                let wait = jittered
                    .max(retry_after.unwrap_or(Duration::ZERO))
                    .max(self.interval);
                started + wait
            }
        }
    }
}

/// Requests to the running scheduler.
#[derive(Debug)]
pub enum Command {
    /// Switch to a new, already validated config.
    Reload(Arc<Config>),
}

/// How long a graceful stop waits for probes in flight, at most: the
/// longest configured `timeout` plus this margin, capped by [`MAX_DRAIN`].
const DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// Within Kubernetes' default 30 s grace period, with room for the server's drain.
pub const MAX_DRAIN: Duration = Duration::from_secs(20);

/// Owns the scheduler task: [`SchedulerHandle::shutdown`] stops it
/// gracefully; dropping the handle stops it at once and cancels every probe
/// in flight.
pub struct SchedulerHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// Graceful stop: no new probes, wait for the ones in flight.
    stop: CancellationToken,
    /// Abort: cancel the probes in flight.
    cancel: CancellationToken,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SchedulerHandle {
    pub fn reload(&self, config: Arc<Config>) {
        let _ = self.commands.send(Command::Reload(config));
    }

    /// Stops starting probes, waits for those in flight (their results are
    /// recorded) up to the longest `timeout` plus a second (at most
    /// [`MAX_DRAIN`]), then cancels what is left and returns.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl SchedulerHandle {
    /// [`SchedulerHandle::shutdown`], bounded: after `bound` (plus a
    /// second) the loop is aborted wherever it waits.
    pub async fn shutdown_within(&self, bound: Duration) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(bound + DRAIN_MARGIN, &mut task)
                .await
                .is_err()
        {
            tracing::warn!("the scheduler did not stop within {bound:?}; aborting it");
            self.cancel.cancel();
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts the scheduler for `config`, writing into `state`; its own
/// figures (lag, actual intervals) go to `own`.
pub fn spawn(
    config: Arc<Config>,
    state: Arc<State>,
    own: Arc<Own>,
    upstream: Arc<Upstream>,
) -> SchedulerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let stop = CancellationToken::new();
    let scheduler = Scheduler::new(
        config,
        state,
        own,
        upstream,
        rx,
        stop.clone(),
        cancel.clone(),
    );
    let task = tokio::spawn(scheduler.run());
    SchedulerHandle {
        commands: tx,
        stop,
        cancel,
        task: std::sync::Mutex::new(Some(task)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &PathBuf) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

struct Entry {
    cred: Arc<Credential>,
    slot: Arc<Slot>,
    pacer: Pacer,
    /// Bumped when the credential changes; results of older probes are dropped.
    generation: u64,
    /// Bumped whenever the entry is (re)queued; stale queue items are skipped.
    ticket: u64,
    running: bool,
    /// Re-probe as soon as the running probe ends.
    rerun: bool,
    last_details: Option<Instant>,
    force_details: bool,
    /// The linked credential's verdict (usable or not, `None`: none yet)
    /// the last cycle with details judged the imported numbers with.
    linked_seen: Option<Option<bool>>,
    /// Resources upstream said this secret may not read: not asked again
    /// until the secret or the credential's config changes.
    not_permitted: BTreeSet<&'static str>,
    files: Vec<(PathBuf, Option<FileStamp>)>,
    /// The credential's config changed: its next cycle's findings replace
    /// all of the old ones (a check it no longer runs says nothing).
    fresh_findings: bool,
    /// Its informational work ([`providers::informational`]) is running,
    /// under this ticket (unique across the scheduler's life).
    details_running: Option<u64>,
    /// Upstream's `Retry-After` stopped the informational work: no details before this.
    details_not_before: Option<Instant>,
    /// When its last cycle started (for the interval histogram).
    last_started: Option<Instant>,
    /// `elevenlabs[0]`, `twilio[2]`: where it is in the config file.
    key_path: String,
    /// credwatch refuses the secret's value: nothing is sent until it changes.
    refused: bool,
    /// What the log last said about it.
    log: LogState,
}

/// When the log last spoke about a credential and each of its checks, so a
/// persisting failure is not repeated every interval.
struct LogState {
    /// The standing last logged, since when (wall clock, for the message)
    /// and when it was last logged.
    standing: Standing,
    since: SystemTime,
    logged: Instant,
    /// Per check: when its persisting failure was last logged.
    checks: HashMap<String, Instant>,
}

impl LogState {
    fn new(standing: Standing) -> Self {
        LogState {
            standing,
            since: SystemTime::now(),
            logged: Instant::now(),
            checks: HashMap::new(),
        }
    }
}

/// Checks this late (the most overdue one) start an episode of lateness:
/// one warning naming the request rate needed and achieved.
pub const LATE: Duration = Duration::from_secs(10);
/// An episode ends after the checks were on time (lag under [`LATE`]) this long.
const CALM: Duration = Duration::from_secs(60);
/// The achieved request rate is measured over the last 30 to 60 s.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// Whether checks run late, and the request counts to say how late.
struct Lateness {
    /// Since when checks have run late, if they do.
    episode: Option<Instant>,
    calm_since: Option<Instant>,
    /// Two samples of (time, requests sent), [`RATE_WINDOW`] apart.
    older: (Instant, u64),
    newer: (Instant, u64),
}

struct Done {
    name: String,
    generation: u64,
    started: Instant,
    plan: Plan,
    attempts: Vec<Attempt>,
    /// The linked credential as the cycle saw it (for the findings).
    linked: Option<providers::Linked>,
}

/// The informational work of one cycle, finished.
struct DetailsDone {
    /// The credential as the work saw it: a replaced one (a reload, a new
    /// secret) drops the result.
    cred: Arc<Credential>,
    ticket: u64,
    generation: u64,
    informational: providers::Informational,
    linked: Option<providers::Linked>,
}

struct Scheduler {
    /// Not the whole config: each entry holds its own credential, and the
    /// rest is not needed after start, so 10,000 credentials are kept once.
    secret_poll_interval: Duration,
    shared: Arc<Shared>,
    state: Arc<State>,
    /// credwatch's own metrics: the lag and the actual intervals.
    own: Arc<Own>,
    upstream: Arc<Upstream>,
    commands: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
    cancel: CancellationToken,
    /// How long a graceful stop waits for probes in flight.
    drain: Duration,
    /// The config's `strict`, for secret-file re-reads.
    strict: bool,
    entries: HashMap<String, Entry>,
    queue: BinaryHeap<Reverse<(Instant, u64, String)>>,
    epoch: Instant,
    rng: fastrand::Rng,
    max_in_flight: usize,
    /// Credentials waiting for the first cycle of the one they link to.
    waiting: HashMap<String, Vec<String>>,
    /// The call paths' cycles.
    paths: paths::Paths,
    /// Informational work in flight, apart from the decisive probes (one
    /// per credential at most; each bounds its own lookups and deadline).
    details: JoinSet<DetailsDone>,
    details_seq: u64,
    lateness: Lateness,
}

impl Scheduler {
    fn new(
        config: Arc<Config>,
        state: Arc<State>,
        own: Arc<Own>,
        upstream: Arc<Upstream>,
        commands: mpsc::UnboundedReceiver<Command>,
        stop: CancellationToken,
        cancel: CancellationToken,
    ) -> Self {
        let mut s = Scheduler {
            shared: Arc::new(config.shared.clone()),
            secret_poll_interval: config.secret_poll_interval,
            state,
            own,
            upstream,
            commands,
            stop,
            cancel,
            drain: drain(&config),
            strict: config.strict,
            entries: HashMap::new(),
            queue: BinaryHeap::new(),
            epoch: Instant::now(),
            rng: fastrand::Rng::new(),
            max_in_flight: 1,
            waiting: HashMap::new(),
            paths: paths::Paths::default(),
            details: JoinSet::new(),
            details_seq: 0,
            lateness: Lateness {
                episode: None,
                calm_since: None,
                older: (Instant::now(), 0),
                newer: (Instant::now(), 0),
            },
        };
        s.max_in_flight = max_in_flight(&config);
        for (cred, key_path) in with_key_paths(&config) {
            if let Some(slot) = s.state.slot(&cred.name) {
                s.add(cred.clone(), slot, key_path);
            }
        }
        s.reconcile_paths(&config);
        s
    }

    fn add(&mut self, cred: Credential, slot: Arc<Slot>, key_path: String) {
        let pacer = Pacer::new(cred.interval, &mut self.rng);
        let due = Instant::now() + pacer.first_delay(&mut self.rng);
        let files = cred
            .secret_files()
            .into_iter()
            .map(|p| (p.to_path_buf(), stamp(&p.to_path_buf())))
            .collect();
        let name = cred.name.clone();
        let refusal = refusal(&cred, &key_path, "");
        let standing = self.state.standing(&slot);
        self.entries.insert(
            name.clone(),
            Entry {
                cred: Arc::new(cred),
                slot,
                pacer,
                generation: 0,
                ticket: 0,
                running: false,
                rerun: false,
                last_details: None,
                force_details: true,
                linked_seen: None,
                not_permitted: BTreeSet::new(),
                files,
                fresh_findings: false,
                details_running: None,
                details_not_before: None,
                last_started: None,
                key_path,
                refused: false,
                log: LogState::new(standing),
            },
        );
        match refusal {
            Some(why) => self.refuse(&name, why),
            None => self.schedule(&name, due),
        }
    }

    /// credwatch refuses the credential's secret (`why` names the key path
    /// and what is wrong): unhealthy `invalid_config`, no request sent, any
    /// probe in flight discarded, until the value changes.
    fn refuse(&mut self, name: &str, why: String) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.refused
            && self
                .state
                .slot(name)
                .is_some_and(|s| s.refusal().as_deref() == Some(&why))
        {
            return;
        }
        tracing::warn!(
            credential = %name, provider = %e.cred.provider(), reason = "invalid_config",
            "credwatch refuses the secret and sends nothing until it is fixed; unhealthy: {why}"
        );
        e.refused = true;
        e.generation += 1;
        e.not_permitted.clear();
        e.ticket += 1;
        self.state.record_refusal(&e.slot, why);
        e.log = LogState::new(self.state.standing(&e.slot));
    }

    /// The secret changed to a value credwatch accepts (or back to the one
    /// in use, after a refusal): start from nothing and probe it now.
    fn accept(&mut self, name: &str, new: Option<Credential>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if let Some(cred) = new {
            e.cred = Arc::new(cred);
        }
        let fingerprint = e.cred.fingerprint();
        tracing::info!(credential = %name, fingerprint = %fingerprint, "secret changed; no verdict until the new value is checked; re-checking now");
        e.refused = false;
        e.generation += 1;
        e.not_permitted.clear();
        e.pacer.forget_failures();
        self.state.record_fingerprint(&e.slot, fingerprint);
        e.log = LogState::new(self.state.standing(&e.slot));
        self.probe_now(name);
        self.paths_of_changed(name);
    }

    fn schedule(&mut self, name: &str, at: Instant) {
        if let Some(e) = self.entries.get_mut(name) {
            e.ticket += 1;
            self.queue.push(Reverse((at, e.ticket, name.to_string())));
        }
    }

    /// Re-probe now, or right after the probe in flight.
    fn probe_now(&mut self, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.force_details = true;
        if e.running {
            e.rerun = true;
        } else {
            self.schedule(name, Instant::now());
        }
    }

    async fn run(mut self) {
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut poll = poll_timer(self.secret_poll_interval);
        loop {
            self.watch_lag();
            let next_due = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let room = running.len() < self.max_in_flight;
            let path_due = self.paths.next_due();
            let path_room = self.paths.has_room();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    running.abort_all();
                    break;
                }
                _ = self.stop.cancelled() => {
                    self.drain_in_flight(&mut running).await;
                    break;
                }
                Some(cmd) = self.commands.recv() => match cmd {
                    Command::Reload(config) => {
                        self.reload(config);
                        if poll.period() != self.secret_poll_interval {
                            poll = poll_timer(self.secret_poll_interval);
                        }
                    }
                },
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(done) = done {
                        self.finished(done);
                    }
                }
                Some(done) = self.paths.running.join_next(), if !self.paths.running.is_empty() => {
                    if let Ok(done) = done {
                        self.path_finished(done);
                    }
                }
                Some(done) = self.details.join_next(), if !self.details.is_empty() => {
                    if let Ok(done) = done {
                        self.details_finished(done);
                    }
                }
                _ = sleep_until(next_due), if next_due.is_some() && room => self.start_due(&mut running),
                _ = sleep_until(path_due), if path_due.is_some() && path_room => self.start_due_paths(),
                _ = poll.tick() => self.poll_secrets().await,
            }
        }
        running.abort_all();
        self.paths.running.abort_all();
        self.details.abort_all();
        while running.join_next().await.is_some() {}
        while self.paths.running.join_next().await.is_some() {}
        while self.details.join_next().await.is_some() {}
    }

    /// A graceful stop: record what the probes in flight find, for as long
    /// as their timeout allows; an abort ends it at once.
    async fn drain_in_flight(&mut self, running: &mut JoinSet<Done>) {
        if running.is_empty() {
            return;
        }
        tracing::info!(
            in_flight = running.len(),
            "waiting up to {:?} for checks in flight",
            self.drain
        );
        let deadline = Instant::now() + self.drain;
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                next = running.join_next() => match next {
                    Some(Ok(done)) => self.finished(done),
                    Some(Err(_)) => {}
                    None => return,
                },
            }
        }
    }

    fn start_due(&mut self, running: &mut JoinSet<Done>) {
        let now = Instant::now();
        while running.len() < self.max_in_flight {
            let Some(Reverse((at, ticket, name))) = self.queue.peek().cloned() else {
                break;
            };
            if at > now {
                break;
            }
            self.queue.pop();
            let Some(e) = self.entries.get_mut(&name) else {
                continue;
            };
            if e.ticket != ticket || e.running || e.refused {
                continue;
            }
            // A credential whose checks read another's verdict (an
            // ElevenLabs key's imported numbers) waits for that one's first
            // cycle, which `finished` announces, instead of judging without it.
            let link = e.cred.linked().map(str::to_string);
            let waits_for = link.and_then(|link| {
                let t = self.entries.get(&link)?;
                (!t.slot.has_finished_a_cycle()).then_some(link)
            });
            if let Some(link) = waits_for {
                self.waiting.entry(link).or_default().push(name.clone());
                continue;
            }
            let Some(e) = self.entries.get_mut(&name) else {
                continue;
            };
            // Informational work still running (or told to wait by a
            // `Retry-After`) puts off the details, never the cycle.
            let details = (e.force_details
                || e.last_details
                    .is_none_or(|t| now.duration_since(t) >= e.cred.detail_interval))
                && e.details_running.is_none()
                && e.details_not_before.is_none_or(|t| now >= t);
            e.force_details = false;
            e.running = true;
            // From the second interval on: the first leads from the
            // start-up spread to the credential's own phase, by design.
            if let Some(last) = e.last_started.replace(now)
                && e.pacer.cycles() >= 2
            {
                self.own
                    .metrics
                    .check_interval
                    .with_label_values(&[&humantime::format_duration(e.cred.interval).to_string()])
                    .observe(now.duration_since(last).as_secs_f64());
            }
            let plan = Plan {
                details,
                not_permitted: e.not_permitted.clone(),
            };
            let cred = e.cred.clone();
            let generation = e.generation;
            let linked = cred
                .linked()
                .and_then(|link| self.entries.get(link))
                .map(|t| providers::Linked {
                    cred: t.cred.clone(),
                    changed_at: t.slot.changed_at(),
                    usable: t.slot.usable(),
                });
            if details && let (Some(l), Some(e)) = (&linked, self.entries.get_mut(&name)) {
                e.linked_seen = Some(l.usable);
            }
            let upstream = self.upstream.clone();
            let shared = self.shared.clone();
            running.spawn(async move {
                let started = Instant::now();
                let ctx = Context {
                    upstream: &upstream,
                    shared: &shared,
                    linked: linked.as_ref(),
                };
                let attempts = providers::run(&cred, &ctx, &plan).await;
                Done {
                    name: cred.name.clone(),
                    generation,
                    started,
                    plan,
                    attempts,
                    linked,
                }
            });
        }
    }

    fn finished(&mut self, done: Done) {
        let epoch = self.epoch;
        let Some(e) = self.entries.get_mut(&done.name) else {
            return;
        };
        e.running = false;
        if e.generation != done.generation {
            // The credential changed while this probe ran: its answers are
            // about the old secret. Probe the new one now, once (the change
            // already asked for a rerun; this is it).
            e.rerun = false;
            self.probe_now(&done.name);
            return;
        }
        let auth = e.cred.provider().auth_check();
        let had_account_problem = e.slot.has_problem(auth);
        let usable_before = e.slot.usable();
        let recorded = self.state.record(&e.slot, &done.attempts);
        let usable_changed = e.slot.usable() != usable_before;
        // What `check` would say about these answers, kept for the status page.
        // After a config change, the first cycle's findings replace all.
        let fresh = std::mem::take(&mut e.fresh_findings);
        explain(e, &done.attempts, done.linked.as_ref(), fresh);
        if had_account_problem && !done.plan.details && !e.slot.has_problem(auth) {
            // The account recovered: refresh what the detail checks found at once.
            e.force_details = true;
        }
        log_cycle(e, &done.attempts, &recorded);
        for a in &done.attempts {
            if let Ok(facts) = &a.result {
                for f in facts {
                    if let Fact::NotPermittedForKey { resource } = f {
                        e.not_permitted.insert(resource);
                    }
                }
            }
        }
        let auth = done.attempts.first();
        let paced = match auth.map(|a| &a.result) {
            Some(Err(f)) => Paced::Failed {
                retry_after: f.retry_after,
            },
            _ => Paced::Definitive,
        };
        if done.plan.details && paced == Paced::Definitive {
            e.last_details = Some(done.started);
        }
        let informational = done.plan.details
            && e.details_running.is_none()
            && providers::has_informational(&e.cred)
            && providers::went_on(&done.attempts);
        if informational {
            self.details_seq += 1;
            let ticket = self.details_seq;
            e.details_running = Some(ticket);
            let cred = e.cred.clone();
            let generation = e.generation;
            let linked = done.linked.clone();
            let upstream = self.upstream.clone();
            let shared = self.shared.clone();
            self.details.spawn(async move {
                let deadline = Instant::now() + providers::informational_budget(&cred);
                let ctx = Context {
                    upstream: &upstream,
                    shared: &shared,
                    linked: linked.as_ref(),
                };
                let informational = providers::informational(&cred, &ctx, deadline).await;
                DetailsDone {
                    cred,
                    ticket,
                    generation,
                    informational,
                    linked,
                }
            });
        }
        let Some(e) = self.entries.get_mut(&done.name) else {
            return;
        };
        let next = e.pacer.next(epoch, done.started, paced, &mut self.rng);
        // A `Retry-After` on any request of the cycle is honoured, even when
        // the auth check answered (a later page of a Twilio listing).
        let retry_after = done
            .attempts
            .iter()
            .filter_map(|a| a.result.as_ref().err()?.retry_after)
            .max();
        let next = retry_after.map_or(next, |r| next.max(done.started + r));
        if e.rerun {
            e.rerun = false;
            self.schedule(&done.name, Instant::now());
        } else {
            self.schedule(&done.name, next);
        }
        for name in self.waiting.remove(&done.name).unwrap_or_default() {
            self.probe_now(&name);
        }
        if usable_changed {
            // Credentials whose checks read this one (an ElevenLabs key's
            // imported numbers) and judged them with another verdict look
            // again now.
            let usable = self.entries.get(&done.name).and_then(|e| e.slot.usable());
            let stale: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, o)| {
                    o.cred.linked() == Some(done.name.as_str())
                        && o.linked_seen.is_some_and(|seen| seen != usable)
                })
                .map(|(n, _)| n.clone())
                .collect();
            for name in stale {
                self.probe_now(&name);
            }
        }
    }

    /// Drops stale entries at the head of the queue, publishes the due time
    /// of the most overdue check not yet started
    /// (`credwatch_scheduler_lag_seconds`), and logs once per episode of
    /// lateness the request rate needed and achieved.
    fn watch_lag(&mut self) {
        while let Some(Reverse((_, ticket, name))) = self.queue.peek() {
            let live = self
                .entries
                .get(name)
                .is_some_and(|e| e.ticket == *ticket && !e.running);
            if live {
                break;
            }
            self.queue.pop();
        }
        let due = self.queue.peek().map(|Reverse((at, _, _))| *at);
        self.own.metrics.set_oldest_due(due);
        let now = Instant::now();
        let sent = self.upstream.sent();
        let l = &mut self.lateness;
        if now.duration_since(l.newer.0) >= RATE_WINDOW {
            l.older = l.newer;
            l.newer = (now, sent);
        }
        let lag = due.map_or(Duration::ZERO, |d| now.saturating_duration_since(d));
        if lag < LATE {
            if l.episode.is_some() {
                let calm = *l.calm_since.get_or_insert(now);
                if now.duration_since(calm) >= CALM {
                    l.episode = None;
                    l.calm_since = None;
                    tracing::info!("checks are on time again");
                }
            }
            return;
        }
        l.calm_since = None;
        if l.episode.is_some() {
            return;
        }
        l.episode = Some(now);
        let window = now.duration_since(l.older.0).as_secs_f64();
        let achieved = if window > 0.0 {
            sent.saturating_sub(l.older.1) as f64 / window
        } else {
            0.0
        };
        let required: f64 = self
            .entries
            .values()
            .map(|e| providers::request_rate(&e.cred))
            .sum();
        tracing::warn!(
            lag_seconds = lag.as_secs(),
            required_requests_per_second = format!("{required:.1}"),
            achieved_requests_per_second = format!("{achieved:.1}"),
            in_flight_cap = self.max_in_flight,
            "checks are running late: the most overdue is {}s behind its interval; the configuration needs about {required:.1} requests/s and {achieved:.1}/s were sent (raise max_concurrent_requests_per_host, lengthen `interval`, or see docs/performance.md)",
            lag.as_secs()
        );
    }

    /// Records a cycle's informational work. Validity belongs to the
    /// decisive checks, which may have run since it started: its `Valid` /
    /// `Invalid` facts are left out.
    fn details_finished(&mut self, done: DetailsDone) {
        let Some(e) = self.entries.get_mut(&done.cred.name) else {
            return;
        };
        if e.details_running != Some(done.ticket) {
            // Work of an entry a reload replaced: this one's is another.
            return;
        }
        e.details_running = None;
        if e.generation != done.generation || !Arc::ptr_eq(&e.cred, &done.cred) {
            // About the old secret; the change asked for details again.
            return;
        }
        if let Some(wait) = done.informational.retry_after {
            e.details_not_before = Some(Instant::now() + wait);
        }
        let mut attempts = done.informational.attempts;
        for a in &mut attempts {
            if let Ok(facts) = &mut a.result {
                facts.retain(|f| !matches!(f, Fact::Valid | Fact::Invalid { .. }));
            }
        }
        let recorded = self.state.record(&e.slot, &attempts);
        explain(e, &attempts, done.linked.as_ref(), false);
        log_cycle(e, &attempts, &recorded);
    }

    async fn poll_secrets(&mut self) {
        // What to look at: every watched file with its last stamp.
        let watched: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.files.is_empty())
            .map(|(name, e)| {
                (
                    name.clone(),
                    e.cred.clone(),
                    e.key_path.clone(),
                    e.files.clone(),
                )
            })
            .collect();
        if watched.is_empty() {
            return;
        }
        // Secret files are looked at (`stat`) and read on a blocking thread,
        // never on the runtime's (a hung mount must not stall it); a stop
        // does not wait for it.
        let strict = self.strict;
        let read = tokio::task::spawn_blocking(move || {
            watched
                .into_iter()
                .filter_map(|(name, cred, key_path, files)| {
                    let stamps: Vec<_> = files.iter().map(|(path, _)| stamp(path)).collect();
                    let changed = files
                        .iter()
                        .zip(&stamps)
                        .any(|((_, last), now)| last != now);
                    changed.then(|| {
                        let result = cred.reread_files(&key_path, strict);
                        (name, stamps, result)
                    })
                })
                .collect::<Vec<_>>()
        });
        let (stop, cancel) = (self.stop.clone(), self.cancel.clone());
        let looked = tokio::select! {
            _ = stop.cancelled() => return,
            _ = cancel.cancelled() => return,
            read = read => match read {
                Ok(looked) => looked,
                Err(_) => return,
            },
        };
        for (name, stamps, result) in looked {
            if let Some(e) = self.entries.get_mut(&name) {
                for ((_, last), now) in e.files.iter_mut().zip(stamps) {
                    *last = now;
                }
            }
            let Some(e) = self.entries.get(&name) else {
                continue;
            };
            // The same checks as at load (`Credential::reread_files`), then
            // what credwatch refuses to send (`verdict::refusal`).
            let outcome = match result {
                Ok(Some(reread)) => {
                    for w in &reread.warnings {
                        tracing::warn!(credential = %name, "{w}");
                    }
                    match refusal(&reread.credential, &e.key_path, "new ") {
                        Some(why) => Err(why),
                        None => Ok(Some(reread.credential)),
                    }
                }
                Ok(None) => Ok(None),
                Err(err) => Err(err
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")),
            };
            match outcome {
                Ok(Some(new)) => self.accept(&name, Some(new)),
                // Back to the value in use after a refusal: a change too.
                Ok(None) if e.refused => self.accept(&name, None),
                Ok(None) => {}
                Err(why) => self.refuse(&name, why),
            }
        }
    }

    fn reload(&mut self, config: Arc<Config>) {
        self.state.reconcile(&config);
        let names: std::collections::HashSet<&str> =
            config.credentials.iter().map(|c| c.name.as_str()).collect();
        self.entries.retain(|name, _| names.contains(name.as_str()));
        self.shared = Arc::new(config.shared.clone());
        self.max_in_flight = max_in_flight(&config);
        self.upstream
            .set_per_host(config.max_concurrent_requests_per_host);
        self.drain = drain(&config);
        self.strict = config.strict;
        for (cred, key_path) in with_key_paths(&config) {
            let Some(slot) = self.state.slot(&cred.name) else {
                continue;
            };
            match self.entries.get_mut(&cred.name) {
                Some(e) if e.cred.provider() == cred.provider() => {
                    e.slot = slot;
                    e.key_path.clone_from(&key_path);
                    if *e.cred != *cred || e.refused {
                        e.pacer.set_interval(cred.interval, &mut self.rng);
                        e.cred = Arc::new(cred.clone());
                        e.generation += 1;
                        e.not_permitted.clear();
                        e.fresh_findings = true;
                        e.files = cred
                            .secret_files()
                            .into_iter()
                            .map(|p| (p.to_path_buf(), stamp(&p.to_path_buf())))
                            .collect();
                        let name = cred.name.clone();
                        match refusal(cred, &key_path, "") {
                            Some(why) => self.refuse(&name, why),
                            None => {
                                if let Some(e) = self.entries.get_mut(&name) {
                                    e.refused = false;
                                }
                                self.probe_now(&name);
                                self.paths_of_changed(&name);
                            }
                        }
                    }
                }
                _ => {
                    self.entries.remove(&cred.name);
                    self.add(cred.clone(), slot, key_path);
                }
            }
        }
        self.secret_poll_interval = config.secret_poll_interval;
        self.reconcile_paths(&config);
        // What waited for a credential that may be gone decides again.
        let waiting: Vec<String> = self.waiting.drain().flat_map(|(_, v)| v).collect();
        for name in waiting {
            self.probe_now(&name);
        }
    }
}

/// Keeps what `check` would say about `attempts` for the status page,
/// merged with what it said before (`fresh`: replacing it).
fn explain(e: &Entry, attempts: &[Attempt], linked: Option<&providers::Linked>, fresh: bool) {
    e.slot.explain(|s, before| {
        let before = if fresh { &[] } else { before };
        let cycle = crate::check::findings::cycle(&e.cred, s, attempts, linked);
        crate::check::findings::merge(before, cycle, attempts, s.usable())
    });
}

fn max_in_flight(config: &Config) -> usize {
    let hosts: std::collections::HashSet<String> = config
        .credentials
        .iter()
        .map(|c| crate::providers::http::host_key(c.base_url()))
        .collect();
    (hosts.len().max(1) * config.max_concurrent_requests_per_host).max(1)
}

/// The longest a graceful stop waits for probes in flight.
fn drain(config: &Config) -> Duration {
    let longest = config
        .credentials
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or(Duration::ZERO);
    (longest + DRAIN_MARGIN).min(MAX_DRAIN)
}

/// Each credential with its key path (`twilio[1]`), in one pass.
fn with_key_paths(config: &Config) -> Vec<(&Credential, String)> {
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    config
        .credentials
        .iter()
        .map(|c| {
            let provider = c.provider();
            let i = seen.entry(provider.as_str()).or_default();
            let path = format!("{provider}[{i}]");
            *i += 1;
            (c, path)
        })
        .collect()
}

/// The secret-file poll; its period follows reloads.
fn poll_timer(period: Duration) -> tokio::time::Interval {
    let mut poll = tokio::time::interval(period);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The log lines of one recorded cycle: each check whose outcome changed,
/// and the credential's standing when it changed, once; a failure that
/// persists at most once per [`STILL_FAILING_LOG_EVERY`]. The rest is debug.
fn log_cycle(e: &mut Entry, attempts: &[Attempt], recorded: &Recorded) {
    let now = Instant::now();
    let cred = &e.cred;
    for (a, changed) in attempts.iter().zip(&recorded.changed) {
        let failing = a.error_reason().is_some();
        // While the credential itself is failing, its own reminder says so.
        let remind = failing
            && !changed
            && !recorded.after.failing()
            && e.log
                .checks
                .get(&a.check)
                .is_none_or(|t| now.duration_since(*t) >= STILL_FAILING_LOG_EVERY);
        if failing && (*changed || remind) {
            e.log.checks.insert(a.check.clone(), now);
        }
        log_attempt(cred, a, *changed, remind);
    }
    let after = recorded.after;
    if after != e.log.standing {
        let before = e.log.standing;
        e.log = LogState {
            standing: after,
            since: SystemTime::now(),
            logged: now,
            checks: std::mem::take(&mut e.log.checks),
        };
        log_standing(e, before, None);
    } else if after.failing() && now.duration_since(e.log.logged) >= STILL_FAILING_LOG_EVERY {
        e.log.logged = now;
        log_standing(e, after, Some(e.log.since));
    }
}

/// One line about the credential's standing: a transition from `before`,
/// or (`still`) a failure that persists since then.
fn log_standing(e: &Entry, before: Standing, still: Option<SystemTime>) {
    let cred = &e.cred;
    let after = e.log.standing;
    let was = describe(before);
    let since = still
        .map(|t| format!(" since {}", crate::providers::words::time(t)))
        .unwrap_or_default();
    let pending = e.slot.snapshot().pending_why();
    match after.health {
        // (A refusal is logged where it happens, `Scheduler::refuse`.)
        Health::Unhealthy(reason) if still.is_some() => {
            tracing::warn!(credential = %cred.name, provider = %cred.provider(), reason = reason.as_str(), "credential still unhealthy{since}: {}", reason.as_str());
        }
        Health::Unhealthy(reason) => {
            tracing::warn!(credential = %cred.name, provider = %cred.provider(), reason = reason.as_str(), was = was, "credential unhealthy: {}", reason.as_str());
        }
        Health::Healthy
            if before.health == Health::Pending
                && before.pending == Some(PendingCause::NotChecked) =>
        {
            tracing::debug!(credential = %cred.name, provider = %cred.provider(), "credential healthy");
        }
        Health::Healthy if before.pending == Some(PendingCause::SecretChanged) => {
            tracing::info!(credential = %cred.name, provider = %cred.provider(), was = was, "credential healthy: the new secret is confirmed");
        }
        Health::Healthy => {
            tracing::info!(credential = %cred.name, provider = %cred.provider(), was = was, "credential healthy again (was {was})");
        }
        Health::Pending => {
            let why = pending
                .as_ref()
                .map(|p| p.why.as_str())
                .unwrap_or("not_checked");
            let message = pending.as_ref().map(|p| p.message()).unwrap_or_default();
            let fix = pending
                .as_ref()
                .and_then(|p| p.fix())
                .map(|f| format!("; fix: {f}"))
                .unwrap_or_default();
            if still.is_some() {
                tracing::warn!(credential = %cred.name, provider = %cred.provider(), why = why, "credential still has no verdict{since}: {message}{fix}");
            } else if after.failing() {
                tracing::warn!(credential = %cred.name, provider = %cred.provider(), why = why, was = was, "credential has no verdict: {message}{fix}");
            } else {
                tracing::info!(credential = %cred.name, provider = %cred.provider(), why = why, was = was, "credential has no verdict: {message}");
            }
        }
    }
}

fn describe(s: Standing) -> &'static str {
    match (s.health, s.pending) {
        (Health::Healthy, _) => "healthy",
        (Health::Unhealthy(r), _) => r.as_str(),
        (Health::Pending, Some(why)) => why.as_str(),
        (Health::Pending, None) => "pending",
    }
}

/// One attempt: at warn when its check's outcome changed to a failure or a
/// negative answer (or, `remind`, when one persists), at info when it
/// recovered, at debug otherwise.
fn log_attempt(cred: &Credential, a: &Attempt, changed: bool, remind: bool) {
    let ev = &a.evidence;
    let still = if remind && !changed { "still: " } else { "" };
    match (&a.result, a.error_reason()) {
        (Ok(_), None) if changed => tracing::info!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check,
            status = ev.http_status, duration_ms = a.duration.as_millis() as u64, "check answered: {}", ev.detail
        ),
        (Ok(_), None) => tracing::debug!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check,
            status = ev.http_status, duration_ms = a.duration.as_millis() as u64, "{}", ev.detail
        ),
        (Ok(_), Some(reason)) if changed || remind => tracing::warn!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check, reason = reason.as_str(),
            request = %ev.request, status = ev.http_status, code = ev.upstream_code.as_deref(),
            request_id = ev.request_id.as_deref(),
            "{still}{}", ev.detail
        ),
        (Err(f), _) if changed || remind => tracing::warn!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check, reason = f.reason.as_str(),
            request = %ev.request, status = ev.http_status, code = ev.upstream_code.as_deref(),
            request_id = ev.request_id.as_deref(),
            "{still}no definitive answer, keeping the last verdict: {}", ev.detail
        ),
        (_, reason) => tracing::debug!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check, reason = reason.map(|r| r.as_str()),
            request = %ev.request, status = ev.http_status, code = ev.upstream_code.as_deref(),
            request_id = ev.request_id.as_deref(),
            "unchanged: {}", ev.detail
        ),
    }
}

mod paths;
#[cfg(test)]
mod tests;
