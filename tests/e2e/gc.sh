#!/usr/bin/env bash
# End to end: the garbage collector with the real kubectl 1.32 on `skiff server --disable-agent
# --fake-nodes 2`. Applies examples/garbage-collection and deletes its ReplicaSet the three
# ways `kubectl delete --cascade=…` asks: orphan (the pods stay, their ownerReference removed
# before the ReplicaSet goes; applying it again adopts them), foreground (the pods are gone
# before the ReplicaSet is) and background (the ReplicaSet goes at once, its pods after).
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

EX=examples/garbage-collection/replicaset.yaml

start_server --fake-nodes 2 || exit 1
check "two simulated nodes become Ready" "condition met" k wait --for=condition=Ready nodes --all --timeout=30s

pods() {
  k get pods -l app=gc-demo -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' | sort | tr '\n' ' '
}
phases() {
  k get pods -l app=gc-demo -o 'jsonpath={.items[*].status.phase}'
}
# Each pod's owners as kind/name/uid/controller/blockOwnerDeletion, distinct lines.
owners() {
  k get pods -l app=gc-demo -o 'jsonpath={range .items[*]}{range .metadata.ownerReferences[*]}{.kind}/{.name}/{.uid}/{.controller}/{.blockOwnerDeletion}{"\n"}{end}{end}' | sort -u
}

check "the example applies" "replicaset.apps/gc-demo created" k apply -f $EX
eventually_eq "its three pods run" "Running Running Running" phases
RS_UID=$(k get rs gc-demo -o 'jsonpath={.metadata.uid}')
check_eq "every pod is owned by the ReplicaSet, as its controller, blocking its deletion" \
  "ReplicaSet/gc-demo/$RS_UID/true/true" owners
PODS=$(pods)

# --- orphan ---
check "delete --cascade=orphan" 'replicaset.apps "gc-demo" deleted' k delete rs gc-demo --cascade=orphan
check_fails "the ReplicaSet is gone" "NotFound" k get rs gc-demo
check_eq "its pods stay" "$PODS" pods
check_eq "without an owner, removed before the ReplicaSet went" "" owners
check "applying it again" "replicaset.apps/gc-demo created" k apply -f $EX
NEW_UID=$(k get rs gc-demo -o 'jsonpath={.metadata.uid}')
eventually_eq "adopts the orphans" "ReplicaSet/gc-demo/$NEW_UID/true/true" owners
check_eq "and makes no new pod" "$PODS" pods

# --- foreground ---
check "delete --cascade=foreground" 'replicaset.apps "gc-demo" deleted' k delete rs gc-demo --cascade=foreground --timeout=60s
check_fails "the ReplicaSet is gone" "NotFound" k get rs gc-demo
check_eq "and so are its pods, before it" "" pods

# --- background ---
check "applying it once more" "replicaset.apps/gc-demo created" k apply -f $EX
eventually_eq "three new pods run" "Running Running Running" phases
check "delete (background, the default)" 'replicaset.apps "gc-demo" deleted' k delete rs gc-demo
check_fails "the ReplicaSet is gone at once" "NotFound" k get rs gc-demo
eventually_eq "its pods follow" "" pods

summary
