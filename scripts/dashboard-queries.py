#!/usr/bin/env python3
"""Print every PromQL expression of the Grafana dashboard, one per line, with
Grafana's variables substituted so the queries run as-is against Prometheus:

  $credential / ${credential} / ${credential:regex} / [[credential]] -> .*
  $__rate_interval, $__interval        -> 1m   (override: --interval)
  $__range                             -> 1h
  $__range_s, $__interval_ms, ...      -> numbers to match
  $datasource                          -> not part of any expression

The `credential` variable's own query, label_values(metric, label), is
printed as `group by (label) (metric)`, the PromQL equivalent.

Annotation queries (rotations, reloads) are printed with --annotations: they
must parse, but mark events a given Prometheus need not have seen.

With --lint it prints nothing on success and checks the dashboard's layout
instead (scripts/check-rules.sh runs it):
  - every panel link to a runbook points at a section of docs/runbooks.md
    named after an alert of deploy/prometheus/credwatch-rules.yml, and every
    panel that queries a metric an alert fires on links at least one runbook;
  - each panel whose queries concern one area (imported phone numbers, the
    ElevenLabs quota, the Twilio balance, checks) sits under that area's row;
  - the balance is shown with its currency (`{{currency}}` in the legend);
  - a "Warnings" panel mirrors `credwatch check`'s `!` marks.

Standard library only. Usage:
  scripts/dashboard-queries.py [dashboards/credwatch.json] [--with-titles] [--annotations]
  scripts/dashboard-queries.py [dashboards/credwatch.json] --lint
Exits non-zero if an expression still contains a `$` after substitution, or
if --lint finds a problem.
"""

import argparse
import json
import pathlib
import re
import sys

DEFAULT = pathlib.Path(__file__).resolve().parent.parent / "dashboards/credwatch.json"


def substitute(expr: str, interval: str) -> str:
    seconds = {"s": 1, "m": 60, "h": 3600}[interval[-1]] * int(interval[:-1])
    builtins = {
        "__rate_interval": interval,
        "__interval": interval,
        "__interval_ms": str(seconds * 1000),
        "__range": "1h",
        "__range_s": "3600",
        "__range_ms": "3600000",
    }

    def var(name: str) -> str:
        if name in builtins:
            return builtins[name]
        # Every dashboard variable is a multi-value regex matched with =~,
        # so "All" is .*
        return ".*"

    # ${name}, ${name:format}, [[name]], $name (longest names first via \w+).
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: var(m.group(1)), expr)
    expr = re.sub(r"\[\[(\w+)(?::\w+)?\]\]", lambda m: var(m.group(1)), expr)
    expr = re.sub(r"\$(\w+)", lambda m: var(m.group(1)), expr)
    return " ".join(expr.split())


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def expressions(dash: dict, annotations: bool = False):
    if annotations:
        for a in dash.get("annotations", {}).get("list", []):
            if a.get("expr"):
                yield f"annotation {a.get('name', '?')}", a["expr"]
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", q)
        if m:
            yield f"variable {var['name']}", f"group by ({m.group(2)}) ({m.group(1)})"
        elif q.strip():
            yield f"variable {var['name']}", q
    for p in walk_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield f"{p.get('title', '?')} [{t.get('refId', '?')}]", t["expr"]


ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNBOOKS = "https://github.com/credwatch/credwatch/blob/main/docs/runbooks.md#"

# Metric name prefix -> the row its panels belong under.
AREAS = [
    ("credwatch_elevenlabs_phone_number_", "Imported phone numbers"),
    ("credwatch_elevenlabs_characters_", "ElevenLabs quota"),
    ("credwatch_twilio_balance", "Twilio"),
    ("credwatch_check_", "Checks"),
    ("credwatch_upstream_requests_total", "Checks"),
]

# What `credwatch check` marks `!` (src/check/findings.rs and the providers'
# findings), as the Warnings panel's `warning` label values.
WARNINGS = ["quota_high", "billing_at_risk", "balance_low", "trial_account",
            "probe_inconclusive", "no_answer"]


def metrics(expr: str) -> set:
    return set(re.findall(r"\b(credwatch_[a-z_]+)\b", expr))


def alert_metrics() -> dict:
    """alert name -> the credwatch metrics its expression uses (minus the
    join with credwatch_credential_info that every alert has)."""
    text = (ROOT / "deploy/prometheus/credwatch-rules.yml").read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r"- alert: (\w+)\n(.*?)(?=\n      - alert: |\n  - name: |\Z)", text, re.S):
        expr = m.group(2).split("labels:")[0]
        out[m.group(1)] = metrics(expr) - {"credwatch_credential_info"}
    return out


def lint(dash: dict) -> list:
    problems = []
    alerts = alert_metrics()
    sections = set(re.findall(r"^## (\w+)$", (ROOT / "docs/runbooks.md").read_text(encoding="utf-8"), re.M))
    alerted = set().union(*alerts.values())
    row = None
    panels = sorted(dash.get("panels", []), key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
    for p in panels:
        title = p.get("title", "?")
        if p.get("type") == "row":
            row = title
            continue
        used = set()
        for t in p.get("targets", []):
            used |= metrics(t.get("expr", ""))
        links = [l.get("url", "") for l in p.get("links", [])]
        for url in links:
            if not url.startswith(RUNBOOKS):
                continue
            anchor = url[len(RUNBOOKS):]
            names = [a for a in alerts if a.lower() == anchor]
            if not names:
                problems.append(f"panel {title!r} links {url}: no alert by that name")
            elif names[0] not in sections:
                problems.append(f"panel {title!r} links {url}: no section in docs/runbooks.md")
        if used & alerted and not any(u.startswith(RUNBOOKS) for u in links):
            problems.append(f"panel {title!r} shows what an alert fires on ({sorted(used & alerted)}) but links no runbook")
        areas = {area for m in used for prefix, area in AREAS if m.startswith(prefix)}
        if len(areas) == 1 and title != "Warnings":
            (area,) = areas
            if row != area:
                problems.append(f"panel {title!r} is under row {row!r}, not {area!r}")
        if "credwatch_twilio_balance" in used:
            for t in p.get("targets", []):
                if "{{currency}}" not in t.get("legendFormat", "{{currency}}"):
                    problems.append(f"panel {title!r} shows a balance without its currency")
    warnings = [p for p in panels if p.get("title") == "Warnings"]
    if not warnings:
        problems.append("no \"Warnings\" panel mirroring `credwatch check`'s marks")
    else:
        expr = " ".join(t.get("expr", "") for t in warnings[0].get("targets", []))
        for w in WARNINGS:
            if f'"warning", "{w}"' not in expr:
                problems.append(f"the Warnings panel does not show {w}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dashboard", nargs="?", default=str(DEFAULT))
    ap.add_argument("--interval", default="1m", help="value of $__rate_interval (default 1m)")
    ap.add_argument("--annotations", action="store_true",
                    help="also print the annotation queries")
    ap.add_argument("--lint", action="store_true",
                    help="check runbook links, rows, currency and the Warnings panel instead")
    ap.add_argument("--with-titles", action="store_true",
                    help="prefix each line with the panel title and refId, then a tab")
    args = ap.parse_args()
    if not re.fullmatch(r"\d+[smh]", args.interval):
        ap.error("--interval must look like 30s, 1m or 1h")
    dash = json.loads(pathlib.Path(args.dashboard).read_text(encoding="utf-8"))
    if args.lint:
        problems = lint(dash)
        for problem in problems:
            print(f"dashboard: {problem}", file=sys.stderr)
        return 1 if problems else 0
    bad = 0
    for where, expr in expressions(dash, args.annotations):
        out = substitute(expr, args.interval)
        if "$" in out:
            print(f"unsubstituted variable in {where}: {out}", file=sys.stderr)
            bad += 1
        print(f"{where}\t{out}" if args.with_titles else out)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
