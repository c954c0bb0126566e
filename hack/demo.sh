#!/usr/bin/env bash
# Starts and stops the local stack (cmd/localstack) in the background.
#
#   hack/demo.sh up      start it, wait until every component serves, print exports
#   hack/demo.sh down    stop it and every process it started
#   hack/demo.sh status  say whether it runs
#   hack/demo.sh operator  (after up) start the operator, apply config/samples,
#                        wait for the tenants and print their conditions
#
# State, logs and the kubeconfig live in $PLEURA_DEMO_DIR (.state/demo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${PLEURA_DEMO_DIR:-$root/.state/demo}
pidfile=$state/localstack.pid
operator_pidfile=$state/operator.pid
operator_timeout=${PLEURA_DEMO_OPERATOR_TIMEOUT:-240}
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

operator_running() {
  [[ -f $operator_pidfile ]] && kill -0 "$(cat "$operator_pidfile")" 2>/dev/null
}

stop_operator() {
  if operator_running; then
    local pid
    pid=$(cat "$operator_pidfile")
    log "stopping the operator (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$operator_pidfile"
}

# vault_token_secret writes the least-privilege operator policy, creates a
# periodic token with it and stores it in a Secret. The token goes through
# stdin only, never argv or the log.
vault_token_secret() {
  local vault
  vault=$("$root/hack/tools.sh" path vault)
  "$vault" policy write pleura-operator "$root/config/vault/operator-policy.hcl" >/dev/null
  kubectl get namespace pleura-system >/dev/null 2>&1 || kubectl create namespace pleura-system >/dev/null
  # Revoke the token an earlier run stored; it travels in the environment.
  local old
  old=$(kubectl -n pleura-system get secret vault-operator-token \
    -o jsonpath='{.data.token}' 2>/dev/null | base64 -d 2>/dev/null || true)
  if [[ -n $old ]]; then VAULT_TOKEN=$old "$vault" token revoke -self >/dev/null 2>&1 || true; fi
  kubectl -n pleura-system delete secret vault-operator-token --ignore-not-found >/dev/null
  "$vault" token create -policy=pleura-operator -period=24h \
      -display-name=pleura-operator -field=token |
    kubectl -n pleura-system create secret generic vault-operator-token \
      --from-file=token=/dev/stdin >/dev/null
  log "operator Vault token (policy pleura-operator) stored in Secret pleura-system/vault-operator-token"
}

# conditions_table prints one row per tenant condition.
conditions_table() {
  kubectl get portaltenants -o go-template='{{range .items}}{{$n := .metadata.name}}{{range .status.conditions}}{{$n}}{{"\t"}}{{.type}}{{"\t"}}{{.status}}{{"\t"}}{{.reason}}{{"\t"}}{{.message}}{{"\n"}}{{end}}{{end}}' |
    awk -F'\t' 'BEGIN { printf "%-22s %-20s %-6s %-20s %s\n", "TENANT", "CONDITION", "STATUS", "REASON", "MESSAGE" }
      { printf "%-22s %-20s %-6s %-20s %s\n", $1, $2, $3, $4, $5 }'
}

# safeguards_hold: every sample tenant has each safeguard condition True.
# Tenants a user added are shown but not waited for.
safeguards_hold() {
  local want=5 n got samples=$root/config/samples/portaltenants.yaml
  n=$(kubectl get -f "$samples" -o name | wc -l)
  ((n > 0)) || return 1
  got=$(kubectl get -f "$samples" -o go-template='{{range .items}}{{range .status.conditions}}{{if and (eq .status "True") (or (eq .type "NamespaceReady") (eq .type "EncryptionKeyReady") (eq .type "TLSReady") (eq .type "NetworkIsolated") (eq .type "AccessPolicyLoaded"))}}x{{end}}{{end}}{{end}}' | wc -c)
  ((got == n * want))
}

operator() {
  running || { log "the local stack is not running; run: make demo"; exit 1; }
  # shellcheck disable=SC1091
  set -a; source "$state/env"; set +a
  stop_operator
  log "building cmd/manager"
  (cd "$root" && go build -o bin/manager ./cmd/manager)
  vault_token_secret
  log "starting the operator; log in $state/operator.log"
  nohup "$root/bin/manager" --vault-token-secret=pleura-system/vault-operator-token \
    --metrics-bind-address=127.0.0.1:18080 --health-probe-bind-address=127.0.0.1:18081 \
    >"$state/operator.log" 2>&1 </dev/null &
  echo $! >"$operator_pidfile"
  log "applying config/samples (AccessPolicy and two PortalTenants)"
  kubectl apply -f "$root/config/samples/accesspolicy.yaml" -f "$root/config/samples/portaltenants.yaml" >&2
  local start=$SECONDS last="" converged=true
  until safeguards_hold; do
    if ! operator_running; then
      log "the operator exited; last lines of $state/operator.log:"; tail -n 20 "$state/operator.log" >&2; exit 1
    fi
    if ((SECONDS - start > operator_timeout)); then
      converged=false
      break
    fi
    local now
    now=$(kubectl get portaltenants --no-headers 2>/dev/null | awk '{print $1 "=" $2}' | tr '\n' ' ')
    [[ $now != "$last" ]] && log "tenants: $now" && last=$now
    sleep 2
  done
  if $converged; then log "sample tenants converged in $((SECONDS - start))s"; fi
  echo
  kubectl get portaltenants
  echo
  conditions_table
  echo
  kubectl get accesspolicies -o custom-columns='POLICY:.metadata.name,GENERATION:.metadata.generation,ENFORCED BY:.status.enforcedBy[*].tenant,LOADED:.status.enforcedBy[*].loadedGeneration'
  echo
  log "the operator and the stack keep running; make demo-down stops both. Use:"
  grep -E '^export (KUBECONFIG|VAULT_ADDR)=' "$state/env"
  if ! $converged; then
    log "the sample tenants' safeguards were not all True after ${operator_timeout}s:" \
      "the table above gives each reason; see also $state/operator.log"
    exit 1
  fi
}

down() {
  stop_operator
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
  if operator_running; then
    log "operator running (pid $(cat "$operator_pidfile")); log in $state/operator.log"
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  operator) operator ;;
  *) log "usage: hack/demo.sh up|down|status|operator"; exit 2 ;;
esac
