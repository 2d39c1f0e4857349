//! The test hook every provider exposes beside its [`super::Kind`]: what its
//! classifiers make of one answer, with no network. The evidence replay
//! (`tests/it/evidence.rs`, every recorded answer of the provider's corpus)
//! and the property tests of every classifier (`providers::properties`)
//! iterate [`Provider::ALL`] through it, so neither names a provider.

use super::Provider;
use super::http::Answer;
use super::outcome::{Fact, Failure};

/// What one check derives from one answer: the result and the evidence
/// detail, exactly as its cycle records them.
pub type Outcome = (Result<Vec<Fact>, Failure>, String);

/// One check's classification, callable one answer at a time.
pub struct Classifier {
    /// The check, named as the `check` label names it (`subscription`,
    /// `permission_convai_write`, …).
    pub check: String,
    /// The function its cycle calls on the answer.
    pub classify: Box<dyn Fn(&Answer) -> Outcome + Send + Sync>,
}

impl Classifier {
    pub fn new(
        check: impl Into<String>,
        classify: impl Fn(&Answer) -> Outcome + Send + Sync + 'static,
    ) -> Classifier {
        Classifier {
            check: check.into(),
            classify: Box::new(classify),
        }
    }
}

/// A provider's classifiers. Implemented in the provider's own `replay.rs`
/// by calling the very function its cycle calls on each answer, so the
/// classifiers stay the provider's own and a replay cannot drift from what
/// the daemon does. A provider without it is one compiler error, at its arm
/// of [`Provider::classifiers`].
#[doc(hidden)]
pub trait Replay {
    /// One [`Classifier`] per check whose answer it classifies on its own
    /// (its auth check included).
    fn classifiers() -> Vec<Classifier>;
}

impl Provider {
    /// Test hook: what its check `check` derives from `answer` (see
    /// [`Replay`]); `None` for a check it does not have.
    #[doc(hidden)]
    pub fn replay(self, check: &str, answer: &Answer) -> Option<Outcome> {
        self.classifiers()
            .into_iter()
            .find(|c| c.check == check)
            .map(|c| (c.classify)(answer))
    }
}
