#!/usr/bin/env bash
# End to end: `kubectl explain` (v1.32, OpenAPI v3) against `skiff server --disable-agent`.
# Explain finds the kind through a path's x-kubernetes-group-version-kind, then the component
# schema carrying the same GVK, and follows `$ref`/`allOf` through components.schemas.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

TAB=$'\t'
start_server || exit 1

# --- a kind ---
check "explain pods names the kind" "KIND: +Pod" k explain pods
check "explain pods prints the kind's description" "Pod is a collection of containers that can run on a host" k explain pods
check "explain pods lists metadata as ObjectMeta" "metadata${TAB}<ObjectMeta>" k explain pods
check "explain pods lists spec as PodSpec" "spec${TAB}<PodSpec>" k explain pods
check "explain pods describes the status field" "Most recently observed status of the pod" k explain pods
check "explain pods does not mark metadata required, as upstream" "^  metadata${TAB}<ObjectMeta>\$" k explain pods

# --- a field path through a pod template ---
check "explain a nested list field shows its type" "FIELD: containers <\[\]Container>" \
  k explain deployment.spec.template.spec.containers
check "explain deployment names the group" "GROUP: +apps" k explain deployment.spec.template.spec.containers
check "explain a list field lists the item's fields" "image${TAB}<string>" k explain deployment.spec.template.spec.containers
check "required item fields are marked" "name${TAB}<string> -required-" k explain deployment.spec.template.spec.containers
check "referenced types are named" "resources${TAB}<ResourceRequirements>" k explain deployment.spec.template.spec.containers
check "the field's description comes first" "List of containers belonging to the pod" \
  k explain deployment.spec.template.spec.containers

# --- recursive ---
check "explain --recursive reaches the pod template's containers" "        containers${TAB}<\[\]Container> -required-" \
  k explain deployment --recursive
check "explain --recursive shows maps of quantities" "limits${TAB}<map\[string\]Quantity>" k explain deployment --recursive
check "explain --recursive shows IntOrString" "maxSurge${TAB}<IntOrString>" k explain deployment --recursive
check "explain --recursive shows the selector as required" "selector${TAB}<LabelSelector> -required-" \
  k explain deployment --recursive
check "explain a nested field path: the rolling update's fields" "maxUnavailable${TAB}<IntOrString>" \
  k explain deployment.spec.strategy.rollingUpdate
check "explain a nested field path names its type" "FIELD: rollingUpdate <RollingUpdateDeployment>" \
  k explain deployment.spec.strategy.rollingUpdate
check "explain pods --recursive lists the containers as required" "^    containers${TAB}<\[\]Container> -required-" \
  k explain pods --recursive
check "explain pods --recursive reaches node affinity terms" "nodeSelectorTerms${TAB}<\[\]NodeSelectorTerm> -required-" \
  k explain pods --recursive

# --- short names and other groups ---
check "explain svc.spec.ports (short name)" "FIELD: ports <\[\]ServicePort>" k explain svc.spec.ports
check "service port fields" "targetPort${TAB}<IntOrString>" k explain svc.spec.ports
check "service port is required" "port${TAB}<integer> -required-" k explain svc.spec.ports
check "explain --api-version=batch/v1 cronjobs.spec" "FIELD: spec <CronJobSpec>" \
  k explain --api-version=batch/v1 cronjobs.spec
check "cronjob spec fields" "schedule${TAB}<string> -required-" k explain --api-version=batch/v1 cronjobs.spec
check "explain a cluster-scoped kind" "KIND: +ClusterRole" k explain clusterroles
check "explain a kind of apiregistration" "KIND: +APIService" k explain apiservices
check "explain a scalar field" "FIELD: replicas <integer>" k explain deployment.spec.replicas
check_fails "explain an unknown field" 'field "nope" does not exist' k explain pods.spec.nope

# --- validation still goes to the server, and apply still works ---
cat >"$WORK/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: explained
  namespace: default
data:
  a: "1"
YAML
check "apply still validates on the server" "configmap/explained created" k apply -f "$WORK/cm.yaml"
sed -i 's/"1"/"2"/' "$WORK/cm.yaml"
check "re-apply (strategic patch from compiled-in metadata)" "configmap/explained configured" k apply -f "$WORK/cm.yaml"

summary
