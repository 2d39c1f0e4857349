//! When each credential is checked next: [`Pacer`], the timing policy
//! (interval, the first round's spread, a random phase, backoff with jitter
//! and `Retry-After`), free of I/O so it is tested on paused time.

use std::time::Duration;

use tokio::time::Instant;

/// The first round is spread over at most this long.
pub const STARTUP_SPREAD: Duration = Duration::from_secs(5);

/// Backoff never waits longer than this (or the interval, if longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

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
