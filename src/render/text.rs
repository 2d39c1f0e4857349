//! `credwatch check`'s text: per credential its verdict line, then each
//! finding with its evidence and fix (warnings marked `!` under a healthy
//! verdict), then the call paths link by link. Colours only on a terminal
//! ([`Style`]).

use std::io::Write;

use super::report::{CredentialReport, Report};
use crate::call_paths::report::CallPathReport;
use crate::outcome::{Basis, Evidence};
use crate::providers::report::{Finding, Severity};

/// Terminal styling: colour only on a TTY and never with `NO_COLOR`.
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Style {
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    pub fn plain() -> Self {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// One line for what upstream said, as `check` and the status page print it.
pub fn evidence_line(e: &Evidence) -> String {
    e.line()
}

/// ` {team="voice",env="prod"}` after the provider, as in a Prometheus
/// selector; empty without labels.
fn labels_text(c: &CredentialReport) -> String {
    crate::section::labels::selector(&c.labels)
}

fn summary_line(c: &CredentialReport) -> String {
    let mut bits = Vec::new();
    // Grouped by what the verdict rests on, so an inferred grant reads as such.
    for basis in [Basis::Direct, Basis::Calibrated, Basis::Inferred] {
        let granted: Vec<&str> = c
            .permissions
            .iter()
            .filter(|(p, g)| **g && c.permission_basis.get(*p) == Some(&basis))
            .map(|(p, _)| p.as_str())
            .collect();
        if !granted.is_empty() {
            bits.push(format!(
                "{} granted ({})",
                granted.join(", "),
                basis.as_str()
            ));
        }
    }
    bits.extend(c.details.summary());
    bits.push(format!("fingerprint {}", c.fingerprint));
    bits.join("; ")
}

/// One finding's lines: the mark and summary, the evidence, the fix.
fn write_finding(out: &mut dyn Write, style: &Style, f: &Finding) -> std::io::Result<()> {
    let mark = match f.severity {
        Severity::Error => style.paint("31", "✗"),
        Severity::Warning => style.paint("33", "!"),
        Severity::Info => style.paint("36", "i"),
    };
    writeln!(out, "    {mark} {}", f.summary)?;
    if let Some(e) = &f.evidence {
        writeln!(out, "      evidence: {}", evidence_line(e))?;
    }
    writeln!(out, "      fix: {}", f.fix)
}

/// The human-readable report.
pub fn render_text(report: &Report, style: &Style, out: &mut dyn Write) -> std::io::Result<()> {
    let ok = report.credentials.iter().filter(|c| c.ok()).count();
    writeln!(
        out,
        "credwatch check: {} credential(s), {ok} ok, {} with problems, {} warning(s)\n",
        report.credentials.len(),
        report.credentials.len() - ok,
        report.warnings()
    )?;
    for c in &report.credentials {
        if c.ok() {
            // One line, advice as a note on it; each warning marked `!` below.
            let notes: Vec<&str> = c
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Info)
                .map(|f| f.summary.as_str())
                .collect();
            let note = if notes.is_empty() {
                String::new()
            } else {
                format!(" — note: {}", notes.join(" "))
            };
            writeln!(
                out,
                "{} {} ({}){}: healthy — {}{note}",
                style.paint("32", "✓"),
                c.name,
                c.provider,
                labels_text(c),
                summary_line(c)
            )?;
            for f in c.warnings() {
                write_finding(out, style, f)?;
            }
            continue;
        }
        let why = match (c.status, c.reason) {
            ("pending", _) => match &c.pending {
                Some(p) => format!("no verdict: {}", p.summary),
                None => "no verdict".to_string(),
            },
            (_, Some(r)) => r.as_str().to_string(),
            _ => "imported numbers not ready".to_string(),
        };
        writeln!(
            out,
            "{} {} ({}){}: {}",
            style.paint("31;1", "✗"),
            c.name,
            c.provider,
            labels_text(c),
            style.paint("31;1", &why)
        )?;
        for f in &c.findings {
            write_finding(out, style, f)?;
        }
        writeln!(out, "      ({})", summary_line(c))?;
    }
    call_paths(
        &report.call_paths,
        &|code, text| style.paint(code, text),
        out,
    )
}

/// `check`'s text for the call paths, after the credentials: each path's
/// verdict, then every link with ✓ (proven), ✗ (broken) or ? (unknown), the
/// evidence of the links that are not proven, and their fix. `paint`
/// colours a mark (an ANSI code and the text; plain when not on a terminal).
fn call_paths(
    paths: &[CallPathReport],
    paint: &dyn Fn(&str, &str) -> String,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let ready = paths.iter().filter(|p| p.ready()).count();
    writeln!(
        out,
        "\ncall paths: {} configured, {ready} ready, {} not ready\n",
        paths.len(),
        paths.len() - ready
    )?;
    for p in paths {
        let (mark, verdict) = match p.status {
            "ready" => (paint("32", "✓"), "ready".to_string()),
            "broken" => (paint("31;1", "✗"), paint("31;1", "broken")),
            _ => (paint("33;1", "?"), paint("33;1", "not proven")),
        };
        let labels = crate::section::labels::selector(&p.labels);
        writeln!(
            out,
            "{mark} call path {}{labels}: {verdict} — agent {} from number {} via {} → {}{}",
            p.name,
            p.agent_id,
            p.agent_phone_number_id,
            p.elevenlabs,
            p.twilio,
            if p.destinations.is_empty() {
                String::new()
            } else {
                format!(", dialing {}", p.destinations.join(", "))
            }
        )?;
        for l in &p.links {
            let mark = match l.status {
                "proven" => paint("32", "✓"),
                "broken" => paint("31", "✗"),
                _ => paint("33", "?"),
            };
            let name = match &l.country {
                Some(c) => format!("{} {c}", l.link),
                None => l.link.to_string(),
            };
            writeln!(out, "    {mark} {name}: {}", l.summary)?;
            if l.status == "proven" {
                continue;
            }
            if let Some(e) = l.evidence.as_ref().filter(|e| !e.request.is_empty()) {
                writeln!(out, "      evidence: {}", e.line())?;
            }
            if let Some(fix) = &l.fix {
                writeln!(out, "      fix: {fix}")?;
            }
        }
    }
    Ok(())
}
