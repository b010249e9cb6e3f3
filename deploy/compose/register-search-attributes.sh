#!/bin/sh
# One-shot (admin-tools image): wait for the namespace, then register proxmox-agent's search attributes.
# Idempotent: an attribute that already exists is fine; any other error fails the service.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; do
  echo "waiting for namespace $ns on $TEMPORAL_ADDRESS"; sleep 2
done
create() {
  if out=$(temporal operator search-attribute create --namespace "$ns" --name "$1" --type "$2" 2>&1); then
    echo "registered $1 ($2)"
  elif echo "$out" | grep -qi 'already exists'; then
    echo "$1 already registered"
  else
    echo "$out" >&2; exit 1
  fi
}
create ProxmoxAction Keyword
create ProxmoxEnvironment Keyword
create ProxmoxRisk Keyword
create ProxmoxStatus Keyword
create ProxmoxNode Keyword
create ProxmoxVmid Int
create ProxmoxRequester Keyword
create ProxmoxPlanId Keyword
temporal operator search-attribute list --namespace "$ns"
