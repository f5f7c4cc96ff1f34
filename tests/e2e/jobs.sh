#!/usr/bin/env bash
# End to end: Jobs and CronJobs with the real kubectl 1.32 on `skiff server --disable-agent
# --fake-nodes 3` (simulated nodes run Job pods to completion). Covers kubectl create job,
# kubectl wait --for=condition=complete, the examples in examples/job and examples/cronjob
# (parallel, Indexed, pod failure policy, TTL, time zones), kubectl create cronjob,
# kubectl create job --from=cronjob/x, kubectl get cronjobs, a scheduled run, and a bad
# schedule refused with upstream's message.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

EX=examples
start_server --fake-nodes 3 || exit 1
check "three simulated nodes become Ready" "condition met" k wait --for=condition=Ready nodes --all --timeout=30s

# A CronJob made first, so that its first scheduled run (the next minute) comes while the
# rest runs.
check "kubectl create cronjob" "cronjob.batch/tick created" \
  k create cronjob tick --image=busybox --schedule="* * * * *" -- date
check "kubectl get cronjobs shows schedule, timezone, suspend, active" \
  "tick +\* \* \* \* \* +<none> +False +0 +<none>" k get cronjobs

# --- a Job from the command line ---
check "kubectl create job" "job.batch/x created" k create job x --image=busybox -- sh -c "exit 0"
check "kubectl wait --for=condition=complete" "job.batch/x condition met" \
  k wait --for=condition=complete job/x --timeout=60s
check "get job shows Complete 1/1" "x +Complete +1/1 " k get job x
check_eq "status.succeeded is 1" "1" k get job x -o 'jsonpath={.status.succeeded}'
check_eq "the succeeded pod carries the job-name label and no tracking finalizer" "Succeeded:" \
  k get pods -l batch.kubernetes.io/job-name=x -o 'jsonpath={range .items[*]}{.status.phase}:{.metadata.finalizers}{end}'
check "describe job tells the story" "Normal +SuccessfulCreate +[0-9a-z]+ +job-controller +Created pod: x-" k describe job x
check "describe job shows the Completed event" "Normal +Completed +[0-9a-z]+ +job-controller +Job completed" k describe job x
check "get events lists the job's events" "Job completed" k get events --field-selector involvedObject.name=x

# --- examples ---
check "apply the parallel example" "job.batch/parallel created" k apply -f $EX/job/parallel.yaml
check "apply the Indexed example" "job.batch/indexed created" k apply -f $EX/job/indexed.yaml
check "apply the failure policy example" "job.batch/fail-fast created" k apply -f $EX/job/failure-policy.yaml
check "apply the TTL example" "job.batch/short-lived created" k apply -f $EX/job/ttl.yaml
check "parallel job completes" "condition met" k wait --for=condition=complete job/parallel --timeout=90s
check_eq "parallel job counted 6 successes" "6" k get job parallel -o 'jsonpath={.status.succeeded}'
check "Indexed job completes" "condition met" k wait --for=condition=complete job/indexed --timeout=90s
check_eq "Indexed job reports completedIndexes as a range" "0-4" k get job indexed -o 'jsonpath={.status.completedIndexes}'
check_eq "Indexed pods are named by index and get hostnames" "indexed-0 indexed-1 indexed-2 indexed-3 indexed-4 " \
  sh -c "kubectl --cache-dir '$WORK/cache' get pods -l job-name=indexed -o 'jsonpath={range .items[*]}{.spec.hostname}{\"\\n\"}{end}' | sort | tr '\n' ' '"
check "Indexed pods get JOB_COMPLETION_INDEX from the index label" "JOB_COMPLETION_INDEX.*job-completion-index" \
  k get pods -l job-name=indexed -o 'jsonpath={.items[0].spec.containers[0].env}'
check "failure policy fails the job at once" "condition met" k wait --for=condition=failed job/fail-fast --timeout=60s
check_eq "with reason PodFailurePolicy" "PodFailurePolicy" \
  k get job fail-fast -o 'jsonpath={.status.conditions[?(@.type=="Failed")].reason}'
check "TTL job completes" "condition met" k wait --for=condition=complete job/short-lived --timeout=60s
check "and is deleted after its TTL" "condition met|deleted" k wait --for=delete job/short-lived --timeout=60s

# --- CronJobs ---
check "kubectl create job --from=cronjob" "job.batch/manual created" k create job manual --from=cronjob/tick
check_eq "the manual job is marked as such" "manual" \
  k get job manual -o 'jsonpath={.metadata.annotations.cronjob\.kubernetes\.io/instantiate}'
check_eq "and owned by the CronJob" "CronJob/tick" \
  k get job manual -o 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}'
check "the manual job completes" "condition met" k wait --for=condition=complete job/manual --timeout=60s
check "apply the time zone example" "cronjob.batch/nightly-report created" k apply -f $EX/cronjob/nightly-report.yaml
check "get cronjobs shows its time zone" "nightly-report +30 2 \* \* mon-fri +America/New_York +False" k get cronjobs
check "apply the hello example" "cronjob.batch/hello created" k apply -f $EX/cronjob/hello.yaml
check_fails "a bad schedule is refused with robfig's message" \
  'spec.schedule: Invalid value: "61 \* \* \* \*": end of range \(61\) above maximum \(59\): 61' \
  k create cronjob bad --image=busybox --schedule="61 * * * *"
check_fails "TZ= in the schedule is refused" "cannot use TZ or CRON_TZ in schedule, use timeZone field instead" \
  k create cronjob tz --image=busybox --schedule="TZ=UTC 0 * * * *"

# The scheduled run: within the next minute a Job tick-<minutes> appears and completes.
scheduled=""
for _ in $(seq 1 150); do
  scheduled=$(k get jobs -o name | grep -E '^job.batch/tick-[0-9]+$' | head -1)
  [ -n "$scheduled" ] && break
  sleep 0.5
done
if [ -n "$scheduled" ]; then pass "the CronJob ran on schedule ($scheduled)"; else fail "the CronJob ran on schedule"; fi
if [ -n "$scheduled" ]; then
  check "the scheduled job completes" "condition met" k wait --for=condition=complete "$scheduled" --timeout=60s
  check "the scheduled job carries the scheduled-timestamp annotation" \
    "cronjob-scheduled-timestamp\":\"[0-9-]+T[0-9:]+Z" k get "$scheduled" -o 'jsonpath={.metadata.annotations}'
  check "describe cronjob shows the controller's events" "Normal +SuccessfulCreate +[0-9a-z]+ +cronjob-controller +Created job tick-" k describe cronjob tick
  check "the CronJob notices completion" "SawCompletedJob" \
    sh -c "sleep 2; kubectl --cache-dir '$WORK/cache' describe cronjob tick"
  check "get cronjobs shows a last schedule time" "tick +\* \* \* \* \* +<none> +False +0 +[0-9]+s" k get cronjob tick
fi

summary
