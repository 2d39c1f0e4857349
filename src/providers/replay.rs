//! The test hook every provider exposes beside its [`super::Kind`]: what its
//! classifiers make of one answer, with no network. The evidence replay
//! (`tests/it/evidence.rs`, every recorded answer of the provider's corpus)
//! and the property tests of every classifier (`providers::properties`)
//! iterate [`super::Provider::ALL`] through it, so neither names a provider.

use super::http::Answer;
use super::outcome::{Fact, Failure};

/// One provider's classifiers, callable one answer at a time. A supertrait
/// of [`super::Kind`]: a provider without it is one compiler error, at its
/// `impl Kind`.
///
/// Why on the provider and not in the tests: the classifiers stay the
/// provider's own (private to its folder); the hook calls exactly the
/// function its cycle calls on the answer, so a replay cannot drift from
/// what the daemon does.
#[doc(hidden)]
pub trait Replay {
    /// Every check [`Replay::replay`] classifies, named as the `check`
    /// label names them (`subscription`, `permission_convai_write`, …).
    fn replay_checks() -> Vec<String>;
    /// The result and the evidence detail the check called `check` derives
    /// from `answer`, exactly as its cycle would; `None` for a check this
    /// provider does not have.
    fn replay(check: &str, answer: &Answer) -> Option<(Result<Vec<Fact>, Failure>, String)>;
}
