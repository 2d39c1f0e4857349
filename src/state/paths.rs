//! The call paths' slots: one [`PathState`] per configured path, written by
//! the scheduler's path cycles and read, together with the credentials'
//! slots, by `/metrics`, `/health` and `check`. A path's readiness is judged
//! when it is read (there are few paths, bounded by the config), so a
//! credential's new verdict and a long silence show at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::call_paths::{CallPath, Credentials, Observation, PathState};
use crate::config::Config;

/// One call path's slot.
pub struct PathSlot {
    pub name: String,
    inner: Mutex<PathState>,
}

impl PathSlot {
    fn new(path: &CallPath, grace: Duration) -> Self {
        PathSlot {
            name: path.name.clone(),
            inner: Mutex::new(PathState::new(path.clone(), grace)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PathState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record(&self, observations: Vec<Observation>) {
        self.lock()
            .record(observations, tokio::time::Instant::now(), SystemTime::now());
    }

    /// The path's settings now.
    pub fn path(&self) -> CallPath {
        self.lock().path.clone()
    }

    pub(crate) fn state(&self) -> PathState {
        self.lock().clone()
    }
}

/// How long a path's links keep their proof while looks get no answer: its
/// caller's `detail_interval` (the period of its looks).
pub(crate) fn grace(config: &Config, path: &CallPath) -> Duration {
    config
        .credential(&path.caller)
        .map_or(Duration::from_secs(600), |c| c.detail_interval)
}

/// The slots of `config`'s paths, keeping what `old` knew of paths that stay.
pub(crate) fn reconcile(old: &[Arc<PathSlot>], config: &Config) -> Vec<Arc<PathSlot>> {
    config
        .call_paths
        .iter()
        .map(|p| {
            let grace = grace(config, p);
            match old.iter().find(|s| s.name == p.name) {
                Some(slot) => {
                    slot.lock().reconfigure(p.clone(), grace);
                    slot.clone()
                }
                None => Arc::new(PathSlot::new(p, grace)),
            }
        })
        .collect()
}

/// A path's state with its credential links as they are now.
pub(crate) fn with_credentials(mut state: PathState, credentials: Credentials) -> PathState {
    state.credentials = credentials;
    state
}
