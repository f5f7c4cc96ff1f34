# Helpers for the end-to-end scripts: start a Skiff server on a free port with its data in a
# temporary directory, drive it with the real kubectl, count checks, clean up by PID.

SKIFF_BIN=${SKIFF_BIN:-$(pwd)/target/debug/skiff}
PASSED=0
FAILED=0
FAILURES=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_server [extra flags...]: sets WORK, PORT, SERVER_PID, KUBECONFIG.
start_server() {
  WORK=${WORK:-$(mktemp -d /tmp/skiff-e2e.XXXXXX)}
  PORT=$(free_port)
  "$SKIFF_BIN" server --data-dir "$WORK/data" --bind-address 127.0.0.1 --https-listen-port "$PORT" \
    --disable-agent --write-kubeconfig "$WORK/kubeconfig" "$@" >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  export KUBECONFIG="$WORK/kubeconfig"
  for _ in $(seq 1 200); do
    if [ -s "$KUBECONFIG" ] && k get --raw /readyz >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "server did not become ready; log:" >&2
  cat "$WORK/server.log" >&2
  return 1
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=
}

cleanup() {
  stop_server
  for p in "${BG_PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null
  done
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

# kubectl with a private discovery cache.
k() {
  kubectl --cache-dir "$WORK/cache" "$@"
}

pass() {
  PASSED=$((PASSED + 1))
  echo "ok   - $1"
}

fail() {
  FAILED=$((FAILED + 1))
  FAILURES+=("$1")
  echo "FAIL - $1"
  [ -n "${2:-}" ] && printf '       %s\n' "$2" | head -20
}

# check "description" expected-regex command...: runs the command, matches stdout+stderr.
check() {
  local desc=$1 want=$2
  shift 2
  local out
  out=$("$@" 2>&1)
  # A here-string, not a pipe: grep -q stops reading at the first match, and with pipefail
  # the writer's SIGPIPE on a long output would count as no match.
  if grep -Eq -- "$want" <<<"$out"; then
    pass "$desc"
  else
    fail "$desc" "wanted /$want/, got: $out"
  fi
}

# check_eq "description" expected command...: stdout must equal expected exactly.
check_eq() {
  local desc=$1 want=$2
  shift 2
  local out
  out=$("$@" 2>&1)
  if [ "$out" = "$want" ]; then
    pass "$desc"
  else
    fail "$desc" "wanted '$want', got: '$out'"
  fi
}

# eventually_eq "description" expected command...: retries for up to 30 s until stdout equals
# expected (controllers and simulated kubelets act a moment after the write that asks them).
eventually_eq() {
  local desc=$1 want=$2
  shift 2
  local out
  for _ in $(seq 1 150); do
    out=$("$@" 2>&1)
    if [ "$out" = "$want" ]; then
      pass "$desc"
      return 0
    fi
    sleep 0.2
  done
  fail "$desc" "wanted '$want', got: '$out'"
}

# check_fails "description" expected-regex command...: the command must fail and print it.
check_fails() {
  local desc=$1 want=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && grep -Eq -- "$want" <<<"$out"; then
    pass "$desc"
  else
    fail "$desc" "wanted failure matching /$want/, rc=$rc, got: $out"
  fi
}

summary() {
  echo
  if [ "$FAILED" -gt 0 ]; then
    printf 'failed: %s\n' "${FAILURES[@]}"
  fi
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# check_ok "description" command...: the command must succeed.
check_ok() {
  local desc=$1
  shift
  local out
  if out=$("$@" 2>&1); then
    pass "$desc"
  else
    fail "$desc" "command failed: $out"
  fi
}
