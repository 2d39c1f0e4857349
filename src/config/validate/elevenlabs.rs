//! The `elevenlabs:` section: key shape (a key ID is not a key), base URL,
//! permissions, the Twilio link.

#[allow(unused_imports)]
use super::*;

pub(super) fn elevenlabs(
    v: &mut Validator<'_>,
    path: &str,
    raw: RawElevenLabs,
    defaults: &Timing,
    known_permissions: &[String],
) -> Option<Credential> {
    let name = name(v, path, raw.name);
    let (interval, timeout, detail_interval) = timing(
        v,
        path,
        defaults,
        raw.interval,
        raw.timeout,
        raw.detail_interval,
    );
    let base_url = base_url(
        v,
        path,
        raw.base_url,
        DEFAULT_ELEVENLABS_URL,
        raw.allow_insecure_http,
    );
    let api_key = secret(
        v,
        path,
        "api_key",
        raw.api_key,
        raw.api_key_env,
        raw.api_key_file,
    );
    if let Some(key) = &api_key {
        check_elevenlabs_key(v, path, key);
    }
    let required_permissions = raw
        .required_permissions
        .unwrap_or_else(|| vec!["convai_write".to_string()]);
    let mut seen = HashSet::new();
    for (i, p) in required_permissions.iter().enumerate() {
        if !seen.insert(p) {
            v.error(
                format!("{path}.required_permissions[{i}]"),
                "is listed twice",
            );
        } else if !known_permissions.iter().any(|k| k == p) {
            v.error(
                format!("{path}.required_permissions[{i}]"),
                format!(
                    "credwatch has no side-effect-free probe for this permission; it can check: {} (or add one under `permission_probes:`)",
                    known_permissions.join(", ")
                ),
            );
        }
    }
    let phone_numbers = raw.phone_numbers.unwrap_or(false);
    if let Some(fp) = &raw.twilio_imported_fingerprint
        && (fp.len() != 12 || !is_hex(fp))
    {
        v.error(
            format!("{path}.twilio_imported_fingerprint"),
            "must be the 12 hex digits credwatch shows as the Twilio credential's fingerprint (`credwatch check` prints it)",
        );
    }
    if raw.twilio_imported_fingerprint.is_some() && raw.twilio.is_none() {
        v.warn(
            format!("{path}.twilio_imported_fingerprint"),
            "has no effect without `twilio:`",
        );
    }
    if raw.twilio.is_some() && !phone_numbers {
        v.warn(
            format!("{path}.twilio"),
            "has no effect without `phone_numbers: true`",
        );
    }
    Some(Credential {
        name: name?,
        critical: raw.critical.unwrap_or(true),
        interval,
        timeout,
        detail_interval,
        spec: Spec::ElevenLabs(ElevenLabs {
            base_url,
            api_key: api_key?,
            required_permissions,
            phone_numbers,
            twilio: raw.twilio,
            expose_numbers: raw.expose_numbers.unwrap_or(false),
            twilio_imported_fingerprint: raw
                .twilio_imported_fingerprint
                .map(|f| f.to_ascii_lowercase()),
        }),
    })
}

/// Keys start with `sk_`. A key ID (shown next to the key in the dashboard
/// and returned by the API-key listings) gets 400 `api_key_id_used_as_api_key`.
pub(super) fn check_elevenlabs_key(v: &mut Validator<'_>, path: &str, key: &SecretValue) {
    let value = key.value.expose();
    if value.starts_with("sk_") {
        return;
    }
    let at = format!("{path}.api_key{}", source_suffix(&key.source));
    if looks_like_account_sid(value) || looks_like_key_sid(value) {
        v.error(at, format!("the value from {} looks like a Twilio SID, not an ElevenLabs API key (keys start with `sk_`)", key.source));
    } else if value.len() <= 40 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
        v.error(
            at,
            format!(
                "the value from {} looks like an API key ID, not the key itself: ElevenLabs rejects key IDs with 400 `api_key_id_used_as_api_key`. Use the secret shown once when the key was created (it starts with `sk_`), or create a new key under Settings → API Keys",
                key.source
            ),
        );
    } else {
        v.warn(at, format!("the value from {} does not start with `sk_` like ElevenLabs API keys do; check it is the key", key.source));
    }
}
