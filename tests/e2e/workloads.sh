#!/usr/bin/env bash
# End to end: DaemonSets and StatefulSets with the real kubectl 1.32 on `skiff server
# --disable-agent --fake-nodes 3` (the scheduler binds pods to simulated nodes, which run them
# Ready). Applies examples/daemonset and examples/statefulset; checks rollout status, pods per
# node and per ordinal, claims, scale, rollout history (ControllerRevisions), rollout undo, a
# DaemonSet following node labels and taints, and describe with the controllers' events.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server --fake-nodes 3 || exit 1
check "three simulated nodes become Ready" "condition met" k wait --for=condition=Ready nodes --all --timeout=30s

jp() {
  k get "$1" -o "jsonpath=$2"
}

# jpl label resource path: a field of the pods with a label.
jpl() {
  k get pods -l "$1" -o "jsonpath=$2"
}

# oneline command...: the command's output on one line (for patterns across lines).
oneline() {
  "$@" 2>&1 | tr '\n' ' '
}

# Node names of the DaemonSet's live pods, sorted, one line.
ds_nodes() {
  k get pods -l app=node-agent -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | tr '\n' ' '
}

# --- DaemonSet ---
check "apply the DaemonSet example" "daemonset.apps/node-agent created" k apply -f examples/daemonset/
check "rollout status ds finishes" 'daemon set "node-agent" successfully rolled out' \
  k rollout status ds/node-agent --timeout=60s
check "get ds shows 3 desired, 3 ready" "node-agent +3 +3 +3 +3 +3" k get ds node-agent
eventually_eq "one pod on every node" "fake-node-0 fake-node-1 fake-node-2 " ds_nodes
check "pods carry the automatic not-ready toleration" "node.kubernetes.io/not-ready" \
  jpl app=node-agent '{.items[0].spec.tolerations}'
check "pods are placed by matchFields node affinity" '"key":"metadata.name","operator":"In"' \
  jpl app=node-agent '{.items[0].spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution}'

# Taints: NoExecute removes the pod from that node; removing the taint brings it back.
check_ok "taint fake-node-1 NoExecute" k taint nodes fake-node-1 dedicated=x:NoExecute
eventually_eq "the pod leaves the tainted node" "fake-node-0 fake-node-2 " ds_nodes
check_ok "untaint fake-node-1" k taint nodes fake-node-1 dedicated=x:NoExecute-
eventually_eq "the pod comes back" "fake-node-0 fake-node-1 fake-node-2 " ds_nodes
check "rollout status ds after the taint round trip" "successfully rolled out" \
  k rollout status ds/node-agent --timeout=60s

# Rolling update, history and undo.
check_ok "set image on the DaemonSet" k set image ds/node-agent agent=busybox:1.37
check "rollout status ds after set image" "successfully rolled out" k rollout status ds/node-agent --timeout=90s
check "rollout history ds lists revisions 1 and 2" "REVISION +CHANGE-CAUSE +1 +<none> +2 +<none>" oneline k rollout history ds/node-agent
check "two ControllerRevisions owned by the DaemonSet" "node-agent-[a-z0-9]+ +daemonset.apps/node-agent +2" \
  k get controllerrevisions
check "rollout history --revision=1 shows the old image" "busybox:1.36" k rollout history ds/node-agent --revision=1
check "rollout undo ds" "daemonset.apps/node-agent rolled back" k rollout undo ds/node-agent
check "rollout status ds after undo" "successfully rolled out" k rollout status ds/node-agent --timeout=90s
check_eq "the template is back at the first image" "busybox:1.36" jp ds/node-agent '{.spec.template.spec.containers[0].image}'
eventually_eq "every pod runs the first image" "busybox:1.36 busybox:1.36 busybox:1.36 " \
  sh -c "kubectl --cache-dir $WORK/cache get pods -l app=node-agent -o 'jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}' | sort | tr '\n' ' '"
check "rollout history ds: revision 1 became 3" "REVISION +CHANGE-CAUSE +2 +<none> +3 +<none>" oneline k rollout history ds/node-agent
check "rollout undo ds --to-revision=2" "daemonset.apps/node-agent rolled back" k rollout undo ds/node-agent --to-revision=2
check "rollout status ds after undo --to-revision" "successfully rolled out" k rollout status ds/node-agent --timeout=90s
check_eq "the template is at the second image" "busybox:1.37" jp ds/node-agent '{.spec.template.spec.containers[0].image}'
check "rollout history ds: revision 2 became 4" "REVISION +CHANGE-CAUSE +3 +<none> +4 +<none>" oneline k rollout history ds/node-agent
# Surge: a new pod starts beside each old one before the old one goes.
check_ok "switch the DaemonSet to maxSurge 1, maxUnavailable 0" k patch ds node-agent --type merge \
  -p '{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}'
check_ok "set image for a surge rollout" k set image ds/node-agent agent=busybox:1.38
check "rollout status ds after the surge rollout" "successfully rolled out" k rollout status ds/node-agent --timeout=90s
eventually_eq "every pod runs the surge image" "busybox:1.38 busybox:1.38 busybox:1.38 " \
  sh -c "kubectl --cache-dir $WORK/cache get pods -l app=node-agent -o 'jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}' | sort | tr '\n' ' '"
check "describe ds shows SuccessfulCreate events" "SuccessfulCreate .*daemonset-controller +Created pod: node-agent-" \
  k describe ds node-agent

# --- StatefulSet ---
check "apply the StatefulSet example" "statefulset.apps/web created" k apply -f examples/statefulset/
check "rollout status sts finishes" "partitioned roll out complete: 3 new pods have been updated" \
  k rollout status sts/web --timeout=90s
check "get sts shows 3/3" "web +3/3" k get sts web
eventually_eq "pods web-0..2" "web-0 web-1 web-2" jpl app=nginx '{.items[*].metadata.name}'
check_eq "web-1 hostname" "web-1" jp pod/web-1 '{.spec.hostname}'
check_eq "web-1 subdomain is the headless Service" "nginx" jp pod/web-1 '{.spec.subdomain}'
check_eq "web-1 pod-index label" "1" jp pod/web-1 '{.metadata.labels.apps\.kubernetes\.io/pod-index}'
check "one claim per pod" "www-web-0 .*www-web-1 .*www-web-2 " oneline k get pvc
# OrderedReady: web-1 was created after web-0 was Ready (creation times never go backwards).
check_ok "web-0 created no later than web-1" sh -c \
  "[ \"\$(kubectl --cache-dir $WORK/cache get pod web-0 -o jsonpath={.metadata.creationTimestamp})\" \\< \"\$(kubectl --cache-dir $WORK/cache get pod web-1 -o jsonpath={.metadata.creationTimestamp})\" ] || [ \"\$(kubectl --cache-dir $WORK/cache get pod web-0 -o jsonpath={.metadata.creationTimestamp})\" = \"\$(kubectl --cache-dir $WORK/cache get pod web-1 -o jsonpath={.metadata.creationTimestamp})\" ]"

check "scale sts to 1" "statefulset.apps/web scaled" k scale sts web --replicas=1
eventually_eq "scaled down to web-0" "web-0" jpl app=nginx '{.items[*].metadata.name}'
check "claims outlive the scale-down (Retain)" "www-web-1 .*www-web-2 " oneline k get pvc
check "scale sts back to 3" "statefulset.apps/web scaled" k scale sts web --replicas=3
check "rollout status sts after scale up" "partitioned roll out complete" k rollout status sts/web --timeout=90s

check_ok "set image on the StatefulSet" k set image sts/web nginx=nginx:1.28
check "rollout status sts after set image" "partitioned roll out complete: 3 new pods have been updated" \
  k rollout status sts/web --timeout=120s
check_eq "currentRevision caught up with updateRevision" "true" \
  sh -c "[ \"\$(kubectl --cache-dir $WORK/cache get sts web -o jsonpath={.status.currentRevision})\" = \"\$(kubectl --cache-dir $WORK/cache get sts web -o jsonpath={.status.updateRevision})\" ] && echo true"
check "rollout history sts lists revisions 1 and 2" "REVISION +CHANGE-CAUSE +1 +<none> +2 +<none>" oneline k rollout history sts/web
check "rollout undo sts" "statefulset.apps/web rolled back" k rollout undo sts/web
check "rollout status sts after undo" "partitioned roll out complete: 3 new pods have been updated" \
  k rollout status sts/web --timeout=120s
check_eq "the template is back at nginx:1.27" "nginx:1.27" jp sts/web '{.spec.template.spec.containers[0].image}'
eventually_eq "every pod runs nginx:1.27" "nginx:1.27 nginx:1.27 nginx:1.27" \
  jpl app=nginx '{.items[*].spec.containers[0].image}'
check "describe sts shows upstream's event wording" "create Pod web-0 in StatefulSet web successful" \
  k describe sts web

check "delete the StatefulSet" 'statefulset.apps "web" deleted' k delete sts web
check "claims remain after delete (Retain)" "www-web-0" k get pvc
check "delete the DaemonSet" 'daemonset.apps "node-agent" deleted' k delete ds node-agent

summary
