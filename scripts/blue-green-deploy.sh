#!/usr/bin/env bash
# The seed's blue-green deployment (api-gateway-workflows.md, "Deployment Process") for tollway:
#
#   scripts/blue-green-deploy.sh            deploy the idle color, smoke-test it, switch
#   scripts/blue-green-deploy.sh rollback   point gateway-service back at the other color
#
# 1. read the live color from gateway-service's `version` selector (blue or green);
# 2. `kubectl apply -k deploy/k8s/overlays/<new>` (gateway-<new>, its own HPA/PDB, and
#    gateway-service-<new>, the Service the smoke test goes through), then wait for the rollout;
# 3. `tollway smoke` against the new color; only when it passes, patch gateway-service's
#    selector to the new color and check the patch took;
# 4. a failing smoke test deletes the new color (`kubectl delete -k`); traffic never moved.
# The old color keeps running after a switch, so `rollback` is one selector patch (after a
# smoke test of the old color, too). Remove it by hand once the new one has proven itself:
#   kubectl delete -k deploy/k8s/overlays/<old>
#
# Environment:
#   KUBECTL       kubectl command (default: kubectl)
#   NAMESPACE     namespace of the gateway (default: gateway)
#   IMAGE         image for the new color (default: the overlay's); set with `kubectl set image`
#   SMOKE_URL     base URL of the color under test; `{color}` is replaced (default:
#                 http://gateway-service-{color}.<namespace>.svc.cluster.local:8000, i.e. run
#                 from inside the cluster, or point it at a `kubectl port-forward`)
#   SMOKE_ROUTES  space-separated paths `tollway smoke` requests (default: /health, the seed's)
#   SMOKE_RETRIES retries per smoke check, 1 s apart (default: 3)
#   WAIT_TIMEOUT  rollout wait (default: 300s, the seed's)
#   TOLLWAY       tollway command (default: tollway)
# Exit: 0 switched (or rolled back); 1 smoke test failed, nothing switched; 2 usage/cluster error.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECTL=${KUBECTL:-kubectl}
NAMESPACE=${NAMESPACE:-gateway}
TOLLWAY=${TOLLWAY:-tollway}
SMOKE_URL=${SMOKE_URL:-"http://gateway-service-{color}.${NAMESPACE}.svc.cluster.local:8000"}
SMOKE_ROUTES=${SMOKE_ROUTES:-/health}
SMOKE_RETRIES=${SMOKE_RETRIES:-3}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-300s}
OVERLAYS=deploy/k8s/overlays
mode=${1:-deploy}

die() { echo "blue-green: $*" >&2; exit 2; }
k() { $KUBECTL -n "$NAMESPACE" "$@"; }

case "$mode" in
  deploy|rollback) ;;
  *) die "usage: $0 [deploy|rollback]" ;;
esac

current=$(k get service gateway-service -o 'jsonpath={.spec.selector.version}') \
  || die "cannot read service gateway-service in namespace $NAMESPACE (first time: kubectl apply -f deploy/k8s/blue-green/gateway-service.yaml)"
case "$current" in
  blue) new=green ;;
  green) new=blue ;;
  *) die "gateway-service selects version '$current'; expected blue or green" ;;
esac

smoke() {  # smoke COLOR: tollway smoke against that color's own Service
  local url=${SMOKE_URL//\{color\}/$1} args=() route
  for route in $SMOKE_ROUTES; do args+=(--route "$route"); done
  echo "Smoke testing $1 at $url (${SMOKE_ROUTES})"
  $TOLLWAY smoke "$url" "${args[@]}" --retries "$SMOKE_RETRIES"
}

switch() {  # switch COLOR: all traffic at once, then read the selector back
  k patch service gateway-service -p "{\"spec\":{\"selector\":{\"version\":\"$1\"}}}"
  local now
  now=$(k get service gateway-service -o 'jsonpath={.spec.selector.version}')
  [[ "$now" == "$1" ]] || die "patched gateway-service but it selects '$now', not '$1'"
}

if [[ "$mode" == rollback ]]; then
  echo "Rolling back: traffic on $current, returning it to $new"
  k rollout status "deployment/gateway-$new" --timeout="$WAIT_TIMEOUT" \
    || die "gateway-$new is not available; nothing to roll back to"
  smoke "$new" || { echo "❌ $new fails its smoke test; traffic stays on $current" >&2; exit 1; }
  switch "$new"
  echo "✅ Rolled back. Traffic now on $new ($current kept running)"
  exit 0
fi

echo "Current environment: $current"
echo "Deploying to: $new"

k apply -k "$OVERLAYS/$new"
if [[ -n "${IMAGE:-}" ]]; then
  k set image "deployment/gateway-$new" "tollway=$IMAGE"
fi
# `rollout status` rather than the seed's `kubectl wait pod -l ...`: it waits for the new
# ReplicaSet, where a pod wait can be satisfied by pods of the previous rollout.
if ! k rollout status "deployment/gateway-$new" --timeout="$WAIT_TIMEOUT"; then
  echo "❌ gateway-$new did not become ready. Removing it; traffic stays on $current" >&2
  k delete -k "$OVERLAYS/$new"
  exit 1
fi

if smoke "$new"; then
  echo "Smoke tests passed. Switching traffic..."
  switch "$new"
  echo "✅ Deployment successful. Traffic now on $new"
  echo "Old environment ($current) kept for rollback: $0 rollback"
else
  echo "❌ Smoke tests failed. Rolling back..." >&2
  k delete -k "$OVERLAYS/$new"
  echo "Traffic stays on $current" >&2
  exit 1
fi
