#!/usr/bin/env bash
# Install the Debian tools the deploy/monitoring assets are checked with, when missing:
#   promtool, prometheus  <- Debian package `prometheus`
# Called by tests/deploy (before they skip) and by scripts/run-monitoring.
# Exit 0: every tool is on PATH. Exit 3: missing and cannot be installed here (not root, or no
# apt-get); the reason is printed on stderr.
set -euo pipefail

missing=()
for tool in promtool prometheus; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-tools: ${missing[*]} missing and not root: run 'sudo apt-get install -y prometheus'" >&2
  exit 3
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tools: ${missing[*]} missing and no apt-get: install Prometheus 2.x (promtool, prometheus) by hand" >&2
  exit 3
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# The Debian package starts a prometheus service on :9090 where systemd runs; nothing here
# depends on it, and containers without systemd simply do not start it.
apt-get install -y -qq --no-install-recommends prometheus >&2
for tool in promtool prometheus; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-tools: $tool still missing" >&2; exit 3; }
done
