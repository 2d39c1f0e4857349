//! Every envelope of `shared/reference/elevenlabs-api.md` §2–§4, verbatim,
//! through the classifier.

use bytes::Bytes;

use super::*;
use crate::providers::elevenlabs::{NONEXISTENT_AGENT_ID, default_permission_probes};

fn answer(status: u16, content_type: &str, body: &str) -> Answer {
    Answer {
        status,
        content_type: Some(content_type.into()),
        body: Bytes::from(body.to_string()),
        request_id: None,
        retry_after: None,
    }
}

fn meaning(status: u16, body: &str) -> Meaning {
    let a = answer(status, "application/json", body);
    classify(&a, &parse_body(&a))
}

#[test]
fn legacy_invalid_key_is_invalid() {
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#
        ),
        Meaning::Invalid(Problem::InvalidApiKey)
    );
    // The proxy variant with a trailing space in the message.
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key "}}"#
        ),
        Meaning::Invalid(Problem::InvalidApiKey)
    );
}

/// `needs_authorization` means the header never arrived (often a proxy),
/// not that the key is bad: no verdict.
#[test]
fn missing_key_header_is_not_a_verdict_on_the_key() {
    match meaning(
        401,
        r#"{"detail": {"status": "needs_authorization", "message": "Neither authorization header nor xi-api-key received, please provide one."}}"#,
    ) {
        Meaning::Failure(Reason::UnexpectedResponse, detail) => {
            assert!(detail.contains("proxy"), "{detail}")
        }
        other => panic!("needs_authorization must not be a verdict: {other:?}"),
    }
}

#[test]
fn key_id_used_as_key_top_level_and_wrapped() {
    assert_eq!(
        meaning(
            400,
            r#"{"type":"authentication_error","code":"invalid_api_key","status":"api_key_id_used_as_api_key","message":"API key ID used as API key - only valid API keys can be used. API keys start with 'sk_'"}"#
        ),
        Meaning::Invalid(Problem::KeyIdUsedAsKey)
    );
    assert_eq!(
        meaning(
            400,
            r#"{"detail":{"code":"invalid_api_key","status":"api_key_id_used_as_api_key"}}"#
        ),
        Meaning::Invalid(Problem::KeyIdUsedAsKey)
    );
}

#[test]
fn missing_permission_names_the_permission_in_both_forms() {
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission convai_write to execute this operation."}}"#
        ),
        Meaning::MissingPermission(Some("convai_write".into()))
    );
    assert_eq!(
        meaning(
            403,
            r#"{"detail":{"type":"authorization_error","code":"insufficient_permissions","status":"missing_permissions","message":"The API key you used is missing the permission voices_write to execute this operation."}}"#
        ),
        Meaning::MissingPermission(Some("voices_write".into()))
    );
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"status":"missing_permissions","message":"Something else entirely"}}"#
        ),
        Meaning::MissingPermission(None)
    );
}

#[test]
fn quota_and_account_blocks() {
    assert_eq!(
        meaning(
            401,
            r#"{"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota of 10000. You have 0 credits remaining, while 91 credits are required for this request."}}"#
        ),
        Meaning::QuotaExceeded
    );
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota. You have 11 characters remaining, while 70 characters are required for this request.","character_used":10059,"character_limit":10000}}"#
        ),
        Meaning::QuotaExceeded
    );
    assert_eq!(
        meaning(
            401,
            "{\"detail\": {\"status\": \"detected_unusual_activity\", \"message\": \"Unusual activity detected. Free Tier usage disabled. \\nPlease play fair and purchase any Paid Subscription to continue.\"}}"
        ),
        Meaning::Blocked(Problem::UnusualActivity)
    );
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"status":"payment_issue","message":"Your subscription has a failed or incomplete payment."}}"#
        ),
        Meaning::Blocked(Problem::PaymentIssue)
    );
    // Its only real body restricts one feature: not a blocked account.
    assert!(matches!(
        meaning(
            402,
            r#"{"detail":{"status":"payment_required","message":"Free users cannot use library voices via the API. Please upgrade your subscription to use this voice"}}"#
        ),
        Meaning::Failure(Reason::UnexpectedResponse, _)
    ));
}

#[test]
fn rate_limits_and_server_errors_are_not_verdicts() {
    for body in [
        r#"{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests."}}"#,
        r#"{"detail":{"status":"system_busy","message":"We are sorry, the system is experiencing heavy traffic, please try again. Higher subscriptions have higher priority."}}"#,
        r#"{"detail":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"x","status":"rate_limit_exceeded","request_id":"3c807fc4c3a1705f9638ecc764a91c01"}}"#,
        r#"{"detail":{"code":"concurrent_limit_exceeded"}}"#,
        "",
    ] {
        assert!(
            matches!(meaning(429, body), Meaning::Failure(Reason::RateLimited, _)),
            "{body}"
        );
    }
    assert!(matches!(
        meaning(
            500,
            r#"{"detail": {"status": "something_went_wrong", "message": "We are sorry, something went wrong. You are not charged for this request."}}"#
        ),
        Meaning::Failure(Reason::UpstreamError, _)
    ));
    assert!(matches!(
        meaning(
            500,
            r#"{"status": "internal_server_error", "message": "Internal Server error. All such crashes are reported to us automatically."}"#
        ),
        Meaning::Failure(Reason::UpstreamError, _)
    ));
}

#[test]
fn html_pages_are_not_key_problems() {
    let a = answer(
        403,
        "text/html; charset=UTF-8",
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>",
    );
    match classify(&a, &parse_body(&a)) {
        Meaning::Failure(Reason::UnexpectedResponse, detail) => {
            assert!(detail.contains("not a credential problem"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    let a = answer(502, "text/html", "<html>Bad gateway</html>");
    assert!(matches!(
        classify(&a, &parse_body(&a)),
        Meaning::Failure(Reason::UpstreamError, _)
    ));
}

#[test]
fn fastapi_shapes_and_unknown_codes() {
    assert!(matches!(
        meaning(
            422,
            r#"{ "detail": [{ "type": "missing", "loc": ["body", "agent_phone_number_id"], "msg": "Field required", "input": null }] }"#
        ),
        Meaning::Unrecognised(_)
    ));
    assert!(matches!(
        meaning(404, r#"{"detail":"Not Found"}"#),
        Meaning::Unrecognised(_)
    ));
    assert!(matches!(
        meaning(405, r#"{"detail":"Method Not Allowed"}"#),
        Meaning::Unrecognised(_)
    ));
    assert!(matches!(
        meaning(400, r#"{"detail":{"status":"brand_new_code"}}"#),
        Meaning::Unrecognised(_)
    ));
    assert!(matches!(
        meaning(503, r#"{"detail":{"status":"brand_new_code"}}"#),
        Meaning::Failure(Reason::UpstreamError, _)
    ));
    assert!(matches!(
        meaning(401, "not json at all {"),
        Meaning::Failure(Reason::UnexpectedResponse, _)
    ));
    assert!(matches!(meaning(401, "[1,2,3]"), Meaning::Unrecognised(_)));
}

#[test]
fn code_wins_over_status_and_http_status() {
    // New format: `code` is the key, `status` legacy.
    assert_eq!(
        meaning(
            401,
            r#"{"detail":{"type":"authentication_error","code":"invalid_api_key","status":"whatever","message":"m"}}"#
        ),
        Meaning::Invalid(Problem::InvalidApiKey)
    );
    // HTTP 200 never classifies as an error.
    assert_eq!(
        meaning(200, r#"{"detail":{"status":"invalid_api_key"}}"#),
        Meaning::Ok
    );
}

fn probe(permission: &str) -> PermissionProbe {
    default_permission_probes()
        .into_iter()
        .find(|p| p.permission == permission)
        .expect("row exists")
}

fn permission(status: u16, body: &str, p: &str) -> (Result<Vec<Fact>, Failure>, String) {
    let a = answer(status, "application/json", body);
    let b = parse_body(&a);
    permission_meaning(&probe(p), None, &a, &b)
}

#[test]
fn convai_write_probe_reads_404_as_granted_and_401_as_missing() {
    let (r, _) = permission(
        404,
        r#"{"detail":{"status":"agent_not_found","message":"Agent not found"}}"#,
        "convai_write",
    );
    assert_eq!(
        r,
        Ok(vec![
            Fact::Valid,
            Fact::Permission {
                name: "convai_write".into(),
                granted: true,
                basis: crate::outcome::Basis::Inferred,
            }
        ])
    );
    let (r, _) = permission(
        401,
        r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission convai_write to execute this operation."}}"#,
        "convai_write",
    );
    assert_eq!(
        r,
        Ok(vec![
            Fact::Valid,
            Fact::Permission {
                name: "convai_write".into(),
                granted: false,
                basis: crate::outcome::Basis::Direct,
            }
        ])
    );
    let (r, _) = permission(
        403,
        r#"{"detail":{"type":"authorization_error","code":"insufficient_permissions","status":"missing_permissions","message":"The API key you used is missing the permission convai_write to execute this operation."}}"#,
        "convai_write",
    );
    assert_eq!(
        r,
        Ok(vec![
            Fact::Valid,
            Fact::Permission {
                name: "convai_write".into(),
                granted: false,
                basis: crate::outcome::Basis::Direct,
            }
        ])
    );
}

#[test]
fn a_probe_refused_for_another_permission_leaves_this_one_unknown() {
    let (r, detail) = permission(
        401,
        r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission convai_read to execute this operation."}}"#,
        "convai_write",
    );
    // Neither granted nor missing: the probe needs attention.
    assert_eq!(r, Err(Failure::inconclusive()));
    assert!(detail.contains("stays unknown"), "{detail}");
}

#[test]
fn anything_else_leaves_the_permission_unknown() {
    for (status, body) in [
        (200, r#"{"signed_url":"wss://x"}"#),
        (
            422,
            r#"{"detail":[{"type":"string_pattern_mismatch","loc":["query","agent_id"],"msg":"bad","input":"x"}]}"#,
        ),
        (
            500,
            r#"{"detail":{"status":"something_went_wrong","message":"x"}}"#,
        ),
        (
            401,
            r#"{"detail":{"status":"missing_permissions","message":"no name here"}}"#,
        ),
    ] {
        let (r, _) = permission(status, body, "convai_write");
        assert!(r.is_err(), "{status} {body}: {r:?}");
    }
    let (r, _) = permission(
        401,
        r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#,
        "convai_write",
    );
    assert_eq!(
        r,
        Ok(vec![Fact::Invalid {
            problem: Problem::InvalidApiKey.into()
        }])
    );
}

#[test]
fn the_probe_agent_id_is_well_formed() {
    let id = NONEXISTENT_AGENT_ID
        .strip_prefix("agent_")
        .expect("agent_ prefix");
    assert_eq!(id.len(), 28);
    // Two digits, then a ULID in lowercase Crockford base32 (no i, l, o, u)
    // whose first character is at most 7.
    let (digits, ulid) = id.split_at(2);
    assert!(digits.chars().all(|c| c.is_ascii_digit()), "{id}");
    assert!(
        ulid.chars()
            .all(|c| "0123456789abcdefghjkmnpqrstvwxyz".contains(c)),
        "{id}"
    );
    assert!(ulid.chars().next().is_some_and(|c| c <= '7'), "{id}");
}

#[test]
fn subscription_exhaustion_respects_usage_based_billing() {
    let sub = |count, limit, extend, ext: &str| -> Subscription {
        serde_json::from_str(&format!(
            r#"{{"character_count":{count},"character_limit":{limit},"tier":"starter","status":"active","can_extend_character_limit":{extend},"max_credit_limit_extension":{ext},"next_character_count_reset_unix":null}}"#
        ))
        .expect("valid subscription json")
    };
    assert!(sub(10000, 10000, false, "0").exhausted());
    assert!(sub(10001, 10000, true, "0").exhausted());
    assert!(!sub(10000, 10000, true, "\"unlimited\"").exhausted());
    assert!(!sub(10_000_000, 10000, true, "\"unlimited\"").exhausted());
    // An extension N > 0: exhausted at limit + N, not before.
    assert!(!sub(10000, 10000, true, "5000").exhausted());
    assert!(!sub(14999, 10000, true, "5000").exhausted());
    assert!(sub(15000, 10000, true, "5000").exhausted());
    // An extension that may not be used does not count.
    assert!(sub(10000, 10000, false, "5000").exhausted());
    assert!(!sub(9999, 10000, false, "0").exhausted());
    assert_eq!(sub(1, 10000, true, "5000").ceiling(), Some(15000));
    assert_eq!(sub(1, 10000, false, "5000").ceiling(), Some(10000));
    assert_eq!(sub(1, 10000, true, "\"unlimited\"").ceiling(), None);
}

/// The `convai_write` probe fails safe: only `agent_not_found` and a
/// `missing_permissions` naming it decide; any other API answer leaves the
/// permission unknown and says the probe needs attention.
#[test]
fn convai_write_probe_answers_that_decide_nothing_are_inconclusive() {
    for (status, body) in [
        (
            400,
            r#"{"detail":{"status":"invalid_uid","message":"An invalid ID has been received: 'agent_x'. Make sure to provide a correct one."}}"#,
        ),
        (
            422,
            r#"{"detail":[{"type":"string_pattern_mismatch","loc":["query","agent_id"],"msg":"String should match pattern","input":"agent_x"}]}"#,
        ),
        (404, r#"{"detail":"Not Found"}"#),
        (
            403,
            r#"{"detail":{"status":"some_new_code","message":"x"}}"#,
        ),
        (200, r#"{"signed_url":"wss://example.invalid/x"}"#),
        (
            401,
            r#"{"detail":{"status":"missing_permissions","message":"no permission named here"}}"#,
        ),
    ] {
        let (r, detail) = permission(status, body, "convai_write");
        assert_eq!(r, Err(Failure::inconclusive()), "{status} {body}");
        assert!(detail.contains("credwatch calibrate"), "{detail}");
    }
    // No key header received, 429, 5xx, HTML: not the probe's fault, no verdict.
    for (status, ct, body) in [
        (
            401,
            "application/json",
            r#"{"detail":{"status":"needs_authorization","message":"Neither authorization header nor xi-api-key received, please provide one."}}"#,
        ),
        (
            429,
            "application/json",
            r#"{"detail":{"status":"too_many_concurrent_requests","message":"x"}}"#,
        ),
        (
            500,
            "application/json",
            r#"{"status":"internal_server_error","message":"x"}"#,
        ),
        (
            403,
            "text/html",
            "<!DOCTYPE html><title>Just a moment...</title>",
        ),
    ] {
        let a = answer(status, ct, body);
        let (r, _) = permission_meaning(&probe("convai_write"), None, &a, &parse_body(&a));
        let f = r.expect_err("no verdict");
        assert!(!f.inconclusive, "{status} {body}");
    }
}

/// A 200 subscription body read as credwatch reads it: the quota, whether
/// it blocks the credential, and the evidence line.
fn subscription_200(body: &str) -> (Quota, bool, String) {
    let a = answer(200, "application/json", body);
    let (r, detail) = subscription_outcome(&a, &parse_body(&a));
    let facts = r.expect("a definitive answer");
    let quota = facts
        .iter()
        .find_map(|f| match f {
            Fact::Detail(crate::providers::Detail::ElevenLabs(Detail::Quota { quota })) => {
                Some(quota.clone())
            }
            _ => None,
        })
        .expect("quota");
    let blocked = facts.iter().any(|f| matches!(f, Fact::Problem { .. }));
    (quota, blocked, detail)
}

/// A hostile or broken upstream cannot push a huge or escape-laden string
/// into labels, logs, `/health` or a terminal: the attack of a 1 MB `tier`
/// and `status` with CR/LF and ANSI escapes, performed on the parser.
#[test]
fn upstream_strings_are_capped_and_cleaned_at_parse_time() {
    let evil = format!(
        "pro\r\ncredwatch_credential_healthy{{credential=\"x\"}} 1\n\u{1b}[31m{}",
        "A".repeat(1 << 20)
    );
    let body = serde_json::json!({
        "character_count": 1, "character_limit": 10, "tier": evil, "status": evil,
        "next_character_count_reset_unix": null
    })
    .to_string();
    let (quota, _, detail) = subscription_200(&body);
    for s in [&quota.tier, &quota.status] {
        assert!(
            s.chars().count() <= crate::outcome::UPSTREAM_STRING_MAX,
            "{}",
            s.len()
        );
        assert!(!s.chars().any(char::is_control), "{s:?}");
    }
    assert!(detail.len() < 400, "{}", detail.len());
    assert!(!detail.chars().any(char::is_control), "{detail:?}");
    // Error fields too (they reach logs and `check`).
    let a = answer(
        401,
        "application/json",
        &serde_json::json!({"detail": {"status": evil, "request_id": evil}}).to_string(),
    );
    let Body::Error(f) = parse_body(&a) else {
        panic!("an error body")
    };
    for s in [f.status.as_deref(), f.request_id.as_deref()]
        .into_iter()
        .flatten()
    {
        assert!(s.chars().count() <= crate::outcome::UPSTREAM_STRING_MAX);
        assert!(!s.chars().any(char::is_control), "{s:?}");
    }
}

#[test]
fn usage_based_billing_exports_its_ceiling() {
    let sub = |json: &str| {
        let (quota, blocked, _) = subscription_200(json);
        (quota, blocked)
    };
    // The public fixture: 244,469 used of 114,089 under usage-based billing, unlimited.
    let (q, blocked) = sub(
        r#"{"character_count":244469,"character_limit":114089,"tier":"creator","status":"active","can_extend_character_limit":true,"max_credit_limit_extension":"unlimited","has_open_invoices":false}"#,
    );
    assert_eq!((q.ceiling, q.exhausted, blocked), (None, false, false));
    assert_eq!(q.open_invoices, Some(false));
    // Under and at a numeric cap.
    let (q, blocked) = sub(
        r#"{"character_count":12000,"character_limit":10000,"tier":"creator","status":"active","can_extend_character_limit":true,"max_credit_limit_extension":5000}"#,
    );
    assert_eq!(
        (q.ceiling, q.exhausted, blocked),
        (Some(15000), false, false)
    );
    let (q, blocked) = sub(
        r#"{"character_count":15000,"character_limit":10000,"tier":"creator","status":"active","can_extend_character_limit":true,"max_credit_limit_extension":5000}"#,
    );
    assert_eq!((q.ceiling, q.exhausted, blocked), (Some(15000), true, true));
    // Billing at risk is exported, not a verdict; `free_disabled` is one.
    let (q, blocked) = sub(
        r#"{"character_count":1,"character_limit":10000,"tier":"creator","status":"past_due","has_open_invoices":true}"#,
    );
    assert!(q.billing_at_risk() && !blocked);
    let (q, blocked) = sub(
        r#"{"character_count":1,"character_limit":10000,"tier":"free","status":"free_disabled"}"#,
    );
    assert!(!q.billing_at_risk() && blocked);
}

/// A recorded calibration decides what a table reading rests on: proven
/// (`calibrated`), or nothing at all when the probe was shown not to
/// discriminate. Upstream naming the permission stays `direct` either way.
#[test]
fn calibration_decides_the_basis_of_a_table_reading() {
    use super::super::calibration::Calibrated;
    use crate::outcome::Basis;
    let found = r#"{"detail":{"status":"agent_not_found","message":"Agent not found"}}"#;
    let named = r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission convai_write to execute this operation."}}"#;
    let read = |status, body, c: Option<Calibrated<'_>>| {
        let a = answer(status, "application/json", body);
        permission_meaning(&probe("convai_write"), c, &a, &parse_body(&a))
    };
    let basis_of = |r: &Result<Vec<Fact>, Failure>| match r {
        Ok(facts) => facts.iter().find_map(|f| match f {
            Fact::Permission { granted, basis, .. } => Some((*granted, *basis)),
            _ => None,
        }),
        Err(_) => None,
    };
    let proven = Calibrated {
        discriminates: true,
        at: "2026-01-31T12:00:00Z",
    };
    let useless = Calibrated {
        discriminates: false,
        at: "2026-01-31T12:00:00Z",
    };
    assert_eq!(
        basis_of(&read(404, found, None).0),
        Some((true, Basis::Inferred))
    );
    let (r, detail) = read(404, found, Some(proven));
    assert_eq!(basis_of(&r), Some((true, Basis::Calibrated)));
    assert!(detail.contains("2026-01-31T12:00:00Z"), "{detail}");
    let (r, detail) = read(404, found, Some(useless));
    assert_eq!(r, Err(Failure::inconclusive()));
    assert!(detail.contains("does not tell"), "{detail}");
    for c in [None, Some(proven), Some(useless)] {
        assert_eq!(
            basis_of(&read(401, named, c).0),
            Some((false, Basis::Direct)),
            "{c:?}"
        );
    }
}
