#!/usr/bin/env bash
# End to end: PodDisruptionBudgets with the real kubectl 1.32 against `skiff server
# --disable-agent --fake-nodes 2`: the budget's status counts healthy pods, `kubectl drain`
# is held back by it (evictions answered 429) and completes once the budget allows a
# disruption, the evicted pod being recreated on the other node.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server --fake-nodes 2 || exit 1

check "the example applies" "poddisruptionbudget.policy/web created" k apply -f examples/disruption-budget/web.yaml
check "the deployment becomes available" "successfully rolled out" k rollout status deployment/web --timeout=30s
check "the budget counts two healthy pods and allows no disruption" "^2 2 0$" \
  bash -c 'for _ in $(seq 1 50); do out=$(kubectl --cache-dir "$1" get pdb web -o "jsonpath={.status.currentHealthy} {.status.desiredHealthy} {.status.disruptionsAllowed}"); [ "$out" = "2 2 0" ] && break; sleep 0.2; done; echo "$out"' _ "$WORK/cache"

# Spread: one pod per node is what the default spreading gives two replicas on two nodes.
node=$(k get pods -l app=web -o 'jsonpath={.items[0].spec.nodeName}')
check_fails "drain is held back by the budget" "Cannot evict pod as it would violate the pod's disruption budget" \
  k drain "$node" --ignore-daemonsets --timeout=4s
check_eq "the node was cordoned all the same" "true" k get node "$node" -o 'jsonpath={.spec.unschedulable}'

check "the budget is relaxed" "poddisruptionbudget.policy/web patched" \
  k patch pdb web --type merge -p '{"spec":{"minAvailable":1}}'
check "drain completes once the budget allows it" "node/$node drained" \
  k drain "$node" --ignore-daemonsets --timeout=60s
check "the deployment is available again, on the other node" "successfully rolled out" \
  k rollout status deployment/web --timeout=30s
check_eq "no pod of the deployment is left on the drained node" "" \
  k get pods -l app=web --field-selector "spec.nodeName=$node,status.phase=Running" -o 'jsonpath={.items[*].metadata.name}'

summary
