//! What each finding means for the person reading `credwatch check`, and how
//! to fix it, in the user's terms. Facts only; the evidence travels beside.

use crate::config::{Credential, SecretSource};
use crate::outcome::{PhoneProblem, Problem, Reason};

/// Where the operator has to put the new secret.
fn source(cred: &Credential) -> String {
    match &cred.secret().source {
        SecretSource::Literal => "the config file".into(),
        SecretSource::Env(v) => {
            format!("the environment variable `{v}` (restart credwatch after changing it)")
        }
        SecretSource::File(p) => format!(
            "the file `{}` (credwatch re-reads it on change)",
            p.display()
        ),
    }
}

fn date(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How ElevenLabs' key settings name a permission.
fn ui_name(permission: &str) -> String {
    match permission {
        "convai_write" => "Conversational AI → Write (\"ElevenLabs Agents: Write\")".into(),
        "convai_read" => "Conversational AI → Read".into(),
        "user_read" => "User → Read".into(),
        "models_read" => "Models → Read".into(),
        other => format!("the `{other}` permission"),
    }
}

/// Where `docs/upstream-evidence.md` records the evidence for a stated cause.
fn cite(anchor: &str) -> String {
    format!(" (evidence: docs/upstream-evidence.md#{anchor})")
}

/// (summary, fix) for a definitive problem.
pub fn problem(p: &Problem, cred: &Credential) -> (String, String) {
    let src = source(cred);
    match p {
        Problem::InvalidApiKey => (
            "ElevenLabs does not accept this API key (401 invalid_api_key).".into(),
            format!(
                "The key was deleted, regenerated or mistyped. Create a key in ElevenLabs → Settings → API Keys \
                 (enable Conversational AI write access if it places calls) and put it in {src}. Applications must \
                 send it in the `xi-api-key` header — `Authorization: Bearer` with an API key gets 401 too.{}",
                cite("elevenlabs-invalid-api-key")
            ),
        ),
        Problem::KeyIdUsedAsKey => (
            "This is an API key ID, not the key (400 api_key_id_used_as_api_key).".into(),
            format!(
                "The ID shown next to a key in the dashboard cannot authenticate. Use the secret value shown once when \
                 the key was created (it starts with `sk_`); if it is lost, create a new key in ElevenLabs → Settings → \
                 API Keys. Put it in {src}.{}",
                cite("elevenlabs-key-id-used-as-key")
            ),
        ),
        Problem::PermissionMissing { permission } => (
            format!("This key lacks `{permission}`."),
            format!(
                "Create a key with {} in ElevenLabs → Settings → API Keys, or edit this key's permissions there, then \
                 put it in {src}.{}",
                ui_name(permission),
                if permission == "convai_write" {
                    format!(
                        " Without it, outbound calls fail with 401 and signed URLs cannot be issued.{}",
                        cite("elevenlabs-missing-permissions")
                    )
                } else {
                    cite("elevenlabs-missing-permissions")
                }
            ),
        ),
        Problem::QuotaExhausted { reset_at } => (
            "The account's character/credit quota is used up.".into(),
            format!(
                "Requests that spend credits (calls, speech) fail until {}. Upgrade the plan or enable usage-based \
                 billing in ElevenLabs → Subscription, or wait for the reset. The counters cover the whole workspace; a \
                 key can also hit a credit limit of its own, which credwatch cannot see (only a workspace admin's key can \
                 list keys' limits).{}",
                reset_at
                    .map(date)
                    .unwrap_or_else(|| "the next reset".into()),
                cite("elevenlabs-quota")
            ),
        ),
        Problem::UnusualActivity => (
            "ElevenLabs disabled this account's free tier (detected_unusual_activity).".into(),
            format!(
                "ElevenLabs' own message says free-tier use was disabled by its abuse detection, that proxies or VPNs may \
                 trigger it, and that a paid subscription lifts it. Subscribe to a paid plan, or contact ElevenLabs support.{}",
                cite("elevenlabs-detected-unusual-activity")
            ),
        ),
        Problem::PaymentIssue => (
            "The subscription has a failed or incomplete payment (payment_issue).".into(),
            format!(
                "Update the payment method or pay the open invoice in ElevenLabs → Subscription → Billing.{}",
                cite("elevenlabs-payment-issue")
            ),
        ),
        Problem::SubscriptionDisabled { status } => (
            format!("The subscription is `{status}`: the account cannot use the API."),
            format!(
                "Reactivate or upgrade the subscription in ElevenLabs → Subscription.{}",
                cite("elevenlabs-subscription-status")
            ),
        ),
        Problem::TwilioAuthenticate => {
            let (sid, what) = (cred.account().unwrap_or(""), cred.secret_name());
            (
                "Twilio rejected the credentials (401, code 20003 Authenticate): rotated, deleted, or the account was \
                 suspended or closed."
                    .into(),
                format!(
                    "Twilio's 20003 page lists both kinds of cause. The credential: the {what} was rotated or deleted \
                     (Console → Account → API keys & tokens; a promoted secondary token invalidates the old primary); the \
                     SID and the {what} belong to different accounts (live vs test, parent vs subaccount {sid}: a \
                     subaccount needs its own token or the parent's Auth Token — parent API keys cannot reach subaccounts); \
                     an API key from another region. The account: suspended or closed (check Console → Billing, or log in to \
                     the Console). Compare fingerprint {fp} with `printf %s \"$TOKEN\" | sha256sum | cut -c1-12` of the value \
                     in the Console, then put the current value in {src}. If ElevenLabs holds the same Auth Token for \
                     imported numbers, re-import them too.{cite}",
                    fp = cred.fingerprint(),
                    cite = cite("twilio-20003")
                ),
            )
        }
        Problem::TestCredentials => (
            "These are Twilio test credentials (403, code 20008).".into(),
            format!(
                "Test credentials can only simulate buying numbers, messages and calls; they read nothing. Use the live \
                 Account SID and Auth Token (Console → Account → API keys & tokens, \"Live credentials\") in {src}.{}",
                cite("twilio-20008")
            ),
        ),
        Problem::AccountNotFound => (
            "No such Twilio account for these credentials (404, code 20404).".into(),
            format!(
                "The Account SID is mistyped, the account was closed, or the secret belongs to a different account. Copy \
                 the Account SID from Console → Account info.{}",
                cite("twilio-20404")
            ),
        ),
        Problem::AccountSuspended { status } => (
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
        Problem::AccountNotActive => (
            "The Twilio account is not active (code 20005).".into(),
            format!(
                "Twilio answers 20005 \"Account not active\" for suspended or closed accounts. Check the account's status \
                 in the Console and contact Twilio support; calls through this account fail until it is active.{}",
                cite("twilio-20005")
            ),
        ),
        Problem::RestrictedKey => (
            "This restricted API key may not list phone numbers (403, code 70051).".into(),
            format!(
                "Add read access to Phone Numbers to the key in Console → Account → API keys, or use a Standard or Main key.{}",
                cite("twilio-70051")
            ),
        ),
        Problem::KeySidInPath => (
            "An API key SID (SK…) was used where the Account SID (AC…) belongs.".into(),
            format!(
                "Put the Account SID (Console → Account info) in `account_sid` and the SK… in `api_key_sid`.{}",
                cite("twilio-21470")
            ),
        ),
    }
}

/// (summary, fix) for a subscription whose billing is at risk (`past_due`,
/// `incomplete`, open invoices): calls still work, so it is no verdict.
pub fn billing_at_risk(q: &crate::outcome::Quota) -> (String, String) {
    (
        format!(
            "The ElevenLabs subscription is `{}`{}: billing is at risk, calls still work for now.",
            q.status,
            if q.open_invoices == Some(true) {
                " with open invoices"
            } else {
                ""
            }
        ),
        format!(
            "Pay the open invoice or update the payment method in ElevenLabs → Subscription → Billing. What ElevenLabs \
             does when a subscription stays unpaid is not documented; credwatch reports a blocked account only when \
             ElevenLabs says so (`free_disabled`, `payment_issue`).{}",
            cite("elevenlabs-subscription-status")
        ),
    )
}

/// (summary, fix) for a check that got no definitive answer.
pub fn failure(reason: Reason, detail: &str) -> (String, String) {
    let fix = match reason {
        Reason::RateLimited => {
            "Upstream is rate-limiting (the limits are shared with production traffic). credwatch backs off; nothing to fix unless it persists."
        }
        Reason::UpstreamError => {
            "Upstream had a server error. Nothing to fix on your side; retry later or check the provider's status page."
        }
        Reason::Timeout => {
            "No answer within the timeout. Check egress from this host (firewall, proxy, DNS) or raise `timeout`."
        }
        Reason::Network => {
            "credwatch could not connect. Check DNS, egress firewall rules and proxies (HTTPS_PROXY) from this host, and `base_url`."
        }
        Reason::UnexpectedResponse if detail.contains("HTML") || detail.contains("non-JSON") => {
            "A CDN or firewall in front of the API answered instead of the API (e.g. a Cloudflare challenge for hosting or VPN \
             IPs, or a corporate proxy): this is not a credential problem. Run from another network, or ask the provider to \
             allow this IP."
        }
        Reason::UnexpectedResponse if detail.contains("needs_authorization") => {
            "ElevenLabs received no key header at all: something between credwatch and ElevenLabs (a proxy or gateway that \
             `base_url` or HTTPS_PROXY points at) drops `xi-api-key`. This says nothing about the key itself."
        }
        Reason::UnexpectedResponse if detail.contains("payment_required") => {
            "ElevenLabs refused one feature for this plan (its only recorded `payment_required` says \"Free users cannot use \
             library voices via the API\"). This is not a verdict on the key or the account."
        }
        Reason::UnexpectedResponse if detail.contains("calibrate") => {
            "The permission probe got an answer it cannot read, so the permission is unknown (neither granted nor missing): \
             the probe itself needs attention. Prove what the probe tells apart on your account with two keys, one with \
             the permission and one without: `credwatch calibrate --config FILE --permission NAME --with-key-env A \
             --without-key-env B` (see README, \"Calibrating a permission probe\")."
        }
        Reason::UnexpectedResponse if detail.contains("ip_not_allowed") => {
            "The key has an IP allowlist: add this host's egress IP to the key's allowed IPs in ElevenLabs → Settings → API Keys."
        }
        Reason::UnexpectedResponse => {
            "An answer credwatch cannot classify. If it persists, run `credwatch check --output json` and report the evidence \
             (status, code, request id)."
        }
        _ => "See the evidence.",
    };
    (format!("No verdict: {detail}."), fix.to_string())
}

/// (summary, fix) for a problem with an imported number.
pub fn phone(
    p: PhoneProblem,
    number: &str,
    twilio: Option<&str>,
    twilio_fingerprint: Option<&str>,
    changed_at: Option<&str>,
) -> (String, String) {
    let tw = twilio.unwrap_or("the linked Twilio credential");
    match p {
        PhoneProblem::NotOutboundCapable => (
            format!("{number} cannot place outbound calls (supports_outbound: false)."),
            "Import a number that supports outbound calling (a purchased Twilio number or a verified caller ID), or \
             re-import this one so ElevenLabs re-detects its capabilities."
                .into(),
        ),
        PhoneProblem::OutboundUnknown => (
            format!("ElevenLabs does not say whether {number} supports outbound calls."),
            "Check the number in ElevenLabs → Phone Numbers; re-importing it re-detects its capabilities.".into(),
        ),
        PhoneProblem::NoAgent => (
            format!("{number} has no agent assigned."),
            "Outbound calls name their agent and still work; inbound calls to this number need one. Assign an agent in \
             ElevenLabs → Phone Numbers if the number should answer."
                .into(),
        ),
        PhoneProblem::AgentMissing => (
            format!("The agent assigned to {number} does not exist (404 agent_not_found)."),
            "The agent was deleted or the ID is wrong: assign an existing agent in ElevenLabs → Phone Numbers, and check \
             the agent_id your application sends."
                .into(),
        ),
        PhoneProblem::AgentNotUlaw => (
            format!("The agent on {number} does not use μ-law 8000 Hz audio."),
            format!(
                "Advice: Twilio's media streams carry μ-law 8000 Hz audio, so with Twilio connected through your own server, \
                 set both the agent's TTS output and user input format to μ-law 8000 Hz (ulaw_8000) in the agent's voice \
                 settings. Whether the native integration needs it is not documented.{}",
                cite("phone-number-cross-check")
            ),
        ),
        PhoneProblem::NotOnTwilioAccount => (
            format!("{number} is not on the Twilio account of `{tw}` (neither its numbers nor its verified caller IDs)."),
            format!(
                "The number may have been released or moved to another Twilio account, ElevenLabs may hold credentials of an \
                 account that does not own it, or `twilio:` links the wrong credential. Check who owns the number in the \
                 Twilio Console; if ElevenLabs should use another account, re-import the number in ElevenLabs → Phone \
                 Numbers with that account's Account SID and Auth Token.{}",
                cite("phone-number-cross-check")
            ),
        ),
        PhoneProblem::ReimportNeeded => (
            format!(
                "The Twilio credential `{tw}` changed{}; ElevenLabs may still hold the old token for {number}.",
                changed_at.map(|t| format!(" at {t}")).unwrap_or_default()
            ),
            format!(
                "ElevenLabs stores the Account SID and Auth Token given at import and never shows them, so credwatch cannot \
                 see a re-import. If calls fail with \"Unable to create record: Authenticate\" (Twilio rejecting the stored \
                 credentials), re-import the number in ElevenLabs → Phone Numbers with the current Auth Token, then confirm \
                 it by setting {} on this credential.{}",
                match twilio_fingerprint {
                    Some(fp) => format!("`twilio_imported_fingerprint: {fp}` (the current fingerprint of `{tw}`)"),
                    None => format!(
                        "`twilio_imported_fingerprint` to the fingerprint of `{tw}` shown by `credwatch check`"
                    ),
                },
                cite("phone-number-reimport")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    /// Every cause `check` states cites an anchor that exists on the
    /// evidence page.
    #[test]
    fn every_citation_points_at_the_evidence_page() {
        let page = include_str!("../../docs/upstream-evidence.md");
        let source = include_str!("explain.rs");
        let mut cited = 0;
        for part in source.split("cite(\"").skip(1) {
            let Some(anchor) = part.split('"').next() else {
                continue;
            };
            if anchor.is_empty() || anchor.contains(' ') {
                continue;
            }
            cited += 1;
            assert!(
                page.contains(&format!("id=\"{anchor}\"")),
                "docs/upstream-evidence.md has no anchor `{anchor}`"
            );
        }
        assert!(cited >= 10, "only {cited} citations found");
    }
}
