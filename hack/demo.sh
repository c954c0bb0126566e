#!/usr/bin/env bash
# Starts and stops the local stack (cmd/localstack) in the background.
#
#   hack/demo.sh up      start it, wait until every component serves, print exports
#   hack/demo.sh down    stop it and every process it started
#   hack/demo.sh status  say whether it runs
#
# State, logs and the kubeconfig live in $PLEURA_DEMO_DIR (.state/demo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${PLEURA_DEMO_DIR:-$root/.state/demo}
pidfile=$state/localstack.pid
ready_timeout=${PLEURA_DEMO_TIMEOUT:-300}

log() { printf '[demo] %s\n' "$*" >&2; }

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# descendants PID: every process below PID, deepest last.
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

print_exports() {
  grep -E '^export (KUBECONFIG|VAULT_ADDR)=' "$state/env"
  cat >&2 <<MSG
[demo] VAULT_TOKEN and PLEURA_POSTGRES_DSN are in $state/env (mode 0600): source it to use them.
[demo] logs: $state/<component>.log (etcd, kube-apiserver, kube-controller-manager,
[demo]       vault, cert-manager, postgres) and $state/localstack.log
MSG
}

up() {
  if running; then
    log "already running (pid $(cat "$pidfile"))"
    print_exports
    return
  fi
  "$root/hack/tools.sh" build
  # Vault's dev server keeps keys in memory only: start every component from
  # empty state so they agree.
  rm -rf "$state"
  mkdir -p "$root/bin" "$state"
  log "building cmd/localstack"
  (cd "$root" && go build -o bin/localstack ./cmd/localstack)
  rm -f "$state/ready"
  log "starting the local stack; logs in $state"
  nohup "$root/bin/localstack" --dir "$state" >"$state/localstack.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local start=$SECONDS shown=""
  until [[ -f $state/ready ]]; do
    if ! running; then
      log "the local stack exited while starting; last lines of $state/localstack.log:"
      tail -n 20 "$state/localstack.log" >&2
      exit 1
    fi
    if ((SECONDS - start > ready_timeout)); then
      log "not ready after ${ready_timeout}s; stopping it. See $state/*.log"
      down
      exit 1
    fi
    local now
    now=$(cd "$state" && ls -1 ./*.log 2>/dev/null | sed 's|^\./||; s|\.log$||' | tr '\n' ' ')
    if [[ $now != "$shown" ]]; then
      log "started so far: $now"
      shown=$now
    fi
    sleep 1
  done
  log "ready in $((SECONDS - start))s"
  print_exports
}

down() {
  if ! [[ -f $pidfile ]]; then
    log "not running"
    return
  fi
  local pid procs left=()
  pid=$(cat "$pidfile")
  procs=$(descendants "$pid")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping the local stack (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  for p in $procs; do
    if kill -0 "$p" 2>/dev/null; then left+=("$p"); kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -f "$pidfile" "$state/ready"
  if ((${#left[@]})); then
    log "killed ${#left[@]} process(es) that outlived the stack: ${left[*]}"
  fi
  log "stopped; no process left. Logs stay in $state until the next demo-up"
}

status() {
  if running; then log "running (pid $(cat "$pidfile"))"; print_exports; else log "not running"; fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) log "usage: hack/demo.sh up|down|status"; exit 2 ;;
esac
