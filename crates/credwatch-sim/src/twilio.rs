//! The fake Twilio REST API 2010 (`https://api.twilio.com/2010-04-01`).
//!
//! Modelled: pre-emptive Basic auth with an Account SID + Auth Token or an
//! API Key SID + secret (the Account SID always in the path), subaccounts
//! (reachable with the parent's token, not with the parent's keys), Main,
//! Standard and Restricted keys, test credentials, suspended and closed
//! accounts, and the read endpoints credwatch uses with Twilio's real paging
//! (relative `next_page_uri` with `Page` and `PageToken`, no `total`). Error
//! bodies are the `{code, message, more_info, status}` envelope of
//! `twilio-api.md` §2, verbatim where a real one was captured.
//!
//! It must never do what a POST would do (buy a number, create a key,
//! suspend an account): such requests are answered plausibly, recorded as
//! forbidden, and change nothing. `Accounts/{Sid}.json` carries a sentinel
//! `auth_token` so tests can prove credwatch never leaks it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::corpus;
use super::faults::{Fault, FaultAction, UpstreamError};
use super::http::{Delivery, Reply, base64_decode, query_param, query_value, random_hex_id};
use super::{IndexedWorld, RequestCtx, Script};

/// Prefix of the `auth_token` value in `Accounts/{Sid}.json`; the real token
/// follows it. A test that finds this string anywhere credwatch writes has
/// found a leak.
pub const AUTH_TOKEN_SENTINEL: &str = "SIMULATOR-AUTH-TOKEN-MUST-NEVER-LEAK-";

const DEFAULT_DATE: &str = "Thu, 30 Jul 2015 20:00:00 +0000";

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// Everything the fake Twilio knows.
#[derive(Debug, Clone, Default)]
pub struct TwilioWorld {
    /// Accounts (main and sub) by Account SID.
    pub accounts: HashMap<String, TwilioAccount>,
    /// Send `"detail": ""` instead of "Your AccountSid or AuthToken was
    /// incorrect." in 401/20003 bodies.
    pub empty_auth_detail: bool,
    /// Message casing of 429/20429 bodies.
    pub rate_limit_casing: RateLimitCasing,
    /// Error for an API Key SID placed in the path.
    pub sk_in_path: SkInPathError,
    /// A fault for every request (takes precedence over account faults).
    pub fault: Option<Fault>,
    /// Added to every answer (account latency adds to it).
    pub latency: Duration,
    /// Latency and faults for some requests only, by path.
    pub path_rules: Vec<super::faults::PathRule>,
}

impl TwilioWorld {
    /// Adds (or replaces) an account.
    pub fn add_account(&mut self, account: TwilioAccount) {
        self.accounts.insert(account.sid.clone(), account);
    }

    pub fn account_mut(&mut self, sid: &str) -> Option<&mut TwilioAccount> {
        self.accounts.get_mut(sid)
    }

    /// Rotates an account's auth token (the old one stops working).
    pub fn rotate_token(&mut self, sid: &str, new_token: impl Into<String>) -> bool {
        match self.accounts.get_mut(sid) {
            Some(account) => {
                account.auth_token = new_token.into();
                true
            }
            None => false,
        }
    }

    /// Deletes an API key wherever it is.
    pub fn revoke_key(&mut self, key_sid: &str) -> bool {
        self.accounts.values_mut().any(|account| {
            let before = account.api_keys.len();
            account.api_keys.retain(|k| k.sid != key_sid);
            account.api_keys.len() != before
        })
    }
}

/// Casing of the 20429 message (both are seen, §2.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateLimitCasing {
    /// `{"code":20429,"message":"Too Many Requests",…}` (fixtures).
    #[default]
    TitleCase,
    /// `{"code":20429,"detail":"Too many requests for the associated account being sent.","message":"Too many requests",…}`.
    SentenceCase,
}

/// What an API Key SID in the path gives (§1.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SkInPathError {
    /// 400 21470 "Invalid AccountSid".
    #[default]
    InvalidAccountSid21470,
    /// 400 90002 "AccountSid SK… is invalid".
    Code90002,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccountStatus {
    #[default]
    Active,
    Suspended,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Closed => "closed",
        }
    }
}

/// What a suspended or closed account answers (twilio-api.md §2.3,
/// evidence-addendum.md). No body for any of them was ever captured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InactiveAnswer {
    /// 403 20403 on the lists, balance and keys; `Accounts/{Sid}.json`
    /// still answers 200 with its `status`.
    #[default]
    Forbidden20403,
    /// 401 20003 "Authenticate" on every request, the account resource
    /// included: the 20003 page lists "Account is suspended or closed".
    Authenticate20003,
    /// 20005 "Account not active" on every request, with this HTTP status
    /// (undocumented: 401 and 403 are both plausible).
    NotActive20005 { http_status: u16 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccountType {
    Trial,
    #[default]
    Full,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Trial => "Trial",
            AccountType::Full => "Full",
        }
    }
}

/// A Twilio account (main or sub).
#[derive(Debug, Clone)]
pub struct TwilioAccount {
    /// `AC` + 32 hex.
    pub sid: String,
    pub friendly_name: String,
    pub auth_token: String,
    /// Test credentials: this token gets 403/20008 on every GET.
    pub test_auth_token: Option<String>,
    pub status: AccountStatus,
    /// How the account answers while it is not active.
    pub inactive_answer: InactiveAnswer,
    pub account_type: AccountType,
    /// Set for subaccounts.
    pub parent_sid: Option<String>,
    /// Decimal string, may be negative; `None` → `null`.
    pub balance: Option<String>,
    pub currency: Option<String>,
    pub incoming_numbers: Vec<IncomingNumber>,
    pub caller_ids: Vec<CallerId>,
    pub api_keys: Vec<ApiKey>,
    pub date_created: String,
    /// A fault for requests whose path names this account.
    pub fault: Option<Fault>,
    /// A fault for the later pages of this account's lists only (a request
    /// with `Page` ≥ 1): page 1 answers, page 2 fails.
    pub later_page_fault: Option<Fault>,
    /// Added to the world latency for this account.
    pub latency: Duration,
    /// Voice geo permissions: whether calls to ordinary (low-risk) numbers
    /// of each country (ISO code) are allowed. New accounts allow US/Canada.
    pub geo_permissions: std::collections::BTreeMap<String, bool>,
    /// A hostile upstream: sent verbatim as the `next_page_uri` of every
    /// list page of this account (escape sequences and all).
    pub hostile_next_page_uri: Option<String>,
}

impl TwilioAccount {
    /// An active Full account with no numbers, balance `"0.00"` USD.
    pub fn new(sid: impl Into<String>, auth_token: impl Into<String>) -> TwilioAccount {
        TwilioAccount {
            sid: sid.into(),
            friendly_name: "demo@example.invalid".to_owned(),
            auth_token: auth_token.into(),
            test_auth_token: None,
            status: AccountStatus::Active,
            inactive_answer: InactiveAnswer::default(),
            account_type: AccountType::Full,
            parent_sid: None,
            balance: Some("0.00".to_owned()),
            currency: Some("USD".to_owned()),
            incoming_numbers: Vec::new(),
            caller_ids: Vec::new(),
            api_keys: Vec::new(),
            date_created: DEFAULT_DATE.to_owned(),
            fault: None,
            later_page_fault: None,
            latency: Duration::ZERO,
            geo_permissions: [("US".to_owned(), true)].into_iter().collect(),
            hostile_next_page_uri: None,
        }
    }

    pub fn with_status(mut self, status: AccountStatus) -> TwilioAccount {
        self.status = status;
        self
    }

    /// Suspended or closed (`status`), answering as `answer` says.
    pub fn inactive(mut self, status: AccountStatus, answer: InactiveAnswer) -> TwilioAccount {
        self.status = status;
        self.inactive_answer = answer;
        self
    }

    pub fn with_type(mut self, account_type: AccountType) -> TwilioAccount {
        self.account_type = account_type;
        self
    }

    pub fn with_balance(mut self, balance: Option<&str>, currency: &str) -> TwilioAccount {
        self.balance = balance.map(str::to_owned);
        self.currency = Some(currency.to_owned());
        self
    }

    pub fn with_parent(mut self, parent_sid: impl Into<String>) -> TwilioAccount {
        self.parent_sid = Some(parent_sid.into());
        self
    }

    /// Adds incoming numbers (E.164), with generated `PN` SIDs.
    pub fn with_numbers<S: AsRef<str>>(mut self, numbers: &[S]) -> TwilioAccount {
        for n in numbers {
            let number = IncomingNumber::new(&self.sid, n.as_ref());
            self.incoming_numbers.push(number);
        }
        self
    }

    /// Adds `count` generated numbers (`+1555…`), for paging tests.
    pub fn with_generated_numbers(mut self, count: usize) -> TwilioAccount {
        self.incoming_numbers.reserve(count);
        for i in 0..count {
            let number = IncomingNumber::new(&self.sid, &format!("+1555{:07}", i));
            self.incoming_numbers.push(number);
        }
        self
    }

    /// Adds a verified outgoing caller ID.
    pub fn with_caller_id(mut self, phone_number: &str) -> TwilioAccount {
        self.caller_ids.push(CallerId {
            sid: sid_from("PN", &format!("callerid:{}:{phone_number}", self.sid)),
            phone_number: phone_number.to_owned(),
            friendly_name: phone_number.to_owned(),
        });
        self
    }

    /// Allows or blocks calls to ordinary numbers of `iso` (geo permissions).
    pub fn with_geo_permission(mut self, iso: &str, low_risk_enabled: bool) -> TwilioAccount {
        self.geo_permissions
            .insert(iso.to_owned(), low_risk_enabled);
        self
    }

    /// Sets the capabilities of an incoming number of the account.
    pub fn with_number_capabilities(
        mut self,
        number: &str,
        capabilities: Capabilities,
    ) -> TwilioAccount {
        for n in self
            .incoming_numbers
            .iter_mut()
            .filter(|n| n.phone_number == number)
        {
            n.capabilities = capabilities;
        }
        self
    }

    pub fn with_key(mut self, key: ApiKey) -> TwilioAccount {
        self.api_keys.push(key);
        self
    }

    fn uri(&self) -> String {
        format!("/2010-04-01/Accounts/{}.json", self.sid)
    }

    /// `api.v2010.account`, with the sentinel token.
    fn to_json(&self) -> Value {
        let base = format!("/2010-04-01/Accounts/{}", self.sid);
        let sub = |name: &str| format!("{base}/{name}.json");
        json!({
            "auth_token": format!("{AUTH_TOKEN_SENTINEL}{}", self.auth_token),
            "date_created": self.date_created,
            "date_updated": self.date_created,
            "friendly_name": self.friendly_name,
            "owner_account_sid": self.parent_sid.as_deref().unwrap_or(&self.sid),
            "sid": self.sid,
            "status": self.status.as_str(),
            "subresource_uris": {
                "available_phone_numbers": sub("AvailablePhoneNumbers"),
                "calls": sub("Calls"),
                "conferences": sub("Conferences"),
                "incoming_phone_numbers": sub("IncomingPhoneNumbers"),
                "notifications": sub("Notifications"),
                "outgoing_caller_ids": sub("OutgoingCallerIds"),
                "recordings": sub("Recordings"),
                "transcriptions": sub("Transcriptions"),
                "addresses": sub("Addresses"),
                "signing_keys": sub("SigningKeys"),
                "connect_apps": sub("ConnectApps"),
                "sip": sub("SIP"),
                "authorized_connect_apps": sub("AuthorizedConnectApps"),
                "usage": sub("Usage"),
                "keys": sub("Keys"),
                "applications": sub("Applications"),
                "short_codes": sub("SMS/ShortCodes"),
                "queues": sub("Queues"),
                "messages": sub("Messages"),
                "balance": sub("Balance")
            },
            "type": self.account_type.as_str(),
            "uri": self.uri()
        })
    }
}

/// Voice/SMS/MMS/fax capabilities of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub voice: bool,
    pub sms: bool,
    pub mms: bool,
    pub fax: bool,
}

impl Default for Capabilities {
    fn default() -> Capabilities {
        Capabilities {
            voice: true,
            sms: true,
            mms: true,
            fax: false,
        }
    }
}

/// A purchased (incoming) phone number.
#[derive(Debug, Clone)]
pub struct IncomingNumber {
    /// `PN` + 32 hex.
    pub sid: String,
    /// E.164.
    pub phone_number: String,
    pub friendly_name: String,
    pub capabilities: Capabilities,
    /// e.g. `in-use`.
    pub status: String,
    /// e.g. `local`, `toll-free`, `mobile`.
    pub number_type: String,
    pub voice_url: Option<String>,
}

impl IncomingNumber {
    /// A local, in-use number with a SID derived from account and number.
    pub fn new(account_sid: &str, phone_number: &str) -> IncomingNumber {
        IncomingNumber {
            sid: sid_from("PN", &format!("{account_sid}:{phone_number}")),
            phone_number: phone_number.to_owned(),
            friendly_name: phone_number.to_owned(),
            capabilities: Capabilities::default(),
            status: "in-use".to_owned(),
            number_type: "local".to_owned(),
            voice_url: Some("https://api.us.elevenlabs.io/twilio/inbound_call".to_owned()),
        }
    }

    fn to_json(&self, account_sid: &str) -> Value {
        let c = self.capabilities;
        json!({
            "account_sid": account_sid,
            "address_requirements": "none",
            "address_sid": null,
            "api_version": "2010-04-01",
            "beta": false,
            "capabilities": {"voice": c.voice, "sms": c.sms, "mms": c.mms, "fax": c.fax},
            "date_created": DEFAULT_DATE,
            "date_updated": DEFAULT_DATE,
            "emergency_status": "Inactive",
            "emergency_address_sid": null,
            "emergency_address_status": "unregistered",
            "friendly_name": self.friendly_name,
            "identity_sid": null,
            "phone_number": self.phone_number,
            "origin": "twilio",
            "sid": self.sid,
            "sms_application_sid": "",
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": "",
            "status_callback": "",
            "status_callback_method": "POST",
            "trunk_sid": null,
            "uri": format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{}.json", self.sid),
            "voice_application_sid": "",
            "voice_caller_id_lookup": false,
            "voice_fallback_method": "POST",
            "voice_fallback_url": null,
            "voice_method": "POST",
            "voice_url": self.voice_url,
            "bundle_sid": null,
            "voice_receive_mode": "voice",
            "status": self.status,
            "type": self.number_type
        })
    }
}

/// A verified outgoing caller ID.
#[derive(Debug, Clone)]
pub struct CallerId {
    /// `PN` + 32 hex.
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: String,
}

impl CallerId {
    fn to_json(&self, account_sid: &str) -> Value {
        json!({
            "account_sid": account_sid,
            "date_created": DEFAULT_DATE,
            "date_updated": DEFAULT_DATE,
            "friendly_name": self.friendly_name,
            "phone_number": self.phone_number,
            "sid": self.sid,
            "uri": format!("/2010-04-01/Accounts/{account_sid}/OutgoingCallerIds/{}.json", self.sid)
        })
    }
}

/// An API key of an account.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// `SK` + 32 hex.
    pub sid: String,
    pub secret: String,
    pub friendly_name: String,
    pub kind: KeyKind,
}

impl ApiKey {
    pub fn new(sid: impl Into<String>, secret: impl Into<String>, kind: KeyKind) -> ApiKey {
        ApiKey {
            sid: sid.into(),
            secret: secret.into(),
            friendly_name: "credwatch".to_owned(),
            kind,
        }
    }
}

/// API key type (§1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Everything the auth token can do on its own account.
    Main,
    /// Everything except `Accounts/{Sid}.json` and `Keys.json` (401/20003).
    Standard,
    /// Only what is granted; anything else is 403/70051. `Accounts/{Sid}.json`
    /// and `Keys.json` are always refused (401/20003).
    Restricted {
        /// `IncomingPhoneNumbers.json` and `OutgoingCallerIds.json`.
        can_read_numbers: bool,
        /// `Balance.json`.
        can_read_balance: bool,
    },
}

/// `prefix` + 32 lowercase hex derived from `seed` (stable across runs).
pub fn sid_from(prefix: &str, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("{prefix}{}", hex::encode(&digest[..16]))
}

/// Twilio credentials stored with an imported ElevenLabs number (AC SID + auth token,
/// or SK SID + secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTwilioCredentials {
    pub account_sid: String,
    pub auth_token: String,
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------
// Index (rebuilt after every world update)
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// key SID → (account SID, position in `api_keys`)
    keys: HashMap<String, (String, usize)>,
    /// incoming-number SID → position in its account's list
    incoming: HashMap<String, usize>,
    /// caller-ID SID → position in its account's list
    caller_ids: HashMap<String, usize>,
    /// `account SID` + `phone number` of every incoming number and caller ID
    owned_numbers: HashSet<String>,
}

impl Index {
    pub(crate) fn build(world: &TwilioWorld) -> Index {
        let mut index = Index::default();
        for account in world.accounts.values() {
            for (i, key) in account.api_keys.iter().enumerate() {
                index.keys.insert(key.sid.clone(), (account.sid.clone(), i));
            }
            for (i, n) in account.incoming_numbers.iter().enumerate() {
                index.incoming.insert(n.sid.clone(), i);
                index
                    .owned_numbers
                    .insert(format!("{}{}", account.sid, n.phone_number));
            }
            for (i, n) in account.caller_ids.iter().enumerate() {
                index.caller_ids.insert(n.sid.clone(), i);
                index
                    .owned_numbers
                    .insert(format!("{}{}", account.sid, n.phone_number));
            }
        }
        index
    }
}

// ---------------------------------------------------------------------------
// Routing and forbidden requests
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    IncomingPhoneNumbers,
    OutgoingCallerIds,
    Balance,
    Keys,
    /// Anything else under the account (not modelled: 404/20404).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'p> {
    /// `/2010-04-01/Accounts.json`
    AccountsList,
    /// `/2010-04-01/Accounts/{Sid}.json`
    Account(&'p str),
    /// `/2010-04-01/Accounts/{Sid}/…`
    Resource(&'p str, Resource),
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/2010-04-01/Accounts")?;
    if rest == ".json" {
        return Some(Route::AccountsList);
    }
    let rest = rest.strip_prefix('/')?;
    match rest.split_once('/') {
        None => Some(Route::Account(rest.strip_suffix(".json").unwrap_or(rest))),
        Some((sid, sub)) => Some(Route::Resource(
            sid,
            match sub {
                "IncomingPhoneNumbers.json" => Resource::IncomingPhoneNumbers,
                "OutgoingCallerIds.json" => Resource::OutgoingCallerIds,
                "Balance.json" => Resource::Balance,
                "Keys.json" => Resource::Keys,
                _ => Resource::Other,
            },
        )),
    }
}

/// Why a request is forbidden for a read-only prober, if it is.
pub(crate) fn forbidden_reason(ctx: &RequestCtx<'_>) -> Option<&'static str> {
    if ctx.method != Method::GET {
        return Some("non-GET request");
    }
    if let Some(iso) = ctx.path.strip_prefix("/v1/DialingPermissions/Countries/")
        && !iso.contains('/')
    {
        return None;
    }
    match route(ctx.path) {
        Some(Route::AccountsList) => Some("Accounts.json lists every subaccount's auth token"),
        Some(Route::Account(_)) if ctx.path.ends_with(".json") => None,
        Some(Route::Resource(_, r)) if r != Resource::Other => None,
        _ => Some("path outside the read-only allow-list"),
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct TwilioError<'a> {
    code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    message: &'a str,
    more_info: String,
    status: u16,
}

/// The 2010 envelope, for the answers nobody has recorded.
fn error(status: u16, code: u32, message: &str, detail: Option<&str>) -> Reply {
    Reply::json_of(
        status,
        &TwilioError {
            code,
            detail,
            message,
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            status,
        },
    )
}

/// The corpus answer `id`, or `fallback` if the corpus lacked it.
fn recorded(id: &str, fallback: impl FnOnce() -> Reply) -> Reply {
    corpus::entry(id).map_or_else(fallback, corpus::Entry::reply)
}

/// `value` as it appears inside a JSON string.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

const AUTH_DETAIL: &str = "Your AccountSid or AuthToken was incorrect.";
const CHALLENGE: &str = "Basic realm=\"Twilio API\"";
const MSG_NO_CREDENTIALS: &str = "Authentication Error - No credentials provided";
/// What the recorded 20404 body quotes, replaced by the requested path.
const RECORDED_404_PATH: &str = "/2010-04-01/Accounts/null/Messages.json";
/// What the recorded 90002 body quotes, replaced by the SID in the path.
const RECORDED_90002_SID: &str = "SK1234";

fn auth_error(world: &TwilioWorld, message: &str) -> Reply {
    let id = match (world.empty_auth_detail, message) {
        (true, "Authenticate") => Some("tw-401-20003-empty-detail"),
        (false, "Authenticate") => Some("tw-401-20003-authenticate"),
        (false, MSG_NO_CREDENTIALS) => Some("tw-401-20003-no-credentials"),
        _ => None,
    };
    let generated = || {
        let detail = if world.empty_auth_detail {
            ""
        } else {
            AUTH_DETAIL
        };
        error(401, 20003, message, Some(detail)).header("www-authenticate", CHALLENGE)
    };
    match id {
        Some(id) => recorded(id, generated),
        None => generated(),
    }
}

fn authenticate_error(world: &TwilioWorld) -> Reply {
    auth_error(world, "Authenticate")
}

fn not_found(path: &str) -> Reply {
    match corpus::entry("tw-404-20404-not-found") {
        Some(entry) => entry.reply_replacing(RECORDED_404_PATH, &json_escaped(path)),
        None => error(
            404,
            20404,
            &format!("The requested resource {path} was not found"),
            None,
        ),
    }
}

fn forbidden_account() -> Reply {
    recorded("tw-403-20403-account-lacks-permission", || {
        error(
            403,
            20403,
            "The account lacks permission to access the Twilio API",
            None,
        )
    })
}

fn restricted_denied_error() -> Reply {
    recorded("tw-403-70051-restricted-key", || {
        error(403, 70051, "Authorization Failed", None)
    })
}

/// 20005 "Account not active" with the chosen HTTP status.
fn not_active(http_status: u16) -> Reply {
    let id = match http_status {
        401 => "tw-401-20005-account-not-active",
        403 => "tw-403-20005-account-not-active",
        _ => "",
    };
    recorded(id, || error(http_status, 20005, "Account not active", None))
}

fn upstream_error(world: &TwilioWorld, e: UpstreamError, path: &str) -> Reply {
    match e {
        UpstreamError::ServerError | UpstreamError::ServerErrorUnwrapped => {
            recorded("tw-500-20500-internal", || {
                error(500, 20500, "Internal Server Error", None)
            })
        }
        UpstreamError::RateLimited(_) | UpstreamError::RateLimitExceededNew => {
            let reply = match world.rate_limit_casing {
                RateLimitCasing::TitleCase => recorded("tw-429-20429-fixture", || {
                    error(429, 20429, "Too Many Requests", None)
                }),
                RateLimitCasing::SentenceCase => recorded("tw-429-20429-serverless", || {
                    error(
                        429,
                        20429,
                        "Too many requests",
                        Some("Too many requests for the associated account being sent."),
                    )
                }),
            };
            match e {
                UpstreamError::RateLimited(Some(secs)) => {
                    reply.header("retry-after", secs.to_string())
                }
                _ => reply,
            }
        }
        UpstreamError::SystemBusy => recorded("tw-503-20503-unavailable", || {
            error(503, 20503, "Service is unavailable, please try again", None)
        }),
        UpstreamError::NotFound => not_found(path),
        UpstreamError::Validation => error(400, 21481, "Invalid PageToken", None),
    }
}

// ---------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------

/// Who the credentials identify.
#[derive(Clone, Copy)]
enum Principal<'w> {
    Token(&'w TwilioAccount),
    Key(&'w TwilioAccount, &'w ApiKey),
    Test,
}

/// Computes the answer to one request.
pub(crate) fn handle(state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Script {
    let world = &state.world.twilio;
    let reply = respond(state, ctx);

    // Faults: the world's first, then the account named in the path.
    let path_account = match route(ctx.path) {
        Some(Route::Account(sid) | Route::Resource(sid, _)) => world.accounts.get(sid),
        _ => None,
    };
    let mut latency = world.latency;
    let mut fault = world.fault.as_ref();
    if let Some(account) = path_account {
        latency += account.latency;
        fault = fault.or(account.fault.as_ref());
        let later_page = query_param(ctx.query, "Page")
            .and_then(|p| p.parse::<usize>().ok())
            .is_some_and(|p| p >= 1);
        if later_page {
            fault = fault.or(account.later_page_fault.as_ref());
        }
    }
    super::faults::PathRule::apply(
        &world.path_rules,
        ctx.path,
        ctx.query,
        &mut latency,
        &mut fault,
    );
    let (reply, delivery, styled) = match fault.map(Fault::action) {
        None => (reply, Delivery::Normal, true),
        Some(FaultAction::Envelope(e)) => {
            (upstream_error(world, e, ctx.path), Delivery::Normal, true)
        }
        Some(FaultAction::Replace(r)) => (r, Delivery::Normal, false),
        Some(FaultAction::Transform(t)) => {
            let (r, d) = t.apply(reply);
            (r, d, true)
        }
    };
    let reply = if styled {
        standard_headers(reply, ctx.in_flight, latency)
    } else {
        reply
    };
    Script {
        reply,
        delivery,
        latency,
    }
}

fn standard_headers(mut reply: Reply, in_flight: u32, latency: Duration) -> Reply {
    let duration = latency.as_secs_f64() + 0.001 + f64::from(fastrand::u8(..30)) / 1000.0;
    reply.headers.extend([
        ("twilio-request-id", random_hex_id("RQ")),
        ("twilio-concurrent-requests", in_flight.to_string()),
        ("twilio-request-duration", format!("{duration:.3}")),
        ("x-home-region", "us1".to_owned()),
        ("x-api-domain", "api.twilio.com".to_owned()),
        ("x-powered-by", "AT-5000".to_owned()),
        ("x-shenanigans", "none".to_owned()),
        ("access-control-allow-origin", "*".to_owned()),
        ("strict-transport-security", "max-age=31536000".to_owned()),
    ]);
    reply
}

/// Countries the Voice API's dialing permissions know (with their names),
/// besides those an account sets; any other code is 404 20404.
const COUNTRIES: &[(&str, &str, &str)] = &[
    ("US", "United States/Canada", "+1"),
    ("GB", "United Kingdom", "+44"),
    ("DE", "Germany", "+49"),
    ("FR", "France", "+33"),
    ("ES", "Spain", "+34"),
    ("IN", "India", "+91"),
    ("AU", "Australia", "+61"),
    ("BR", "Brazil", "+55"),
    ("MX", "Mexico", "+52"),
];

/// `GET https://voice.twilio.com/v1/DialingPermissions/Countries/{IsoCode}`
/// (`twilio_voice_v1_dialing_permissions.json`): the account of the
/// credentials, HTTP Basic as for api.twilio.com.
fn dialing_permission(state: &IndexedWorld, ctx: &RequestCtx<'_>, iso: &str) -> Reply {
    let world = &state.world.twilio;
    let account = match authenticate(state, ctx) {
        Ok(Principal::Token(a) | Principal::Key(a, _)) => a,
        Ok(Principal::Test) => {
            return error(
                403,
                20008,
                "Cannot access this resource with Test Credentials",
                None,
            );
        }
        Err(reply) => return reply,
    };
    if account.status != AccountStatus::Active {
        return match account.inactive_answer {
            InactiveAnswer::Forbidden20403 => forbidden_account(),
            InactiveAnswer::Authenticate20003 => authenticate_error(world),
            InactiveAnswer::NotActive20005 { http_status } => not_active(http_status),
        };
    }
    let Some((_, name, prefix)) = COUNTRIES.iter().find(|(c, _, _)| *c == iso) else {
        return not_found(ctx.path);
    };
    let enabled = account.geo_permissions.get(iso).copied().unwrap_or(false);
    Reply::json_of(
        200,
        &json!({
            "iso_code": iso,
            "name": name,
            "country_codes": [prefix],
            "continent": "NORTH_AMERICA",
            "low_risk_numbers_enabled": enabled,
            "high_risk_special_numbers_enabled": false,
            "high_risk_tollfraud_numbers_enabled": false,
            "url": format!("https://voice.twilio.com/v1/DialingPermissions/Countries/{iso}"),
            "links": {
                "highrisk_special_prefixes": format!("https://voice.twilio.com/v1/DialingPermissions/Countries/{iso}/HighRiskSpecialPrefixes")
            }
        }),
    )
}

fn respond(state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Reply {
    let world = &state.world.twilio;
    if let Some(iso) = ctx.path.strip_prefix("/v1/DialingPermissions/Countries/") {
        if *ctx.method != Method::GET {
            return method_not_allowed();
        }
        return dialing_permission(state, ctx, iso);
    }
    let Some(route) = route(ctx.path) else {
        return not_found(ctx.path);
    };
    let principal = match authenticate(state, ctx) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let account = match principal {
        Principal::Test => {
            return recorded("tw-403-20008-test-credentials", || {
                error(
                    403,
                    20008,
                    "Cannot access this resource with Test Credentials",
                    None,
                )
            });
        }
        Principal::Token(a) | Principal::Key(a, _) => a,
    };

    let sid = match route {
        Route::AccountsList => return accounts_list(state, ctx, principal, account),
        Route::Account(sid) | Route::Resource(sid, _) => sid,
    };
    if is_sid(sid, "SK") {
        return match world.sk_in_path {
            SkInPathError::InvalidAccountSid21470 => {
                recorded("tw-400-21470-invalid-account-sid", || {
                    error(400, 21470, "Invalid AccountSid", None)
                })
            }
            SkInPathError::Code90002 => match corpus::entry("tw-400-90002-account-sid-invalid") {
                Some(entry) => entry.reply_replacing(RECORDED_90002_SID, sid),
                None => error(400, 90002, &format!("AccountSid {sid} is invalid"), None),
            },
        };
    }
    let Some(target) = world.accounts.get(sid) else {
        return not_found(ctx.path);
    };
    if !can_access(principal, account, target) {
        // Credentials of a subaccount on its parent, or keys on a
        // subaccount: refused. Unrelated accounts look like unknown ones.
        let related = target.parent_sid.as_deref() == Some(account.sid.as_str())
            || account.parent_sid.as_deref() == Some(target.sid.as_str());
        return if related {
            authenticate_error(world)
        } else {
            not_found(ctx.path)
        };
    }

    let key_kind = match principal {
        Principal::Key(_, key) => Some(key.kind),
        _ => None,
    };
    let main_only = |kind: Option<KeyKind>| {
        matches!(kind, Some(KeyKind::Standard | KeyKind::Restricted { .. }))
    };
    let restricted_denied = |allowed: fn(bool, bool) -> bool| match key_kind {
        Some(KeyKind::Restricted {
            can_read_numbers,
            can_read_balance,
        }) => !allowed(can_read_numbers, can_read_balance),
        _ => false,
    };
    let inactive = target.status != AccountStatus::Active;
    if inactive {
        match target.inactive_answer {
            InactiveAnswer::Forbidden20403 => {}
            InactiveAnswer::Authenticate20003 => return authenticate_error(world),
            InactiveAnswer::NotActive20005 { http_status } => return not_active(http_status),
        }
    }
    let is_get = *ctx.method == Method::GET;

    match route {
        Route::Account(_) => {
            if !ctx.path.ends_with(".json") {
                return not_found(ctx.path);
            }
            if main_only(key_kind) {
                return authenticate_error(world);
            }
            if is_get || *ctx.method == Method::POST {
                // A POST would update the account; the model changes nothing.
                Reply::json_of(200, &target.to_json())
            } else {
                method_not_allowed()
            }
        }
        Route::Resource(_, Resource::Keys) => {
            if main_only(key_kind) {
                return authenticate_error(world);
            }
            if inactive {
                return forbidden_account();
            }
            if is_get {
                let items: Vec<&ApiKey> = target.api_keys.iter().collect();
                let positions = positions_of(&items, |k| &k.sid);
                page_with(
                    ctx,
                    target,
                    "Keys",
                    "keys",
                    &items,
                    positions,
                    |k| json!({"sid": k.sid, "friendly_name": k.friendly_name, "date_created": DEFAULT_DATE, "date_updated": DEFAULT_DATE}),
                    |k| &k.sid,
                )
            } else if *ctx.method == Method::POST {
                // "Creates" a key that is never stored.
                Reply::json_of(
                    201,
                    &json!({
                        "sid": random_hex_id("SK"),
                        "friendly_name": null,
                        "date_created": DEFAULT_DATE,
                        "date_updated": DEFAULT_DATE,
                        "secret": super::http::random_alnum(32)
                    }),
                )
            } else {
                method_not_allowed()
            }
        }
        Route::Resource(_, Resource::IncomingPhoneNumbers | Resource::OutgoingCallerIds) => {
            if restricted_denied(|numbers, _| numbers) {
                return restricted_denied_error();
            }
            if inactive {
                return forbidden_account();
            }
            if *ctx.method == Method::POST {
                return error(
                    400,
                    21452,
                    "Missing required parameter PhoneNumber in the post body",
                    None,
                );
            }
            if !is_get {
                return method_not_allowed();
            }
            if matches!(route, Route::Resource(_, Resource::IncomingPhoneNumbers)) {
                incoming_numbers(state, ctx, target)
            } else {
                caller_ids(state, ctx, target)
            }
        }
        Route::Resource(_, Resource::Balance) => {
            if restricted_denied(|_, balance| balance) {
                return restricted_denied_error();
            }
            if !is_get {
                return method_not_allowed();
            }
            if target.parent_sid.is_some() {
                return not_found(ctx.path);
            }
            if inactive {
                return forbidden_account();
            }
            #[derive(Serialize)]
            struct Balance<'a> {
                account_sid: &'a str,
                balance: Option<&'a str>,
                currency: Option<&'a str>,
            }
            Reply::json_of(
                200,
                &Balance {
                    account_sid: &target.sid,
                    balance: target.balance.as_deref(),
                    currency: target.currency.as_deref(),
                },
            )
        }
        Route::Resource(_, Resource::Other) | Route::AccountsList => not_found(ctx.path),
    }
}

fn method_not_allowed() -> Reply {
    error(405, 20004, "Method not allowed", None)
}

fn can_access(principal: Principal<'_>, account: &TwilioAccount, target: &TwilioAccount) -> bool {
    if account.sid == target.sid {
        return true;
    }
    // Only the parent's own AC SID + token reaches a subaccount.
    matches!(principal, Principal::Token(_)) && target.parent_sid.as_deref() == Some(&account.sid)
}

/// Basic auth: `AC…:token` or `SK…:secret` (twilio-api.md §1, §2.2).
fn authenticate<'w>(state: &'w IndexedWorld, ctx: &RequestCtx<'_>) -> Result<Principal<'w>, Reply> {
    let world = &state.world.twilio;
    let Some(header) = ctx.headers.get(hyper::header::AUTHORIZATION) else {
        return Err(auth_error(world, MSG_NO_CREDENTIALS));
    };
    let header = header.to_str().map_err(|_| authenticate_error(world))?;
    let encoded = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
        _ => return Err(authenticate_error(world)),
    };
    let decoded = base64_decode(encoded)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| authenticate_error(world))?;
    let (username, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    if is_sid(username, "AC") {
        let account = world
            .accounts
            .get(username)
            .ok_or_else(|| authenticate_error(world))?;
        if password == account.auth_token {
            Ok(Principal::Token(account))
        } else if account.test_auth_token.as_deref() == Some(password) {
            Ok(Principal::Test)
        } else {
            Err(authenticate_error(world))
        }
    } else if is_sid(username, "SK") {
        let (account_sid, i) = state
            .tw_index
            .keys
            .get(username)
            .ok_or_else(|| authenticate_error(world))?;
        let account = world
            .accounts
            .get(account_sid)
            .ok_or_else(|| authenticate_error(world))?;
        match account.api_keys.get(*i) {
            Some(key) if key.secret == password => Ok(Principal::Key(account, key)),
            _ => Err(authenticate_error(world)),
        }
    } else {
        Err(auth_error(world, "Authentication Error - invalid username"))
    }
}

/// `GET /2010-04-01/Accounts.json`: forbidden for credwatch (it would list
/// every subaccount's token), answered realistically all the same.
fn accounts_list(
    state: &IndexedWorld,
    ctx: &RequestCtx<'_>,
    principal: Principal<'_>,
    account: &TwilioAccount,
) -> Reply {
    let world = &state.world.twilio;
    if matches!(principal, Principal::Key(_, key) if key.kind != KeyKind::Main) {
        return authenticate_error(world);
    }
    if *ctx.method == Method::POST {
        let sid = random_hex_id("AC");
        let mut sub = TwilioAccount::new(sid, random_hex_id("")).with_parent(account.sid.clone());
        sub.friendly_name = "SubAccount Created at (simulated)".to_owned();
        return Reply::json_of(201, &sub.to_json());
    }
    if *ctx.method != Method::GET {
        return method_not_allowed();
    }
    let mut accounts: Vec<&TwilioAccount> = vec![account];
    if matches!(principal, Principal::Token(_)) {
        let mut subs: Vec<&TwilioAccount> = world
            .accounts
            .values()
            .filter(|a| a.parent_sid.as_deref() == Some(account.sid.as_str()))
            .collect();
        subs.sort_by(|a, b| a.sid.cmp(&b.sid));
        accounts.extend(subs);
    }
    let items: Vec<Value> = accounts.iter().map(|a| a.to_json()).collect();
    let uri = "/2010-04-01/Accounts.json?PageSize=50&Page=0";
    Reply::json_of(
        200,
        &json!({
            "accounts": items,
            "end": items.len().saturating_sub(1),
            "first_page_uri": uri,
            "next_page_uri": null,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": null,
            "start": 0,
            "uri": uri
        }),
    )
}

fn incoming_numbers(state: &IndexedWorld, ctx: &RequestCtx<'_>, account: &TwilioAccount) -> Reply {
    let phone = query_param(ctx.query, "PhoneNumber");
    let friendly = query_param(ctx.query, "FriendlyName");
    let filtered = phone.is_some() || friendly.is_some();
    let items: Vec<&IncomingNumber> = account
        .incoming_numbers
        .iter()
        .filter(|n| {
            phone.as_deref().is_none_or(|p| {
                let p = p.trim_matches('*');
                n.phone_number.contains(p)
            }) && friendly.as_deref().is_none_or(|f| n.friendly_name == f)
        })
        .collect();
    let positions = if filtered {
        positions_of(&items, |n| &n.sid)
    } else {
        Positions::Index(&state.tw_index.incoming)
    };
    page_with(
        ctx,
        account,
        "IncomingPhoneNumbers",
        "incoming_phone_numbers",
        &items,
        positions,
        |n| n.to_json(&account.sid),
        |n| &n.sid,
    )
}

fn caller_ids(state: &IndexedWorld, ctx: &RequestCtx<'_>, account: &TwilioAccount) -> Reply {
    let phone = query_param(ctx.query, "PhoneNumber");
    let items: Vec<&CallerId> = account
        .caller_ids
        .iter()
        .filter(|c| phone.as_deref().is_none_or(|p| c.phone_number == p))
        .collect();
    let positions = if phone.is_some() {
        positions_of(&items, |c| &c.sid)
    } else {
        Positions::Index(&state.tw_index.caller_ids)
    };
    page_with(
        ctx,
        account,
        "OutgoingCallerIds",
        "outgoing_caller_ids",
        &items,
        positions,
        |c| c.to_json(&account.sid),
        |c| &c.sid,
    )
}

/// Where an item with a given SID sits in the (possibly filtered) list.
enum Positions<'a> {
    Index(&'a HashMap<String, usize>),
    Owned(HashMap<String, usize>),
}

impl Positions<'_> {
    fn get(&self, sid: &str) -> Option<usize> {
        match self {
            Positions::Index(map) => map.get(sid).copied(),
            Positions::Owned(map) => map.get(sid).copied(),
        }
    }
}

fn positions_of<T>(items: &[&T], sid_of: impl Fn(&T) -> &String) -> Positions<'static> {
    Positions::Owned(
        items
            .iter()
            .enumerate()
            .map(|(i, item)| (sid_of(item).clone(), i))
            .collect(),
    )
}

/// Twilio list paging: `PageSize` (1..=1000, default 50), `Page` (client
/// state), `PageToken` (`PA<last sid>` forward, `PB<first sid>` back).
/// `next_page_uri` is relative and `null` on the last page; no `total`.
#[allow(clippy::too_many_arguments)]
fn page_with<T>(
    ctx: &RequestCtx<'_>,
    account: &TwilioAccount,
    resource: &str,
    key: &str,
    items: &[&T],
    positions: Positions<'_>,
    to_json: impl Fn(&T) -> Value,
    sid_of: impl Fn(&T) -> &str,
) -> Reply {
    // Out-of-range sizes are clamped; a non-number falls back to the default.
    let page_size = query_param(ctx.query, "PageSize")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map_or(50, |n| n.clamp(1, 1000) as usize);
    let page_no = query_param(ctx.query, "Page")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let token = query_param(ctx.query, "PageToken");
    let start = match token.as_deref() {
        None if page_no > 0 => {
            return error(400, 70002, "Paged requests must include a PageToken", None);
        }
        None => 0,
        Some(t) => {
            let (dir, sid) = (t.get(..2), t.get(2..));
            match (dir, sid.and_then(|s| positions.get(s))) {
                (Some("PA"), Some(pos)) => pos + 1,
                (Some("PB"), Some(pos)) => pos.saturating_sub(page_size),
                _ => return error(400, 21481, "Invalid PageToken", None),
            }
        }
    };
    let start = start.min(items.len());
    let end = start.saturating_add(page_size).min(items.len());
    let slice = &items[start..end];

    let mut filters = String::new();
    for name in ["FriendlyName", "PhoneNumber"] {
        if let Some(v) = query_param(ctx.query, name) {
            filters.push_str(&format!("{name}={}&", query_value(&v)));
        }
    }
    let base = format!("/2010-04-01/Accounts/{}/{resource}.json", account.sid);
    let link = |page: usize, token: Option<String>| {
        let mut uri = format!("{base}?{filters}PageSize={page_size}&Page={page}");
        if let Some(t) = token {
            uri.push_str("&PageToken=");
            uri.push_str(&t);
        }
        uri
    };
    let next = match slice.last() {
        Some(last) if end < items.len() => {
            Some(link(page_no + 1, Some(format!("PA{}", sid_of(last)))))
        }
        _ => None,
    };
    let previous = match slice.first() {
        Some(first) if start > 0 => Some(link(
            page_no.saturating_sub(1),
            Some(format!("PB{}", sid_of(first))),
        )),
        _ => None,
    };
    let first_start = page_no.saturating_mul(page_size);
    let values: Vec<Value> = slice.iter().map(|item| to_json(item)).collect();
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), Value::Array(values));
    body.insert(
        "end".into(),
        Value::from(first_start + slice.len().saturating_sub(1)),
    );
    body.insert("first_page_uri".into(), Value::from(link(0, None)));
    let next = account.hostile_next_page_uri.clone().or(next);
    body.insert("next_page_uri".into(), Value::from(next));
    body.insert("page".into(), Value::from(page_no));
    body.insert("page_size".into(), Value::from(page_size));
    body.insert("previous_page_uri".into(), Value::from(previous));
    body.insert("start".into(), Value::from(first_start));
    body.insert(
        "uri".into(),
        Value::from(link(page_no, token.map(|t| query_value(&t)))),
    );
    Reply::json_of(200, &Value::Object(body))
}

/// Whether Twilio credentials stored with an ElevenLabs number would let
/// ElevenLabs place a call from `from` (the outbound-call model). The error
/// text is what ElevenLabs relays (elevenlabs-api.md §5.9).
pub(crate) fn stored_credentials_status(
    state: &IndexedWorld,
    creds: &StoredTwilioCredentials,
    from: &str,
) -> Result<(), String> {
    let world = &state.world.twilio;
    let account = if is_sid(&creds.account_sid, "SK") {
        state
            .tw_index
            .keys
            .get(&creds.account_sid)
            .and_then(|(sid, i)| {
                let account = world.accounts.get(sid)?;
                let key = account.api_keys.get(*i)?;
                (key.secret == creds.auth_token).then_some(account)
            })
    } else {
        world
            .accounts
            .get(&creds.account_sid)
            .filter(|a| a.auth_token == creds.auth_token)
    };
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active) else {
        return Err("HTTP 401 error: Unable to create record: Authenticate".to_owned());
    };
    if !state
        .tw_index
        .owned_numbers
        .contains(&format!("{}{from}", account.sid))
    {
        return Err(format!(
            "HTTP 400 error: Unable to create record: The source phone number provided, {from}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio."
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The fake, as the simulator serves it
// ---------------------------------------------------------------------------

/// The fake Twilio API (REST 2010 and the Voice API's dialing permissions)
/// in [`super::FAKES`].
pub struct TwilioFake;

impl super::Fake for TwilioFake {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn handle(&self, state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Script {
        handle(state, ctx)
    }

    fn forbidden_reason(
        &self,
        _state: &IndexedWorld,
        ctx: &RequestCtx<'_>,
    ) -> Option<&'static str> {
        forbidden_reason(ctx)
    }

    /// A healthy account, a rotated token, a Standard key, a trial with a
    /// low balance and a suspended account.
    fn demo_section(&self, base_url: &str) -> String {
        use super::demo as d;
        let tw = |name: &str, sid: &str, auth: &str| {
            // The simulator serves the Voice API (dialing permissions) too.
            format!(
                "  - name: {name}\n    account_sid: {sid}\n{auth}    base_url: {base_url}\n    voice_base_url: {base_url}\n"
            )
        };
        let token = |t: &str| format!("    auth_token: {t}\n");
        let mut y = String::from("twilio:\n");
        y += &tw(
            "twilio-prod",
            d::TWILIO_PROD_SID,
            &token(d::TWILIO_PROD_TOKEN),
        );
        y += &tw(
            "twilio-rotated-token",
            d::TWILIO_ROTATED_SID,
            &token(d::TWILIO_ROTATED_TOKEN),
        );
        y += &tw(
            "twilio-standard-key",
            d::TWILIO_STANDARD_ACCOUNT_SID,
            &format!(
                "    api_key_sid: {}\n    api_key_secret: {}\n",
                d::TWILIO_STANDARD_KEY_SID,
                d::TWILIO_STANDARD_KEY_SECRET
            ),
        );
        y += &tw(
            "twilio-trial-low-balance",
            d::TWILIO_TRIAL_SID,
            &token(d::TWILIO_TRIAL_TOKEN),
        );
        y += &tw(
            "twilio-suspended",
            d::TWILIO_SUSPENDED_SID,
            &token(d::TWILIO_SUSPENDED_TOKEN),
        );
        y
    }

    fn read_only_check(&self, r: &super::RecordedRequest) -> Result<(), String> {
        read_only_check(r)
    }

    fn auth_check(&self, r: &super::RecordedRequest) -> Result<(), String> {
        match r.header("authorization") {
            Some(a) if a.starts_with("Basic ") => Ok(()),
            _ => Err("Twilio auth must be Basic".into()),
        }
    }

    fn corpus(&self) -> &'static str {
        include_str!("../../../tests/fixtures/upstream/twilio.json")
    }

    fn demo_world(&self, world: &mut super::World) {
        world.twilio = demo_world();
    }

    fn demo_cast(&self) -> &'static [super::demo::CastMember] {
        use super::demo::{CastAlert as A, CastMember as C, TWILIO_TRIAL_SID};
        // Every demo credential is critical: `critical` for what is broken,
        // `warning` for early warnings.
        const CAST: &[C] = &[
            C::healthy("twilio-prod"),
            C::unhealthy("twilio-rotated-token", "invalid_credentials")
                .firing(&[A::new("CredwatchCredentialInvalid", "critical")]),
            C::healthy("twilio-standard-key"),
            // Per account: the Account SID, not the credential's name.
            C::healthy("twilio-trial-low-balance").firing(&[A::new(
                "CredwatchTwilioBalanceLow",
                "warning",
            )
            .on(TWILIO_TRIAL_SID)]),
            C::unhealthy("twilio-suspended", "account_blocked")
                .firing(&[A::new("CredwatchAccountBlocked", "critical")]),
        ];
        CAST
    }
}

/// Its part of the demo world: the accounts of its demo cast.
fn demo_world() -> TwilioWorld {
    use super::demo::*;

    let mut world = TwilioWorld::default();
    world.add_account(
        TwilioAccount::new(TWILIO_PROD_SID, TWILIO_PROD_TOKEN)
            .with_balance(Some("42.17"), "USD")
            .with_numbers(&[
                EL_PHONE_SUPPORT_NUMBER,
                EL_PHONE_SPARE_NUMBER,
                TWILIO_PROD_EXTRA_NUMBER,
            ])
            .with_caller_id(TWILIO_PROD_CALLER_ID)
            .with_number_capabilities(
                EL_PHONE_SPARE_NUMBER,
                Capabilities {
                    voice: false,
                    ..Capabilities::default()
                },
            )
            // Geo permissions: US/Canada allowed (the default), UK blocked.
            .with_geo_permission("GB", false),
    );
    world.add_account(
        TwilioAccount::new(TWILIO_ROTATED_SID, TWILIO_ROTATED_CURRENT_TOKEN)
            .with_balance(Some("12.50"), "USD")
            .with_numbers(&["+13105550110"]),
    );
    world.add_account(
        TwilioAccount::new(TWILIO_STANDARD_ACCOUNT_SID, TWILIO_STANDARD_ACCOUNT_TOKEN)
            .with_balance(Some("18.03"), "USD")
            .with_numbers(&["+12025550111", "+12025550112"])
            .with_key(ApiKey::new(
                TWILIO_STANDARD_KEY_SID,
                TWILIO_STANDARD_KEY_SECRET,
                KeyKind::Standard,
            )),
    );
    world.add_account(
        TwilioAccount::new(TWILIO_TRIAL_SID, TWILIO_TRIAL_TOKEN)
            .with_type(AccountType::Trial)
            .with_balance(Some("0.85"), "USD")
            .with_numbers(&["+13125550120"]),
    );
    world.add_account(
        TwilioAccount::new(TWILIO_SUSPENDED_SID, TWILIO_SUSPENDED_TOKEN)
            .with_status(AccountStatus::Suspended)
            .with_balance(Some("-3.20"), "USD")
            .with_numbers(&["+16175550130"]),
    );
    world
}

/// The calls a read-only prober may make, by hand from the reference
/// (twilio-api.md §3 and §6), see [`super::Fake::read_only_check`].
fn read_only_check(r: &super::RecordedRequest) -> Result<(), String> {
    if r.method != "GET" {
        return Err("not a GET".into());
    }
    let query = r.query_pairs();
    let no_query = || {
        if query.is_empty() {
            Ok(())
        } else {
            Err("no query is ever sent here".to_string())
        }
    };
    let id = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let account_sid = |s: &str| {
        s.len() == 34 && s.starts_with("AC") && s[2..].chars().all(|c| c.is_ascii_hexdigit())
    };
    let segments: Vec<&str> = r.path.split('/').collect();
    let resource = match segments.as_slice() {
        ["", "2010-04-01", "Accounts", account] => {
            return match account.strip_suffix(".json") {
                Some(sid) if account_sid(sid) => no_query(),
                _ => Err("not an account resource".into()),
            };
        }
        ["", "2010-04-01", "Accounts", sid, resource] if account_sid(sid) => *resource,
        // The Voice API (voice_base_url): one country's dialing
        // permissions, for a call path's destinations.
        ["", "v1", "DialingPermissions", "Countries", iso]
            if iso.len() == 2 && iso.chars().all(|c| c.is_ascii_uppercase()) =>
        {
            return no_query();
        }
        _ => return Err("not a Twilio path credwatch may call".into()),
    };
    // Paging (`PageSize`, then the `Page` and `PageToken` of
    // `next_page_uri`) and the exact-number filter `PhoneNumber`.
    let mut keys: Vec<&str> = query.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err("a query parameter is repeated".into());
    }
    for (k, v) in &query {
        let ok = match *k {
            "PageSize" => v.parse::<u16>().is_ok_and(|n| (1..=1000).contains(&n)),
            "Page" => v.parse::<u32>().is_ok(),
            "PageToken" => (v.starts_with("PA") || v.starts_with("PB")) && id(v),
            "PhoneNumber" => v
                .strip_prefix("%2B")
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "query parameter `{k}={v}` is not one credwatch sends"
            ));
        }
    }
    let has = |k: &str| keys.contains(&k);
    match resource {
        "IncomingPhoneNumbers.json" if has("PageSize") || has("PhoneNumber") => Ok(()),
        "OutgoingCallerIds.json" if has("PhoneNumber") => Ok(()),
        "Balance.json" => no_query(),
        _ => Err("not a Twilio resource credwatch may call this way".into()),
    }
}
