#!/usr/bin/env bash
# End to end: Deployments with the real kubectl 1.32 on `skiff server --disable-agent
# --fake-nodes 3` (the scheduler binds pods to simulated nodes, which run them Ready).
# Covers kubectl create deployment, rollout status/history/undo [--to-revision]/restart/
# pause/resume, set image, scale, describe deploy with ScalingReplicaSet events, Recreate
# ordering, a stuck rollout hitting its progress deadline, maxSurge/maxUnavailable validation,
# and the examples in examples/deployment.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

EX=examples/deployment
start_server --fake-nodes 3 || exit 1
check "three simulated nodes become Ready" "condition met" k wait --for=condition=Ready nodes --all --timeout=30s

# jsonpath resource path: prints one field.
jp() {
  k get "$1" -o "jsonpath=$2"
}

# --- kubectl create deployment and rollout status ---
check "kubectl create deployment" "deployment.apps/hello created" \
  k create deployment hello --image=nginx:1.26 --replicas=3
check "rollout status waits until the rollout is done" 'deployment "hello" successfully rolled out' \
  k rollout status deployment/hello --timeout=60s
check "get deploy shows 3/3 ready, up to date, available" "hello +3/3 +3 +3 " k get deploy hello
HASH=$(k get rs -l app=hello -o 'jsonpath={.items[0].metadata.labels.pod-template-hash}')
check_eq "the ReplicaSet is named after the pod-template-hash" "hello-$HASH" \
  k get rs -l app=hello -o 'jsonpath={.items[0].metadata.name}'
check_eq "its selector carries the hash" "$HASH" \
  k get rs "hello-$HASH" -o 'jsonpath={.spec.selector.matchLabels.pod-template-hash}'
check_eq "every pod carries the hash" "$HASH $HASH $HASH" \
  k get pods -l app=hello -o 'jsonpath={.items[*].metadata.labels.pod-template-hash}'
check_eq "the ReplicaSet has revision 1" "1" \
  k get rs "hello-$HASH" -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}'
check "the ReplicaSet records desired and max replicas" '"deployment.kubernetes.io/desired-replicas":"3","deployment.kubernetes.io/max-replicas":"4"' \
  k get rs "hello-$HASH" -o 'jsonpath={.metadata.annotations}'
check "get rs shows desired, current, ready" "hello-$HASH +3 +3 +3 " k get rs
check_eq "status counts" "3 3 3 3 1" \
  jp deploy/hello '{.status.replicas} {.status.updatedReplicas} {.status.readyReplicas} {.status.availableReplicas} {.status.observedGeneration}'
check_eq "Available condition" "True MinimumReplicasAvailable Deployment has minimum availability." \
  jp deploy/hello '{.status.conditions[?(@.type=="Available")].status} {.status.conditions[?(@.type=="Available")].reason} {.status.conditions[?(@.type=="Available")].message}'
check_eq "Progressing condition names the ReplicaSet" "True NewReplicaSetAvailable ReplicaSet \"hello-$HASH\" has successfully progressed." \
  jp deploy/hello '{.status.conditions[?(@.type=="Progressing")].status} {.status.conditions[?(@.type=="Progressing")].reason} {.status.conditions[?(@.type=="Progressing")].message}'

# --- the example: set image, history, undo ---
check "apply the example" "deployment.apps/web created" k apply -f $EX/web.yaml
check "rollout status (example)" 'deployment "web" successfully rolled out' k rollout status deployment/web --timeout=60s
check "kubectl set image" "deployment.apps/web image updated" k set image deployment/web nginx=nginx:1.27
k rollout status deployment/web --timeout=60s >"$WORK/status.out" 2>&1
check "rollout status reports the steps" 'Waiting for deployment "web" rollout to finish: [0-9] out of 4 new replicas have been updated' \
  cat "$WORK/status.out"
check "rollout status reports the end" 'deployment "web" successfully rolled out' tail -1 "$WORK/status.out"
eventually_eq "the new template runs everywhere" "nginx:1.27 nginx:1.27 nginx:1.27 nginx:1.27" \
  k get pods -l app=web -o 'jsonpath={.items[*].spec.containers[0].image}'
check "a change with its cause" "deployment.apps/web patched" \
  k patch deployment web -p '{"metadata":{"annotations":{"kubernetes.io/change-cause":"nginx 1.28"}},"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}'
check "rollout status (1.28)" 'successfully rolled out' k rollout status deployment/web --timeout=60s
check "rollout history lists revisions with their causes" "REVISION +CHANGE-CAUSE
1 +first release: nginx 1.26
2 +first release: nginx 1.26
3 +nginx 1.28" k rollout history deployment/web
check "rollout history --revision shows that revision's template" "Image:[[:space:]]+nginx:1.26" \
  k rollout history deployment/web --revision=1
# revision:size of each ReplicaSet, by revision.
rs_sizes() {
  k get rs -l "app=$1" -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
rows = sorted((int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]), r["spec"]["replicas"]) for r in items)
print(" ".join(f"{a}:{b}" for a, b in rows))'
}
check_eq "old ReplicaSets are scaled to 0, the new one has all" "1:0 2:0 3:4" rs_sizes web
check "rollout undo --to-revision=1" "deployment.apps/web rolled back" \
  k rollout undo deployment/web --to-revision=1
check "rollout status after undo" 'successfully rolled out' k rollout status deployment/web --timeout=60s
check_eq "revision 1's template is back" "nginx:1.26" jp deploy/web '{.spec.template.spec.containers[0].image}'
check_eq "the deployment is at revision 4" "4" \
  jp deploy/web '{.metadata.annotations.deployment\.kubernetes\.io/revision}'
check "revision 1 became 4 (the same ReplicaSet, re-numbered)" "REVISION +CHANGE-CAUSE
2 +first release: nginx 1.26
3 +nginx 1.28
4 +first release: nginx 1.26" k rollout history deployment/web
check_eq "the re-used ReplicaSet keeps its former number in revision-history" "1" \
  bash -c "kubectl --cache-dir $WORK/cache get rs -l app=web -o json | python3 -c 'import json,sys; print(*[r[\"metadata\"][\"annotations\"].get(\"deployment.kubernetes.io/revision-history\") for r in json.load(sys.stdin)[\"items\"] if r[\"metadata\"][\"annotations\"][\"deployment.kubernetes.io/revision\"]==\"4\"])'"
check "undo to the previous revision" "deployment.apps/web rolled back" k rollout undo deployment/web
check "rollout status after the second undo" 'successfully rolled out' k rollout status deployment/web --timeout=60s
check_eq "back on nginx 1.28" "nginx:1.28" jp deploy/web '{.spec.template.spec.containers[0].image}'
check "undo to a revision that does not exist" "unable to find specified revision 42 in history" \
  k rollout undo deployment/web --to-revision=42

# --- restart and scale ---
check "rollout restart" "deployment.apps/web restarted" k rollout restart deployment/web
check "rollout status after restart" 'successfully rolled out' k rollout status deployment/web --timeout=60s
check "the restarted template carries restartedAt" "kubectl.kubernetes.io/restartedAt" \
  jp deploy/web '{.spec.template.metadata.annotations}'
check_eq "restart made revision 6" "6" jp deploy/web '{.metadata.annotations.deployment\.kubernetes\.io/revision}'
check "kubectl scale" "deployment.apps/web scaled" k scale deployment web --replicas=6
check "rollout status after scale" 'successfully rolled out' k rollout status deployment/web --timeout=60s
check "get deploy shows 6/6" "web +6/6 +6 +6 " k get deploy web
check_eq "the ReplicaSet was scaled, not replaced" "6" jp deploy/web '{.metadata.annotations.deployment\.kubernetes\.io/revision}'
check "scale down through the scale subresource" "deployment.apps/web scaled" k scale deployment web --replicas=2
check "rollout status after scale down" 'successfully rolled out' k rollout status deployment/web --timeout=60s
check "get deploy shows 2/2" "web +2/2 +2 +2 " k get deploy web

# --- pause and resume ---
check "rollout pause" "deployment.apps/web paused" k rollout pause deployment/web
check "set image while paused" "image updated" k set image deployment/web nginx=nginx:1.29
sleep 1
check_eq "Progressing shows the pause" "Unknown DeploymentPaused Deployment is paused" \
  jp deploy/web '{.status.conditions[?(@.type=="Progressing")].status} {.status.conditions[?(@.type=="Progressing")].reason} {.status.conditions[?(@.type=="Progressing")].message}'
check_eq "no new pods while paused" "nginx:1.28 nginx:1.28" \
  k get pods -l app=web -o 'jsonpath={.items[*].spec.containers[0].image}'
check_fails "undo refuses a paused deployment" "you cannot rollback a paused deployment" \
  k rollout undo deployment/web
check "rollout resume" "deployment.apps/web resumed" k rollout resume deployment/web
check "rollout status after resume" 'successfully rolled out' k rollout status deployment/web --timeout=60s
eventually_eq "the paused change rolled out" "nginx:1.29 nginx:1.29" \
  k get pods -l app=web -o 'jsonpath={.items[*].spec.containers[0].image}'

# --- describe tells the story ---
check "describe deploy shows the strategy" "RollingUpdateStrategy: +0 max unavailable, 1 max surge" k describe deploy web
check "describe deploy shows the new ReplicaSet" "NewReplicaSet: +web-[a-z0-9]+ \(2/2 replicas created\)" k describe deploy web
check "describe deploy shows conditions" "Progressing +True +NewReplicaSetAvailable" k describe deploy web
check "describe deploy shows scale-up events" "Normal +ScalingReplicaSet +[0-9a-z]+ +deployment-controller +Scaled up replica set web-[a-z0-9]+ from 0 to 1" \
  k describe deploy web
check "describe deploy shows scale-down events" "Normal +ScalingReplicaSet .*deployment-controller +Scaled down replica set web-[a-z0-9]+ to [0-9]+ from [0-9]+" \
  k describe deploy web
check "get events lists ScalingReplicaSet" "ScalingReplicaSet" k get events --field-selector involvedObject.name=web

# --- Recreate ---
check "apply the Recreate example" "deployment.apps/db created" k apply -f $EX/recreate.yaml
check "rollout status (Recreate)" 'successfully rolled out' k rollout status deployment/db --timeout=60s
OLD=$(k get rs -l app=db -o 'jsonpath={.items[0].metadata.name}')
k get pods -l app=db -w --output-watch-events \
  -o jsonpath='{.type} {.object.metadata.name} {.object.status.phase} {.object.metadata.deletionTimestamp}{"\n"}' \
  >"$WORK/db.watch" 2>&1 &
BG_PIDS+=("$!")
sleep 0.5
check "set image (Recreate)" "image updated" k set image deployment/db postgres=postgres:17
check "rollout status (Recreate update)" 'successfully rolled out' k rollout status deployment/db --timeout=60s
sleep 0.5
# In the watch, the first postgres:17 pod comes after every postgres:16 pod had terminated:
# reported Succeeded or Failed (the kubelet does so before it deletes a pod) or DELETED. That
# is upstream's guarantee (`oldPodsRunning` does not count pods in a terminal phase).
python3 - "$WORK/db.watch" "$OLD" >"$WORK/db.check" <<'PY'
import sys
# Lines: EVENT NAME PHASE [DELETION-TIMESTAMP]; old pods are named after the old ReplicaSet.
events = [l.split() for l in open(sys.argv[1]) if l.strip()]
old = sys.argv[2] + "-"
old_names = {e[1] for e in events if e[1].startswith(old)}
gone = set()
verdict = "no new pod seen"
for e in events:
    if e[1].startswith(old) and (e[0] == "DELETED" or e[2:3] in (["Succeeded"], ["Failed"])):
        gone.add(e[1])
    if not e[1].startswith(old) and e[0] == "ADDED":
        left = old_names - gone
        verdict = "ok" if len(old_names) == 2 and not left else f"new pod {e[1]} while {sorted(left)} remain"
        break
print(verdict)
PY
check_eq "Recreate: the first new pod comes after both old pods terminated" "ok" cat "$WORK/db.check"
check "Recreate: old pods went through Terminating" "MODIFIED $OLD-[a-z0-9]+ [A-Za-z]+ 20[0-9-]+T" cat "$WORK/db.watch"
check "Recreate events: down to 0, then up from 0" "Scaled down replica set $OLD to 0 from 2.*Scaled up replica set db-[a-z0-9]+ from 0 to 2" \
  bash -c "kubectl --cache-dir $WORK/cache describe deploy db | tr '\n' ' '"

# --- progress deadline ---
check "a deployment with a 3 s progress deadline" "deployment.apps/slow created" \
  k create deployment slow --image=nginx:1.26 --replicas=2
k patch deployment slow -p '{"spec":{"progressDeadlineSeconds":3}}' >/dev/null
check "rollout status (slow)" 'successfully rolled out' k rollout status deployment/slow --timeout=60s
check "a template whose pods never become ready" "deployment.apps/slow patched" \
  k patch deployment slow -p '{"spec":{"template":{"metadata":{"annotations":{"sim.skiff.dev/ready":"false"}}}}}'
check_fails "rollout status fails on the deadline" 'deployment "slow" exceeded its progress deadline' \
  k rollout status deployment/slow --timeout=60s
check_eq "Progressing is False ProgressDeadlineExceeded" "False ProgressDeadlineExceeded" \
  jp deploy/slow '{.status.conditions[?(@.type=="Progressing")].status} {.status.conditions[?(@.type=="Progressing")].reason}'
check_eq "the old pods keep serving (maxUnavailable 25% of 2 is 0)" "2" jp deploy/slow '{.status.availableReplicas}'

# --- bad input ---
check_fails "maxSurge and maxUnavailable both 0 is refused" 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0' \
  k patch deployment hello -p '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":0}}}}'
check_fails "a bad percentage is refused" 'maxSurge' \
  k patch deployment hello -p '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":"x%"}}}}'

summary
