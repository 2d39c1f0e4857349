//! Twilio's checks: authentication by listing the account's incoming
//! numbers (works for Auth Tokens and every API key type), then account
//! status and balance; the number lookups of the phone-number cross-check.
//!
//! Classification is on (HTTP status, Twilio `code`), never on the message,
//! whose text varies. The account body contains the account's `auth_token`:
//! it is deserialized into a struct without that field and dropped at once.

use serde::Deserialize;

use super::Twilio;
use super::config::TwilioAuth;
use super::facts::{Detail, Problem};
use crate::providers::http::{Answer, Auth, TransportError};
use crate::providers::outcome::{Attempt, Basis, Evidence, Fact, Failure, Reason, clean};
use crate::providers::{Clock, Context, Credential, Plan, Provider};

/// What a 20003 means, in full: Twilio's own page lists a suspended or
/// closed account among the causes, so a credential that used to work may
/// have been rotated *or* its account suspended.
const AUTHENTICATE: &str = "credentials rejected (20003 Authenticate): the Auth Token or API key was rotated, deleted or mistyped, or the account was suspended or closed";

/// The detail of a 20008 answer (and the key of its fix, `failure_fix`).
pub const TEST_CREDENTIALS: &str = "test credentials (20008): Twilio answers them for nothing credwatch may read, so they can be neither confirmed nor rejected";

/// Safety net on paging: 100 pages of 1,000 numbers.
pub const MAX_PAGES: usize = 100;

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

#[derive(Deserialize)]
struct NumbersPage {
    incoming_phone_numbers: Vec<NumberItem>,
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct NumberItem {
    phone_number: Option<String>,
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

fn user(tw: &Twilio) -> &str {
    match &tw.auth {
        TwilioAuth::AuthToken(_) => &tw.account_sid,
        TwilioAuth::ApiKey { sid, .. } => sid,
    }
}

pub(super) async fn get(
    ctx: &Context<'_>,
    tw: &Twilio,
    cred: &Credential,
    path: &str,
) -> Result<Answer, TransportError> {
    get_at(ctx, tw, cred, &tw.base_url, path).await
}

/// [`get`] against another of Twilio's APIs (the Voice API), same credentials.
pub(super) async fn get_at(
    ctx: &Context<'_>,
    tw: &Twilio,
    cred: &Credential,
    base_url: &str,
    path: &str,
) -> Result<Answer, TransportError> {
    let auth = Auth::Basic {
        user: user(tw),
        password: &tw.auth.secret().value,
    };
    ctx.upstream
        .get(Provider::Twilio, base_url, path, auth, cred.timeout)
        .await
}

fn evidence(path: &str, answer: &Answer, detail: String) -> Evidence {
    answer.evidence(path, error_code(answer).map(|c| c.to_string()), detail)
}

fn failure(reason: Reason, answer: &Answer) -> Failure {
    answer.failure(reason)
}

/// The permission the auth check proves or refuses: reading the account's
/// incoming numbers. Twilio does not publish its restricted-key permission
/// strings for this read (`twilio-api.md` §1.3), so it is named after the
/// resource.
pub const LIST_PERMISSION: &str = "incoming_phone_numbers_read";

/// The check that counts every number on detail cycles, apart from the
/// auth check: page 1 proves authentication, a later page only the count.
pub const COUNT_CHECK: &str = "phone_numbers_count";

/// One cycle: the numbers (one page unless details are due) and the
/// account's status every time, since both decide `/health`; the balance
/// when details are due. A resource the key may not read is not asked again
/// (`plan.not_permitted`). A later page of the full listing that fails
/// affects only the count (`phone_numbers_count`): the account check still
/// runs.
pub async fn run(cred: &Credential, tw: &Twilio, ctx: &Context<'_>, plan: &Plan) -> Vec<Attempt> {
    let mut attempts = numbers(cred, tw, ctx, plan.details).await;
    let go_on = matches!(&attempts[0].result, Ok(facts) if !facts.iter().any(|f| matches!(f, Fact::Invalid { .. })));
    if !go_on {
        return attempts;
    }
    // Upstream answered page 1 but refused a later one (429, 5xx): no more
    // pile-on this cycle beyond the check that decides `/health`.
    let busy = attempts[1..]
        .iter()
        .any(|a| a.result.as_ref().is_err_and(Failure::ends_cycle));
    if !plan.not_permitted.contains("account") {
        let account = account(cred, tw, ctx).await;
        let stop = account.result.as_ref().is_err_and(Failure::ends_cycle);
        attempts.push(account);
        if stop {
            return attempts;
        }
    }
    if plan.details && !busy && !plan.not_permitted.contains("balance") {
        attempts.push(balance(cred, tw, ctx).await);
    }
    attempts
}

/// The auth check: page 1 of the account's incoming numbers (one number,
/// or 1,000 with `full`). With `full`, a second attempt,
/// [`COUNT_CHECK`], pages through the rest to count them; its failure
/// (a later page answering 429, 5xx, HTML, …) leaves the last count in
/// place and never touches the verdict, which page 1 decided.
pub async fn numbers(
    cred: &Credential,
    tw: &Twilio,
    ctx: &Context<'_>,
    full: bool,
) -> Vec<Attempt> {
    const CHECK: &str = "phone_numbers";
    let base = format!(
        "/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json",
        tw.account_sid
    );
    let first = format!("{base}?PageSize={}", if full { 1000 } else { 1 });
    let clock = Clock::start();
    let answer = match get(ctx, tw, cred, &first).await {
        Ok(a) => a,
        Err(e) => return vec![clock.failed(CHECK, &first, e)],
    };
    let (result, detail, page) = first_page_outcome(&answer);
    let auth = clock.finish(CHECK, evidence(&first, &answer, detail), result);
    match page {
        Some(page) if full => {
            let count = count(cred, tw, ctx, &base, &first, &answer, page).await;
            vec![auth, count]
        }
        _ => vec![auth],
    }
}

/// What an answer to the auth check (page 1 of the incoming numbers) means:
/// pure, so it is fuzzed and the recorded answers are replayed through it.
pub fn numbers_outcome(answer: &Answer) -> (Result<Vec<Fact>, Failure>, String) {
    let (result, detail, _) = first_page_outcome(answer);
    (result, detail)
}

/// [`numbers_outcome`], with the page when the answer is a readable list
/// (the counting of a full listing goes on from it).
fn first_page_outcome(
    answer: &Answer,
) -> (Result<Vec<Fact>, Failure>, String, Option<NumbersPage>) {
    let refused = |permission_granted: bool, problem: Problem| {
        vec![
            Fact::Valid,
            Fact::Permission {
                name: LIST_PERMISSION.into(),
                granted: permission_granted,
                basis: Basis::Direct,
            },
            Fact::Problem {
                problem: problem.into(),
            },
        ]
    };
    let facts = match classify(answer) {
        Meaning::Ok => None,
        Meaning::Authenticate => Some((
            vec![Fact::Invalid {
                problem: Problem::TwilioAuthenticate.into(),
            }],
            AUTHENTICATE,
        )),
        Meaning::NotActive => Some((
            vec![
                Fact::Valid,
                Fact::Problem {
                    problem: Problem::AccountNotActive.into(),
                },
            ],
            "the account is not active (20005)",
        )),
        // Test credentials authenticate, but Twilio lets them read nothing:
        // no answer about them can be had, neither valid nor invalid.
        Meaning::TestCredentials => {
            return (
                Err(failure(Reason::UnexpectedResponse, answer)),
                TEST_CREDENTIALS.into(),
                None,
            );
        }
        Meaning::Suspended => Some((
            vec![
                Fact::Valid,
                Fact::Problem {
                    problem: Problem::AccountSuspended { status: None }.into(),
                },
            ],
            "the account lacks API access (20403): suspended or closed",
        )),
        Meaning::Restricted => Some((
            refused(false, Problem::RestrictedKey),
            "this restricted key may not list phone numbers (70051)",
        )),
        Meaning::NotFound => Some((
            vec![Fact::Invalid {
                problem: Problem::AccountNotFound.into(),
            }],
            "no such account for these credentials (20404)",
        )),
        Meaning::KeySidInPath => Some((
            vec![Fact::Invalid {
                problem: Problem::KeySidInPath.into(),
            }],
            "an API key SID was used as the Account SID",
        )),
        Meaning::Failure(reason, detail) => {
            return (Err(failure(reason, answer)), detail, None);
        }
    };
    if let Some((facts, detail)) = facts {
        return (Ok(facts), detail.into(), None);
    }
    let page: NumbersPage = match serde_json::from_slice(&answer.body) {
        Ok(p) => p,
        Err(e) => {
            let detail = format!(
                "HTTP 200 but the number list could not be read: {}",
                e.to_string().chars().take(160).collect::<String>()
            );
            return (
                Err(failure(Reason::UnexpectedResponse, answer)),
                detail,
                None,
            );
        }
    };
    (
        Ok(vec![
            Fact::Valid,
            Fact::Permission {
                name: LIST_PERMISSION.into(),
                granted: true,
                basis: Basis::Direct,
            },
        ]),
        "credentials accepted".into(),
        Some(page),
    )
}

/// The rest of a full listing after page 1 (`page`, the answer to `first`):
/// the [`COUNT_CHECK`] attempt. The later pages share one deadline, the
/// credential's `timeout`: counting never holds the cycle's verdict back by
/// more than that (a count not finished in time stays the last one).
async fn count(
    cred: &Credential,
    tw: &Twilio,
    ctx: &Context<'_>,
    base: &str,
    first: &str,
    first_answer: &Answer,
    mut page: NumbersPage,
) -> Attempt {
    let clock = Clock::start();
    let deadline = tokio::time::Instant::now() + cred.timeout;
    let mut count = page.incoming_phone_numbers.len() as u64;
    let mut pages = 1;
    let stale = |pages: usize, why: &str| {
        format!(
            "number count not updated: {why} at page {}; the last count stays (credentials accepted on page 1)",
            pages + 1
        )
    };
    loop {
        let Some(next) = page.next_page_uri.take().filter(|n| !n.is_empty()) else {
            let detail = format!("{count} incoming number(s) over {pages} page(s)");
            return clock.finish(
                COUNT_CHECK,
                evidence(first, first_answer, detail),
                Ok(vec![
                    Detail::Numbers {
                        count,
                        counted_at: std::time::SystemTime::now(),
                    }
                    .into(),
                ]),
            );
        };
        // Followed exactly as sent, or not at all (`outcome::upstream_uri`).
        let Some(next) = crate::providers::outcome::upstream_uri(&next) else {
            return clock.finish(
                COUNT_CHECK,
                evidence(
                    first,
                    first_answer,
                    stale(
                        pages,
                        "next_page_uri is malformed (control characters, spaces, non-ASCII or over 1024 bytes; not followed)",
                    ),
                ),
                Err(Failure::new(Reason::UnexpectedResponse)),
            );
        };
        if pages >= MAX_PAGES {
            return clock.finish(
                COUNT_CHECK,
                evidence(
                    first,
                    first_answer,
                    format!("more than {MAX_PAGES} pages of numbers: count not exported"),
                ),
                Err(Failure::new(Reason::UnexpectedResponse)),
            );
        }
        if !next.starts_with(base)
            || crate::providers::check_read_path(Provider::Twilio, &next).is_err()
        {
            return clock.finish(
                COUNT_CHECK,
                evidence(
                    first,
                    first_answer,
                    stale(
                        pages,
                        "next_page_uri points outside this account's number list (not followed)",
                    ),
                ),
                Err(Failure::new(Reason::UnexpectedResponse)),
            );
        }
        let answer = match tokio::time::timeout_at(deadline, get(ctx, tw, cred, &next)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                let mut attempt = clock.failed(COUNT_CHECK, &next, e);
                attempt.evidence.detail = stale(pages, &attempt.evidence.detail).into();
                return attempt;
            }
            Err(_) => {
                let mut attempt =
                    clock.failed(COUNT_CHECK, &next, TransportError::Timeout(cred.timeout));
                attempt.evidence.detail = stale(
                    pages,
                    "the pages after the first took longer than `timeout` together",
                )
                .into();
                return attempt;
            }
        };
        match classify(&answer) {
            Meaning::Ok => {}
            // Carries `Retry-After`: the scheduler honours it.
            Meaning::Failure(reason, detail) => {
                return clock.finish(
                    COUNT_CHECK,
                    evidence(&next, &answer, stale(pages, &detail)),
                    Err(failure(reason, &answer)),
                );
            }
            other => {
                return clock.finish(
                    COUNT_CHECK,
                    evidence(
                        &next,
                        &answer,
                        stale(pages, &format!("the listing was refused ({other:?})")),
                    ),
                    Err(failure(Reason::UnexpectedResponse, &answer)),
                );
            }
        }
        page = match serde_json::from_slice(&answer.body) {
            Ok(p) => p,
            Err(_) => {
                return clock.finish(
                    COUNT_CHECK,
                    evidence(&next, &answer, stale(pages, "an unreadable page")),
                    Err(failure(Reason::UnexpectedResponse, &answer)),
                );
            }
        };
        pages += 1;
        count += page.incoming_phone_numbers.len() as u64;
    }
}

/// `Accounts/{Sid}.json`: status and type. Standard keys may not read it.
pub async fn account(cred: &Credential, tw: &Twilio, ctx: &Context<'_>) -> Attempt {
    const CHECK: &str = "account";
    let path = format!("/2010-04-01/Accounts/{}.json", tw.account_sid);
    let clock = Clock::start();
    let answer = match get(ctx, tw, cred, &path).await {
        Ok(a) => a,
        Err(e) => return clock.failed(CHECK, &path, e),
    };
    let is_key = matches!(tw.auth, TwilioAuth::ApiKey { .. });
    let (result, detail) = account_outcome(&answer, is_key);
    clock.finish(CHECK, evidence(&path, &answer, detail), result)
}

/// `Balance.json`. Subaccounts have none (404 20404).
pub async fn balance(cred: &Credential, tw: &Twilio, ctx: &Context<'_>) -> Attempt {
    const CHECK: &str = "balance";
    let path = format!("/2010-04-01/Accounts/{}/Balance.json", tw.account_sid);
    let clock = Clock::start();
    let answer = match get(ctx, tw, cred, &path).await {
        Ok(a) => a,
        Err(e) => return clock.failed(CHECK, &path, e),
    };
    let is_key = matches!(tw.auth, TwilioAuth::ApiKey { .. });
    let (result, detail) = balance_outcome(&answer, is_key);
    clock.finish(CHECK, evidence(&path, &answer, detail), result)
}

/// A list of numbers on the account, for the ElevenLabs cross-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberList {
    /// Purchased or ported numbers (`IncomingPhoneNumbers.json`).
    Incoming,
    /// Verified caller IDs (`OutgoingCallerIds.json`), outbound only.
    CallerIds,
}

#[derive(Deserialize)]
struct FilteredPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<NumberItem>,
    #[serde(default)]
    outgoing_caller_ids: Vec<NumberItem>,
}

/// Why a number lookup got no answer: one line for people (never a
/// secret), and whether upstream asked to slow down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    pub message: String,
    /// Twilio answered 429: send no more lookups this cycle.
    pub rate_limited: bool,
    pub retry_after: Option<std::time::Duration>,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Is `number` (E.164) on `list` of the account? One GET with Twilio's
/// `PhoneNumber=` filter (which also matches partial numbers, so the answer
/// is compared exactly): no full listing per ElevenLabs key. The error is one
/// line for people; it never contains a secret.
pub async fn has_number(
    cred: &Credential,
    tw: &Twilio,
    ctx: &Context<'_>,
    list: NumberList,
    number: &str,
) -> Result<bool, LookupError> {
    let resource = match list {
        NumberList::Incoming => "IncomingPhoneNumbers.json",
        NumberList::CallerIds => "OutgoingCallerIds.json",
    };
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("PhoneNumber", number)
        .append_pair("PageSize", "20")
        .finish();
    let path = format!("/2010-04-01/Accounts/{}/{resource}?{query}", tw.account_sid);
    let plain = |message: String| LookupError {
        message,
        rate_limited: false,
        retry_after: None,
    };
    let answer = get(ctx, tw, cred, &path)
        .await
        .map_err(|e| plain(e.to_string()))?;
    if classify(&answer) != Meaning::Ok {
        return Err(LookupError {
            message: format!(
                "Twilio answered HTTP {}{}",
                answer.status,
                error_code(&answer)
                    .map(|c| format!(" (code {c})"))
                    .unwrap_or_default()
            ),
            rate_limited: answer.status == 429,
            retry_after: answer.retry_after,
        });
    }
    let page: FilteredPage = serde_json::from_slice(&answer.body)
        .map_err(|_| plain("the number list could not be read".to_string()))?;
    Ok(page
        .incoming_phone_numbers
        .iter()
        .chain(&page.outgoing_caller_ids)
        .any(|n| n.phone_number.as_deref() == Some(number)))
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
