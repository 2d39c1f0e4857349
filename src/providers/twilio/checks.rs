//! Twilio's checks: authentication by listing the account's incoming
//! numbers (works for Auth Tokens and every API key type), then account
//! status and balance; the number lookups of the phone-number cross-check.
//!
//! What each answer means is `classify`'s (the envelope and the pure
//! outcomes); this module sends the requests and pages.

use serde::Deserialize;

use super::Twilio;
use super::classify::{
    AUTHENTICATE, Meaning, TEST_CREDENTIALS, account_outcome, balance_outcome, classify,
    error_code, evidence, failure,
};
use super::config::TwilioAuth;
use super::facts::{Detail, Problem};
use crate::providers::http::{Answer, Auth, TransportError};
use crate::providers::outcome::{Attempt, Basis, Fact, Failure, Reason};
use crate::providers::{Clock, Context, Credential, Plan, Provider};

/// Safety net on paging: 100 pages of 1,000 numbers.
pub const MAX_PAGES: usize = 100;

#[derive(Deserialize)]
struct NumbersPage {
    incoming_phone_numbers: Vec<NumberItem>,
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct NumberItem {
    phone_number: Option<String>,
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
