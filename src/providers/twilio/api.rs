//! What credwatch may ask Twilio: its arm of the read-only allow-list, with
//! how much of each answer is read.

use crate::providers::http::{BODY_LIMIT, SMALL_BODY_LIMIT};

/// `AC` + 32 hex digits: the shape of a Twilio Account SID.
pub fn looks_like_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Twilio arm of [`crate::providers::check_read_path`]: `Some(cap)`
/// when the path (split into segments) and query may be asked, with how
/// much of the answer is read at most (what a real answer needs, so a
/// hostile or broken upstream costs at most that); `None` when not.
pub fn allowed(segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String> {
    let allowed = |yes: bool, cap: usize| yes.then_some(cap);
    Ok(match segments {
        // The account: a small object.
        ["2010-04-01", "Accounts", account] => allowed(
            account
                .strip_suffix(".json")
                .is_some_and(looks_like_account_sid),
            SMALL_BODY_LIMIT,
        ),
        ["2010-04-01", "Accounts", account, resource] if looks_like_account_sid(account) => {
            match *resource {
                "IncomingPhoneNumbers.json" | "OutgoingCallerIds.json" => {
                    Some(number_page_cap(query))
                }
                "Balance.json" => Some(SMALL_BODY_LIMIT),
                _ => None,
            }
        }
        // The Voice API (voice_base_url): one country's dialing permissions.
        // Nothing else of that API: BulkCountryUpdates changes settings.
        ["v1", "DialingPermissions", "Countries", iso] => allowed(
            query.is_none() && iso.len() == 2 && iso.bytes().all(|b| b.is_ascii_uppercase()),
            SMALL_BODY_LIMIT,
        ),
        _ => None,
    })
}

/// A page of numbers: a Twilio number is about 1.5 KiB of JSON, so page 1
/// of one number and a lookup of up to 20 fit in 64 KiB; a full page of
/// 1,000 needs the largest cap. Twilio's default page size is 50.
fn number_page_cap(query: Option<&str>) -> usize {
    let page_size = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "PageSize")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(50);
    if page_size <= 20 {
        SMALL_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Provider, check_read_path};

    const AC: &str = "AC0123456789abcdef0123456789abcdef";

    #[test]
    fn each_endpoint_reads_what_a_real_answer_needs() {
        let sid = AC;
        for (path, cap) in [
            (format!("/2010-04-01/Accounts/{sid}.json"), SMALL_BODY_LIMIT),
            (
                format!("/2010-04-01/Accounts/{sid}/Balance.json"),
                SMALL_BODY_LIMIT,
            ),
            (
                "/v1/DialingPermissions/Countries/US".to_string(),
                SMALL_BODY_LIMIT,
            ),
            (
                format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000"),
                BODY_LIMIT,
            ),
            (
                format!("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1"),
                SMALL_BODY_LIMIT,
            ),
            (
                format!(
                    "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000&Page=3&PageToken=PA1"
                ),
                BODY_LIMIT,
            ),
            (
                format!(
                    "/2010-04-01/Accounts/{sid}/OutgoingCallerIds.json?PhoneNumber=%2B1&PageSize=20"
                ),
                SMALL_BODY_LIMIT,
            ),
        ] {
            assert_eq!(check_read_path(Provider::Twilio, &path), Ok(cap), "{path}");
        }
    }
}
