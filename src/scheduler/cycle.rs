//! One credential's cycle: starting the probes that are due (with their
//! [`Plan`]), recording what they found, the informational work that runs
//! after a cycle with details, and the findings kept for the status page.

use std::cmp::Reverse;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::log::log_cycle;
use super::{Entry, Paced, Scheduler};
use crate::config::Credential;
use crate::outcome::{Attempt, Fact};
use crate::providers::{self, Context, Plan};

pub(super) struct Done {
    name: String,
    generation: u64,
    started: Instant,
    plan: Plan,
    attempts: Vec<Attempt>,
    /// The linked credential as the cycle saw it (for the findings).
    linked: Option<providers::Linked>,
}

/// The informational work of one cycle, finished.
pub(super) struct DetailsDone {
    /// The credential as the work saw it: a replaced one (a reload, a new
    /// secret) drops the result.
    cred: Arc<Credential>,
    ticket: u64,
    generation: u64,
    informational: providers::Informational,
    linked: Option<providers::Linked>,
}

impl Scheduler {
    pub(super) fn start_due(&mut self, running: &mut JoinSet<Done>) {
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

    pub(super) fn finished(&mut self, done: Done) {
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

    /// Records a cycle's informational work. Validity belongs to the
    /// decisive checks, which may have run since it started: its `Valid` /
    /// `Invalid` facts are left out.
    pub(super) fn details_finished(&mut self, done: DetailsDone) {
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
}

/// Keeps what `check` would say about `attempts` for the status page,
/// merged with what it said before (`fresh`: replacing it).
pub(super) fn explain(
    e: &Entry,
    attempts: &[Attempt],
    linked: Option<&providers::Linked>,
    fresh: bool,
) {
    e.slot.explain(|s, before| {
        let before = if fresh { &[] } else { before };
        let cycle = crate::check::findings::cycle(&e.cred, s, attempts, linked);
        crate::check::findings::merge(before, cycle, attempts, s.usable())
    });
}
