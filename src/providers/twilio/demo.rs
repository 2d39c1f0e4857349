//! Twilio's cast in `credwatch demo`: a healthy account, a rotated token, a
//! Standard key, a trial with a low balance and a suspended account.

use crate::simulator::demo as d;

/// The `twilio:` section, against the simulator at `base_url`.
pub(super) fn section(base_url: &str) -> String {
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
