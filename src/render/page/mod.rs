//! The status page, `/`: every credential with its verdict and, in the
//! words of `credwatch check` (the findings the scheduler keeps,
//! `check::findings`), each problem's evidence and fix, broken first; and
//! `/?credential=NAME`, one credential in full.
//!
//! Rendered from the state on request (copies of the slots, no upstream
//! call, no wait on a probe), server-side, with no script and no external
//! asset (the CSS is inline, so it works air-gapped under the strict
//! [`CSP`]). Every string is escaped: names come from the config, the rest
//! from upstream answers.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::call_paths::PathState;
use crate::providers::report::{Finding, Severity, Shown, ShownNumber};
use crate::verdict::{CredentialState, Health};

/// The page's Content-Security-Policy: nothing may load, no script may run;
/// only the inline styles apply.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// Where the runbooks are (`docs/runbooks.md`, a section per alert; the
/// alert rules' `runbook_url` uses the same base).
pub const RUNBOOKS: &str = "https://github.com/credwatch/credwatch/blob/main/docs/runbooks.md";

/// Cards shown per group on the overview; the rest are counted.
const MAX_CARDS: usize = 500;

const STYLE: &str = include_str!("style.css");

/// The four groups of the overview, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Broken,
    NoVerdict,
    Warning,
    Healthy,
}

impl Group {
    const ALL: [Group; 4] = [
        Group::Broken,
        Group::NoVerdict,
        Group::Warning,
        Group::Healthy,
    ];

    fn title(self) -> &'static str {
        match self {
            Group::Broken => "Broken",
            Group::NoVerdict => "No verdict",
            Group::Warning => "Warnings",
            Group::Healthy => "Healthy",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Group::Broken => "broken",
            Group::NoVerdict => "pending",
            Group::Warning => "warning",
            Group::Healthy => "healthy",
        }
    }
}

/// One credential as the page sees it.
struct Item {
    state: CredentialState,
    findings: Vec<Finding>,
    group: Group,
}

impl Item {
    fn new(state: CredentialState, findings: Vec<Finding>) -> Self {
        let group = match state.health() {
            Health::Unhealthy(_) => Group::Broken,
            // `check`'s exit code: usable, but an imported number cannot call.
            Health::Healthy if !state.numbers_ready() => Group::Broken,
            Health::Pending => Group::NoVerdict,
            Health::Healthy if findings.iter().any(|f| f.severity == Severity::Warning) => {
                Group::Warning
            }
            Health::Healthy => Group::Healthy,
        };
        Item {
            state,
            findings,
            group,
        }
    }

    /// The verdict in `check`'s words.
    fn verdict(&self) -> String {
        match self.state.health() {
            Health::Unhealthy(r) => r.as_str().to_string(),
            Health::Pending => "no verdict".into(),
            Health::Healthy if !self.state.numbers_ready() => "imported numbers not ready".into(),
            Health::Healthy => match self.warnings() {
                0 => "healthy".into(),
                1 => "healthy, 1 warning".into(),
                n => format!("healthy, {n} warnings"),
            },
        }
    }

    fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Routing labels (`labels:`) as tags, `team=voice`; empty without.
fn labels_html(labels: &crate::section::Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!(" <span class=\"tag\">{}={}</span>", escape(k), escape(v)))
        .collect()
}

fn detail_href(name: &str) -> String {
    let q: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/?credential={q}")
}

/// "12s ago", "4m ago", "3h ago", "2d ago" (from `now`).
fn age(t: SystemTime, now: SystemTime) -> String {
    let s = now.duration_since(t).unwrap_or(Duration::ZERO).as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// Dates no calendar can show are shown as what they are (`providers::words`).
fn time(t: SystemTime) -> String {
    crate::providers::words::time(t)
}

fn date(unix: i64) -> String {
    crate::providers::words::date(unix)
}

/// The alert whose runbook section covers a finding's code (the stable
/// codes of `check`'s findings, docs/check-output.md).
fn runbook_alert(f: &Finding) -> Option<&'static str> {
    Some(match f.code.as_str() {
        "invalid_api_key"
        | "key_id_used_as_key"
        | "twilio_authenticate"
        | "test_credentials"
        | "account_not_found"
        | "key_sid_in_path" => "CredwatchCredentialInvalid",
        "permission_missing" | "restricted_key" => "CredwatchPermissionMissing",
        "quota_exhausted" => "CredwatchQuotaExhausted",
        "quota_high" => "CredwatchQuotaHigh",
        "unusual_activity"
        | "payment_issue"
        | "subscription_disabled"
        | "account_suspended"
        | "account_not_active" => "CredwatchAccountBlocked",
        "billing_at_risk" => "CredwatchSubscriptionPastDue",
        "balance_low" => "CredwatchTwilioBalanceLow",
        "not_outbound_capable"
        | "agent_missing"
        | "agent_unchecked"
        | "not_on_twilio_account"
        | "reimport_needed" => "CredwatchPhoneNumberNotReady",
        "unexpected_response" if f.check.starts_with("permission_") => {
            "CredwatchPermissionProbeInconclusive"
        }
        "rate_limited" | "upstream_error" | "timeout" | "network" | "unexpected_response" => {
            "CredwatchChecksFailing"
        }
        _ => return None,
    })
}

/// A link to `alert`'s section of the runbooks.
fn runbook_link(alert: &str) -> String {
    format!(
        "<a class=\"runbook\" href=\"{RUNBOOKS}#{}\">runbook: {alert}</a>",
        alert.to_ascii_lowercase()
    )
}

/// The evidence line, as `check` prints it.
fn evidence(f: &Finding) -> Option<String> {
    f.evidence.as_ref().map(crate::render::text::evidence_line)
}

fn write_finding(out: &mut String, f: &Finding) {
    let (class, mark) = match f.severity {
        Severity::Error => ("error", "✗"),
        Severity::Warning => ("warning", "!"),
        Severity::Info => ("info", "i"),
    };
    let _ = write!(
        out,
        "<li class=\"finding {class}\"><p class=\"summary\"><span class=\"mark\" aria-hidden=\"true\">{mark}</span> {}</p>",
        escape(&f.summary)
    );
    if let Some(e) = evidence(f) {
        let _ = write!(
            out,
            "<p class=\"evidence\"><span class=\"k\">evidence</span> <code>{}</code></p>",
            escape(&e)
        );
    }
    let _ = write!(
        out,
        "<p class=\"fix\"><span class=\"k\">fix</span> {}</p>",
        escape(&f.fix)
    );
    if let Some(alert) = runbook_alert(f) {
        let _ = write!(out, "<p class=\"links\">{}</p>", runbook_link(alert));
    }
    out.push_str("</li>");
}

/// A usage bar: the share of the ceiling, its number, the reset.
fn write_usage(out: &mut String, s: &Shown) {
    let Shown::Usage {
        label,
        unit,
        used,
        limit,
        ceiling,
        share,
        high,
        threshold,
        reset_at,
    } = s
    else {
        return;
    };
    let reset = reset_at
        .map(|r| format!("; resets {}", date(r)))
        .unwrap_or_default();
    match share {
        Some(share) => {
            let pct = crate::providers::words::percent(*share);
            let width = pct.min(100);
            let ceiling = ceiling.unwrap_or(*limit);
            let of = if ceiling == *limit {
                format!("{used} of {limit} {unit}")
            } else {
                format!(
                    "{used} of {ceiling} {unit} (the ceiling: limit {limit} + usage-based billing)"
                )
            };
            let _ = write!(
                out,
                "<div class=\"fact usage{}{}\"><span class=\"k\">{label}</span> \
                 <span class=\"bar\" role=\"meter\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{pct}\" aria-label=\"{label} used\">\
                 <span class=\"fill\" style=\"width:{width}%\"></span>\
                 <span class=\"mark-threshold\" style=\"left:{}%\" title=\"alert threshold\"></span></span> \
                 <span class=\"pct\">{pct}% used</span> <span class=\"sub\">{}{}</span></div>",
                if *high { " high" } else { "" },
                if pct >= 100 { " full" } else { "" },
                crate::providers::words::percent(*threshold),
                escape(&of),
                escape(&reset)
            );
        }
        None => {
            let _ = write!(
                out,
                "<div class=\"fact usage\"><span class=\"k\">{label}</span> <span class=\"v\">{used} of {limit} {unit} used</span> \
                 <span class=\"sub\">usage-based billing without a cap: no ceiling{}</span></div>",
                escape(&reset)
            );
        }
    }
}

fn write_numbers(out: &mut String, numbers: &[ShownNumber]) {
    let ready = numbers.iter().filter(|n| n.ready).count();
    let _ = write!(
        out,
        "<div class=\"fact numbers{}\"><span class=\"k\">Imported numbers</span> <span class=\"v\">{ready} of {} ready</span><ul class=\"nums\">",
        if ready < numbers.len() { " high" } else { "" },
        numbers.len()
    );
    for n in numbers {
        let shown = if n.number.is_empty() {
            &n.id
        } else {
            &n.number
        };
        let _ = write!(
            out,
            "<li class=\"{}\"><span class=\"mark\" aria-hidden=\"true\">{}</span> <span class=\"num\">{}</span> <span class=\"sub\">{}</span>",
            if n.ready { "ok" } else { "bad" },
            if n.ready { "✓" } else { "✗" },
            escape(shown),
            escape(&n.label)
        );
        for p in &n.problems {
            let _ = write!(out, " <span class=\"tag\">{}</span>", escape(p));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></div>");
}

fn write_shown(out: &mut String, shown: &[Shown]) {
    for s in shown {
        match s {
            Shown::Usage { .. } => write_usage(out, s),
            Shown::Money {
                label,
                amount,
                currency,
                low,
                threshold,
            } => {
                let _ = write!(
                    out,
                    "<div class=\"fact money{}\"><span class=\"k\">{label}</span> <span class=\"v\">{amount:.2} {}</span>{}</div>",
                    if *low { " high" } else { "" },
                    escape(currency),
                    if *low {
                        format!(
                            " <span class=\"sub\">below the alert threshold of {threshold:.0} {}</span>",
                            escape(currency)
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Shown::Text { label, value, warn } => {
                let _ = write!(
                    out,
                    "<div class=\"fact{}\"><span class=\"k\">{label}</span> <span class=\"v\">{}</span></div>",
                    if *warn { " high" } else { "" },
                    escape(value)
                );
            }
            Shown::Numbers(numbers) => write_numbers(out, numbers),
        }
    }
}

/// How credwatch knows a permission's state: `direct` (upstream said so),
/// `calibrated` (the probe was proven on this API) or `inferred`.
fn permission_basis(s: &CredentialState, permission: &str) -> Option<String> {
    s.verdict
        .permission_basis
        .get(permission)
        .filter(|_| s.verdict.permissions.contains_key(permission))
        .map(|b| b.as_str().to_string())
}

/// Each permission upstream told about, and each required one: granted,
/// missing, inconclusive or unknown, and on what basis.
fn write_permissions(out: &mut String, s: &CredentialState) {
    let mut names: Vec<&str> = s.verdict.permissions.keys().map(String::as_str).collect();
    for p in &s.settings.required_permissions {
        if !names.contains(&p.as_str()) {
            names.push(p);
        }
    }
    names.sort_unstable();
    if names.is_empty() {
        return;
    }
    out.push_str(
        "<div class=\"fact perms\"><span class=\"k\">Permissions</span><ul class=\"tags\">",
    );
    for p in names {
        let required = s.settings.required_permissions.iter().any(|r| r == p);
        let inconclusive = s.checks.iter().any(|(c, st)| {
            c.strip_prefix("permission_") == Some(p) && st.inconclusive == Some(true)
        });
        let (class, state) = match s.verdict.permissions.get(p) {
            Some(true) => ("ok", "granted"),
            Some(false) if required => ("bad", "missing"),
            Some(false) => ("", "missing, not required"),
            None if inconclusive => ("warn", "inconclusive"),
            None => ("", "unknown"),
        };
        let basis = permission_basis(s, p);
        let _ = write!(
            out,
            "<li class=\"perm {class}\"><code>{}</code> {state}{} <span class=\"basis\" title=\"how credwatch knows: calibrated or inferred probe\">basis: {}</span></li>",
            escape(p),
            if required { " (required)" } else { "" },
            escape(basis.as_deref().unwrap_or("not recorded"))
        );
    }
    out.push_str("</ul></div>");
}

/// Why a credential has no verdict, and what to do (`/health`'s `pending`).
fn write_pending(out: &mut String, s: &CredentialState) {
    let Some(p) = s.pending_why() else {
        return;
    };
    let _ = write!(
        out,
        "<div class=\"fact\"><span class=\"k\">No verdict</span> <span class=\"v\">{}</span>{}</div>",
        escape(&p.message()),
        p.fix()
            .map(|f| format!(" <span class=\"sub\">fix: {}</span>", escape(f)))
            .unwrap_or_default()
    );
}

fn write_answered(out: &mut String, s: &CredentialState, now: SystemTime) {
    let last = match s.last_success {
        Some(t) => format!(
            "<span class=\"v\">{}</span> <span class=\"sub\">{}</span>",
            age(t, now),
            time(t)
        ),
        None => "<span class=\"v\">never</span>".into(),
    };
    let _ = write!(
        out,
        "<div class=\"fact\"><span class=\"k\">Last definitive answer</span> {last}"
    );
    if let Some(r) = s.check_error {
        let _ = write!(
            out,
            " <span class=\"sub warn\">last check got no answer: {}</span>",
            r.as_str()
        );
    }
    out.push_str("</div>");
}

/// One credential's card: the overview's (errors and warnings with
/// evidence and fix; advice counted) or the detail view's (everything).
fn write_card(out: &mut String, item: &Item, now: SystemTime, full: bool) {
    let s = &item.state;
    let group = item.group;
    let _ = write!(
        out,
        "<article class=\"card {}\" id=\"c-{}\"><header class=\"head\"><h3><a href=\"{}\">{}</a></h3> \
         <span class=\"prov\">{}</span>{}{} <span class=\"badge {}\">{}</span></header>",
        group.class(),
        escape(&s.name),
        escape(&detail_href(&s.name)),
        escape(&s.name),
        s.provider.as_str(),
        if s.settings.critical {
            " <span class=\"crit\">critical</span>"
        } else {
            ""
        },
        labels_html(&s.settings.labels),
        group.class(),
        escape(&item.verdict())
    );
    let shown: Vec<&Finding> = item
        .findings
        .iter()
        .filter(|f| full || f.severity != Severity::Info)
        .collect();
    if !shown.is_empty() {
        out.push_str("<ul class=\"findings\">");
        for f in &shown {
            write_finding(out, f);
        }
        out.push_str("</ul>");
    }
    out.push_str("<div class=\"facts\">");
    write_shown(out, &s.verdict.details.shown());
    write_pending(out, s);
    write_permissions(out, s);
    write_answered(out, s, now);
    out.push_str("</div>");
    let advice = item.findings.len() - shown.len();
    if advice > 0 {
        let _ = write!(
            out,
            "<p class=\"more\"><a href=\"{}\">{advice} note(s) and details</a></p>",
            escape(&detail_href(&s.name))
        );
    }
    out.push_str("</article>");
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"30\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
}

fn foot(out: &mut String, now: SystemTime) {
    let _ = writeln!(
        out,
        "<footer><p>credwatch {} · rendered {} from the latest answers (refreshes every 30s; checks run on their own schedule) · \
         <a href=\"/metrics\">/metrics</a> · <a href=\"/health?verbose=1\">/health</a> · <a href=\"/livez\">/livez</a> · \
         <a href=\"/readyz\">/readyz</a> · <a href=\"{RUNBOOKS}\">runbooks</a></p></footer></body></html>",
        crate::VERSION,
        time(now)
    );
}

/// Every credential, from the latest answers (each with its findings, in
/// config order).
fn items(credentials: Vec<(CredentialState, Vec<Finding>)>) -> Vec<Item> {
    let mut items: Vec<Item> = credentials
        .into_iter()
        .map(|(s, f)| Item::new(s, f))
        .collect();
    // Broken first, then no verdict, warnings, healthy; critical first
    // within a group; then the config's order (the sort is stable).
    items.sort_by_key(|i| (i.group, !i.state.settings.critical));
    items
}

/// The overview, `/`: every credential (its state and findings, in config
/// order) and every call path. It reads what it is given, so it sits above
/// nothing it renders from (the server hands it the latest state).
pub fn overview(credentials: Vec<(CredentialState, Vec<Finding>)>, paths: &[PathState]) -> String {
    let now = SystemTime::now();
    let items = items(credentials);
    let paths = paths::reports(paths);
    let count = |g: Group| items.iter().filter(|i| i.group == g).count();
    let mut out = String::with_capacity(4096 + items.len() * 1024);
    let broken = count(Group::Broken);
    head(
        &mut out,
        &format!(
            "credwatch — {}",
            if broken > 0 {
                format!("{broken} broken")
            } else {
                "all usable".into()
            }
        ),
    );
    out.push_str("<header class=\"top\"><h1>credwatch</h1><p class=\"counts\">");
    if !paths.is_empty() {
        let not_ready = paths.iter().filter(|p| !p.ready()).count();
        let _ = write!(
            out,
            "<a class=\"count {}\" href=\"#call-paths\"><b>{not_ready}</b> call paths not ready</a> ",
            if not_ready > 0 { "broken" } else { "healthy" }
        );
    }
    for g in Group::ALL {
        let n = count(g);
        let _ = write!(
            out,
            "<a class=\"count {}\" href=\"#{}\"><b>{n}</b> {}</a> ",
            g.class(),
            g.class(),
            g.title().to_lowercase()
        );
    }
    out.push_str("</p></header><main>");
    if items.is_empty() {
        out.push_str("<p>No credentials configured.</p>");
    }
    paths::write_section(&mut out, &paths);
    for g in Group::ALL {
        let n = count(g);
        if n == 0 {
            continue;
        }
        let _ = write!(
            out,
            "<section class=\"group\" id=\"{}\"><h2>{} <span class=\"n\">{n}</span></h2>",
            g.class(),
            g.title()
        );
        for item in items.iter().filter(|i| i.group == g).take(MAX_CARDS) {
            write_card(&mut out, item, now, false);
        }
        if n > MAX_CARDS {
            let _ = write!(
                out,
                "<p class=\"more\">… and {} more (every credential: <a href=\"/health?verbose=1\">/health?verbose=1</a>)</p>",
                n - MAX_CARDS
            );
        }
        out.push_str("</section>");
    }
    out.push_str("</main>");
    foot(&mut out, now);
    out
}

/// One credential in full, `/?credential=NAME`.
pub fn detail(s: CredentialState, findings: Vec<Finding>) -> String {
    let now = SystemTime::now();
    let item = Item::new(s, findings);
    let mut out = String::with_capacity(8192);
    head(
        &mut out,
        &format!("{} — {} — credwatch", item.state.name, item.verdict()),
    );
    out.push_str("<header class=\"top\"><h1><a href=\"/\">credwatch</a></h1><p class=\"counts\"><a href=\"/\">← every credential</a></p></header><main>");
    write_card(&mut out, &item, now, true);
    write_checks(&mut out, &item.state, now);
    out.push_str("</main>");
    foot(&mut out, now);
    out
}

/// The detail view's table of checks: each check's last attempt.
fn write_checks(out: &mut String, s: &CredentialState, now: SystemTime) {
    let _ = write!(
        out,
        "<section class=\"group\"><h2>Checks</h2><p class=\"sub\">fingerprint <code>{}</code> · every {}s{}</p>\
         <table><thead><tr><th>check</th><th>last attempt</th><th>result</th></tr></thead><tbody>",
        escape(&s.fingerprint),
        s.settings.interval.as_secs(),
        s.changed_at
            .map(|t| format!(" · secret changed {}", age(t, now)))
            .unwrap_or_default()
    );
    for (name, c) in &s.checks {
        let result = match (c.last_reason, c.success, c.inconclusive) {
            (_, false, Some(true)) => "inconclusive".to_string(),
            (Some(r), true, _) => format!("answered: {}", r.as_str()),
            (Some(r), false, _) => format!("no answer: {}", r.as_str()),
            (None, _, _) => "answered".into(),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(name),
            age(c.last_attempt, now),
            escape(&result)
        );
    }
    out.push_str("</tbody></table></section>");
}

/// The page for an unknown `?credential=`.
pub fn not_found(name: &str) -> String {
    let now = SystemTime::now();
    let mut out = String::new();
    head(&mut out, "no such credential — credwatch");
    let _ = write!(
        out,
        "<main><p>No credential named <code>{}</code>. <a href=\"/\">Every credential</a>.</p></main>",
        escape(name)
    );
    foot(&mut out, now);
    out
}

mod paths;
#[cfg(test)]
mod tests;
