//! What Twilio's problems mean for the person reading `credwatch check`,
//! and how to fix them, in the user's terms; each stated cause cites its
//! evidence in `docs/upstream-evidence.md`.

use super::facts::{BALANCE_LOW_BELOW, Problem as Tw, TwilioBalance};
use crate::providers::Credential;
use crate::providers::Problem;
use crate::providers::words::{cite, source};

/// (summary, fix) for a definitive problem this provider reports; `None`
/// for another provider's.
pub fn problem(p: &Problem, cred: &Credential) -> Option<(String, String)> {
    let src = source(cred);
    Some(match p {
        Problem::Twilio(Tw::TwilioAuthenticate) => {
            let (sid, what) = (cred.account().unwrap_or(""), cred.secret_name());
            (
                "Twilio rejected the credentials (401, code 20003 Authenticate): rotated, deleted, or the account was \
                 suspended or closed."
                    .into(),
                format!(
                    "Twilio's 20003 page lists both kinds of cause. The credential: the {what} was rotated or deleted \
                     (Console → Account → API keys & tokens; promoting the secondary Auth Token deletes the old primary); \
                     the SID and the {what} belong to different accounts (live vs test, parent vs subaccount {sid}: \
                     here it needs its own Auth Token, since credwatch sends an Auth Token with the Account SID it checks \
                     and so cannot use the parent's — parent API keys cannot reach subaccounts); \
                     an API key from another region. The account: suspended or closed (check Console → Billing, or log in to \
                     the Console). Compare fingerprint {fp} with `printf %s \"$TOKEN\" | sha256sum | cut -c1-12` of the value \
                     in the Console, then put the current value in {src}. If ElevenLabs holds the same Auth Token for \
                     imported numbers, re-import them too.{cite}",
                    fp = cred.fingerprint(),
                    cite = cite("twilio-20003")
                ),
            )
        }
        Problem::Twilio(Tw::AccountNotFound) => (
            "No such Twilio account for these credentials (404, code 20404).".into(),
            format!(
                "The Account SID is mistyped, the account was closed, or the secret belongs to a different account. Copy \
                 the Account SID from Console → Account info.{}",
                cite("twilio-20404")
            ),
        ),
        Problem::Twilio(Tw::AccountSuspended { status }) => (
            format!(
                "The Twilio account is {}: it cannot use the API.",
                status.as_deref().unwrap_or("suspended or closed (20403)")
            ),
            format!(
                "Check Console → Billing and the account's status, and contact Twilio support; calls through this account \
                 fail until it is active.{}",
                cite("twilio-account-status")
            ),
        ),
        Problem::Twilio(Tw::AccountNotActive) => (
            "The Twilio account is not active (code 20005).".into(),
            format!(
                "Twilio documents 20005 \"Account not active\" as \"potentially because you ran out of funds, or you have \
                 not yet activated your free trial\". Check the balance (Console → Billing) and the account's status, and \
                 contact Twilio support if it stays inactive; calls through this account fail until it is active.{}",
                cite("twilio-20005")
            ),
        ),
        Problem::Twilio(Tw::RestrictedKey) => (
            "This restricted API key may not list phone numbers (403, code 70051).".into(),
            format!(
                "Add read access to Phone Numbers to the key in Console → Account → API keys, or use a Standard or Main key.{}",
                cite("twilio-70051")
            ),
        ),
        Problem::Twilio(Tw::KeySidInPath) => (
            "An API key SID (SK…) was used where the Account SID (AC…) belongs.".into(),
            format!(
                "Put the Account SID (Console → Account info) in `account_sid` and the SK… in `api_key_sid`.{}",
                cite("twilio-21470")
            ),
        ),
        _ => return None,
    })
}

/// The fix for an answer that was no verdict and that only Twilio sends.
pub fn failure_fix(detail: &str) -> Option<&'static str> {
    detail.starts_with("test credentials (20008)").then_some(
        "These are Twilio test credentials: Twilio accepts them only to simulate buying numbers, sending messages and \
         placing calls, and answers 403 to every other request, so credwatch cannot tell whether they work. Monitor the \
         live Account SID and Auth Token (Console → Account → API keys & tokens) instead. (evidence: \
         docs/upstream-evidence.md#twilio-20008)",
    )
}

/// (summary, fix) for a balance below the alert threshold ([`BALANCE_LOW_BELOW`]).
pub fn balance_low(b: &TwilioBalance) -> (String, String) {
    (
        format!(
            "The Twilio balance is {:.2} {}, below the alert threshold of {BALANCE_LOW_BELOW:.0} {}.",
            b.amount, b.currency, b.currency
        ),
        "Top up the balance or enable auto-recharge in Twilio Console → Billing: when it runs out, calls and \
         messages through this account fail."
            .into(),
    )
}

/// (summary, fix) for a Trial account.
pub fn trial_account() -> (String, String) {
    (
        "This is a Twilio Trial account: it can call only verified numbers, and callers hear a trial notice first."
            .into(),
        "Upgrade the account in Twilio Console → Billing before real callers use it.".into(),
    )
}
