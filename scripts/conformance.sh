#!/usr/bin/env bash
# `npm run conformance`: a third-party client against the simulator (scripts/conformance/).
#
#  1. installs proxmoxer (pinned 2.3.x, from PyPI) into the project-local venv .venv/ that
#     schemathesis also uses (git-ignored; never system-wide), once;
#  2. runs scripts/conformance/proxmoxer_conformance.py: it starts the prod demo cluster on a random
#     loopback port behind a TLS proxy with a certificate made for the run, and checks what proxmoxer
#     gets against what a real Proxmox VE answers.
# Report: test-artifacts/conformance.json (numPassedTests, numFailedTests, numExpectedToDiffer, checks).
# Exit status: non-zero when a check fails (a known difference, reported apart, does not fail it).
# Environment: PYTHON (default python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
PROXMOXER_VERSION=2.3.0
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
REPORT="$ROOT/test-artifacts/conformance.json"

if ! "$VENV/bin/python" -c "import proxmoxer, requests, sys; sys.exit(proxmoxer.__version__ != '$PROXMOXER_VERSION')" 2>/dev/null; then
  echo "==> installing proxmoxer $PROXMOXER_VERSION into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  # proxmoxer's https backend needs requests, which it does not depend on itself.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "proxmoxer==$PROXMOXER_VERSION" "requests>=2.31,<3"
fi

mkdir -p "$(dirname "$REPORT")"
rm -f "$REPORT"
exec "$VENV/bin/python" "$ROOT/scripts/conformance/proxmoxer_conformance.py" "$REPORT"
