//! `check` on Twilio credentials: every cause explained.

use super::*;

/// One Twilio account per cause in the simulator's world, each with the
/// credential that meets it; returns the `twilio:` items.
fn tw_causes(s: &mut Scenario) -> Vec<Item> {
    let url = s.tw_url();
    let mut w = World::default();
    let mut items = Vec::new();

    // Wrong token: the account's token was rotated.
    let sid = ac_sid("chk-wrong-token");
    w.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("chk-current")).with_numbers(&["+15005550001"]),
    );
    items.push(tw_item(
        "tw-wrong-token",
        &sid,
        &s.secret(&tw_token("chk-old")),
        &url,
    ));

    // Test credentials.
    let sid = ac_sid("chk-test-creds");
    let test_token = tw_token("chk-test-creds-test");
    let mut account = TwilioAccount::new(&sid, tw_token("chk-test-creds-live"));
    account.test_auth_token = Some(test_token.clone());
    w.twilio.add_account(account);
    items.push(tw_item(
        "tw-test-credentials",
        &sid,
        &s.secret(&test_token),
        &url,
    ));

    // A Standard API key: may not read the account.
    let sid = ac_sid("chk-standard");
    let (key_sid, secret) = (sk_sid("chk-standard"), tw_key_secret("chk-standard"));
    w.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("chk-standard"))
            .with_numbers(&["+15005550011", "+15005550012"])
            .with_balance(Some("18.03"), "USD")
            .with_key(ApiKey::new(&key_sid, &secret, KeyKind::Standard)),
    );
    items.push(tw_key_item(
        "tw-standard-key",
        &sid,
        &key_sid,
        &s.secret(&secret),
        &url,
    ));

    // The parent's Main key used on a subaccount.
    let parent = ac_sid("chk-parent");
    let sub = ac_sid("chk-sub");
    let (key_sid, secret) = (sk_sid("chk-parent-main"), tw_key_secret("chk-parent-main"));
    w.twilio.add_account(
        TwilioAccount::new(&parent, tw_token("chk-parent")).with_key(ApiKey::new(
            &key_sid,
            &secret,
            KeyKind::Main,
        )),
    );
    w.twilio.add_account(
        TwilioAccount::new(&sub, tw_token("chk-sub"))
            .with_parent(&parent)
            .with_numbers(&["+15005550021"]),
    );
    items.push(tw_key_item(
        "tw-parent-key",
        &sub,
        &key_sid,
        &s.secret(&secret),
        &url,
    ));

    // A suspended account.
    let sid = ac_sid("chk-suspended");
    let token = tw_token("chk-suspended");
    w.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_status(AccountStatus::Suspended)
            .with_numbers(&["+15005550031"]),
    );
    items.push(tw_item("tw-suspended", &sid, &s.secret(&token), &url));

    // A Main key with another account's SID.
    let own = ac_sid("chk-own");
    let other = ac_sid("chk-other");
    let (key_sid, secret) = (sk_sid("chk-own"), tw_key_secret("chk-own"));
    w.twilio.add_account(
        TwilioAccount::new(&own, tw_token("chk-own")).with_key(ApiKey::new(
            &key_sid,
            &secret,
            KeyKind::Main,
        )),
    );
    w.twilio
        .add_account(TwilioAccount::new(&other, tw_token("chk-other")));
    items.push(tw_key_item(
        "tw-wrong-account-sid",
        &other,
        &key_sid,
        &s.secret(&secret),
        &url,
    ));

    s.sim.update(|world| *world = w);
    items
}

/// The liveness request of an account, as the evidence names it.
fn numbers_request(sid: &str) -> String {
    format!("GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_causes_are_explained() {
    let mut s = Scenario::start(World::default()).await;
    let items = tw_causes(&mut s);
    s.write(&Doc::new().extend("twilio", items).render());
    let wrong_token = ac_sid("chk-wrong-token");
    let test_creds = ac_sid("chk-test-creds");
    let standard = ac_sid("chk-standard");
    let sub = ac_sid("chk-sub");
    let suspended = ac_sid("chk-suspended");
    let other = ac_sid("chk-other");
    let cases = [
        Case {
            credential: "tw-wrong-token",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "b17b2f527392",
            finding: "twilio_authenticate",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&wrong_token),
            http_status: Some(401),
            upstream_code: Some("20003"),
            request_id: Some("RQ"),
            fix: &[
                "rotated",
                "Auth Token",
                "fingerprint b17b2f527392",
                "sha256sum",
                "re-import",
            ],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-wrong-token (twilio): invalid_credentials\n",
                    "    ✗ Twilio rejected the credentials (401, code 20003 Authenticate): rotated, deleted, or the account was suspended or closed.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 401, code 20003, request id RQ…\n",
                    "      fix: Twilio's 20003 page lists both kinds of cause. The credential: the Auth Token was rotated or deleted (Console → Account → API keys & tokens; promoting the secondary Auth Token deletes the old primary); the SID and the Auth Token belong to different accounts (live vs test, parent vs subaccount {sid}: here it needs its own Auth Token, since credwatch sends an Auth Token with the Account SID it checks and so cannot use the parent's — parent API keys cannot reach subaccounts); an API key from another region. The account: suspended or closed (check Console → Billing, or log in to the Console). Compare fingerprint b17b2f527392 with `printf %s \"$TOKEN\" | sha256sum | cut -c1-12` of the value in the Console, then put the current value in the config file. If ElevenLabs holds the same Auth Token for imported numbers, re-import them too. (evidence: docs/upstream-evidence.md#twilio-20003)\n",
                    "      (fingerprint b17b2f527392)\n",
                ),
                sid = wrong_token
            ),
        },
        Case {
            credential: "tw-test-credentials",
            exit: 1,
            // Test credentials authenticate but read nothing: neither valid nor invalid.
            verdict: ("pending", None, None),
            fingerprint: "476e8c7c77a8",
            finding: "unexpected_response",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&test_creds),
            http_status: Some(403),
            upstream_code: Some("20008"),
            request_id: Some("RQ"),
            fix: &["test credentials", "live Account SID"],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-test-credentials (twilio): no verdict: no answer credwatch can classify (`phone_numbers`)\n",
                    "    ✗ No verdict: test credentials (20008): Twilio answers them for nothing credwatch may read, so they can be neither confirmed nor rejected.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 403, code 20008, request id RQ…\n",
                    "      fix: These are Twilio test credentials: Twilio accepts them only to simulate buying numbers, sending messages and placing calls, and answers 403 to every other request, so credwatch cannot tell whether they work. Monitor the live Account SID and Auth Token (Console → Account → API keys & tokens) instead. (evidence: docs/upstream-evidence.md#twilio-20008)\n",
                    "      (fingerprint 476e8c7c77a8)\n",
                ),
                sid = test_creds
            ),
        },
        Case {
            credential: "tw-standard-key",
            exit: 0,
            verdict: ("healthy", None, Some(true)),
            fingerprint: "328a6b665ec5",
            finding: "standard_key",
            severity: "info",
            check: "account",
            request: format!("GET /2010-04-01/Accounts/{standard}.json"),
            http_status: Some(401),
            upstream_code: Some("20003"),
            request_id: Some("RQ"),
            fix: &["Main API key", "Auth Token"],
            text: concat!(
                "credwatch check: 1 credential(s), 1 ok, 0 with problems, 0 warning(s)\n",
                "\n",
                "✓ tw-standard-key (twilio): healthy — incoming_phone_numbers_read granted (direct); 2 number(s); balance 18.03 USD; fingerprint 328a6b665ec5 — note: This API key may not read the account: it is a Standard (or restricted) key.\n",
            )
            .into(),
        },
        Case {
            credential: "tw-parent-key",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "831e1349a534",
            finding: "twilio_authenticate",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&sub),
            http_status: Some(401),
            upstream_code: Some("20003"),
            request_id: Some("RQ"),
            fix: &[
                "API key secret",
                "subaccount",
                "parent API keys cannot reach subaccounts",
            ],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-parent-key (twilio): invalid_credentials\n",
                    "    ✗ Twilio rejected the credentials (401, code 20003 Authenticate): rotated, deleted, or the account was suspended or closed.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 401, code 20003, request id RQ…\n",
                    "      fix: Twilio's 20003 page lists both kinds of cause. The credential: the API key secret was rotated or deleted (Console → Account → API keys & tokens; promoting the secondary Auth Token deletes the old primary); the SID and the API key secret belong to different accounts (live vs test, parent vs subaccount {sid}: here it needs its own Auth Token, since credwatch sends an Auth Token with the Account SID it checks and so cannot use the parent's — parent API keys cannot reach subaccounts); an API key from another region. The account: suspended or closed (check Console → Billing, or log in to the Console). Compare fingerprint 831e1349a534 with `printf %s \"$TOKEN\" | sha256sum | cut -c1-12` of the value in the Console, then put the current value in the config file. If ElevenLabs holds the same Auth Token for imported numbers, re-import them too. (evidence: docs/upstream-evidence.md#twilio-20003)\n",
                    "      (fingerprint 831e1349a534)\n",
                ),
                sid = sub
            ),
        },
        Case {
            credential: "tw-suspended",
            exit: 1,
            verdict: ("unhealthy", Some("account_blocked"), Some(true)),
            fingerprint: "75424390abc1",
            finding: "account_suspended",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&suspended),
            http_status: Some(403),
            upstream_code: Some("20403"),
            request_id: Some("RQ"),
            fix: &["Billing", "Twilio support"],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-suspended (twilio): account_blocked\n",
                    "    ✗ The Twilio account is suspended or closed (20403): it cannot use the API.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 403, code 20403, request id RQ…\n",
                    "      fix: Check Console → Billing and the account's status, and contact Twilio support; calls through this account fail until it is active. (evidence: docs/upstream-evidence.md#twilio-account-status)\n",
                    "      (account suspended (Full); fingerprint 75424390abc1)\n",
                ),
                sid = suspended
            ),
        },
        Case {
            credential: "tw-wrong-account-sid",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "6ae8db31b292",
            finding: "account_not_found",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&other),
            http_status: Some(404),
            upstream_code: Some("20404"),
            request_id: Some("RQ"),
            fix: &["Account SID", "Console → Account info"],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-wrong-account-sid (twilio): invalid_credentials\n",
                    "    ✗ No such Twilio account for these credentials (404, code 20404).\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 404, code 20404, request id RQ…\n",
                    "      fix: The Account SID is mistyped, the account was closed, or the secret belongs to a different account. Copy the Account SID from Console → Account info. (evidence: docs/upstream-evidence.md#twilio-20404)\n",
                    "      (fingerprint 6ae8db31b292)\n",
                ),
                sid = other
            ),
        },
    ];
    let mut reports = BTreeMap::new();
    for case in &cases {
        reports.insert(case.credential, assert_case(&s, case).await);
    }

    // A Standard key counts the numbers but may not read the account.
    let standard_key = &reports["tw-standard-key"];
    assert_eq!(standard_key.twilio_phone_numbers(), Some(2));
    assert!(
        standard_key.twilio_account().is_none(),
        "a Standard key may not read the account"
    );
    // The parent's key on a subaccount: the fix names the subaccount.
    assert_contains(
        &finding(&reports["tw-parent-key"], "twilio_authenticate").fix,
        &[&sub],
    );
}
