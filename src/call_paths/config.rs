//! The `call_paths:` section: as written, then validated against the
//! credentials it names. Every problem names its key path
//! (`call_paths[2].twilio`); nothing here reaches upstream.

use serde::Deserialize;

use super::CallPath;
use crate::providers::{Credential, Provider, check_read_path};
use crate::section::Validator;

/// One `call_paths:` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCallPath {
    pub name: Option<String>,
    pub elevenlabs: Option<String>,
    pub agent_id: Option<String>,
    pub agent_phone_number_id: Option<String>,
    pub twilio: Option<String>,
    pub destinations: Option<Vec<String>>,
    pub critical: Option<bool>,
    pub twilio_imported_fingerprint: Option<String>,
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// Validates every call path against the validated `credentials`.
pub fn validate(
    v: &mut Validator<'_>,
    raw: Vec<RawCallPath>,
    credentials: &[Credential],
) -> Vec<CallPath> {
    let mut seen: Vec<(String, String)> = Vec::new();
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let at = format!("call_paths[{i}]");
            let name = crate::section::label_name(v, &at, r.name, "call path");
            if let Some(n) = &name {
                if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                    v.error(
                        format!("{at}.name"),
                        format!("is already used by {first}; call path names must be unique (they are the `call_path` label)"),
                    );
                } else {
                    seen.push((n.clone(), at.clone()));
                }
            }
            let caller = reference(v, &at, "elevenlabs", r.elevenlabs, Provider::ElevenLabs, credentials);
            if let Some(c) = caller.and_then(|n| credentials.iter().find(|c| c.name == n))
                && !c.required_permissions().iter().any(|p| p == "convai_write")
            {
                let key = c.key_path(credentials).unwrap_or_default();
                v.error(
                    format!("{at}.elevenlabs"),
                    format!("`{}` does not check `convai_write`, which placing the call needs; add it to {key}.required_permissions", c.name),
                );
            }
            let carrier = reference(v, &at, "twilio", r.twilio, Provider::Twilio, credentials);
            let agent_id = id(v, &at, "agent_id", r.agent_id, "/v1/convai/agents/", "agent_2501k520e4p6eqs87ga1ke8a67fs");
            let phone_number_id = id(
                v,
                &at,
                "agent_phone_number_id",
                r.agent_phone_number_id,
                "/v1/convai/phone-numbers/",
                "phnum_0801k7t2dq9yf5s3h6x1z4c7v2bn",
            );
            let destinations = destinations(v, &at, r.destinations.unwrap_or_default());
            let labels = crate::section::labels::labels(v, &at, r.labels);
            if let Some(fp) = &r.twilio_imported_fingerprint
                && (fp.len() != 12 || !fp.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                v.error(
                    format!("{at}.twilio_imported_fingerprint"),
                    "must be the 12 hex digits credwatch shows as the Twilio credential's fingerprint (`credwatch check` prints it)",
                );
            }
            Some(CallPath {
                name: name?,
                caller: caller?.to_string(),
                agent_id: agent_id?,
                phone_number_id: phone_number_id?,
                carrier: carrier?.to_string(),
                destinations: destinations?,
                critical: r.critical.unwrap_or(true),
                labels,
                imported_fingerprint: r.twilio_imported_fingerprint.map(|f| f.to_ascii_lowercase()),
            })
        })
        .collect()
}

/// A credential named under `key`: it must exist and be of `provider`. A
/// name that an entry with errors of its own carries is not reported again.
fn reference<'c>(
    v: &mut Validator<'_>,
    at: &str,
    key: &str,
    name: Option<String>,
    provider: Provider,
    credentials: &'c [Credential],
) -> Option<&'c str> {
    let path = format!("{at}.{key}");
    let Some(name) = name else {
        v.error(
            path,
            format!("missing; name the {provider} credential of this call path"),
        );
        return None;
    };
    match credentials.iter().find(|c| c.name == name) {
        Some(c) if c.provider() == provider => Some(&c.name),
        Some(c) => {
            v.error(
                path,
                format!(
                    "`{name}` is under `{}:`, not `{provider}:`; name one of the `{provider}:` credentials here",
                    c.provider()
                ),
            );
            None
        }
        None if v.declared(&name).is_some() => None,
        None => {
            let configured: Vec<&str> = credentials
                .iter()
                .filter(|c| c.provider() == provider)
                .map(|c| c.name.as_str())
                .collect();
            v.error(
                path,
                format!(
                    "`{name}` is not the name of a configured {provider} credential (configured: {})",
                    if configured.is_empty() { "none".to_string() } else { configured.join(", ") }
                ),
            );
            None
        }
    }
}

/// An id the application passes, used as one segment of a read-only path.
fn id(
    v: &mut Validator<'_>,
    at: &str,
    key: &str,
    value: Option<String>,
    prefix: &str,
    example: &str,
) -> Option<String> {
    let path = format!("{at}.{key}");
    let Some(value) = value else {
        v.error(path, format!("missing; the `{key}` your application passes when it places the call (e.g. `{example}`)"));
        return None;
    };
    if check_read_path(Provider::ElevenLabs, &format!("{prefix}{value}")).is_err() {
        v.error(
            path,
            format!("is not an ElevenLabs id: letters, digits, `_` and `-` only, at most 64 (e.g. `{example}`)"),
        );
        return None;
    }
    Some(value)
}

fn destinations(v: &mut Validator<'_>, at: &str, raw: Vec<String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (i, d) in raw.into_iter().enumerate() {
        let path = format!("{at}.destinations[{i}]");
        let code = d.to_ascii_uppercase();
        if !is_country(&code) {
            let shown: String = d.chars().take(8).filter(|c| c.is_ascii_graphic()).collect();
            v.error(
                path,
                format!("`{shown}` is not an ISO 3166-1 alpha-2 country code (e.g. US, GB, DE)"),
            );
            ok = false;
        } else if out.contains(&code) {
            v.error(path, format!("{code} is listed twice"));
            ok = false;
        } else {
            out.push(code);
        }
    }
    ok.then_some(out)
}

/// ISO 3166-1 alpha-2 codes officially assigned, plus XK (Kosovo, which
/// Twilio's dialing permissions list).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM \
PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_country_list_is_iso_3166_1_plus_kosovo() {
        let codes: Vec<&str> = COUNTRIES.split(' ').collect();
        assert_eq!(codes.len(), 250, "249 assigned codes and XK");
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, codes, "sorted, no duplicates");
        for known in ["US", "GB", "DE", "FR", "IN", "BR", "ZA", "XK"] {
            assert!(is_country(known), "{known}");
        }
        for not in ["UK", "EU", "ZZ", "U", "USA", ""] {
            assert!(!is_country(not), "{not}");
        }
    }
}
