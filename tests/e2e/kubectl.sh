#!/usr/bin/env bash
# End to end: the real kubectl 1.32 against `skiff server --disable-agent`.
# Applies examples/api-basics and checks what users see: tables, -o wide/yaml/jsonpath, -A,
# selectors, watch, replace, label, annotate, patch, scale, delete, api-resources, get all,
# errors as upstream prints them, namespaces and finalizers, and a restart that keeps it all.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

EX=examples/api-basics
start_server || exit 1

# --- version and discovery ---
check "kubectl version reports a v1.32 server" "Server Version: v1\.32" k version
check "api-resources lists deployments with short name and group" "deployments +deploy +apps/v1 +true +Deployment" k api-resources
check "api-resources lists pods/eviction-capable core kinds" "pods +po +v1 +true +Pod" k api-resources
check "system namespaces exist" "kube-node-lease" k get namespaces
check "namespace table has STATUS" "default +Active" k get namespaces
check "the kubernetes Service exists" "kubernetes +ClusterIP +10\.43\.0\.1 +<none> +443/TCP" k get svc kubernetes

# --- create and get ---
check "create the example namespace" 'namespace/demo created' k create -f $EX/namespace.yaml
check "create the example configmap, deployment and service" 'service/web created' \
  k create -f $EX/configmap.yaml -f $EX/deployment.yaml -f $EX/service.yaml
check "configmap table shows DATA" "web-config +2 " k get configmaps -n demo
check "deployment table columns" "NAME +READY +UP-TO-DATE +AVAILABLE +AGE" k get deployments -n demo
check "deployment -o wide adds containers, images, selector" "web +0/2 +[0-2] +0 +[0-9]+s +web +nginx:1\.27 +app=web" \
  k get deployment web -n demo -o wide
check "service gets a ClusterIP from 10.43.0.0/16" "web +ClusterIP +10\.43\.[0-9]+\.[0-9]+ +<none> +80/TCP" k get svc web -n demo
check "-o yaml shows upstream defaults (strategy)" "maxSurge: 25%" k get deployment web -n demo -o yaml
check "-o yaml shows upstream defaults (revisionHistoryLimit)" "revisionHistoryLimit: 10" k get deployment web -n demo -o yaml
check "-o yaml shows upstream defaults (progressDeadlineSeconds)" "progressDeadlineSeconds: 600" k get deployment web -n demo -o yaml
check "-o yaml shows pod template defaults" "terminationGracePeriodSeconds: 30" k get deployment web -n demo -o yaml
check "-o yaml shows imagePullPolicy by tag" "imagePullPolicy: IfNotPresent" k get deployment web -n demo -o yaml
check "-o yaml shows generation 1" "generation: 1" k get deployment web -n demo -o yaml
check_eq "-o jsonpath reads a field" "nginx:1.27" k get deployment web -n demo -o 'jsonpath={.spec.template.spec.containers[0].image}'
check_eq "service defaults: sessionAffinity None" "None" k get svc web -n demo -o 'jsonpath={.spec.sessionAffinity}'
check "-A adds the namespace column" "demo +web-config +2" k get configmaps -A
check "-l filters by label" "web-config" k get configmaps -A -l app=web
check_eq "-l with no match prints nothing on stdout" "" k get configmaps -A -l app=nope -o name
check "--field-selector filters by name" "configmap/web-config" k get configmaps -n demo --field-selector metadata.name=web-config -o name
check_fails "--field-selector on an unsupported field is refused" "field label not supported" \
  k get configmaps -n demo --field-selector spec.nothing=x
check "get all expands the all category" "service/web" k get all -n demo
check "get all shows the deployment" "deployment.apps/web" k get all -n demo

# --- watch ---
k get configmaps -n demo -w --output-watch-events >"$WORK/watch.out" 2>&1 &
W=$!
BG_PIDS+=("$W")
sleep 1
k create configmap watched -n demo --dry-run=client -o yaml | k create -f - >/dev/null
k label configmap watched -n demo seen=yes >/dev/null
k delete configmap watched -n demo >/dev/null
sleep 1
kill "$W" 2>/dev/null
check "get -w shows the initial state" "ADDED +web-config" cat "$WORK/watch.out"
check "get -w shows a create" "ADDED +watched" cat "$WORK/watch.out"
check "get -w shows a change" "MODIFIED +watched" cat "$WORK/watch.out"
check "get -w shows a delete" "DELETED +watched" cat "$WORK/watch.out"

# --- change ---
sed 's/color: blue/color: red/' $EX/configmap.yaml >"$WORK/cm.yaml"
check "replace -f" "configmap/web-config replaced" k replace -f "$WORK/cm.yaml"
check_eq "replace changed the data" "red" k get cm web-config -n demo -o 'jsonpath={.data.color}'
check "label" "configmap/web-config labeled" k label cm web-config -n demo tier=frontend
check_eq "label is stored" "frontend" k get cm web-config -n demo -o 'jsonpath={.metadata.labels.tier}'
check "annotate" "configmap/web-config annotated" k annotate cm web-config -n demo owner=team-a
check_eq "annotation is stored" "team-a" k get cm web-config -n demo -o 'jsonpath={.metadata.annotations.owner}'
check "patch --type merge" "configmap/web-config patched" k patch cm web-config -n demo --type merge -p '{"data":{"color":"green"}}'
check_eq "merge patch applied" "green" k get cm web-config -n demo -o 'jsonpath={.data.color}'
check "patch --type json" "configmap/web-config patched" k patch cm web-config -n demo --type json -p '[{"op":"add","path":"/data/size","value":"xl"}]'
check_eq "json patch applied" "xl" k get cm web-config -n demo -o 'jsonpath={.data.size}'
check_fails "json patch with a failing test op is refused" "Error from server|error" \
  k patch cm web-config -n demo --type json -p '[{"op":"test","path":"/data/size","value":"s"}]'
check "scale" "deployment.apps/web scaled" k scale deployment web -n demo --replicas=3
check_eq "scale set spec.replicas" "3" k get deployment web -n demo -o 'jsonpath={.spec.replicas}'
check_eq "spec change bumped generation" "2" k get deployment web -n demo -o 'jsonpath={.metadata.generation}'

# --- errors as upstream prints them ---
check_fails "NotFound" 'Error from server \(NotFound\): pods "nope" not found' k get pod nope -n demo
check_fails "AlreadyExists" 'Error from server \(AlreadyExists\).*configmaps "web-config" already exists' k create -f $EX/configmap.yaml
cat >"$WORK/bad.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
  namespace: demo
spec:
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers: [{name: c, image: busybox}]
EOF
check_fails "Invalid is printed as upstream" 'The Deployment "bad" is invalid' k create -f "$WORK/bad.yaml"
check_fails "Invalid names the field" 'spec\.selector: Required value' k create -f "$WORK/bad.yaml"
k create configmap x -n nowhere --from-literal=a=b --dry-run=client -o yaml >"$WORK/nowhere.yaml"
check_fails "create in a missing namespace is refused" 'namespaces "nowhere" not found' k create -f "$WORK/nowhere.yaml"
check_fails "unknown resource type" "the server doesn't have a resource type \"frobs\"" k get frobs

# --- delete, finalizers, namespaces ---
check "delete --wait" 'deployment.apps "web" deleted' k delete deployment web -n demo --wait
check_fails "deleted object is gone" 'NotFound' k get deployment web -n demo
k create configmap held -n demo --from-literal=a=b --dry-run=client -o yaml >"$WORK/held.yaml"
check "create an object with a finalizer" "configmap/held created" k create -f "$WORK/held.yaml"
k patch cm held -n demo --type merge -p '{"metadata":{"finalizers":["example.com/hold"]}}' >/dev/null
check "delete of a finalized object returns at once with --wait=false" 'configmap "held" deleted' k delete cm held -n demo --wait=false
check "the finalized object stays with a deletionTimestamp" "[0-9]{4}-[0-9]{2}-[0-9]{2}T" k get cm held -n demo -o 'jsonpath={.metadata.deletionTimestamp}'
check "deleting the namespace returns" 'namespace "demo" deleted' k delete namespace demo --wait=false
check "the namespace is Terminating while content remains" "demo +Terminating" k get namespace demo
check_ok "the terminating namespace reports its remaining content" \
  k wait --for=jsonpath='{.status.conditions[?(@.type=="NamespaceContentRemaining")].status}'=True namespace/demo --timeout=15s
check_eq "…naming the resource and the count" "Some resources are remaining: configmaps has 1 resource instances" \
  k get namespace demo -o 'jsonpath={.status.conditions[?(@.type=="NamespaceContentRemaining")].message}'
check_eq "…and the finalizer that holds it" "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances" \
  k get namespace demo -o 'jsonpath={.status.conditions[?(@.type=="NamespaceFinalizersRemaining")].message}'
check_fails "create in a terminating namespace is Forbidden" "forbidden: unable to create new content in namespace demo because it is being terminated" \
  k create -f $EX/configmap.yaml
check "removing the last finalizer" "configmap/held patched" k patch cm held -n demo --type json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
check_ok "the namespace goes once empty (wait --for=delete)" k wait --for=delete namespace/demo --timeout=20s
check_fails "the namespace is gone" 'namespaces "demo" not found' k get namespace demo

# --- strategic merge patch: apply, patch, set image, rollout restart, cordon, taint ---
k create namespace apply-demo --dry-run=client -o yaml | k create -f - >/dev/null
sed 's/namespace: demo/namespace: apply-demo/' $EX/deployment.yaml >"$WORK/apply.yaml"
check "apply creates" "deployment.apps/web created" k apply -f "$WORK/apply.yaml"
check "apply records the last-applied configuration" "nginx:1.27" \
  k get deployment web -n apply-demo -o 'jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}'
sed -e 's/nginx:1.27/nginx:1.28/' -e 's/replicas: 2/replicas: 4/' "$WORK/apply.yaml" >"$WORK/apply2.yaml"
check "re-apply configures (three-way strategic patch)" "deployment.apps/web configured" k apply -f "$WORK/apply2.yaml"
check_eq "re-apply changed the image" "nginx:1.28" k get deployment web -n apply-demo -o 'jsonpath={.spec.template.spec.containers[0].image}'
check_eq "re-apply changed replicas" "4" k get deployment web -n apply-demo -o 'jsonpath={.spec.replicas}'
check "re-apply of the same file is unchanged" "deployment.apps/web unchanged" k apply -f "$WORK/apply2.yaml"
sed 's/nginx:1.28/nginx:1.29/' "$WORK/apply2.yaml" >"$WORK/apply3.yaml"
check "diff shows the change a re-apply would make (server dry run)" '^\+      - image: nginx:1\.29' k diff -f "$WORK/apply3.yaml"
check_eq "diff changed nothing" "4" k get deployment web -n apply-demo -o 'jsonpath={.spec.replicas}'
check "edit saves the edited object (strategic patch)" "deployment.apps/web edited" env EDITOR="sed -i s/replicas:\ 4/replicas:\ 5/" kubectl --cache-dir "$WORK/cache" edit deployment web -n apply-demo
check_eq "edit changed replicas" "5" k get deployment web -n apply-demo -o 'jsonpath={.spec.replicas}'
check "patch (strategic, the default) merges containers by name" "deployment.apps/web patched" \
  k patch deployment web -n apply-demo -p '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}'
check_eq "both containers are there (a new item goes first without \$setElementOrder, as upstream)" "sidecar web" k get deployment web -n apply-demo -o 'jsonpath={.spec.template.spec.containers[*].name}'
check "set image" "deployment.apps/web image updated" k set image deployment/web -n apply-demo sidecar=busybox:1.37
check_eq "set image changed only that container" "busybox:1.37 nginx:1.28" k get deployment web -n apply-demo -o 'jsonpath={.spec.template.spec.containers[*].image}'
check "rollout restart" "deployment.apps/web restarted" k rollout restart deployment/web -n apply-demo
check "rollout restart stamps the template" "[0-9]{4}-[0-9]{2}-[0-9]{2}T" \
  k get deployment web -n apply-demo -o 'jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}'
printf 'apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {kubernetes.io/hostname: n1}\n' >"$WORK/node.yaml"
k create -f "$WORK/node.yaml" >/dev/null
check "cordon" "node/n1 cordoned" k cordon n1
check_eq "cordon sets spec.unschedulable" "true" k get node n1 -o 'jsonpath={.spec.unschedulable}'
check "uncordon" "node/n1 uncordoned" k uncordon n1
check "taint" "node/n1 tainted" k taint nodes n1 dedicated=gpu:NoSchedule
check_eq "taint is stored" "dedicated=gpu:NoSchedule" k get node n1 -o 'jsonpath={.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}'
check "untaint" "node/n1 untainted" k taint nodes n1 dedicated-
check_eq "taint is gone" "" k get node n1 -o 'jsonpath={.spec.taints}'

# --- auth ---
check "auth whoami names the admin" "system:admin" k auth whoami
check_eq "auth can-i (authorization is not enforced yet: everything is allowed)" "yes" k auth can-i create pods
check "auth can-i --list" '\*\.\* +\[\] +\[\] +\[\*\]' k auth can-i --list

# --- health and metrics ---
check_eq "/readyz with credentials" "ok" k get --raw /readyz
check "/metrics counts requests by verb and resource" 'apiserver_request_total\{verb="LIST",resource="configmaps",subresource="",code="200"\} [1-9]' k get --raw /metrics
check "/metrics counts writes by resource" 'apiserver_storage_writes_total\{resource="configmaps"\} [1-9]' k get --raw /metrics

# --- restart keeps every object ---
k create namespace keep --dry-run=client -o yaml | k create -f - >/dev/null
k create configmap kept -n keep --from-literal=a=b --dry-run=client -o yaml | k create -f - >/dev/null
RV_BEFORE=$(k get configmap kept -n keep -o 'jsonpath={.metadata.resourceVersion}')
stop_server
start_server || exit 1
check_eq "restart keeps objects" "b" k get configmap kept -n keep -o 'jsonpath={.data.a}'
check_eq "restart keeps resourceVersions" "$RV_BEFORE" k get configmap kept -n keep -o 'jsonpath={.metadata.resourceVersion}'
k create configmap after -n keep --from-literal=a=b --dry-run=client -o yaml | k create -f - >/dev/null
RV_AFTER=$(k get configmap after -n keep -o 'jsonpath={.metadata.resourceVersion}')
if [ "$RV_AFTER" -gt "$RV_BEFORE" ]; then pass "revisions keep growing after a restart"; else fail "revisions keep growing after a restart" "$RV_AFTER <= $RV_BEFORE"; fi

summary
