#!/usr/bin/env bash
# Static checks of the operator artifacts:
#  - promtool check rules + promtool test rules for the alerting rules
#  - the test copy with shortened `for:` still loads
#  - deploy/kubernetes/prometheus-operator/prometheusrule.yaml is in sync
#  - the Grafana dashboard parses and lists its queries; its layout is linted
#    (runbook links, panels under the right rows, currency, Warnings panel)
#  - amtool check-config of the Alertmanager example (inhibitions)
# Installs prometheus/promtool first if needed (scripts/install-prometheus.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  scripts/install-prometheus.sh
fi

promtool check rules deploy/prometheus/credwatch-rules.yml
promtool test rules deploy/prometheus/credwatch-rules.test.yml

tmp="$(scripts/rules-for-test.sh)"
trap 'rm -f "$tmp"' EXIT
promtool check rules "$tmp"

python3 scripts/sync-prometheusrule.py --check

# Every dashboard query must at least parse: wrap them as recording rules.
queries="$(mktemp "${TMPDIR:-/tmp}/credwatch-dashboard-queries.XXXXXX.yml")"
trap 'rm -f "$tmp" "$queries"' EXIT
python3 scripts/dashboard-queries.py --annotations | python3 -c '
import json, sys
rules = [{"record": "dashboard:query_%d" % i, "expr": line.strip()}
         for i, line in enumerate(sys.stdin) if line.strip()]
print(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
' >"$queries"
promtool check rules "$queries"
python3 scripts/dashboard-queries.py --lint

amtool check-config deploy/alertmanager/alertmanager.yml

# The kustomize entry points and the optional components build (with kubectl's
# or a standalone kustomize, when one is installed; the manifests' content is
# tested by tests/it/operator_artifacts.rs either way).
if command -v kustomize >/dev/null 2>&1; then
  kustomize_build=(kustomize build)
elif command -v kubectl >/dev/null 2>&1; then
  kustomize_build=(kubectl kustomize)
else
  kustomize_build=()
  echo "check-rules.sh: no kustomize or kubectl on PATH; kustomize builds not checked" >&2
fi
if [[ ${#kustomize_build[@]} -gt 0 ]]; then
  overlay="$(mktemp -d deploy/kubernetes/.check-overlay.XXXXXX)"
  trap 'rm -f "$tmp" "$queries"; rm -rf "$overlay"' EXIT
  printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' \
    'namespace: credwatch' 'resources: [../prometheus-operator]' \
    'components: [../components/networkpolicy, ../components/grafana-dashboard]' \
    >"$overlay/kustomization.yaml"
  for dir in deploy/kubernetes deploy/kubernetes/prometheus-operator deploy/kubernetes/sidecar "$overlay"; do
    "${kustomize_build[@]}" "$dir" >/dev/null
  done
  echo "check-rules.sh: kustomize builds ok" >&2
fi

echo "check-rules.sh: all checks passed" >&2
