#!/usr/bin/env bash
# Writes a copy of the alerting rules with every `for:` shortened (default 5s),
# for end-to-end tests that run Prometheus against `credwatch demo` with a 1s
# evaluation interval and need alerts to reach `firing` within a minute.
# The production file keeps its realistic durations.
#
# Usage: scripts/rules-for-test.sh [OUT_FILE] [DURATION]
#   OUT_FILE  where to write (default: a new temp file); its path is printed
#   DURATION  replacement for every `for:` (default: 5s)
# Env: RULES  source file (default: deploy/prometheus/credwatch-rules.yml)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${RULES:-$root/deploy/prometheus/credwatch-rules.yml}"
out="${1:-}"
duration="${2:-5s}"

if [[ ! "$duration" =~ ^[0-9]+(ms|s|m|h)$ ]]; then
  echo "rules-for-test.sh: invalid duration: $duration" >&2
  exit 2
fi
if [[ -z "$out" ]]; then
  out="$(mktemp "${TMPDIR:-/tmp}/credwatch-rules-test.XXXXXX.yml")"
fi

# Rewrite the `for:` of every rule (a `for:` key on its own line, at any
# indentation, as written in the rules file); anything else stays untouched.
sed -E "s/^([[:space:]]*)for:[[:space:]]*[0-9a-z]+[[:space:]]*(#.*)?\$/\1for: ${duration}/" "$src" >"$out"

# Every alert must now wait exactly $duration: count rules and `for:` lines.
alerts=$(grep -cE '^[[:space:]]*- alert:' "$out" || true)
fors=$(grep -cE "^[[:space:]]*for: ${duration}\$" "$out" || true)
others=$(grep -E '^[[:space:]]*for:' "$out" | grep -cvE "for: ${duration}\$" || true)
if [[ "$others" -ne 0 ]]; then
  echo "rules-for-test.sh: some for: lines were not rewritten in $out" >&2
  exit 1
fi
# Rules without `for:` fire immediately, which is fine for a test.
echo "rules-for-test.sh: $alerts alerts, $fors with for: $duration -> $out" >&2
echo "$out"
