#!/usr/bin/env bash
# End to end: every kubectl from 1.27 to 1.33 against one Skiff server. /usr/bin/kubectl is
# gcloud's dispatcher, which would pick 1.32 for this server, so the versioned binaries are
# called directly. Each version applies examples/api-basics into a namespace of its own,
# changes the Deployment and applies again, reads it back, diffs (no change: exit 0), creates
# a namespace (a protobuf body for the newer clients), explains a field and deletes it all.
# kubectl 1.27 and 1.28 read /openapi/v2 as protobuf before applying; the others read v3.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

KUBECTL_DIR=${KUBECTL_DIR:-/usr/lib/google-cloud-sdk/bin}
VERSIONS=${VERSIONS:-"27 28 29 30 31 32 33"}
start_server || exit 1

for V in $VERSIONS; do
  KV="$KUBECTL_DIR/kubectl.1.$V"
  if [ ! -x "$KV" ]; then
    fail "kubectl 1.$V is installed at $KV"
    continue
  fi
  kv() { "$KV" --cache-dir "$WORK/cache-1.$V" "$@"; }
  NS=demo-1-$V
  M="$WORK/manifests-1.$V"
  mkdir -p "$M"
  for f in examples/api-basics/*.yaml; do
    sed -e "s/namespace: demo\$/namespace: $NS/" -e "s/^  name: demo\$/  name: $NS/" "$f" >"$M/$(basename "$f")"
  done

  check "1.$V: client version" "gitVersion: v1\.$V\." kv version --client -o yaml
  check "1.$V: apply the namespace" "namespace/$NS created" kv apply -f "$M/namespace.yaml"
  check "1.$V: apply the directory" "deployment.apps/web created" kv apply -f "$M"
  check "1.$V: the service was created too" "service/web created|service/web unchanged" kv apply -f "$M"
  sed -i -e 's/replicas: 2/replicas: 3/' -e 's/image: nginx:1.27/image: nginx:1.28/' "$M/deployment.yaml"
  check "1.$V: apply a change" "deployment.apps/web configured" kv apply -f "$M"
  check_eq "1.$V: get shows the change" "3 nginx:1.28" \
    kv get deployment web -n "$NS" -o 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}'
  check_eq "1.$V: the last-applied annotation follows the manifest" "3" \
    sh -c "'$KV' --cache-dir '$WORK/cache-1.$V' get deployment web -n $NS -o 'jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"spec\"][\"replicas\"])'"
  check "1.$V: get lists the configmap" "web-config +2 " kv get configmaps -n "$NS"
  check_ok "1.$V: diff with no change exits 0" kv diff -f "$M"
  sed -i -e 's/replicas: 3/replicas: 4/' "$M/deployment.yaml"
  check_fails "1.$V: diff with a change exits 1 and shows it" "\+  replicas: 4" kv diff -f "$M"
  check "1.$V: create namespace" "namespace/created-1-$V created" kv create namespace "created-1-$V"
  check "1.$V: explain deployment.spec.replicas" "replicas.*<integer>" kv explain deployment.spec.replicas
  if [ "$V" -le 28 ]; then
    # The old explain reads every model of /openapi/v2 (gnostic protobuf, kube-openapi's parser).
    check "1.$V: explain from OpenAPI v2" "RESOURCE: strategy <Object>" \
      kv explain deployment.spec.strategy --output=plaintext-openapiv2
    check "1.$V: explain from OpenAPI v2 follows references into lists" "containerPort.*<integer>" \
      kv explain pods.spec.containers.ports --output=plaintext-openapiv2
  fi
  check "1.$V: delete -f" "deployment.apps \"web\" deleted" kv delete -f "$M"
  check "1.$V: delete the created namespace" "namespace \"created-1-$V\" deleted" kv delete namespace "created-1-$V" --wait=false
done

summary
