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
//!
//! This module holds the loop ([`spawn`], the entries, reloads); its parts:
//! `pacer` (the timing policy), `cycle` (starting and recording each
//! credential's cycle), `secrets` (secret-file polling), `lateness` (lag and
//! late-check warnings), `log` (what is logged about each credential) and
//! `paths` (the call paths' own queue).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Credential, Shared};
use crate::metrics::own::Own;
use crate::providers::http::Upstream;
use crate::state::{Slot, State};
use crate::verdict::refusal;

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
    files: Vec<(PathBuf, Seen)>,
    /// The credential's config changed: its next cycle's findings replace
    /// all of the old ones (a check it no longer runs says nothing).
    fresh_findings: bool,
    /// Its informational work ([`crate::providers::informational`]) is running,
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
            lateness: Lateness::new(Instant::now()),
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
        let files = secrets::watch(&cred);
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
                        // Stamps the secret files of credentials the reload
                        // added or changed, on a blocking thread.
                        self.poll_secrets().await;
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
                        e.files = secrets::watch(cred);
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

mod cycle;
mod lateness;
mod log;
mod pacer;
mod paths;
mod secrets;
#[cfg(test)]
mod tests;

use cycle::{DetailsDone, Done};
pub use lateness::LATE;
use lateness::Lateness;
use log::LogState;
pub use log::STILL_FAILING_LOG_EVERY;
pub use pacer::{MAX_BACKOFF, Paced, Pacer, STARTUP_SPREAD};
use secrets::Seen;
