//! Call-path cycles: each path's links are looked at every
//! `detail_interval` of its caller, in tasks of their own with their own
//! small cap, so they never hold up a credential's decisive checks. A cycle
//! uses the credentials as the scheduler has them now (a rotated secret
//! included); a path whose cycle got no answer backs off like a credential.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Paced, Pacer, Scheduler};
use crate::call_paths::{CallPath, Finding, Observation};
use crate::config::Config;
use crate::outcome::Reason;
use crate::providers::{self, Context, Linked};

/// Path cycles in flight at most (each is a few sequential GETs).
pub(super) const MAX_PATHS_IN_FLIGHT: usize = 4;

pub(super) struct PathEntry {
    path: Arc<CallPath>,
    pacer: Pacer,
    ticket: u64,
    running: bool,
    rerun: bool,
}

pub(super) struct PathDone {
    name: String,
    started: Instant,
    observations: Vec<Observation>,
}

#[derive(Default)]
pub(super) struct Paths {
    entries: HashMap<String, PathEntry>,
    queue: BinaryHeap<Reverse<(Instant, u64, String)>>,
    pub(super) running: JoinSet<PathDone>,
}

impl Paths {
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    pub(super) fn has_room(&self) -> bool {
        self.running.len() < MAX_PATHS_IN_FLIGHT
    }

    fn schedule(&mut self, name: &str, at: Instant) {
        if let Some(e) = self.entries.get_mut(name) {
            e.ticket += 1;
            self.queue.push(Reverse((at, e.ticket, name.to_string())));
        }
    }

    fn now_or_after(&mut self, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.running {
            e.rerun = true;
        } else {
            self.schedule(name, Instant::now());
        }
    }
}

impl Scheduler {
    /// Makes the path entries match `config` (at start and on reload).
    pub(super) fn reconcile_paths(&mut self, config: &Config) {
        let names: Vec<&str> = config.call_paths.iter().map(|p| p.name.as_str()).collect();
        self.paths
            .entries
            .retain(|name, _| names.contains(&name.as_str()));
        for path in &config.call_paths {
            let interval = config
                .credential(&path.caller)
                .map_or(super::MAX_BACKOFF, |c| c.detail_interval);
            match self.paths.entries.get_mut(&path.name) {
                Some(e) if *e.path == *path => e.pacer.set_interval(interval, &mut self.rng),
                Some(e) => {
                    e.path = Arc::new(path.clone());
                    e.pacer.set_interval(interval, &mut self.rng);
                    let name = path.name.clone();
                    self.paths.now_or_after(&name);
                }
                None => {
                    let pacer = Pacer::new(interval, &mut self.rng);
                    let due = Instant::now() + pacer.first_delay(&mut self.rng);
                    self.paths.entries.insert(
                        path.name.clone(),
                        PathEntry {
                            path: Arc::new(path.clone()),
                            pacer,
                            ticket: 0,
                            running: false,
                            rerun: false,
                        },
                    );
                    self.paths.schedule(&path.name, due);
                }
            }
        }
    }

    /// A credential's secret changed: its paths look again now.
    pub(super) fn paths_of_changed(&mut self, credential: &str) {
        let names: Vec<String> = self
            .paths
            .entries
            .values()
            .filter(|e| e.path.caller == credential || e.path.carrier == credential)
            .map(|e| e.path.name.clone())
            .collect();
        for name in names {
            self.paths.now_or_after(&name);
        }
    }

    pub(super) fn start_due_paths(&mut self) {
        let now = Instant::now();
        while self.paths.has_room() {
            let Some(Reverse((at, ticket, name))) = self.paths.queue.peek().cloned() else {
                break;
            };
            if at > now {
                break;
            }
            self.paths.queue.pop();
            let Some(e) = self.paths.entries.get_mut(&name) else {
                continue;
            };
            if e.ticket != ticket || e.running {
                continue;
            }
            let path = e.path.clone();
            let (Some(caller), Some(carrier)) = (
                self.entries.get(&path.caller),
                self.entries.get(&path.carrier),
            ) else {
                continue;
            };
            e.running = true;
            let caller = caller.cred.clone();
            let carrier = Linked {
                cred: carrier.cred.clone(),
                changed_at: carrier.slot.changed_at(),
                usable: carrier.slot.usable(),
            };
            let upstream = self.upstream.clone();
            let shared = self.shared.clone();
            self.paths.running.spawn(async move {
                let started = Instant::now();
                let ctx = Context {
                    upstream: &upstream,
                    shared: &shared,
                    linked: None,
                };
                let observations = providers::check_call_path(&path, &caller, &carrier, &ctx).await;
                PathDone {
                    name: path.name.clone(),
                    started,
                    observations,
                }
            });
        }
    }

    pub(super) fn path_finished(&mut self, done: PathDone) {
        let epoch = self.epoch;
        let Some(e) = self.paths.entries.get_mut(&done.name) else {
            return;
        };
        e.running = false;
        let transient = done.observations.iter().find_map(|o| match o.finding {
            Finding::Unknown(
                r @ (Reason::RateLimited
                | Reason::UpstreamError
                | Reason::Timeout
                | Reason::Network),
            ) => Some(r),
            _ => None,
        });
        if let Some(reason) = transient {
            tracing::warn!(
                call_path = %done.name,
                reason = reason.as_str(),
                "call path: a link got no answer; it keeps its last proof for up to one detail_interval"
            );
        }
        self.state.record_path(&done.name, done.observations);
        let paced = match transient {
            Some(_) => Paced::Failed { retry_after: None },
            None => Paced::Definitive,
        };
        let next = e.pacer.next(epoch, done.started, paced, &mut self.rng);
        if std::mem::take(&mut e.rerun) {
            self.paths.schedule(&done.name, Instant::now());
        } else {
            self.paths.schedule(&done.name, next);
        }
    }
}
