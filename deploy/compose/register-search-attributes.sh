#!/bin/sh
# One-shot (admin-tools image): the namespace and proxmox-agent's search attributes, then a probe.
#  1. wait for the cluster, create the namespace (TEMPORAL_NAMESPACE_RETENTION) unless it exists;
#  2. register the search attributes (an attribute that already exists is fine; an error that lasts
#     30 s fails the service);
#  3. exit 0 only once a workflow using all of them starts: a real server caches search attributes, so
#     for a few seconds after registration it still refuses them (issue 13, item 2). The probe is deleted.
# Uses TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, as the temporal CLI does.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health >/dev/null 2>&1; do
  echo "waiting for the Temporal cluster at $TEMPORAL_ADDRESS"; sleep 2
done
if ! temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
  temporal operator namespace create --namespace "$ns" --retention "${TEMPORAL_NAMESPACE_RETENTION:-720h}"
fi
until temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; do
  echo "waiting for namespace $ns"; sleep 1
done

probe_args=""
create() {
  tries=0
  # A namespace just created is not yet known to every part of the server: retry for up to 30 s.
  until out=$(temporal operator search-attribute create --namespace "$ns" --name "$1" --type "$2" 2>&1); do
    if echo "$out" | grep -qi 'already exists'; then break; fi
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || { echo "$out" >&2; exit 1; }
    sleep 1
  done
  echo "$1 ($2) registered"
  if [ "$2" = Int ]; then value=0; else value='"probe"'; fi
  probe_args="$probe_args --search-attribute $1=$value"
}
create ProxmoxAction Keyword
create ProxmoxEnvironment Keyword
create ProxmoxRisk Keyword
create ProxmoxStatus Keyword
create ProxmoxNode Keyword
create ProxmoxVmid Int
create ProxmoxRequester Keyword
create ProxmoxPlanId Keyword
create ProxmoxFrozen Keyword
temporal operator search-attribute list --namespace "$ns"

id="search-attribute-probe-$$-$(date +%s)"
tries=0
# shellcheck disable=SC2086 # probe_args is a list of flags
until temporal workflow start --namespace "$ns" --type searchAttributeProbe --task-queue search-attribute-probe \
  --workflow-id "$id" --execution-timeout 1m $probe_args >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "a workflow with the search attributes still cannot start after 60 s" >&2; exit 1; }
  echo "waiting for the server to use the new search attributes"; sleep 1
done
temporal workflow delete --namespace "$ns" --workflow-id "$id" >/dev/null 2>&1 || true
echo "namespace $ns ready: a workflow with every search attribute starts"
