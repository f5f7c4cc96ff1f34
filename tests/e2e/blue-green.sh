#!/usr/bin/env bash
# End to end: blue/green and canary releases with labels and selectors, with the real kubectl
# 1.32 on `skiff server --disable-agent --fake-nodes 3`. Applies examples/blue-green and
# examples/canary, checks the Service's Endpoints hold exactly the selected pods, switches
# the blue/green Service with `kubectl patch svc` and measures how long the Endpoints take to
# follow (goal: within 100 ms), and shifts the canary ratio with `kubectl scale`.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server --fake-nodes 3 || exit 1
check "three simulated nodes become Ready" "condition met" k wait --for=condition=Ready nodes --all --timeout=30s

# pod_ips selector: the sorted IPs of the running, not terminating pods the selector matches.
pod_ips() {
  k get pods -l "$1" -o json | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
ips = sorted(p["status"]["podIP"] for p in pods
             if p["status"].get("phase") == "Running" and p["status"].get("podIP")
             and not p["metadata"].get("deletionTimestamp"))
print(" ".join(ips) + (" " if ips else ""), end="")'
}

# endpoint_ips service: the sorted ready addresses of the Service's Endpoints.
endpoint_ips() {
  k get endpoints "$1" -o 'jsonpath={range .subsets[*].addresses[*]}{.ip}{"\n"}{end}' |
    grep -v '^$' | sort | tr '\n' ' '
}

# --- blue/green ---
EX=examples/blue-green
check "apply blue, green and the Service" "service/shop created" \
  k apply -f $EX/blue.yaml -f $EX/green.yaml -f $EX/service.yaml
check "blue rolls out" 'deployment "shop-blue" successfully rolled out' k rollout status deploy/shop-blue --timeout=60s
check "green rolls out beside it" 'deployment "shop-green" successfully rolled out' k rollout status deploy/shop-green --timeout=60s
BLUE=$(pod_ips app=shop,version=blue)
GREEN=$(pod_ips app=shop,version=green)
check_eq "three blue pods with IPs" "3" bash -c "echo $BLUE | wc -w"
check_eq "three green pods with IPs" "3" bash -c "echo $GREEN | wc -w"
eventually_eq "the Service sends traffic to blue only" "$BLUE" endpoint_ips shop
check "the Endpoints name the target port" "http" k get endpoints shop -o 'jsonpath={.subsets[0].ports[0].name}'

# The switch, timed from the patch returning to the Endpoints naming green.
check "switch the selector to green" "service/shop patched" \
  k patch svc shop -p '{"spec":{"selector":{"app":"shop","version":"green"}}}'
START=$(date +%s%N)
for _ in $(seq 1 300); do
  [ "$(endpoint_ips shop)" = "$GREEN" ] && break
  sleep 0.01
done
END=$(date +%s%N)
check_eq "the Endpoints follow the switch" "$GREEN" endpoint_ips shop
# Each poll is a kubectl process (tens of ms), so this bounds the delay from above.
MS=$(((END - START) / 1000000))
echo "       endpoints followed the selector switch within ${MS} ms (kubectl polling included)"
check "switch back to blue (rollback is one patch)" "service/shop patched" \
  k patch svc shop -p '{"spec":{"selector":{"app":"shop","version":"blue"}}}'
eventually_eq "the Endpoints follow back to blue" "$BLUE" endpoint_ips shop
check "retire blue after the final switch" "service/shop patched" \
  k patch svc shop -p '{"spec":{"selector":{"app":"shop","version":"green"}}}'
check "delete the blue Deployment" 'deployment.apps "shop-blue" deleted' k delete deploy shop-blue
eventually_eq "green keeps serving" "$GREEN" endpoint_ips shop

# --- canary ---
EX=examples/canary
check "apply stable, canary and the Service" "service/api created" \
  k apply -f $EX/stable.yaml -f $EX/canary.yaml -f $EX/service.yaml
check "stable rolls out" 'deployment "api-stable" successfully rolled out' k rollout status deploy/api-stable --timeout=60s
check "canary rolls out" 'deployment "api-canary" successfully rolled out' k rollout status deploy/api-canary --timeout=60s
ALL=$(pod_ips app=api)
eventually_eq "the Service selects both tracks: 10 endpoints" "$ALL" endpoint_ips api
check_eq "nine stable and one canary pod behind it (a 10% canary)" "9 1" \
  bash -c "echo \$(kubectl --cache-dir $WORK/cache get pods -l app=api,track=stable --no-headers | wc -l) \$(kubectl --cache-dir $WORK/cache get pods -l app=api,track=canary --no-headers | wc -l)"
check "grow the canary" "deployment.apps/api-canary scaled" k scale deploy api-canary --replicas=3
check "shrink stable" "deployment.apps/api-stable scaled" k scale deploy api-stable --replicas=7
check "canary at 3" 'successfully rolled out' k rollout status deploy/api-canary --timeout=60s
check "stable at 7" 'successfully rolled out' k rollout status deploy/api-stable --timeout=60s
eventually_eq "7 stable + 3 canary endpoints (30%)" "10" \
  bash -c "kubectl --cache-dir $WORK/cache get endpoints api -o jsonpath='{.subsets[*].addresses[*].ip}' | wc -w"
eventually_eq "7 stable pods left" "7" bash -c "kubectl --cache-dir $WORK/cache get pods -l app=api,track=stable -o name | wc -l"
eventually_eq "the Endpoints are exactly the pods of both tracks" "$(pod_ips app=api)" endpoint_ips api
check "promote: the stable track takes the canary's image" "image updated" \
  k set image deploy/api-stable api=nginx:1.27
check "stable rolls out the promoted image" 'successfully rolled out' k rollout status deploy/api-stable --timeout=60s
check "drop the canary" 'deployment.apps "api-canary" deleted' k delete deploy api-canary
eventually_eq "only stable pods remain behind the Service" "7" \
  bash -c "kubectl --cache-dir $WORK/cache get endpoints api -o jsonpath='{.subsets[*].addresses[*].ip}' | wc -w"

summary
