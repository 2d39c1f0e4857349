//! The `twilio:` section: SID and secret shapes (swapped, key SID where the
//! Account SID belongs), auth kind, base URL.

#[allow(unused_imports)]
use super::*;

pub(super) fn source_suffix(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::Literal => "",
        SecretSource::Env(_) => "_env",
        SecretSource::File(_) => "_file",
    }
}

pub(super) fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

pub(crate) use crate::upstream::looks_like_account_sid;

pub(crate) fn looks_like_key_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("SK") && is_hex(&s[2..])
}

pub(super) fn looks_like_auth_token(s: &str) -> bool {
    s.len() == 32 && is_hex(s)
}

pub(super) fn twilio(
    v: &mut Validator<'_>,
    path: &str,
    raw: RawTwilio,
    defaults: &Timing,
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
        DEFAULT_TWILIO_URL,
        raw.allow_insecure_http,
    );
    let sid = secret(
        v,
        path,
        "account_sid",
        raw.account_sid,
        raw.account_sid_env,
        raw.account_sid_file,
    );

    let has_token =
        raw.auth_token.is_some() || raw.auth_token_env.is_some() || raw.auth_token_file.is_some();
    let has_key = raw.api_key_sid.is_some()
        || raw.api_key_sid_env.is_some()
        || raw.api_key_sid_file.is_some()
        || raw.api_key_secret.is_some()
        || raw.api_key_secret_env.is_some()
        || raw.api_key_secret_file.is_some();
    let auth = if has_token && has_key {
        v.error(
            path.to_string(),
            "has both an auth token and an API key; keep one: `auth_token*` (Account SID + Auth Token) or `api_key_sid*` + `api_key_secret*`",
        );
        None
    } else if has_key {
        let key_sid = secret(
            v,
            path,
            "api_key_sid",
            raw.api_key_sid,
            raw.api_key_sid_env,
            raw.api_key_sid_file,
        );
        let key_secret = secret(
            v,
            path,
            "api_key_secret",
            raw.api_key_secret,
            raw.api_key_secret_env,
            raw.api_key_secret_file,
        );
        match (key_sid, key_secret) {
            (Some(ks), Some(sec)) => {
                let sid_text = ks.value.expose().to_string();
                let secret_text = sec.value.expose();
                let at = format!("{path}.api_key_sid{}", source_suffix(&ks.source));
                if !looks_like_key_sid(&sid_text) {
                    if looks_like_key_sid(secret_text) {
                        v.error(at, "these look swapped: the API key SID (`SK` + 32 hex) is in `api_key_secret`, and the secret in `api_key_sid`");
                    } else if looks_like_account_sid(&sid_text) {
                        v.error(at, "is an Account SID (`AC…`); the API key SID starts with `SK` (Console → Account → API keys). The Account SID goes in `account_sid`");
                    } else {
                        v.error(at, format!("the value from {} is not an API key SID (`SK` followed by 32 hex digits)", ks.source));
                    }
                    None
                } else {
                    Some(TwilioAuth::ApiKey {
                        sid: sid_text,
                        sid_source: ks.source,
                        secret: sec,
                    })
                }
            }
            _ => None,
        }
    } else {
        let token = secret(
            v,
            path,
            "auth_token",
            raw.auth_token,
            raw.auth_token_env,
            raw.auth_token_file,
        );
        if let Some(t) = &token {
            let text = t.value.expose();
            let at = format!("{path}.auth_token{}", source_suffix(&t.source));
            if looks_like_account_sid(text) {
                if sid
                    .as_ref()
                    .is_some_and(|s| looks_like_auth_token(s.value.expose()))
                {
                    // Reported once, on account_sid, below.
                } else {
                    v.error(at, "is an Account SID (`AC…`), not an Auth Token; the Auth Token is 32 hex digits (Console → Account → Auth tokens)");
                }
            } else if looks_like_key_sid(text) {
                v.error(at, "is an API key SID (`SK…`); put it in `api_key_sid` with its secret in `api_key_secret`, or use the Auth Token here");
            } else if !looks_like_auth_token(text) {
                v.warn(at, format!("the value from {} is not 32 hex digits like Twilio Auth Tokens are; check it", t.source));
            }
        }
        token.map(TwilioAuth::AuthToken)
    };

    let account_sid = sid.and_then(|s| {
        let text = s.value.expose().to_string();
        let at = format!("{path}.account_sid{}", source_suffix(&s.source));
        if looks_like_account_sid(&text) {
            return Some((text, s.source));
        }
        let token_is_sid = matches!(&auth, Some(TwilioAuth::AuthToken(t)) if looks_like_account_sid(t.value.expose()));
        if token_is_sid || (looks_like_auth_token(&text) && auth.is_none()) {
            v.error(at, "these look swapped: `account_sid` holds an Auth Token and `auth_token` the Account SID. The Account SID starts with `AC`; the Auth Token is 32 hex digits");
        } else if looks_like_key_sid(&text) {
            v.error(at, "is an API key SID (`SK…`); the URL needs the Account SID (`AC` + 32 hex, Console → Account info). Put the SK SID in `api_key_sid`");
        } else if looks_like_auth_token(&text) {
            v.error(at, "looks like an Auth Token (32 hex digits); the Account SID starts with `AC` (Console → Account info)");
        } else {
            v.error(at, format!("the value from {} is not an Account SID (`AC` followed by 32 hex digits)", s.source));
        }
        None
    });

    let (account_sid, account_sid_source) = account_sid?;
    Some(Credential {
        name: name?,
        critical: raw.critical.unwrap_or(true),
        interval,
        timeout,
        detail_interval,
        spec: Spec::Twilio(Twilio {
            base_url,
            account_sid,
            account_sid_source,
            auth: auth?,
        }),
    })
}
