//! Twilio's [`Replay`] test hook: page 1 of the numbers (the auth check),
//! the account and the balance, through the classifiers its cycle uses (as
//! for an Auth Token).

use super::{Twilio, account_outcome, balance_outcome, numbers_outcome};
use crate::providers::{Classifier, Kind, Replay};

impl Replay for Twilio {
    fn classifiers() -> Vec<Classifier> {
        vec![
            Classifier::new(<Twilio as Kind>::AUTH_CHECK, numbers_outcome),
            Classifier::new("account", |answer| account_outcome(answer, false)),
            Classifier::new("balance", |answer| balance_outcome(answer, false)),
        ]
    }
}
