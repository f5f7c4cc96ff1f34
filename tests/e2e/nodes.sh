#!/usr/bin/env bash
# End to end: simulated nodes and node health with the real kubectl 1.32 against `skiff server
# --disable-agent --fake-nodes 3 --node-monitor-grace-period 3s`: three Ready nodes, label,
# cordon/uncordon, pods bound by nodeName going Running/Ready with pod IPs, a Job-like pod
# succeeding, a scripted crash loop, `kubectl taint … :NoExecute` evicting a pod, and a node
# whose heartbeats are stopped by annotation going NotReady (unreachable taint, timed eviction)
# and coming back.
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

# jsonpath_is resource expected jsonpath: succeeds when the field reads as expected.
jsonpath_is() {
  local out
  out=$(k get "$1" -o "jsonpath=$3" 2>&1) || return 1
  [ "$out" = "$2" ] || { echo "$out"; return 1; }
}

start_server --fake-nodes 3 --node-monitor-grace-period 3s || exit 1
EX=examples/simulated-nodes

# --- nodes ---
check "three nodes become Ready" "condition met" k wait --for=condition=Ready node --all --timeout=20s
check "get nodes lists them Ready with the kubelet version" "fake-node-2 +Ready +<none> +[0-9a-z]+ +v1\.32\." k get nodes
check_eq "node names" "fake-node-0 fake-node-1 fake-node-2" k get nodes -o 'jsonpath={.items[*].metadata.name}'
check_eq "pod CIDR" "10.42.1.0/24" k get node fake-node-1 -o 'jsonpath={.spec.podCIDR}'
check_eq "capacity" "4 16Gi 110" k get node fake-node-0 -o 'jsonpath={.status.capacity.cpu} {.status.capacity.memory} {.status.capacity.pods}'
check_eq "container runtime" "skiff-simulated://0.1" k get node fake-node-0 -o 'jsonpath={.status.nodeInfo.containerRuntimeVersion}'
check "a Lease per node" "fake-node-0 +fake-node-0" k get leases -n kube-node-lease
check "describe node shows the kubelet version" "Kubelet Version: +v1\.32\." k describe node fake-node-0
check "describe node shows the Ready condition" "Ready +True .*KubeletReady +kubelet is posting ready status" k describe node fake-node-0
check "describe node shows the kubelet's runtime" "Container Runtime Version: +skiff-simulated://0\.1" k describe node fake-node-0

check "kubectl label" "node/fake-node-0 labeled" k label node fake-node-0 disk=ssd
check_eq "label selector finds it" "fake-node-0" k get nodes -l disk=ssd -o 'jsonpath={.items[*].metadata.name}'
check "kubectl cordon" "node/fake-node-1 cordoned" k cordon fake-node-1
check "cordoned node shows SchedulingDisabled" "fake-node-1 +Ready,SchedulingDisabled" k get nodes
poll "cordon adds the unschedulable taint" 10 \
  jsonpath_is node/fake-node-1 "node.kubernetes.io/unschedulable" '{.spec.taints[*].key}'
check "kubectl uncordon" "node/fake-node-1 uncordoned" k uncordon fake-node-1
poll "uncordon removes it" 10 jsonpath_is node/fake-node-1 "" '{.spec.taints[*].key}'

# --- pods ---
check "create a pod bound to fake-node-0" "pod/web created" k apply -f "$EX/web.yaml"
check "it becomes Ready" "condition met" k wait --for=condition=Ready pod/web --timeout=15s
check "get -o wide shows its IP and node" "web +1/1 +Running +0 .* 10\.42\.0\.[0-9]+ +fake-node-0" k get pod web -o wide
check "a Job-like pod" "pod/batch created" k apply -f "$EX/job-pod.yaml"
check "succeeds" "condition met" k wait --for=jsonpath='{.status.phase}'=Succeeded pod/batch --timeout=15s
check "shows Completed" "batch +0/1 +Completed" k get pod batch
check "a crashing pod" "pod/crasher created" k apply -f "$EX/crash-loop.yaml"
poll "goes into CrashLoopBackOff" 10 sh -c "kubectl --cache-dir '$WORK/cache' get pod crasher | grep -E 'CrashLoopBackOff +1 '"
check "a slow, never-ready pod" "pod/slow-unready created" k apply -f "$EX/slow-unready.yaml"
check "is Pending while it starts" "slow-unready +0/1 +(Pending|ContainerCreating)" k get pod slow-unready
check "then Running" "condition met" k wait --for=jsonpath='{.status.phase}'=Running pod/slow-unready --timeout=15s
check_eq "but not Ready" "False" k get pod slow-unready -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'

# --- kubectl taint … :NoExecute evicts at once ---
check "taint fake-node-0 NoExecute" "node/fake-node-0 tainted" k taint nodes fake-node-0 maintenance=now:NoExecute
check "the pod on it is evicted" "condition met" k wait --for=delete pod/web --timeout=15s
poll "the eviction event" 10 sh -c "kubectl --cache-dir '$WORK/cache' get events | grep -E 'TaintManagerEviction +pod/web +Marking for deletion Pod default/web'"
check "untaint" "node/fake-node-0 untainted" k taint nodes fake-node-0 maintenance-

# --- kubectl drain: cordon, evict (pods/eviction), wait until the kubelet finished them ---
check "kubectl drain" "node/fake-node-1 drained" k drain fake-node-1 --force --ignore-daemonsets --timeout=60s
check_eq "no pods left on it" "" k get pods --field-selector spec.nodeName=fake-node-1 -o 'jsonpath={.items[*].metadata.name}'
check "uncordon it" "node/fake-node-1 uncordoned" k uncordon fake-node-1

# --- node death by annotation ---
sed 's/tolerationSeconds: 20/tolerationSeconds: 4/' "$EX/tolerant.yaml" >"$WORK/tolerant.yaml"
check "a pod tolerating unreachable for 4 s" "pod/tolerant created" k apply -f "$WORK/tolerant.yaml"
check "Ready" "condition met" k wait --for=condition=Ready pod/tolerant --timeout=15s
check "stop fake-node-2's heartbeats" "node/fake-node-2 annotated" k annotate node fake-node-2 sim.skiff.dev/heartbeat=stopped
check "the node goes Unknown" "condition met" k wait --for=condition=Ready=Unknown node/fake-node-2 --timeout=20s
check "get nodes shows NotReady" "fake-node-2 +NotReady" k get nodes
poll "the unreachable NoExecute taint" 10 sh -c \
  "kubectl --cache-dir '$WORK/cache' get node fake-node-2 -o jsonpath='{.spec.taints[*].key}:{.spec.taints[*].effect}' | grep -E 'node.kubernetes.io/unreachable.*:.*NoExecute'"
poll "a NodeNotReady event" 10 sh -c "kubectl --cache-dir '$WORK/cache' get events | grep -E 'NodeNotReady +node/fake-node-2'"
poll "its pods are marked not ready" 10 jsonpath_is pod/slow-unready "False" '{.status.conditions[?(@.type=="Ready")].status}'
poll "the tolerant pod is evicted after its tolerationSeconds" 15 sh -c \
  "[ -n \"\$(kubectl --cache-dir '$WORK/cache' get pod tolerant -o jsonpath='{.metadata.deletionTimestamp}')\" ]"
check_eq "the 300 s default keeps the other pod" "" k get pod slow-unready -o 'jsonpath={.metadata.deletionTimestamp}'
check "heartbeats resume" "node/fake-node-2 annotated" k annotate node fake-node-2 sim.skiff.dev/heartbeat-
check "the node is Ready again" "condition met" k wait --for=condition=Ready node/fake-node-2 --timeout=20s
poll "its taints are gone" 10 jsonpath_is node/fake-node-2 "" '{.spec.taints[*].key}'
check "the evicted pod finishes terminating" "condition met" k wait --for=delete pod/tolerant --timeout=45s

# --- a restart takes the nodes and their pods over ---
IP_BEFORE=$(k get pod slow-unready -o 'jsonpath={.status.podIP}')
stop_server
start_server --fake-nodes 3 --node-monitor-grace-period 3s || exit 1
check "nodes are Ready after a restart" "condition met" k wait --for=condition=Ready node --all --timeout=20s
check_eq "labels users set survive" "fake-node-0" k get nodes -l disk=ssd -o 'jsonpath={.items[*].metadata.name}'
check_eq "a running pod keeps its IP" "$IP_BEFORE" k get pod slow-unready -o 'jsonpath={.status.podIP}'
sed 's/fake-node-0/fake-node-2/' "$EX/web.yaml" >"$WORK/web2.yaml"
check "a new pod on the same node" "pod/web created" k apply -f "$WORK/web2.yaml"
check "becomes Ready" "condition met" k wait --for=condition=Ready pod/web --timeout=15s
web_ip=$(k get pod web -o 'jsonpath={.status.podIP}')
if [ -n "$web_ip" ] && [ "$web_ip" != "$IP_BEFORE" ]; then
  pass "and gets another address ($web_ip, not $IP_BEFORE)"
else
  fail "and gets another address" "got '$web_ip', the running pod has '$IP_BEFORE'"
fi

# --- bad flags ---
check_fails "a malformed --fake-node-taint stops the server at start" "invalid taint" \
  "$SKIFF_BIN" server --data-dir "$WORK/bad" --bind-address 127.0.0.1 --https-listen-port "$(free_port)" \
  --disable-agent --fake-nodes 1 --fake-node-taint "dedicated=gpu"

summary
