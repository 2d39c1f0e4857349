//! ElevenLabs' [`Replay`] test hook: the subscription and each built-in
//! permission probe, through the classifiers its cycle uses.

use super::{
    ElevenLabs, default_permission_probes, parse_body, permission_meaning, subscription_outcome,
};
use crate::providers::{Classifier, Kind, Replay};

impl Replay for ElevenLabs {
    fn classifiers() -> Vec<Classifier> {
        let subscription = Classifier::new(<ElevenLabs as Kind>::AUTH_CHECK, |answer| {
            subscription_outcome(answer, &parse_body(answer))
        });
        let permissions = default_permission_probes().into_iter().map(|probe| {
            Classifier::new(format!("permission_{}", probe.permission), move |answer| {
                permission_meaning(&probe, None, answer, &parse_body(answer))
            })
        });
        std::iter::once(subscription).chain(permissions).collect()
    }
}
