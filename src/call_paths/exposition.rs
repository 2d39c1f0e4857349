//! A call path's metric lines (`/metrics` is its own format, like
//! `metrics` for the credentials) and its status and problem labels, which
//! `/health` shows too.

use std::fmt::Write as _;
use tokio::time::Instant;

use super::{LinkView, PathState, Status};
use crate::exposition::{Family, escape, seconds, value};

/// The call-path families, documented in `docs/metrics.md`.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "credwatch_call_path_ready",
        kind: "gauge",
        help: "1 when every link of the call path is proven now (the outbound call can go through as far as GET requests can tell), 0 otherwise.",
    },
    Family {
        name: "credwatch_call_path_problem_info",
        kind: "gauge",
        help: "One series per link of the call path that is broken or unknown, with the problem (and the destination country for destination links).",
    },
    Family {
        name: "credwatch_call_path_info",
        kind: "gauge",
        help: "The call path's settings: its ElevenLabs and Twilio credentials, whether it is critical, and its labels: for alert routing (join with group_left).",
    },
    Family {
        name: "credwatch_call_path_last_check_timestamp_seconds",
        kind: "gauge",
        help: "When the call path's links were last looked at (Unix time); absent before the first look.",
    },
];

/// Every path's lines, family by family (empty without paths).
pub fn metrics(paths: &[PathState], now: Instant) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let mut texts: Vec<String> = vec![String::new(); FAMILIES.len()];
    for p in paths {
        let name = escape(&p.path.name);
        let links = p.links(now);
        let ready = links.iter().all(|l| l.status == Status::Proven);
        let _ = writeln!(
            texts[0],
            "credwatch_call_path_ready{{call_path=\"{name}\"}} {}",
            u8::from(ready)
        );
        for l in &links {
            let Some(problem) = l.status.problem() else {
                continue;
            };
            let destination = l
                .link
                .country()
                .map(|c| format!(",destination=\"{c}\""))
                .unwrap_or_default();
            let _ = writeln!(
                texts[1],
                "credwatch_call_path_problem_info{{call_path=\"{name}\",problem=\"{}\"{destination}}} 1",
                problem.as_str()
            );
        }
        let labels: String = p
            .path
            .labels
            .iter()
            .map(|(k, v)| format!(",{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(
            texts[2],
            "credwatch_call_path_info{{call_path=\"{name}\",elevenlabs=\"{}\",twilio=\"{}\",critical=\"{}\"{labels}}} 1",
            escape(&p.path.caller),
            escape(&p.path.carrier),
            p.path.critical
        );
        if let Some(t) = p.checked_at {
            let _ = writeln!(
                texts[3],
                "credwatch_call_path_last_check_timestamp_seconds{{call_path=\"{name}\"}} {}",
                value(seconds(t))
            );
        }
    }
    let mut out = String::new();
    for (family, text) in FAMILIES.iter().zip(texts) {
        if text.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        out.push_str(&text);
    }
    out
}

/// `ready`, `broken` (a link is definitively broken) or `unknown`.
pub fn status(links: &[LinkView]) -> &'static str {
    if links.iter().all(|l| l.status == Status::Proven) {
        "ready"
    } else if links.iter().any(|l| matches!(l.status, Status::Broken(_))) {
        "broken"
    } else {
        "unknown"
    }
}

/// A problem as `/health` lists it: `destination_blocked:GB` for a country.
pub fn problem_label(l: &LinkView) -> Option<String> {
    let p = l.status.problem()?;
    Some(match l.link.country() {
        Some(c) => format!("{}:{c}", p.as_str()),
        None => p.as_str().to_string(),
    })
}
