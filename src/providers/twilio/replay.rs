//! Twilio's [`Replay`] test hook: page 1 of the numbers (the auth check),
//! the account and the balance, through the classifiers its cycle uses (as
//! an Auth Token would be answered).

use super::{Twilio, account_outcome, balance_outcome, numbers_outcome};
use crate::providers::http::Answer;
use crate::providers::outcome::{Fact, Failure};
use crate::providers::{Kind, Replay};

const CHECKS: [&str; 3] = [<Twilio as Kind>::AUTH_CHECK, "account", "balance"];

impl Replay for Twilio {
    fn replay_checks() -> Vec<String> {
        CHECKS.iter().map(|c| c.to_string()).collect()
    }

    fn replay(check: &str, answer: &Answer) -> Option<(Result<Vec<Fact>, Failure>, String)> {
        match check {
            <Twilio as Kind>::AUTH_CHECK => Some(numbers_outcome(answer)),
            "account" => Some(account_outcome(answer, false)),
            "balance" => Some(balance_outcome(answer, false)),
            _ => None,
        }
    }
}
