//! Tests of the simulator through real HTTP (reqwest against the running
//! servers): error shapes, auth rules, paging, faults, forbidden requests.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::demo::*;
use super::*;

fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; plain HTTP still
    // needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.expect("body");
    Answer {
        status,
        headers,
        body,
    }
}

async fn el(sim: &Simulator, path: &str, key: Option<&str>) -> Answer {
    let mut req = client().get(format!("{}{path}", sim.elevenlabs_url()));
    if let Some(key) = key {
        req = req.header("xi-api-key", key);
    }
    send(req).await
}

async fn tw(sim: &Simulator, path: &str, user: &str, pass: &str) -> Answer {
    send(
        client()
            .get(format!("{}{path}", sim.twilio_url()))
            .basic_auth(user, Some(pass)),
    )
    .await
}

fn acct(sid: &str, rest: &str) -> String {
    format!("/2010-04-01/Accounts/{sid}{rest}")
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A corpus body, as recorded.
fn recorded_body(id: &str) -> &'static str {
    &corpus::entry(id)
        .unwrap_or_else(|| panic!("{id} not in the corpus"))
        .body
}

async fn demo() -> Simulator {
    Simulator::start(World::demo()).await.expect("start")
}

// ---------------------------------------------------------------------------
// ElevenLabs: auth and error shapes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn el_missing_key_is_needs_authorization() {
    let sim = demo().await;
    let a = el(&sim, "/v1/user/subscription", None).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":{"status":"needs_authorization","message":"Neither authorization header nor xi-api-key received, please provide one."}}"#
    );
    assert_eq!(a.header("server"), "uvicorn");
    assert_eq!(a.header("content-type"), "application/json");
    assert!(is_hex(a.header("x-trace-id"), 32));
}

#[tokio::test]
async fn el_unknown_key_bearer_and_key_id() {
    let sim = demo().await;
    let a = el(&sim, "/v1/user", Some(EL_REVOKED_KEY)).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#
    );

    let a = send(
        client()
            .get(format!("{}/v1/user", sim.elevenlabs_url()))
            .bearer_auth(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 401);

    let a = el(&sim, "/v1/user", Some(EL_AGENT_PROD_KEY_ID)).await;
    assert_eq!(a.status, 400);
    let body = a.json();
    assert_eq!(body["type"], "authentication_error");
    assert_eq!(body["code"], "invalid_api_key");
    assert_eq!(body["status"], "api_key_id_used_as_api_key");
    assert!(body.get("detail").is_none());
}

#[tokio::test]
async fn el_healthy_subscription() {
    let sim = demo().await;
    let a = el(&sim, "/v1/user/subscription", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 200);
    let s = a.json();
    assert_eq!(s["character_count"], 12_000);
    assert_eq!(s["character_limit"], 100_000);
    assert_eq!(s["max_credit_limit_extension"], "unlimited");
    assert_eq!(s["status"], "active");
    assert!(s["next_character_count_reset_unix"].is_i64());
    assert_eq!(s["current_overage"]["currency"], "usd");
    assert_eq!(a.header("request-id").len(), 20);
    assert!(a.headers.get("x-trace-id").is_none());

    let a = el(&sim, "/v1/user/subscription", Some(EL_QUOTA_EXHAUSTED_KEY)).await;
    let s = a.json();
    assert_eq!(s["character_count"], s["character_limit"]);
    assert_eq!(s["max_credit_limit_extension"], 0);
    assert_eq!(s["can_extend_character_limit"], false);

    let a = el(&sim, "/v1/user/subscription", Some(EL_QUOTA_HIGH_KEY)).await;
    let s = a.json();
    assert_eq!(
        s["character_count"].as_u64().unwrap() * 100 / s["character_limit"].as_u64().unwrap(),
        95
    );

    let a = el(&sim, "/v1/user", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 200);
    let u = a.json();
    assert!(u["subscription"].get("open_invoices").is_none());
    assert!(u.get("xi_api_key").is_none());
    assert!(!a.body.contains(EL_AGENT_PROD_KEY));
}

#[tokio::test]
async fn el_missing_permission_forms() {
    let sim = demo().await;
    let a = el(&sim, "/v1/user/subscription", Some(EL_RESTRICTED_KEY)).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission user_read to execute this operation."}}"#
    );
    assert_eq!(
        el(
            &sim,
            "/v1/convai/agents?page_size=1",
            Some(EL_RESTRICTED_KEY)
        )
        .await
        .status,
        200
    );
    let a = el(&sim, "/v1/models", Some(EL_RESTRICTED_KEY)).await;
    assert!(a.body.contains("models_read"));

    sim.update(|w| w.elevenlabs.permission_error = PermissionErrorForm::Forbidden403);
    let a = el(&sim, "/v1/user/subscription", Some(EL_RESTRICTED_KEY)).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.json(),
        json!({"detail": {"type": "authorization_error", "code": "insufficient_permissions", "status": "missing_permissions", "message": "The API key you used is missing the permission user_read to execute this operation."}})
    );
}

#[tokio::test]
async fn el_account_blocks() {
    let sim = demo().await;
    let a = el(&sim, "/v1/models", Some(EL_BLOCKED_KEY)).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        "{\"detail\":{\"status\":\"detected_unusual_activity\",\"message\":\"Unusual activity detected. Free Tier usage disabled. If you are using a proxy/VPN you might need to purchase a Paid Plan to not trigger our abuse detectors. Free Tier only works if users do not abuse it, for example by creating multiple free accounts. If we notice that many people try to abuse it, we will need to reconsider Free Tier altogether. \\nPlease play fair and purchase any Paid Subscription to continue.\"}}"
    );
    sim.update(|w| {
        w.elevenlabs.account_mut("workspace-blocked").unwrap().block =
            Some(AccountBlock::PaymentRequired)
    });
    let a = el(&sim, "/v1/user", Some(EL_BLOCKED_KEY)).await;
    assert_eq!(a.status, 402);
    assert_eq!(a.json()["detail"]["status"], "payment_required");
    sim.update(|w| {
        w.elevenlabs.account_mut("workspace-blocked").unwrap().block =
            Some(AccountBlock::PaymentIssue)
    });
    let a = el(&sim, "/v1/user", Some(EL_BLOCKED_KEY)).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["detail"]["status"], "payment_issue");
}

#[tokio::test]
async fn el_error_formats() {
    let sim = demo().await;
    sim.update(|w| w.elevenlabs.error_format = ErrorFormat::NewWrapped);
    let a = el(&sim, "/v1/user", Some(EL_REVOKED_KEY)).await;
    let d = &a.json()["detail"];
    assert_eq!(d["code"], "invalid_api_key");
    assert_eq!(d["type"], "authentication_error");
    assert_eq!(d["message"], "Invalid API key");
    assert_eq!(d["request_id"], a.header("x-trace-id"));

    sim.update(|w| w.elevenlabs.error_format = ErrorFormat::NewTopLevel);
    let a = el(&sim, "/v1/user", Some(EL_RESTRICTED_KEY)).await;
    let b = a.json();
    assert!(b.get("detail").is_none());
    assert_eq!(b["status"], "missing_permissions");
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn el_routing_errors() {
    let sim = demo().await;
    let a = el(&sim, "/v1/nope", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (404, r#"{"detail":"Not Found"}"#)
    );
    let a = send(
        client()
            .delete(format!("{}/v1/user", sim.elevenlabs_url()))
            .header("xi-api-key", EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (405, r#"{"detail":"Method Not Allowed"}"#)
    );
    let a = el(&sim, "/v1/user/", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 307);
    assert!(a.header("location").ends_with("/v1/user"));
    let forbidden = sim.forbidden_requests();
    assert_eq!(forbidden.len(), 3, "{forbidden:?}");
}

// ---------------------------------------------------------------------------
// ElevenLabs: Conversational AI
// ---------------------------------------------------------------------------

#[tokio::test]
async fn el_phone_numbers_and_agents() {
    let sim = demo().await;
    let a = el(&sim, "/v1/convai/phone-numbers", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 200);
    let list = a.json();
    let items = list.as_array().expect("plain array");
    assert_eq!(items.len(), 3);
    let support = &items[0];
    assert_eq!(support["provider"], "twilio");
    assert_eq!(support["supports_outbound"], true);
    assert_eq!(support["assigned_agent"]["agent_id"], EL_AGENT_ULAW_ID);
    let spare = &items[1];
    assert!(spare.get("supports_outbound").is_none());
    assert!(spare["assigned_agent"].is_null());
    assert!(!a.body.contains(TWILIO_PROD_TOKEN));

    sim.update(|w| {
        let acct = w.elevenlabs.account_mut("workspace-prod").unwrap();
        acct.phone_numbers[2].provider = Some("plivo".into());
        acct.phone_numbers[1].provider = None;
    });
    let a = el(
        &sim,
        "/v1/convai/phone-numbers?provider=twilio",
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    let items = a.json();
    assert_eq!(items.as_array().unwrap().len(), 2);
    assert!(items[1].get("provider").is_none());
    let a = el(
        &sim,
        "/v1/convai/phone-numbers?provider=bogus",
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 422);
    assert_eq!(a.json()["detail"][0]["loc"], json!(["query", "provider"]));

    let a = el(
        &sim,
        &format!("/v1/convai/agents/{EL_AGENT_ULAW_ID}"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    let agent = a.json();
    assert_eq!(
        agent["conversation_config"]["tts"]["agent_output_audio_format"],
        "ulaw_8000"
    );
    assert_eq!(
        agent["conversation_config"]["asr"]["user_input_audio_format"],
        "ulaw_8000"
    );
    let a = el(
        &sim,
        &format!("/v1/convai/agents/{EL_AGENT_PCM_ID}"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(
        a.json()["conversation_config"]["tts"]["agent_output_audio_format"],
        "pcm_16000"
    );
    let a = el(
        &sim,
        &format!("/v1/convai/agents/{EL_UNKNOWN_AGENT_ID}"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            404,
            r#"{"detail":{"status":"agent_not_found","message":"Agent not found"}}"#
        )
    );
    // Agents of another workspace are invisible.
    let a = el(
        &sim,
        &format!("/v1/convai/agents/{EL_AGENT_PCM_ID}"),
        Some(EL_QUOTA_HIGH_KEY),
    )
    .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn el_agents_paging() {
    let sim = demo().await;
    let a = el(
        &sim,
        "/v1/convai/agents?page_size=1",
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    let page = a.json();
    assert_eq!(page["agents"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let a = el(
        &sim,
        &format!("/v1/convai/agents?page_size=1&cursor={cursor}"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    let page = a.json();
    assert_eq!(page["agents"][0]["agent_id"], EL_AGENT_PCM_ID);
    assert_eq!(page["has_more"], false);
    assert!(page["next_cursor"].is_null());
    let a = el(
        &sim,
        "/v1/convai/agents?page_size=101",
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 422);
}

#[tokio::test]
async fn el_signed_url_modes() {
    let sim = demo().await;
    let probe = format!("/v1/convai/conversation/get-signed-url?agent_id={EL_UNKNOWN_AGENT_ID}");

    let a = el(&sim, &probe, Some(EL_NO_CONVAI_WRITE_KEY)).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission convai_write to execute this operation."}}"#
    );
    let a = el(&sim, &probe, Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            404,
            r#"{"detail":{"status":"agent_not_found","message":"Agent not found"}}"#
        )
    );
    let a = el(
        &sim,
        "/v1/convai/conversation/get-signed-url",
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 422);
    assert_eq!(
        a.json(),
        json!({"detail": [{"type": "missing", "loc": ["query", "agent_id"], "msg": "Field required", "input": null}]})
    );
    assert!(sim.forbidden_requests().is_empty());

    sim.update(|w| w.elevenlabs.signed_url_mode = SignedUrlMode::LookupFirst);
    let a = el(&sim, &probe, Some(EL_NO_CONVAI_WRITE_KEY)).await;
    assert_eq!(a.status, 404);

    // The demo validates ids (400 `invalid_uid`) before this mode could answer 422.
    sim.update(|w| {
        w.elevenlabs.validate_agent_ids = false;
        w.elevenlabs.signed_url_mode = SignedUrlMode::RejectMalformed422;
    });
    let a = el(
        &sim,
        "/v1/convai/conversation/get-signed-url?agent_id=nope",
        Some(EL_NO_CONVAI_WRITE_KEY),
    )
    .await;
    assert_eq!(a.status, 422);
    let a = el(&sim, &probe, Some(EL_NO_CONVAI_WRITE_KEY)).await;
    assert_eq!(a.status, 401);

    // A real agent mints a URL, and is recorded as forbidden.
    let real = format!("/v1/convai/conversation/get-signed-url?agent_id={EL_AGENT_ULAW_ID}");
    let a = el(&sim, &real, Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 200);
    assert!(
        a.json()["signed_url"]
            .as_str()
            .unwrap()
            .starts_with("wss://")
    );
    let a = el(
        &sim,
        &format!("{probe}&include_conversation_id=true"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 404);
    let forbidden = sim.forbidden_requests();
    assert_eq!(forbidden.len(), 2);
    assert_eq!(
        forbidden[0].forbidden,
        Some("get-signed-url with a real agent id")
    );
    assert_eq!(
        forbidden[1].forbidden,
        Some("get-signed-url with include_conversation_id=true")
    );
}

#[tokio::test]
async fn el_outbound_call_is_modelled_and_forbidden() {
    let sim = demo().await;
    let post = |body: Value| {
        client()
            .post(format!(
                "{}/v1/convai/twilio/outbound-call",
                sim.elevenlabs_url()
            ))
            .header("xi-api-key", EL_AGENT_PROD_KEY)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let a = send(post(json!({}))).await;
    assert_eq!(a.status, 422);
    assert_eq!(a.json()["detail"].as_array().unwrap().len(), 3);

    let call = json!({"agent_id": EL_AGENT_ULAW_ID, "agent_phone_number_id": EL_PHONE_SUPPORT_ID, "to_number": "+15005550006"});
    let a = send(post(call.clone())).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["success"], true);

    sim.update(|w| {
        w.twilio
            .rotate_token(TWILIO_PROD_SID, "0123456789abcdef0123456789abcdef");
    });
    let a = send(post(call)).await;
    assert_eq!(
        a.json(),
        json!({"success": false, "message": "HTTP 401 error: Unable to create record: Authenticate", "conversation_id": null, "callSid": null})
    );
    let forbidden = sim.forbidden_requests();
    assert_eq!(forbidden.len(), 3);
    assert!(forbidden.iter().all(|r| r.method == "POST"));
    // Nothing changed in the world.
    assert_eq!(
        sim.world().elevenlabs.accounts["workspace-prod"]
            .phone_numbers
            .len(),
        3
    );
}

// ---------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tw_missing_and_wrong_credentials() {
    let sim = demo().await;
    let a = send(client().get(format!(
        "{}{}",
        sim.twilio_url(),
        acct(TWILIO_PROD_SID, "/IncomingPhoneNumbers.json")
    )))
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.header("www-authenticate"), "Basic realm=\"Twilio API\"");
    assert_eq!(
        a.json(),
        json!({"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authentication Error - No credentials provided", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );

    let path = acct(TWILIO_ROTATED_SID, "/IncomingPhoneNumbers.json");
    let a = tw(&sim, &path, TWILIO_ROTATED_SID, TWILIO_ROTATED_TOKEN).await;
    // Byte for byte the recorded fixture body.
    assert_eq!(a.body, recorded_body("tw-401-20003-authenticate"));
    assert_eq!(
        a.json(),
        json!({"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );
    sim.update(|w| w.twilio.empty_auth_detail = true);
    let a = tw(&sim, &path, TWILIO_ROTATED_SID, TWILIO_ROTATED_TOKEN).await;
    assert_eq!(a.json()["detail"], "");
    assert_eq!(
        tw(
            &sim,
            &path,
            TWILIO_ROTATED_SID,
            TWILIO_ROTATED_CURRENT_TOKEN
        )
        .await
        .status,
        200
    );

    let a = tw(&sim, &path, &format!(" {TWILIO_ROTATED_SID}"), "x").await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.json()["message"],
        "Authentication Error - invalid username"
    );
    let a = tw(&sim, &path, "someone@example.com", "x").await;
    assert_eq!(
        a.json()["message"],
        "Authentication Error - invalid username"
    );
}

#[tokio::test]
async fn tw_prod_account_reads() {
    let sim = demo().await;
    let (u, p) = (TWILIO_PROD_SID, TWILIO_PROD_TOKEN);
    let a = tw(&sim, &acct(u, "/IncomingPhoneNumbers.json"), u, p).await;
    assert_eq!(a.status, 200);
    assert!(a.header("twilio-request-id").starts_with("RQ"));
    assert!(is_hex(&a.header("twilio-request-id")[2..], 32));
    assert!(!a.header("twilio-concurrent-requests").is_empty());
    assert!(!a.header("twilio-request-duration").is_empty());
    assert_eq!(a.header("content-type"), "application/json");
    let page = a.json();
    assert_eq!(page["incoming_phone_numbers"].as_array().unwrap().len(), 3);
    assert!(page["next_page_uri"].is_null());
    assert!(page.get("total").is_none());
    let first = &page["incoming_phone_numbers"][0];
    assert!(first["sid"].as_str().unwrap().starts_with("PN"));
    assert_eq!(first["capabilities"]["voice"], true);
    assert_eq!(first["phone_number"], EL_PHONE_SUPPORT_NUMBER);

    let a = tw(&sim, &acct(u, "/Balance.json"), u, p).await;
    assert_eq!(
        a.json(),
        json!({"account_sid": TWILIO_PROD_SID, "balance": "42.17", "currency": "USD"})
    );
    let a = tw(&sim, &acct(u, "/OutgoingCallerIds.json"), u, p).await;
    assert_eq!(
        a.json()["outgoing_caller_ids"][0]["phone_number"],
        TWILIO_PROD_CALLER_ID
    );
    let a = tw(&sim, &acct(u, ".json"), u, p).await;
    let account = a.json();
    assert_eq!(account["status"], "active");
    assert_eq!(account["type"], "Full");
    assert_eq!(
        account["auth_token"],
        format!("{}{TWILIO_PROD_TOKEN}", twilio::AUTH_TOKEN_SENTINEL)
    );
    let a = tw(&sim, &acct(u, "/Keys.json"), u, p).await;
    assert_eq!(a.status, 200);
    assert!(sim.forbidden_requests().is_empty());

    let a = tw(
        &sim,
        &acct(TWILIO_TRIAL_SID, "/Balance.json"),
        TWILIO_TRIAL_SID,
        TWILIO_TRIAL_TOKEN,
    )
    .await;
    assert_eq!(a.json()["balance"], "0.85");
    sim.update(|w| w.twilio.account_mut(TWILIO_TRIAL_SID).unwrap().balance = None);
    let a = tw(
        &sim,
        &acct(TWILIO_TRIAL_SID, "/Balance.json"),
        TWILIO_TRIAL_SID,
        TWILIO_TRIAL_TOKEN,
    )
    .await;
    assert!(a.json()["balance"].is_null());
}

#[tokio::test]
async fn tw_key_kinds() {
    let sim = demo().await;
    let sid = TWILIO_STANDARD_ACCOUNT_SID;
    let (u, p) = (TWILIO_STANDARD_KEY_SID, TWILIO_STANDARD_KEY_SECRET);
    let a = tw(&sim, &acct(sid, "/IncomingPhoneNumbers.json"), u, p).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["incoming_phone_numbers"].as_array().unwrap().len(),
        2
    );
    for path in [acct(sid, ".json"), acct(sid, "/Keys.json")] {
        let a = tw(&sim, &path, u, p).await;
        assert_eq!((a.status, a.json()["code"].as_u64()), (401, Some(20003)));
    }
    // The key's SID in the path.
    let a = tw(&sim, &acct(u, "/IncomingPhoneNumbers.json"), u, p).await;
    assert_eq!((a.status, a.json()["code"].as_u64()), (400, Some(21470)));
    // A wrong secret.
    let a = tw(&sim, &acct(sid, "/IncomingPhoneNumbers.json"), u, "wrong").await;
    assert_eq!(a.status, 401);

    sim.update(|w| {
        w.twilio.account_mut(sid).unwrap().api_keys[0].kind = KeyKind::Restricted {
            can_read_numbers: false,
            can_read_balance: true,
        }
    });
    let a = tw(&sim, &acct(sid, "/IncomingPhoneNumbers.json"), u, p).await;
    assert_eq!((a.status, a.json()["code"].as_u64()), (403, Some(70051)));
    let a = tw(&sim, &acct(sid, "/Balance.json"), u, p).await;
    assert_eq!(a.status, 200);

    sim.update(|w| {
        w.twilio.account_mut(sid).unwrap().api_keys[0].kind = KeyKind::Main;
    });
    assert_eq!(tw(&sim, &acct(sid, ".json"), u, p).await.status, 200);
    sim.update(|w| {
        w.twilio.revoke_key(TWILIO_STANDARD_KEY_SID);
    });
    assert_eq!(tw(&sim, &acct(sid, ".json"), u, p).await.status, 401);
}

#[tokio::test]
async fn tw_suspended_and_test_credentials() {
    let sim = demo().await;
    let (u, p) = (TWILIO_SUSPENDED_SID, TWILIO_SUSPENDED_TOKEN);
    for path in [
        "/IncomingPhoneNumbers.json",
        "/Balance.json",
        "/OutgoingCallerIds.json",
    ] {
        let a = tw(&sim, &acct(u, path), u, p).await;
        assert_eq!(
            (a.status, a.json()["code"].as_u64()),
            (403, Some(20403)),
            "{path}"
        );
    }
    let a = tw(&sim, &acct(u, ".json"), u, p).await;
    assert_eq!(a.json()["status"], "suspended");

    sim.update(|w| {
        w.twilio
            .account_mut(TWILIO_PROD_SID)
            .unwrap()
            .test_auth_token = Some("testtoken0000000000000000000000".into())
    });
    let a = tw(
        &sim,
        &acct(TWILIO_PROD_SID, "/IncomingPhoneNumbers.json"),
        TWILIO_PROD_SID,
        "testtoken0000000000000000000000",
    )
    .await;
    assert_eq!((a.status, a.json()["code"].as_u64()), (403, Some(20008)));
}

#[tokio::test]
async fn tw_subaccounts_and_unknown_accounts() {
    let mut world = World::demo();
    let sub = twilio::sid_from("AC", "sub");
    world.twilio.add_account(
        TwilioAccount::new(sub.clone(), "5ub0000000000000000000000000000a")
            .with_parent(TWILIO_PROD_SID)
            .with_numbers(&["+14155550150"]),
    );
    let main_key = twilio::sid_from("SK", "main");
    world
        .twilio
        .account_mut(TWILIO_PROD_SID)
        .unwrap()
        .api_keys
        .push(ApiKey::new(
            main_key.clone(),
            "MainSecretMainSecretMainSecret12",
            KeyKind::Main,
        ));
    let sim = Simulator::start(world).await.unwrap();
    let (u, p) = (TWILIO_PROD_SID, TWILIO_PROD_TOKEN);

    let a = tw(&sim, &acct(&sub, "/IncomingPhoneNumbers.json"), u, p).await;
    assert_eq!(a.status, 200);
    let a = tw(&sim, &acct(&sub, "/Balance.json"), u, p).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json()["message"],
        format!("The requested resource /2010-04-01/Accounts/{sub}/Balance.json was not found")
    );
    let a = tw(&sim, &acct(&sub, ".json"), u, p).await;
    assert_eq!(a.json()["owner_account_sid"], TWILIO_PROD_SID);
    // Subaccount credentials on the parent.
    let a = tw(
        &sim,
        &acct(TWILIO_PROD_SID, "/IncomingPhoneNumbers.json"),
        &sub,
        "5ub0000000000000000000000000000a",
    )
    .await;
    assert_eq!((a.status, a.json()["code"].as_u64()), (401, Some(20003)));
    // Parent API keys (even Main) are denied on the subaccount.
    let a = tw(
        &sim,
        &acct(&sub, "/IncomingPhoneNumbers.json"),
        &main_key,
        "MainSecretMainSecretMainSecret12",
    )
    .await;
    assert_eq!(a.status, 401);
    // Unknown account with valid credentials.
    let unknown = twilio::sid_from("AC", "nobody");
    let path = acct(&unknown, "/IncomingPhoneNumbers.json");
    let a = tw(&sim, &path, u, p).await;
    // The recorded body (spacing included), quoting this request's path.
    assert_eq!(
        a.body,
        format!(
            r#"{{"code": 20404, "message": "The requested resource {path} was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}}"#
        )
    );
    // Another, unrelated, existing account looks the same.
    let a = tw(&sim, &acct(TWILIO_TRIAL_SID, "/Balance.json"), u, p).await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn tw_paging_over_many_numbers() {
    let mut world = World::demo();
    let sid = twilio::sid_from("AC", "big");
    world
        .twilio
        .add_account(TwilioAccount::new(sid.clone(), "b1g").with_generated_numbers(2500));
    let sim = Simulator::start(world).await.unwrap();

    let a = tw(&sim, &acct(&sid, "/IncomingPhoneNumbers.json"), &sid, "b1g").await;
    let page = a.json();
    assert_eq!(page["page_size"], 50);
    assert_eq!(page["incoming_phone_numbers"].as_array().unwrap().len(), 50);

    let mut next = Some(acct(&sid, "/IncomingPhoneNumbers.json?PageSize=1000"));
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    while let Some(uri) = next {
        let a = tw(&sim, &uri, &sid, "b1g").await;
        assert_eq!(a.status, 200, "{uri}: {}", a.body);
        let page = a.json();
        assert!(page.get("total").is_none());
        assert_eq!(page["page"], pages);
        for n in page["incoming_phone_numbers"].as_array().unwrap() {
            assert!(seen.insert(n["sid"].as_str().unwrap().to_owned()));
        }
        next = page["next_page_uri"].as_str().map(str::to_owned);
        if let Some(n) = &next {
            assert!(n.starts_with(&format!(
                "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?"
            )));
            assert!(n.contains("PageToken=PA") && n.contains("PageSize=1000"));
        }
        pages += 1;
    }
    assert_eq!((seen.len(), pages), (2500, 3));

    let a = tw(
        &sim,
        &acct(
            &sid,
            "/IncomingPhoneNumbers.json?PageSize=10&Page=1&PageToken=PAnope",
        ),
        &sid,
        "b1g",
    )
    .await;
    assert_eq!((a.status, a.json()["code"].as_u64()), (400, Some(21481)));
}

#[tokio::test]
async fn tw_forbidden_requests_change_nothing() {
    let sim = demo().await;
    let (u, p) = (TWILIO_PROD_SID, TWILIO_PROD_TOKEN);
    let a = tw(&sim, "/2010-04-01/Accounts.json", u, p).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["accounts"][0]["sid"], TWILIO_PROD_SID);
    for path in ["/Keys.json", "/IncomingPhoneNumbers.json", ".json"] {
        send(
            client()
                .post(format!("{}{}", sim.twilio_url(), acct(u, path)))
                .basic_auth(u, Some(p))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("Status=closed"),
        )
        .await;
    }
    let forbidden = sim.forbidden_requests();
    assert_eq!(forbidden.len(), 4);
    assert_eq!(
        forbidden[0].forbidden,
        Some("Accounts.json lists every subaccount's auth token")
    );
    let world = sim.world();
    let prod = &world.twilio.accounts[TWILIO_PROD_SID];
    assert!(prod.api_keys.is_empty());
    assert_eq!(prod.status, AccountStatus::Active);
    assert_eq!(prod.incoming_numbers.len(), 3);
    // Unknown resource under the account: allowed by auth, outside the allow-list.
    let a = tw(&sim, &acct(u, "/Calls.json"), u, p).await;
    assert_eq!(a.status, 404);
    assert_eq!(sim.forbidden_requests().len(), 5);
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fault_error_bodies() {
    let sim = demo().await;
    let sub = "/v1/user/subscription";
    let k = Some(EL_AGENT_PROD_KEY);
    let tw_path = acct(TWILIO_PROD_SID, "/Balance.json");
    let (u, p) = (TWILIO_PROD_SID, TWILIO_PROD_TOKEN);

    sim.update(|w| w.elevenlabs.fault = Some(Fault::ServerError));
    let a = el(&sim, sub, k).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            500,
            r#"{"detail":{"status":"something_went_wrong","message":"We are sorry, something went wrong. You are not charged for this request."}}"#
        )
    );
    sim.update(|w| w.elevenlabs.fault = Some(Fault::ServerErrorUnwrapped));
    assert_eq!(
        el(&sim, sub, k).await.body,
        r#"{"status":"internal_server_error","message":"Internal Server error. All such crashes are reported to us automatically."}"#
    );
    sim.update(|w| {
        w.elevenlabs.fault = Some(Fault::RateLimited {
            retry_after_secs: Some(7),
        })
    });
    let a = el(&sim, sub, k).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), "7");
    assert_eq!(a.json()["detail"]["status"], "too_many_concurrent_requests");
    sim.update(|w| w.elevenlabs.fault = Some(Fault::SystemBusy));
    assert_eq!(
        el(&sim, sub, k).await.json()["detail"]["status"],
        "system_busy"
    );
    sim.update(|w| w.elevenlabs.fault = Some(Fault::RateLimitExceededNew));
    assert_eq!(
        el(&sim, sub, k).await.json()["detail"]["code"],
        "rate_limit_exceeded"
    );
    sim.update(|w| w.elevenlabs.fault = Some(Fault::CloudflareHtml));
    let a = el(&sim, sub, k).await;
    assert_eq!(a.status, 403);
    assert!(a.header("content-type").starts_with("text/html"));
    assert!(a.body.contains("<title>Just a moment...</title>"));
    sim.update(|w| w.elevenlabs.fault = Some(Fault::BadGatewayHtml));
    let a = el(&sim, sub, k).await;
    assert_eq!(a.status, 502);
    assert!(a.header("content-type").starts_with("text/html"));
    sim.update(|w| w.elevenlabs.fault = Some(Fault::StringDetail404));
    assert_eq!(el(&sim, sub, k).await.body, r#"{"detail":"Not Found"}"#);
    sim.update(|w| w.elevenlabs.fault = Some(Fault::FastApi422));
    assert!(el(&sim, sub, k).await.json()["detail"].is_array());
    sim.update(|w| w.elevenlabs.fault = Some(Fault::EmptyBody500));
    let a = el(&sim, sub, k).await;
    assert_eq!((a.status, a.body.as_str()), (500, ""));
    sim.update(|w| {
        w.elevenlabs.fault = Some(Fault::Redirect {
            location: "http://elsewhere.invalid/v1/user".into(),
        })
    });
    let a = el(&sim, sub, k).await;
    assert_eq!(a.status, 302);
    assert_eq!(a.header("location"), "http://elsewhere.invalid/v1/user");

    sim.update(|w| w.twilio.fault = Some(Fault::ServerError));
    let a = tw(&sim, &tw_path, u, p).await;
    assert_eq!((a.status, a.json()["code"].as_u64()), (500, Some(20500)));
    sim.update(|w| {
        w.twilio.fault = Some(Fault::RateLimited {
            retry_after_secs: None,
        })
    });
    let a = tw(&sim, &tw_path, u, p).await;
    assert_eq!(
        a.body,
        r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#
    );
    sim.update(|w| w.twilio.rate_limit_casing = RateLimitCasing::SentenceCase);
    let a = tw(&sim, &tw_path, u, p).await;
    assert_eq!(a.json()["message"], "Too many requests");
    assert_eq!(
        a.json()["detail"],
        "Too many requests for the associated account being sent."
    );
}

#[tokio::test]
async fn fault_body_corruption() {
    let sim = demo().await;
    let sub = "/v1/user/subscription";
    let k = Some(EL_AGENT_PROD_KEY);

    sim.update(|w| w.elevenlabs.fault = Some(Fault::MalformedJson));
    let a = el(&sim, sub, k).await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<Value>(&a.body).is_err());

    sim.update(|w| w.elevenlabs.fault = Some(Fault::WrongTypes));
    let s = el(&sim, sub, k).await.json();
    assert!(s["character_count"].is_string());
    assert!(s["tier"].is_number());

    sim.update(|w| w.elevenlabs.fault = Some(Fault::InvalidUtf8));
    let resp = client()
        .get(format!("{}{sub}", sim.elevenlabs_url()))
        .header("xi-api-key", EL_AGENT_PROD_KEY)
        .send()
        .await
        .unwrap();
    let bytes = resp.bytes().await.unwrap();
    assert!(std::str::from_utf8(&bytes).is_err());

    let size = 5 * 1024 * 1024 + 3;
    sim.update(|w| w.elevenlabs.fault = Some(Fault::Oversized { bytes: size }));
    let resp = client()
        .get(format!("{}{sub}", sim.elevenlabs_url()))
        .header("xi-api-key", EL_AGENT_PROD_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(size as u64));
    assert_eq!(resp.bytes().await.unwrap().len(), size);
}

#[tokio::test]
async fn fault_transport_misbehaviour() {
    let sim = demo().await;
    let url = format!(
        "{}{}",
        sim.twilio_url(),
        acct(TWILIO_PROD_SID, "/Balance.json")
    );
    let get = || {
        client()
            .get(&url)
            .basic_auth(TWILIO_PROD_SID, Some(TWILIO_PROD_TOKEN))
    };

    sim.update(|w| w.twilio.fault = Some(Fault::Hang));
    let err = get()
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(
        sim.requests().len(),
        1,
        "a hanging request is still recorded"
    );

    sim.update(|w| w.twilio.fault = Some(Fault::Trickle));
    let resp = get().send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(Duration::from_millis(1500), resp.bytes()).await;
    assert!(body.is_err(), "the body must not arrive in time");

    sim.update(|w| w.twilio.fault = Some(Fault::ResetMidBody));
    let resp = get().send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());

    // Per-account faults hit only that account; the world fault wins.
    sim.update(|w| {
        w.twilio.fault = None;
        w.twilio.account_mut(TWILIO_PROD_SID).unwrap().fault = Some(Fault::SystemBusy);
    });
    assert_eq!(send(get()).await.status, 503);
    let trial = tw(
        &sim,
        &acct(TWILIO_TRIAL_SID, "/Balance.json"),
        TWILIO_TRIAL_SID,
        TWILIO_TRIAL_TOKEN,
    )
    .await;
    assert_eq!(trial.status, 200);
    sim.update(|w| w.twilio.fault = Some(Fault::EmptyBody500));
    assert_eq!(send(get()).await.status, 500);
}

/// Polls `done` until it holds, failing after a generous bound (this is a
/// wait for a condition, not a speed assertion).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// hyper drops a pending handler (and its in-flight guard) when it sees the
/// client close the connection, even while the handler hangs on purpose.
#[tokio::test]
async fn a_hung_request_stops_counting_as_in_flight_when_the_client_hangs_up() {
    let sim = demo().await;
    sim.update(|w| {
        w.twilio.fault = Some(Fault::Hang);
        w.elevenlabs.fault = Some(Fault::Hang);
    });
    let requests = [
        (
            "twilio",
            client()
                .get(format!(
                    "{}{}",
                    sim.twilio_url(),
                    acct(TWILIO_PROD_SID, "/Balance.json")
                ))
                .basic_auth(TWILIO_PROD_SID, Some(TWILIO_PROD_TOKEN)),
        ),
        (
            "elevenlabs",
            client()
                .get(format!("{}/v1/user/subscription", sim.elevenlabs_url()))
                .header("xi-api-key", EL_AGENT_PROD_KEY),
        ),
    ];
    for (upstream, request) in requests {
        // The client sends, the simulator hangs, the client gives up (as
        // credwatch does when its timeout fires) and closes the connection.
        let client_side = tokio::spawn(request.send());
        wait_until(&format!("{upstream:?} counts the hung request"), || {
            sim.in_flight(upstream) == 1
        })
        .await;
        client_side.abort();
        let _ = client_side.await;
        wait_until(&format!("{upstream:?} stops counting it"), || {
            sim.in_flight(upstream) == 0
        })
        .await;
        assert_eq!(sim.take_max_in_flight(upstream), 1);
        assert_eq!(sim.take_max_in_flight(upstream), 0, "{upstream:?}");
    }
}

/// With [`Simulator::set_hang_counted_for`], a hung request stops counting
/// after the limit while its client still waits, so the client's next
/// request in that slot can never be counted next to it.
#[tokio::test]
async fn a_hung_request_counts_only_as_long_as_set() {
    let sim = demo().await;
    sim.update(|w| w.elevenlabs.key_mut(EL_QUOTA_HIGH_KEY).unwrap().fault = Some(Fault::Hang));
    sim.set_hang_counted_for(Some(Duration::from_millis(50)));
    let c = client();
    let url = format!("{}/v1/user/subscription", sim.elevenlabs_url());
    let hung = tokio::spawn(c.get(&url).header("xi-api-key", EL_QUOTA_HIGH_KEY).send());
    wait_until("the hung request is counted", || sim.request_count() == 1).await;
    wait_until("the hung request is no longer counted", || {
        sim.in_flight("elevenlabs") == 0
    })
    .await;
    assert!(!hung.is_finished(), "the request still hangs");
    assert_eq!(sim.take_max_in_flight("elevenlabs"), 1);

    // The client gives up and sends its next request in the freed slot:
    // one request out at a time, one counted.
    hung.abort();
    let next = c
        .get(&url)
        .header("xi-api-key", EL_AGENT_PROD_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
    assert_eq!(sim.take_max_in_flight("elevenlabs"), 1);
}

#[tokio::test]
async fn per_key_fault_and_latency() {
    let sim = demo().await;
    sim.update(|w| {
        let key = w.elevenlabs.key_mut(EL_QUOTA_HIGH_KEY).unwrap();
        key.fault = Some(Fault::ServerError);
        key.latency = Duration::from_millis(200);
    });
    let started = Instant::now();
    assert_eq!(
        el(&sim, "/v1/user", Some(EL_QUOTA_HIGH_KEY)).await.status,
        500
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        el(&sim, "/v1/user", Some(EL_AGENT_PROD_KEY)).await.status,
        200
    );
}

// ---------------------------------------------------------------------------
// Simulator plumbing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn request_log_and_runtime_updates() {
    let sim = demo().await;
    el(&sim, "/v1/models?x=1", Some(EL_AGENT_PROD_KEY)).await;
    let r = &sim.requests()[0];
    assert_eq!(r.upstream, "elevenlabs");
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/models"));
    assert_eq!(r.query.as_deref(), Some("x=1"));
    assert_eq!(r.header("xi-api-key"), Some(EL_AGENT_PROD_KEY));

    sim.update(|w| {
        w.elevenlabs.revoke_key(EL_AGENT_PROD_KEY);
    });
    assert_eq!(
        el(&sim, "/v1/models", Some(EL_AGENT_PROD_KEY)).await.status,
        401
    );
    assert_eq!(sim.request_count(), 2);
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    assert_eq!(sim.request_count(), 2);

    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{TWILIO_PROD_SID}:{TWILIO_PROD_TOKEN}"));
    let a = send(
        client()
            .get(format!(
                "{}{}",
                sim.twilio_url(),
                acct(TWILIO_PROD_SID, "/Balance.json")
            ))
            .header("Authorization", format!("Basic {auth}")),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(sim.requests()[0].upstream, "twilio");
}

#[test]
fn request_log_is_bounded() {
    let shared = Inner::new(World::default());
    let request = |forbidden| RecordedRequest {
        upstream: "twilio",
        method: "GET".into(),
        path: "/".into(),
        query: None,
        headers: Vec::new(),
        at: SystemTime::now(),
        forbidden,
    };
    for _ in 0..REQUEST_LOG_CAPACITY + 10 {
        shared.record(request(None));
    }
    shared.record(request(Some("test")));
    let log = shared.log.lock().unwrap();
    assert_eq!(log.all.len(), REQUEST_LOG_CAPACITY);
    assert_eq!(log.forbidden.len(), 1);
    assert_eq!(
        shared.count.load(Ordering::Relaxed),
        REQUEST_LOG_CAPACITY as u64 + 11
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_and_shutdown() {
    let sim = demo().await;
    let c = client();
    let url = format!("{}/v1/user/subscription", sim.elevenlabs_url());
    let tasks: Vec<_> = (0..400)
        .map(|_| {
            let req = c.get(&url).header("xi-api-key", EL_AGENT_PROD_KEY);
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    assert_eq!(sim.request_count(), 400);

    let el_url = sim.elevenlabs_url();
    sim.shutdown().await;
    let err = client()
        .get(format!("{el_url}/v1/user"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(err.is_err());
}

#[tokio::test]
async fn malformed_requests_never_panic() {
    let sim = demo().await;
    for path in [
        "/v1/convai/conversation/get-signed-url?agent_id=%zz&include_conversation_id=%",
        "/v1/convai/agents?page_size=abc",
        "/v1/convai/agents?cursor=%E2%82",
        "/v1/convai/phone-numbers/%00",
    ] {
        let a = el(&sim, path, Some(EL_AGENT_PROD_KEY)).await;
        assert!(a.status >= 200, "{path}");
    }
    for auth in [
        "Basic",
        "Basic !!!!",
        "Basic Og==",
        "Bearer x",
        "basic YWJj",
    ] {
        let a = send(
            client()
                .get(format!(
                    "{}{}",
                    sim.twilio_url(),
                    acct(TWILIO_PROD_SID, ".json")
                ))
                .header("Authorization", auth),
        )
        .await;
        assert_eq!(a.status, 401, "{auth}");
    }
    for path in [
        "/2010-04-01/Accounts/",
        "/2010-04-01/Accounts//Balance.json",
        "/2010-04-01/Accounts/null/Messages.json",
        "/",
    ] {
        let a = tw(&sim, path, TWILIO_PROD_SID, TWILIO_PROD_TOKEN).await;
        assert!(a.status >= 400, "{path}");
    }
    // The servers are still up.
    assert_eq!(
        el(&sim, "/v1/models", Some(EL_AGENT_PROD_KEY)).await.status,
        200
    );
}

#[tokio::test]
async fn concurrency_headers_are_optional() {
    let sim = demo().await;
    let a = el(&sim, "/v1/models", Some(EL_AGENT_PROD_KEY)).await;
    assert!(a.headers.get("maximum-concurrent-requests").is_none());
    sim.update(|w| w.elevenlabs.concurrency_headers = true);
    let a = el(&sim, "/v1/models", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.header("maximum-concurrent-requests"), "5");
    assert_eq!(a.header("current-concurrent-requests"), "1");
}

#[test]
fn demo_secrets_have_real_shapes() {
    for sid in [
        TWILIO_PROD_SID,
        TWILIO_ROTATED_SID,
        TWILIO_STANDARD_ACCOUNT_SID,
        TWILIO_TRIAL_SID,
        TWILIO_SUSPENDED_SID,
    ] {
        assert!(sid.starts_with("AC") && is_hex(&sid[2..], 32), "{sid}");
    }
    assert!(TWILIO_STANDARD_KEY_SID.starts_with("SK") && is_hex(&TWILIO_STANDARD_KEY_SID[2..], 32));
    for token in [
        TWILIO_PROD_TOKEN,
        TWILIO_ROTATED_TOKEN,
        TWILIO_ROTATED_CURRENT_TOKEN,
        TWILIO_TRIAL_TOKEN,
        TWILIO_SUSPENDED_TOKEN,
    ] {
        assert!(is_hex(token, 32), "{token}");
    }
    assert_ne!(TWILIO_ROTATED_TOKEN, TWILIO_ROTATED_CURRENT_TOKEN);
    for key in [
        EL_AGENT_PROD_KEY,
        EL_NO_CONVAI_WRITE_KEY,
        EL_REVOKED_KEY,
        EL_QUOTA_EXHAUSTED_KEY,
        EL_QUOTA_HIGH_KEY,
        EL_RESTRICTED_KEY,
        EL_BLOCKED_KEY,
    ] {
        assert!(key.starts_with("sk_demo") && key.len() == 51, "{key}");
    }
    let world = World::demo();
    assert!(!world.elevenlabs.keys.contains_key(EL_REVOKED_KEY));
    assert_eq!(world.elevenlabs.keys.len(), 6);
    assert_eq!(world.twilio.accounts.len(), 5);
}

// ---------------------------------------------------------------------------
// Unfavourable branches (issue #9, point 8) and corpus-served bodies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn el_agent_ids_are_validated_when_switched_on() {
    let sim = demo().await;
    let probe = |id: &str| format!("/v1/convai/conversation/get-signed-url?agent_id={id}");
    let malformed = "agent_credwatchprobe00000000000000";
    // Off (the default outside the demo): the lookup simply fails.
    sim.update(|w| w.elevenlabs.validate_agent_ids = false);
    let a = el(&sim, &probe(malformed), Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 404);

    sim.update(|w| w.elevenlabs.validate_agent_ids = true);
    for key in [EL_AGENT_PROD_KEY, EL_NO_CONVAI_WRITE_KEY] {
        let a = el(&sim, &probe(malformed), Some(key)).await;
        assert_eq!(a.status, 400, "{key}");
        assert_eq!(
            a.body,
            format!(
                r#"{{"detail":{{"status":"invalid_uid","message":"An invalid ID has been received: '{malformed}'. Make sure to provide a correct one."}}}}"#
            )
        );
    }
    // Current (28) and older (26) forms pass validation.
    let zeros = format!("agent_{}", "0".repeat(28));
    let a = el(&sim, &probe(&zeros), Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 404, "{}", a.body);
    let a = el(&sim, &probe(&zeros), Some(EL_NO_CONVAI_WRITE_KEY)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    let a = el(
        &sim,
        &probe("agent_01jw1xvxkzfxhav8rsrx1kyckw"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 404, "{}", a.body);
    // Letters outside the alphabet (i, l, o, u), wrong lengths, other prefixes.
    for bad in [
        "agent_000000000000000000000000000i",
        "agent_0000000000000000000000000000000",
        "agent_000000000000000000000000000U",
        "J3Pbu5gP6NNKBscdCdwB",
    ] {
        let a = el(&sim, &probe(bad), Some(EL_AGENT_PROD_KEY)).await;
        assert_eq!(a.status, 400, "{bad}");
        assert_eq!(a.json()["detail"]["status"], "invalid_uid");
    }
    let a = el(&sim, "/v1/convai/agents/nope", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(a.status, 400);
    let a = el(
        &sim,
        &format!("/v1/convai/agents/{EL_AGENT_ULAW_ID}"),
        Some(EL_AGENT_PROD_KEY),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn el_a_block_on_generation_only_leaves_reads_answering_200() {
    let sim = demo().await;
    sim.update(|w| {
        let account = w.elevenlabs.account_mut("workspace-blocked").unwrap();
        account.block_scope = BlockScope::GenerationOnly;
        account.subscription.status = SubscriptionStatus::Active;
    });
    let a = el(&sim, "/v1/user/subscription", Some(EL_BLOCKED_KEY)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["status"], "active");
    // The outbound call (a generation) still sees the block.
    let a = send(
        client()
            .post(format!(
                "{}/v1/convai/twilio/outbound-call",
                sim.elevenlabs_url()
            ))
            .header("xi-api-key", EL_BLOCKED_KEY)
            .header("content-type", "application/json")
            .body(
                json!({"agent_id": "a", "agent_phone_number_id": "p", "to_number": "+1"})
                    .to_string(),
            ),
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.body, recorded_body("el-401-detected-unusual-activity"));
}

#[tokio::test]
async fn el_blocks_and_errors_are_the_recorded_bodies() {
    let sim = demo().await;
    let a = el(&sim, "/v1/user/subscription", Some(EL_BLOCKED_KEY)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (401, recorded_body("el-401-detected-unusual-activity"))
    );
    let a = el(&sim, "/v1/user/subscription", Some(EL_REVOKED_KEY)).await;
    assert_eq!(a.body, recorded_body("el-401-invalid-api-key"));
    let a = el(&sim, "/v1/user/subscription", Some(EL_AGENT_PROD_KEY_ID)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, recorded_body("el-400-key-id-used-as-key"))
    );
    let a = el(&sim, "/v1/user/subscription", Some(EL_RESTRICTED_KEY)).await;
    assert_eq!(
        a.body,
        recorded_body("el-401-missing-permissions-user-read")
    );
    sim.update(|w| w.elevenlabs.fault = Some(Fault::ServerErrorUnwrapped));
    let a = el(&sim, "/v1/user/subscription", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(
        a.body,
        recorded_body("el-500-internal-server-error-unwrapped")
    );
    sim.update(|w| w.elevenlabs.fault = Some(Fault::CloudflareHtml));
    let a = el(&sim, "/v1/user/subscription", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (403, recorded_body("el-403-cloudflare-challenge"))
    );
    sim.update(|w| {
        w.elevenlabs.fault = Some(Fault::RateLimited {
            retry_after_secs: None,
        })
    });
    let a = el(&sim, "/v1/user/subscription", Some(EL_AGENT_PROD_KEY)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (429, recorded_body("el-429-too-many-concurrent-requests"))
    );
}

#[tokio::test]
async fn tw_inactive_accounts_answer_as_switched() {
    let sim = demo().await;
    let (u, p) = (TWILIO_SUSPENDED_SID, TWILIO_SUSPENDED_TOKEN);
    sim.update(|w| {
        w.twilio.account_mut(u).unwrap().inactive_answer = InactiveAnswer::Authenticate20003
    });
    for path in ["/IncomingPhoneNumbers.json", "/Balance.json", ".json"] {
        let a = tw(&sim, &acct(u, path), u, p).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (401, recorded_body("tw-401-20003-authenticate")),
            "{path}"
        );
        assert_eq!(a.header("www-authenticate"), "Basic realm=\"Twilio API\"");
    }
    for status in [401, 403] {
        sim.update(|w| {
            w.twilio.account_mut(u).unwrap().inactive_answer = InactiveAnswer::NotActive20005 {
                http_status: status,
            }
        });
        for path in ["/IncomingPhoneNumbers.json", ".json"] {
            let a = tw(&sim, &acct(u, path), u, p).await;
            assert_eq!(
                (a.status, a.json()["code"].as_u64()),
                (status, Some(20005)),
                "{path}"
            );
            assert_eq!(a.json()["message"], "Account not active");
        }
    }
    // An active account is not affected by the switch.
    sim.update(|w| {
        w.twilio
            .account_mut(TWILIO_PROD_SID)
            .unwrap()
            .inactive_answer = InactiveAnswer::Authenticate20003
    });
    let a = tw(
        &sim,
        &acct(TWILIO_PROD_SID, "/IncomingPhoneNumbers.json"),
        TWILIO_PROD_SID,
        TWILIO_PROD_TOKEN,
    )
    .await;
    assert_eq!(a.status, 200);
}

/// The names a config section lists (`  - name: …`), in order.
fn section_names(section: &str) -> Vec<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("  - name: "))
        .map(str::to_owned)
        .collect()
}

/// Each fake's demo cast names exactly the credentials of its demo section,
/// in order, and the call-path cast the paths of the `call_paths:` section:
/// the cast the tests and the README are held to is the demo's.
#[test]
fn the_demo_cast_is_the_demo_config() {
    for fake in FAKES {
        let section = fake.demo_section("http://127.0.0.1:1");
        assert!(
            section.starts_with(&format!("{}:\n", fake.name())),
            "{section}"
        );
        let cast: Vec<String> = fake.demo_cast().iter().map(|c| c.name.into()).collect();
        assert_eq!(section_names(&section), cast, "{}", fake.name());
        for c in fake.demo_cast() {
            assert_eq!(
                c.reason.is_some(),
                c.status == "unhealthy",
                "{c:?}: a reason exactly when unhealthy"
            );
        }
    }
    let paths: Vec<String> = CALL_PATHS.iter().map(|p| p.name.into()).collect();
    assert_eq!(section_names(&call_paths_section()), paths);
    for p in CALL_PATHS {
        assert_eq!(p.problems.is_empty(), p.status == "ready", "{p:?}");
    }
}

#[tokio::test]
async fn the_demo_config_points_every_section_at_its_fake() {
    let sim = demo().await;
    let config = config_yaml(&sim);
    for (name, url) in sim.urls() {
        assert_eq!(sim.url_for(name).as_deref(), Some(url.as_str()));
        assert!(
            config.contains(&format!("{name}:\n")),
            "{name} has no section: {config}"
        );
        assert!(config.contains(&format!("base_url: {url}\n")), "{config}");
    }
    assert_eq!(sim.url_for("acme"), None);
}

/// Each fake's list of what a read-only prober may send
/// ([`Fake::read_only_check`], by hand from the reference) admits every
/// request credwatch makes and refuses the calls it must never make.
#[test]
fn the_reference_list_refuses_calls_credwatch_must_never_make() {
    let allowed = |r: &RecordedRequest| -> Result<(), String> {
        match FAKES.iter().find(|f| f.name() == r.upstream) {
            Some(f) => f.read_only_check(r),
            None => Err(format!("no fake `{}`", r.upstream)),
        }
    };
    let request = |upstream, method: &str, target: &str| {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        RecordedRequest {
            upstream,
            method: method.into(),
            path,
            query,
            headers: Vec::new(),
            at: std::time::SystemTime::now(),
            forbidden: None,
        }
    };
    let ac = TWILIO_PROD_SID;
    for target in [
        "/v1/user/subscription",
        "/v1/user",
        "/v1/models",
        "/v1/convai/agents?page_size=1",
        "/v1/convai/agents/agent_ulawready0000000000000000000",
        "/v1/convai/phone-numbers?provider=twilio",
        "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000",
    ] {
        let r = request("elevenlabs", "GET", target);
        assert_eq!(allowed(&r), Ok(()), "{target}");
    }
    for target in [
        format!("/2010-04-01/Accounts/{ac}.json"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000"),
        format!(
            "/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000&Page=1&PageToken=PAPN0123"
        ),
        format!(
            "/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PhoneNumber=%2B15005550006&PageSize=20"
        ),
        format!(
            "/2010-04-01/Accounts/{ac}/OutgoingCallerIds.json?PhoneNumber=%2B15005550006&PageSize=20"
        ),
        format!("/2010-04-01/Accounts/{ac}/Balance.json"),
    ] {
        let r = request("twilio", "GET", &target);
        assert_eq!(allowed(&r), Ok(()), "{target}");
    }
    for target in [
        "/v1/convai/conversation/get-signed-url?agent_id=agent_ulawready0000000000000000000",
        "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include_conversation_id=true",
        "/v1/convai/conversation/get-signed-url",
        "/v1/convai/conversation/token?agent_id=agent_0000000000000000000000000000",
        "/v1/convai/twilio/outbound-call",
        "/v1/workspaces/api-keys/disable?api_key_name=self",
        "/v1/convai/agents?page_size=100",
        "/v1/convai/phone-numbers",
        "/v1/convai/phone-numbers/phnum_ready?x=1",
        "/v1/text-to-speech/voice",
        "/v1/user?x=1",
    ] {
        let r = request("elevenlabs", "GET", target);
        assert!(allowed(&r).is_err(), "{target} must be refused");
    }
    for target in [
        "/2010-04-01/Accounts.json".to_string(),
        format!("/2010-04-01/Accounts/{ac}/Keys.json"),
        format!("/2010-04-01/Accounts/{ac}/Calls.json"),
        format!("/2010-04-01/Accounts/{ac}/Messages.json"),
        format!("/2010-04-01/Accounts/{ac}/Tokens.json"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000&PageSize=1"),
        format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json?PageSize=1000&Beta=false"),
        format!("/2010-04-01/Accounts/{ac}/OutgoingCallerIds.json?PageSize=1000"),
        format!("/2010-04-01/Accounts/{ac}/Balance.json?PageSize=1"),
        "/2010-04-01/Accounts/ACnothex/Balance.json".to_string(),
        "/2010-04-01/Accounts/SK0123456789abcdef0123456789abcdef.json".to_string(),
    ] {
        let r = request("twilio", "GET", &target);
        assert!(allowed(&r).is_err(), "{target} must be refused");
    }
    // The same paths on the other provider are not allowed either.
    let r = request("twilio", "GET", "/v1/user");
    assert!(allowed(&r).is_err());
    // Nor another method, nor a request without the upstream's own auth.
    let r = request("elevenlabs", "POST", "/v1/user");
    assert!(allowed(&r).is_err());
    for fake in FAKES {
        let r = request(fake.name(), "GET", "/");
        assert!(fake.auth_check(&r).is_err(), "{}", fake.name());
    }
}
