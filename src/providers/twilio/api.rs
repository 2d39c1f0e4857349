//! What credwatch may ask Twilio: its arm of the read-only allow-list.

/// `AC` + 32 hex digits: the shape of a Twilio Account SID.
pub fn looks_like_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Twilio arm of [`crate::providers::check_read_path`].
pub fn allowed(segments: &[&str], query: Option<&str>) -> Result<bool, String> {
    Ok(match segments {
        ["2010-04-01", "Accounts", account] => account
            .strip_suffix(".json")
            .is_some_and(looks_like_account_sid),
        ["2010-04-01", "Accounts", account, resource] => {
            looks_like_account_sid(account)
                && matches!(
                    *resource,
                    "IncomingPhoneNumbers.json" | "OutgoingCallerIds.json" | "Balance.json"
                )
        }
        // The Voice API (voice_base_url): one country's dialing permissions.
        // Nothing else of that API: BulkCountryUpdates changes settings.
        ["v1", "DialingPermissions", "Countries", iso] => {
            query.is_none() && iso.len() == 2 && iso.bytes().all(|b| b.is_ascii_uppercase())
        }
        _ => false,
    })
}
