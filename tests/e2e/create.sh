#!/usr/bin/env bash
# End to end: kubectl's `create <generator>` commands and `auth can-i`, whose bodies client-go
# sends only as protobuf (application/vnd.kubernetes.protobuf). Each object is read back with
# -o jsonpath to check that what was sent arrived field for field (quantities, int-or-string,
# bytes, maps, defaults applied after decoding), and examples/kubectl-create, the same objects
# as manifests, must be stored exactly as their protobuf twins.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server || exit 1
NS=create-test
jp() { k get "$@" 2>&1; }

# --- namespace ---
check "create namespace" "namespace/$NS created" k create namespace $NS
check_eq "the namespace is Active" "Active" jp namespace $NS -o 'jsonpath={.status.phase}'
check_eq "the namespace got its finalizer" "kubernetes" jp namespace $NS -o 'jsonpath={.spec.finalizers[0]}'

# --- configmap: literals, a text file and a binary file ---
printf 'line one\nline two\n' >"$WORK/app.conf"
printf '\x00\x01\x02\xff' >"$WORK/blob.bin"
check "create configmap --from-literal" "configmap/lit created" \
  k create configmap lit -n $NS --from-literal=color=blue --from-literal=size=10
check_eq "configmap literal data" "blue 10" jp configmap lit -n $NS -o 'jsonpath={.data.color} {.data.size}'
check "create configmap --from-file (text and binary)" "configmap/files created" \
  k create configmap files -n $NS --from-file="$WORK/app.conf" --from-file="$WORK/blob.bin"
check_eq "configmap file data" "$(printf 'line one\nline two')" jp configmap files -n $NS -o 'jsonpath={.data.app\.conf}'
check_eq "configmap binary file lands in binaryData as base64" "AAEC/w==" \
  jp configmap files -n $NS -o 'jsonpath={.binaryData.blob\.bin}'

# --- secret generic ---
check "create secret generic" "secret/creds created" \
  k create secret generic creds -n $NS --from-literal=password=s3cr3t --from-file="$WORK/blob.bin"
check_eq "secret data is base64 of the bytes sent" "czNjcjN0 AAEC/w==" \
  jp secret creds -n $NS -o 'jsonpath={.data.password} {.data.blob\.bin}'
check_eq "secret type Opaque" "Opaque" jp secret creds -n $NS -o 'jsonpath={.type}'

# --- deployment ---
check "create deployment --image --replicas" "deployment.apps/web created" \
  k create deployment web -n $NS --image=nginx:1.27 --replicas=3 --port=80
check_eq "deployment replicas, image and port" "3 nginx:1.27 80" \
  jp deployment web -n $NS -o 'jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}'
check_eq "deployment selector and template labels" "web web" \
  jp deployment web -n $NS -o 'jsonpath={.spec.selector.matchLabels.app} {.spec.template.metadata.labels.app}'
check_eq "deployment defaults applied after decoding" "RollingUpdate 25% 10" \
  jp deployment web -n $NS -o 'jsonpath={.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge} {.spec.revisionHistoryLimit}'
check "create deployment --replicas=0 keeps the explicit zero" "deployment.apps/idle created" \
  k create deployment idle -n $NS --image=nginx:1.27 --replicas=0
check_eq "replicas 0 is kept (pointer field)" "0" jp deployment idle -n $NS -o 'jsonpath={.spec.replicas}'

# --- service clusterip ---
check "create service clusterip" "service/web created" k create service clusterip web -n $NS --tcp=80:8080
check_eq "service port and int targetPort" "80 8080 TCP" \
  jp service web -n $NS -o 'jsonpath={.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.ports[0].protocol}'
check "service got a ClusterIP" "^10\.43\." jp service web -n $NS -o 'jsonpath={.spec.clusterIP}'
check "create service nodeport" "service/np created" k create service nodeport np -n $NS --tcp=80:http
check_eq "service named targetPort" "http" jp service np -n $NS -o 'jsonpath={.spec.ports[0].targetPort}'

# --- job and cronjob ---
check "create job with a command" "job.batch/once created" k create job once -n $NS --image=busybox -- echo hi there
check_eq "job command and restartPolicy" "echo hi there Never" \
  jp job once -n $NS -o 'jsonpath={.spec.template.spec.containers[0].command[*]} {.spec.template.spec.restartPolicy}'
check "create cronjob" "cronjob.batch/tick created" \
  k create cronjob tick -n $NS --image=busybox --schedule='*/5 * * * *' -- date
check_eq "cronjob schedule and command" "*/5 * * * * date" \
  jp cronjob tick -n $NS -o 'jsonpath={.spec.schedule} {.spec.jobTemplate.spec.template.spec.containers[0].command[0]}'

# --- RBAC ---
check "create role" "role.rbac.authorization.k8s.io/reader created" \
  k create role reader -n $NS --verb=get,list,watch --resource=pods,configmaps
check_eq "role rules" "get list watch pods configmaps" \
  jp role reader -n $NS -o 'jsonpath={.rules[0].verbs[*]} {.rules[0].resources[*]}'
check "create rolebinding" "rolebinding.rbac.authorization.k8s.io/read-alice created" \
  k create rolebinding read-alice -n $NS --role=reader --user=alice --group=devs
check_eq "rolebinding roleRef and subjects" "Role reader User alice Group devs" \
  jp rolebinding read-alice -n $NS -o 'jsonpath={.roleRef.kind} {.roleRef.name} {.subjects[0].kind} {.subjects[0].name} {.subjects[1].kind} {.subjects[1].name}'
check "create clusterrole" "clusterrole.rbac.authorization.k8s.io/node-reader created" \
  k create clusterrole node-reader --verb=get,list --resource=nodes --resource-name=node-1
check_eq "clusterrole rules" "get list nodes node-1" \
  jp clusterrole node-reader -o 'jsonpath={.rules[0].verbs[*]} {.rules[0].resources[0]} {.rules[0].resourceNames[0]}'
check "create clusterrolebinding" "clusterrolebinding.rbac.authorization.k8s.io/node-reader-bob created" \
  k create clusterrolebinding node-reader-bob --clusterrole=node-reader --serviceaccount=$NS:robot
check_eq "clusterrolebinding ServiceAccount subject" "ServiceAccount robot $NS" \
  jp clusterrolebinding node-reader-bob -o 'jsonpath={.subjects[0].kind} {.subjects[0].name} {.subjects[0].namespace}'

# --- serviceaccount, quota, priorityclass, pdb, ingress ---
check "create serviceaccount" "serviceaccount/robot created" k create serviceaccount robot -n $NS
check_eq "serviceaccount exists" "robot" jp serviceaccount robot -n $NS -o 'jsonpath={.metadata.name}'
check "create quota" "resourcequota/limits created" k create quota limits -n $NS --hard=pods=10,cpu=2,memory=1Gi
check_eq "quota quantities" "10 2 1Gi" jp resourcequota limits -n $NS -o 'jsonpath={.spec.hard.pods} {.spec.hard.cpu} {.spec.hard.memory}'
check "create priorityclass" "priorityclass.scheduling.k8s.io/high created" \
  k create priorityclass high --value=1000 --description="important things"
check_eq "priorityclass value, description and defaulted preemptionPolicy" "1000 important things PreemptLowerPriority" \
  jp priorityclass high -o 'jsonpath={.value} {.description} {.preemptionPolicy}'
check "create pdb --min-available" "poddisruptionbudget.policy/web-pdb created" \
  k create pdb web-pdb -n $NS --selector=app=web --min-available=1
check_eq "pdb int minAvailable and selector" "1 web" \
  jp pdb web-pdb -n $NS -o 'jsonpath={.spec.minAvailable} {.spec.selector.matchLabels.app}'
check "create pdb --max-unavailable percent" "poddisruptionbudget.policy/pct created" \
  k create pdb pct -n $NS --selector=app=web --max-unavailable=50%
check_eq "pdb string maxUnavailable" "50%" jp pdb pct -n $NS -o 'jsonpath={.spec.maxUnavailable}'
check "create ingress" "ingress.networking.k8s.io/site created" \
  k create ingress site -n $NS --rule='shop.example.com/cart*=web:80'
check_eq "ingress rule" "shop.example.com /cart Prefix web 80" \
  jp ingress site -n $NS -o 'jsonpath={.spec.rules[0].host} {.spec.rules[0].http.paths[0].path} {.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.name} {.spec.rules[0].http.paths[0].backend.service.port.number}'

# --- the same objects sent as protobuf (generators) and as JSON (create -f) are stored alike ---
EX=examples/kubectl-create
k create namespace pb-gen >/dev/null
k create namespace json-gen >/dev/null
k create deployment web -n pb-gen --image=nginx:1.27 --replicas=3 --port=80 >/dev/null
k create secret generic creds -n pb-gen --from-literal=password=s3cr3t >/dev/null
k create service clusterip web -n pb-gen --tcp=80:8080 >/dev/null
k create pdb web-pdb -n pb-gen --selector=app=web --min-available=1 >/dev/null
check "create -f the example manifests (JSON bodies)" "poddisruptionbudget.policy/web-pdb created" \
  k create -n json-gen -f $EX/deployment.yaml -f $EX/secret.yaml -f $EX/service.yaml -f $EX/pdb.yaml
# Stored content without what differs by nature (identity, times, allocated addresses).
stored() {
  k get "$1" -n "$2" -o json | jq -S --arg f "$3" 'del(.metadata.uid, .metadata.resourceVersion,
    .metadata.creationTimestamp, .metadata.namespace, .metadata.managedFields, .metadata.annotations,
    .spec.clusterIP, .spec.clusterIPs) | getpath($f | split(".") | map(select(. != "")))'
}
check "the compared content is real (deployment spec)" '"replicas": 3' stored deployment/web pb-gen spec
check "the compared content is real (service spec)" '"targetPort": 8080' stored service/web pb-gen spec
for obj in "deployment/web spec" "deployment/web metadata" "secret/creds data" "secret/creds type" \
  "service/web spec" "service/web metadata" "poddisruptionbudget/web-pdb spec"; do
  set -- $obj
  check_eq "protobuf and JSON bodies store the same $1 .$2" "$(stored "$1" json-gen "$2")" stored "$1" pb-gen "$2"
done

# --- errors come back as upstream's ---
check_fails "create of an existing object is AlreadyExists" 'deployments.apps "web" already exists' \
  k create deployment web -n $NS --image=nginx
check_fails "validation still runs on decoded protobuf" "Invalid value" \
  k create deployment Bad_Name -n $NS --image=nginx

# --- auth ---
check_eq "auth can-i create pods" "yes" k auth can-i create pods
check_eq "auth can-i in a namespace with a subresource" "yes" k auth can-i get pods/log -n $NS
check "auth can-i --list prints rules" "Resources +Non-Resource URLs +Resource Names +Verbs" k auth can-i --list -n $NS
check "auth can-i --list lists the wildcard rule" '\*\.\* +\[\] +\[\] +\[\*\]' k auth can-i --list -n $NS

# --- dry runs and delete with protobuf bodies ---
check "create --dry-run=server" "configmap/dry created \(server dry run\)" \
  k create configmap dry -n $NS --from-literal=a=b --dry-run=server
check_fails "a server dry run stores nothing" "NotFound" k get configmap dry -n $NS
k delete namespace pb-gen json-gen --wait=false >/dev/null
check "delete namespace" "namespace \"$NS\" deleted" k delete namespace $NS --wait=true --timeout=60s
check_fails "the namespace is gone" "NotFound" k get namespace $NS

summary
