//! ElevenLabs' cast in `credwatch demo`: one key of each kind the simulator
//! knows (healthy, missing `convai_write`, revoked, out of quota, …).

use crate::simulator::demo as d;

/// The `elevenlabs:` section, against the simulator at `base_url`.
pub(super) fn section(base_url: &str) -> String {
    let el = |name: &str, key: &str, extra: &str| {
        format!("  - name: {name}\n    api_key: {key}\n    base_url: {base_url}\n{extra}")
    };
    let mut y = String::from("elevenlabs:\n");
    // Three keys of one workspace: its quota is exported once, as
    // account="workspace-prod".
    let prod = "    account: workspace-prod\n";
    y += &el(
        "el-agent-prod",
        d::EL_AGENT_PROD_KEY,
        &format!(
            "{prod}    required_permissions: [convai_write, convai_read]\n    phone_numbers: true\n    twilio: twilio-prod\n    labels: {{team: voice, environment: prod}}\n"
        ),
    );
    y += &el("el-no-convai-write", d::EL_NO_CONVAI_WRITE_KEY, prod);
    y += &el("el-revoked", d::EL_REVOKED_KEY, "");
    y += &el("el-quota-exhausted", d::EL_QUOTA_EXHAUSTED_KEY, "");
    y += &el("el-quota-high", d::EL_QUOTA_HIGH_KEY, "");
    y += &el("el-restricted", d::EL_RESTRICTED_KEY, prod);
    y += &el("el-blocked", d::EL_BLOCKED_KEY, "");
    y
}
