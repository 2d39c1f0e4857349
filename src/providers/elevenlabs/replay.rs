//! ElevenLabs' [`Replay`] test hook: the subscription and each built-in
//! permission probe, through the classifiers its cycle uses.

use super::{
    ElevenLabs, default_permission_probes, parse_body, permission_meaning, subscription_outcome,
};
use crate::providers::http::Answer;
use crate::providers::outcome::{Fact, Failure};
use crate::providers::{Kind, Replay};

impl Replay for ElevenLabs {
    fn replay_checks() -> Vec<String> {
        std::iter::once(<ElevenLabs as Kind>::AUTH_CHECK.to_string())
            .chain(
                default_permission_probes()
                    .into_iter()
                    .map(|p| format!("permission_{}", p.permission)),
            )
            .collect()
    }

    fn replay(check: &str, answer: &Answer) -> Option<(Result<Vec<Fact>, Failure>, String)> {
        let body = parse_body(answer);
        if check == <ElevenLabs as Kind>::AUTH_CHECK {
            return Some(subscription_outcome(answer, &body));
        }
        let permission = check.strip_prefix("permission_")?;
        let probe = default_permission_probes()
            .into_iter()
            .find(|p| p.permission == permission)?;
        Some(permission_meaning(&probe, None, answer, &body))
    }
}
