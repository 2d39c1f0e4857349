//! What a Twilio answer means: the error envelope (only its `code` is
//! decoded), [`classify`] on the Twilio code first, whatever the HTTP status
//! (never on the message, whose text varies), and the pure outcomes of the
//! account and balance answers. The account body contains the account's
//! `auth_token`: it is deserialized into a struct without that field.

use serde::Deserialize;

use super::facts::{Detail, Problem};
use crate::providers::http::Answer;
use crate::providers::outcome::{Evidence, Fact, Failure, Reason, clean};

/// What a 20003 means, in full: Twilio's own page lists a suspended or
/// closed account among the causes, so a credential that used to work may
/// have been rotated *or* its account suspended.
pub(super) const AUTHENTICATE: &str = "credentials rejected (20003 Authenticate): the Auth Token or API key was rotated, deleted or mistyped, or the account was suspended or closed";

/// The detail of a 20008 answer (and the key of its fix, `failure_fix`).
pub const TEST_CREDENTIALS: &str = "test credentials (20008): Twilio answers them for nothing credwatch may read, so they can be neither confirmed nor rejected";

/// What a Twilio answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    Ok,
    /// 20003 (401 Authenticate).
    Authenticate,
    /// 20005 "Account not active".
    NotActive,
    /// 403 20008.
    TestCredentials,
    /// 403 20403.
    Suspended,
    /// 403 70051.
    Restricted,
    /// 404 20404.
    NotFound,
    /// 400 21470 / 90002.
    KeySidInPath,
    Failure(Reason, String),
}

/// The error code of a Twilio error body, if it is one.
pub fn error_code(answer: &Answer) -> Option<u64> {
    if !answer.is_json() {
        return None;
    }
    // Only `code` is decoded; every other field (an account body carries the
    // account's Auth Token) is skipped in place, never copied into a String.
    #[derive(Deserialize)]
    struct ErrorBody {
        code: Option<crate::providers::json::Scalar>,
    }
    let object = answer.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let body: ErrorBody = serde_json::from_slice(&answer.body)
        .ok()
        .filter(|_| object)?;
    body.code.as_ref()?.as_u64()
}

/// Classifies an answer: only JSON from the API is ever definitive, 429 and
/// 5xx never are; otherwise the Twilio error code decides, whatever the HTTP
/// status (Twilio documents codes, not status pairs).
pub fn classify(answer: &Answer) -> Meaning {
    let status = answer.status;
    let code = error_code(answer);
    let shown = code.map(|c| c.to_string());
    if let Some((reason, detail)) = answer.not_definitive(true, shown.as_deref()) {
        return Meaning::Failure(reason, detail);
    }
    if status == 200 {
        return Meaning::Ok;
    }
    match code {
        Some(20003) => Meaning::Authenticate,
        Some(20005) => Meaning::NotActive,
        Some(20008) => Meaning::TestCredentials,
        Some(20403) => Meaning::Suspended,
        Some(70051) => Meaning::Restricted,
        Some(20404) => Meaning::NotFound,
        Some(21470 | 90002) => Meaning::KeySidInPath,
        Some(c) => Meaning::Failure(
            Reason::UnexpectedResponse,
            format!("HTTP {status} with unexpected code {c}"),
        ),
        None => Meaning::Failure(
            Reason::UnexpectedResponse,
            format!("HTTP {status} without a Twilio error code"),
        ),
    }
}

/// `Accounts/{Sid}.json`, without `auth_token` — on purpose.
#[derive(Deserialize)]
struct AccountBody {
    sid: Option<String>,
    owner_account_sid: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct BalanceBody {
    balance: Option<String>,
    currency: Option<String>,
}

pub(super) fn evidence(path: &str, answer: &Answer, detail: String) -> Evidence {
    answer.evidence(path, error_code(answer).map(|c| c.to_string()), detail)
}

pub(super) fn failure(reason: Reason, answer: &Answer) -> Failure {
    answer.failure(reason)
}

/// What a account answer means: pure, so it is fuzzed.
pub fn account_outcome(answer: &Answer, is_key: bool) -> (Result<Vec<Fact>, Failure>, String) {
    let (result, detail) = match classify(answer) {
        Meaning::Ok => match serde_json::from_slice::<AccountBody>(&answer.body) {
            Ok(AccountBody { status: None, .. }) => (
                Err(failure(Reason::UnexpectedResponse, answer)),
                "HTTP 200 but the account has no status".into(),
            ),
            Ok(acct) => {
                let status = acct
                    .status
                    .as_deref()
                    .map_or_else(|| "unknown".into(), clean);
                let kind = acct.kind.as_deref().map_or_else(|| "unknown".into(), clean);
                let subaccount =
                    matches!((&acct.sid, &acct.owner_account_sid), (Some(s), Some(o)) if s != o);
                let mut facts = vec![
                    Detail::Account {
                        status: status.clone(),
                        kind: kind.clone(),
                        subaccount,
                    }
                    .into(),
                ];
                if status == "suspended" || status == "closed" {
                    facts.push(Fact::Problem {
                        problem: Problem::AccountSuspended {
                            status: Some(status.clone()),
                        }
                        .into(),
                    });
                }
                (
                    Ok(facts),
                    format!(
                        "account {status}, {kind}{}",
                        if subaccount { ", subaccount" } else { "" }
                    ),
                )
            }
            Err(_) => (
                Err(failure(Reason::UnexpectedResponse, answer)),
                "HTTP 200 but the account could not be read".into(),
            ),
        },
        Meaning::Authenticate if is_key => (
            Ok(vec![Fact::NotPermittedForKey {
                resource: "account",
            }]),
            "this API key may not read the account (only Main keys and the Auth Token can)".into(),
        ),
        Meaning::Suspended => (
            Ok(vec![Fact::Problem {
                problem: Problem::AccountSuspended { status: None }.into(),
            }]),
            "the account lacks API access (20403)".into(),
        ),
        Meaning::NotActive => (
            Ok(vec![Fact::Problem {
                problem: Problem::AccountNotActive.into(),
            }]),
            "the account is not active (20005)".into(),
        ),
        Meaning::Restricted => (
            Ok(vec![Fact::NotPermittedForKey {
                resource: "account",
            }]),
            "this restricted key may not read the account".into(),
        ),
        Meaning::Failure(reason, detail) => (Err(failure(reason, answer)), detail),
        other => (
            Err(failure(Reason::UnexpectedResponse, answer)),
            format!("unexpected answer for the account: {other:?}"),
        ),
    };
    (result, detail)
}

/// What a balance answer means: pure, so it is fuzzed.
pub fn balance_outcome(answer: &Answer, is_key: bool) -> (Result<Vec<Fact>, Failure>, String) {
    let (result, detail) = match classify(answer) {
        Meaning::Ok => match serde_json::from_slice::<BalanceBody>(&answer.body) {
            Ok(b) => {
                let currency = b
                    .currency
                    .as_deref()
                    .map_or_else(|| "unknown".into(), clean);
                match b.balance.as_deref().map(|s| s.trim().parse::<f64>()) {
                    None => (
                        Ok(vec![
                            Detail::Balance {
                                amount: None,
                                currency: currency.clone(),
                            }
                            .into(),
                        ]),
                        "balance not reported".into(),
                    ),
                    Some(Ok(amount)) if amount.is_finite() => (
                        Ok(vec![
                            Detail::Balance {
                                amount: Some(amount),
                                currency: currency.clone(),
                            }
                            .into(),
                        ]),
                        format!("balance {amount} {currency}"),
                    ),
                    Some(_) => (
                        Err(failure(Reason::UnexpectedResponse, answer)),
                        "the balance is not a decimal number".into(),
                    ),
                }
            }
            Err(_) => (
                Err(failure(Reason::UnexpectedResponse, answer)),
                "HTTP 200 but the balance could not be read".into(),
            ),
        },
        Meaning::NotFound => (
            Ok(vec![Detail::BalanceNotApplicable.into()]),
            "no balance: subaccounts and Connect apps have none".into(),
        ),
        Meaning::Authenticate if is_key => (
            Ok(vec![Fact::NotPermittedForKey {
                resource: "balance",
            }]),
            "this API key may not read the balance".into(),
        ),
        Meaning::Restricted => (
            Ok(vec![Fact::NotPermittedForKey {
                resource: "balance",
            }]),
            "this restricted key may not read the balance".into(),
        ),
        // The auth check and the account check own the account's state.
        Meaning::Suspended | Meaning::NotActive => (
            Ok(vec![]),
            "the balance is unreadable: the account lacks API access (20403)".into(),
        ),
        Meaning::Failure(reason, detail) => (Err(failure(reason, answer)), detail),
        other => (
            Err(failure(Reason::UnexpectedResponse, answer)),
            format!("unexpected answer for the balance: {other:?}"),
        ),
    };
    (result, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer::json(status, body)
    }

    fn error(status: u16, code: u64) -> Meaning {
        classify(&answer(
            status,
            &format!(
                r#"{{"code":{code},"message":"x","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
            ),
        ))
    }

    /// The code decides, whatever the HTTP status; 429 and 5xx never do.
    #[test]
    fn codes_decide_whatever_the_status() {
        for status in [400, 401, 403, 404] {
            assert_eq!(error(status, 20005), Meaning::NotActive, "{status}");
            assert_eq!(error(status, 20003), Meaning::Authenticate, "{status}");
            assert_eq!(error(status, 20403), Meaning::Suspended, "{status}");
            assert_eq!(error(status, 70051), Meaning::Restricted, "{status}");
        }
        assert!(matches!(
            error(429, 20003),
            Meaning::Failure(Reason::RateLimited, _)
        ));
        assert!(matches!(
            error(503, 20005),
            Meaning::Failure(Reason::UpstreamError, _)
        ));
        assert!(matches!(
            error(400, 12345),
            Meaning::Failure(Reason::UnexpectedResponse, _)
        ));
    }

    #[test]
    fn account_not_active_blocks_the_account() {
        let (r, _) = account_outcome(
            &answer(
                401,
                r#"{"code":20005,"message":"Account not active","status":401}"#,
            ),
            false,
        );
        assert_eq!(
            r,
            Ok(vec![Fact::Problem {
                problem: Problem::AccountNotActive.into()
            }])
        );
    }

    /// An attacker-sized `status`, `type` or `currency` is capped and cleaned.
    #[test]
    fn account_strings_are_capped_and_cleaned() {
        let evil = format!("active\r\n\u{1b}[2J{}", "x".repeat(100_000));
        let body = serde_json::json!({"sid": "AC1", "owner_account_sid": "AC1", "status": evil, "type": evil})
            .to_string();
        let (r, detail) = account_outcome(&answer(200, &body), false);
        let Ok(facts) = r else { panic!("definitive") };
        let Some(Fact::Detail(crate::providers::Detail::Twilio(Detail::Account {
            status,
            kind,
            ..
        }))) = facts.first()
        else {
            panic!("{facts:?}")
        };
        for s in [status, kind] {
            assert!(s.chars().count() <= crate::outcome::UPSTREAM_STRING_MAX);
            assert!(!s.chars().any(char::is_control), "{s:?}");
        }
        assert!(!detail.chars().any(char::is_control));
        let body = serde_json::json!({"balance": "1.00", "currency": evil}).to_string();
        let (r, _) = balance_outcome(&answer(200, &body), false);
        let Ok(facts) = r else { panic!("definitive") };
        let Some(Fact::Detail(crate::providers::Detail::Twilio(Detail::Balance {
            currency, ..
        }))) = facts.first()
        else {
            panic!("{facts:?}")
        };
        assert!(currency.chars().count() <= crate::outcome::UPSTREAM_STRING_MAX);
        assert!(!currency.chars().any(char::is_control));
    }
}
