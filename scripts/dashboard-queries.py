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

Standard library only. Usage:
  scripts/dashboard-queries.py [dashboards/credwatch.json] [--with-titles] [--annotations]
Exits non-zero if an expression still contains a `$` after substitution.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dashboard", nargs="?", default=str(DEFAULT))
    ap.add_argument("--interval", default="1m", help="value of $__rate_interval (default 1m)")
    ap.add_argument("--annotations", action="store_true",
                    help="also print the annotation queries")
    ap.add_argument("--with-titles", action="store_true",
                    help="prefix each line with the panel title and refId, then a tab")
    args = ap.parse_args()
    if not re.fullmatch(r"\d+[smh]", args.interval):
        ap.error("--interval must look like 30s, 1m or 1h")
    dash = json.loads(pathlib.Path(args.dashboard).read_text(encoding="utf-8"))
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
