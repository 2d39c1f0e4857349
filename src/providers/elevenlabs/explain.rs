//! What ElevenLabs' problems mean for the person reading `credwatch check`,
//! and how to fix them, in the user's terms; each stated cause cites its
//! evidence in `docs/upstream-evidence.md`.

use super::facts::{PhoneProblem, Problem as El, Quota};
use crate::providers::Credential;
use crate::providers::Problem;
use crate::providers::outcome::Reason;
use crate::providers::words::{cite, date, source};

/// (summary, fix) for a definitive problem this provider reports; `None`
/// for another provider's.
pub fn problem(p: &Problem, cred: &Credential) -> Option<(String, String)> {
    let src = source(cred);
    Some(match p {
        Problem::ElevenLabs(El::InvalidApiKey) => (
            "ElevenLabs does not accept this API key (401 invalid_api_key).".into(),
            format!(
                "The key was deleted, regenerated or mistyped. Create a key in ElevenLabs → Settings → API Keys \
                 (enable Conversational AI write access if it places calls) and put it in {src}. Applications must \
                 send it in the `xi-api-key` header — `Authorization: Bearer` with an API key gets 401 too.{}",
                cite("elevenlabs-invalid-api-key")
            ),
        ),
        Problem::ElevenLabs(El::KeyIdUsedAsKey) => (
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
        Problem::ElevenLabs(El::QuotaExhausted { reset_at }) => (
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
        Problem::ElevenLabs(El::UnusualActivity) => (
            "ElevenLabs disabled this account's free tier (detected_unusual_activity).".into(),
            format!(
                "ElevenLabs' own message says free-tier use was disabled by its abuse detection, that proxies or VPNs may \
                 trigger it, and that a paid subscription lifts it. Subscribe to a paid plan, or contact ElevenLabs support.{}",
                cite("elevenlabs-detected-unusual-activity")
            ),
        ),
        Problem::ElevenLabs(El::PaymentIssue) => (
            "The subscription has a failed or incomplete payment (payment_issue).".into(),
            format!(
                "Update the payment method or pay the open invoice in ElevenLabs → Subscription → Billing.{}",
                cite("elevenlabs-payment-issue")
            ),
        ),
        Problem::ElevenLabs(El::SubscriptionDisabled { status }) => (
            format!("The subscription is `{status}`: the account cannot use the API."),
            format!(
                "Reactivate or upgrade the subscription in ElevenLabs → Subscription.{}",
                cite("elevenlabs-subscription-status")
            ),
        ),
        _ => return None,
    })
}

/// (summary, fix) for a quota at or above the alert threshold
/// ([`super::facts::QUOTA_HIGH_SHARE`] of the ceiling), not yet used up.
pub fn quota_high(q: &Quota) -> (String, String) {
    let share = q
        .used_share()
        .map(crate::providers::words::percent)
        .unwrap_or(0);
    (
        format!(
            "{share}% of the quota is used ({} of {} characters; the alert threshold is {}%).",
            q.used,
            q.ceiling.unwrap_or(q.limit),
            crate::providers::words::percent(super::facts::QUOTA_HIGH_SHARE)
        ),
        format!(
            "Calls and speech fail once the quota is used up{}. Decide before then: upgrade the plan or enable \
             usage-based billing in ElevenLabs → Subscription, or move traffic to another workspace's key.{}",
            q.reset_at
                .map(|r| format!(" (it resets {})", date(r)))
                .unwrap_or_default(),
            cite("elevenlabs-quota")
        ),
    )
}

/// (summary, fix) for a subscription whose billing is at risk (`past_due`,
/// `incomplete`, open invoices): calls still work, so it is no verdict.
pub fn billing_at_risk(q: &Quota) -> (String, String) {
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
        PhoneProblem::AgentUnchecked => (
            format!("Nothing proves the agent assigned to {number} exists: its lookup got no answer this detail cycle."),
            "It is looked up again at the next detail cycle; the evidence says why there was no answer (a 429 from \
             ElevenLabs, no time left in the cross-check, an error)."
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
        PhoneProblem::TwilioCredentialUnhealthy => (
            format!("The Twilio credential `{tw}` of the account that owns {number} is rejected or blocked."),
            format!(
                "Calls from {number} fail while it is: fix `{tw}` first (see its own entry), then re-import the number in                  ElevenLabs → Phone Numbers with the current Account SID and Auth Token."
            ),
        ),
        PhoneProblem::TwilioCredentialUnknown => (
            format!("The Twilio credential `{tw}` of the account that owns {number} has no verdict yet."),
            format!("Wait for `{tw}`'s first definitive answer (see its own entry for why it has none)."),
        ),
        PhoneProblem::OwnershipUnchecked => (
            format!("Nothing proves {number} is on a Twilio account credwatch watches."),
            match twilio {
                Some(tw) => format!(
                    "The lookup through `{tw}` got no answer this time (see the evidence); it is asked again at the next detail cycle."
                ),
                None => "Set `twilio:` on this ElevenLabs credential to the Twilio credential of the account that owns the                          numbers, so credwatch can check ownership."
                    .into(),
            },
        ),
    }
}

/// The fix for an ElevenLabs answer that was no verdict, where the answer
/// says more than "unexpected".
pub fn failure_fix(reason: Reason, detail: &str) -> Option<&'static str> {
    if reason != Reason::UnexpectedResponse {
        return None;
    }
    Some(if detail.contains("needs_authorization") {
        "ElevenLabs received no key header at all: something between credwatch and ElevenLabs (a proxy or gateway that \
         `base_url` or HTTPS_PROXY points at) drops `xi-api-key`. This says nothing about the key itself."
    } else if detail.contains("payment_required") {
        "ElevenLabs refused one feature for this plan (its only recorded `payment_required` says \"Free users cannot use \
         library voices via the API\"). This is not a verdict on the key or the account."
    } else if detail.contains("ip_not_allowed") {
        "The key has an IP allowlist: add this host's egress IP to the key's allowed IPs in ElevenLabs → Settings → API Keys."
    } else {
        return None;
    })
}

/// How ElevenLabs' key settings name a permission.
pub fn ui_name(permission: &str) -> String {
    match permission {
        "convai_write" => "Conversational AI → Write (\"ElevenLabs Agents: Write\")".into(),
        "convai_read" => "Conversational AI → Read".into(),
        "user_read" => "User → Read".into(),
        "models_read" => "Models → Read".into(),
        other => format!("the `{other}` permission"),
    }
}
