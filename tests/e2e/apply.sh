#!/usr/bin/env bash
# End to end: server-side apply with the real kubectl 1.32 against `skiff server
# --disable-agent`: `kubectl apply --server-side` creates and changes objects, managedFields are
# shown with --show-managed-fields, a field owned by the client-side apply manager conflicts
# with upstream's message, and --force-conflicts takes it over.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server || exit 1

deploy() { # name replicas image
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  namespace: ssa
  labels: {app: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers:
      - {name: web, image: "$3"}
EOF
}

printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ssa}\n' >"$WORK/ns.yaml"
k create -f "$WORK/ns.yaml" >/dev/null

# --- create and change with server-side apply ---
deploy web 1 nginx:1.26 >"$WORK/web.yaml"
check "apply --server-side creates" "deployment.apps/web serverside-applied" k apply --server-side -f "$WORK/web.yaml"
check "managedFields name the kubectl manager with operation Apply" "manager: kubectl" \
  k get deploy web -n ssa -o yaml --show-managed-fields
check "managedFields are FieldsV1 with keyed list items" 'k:\{"name":"web"\}' \
  k get deploy web -n ssa -o yaml --show-managed-fields
check_eq "the applier owns spec.replicas" "Apply" \
  k get deploy web -n ssa -o 'jsonpath={.metadata.managedFields[?(@.manager=="kubectl")].operation}'
check "defaults are applied as on create" "RollingUpdate" k get deploy web -n ssa -o 'jsonpath={.spec.strategy.type}'
check "re-apply unchanged" "deployment.apps/web serverside-applied" k apply --server-side -f "$WORK/web.yaml"
deploy web 2 nginx:1.27 >"$WORK/web.yaml"
check "apply --server-side changes" "deployment.apps/web serverside-applied" k apply --server-side -f "$WORK/web.yaml"
check_eq "replicas changed" "2" k get deploy web -n ssa -o 'jsonpath={.spec.replicas}'
check_eq "image changed" "nginx:1.27" k get deploy web -n ssa -o 'jsonpath={.spec.template.spec.containers[0].image}'
check_eq "generation bumped once" "2" k get deploy web -n ssa -o 'jsonpath={.metadata.generation}'

# --- a field the applier stops applying goes ---
cat >"$WORK/cm.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: ssa}
data: {a: "1", b: "2"}
EOF
check "apply a configmap" "configmap/cfg serverside-applied" k apply --server-side -f "$WORK/cm.yaml"
sed -i '/^data/c\data: {a: "1"}' "$WORK/cm.yaml"
check "apply it without a key" "configmap/cfg serverside-applied" k apply --server-side -f "$WORK/cm.yaml"
check_eq "the dropped key is removed" '{"a":"1"}' k get cm cfg -n ssa -o 'jsonpath={.data}'

# --- conflict with the client-side apply manager ---
deploy csa 1 nginx:1.26 >"$WORK/csa.yaml"
check "client-side apply creates" "deployment.apps/csa created" k apply -f "$WORK/csa.yaml"
check "client-side apply records its manager" "manager: kubectl-client-side-apply" \
  k get deploy csa -n ssa -o yaml --show-managed-fields
deploy csa 3 nginx:1.26 >"$WORK/csa.yaml"
check_fails "server-side apply of a changed field conflicts" \
  'conflict with "kubectl-client-side-apply" using apps/v1: \.spec\.replicas' \
  k apply --server-side -f "$WORK/csa.yaml"
check_eq "the conflicting apply changed nothing" "1" k get deploy csa -n ssa -o 'jsonpath={.spec.replicas}'
check "--force-conflicts takes the field over" "deployment.apps/csa serverside-applied" \
  k apply --server-side --force-conflicts -f "$WORK/csa.yaml"
check_eq "replicas changed by the forced apply" "3" k get deploy csa -n ssa -o 'jsonpath={.spec.replicas}'
check_eq "the forced applier owns replicas" "{}" \
  k get deploy csa -n ssa -o 'jsonpath={.metadata.managedFields[?(@.operation=="Apply")].fieldsV1.f:spec.f:replicas}'

# --- other writes keep and extend managedFields ---
check "label records its own manager" "configmap/cfg labeled" k label cm cfg -n ssa tier=x
check "kubectl-label owns the label" "manager: kubectl-label" k get cm cfg -n ssa -o yaml --show-managed-fields
k get cm cfg -n ssa -o yaml >"$WORK/cfg-get.yaml"
check "replace without managedFields" "configmap/cfg replaced" k replace -f "$WORK/cfg-get.yaml"
check "replace keeps the applier's managedFields" "manager: kubectl$" k get cm cfg -n ssa -o yaml --show-managed-fields

# --- errors ---
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: BAD, namespace: ssa}\n' >"$WORK/bad.yaml"
check_fails "apply --server-side of an invalid object is refused" "is invalid" \
  k apply --server-side -f "$WORK/bad.yaml"

summary
