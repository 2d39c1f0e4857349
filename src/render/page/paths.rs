//! The status page's call paths: each path with its verdict and, for every
//! link that is not proven, `check`'s words (summary, evidence, fix) and the
//! runbook; not ready first. From the state, judged now
//! (`call_paths::report::report`, the same words as `credwatch check`).

use std::fmt::Write as _;

use tokio::time::Instant;

use super::{RUNBOOKS, escape};
use crate::call_paths::PathState;
use crate::call_paths::report::{CallPathReport, LinkReport, report};

/// Every call path, not ready first (critical first within), then config order.
pub(super) fn reports(states: &[PathState]) -> Vec<CallPathReport> {
    let now = Instant::now();
    let mut paths: Vec<CallPathReport> = states.iter().map(|p| report(p, now)).collect();
    paths.sort_by_key(|p| (p.ready(), !p.critical));
    paths
}

/// The section, when there are call paths.
pub(super) fn write_section(out: &mut String, paths: &[CallPathReport]) {
    if paths.is_empty() {
        return;
    }
    let ready = paths.iter().filter(|p| p.ready()).count();
    let _ = write!(
        out,
        "<section class=\"group\" id=\"call-paths\"><h2>Call paths <span class=\"n\">{ready} of {} ready</span></h2>",
        paths.len()
    );
    for p in paths {
        write_path(out, p);
    }
    out.push_str("</section>");
}

fn write_path(out: &mut String, p: &CallPathReport) {
    let class = match p.status {
        "ready" => "healthy",
        "broken" => "broken",
        _ => "pending",
    };
    let verdict = match p.status {
        "ready" => "ready",
        "broken" => "broken",
        _ => "not proven",
    };
    let _ = write!(
        out,
        "<article class=\"card {class}\" id=\"p-{name}\"><header class=\"head\"><h3>{name}</h3> \
         <span class=\"prov\">call path</span>{crit}{labels} <span class=\"badge {class}\">{verdict}</span></header>\
         <p class=\"sub\">agent <code>{agent}</code> · number <code>{number}</code> · {el} → {tw}{dest}</p>",
        name = escape(&p.name),
        crit = if p.critical {
            " <span class=\"crit\">critical</span>"
        } else {
            ""
        },
        labels = super::labels_html(&p.labels),
        agent = escape(&p.agent_id),
        number = escape(&p.agent_phone_number_id),
        el = escape(&p.elevenlabs),
        tw = escape(&p.twilio),
        dest = if p.destinations.is_empty() {
            String::new()
        } else {
            format!(" · dialing {}", escape(&p.destinations.join(", ")))
        },
    );
    // Proven links in one line (their words on hover); the others in full.
    let proven: Vec<_> = p.links.iter().filter(|l| l.status == "proven").collect();
    if !proven.is_empty() {
        out.push_str(
            "<div class=\"fact perms\"><span class=\"k\">Proven</span><ul class=\"tags\">",
        );
        for l in &proven {
            let _ = write!(
                out,
                "<li class=\"perm ok\" title=\"{}\">✓ <code>{}</code>{}</li>",
                escape(&l.summary),
                escape(&link_name(l)),
                if l.inferred {
                    " <span class=\"basis\">inferred</span>"
                } else {
                    ""
                }
            );
        }
        out.push_str("</ul></div>");
    }
    out.push_str("<ul class=\"findings\">");
    for l in p.links.iter().filter(|l| l.status != "proven") {
        let (mark, class) = match l.status {
            "broken" => ("✗", "error"),
            _ => ("?", "warning"),
        };
        let _ = write!(
            out,
            "<li class=\"finding {class}\"><p class=\"summary\"><span class=\"mark\">{mark}</span> <code>{}</code> {}{}</p>",
            escape(&link_name(l)),
            escape(&l.summary),
            if l.inferred {
                " <span class=\"basis\">inferred</span>"
            } else {
                ""
            }
        );
        if let Some(e) = l.evidence.as_ref().filter(|e| !e.request.is_empty()) {
            let _ = write!(
                out,
                "<p class=\"evidence\"><span class=\"k\">evidence</span> <code>{}</code></p>",
                escape(&e.line())
            );
        }
        if let Some(fix) = &l.fix {
            let _ = write!(
                out,
                "<p class=\"fix\"><span class=\"k\">fix</span> {}</p>",
                escape(fix)
            );
        }
        let _ = write!(
            out,
            "<p class=\"links\"><a href=\"{RUNBOOKS}#credwatchcallpathbroken\">Runbook: CredwatchCallPathBroken</a></p></li>"
        );
    }
    out.push_str("</ul></article>");
}

/// `agent`, `destination GB`.
fn link_name(l: &LinkReport) -> String {
    match &l.country {
        Some(c) => format!("{} {c}", l.link),
        None => l.link.to_string(),
    }
}
