#!/usr/bin/env bash
# End to end: the scheduler with the real kubectl 1.32 against `skiff server --disable-agent
# --fake-nodes 3`: a Deployment spread over three zones, a dedicated tainted pool used through
# a toleration and a nodeSelector, `kubectl describe pod` giving upstream's FailedScheduling
# reasons, cordon keeping pods off a node until uncordon, and a high-priority pod preempting
# batch work (examples/scheduling).
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

# poll "description" seconds command...: retries the command until it succeeds.
poll() {
  local desc=$1 secs=$2
  shift 2
  local out
  for _ in $(seq 1 $((secs * 5))); do
    if out=$("$@" 2>&1); then
      pass "$desc"
      return 0
    fi
    sleep 0.2
  done
  fail "$desc" "still failing after ${secs}s: $out"
}

# count_is expected command...: the command's output, counted in lines, is expected.
count_is() {
  local want=$1 out
  shift
  out=$("$@" 2>&1) || return 1
  [ "$(printf '%s' "$out" | grep -c .)" = "$want" ] || { echo "$out"; return 1; }
}

# describe_has pod regex: `kubectl describe pod` output matches.
describe_has() {
  # Not a pipe: grep -q's early exit would fail the pipeline under pipefail.
  grep -Eq -- "$2" <<<"$(k describe pod -n scheduling-demo "$1" 2>&1)"
}

start_server --fake-nodes 3 --fake-node-capacity cpu=4,memory=16Gi,pods=110 || exit 1
EX=examples/scheduling
NS=(-n scheduling-demo)

check "three nodes become Ready" "condition met" k wait --for=condition=Ready node --all --timeout=20s
for i in 0 1 2; do
  zone=$(printf '%s' abc | cut -c$((i + 1)))
  check "label fake-node-$i with zone $zone" "labeled" k label node fake-node-$i topology.kubernetes.io/zone=$zone
done
check "the system PriorityClasses exist" "system-cluster-critical +2000000000 +false" k get priorityclasses

# --- spreading over zones ---
check "create the namespace" "created" k apply -f $EX/namespace.yaml
check "a Deployment spread over zones" "deployment.apps/web created" k apply -f $EX/zone-spread.yaml
poll "its six pods are bound" 20 count_is 6 k get pods "${NS[@]}" -l app=web --field-selector spec.nodeName!= -o name
for i in 0 1 2; do
  check_eq "two replicas on fake-node-$i" "2" sh -c "kubectl --cache-dir '$WORK/cache' get pods -n scheduling-demo -l app=web --field-selector spec.nodeName=fake-node-$i -o name | grep -c ."
done
poll "Scheduled events say where" 10 sh -c "kubectl --cache-dir '$WORK/cache' get events -n scheduling-demo | grep -E 'Scheduled +pod/web-[a-z0-9-]+ +Successfully assigned scheduling-demo/web-[a-z0-9-]+ to fake-node-[0-2]'"

# --- a dedicated pool ---
check "label fake-node-2 as the gpu pool" "labeled" k label node fake-node-2 pool=gpu node.kubernetes.io/instance-type=g5.xlarge
check "taint it" "node/fake-node-2 tainted" k taint node fake-node-2 dedicated=gpu:NoSchedule
check "the pool's workload" "deployment.apps/trainer created" k apply -f $EX/gpu-pool.yaml
poll "its pods land on the pool" 20 count_is 2 k get pods "${NS[@]}" -l app=trainer --field-selector spec.nodeName=fake-node-2 -o name
cat >"$WORK/plain.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: scheduling-demo}
spec:
  nodeSelector: {pool: gpu}
  containers: [{name: c, image: busybox:1.36}]
YAML
check "a pod selecting the pool without the toleration" "pod/plain created" k apply -f "$WORK/plain.yaml"
poll "describe gives upstream's reasons" 15 describe_has plain \
  "FailedScheduling .*0/3 nodes are available: 1 node\(s\) had untolerated taint \{dedicated: gpu\}, 2 node\(s\) didn't match Pod's node affinity/selector\. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling\."
check_eq "PodScheduled is False with reason Unschedulable" "False Unschedulable" \
  k get pod plain "${NS[@]}" -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].status} {.status.conditions[?(@.type=="PodScheduled")].reason}'

# --- too big for any node ---
cat >"$WORK/big.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: big, namespace: scheduling-demo}
spec:
  containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: "10"}}}]
YAML
check "a pod too big for any node" "pod/big created" k apply -f "$WORK/big.yaml"
poll "describe counts the reasons" 15 describe_has big \
  "0/3 nodes are available: 1 node\(s\) had untolerated taint \{dedicated: gpu\}, 2 Insufficient cpu\. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod\."
check "delete it" "deleted" k delete pod big "${NS[@]}"

# --- cordon ---
check "cordon fake-node-0" "cordoned" k cordon fake-node-0
cat >"$WORK/pinned.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: pinned, namespace: scheduling-demo}
spec:
  nodeSelector: {kubernetes.io/hostname: fake-node-0}
  containers: [{name: c, image: busybox:1.36}]
YAML
check "a pod for the cordoned node" "pod/pinned created" k apply -f "$WORK/pinned.yaml"
poll "waits, unschedulable" 15 describe_has pinned "1 node\(s\) were unschedulable"
check "uncordon" "uncordoned" k uncordon fake-node-0
poll "then it is bound there" 20 sh -c "[ \"\$(kubectl --cache-dir '$WORK/cache' get pod pinned -n scheduling-demo -o jsonpath='{.spec.nodeName}')\" = fake-node-0 ]"

# --- priority and preemption ---
check "priority classes" "priorityclass.scheduling.k8s.io/service-high created" k apply -f $EX/priority.yaml
check "batch work" "deployment.apps/batch created" k apply -f $EX/batch.yaml
poll "fills the two untainted nodes" 20 count_is 2 k get pods "${NS[@]}" -l app=batch --field-selector spec.nodeName!= -o name
check "an urgent pod" "pod/urgent created" k apply -f $EX/urgent.yaml
poll "the urgent pod preempts and is bound" 30 sh -c "[ -n \"\$(kubectl --cache-dir '$WORK/cache' get pod urgent -n scheduling-demo -o jsonpath='{.spec.nodeName}')\" ]"
check_eq "it got its class's priority" "100000" k get pod urgent "${NS[@]}" -o 'jsonpath={.spec.priority}'
poll "a Preempted event names it" 15 sh -c "kubectl --cache-dir '$WORK/cache' get events -n scheduling-demo | grep -E 'Preempted +pod/batch-[a-z0-9-]+ +Preempted by pod [0-9a-f-]+ on node fake-node-[01]'"
poll "the replacement batch pod waits: it may not preempt the urgent one" 20 sh -c \
  "kubectl --cache-dir '$WORK/cache' describe pods -n scheduling-demo -l app=batch | grep -E 'No preemption victims found for incoming pod|Insufficient cpu'"
check_fails "an unknown PriorityClass is refused" 'pods "x" is forbidden: no PriorityClass with name gold was found' \
  k run x "${NS[@]}" --image=busybox:1.36 --overrides='{"spec":{"priorityClassName":"gold"}}'

summary
