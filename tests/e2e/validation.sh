#!/usr/bin/env bash
# End to end: server-side field validation with the real kubectl 1.32 against `skiff server
# --disable-agent`. kubectl sends fieldValidation=Strict by default, Warn with --validate=warn
# and Ignore with --validate=false; a manifest with a typo (examples/field-validation) is
# refused with upstream's message by apply, create and replace, accepted with a warning or
# silently otherwise, and the misspelt field is never stored.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
BG_PIDS=()
trap cleanup EXIT

start_server || exit 1

TYPO=examples/field-validation/deployment-typo.yaml
GOOD=examples/field-validation/deployment.yaml
MSG='Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicass"'
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: fv}\n' >"$WORK/ns.yaml"
k create -f "$WORK/ns.yaml" >/dev/null

# --- strict by default: refused, nothing stored ---
check_fails "apply refuses the typo with upstream's message" \
  "Error from server \(BadRequest\): error when creating \"$TYPO\": $MSG" \
  k apply -n fv -f "$TYPO"
check_fails "nothing was created" "NotFound" k get deploy typo -n fv
check_fails "create refuses the typo with upstream's message" \
  "Error from server \(BadRequest\): error when creating \"$TYPO\": $MSG" \
  k create -n fv -f "$TYPO"
check_fails "--validate=strict is the same" "strict decoding error: unknown field \"spec.replicass\"" \
  k create -n fv --validate=strict -f "$TYPO"
check_fails "still nothing created" "NotFound" k get deploy typo -n fv

# --- warn: created, with a warning, without the field ---
check "apply --validate=warn prints the warning" 'Warning: unknown field "spec.replicass"' \
  k apply -n fv --validate=warn -f "$TYPO"
check_eq "it was created with the default replicas" "1" k get deploy typo -n fv -o 'jsonpath={.spec.replicas}'
# (kubectl's last-applied-configuration annotation keeps the manifest as text, as upstream.)
check_eq "the misspelt field is not stored" "0" \
  bash -c "kubectl --cache-dir '$WORK/cache' get deploy typo -n fv -o jsonpath='{.spec}' | grep -c replicass"

# --- replace: strict refuses, Ignore accepts ---
check_fails "replace refuses the typo with upstream's message" \
  "Error from server \(BadRequest\): error when replacing \"$TYPO\": $MSG" \
  k replace -n fv -f "$TYPO"
check "replace --validate=false accepts it silently" '^deployment.apps/typo replaced$' \
  k replace -n fv --validate=false -f "$TYPO"

# --- apply to an existing object: the patch is judged by its result ---
check_fails "apply of a typo to an existing object is refused" \
  'strict decoding error: unknown field "spec.replicass"' \
  k apply -n fv -f "$TYPO"
check "apply of the fixed manifest works" "deployment.apps/typo configured" k apply -n fv -f "$GOOD"
check_eq "replicas now 3" "3" k get deploy typo -n fv -o 'jsonpath={.spec.replicas}'
check_fails "server-side apply refuses undeclared fields in every mode" \
  'failed to create typed patch object \(fv/typo; apps/v1, Kind=Deployment\): \.spec\.replicass: field not declared in schema' \
  k apply -n fv --server-side --force-conflicts --validate=false -f "$TYPO"

# --- edit: the editor adds a misspelt field ---
cat >"$WORK/editor.sh" <<'EOS'
#!/bin/sh
grep -q replicass "$1" || sed -i 's/^  replicas: \(.*\)$/  replicas: \1\n  replicass: 4/' "$1"
EOS
chmod +x "$WORK/editor.sh"
# (kubectl keeps a copy of a refused edit in TMPDIR: the test's own directory.)
check_fails "edit refuses the misspelt field" 'deployments.apps "typo" is invalid' \
  env TMPDIR="$WORK" KUBE_EDITOR="$WORK/editor.sh" kubectl --cache-dir "$WORK/cache" edit deploy typo -n fv
check "edit --validate=warn prints the warning and edits" 'Warning: unknown field "spec.replicass"' \
  env TMPDIR="$WORK" KUBE_EDITOR="$WORK/editor.sh" kubectl --cache-dir "$WORK/cache" edit --validate=warn deploy typo -n fv

# --- ignore: created silently, without the field ---
k delete deploy typo -n fv >/dev/null
check_eq "create --validate=false prints no warning" "deployment.apps/typo created" \
  k create -n fv --validate=false -f "$TYPO"
check_eq "the misspelt field is not stored either" "0" \
  bash -c "kubectl --cache-dir '$WORK/cache' get deploy typo -n fv -o json | grep -c replicass"

# --- raw requests: an unknown fieldValidation value ---
check_fails "an unknown fieldValidation value is refused" \
  'The CreateOptions "" is invalid: fieldValidation: Unsupported value: "Sometimes": supported values: "", "Ignore", "Strict", "Warn"' \
  k create --raw '/api/v1/namespaces/fv/configmaps?fieldValidation=Sometimes' -f - <<<'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'

summary
