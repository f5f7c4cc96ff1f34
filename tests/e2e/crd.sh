#!/usr/bin/env bash
# End to end: CustomResourceDefinitions with the real kubectl 1.32 against `skiff server
# --disable-agent`: a CRD with a schema, printer columns and status/scale subresources is
# served at once (kubectl's cached discovery notices it), a custom object is accepted and
# defaulted, bad fields are refused with field paths, `kubectl get` shows the printer columns,
# `kubectl explain` reads the schema, `kubectl scale` uses the scale subresource, and
# `kubectl delete crd` removes the objects.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server || exit 1
EX=examples/crd

# Fill kubectl's discovery cache before the CRD exists.
check "discovery cached before the CRD" "No resources found" k get pods

# --- the CRD ---
check "apply the CRD" "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created" \
  k apply -f "$EX/crontab-crd.yaml"
check "the CRD becomes Established" "condition met" \
  k wait --for condition=established --timeout=10s crd/crontabs.stable.example.com
check "kubectl notices the new kind (stale discovery cache)" "No resources found" k get crontabs
check "api-resources lists it with its short name" "crontabs +ct +stable.example.com/v1 +true +CronTab" \
  k api-resources --api-group=stable.example.com
check_eq "the server accepted the names" "True" \
  k get crd crontabs.stable.example.com -o 'jsonpath={.status.conditions[?(@.type=="NamesAccepted")].status}'
check_eq "stored versions" "v1" k get crd crontabs.stable.example.com -o 'jsonpath={.status.storedVersions[*]}'
check "kubectl get crd" "crontabs.stable.example.com" k get crd

# --- changing the CRD (kubectl's three-way patch) serves the change ---
sed 's/shortNames: \[ct\]/shortNames: [ct, cts]/' "$EX/crontab-crd.yaml" >"$WORK/crd2.yaml"
check "re-apply the CRD with another short name" "crontabs.stable.example.com configured" k apply -f "$WORK/crd2.yaml"
check_eq "the new short name is accepted" "ct cts" \
  k get crd crontabs.stable.example.com -o 'jsonpath={.status.acceptedNames.shortNames[*]}'
check "kubectl resolves the new short name" "No resources found" k get cts

# --- custom objects: accepted and defaulted, refused on bad fields ---
check "apply a custom object (strict validation)" "crontab.stable.example.com/nightly created" \
  k apply -f "$EX/crontab.yaml"
check_eq "replicas defaulted" "1" k get crontab nightly -o 'jsonpath={.spec.replicas}'
check_eq "enum field defaulted" "Allow" k get ct nightly -o 'jsonpath={.spec.concurrencyPolicy}'
check "re-apply unchanged" "crontab.stable.example.com/nightly (unchanged|configured)" k apply -f "$EX/crontab.yaml"
check_fails "a wrong type is refused with its field path" \
  'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"' \
  k apply -f "$EX/crontab-invalid.yaml"
check_fails "an enum violation is refused" 'spec.concurrencyPolicy: Unsupported value: "Sometimes"' \
  k apply -f "$EX/crontab-invalid.yaml"
cat >"$WORK/typo.yaml" <<EOF
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: typo}
spec:
  cronSpec: "0 3 * * *"
  image: x
  imagePullPolcy: Always
EOF
check_fails "an unknown field is refused under kubectl's strict validation" 'unknown field "spec.imagePullPolcy"' \
  k apply -f "$WORK/typo.yaml"
check "with --validate=false it is pruned" "crontab.stable.example.com/typo created" \
  k apply --validate=false -f "$WORK/typo.yaml"
check_eq "the unknown field was pruned" "" k get ct typo -o 'jsonpath={.spec.imagePullPolcy}'
check_fails "a pattern violation is refused" "spec.cronSpec in body should match" \
  k create -f - <<EOF
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: badcron}
spec: {cronSpec: "often", image: x}
EOF

# --- printer columns, explain ---
check "kubectl get shows the printer columns" "NAME +SCHEDULE +REPLICAS +AGE" k get crontabs
check "the row" "nightly +0 3 \* \* \* +1 " k get crontabs
check "-o wide adds priority columns" "NAME +SCHEDULE +REPLICAS +IMAGE +AGE" k get crontabs -o wide
check "get all includes the category" "crontab.stable.example.com/nightly" k get all
check "get -w streams Table rows" "nightly +0 3 \* \* \* +1 " timeout 3 kubectl --cache-dir "$WORK/cache" get crontabs -w
check "sort-by a printer-column field" "NAME +SCHEDULE" k get crontabs --sort-by=.spec.replicas
check "describe" "Cron Spec: +0 3 \* \* \*" k describe crontab nightly
check "explain reads the schema" "cronSpec.*<string>.*-required-" k explain crontab.spec
check "explain field descriptions" "How many copies run at once" k explain crontab.spec.replicas

# --- subresources and versions ---
check "kubectl scale" "crontab.stable.example.com/nightly scaled" k scale crontab nightly --replicas=3
check_eq "scaled" "3" k get ct nightly -o 'jsonpath={.spec.replicas}'
check "status written through the status subresource" "patched" \
  k patch ct nightly --subresource=status --type=merge -p '{"status":{"replicas":3,"selector":"app=nightly"}}'
check_eq "status kept" "3" k get ct nightly -o 'jsonpath={.status.replicas}'
check "a merge patch" "patched" k patch ct nightly --type=merge -p '{"spec":{"image":"registry.example/backup:1.5"}}'
check_fails "a strategic merge patch is refused for custom objects" "UnsupportedMediaType|unknown format" \
  k patch ct nightly -p '{"spec":{"image":"x"}}'
check_eq "served in the other version" "stable.example.com/v1beta1" \
  k get crontabs.v1beta1.stable.example.com nightly -o 'jsonpath={.apiVersion}'
check "server-side apply" "crontab.stable.example.com/ssa serverside-applied" \
  k apply --server-side -f - <<EOF
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: ssa}
spec: {cronSpec: "1 1 * * *", image: "y"}
EOF

# --- kubectl edit (a merge patch for custom kinds) ---
check "kubectl edit" "crontab.stable.example.com/nightly edited" \
  env KUBE_EDITOR="sed -i -e s/backup:1.5/backup:1.6/" kubectl --cache-dir "$WORK/cache" edit crontab nightly
check_eq "edited" "registry.example/backup:1.6" k get ct nightly -o 'jsonpath={.spec.image}'

# --- every kubectl from 1.27 to 1.33 applies, changes and deletes a custom object ---
KUBECTL_DIR=${KUBECTL_DIR:-/usr/lib/google-cloud-sdk/bin}
for V in ${VERSIONS:-27 28 29 30 31 32 33}; do
  KV="$KUBECTL_DIR/kubectl.1.$V"
  [ -x "$KV" ] || { fail "kubectl 1.$V is installed at $KV"; continue; }
  kv() { "$KV" --cache-dir "$WORK/cache-1.$V" "$@"; }
  sed "s/name: nightly/name: v1-$V/" "$EX/crontab.yaml" >"$WORK/ct-$V.yaml"
  check "1.$V: apply a custom object" "crontab.stable.example.com/v1-$V created" kv apply -f "$WORK/ct-$V.yaml"
  sed -i 's/backup:1.4/backup:1.5/' "$WORK/ct-$V.yaml"
  check "1.$V: apply a change" "crontab.stable.example.com/v1-$V configured" kv apply -f "$WORK/ct-$V.yaml"
  check_eq "1.$V: changed and defaulted" "registry.example/backup:1.5 1" \
    kv get crontab "v1-$V" -o 'jsonpath={.spec.image} {.spec.replicas}'
  check "1.$V: printer columns" "NAME +SCHEDULE +REPLICAS +AGE" kv get crontabs
  check "1.$V: explain" "cronSpec" kv explain crontab.spec
  check "1.$V: delete" "crontab.stable.example.com \"v1-$V\" deleted" kv delete -f "$WORK/ct-$V.yaml"
done

# --- deleting the CRD deletes its objects ---
check "delete the CRD" 'customresourcedefinition.apiextensions.k8s.io "crontabs.stable.example.com" deleted' \
  k delete crd crontabs.stable.example.com --timeout=30s
check_fails "the kind is gone" "doesn't have a resource type|NotFound|not found" k get crontabs
check "re-created, the CRD starts empty" "created" k apply -f "$EX/crontab-crd.yaml"
k wait --for condition=established --timeout=10s crd/crontabs.stable.example.com >/dev/null 2>&1
check "no objects survived" "No resources found" k get crontabs
k delete crd crontabs.stable.example.com >/dev/null 2>&1

summary
