//! The status page's own rules: escaping, runbook links, ages, caps.
use super::*;

#[test]
fn escape_neutralises_markup_in_text_and_attributes() {
    assert_eq!(
        escape("<script>alert('x')</script>\"&"),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"
    );
}

#[test]
fn every_runbook_link_has_its_section() {
    let page = include_str!("../../../docs/runbooks.md");
    let codes = [
        "invalid_api_key",
        "permission_missing",
        "quota_exhausted",
        "quota_high",
        "unusual_activity",
        "billing_at_risk",
        "balance_low",
        "not_on_twilio_account",
        "timeout",
    ];
    for code in codes {
        let f = Finding {
            severity: Severity::Error,
            code: code.into(),
            check: "permission_convai_write".into(),
            summary: String::new(),
            fix: String::new(),
            evidence: None,
        };
        let alert = runbook_alert(&f).unwrap_or_else(|| panic!("{code}"));
        assert!(
            page.lines().any(|l| l == format!("## {alert}")),
            "docs/runbooks.md has no section {alert}"
        );
    }
}

#[test]
fn a_large_overview_shows_each_group_up_to_its_cap_and_counts_the_rest() {
    let mut y = String::from("elevenlabs:\n");
    for i in 0..MAX_CARDS + 100 {
        y += &format!(
            "  - name: el-{i}\n    api_key: sk_{i:048x}\n    base_url: http://127.0.0.1:9\n"
        );
    }
    let config = crate::config::Config::from_yaml(
        &y,
        std::path::Path::new("t.yaml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("test config is valid");
    let state = crate::state::State::new(&config);
    let views = || state.slots().iter().map(|s| s.view()).collect();
    let page = overview(views(), &state.path_states());
    assert_eq!(page.matches("<article").count(), MAX_CARDS);
    assert!(
        page.contains(&format!("<b>{}</b> no verdict", MAX_CARDS + 100)),
        "every credential is counted"
    );
    assert!(page.contains("… and 100 more"), "the rest are counted");
    let last = state
        .slot(&format!("el-{}", MAX_CARDS + 99))
        .expect("the last one");
    let (s, findings) = last.view();
    assert!(detail(s, findings).contains(&format!("el-{}", MAX_CARDS + 99)));
}

#[test]
fn ages_read_as_people_say_them() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let ago = |s: u64| age(now - Duration::from_secs(s), now);
    assert_eq!(
        [ago(0), ago(59), ago(60), ago(7_200), ago(172_800)],
        ["0s ago", "59s ago", "1m ago", "2h ago", "2d ago"]
    );
    assert_eq!(age(now + Duration::from_secs(5), now), "0s ago");
}
