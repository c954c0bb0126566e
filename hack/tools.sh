#!/usr/bin/env bash
# Builds the pinned upstream components Pleura runs against from the Go module
# proxy into a versioned cache, and tells where they are.
#
#   hack/tools.sh build [COMPONENT...]   build what is missing (default: all)
#   hack/tools.sh path COMPONENT         print the binary's path (built or not)
#   hack/tools.sh assets                 print the envtest assets directory
#   hack/tools.sh check [COMPONENT...]   exit 1, naming the command to run, if missing
#   hack/tools.sh prune                  remove cached builds no pin refers to
#
# Components: etcd kube-apiserver kube-controller-manager vault cert-manager
# controller-gen. Versions come from hack/versions.env only. Nothing is
# downloaded but Go modules; nothing is built twice: each binary sits under
# $PLEURA_CACHE/bin/<name>-<version>-<hash of its tool module's go.sum>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"
cache=${PLEURA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pleura}
export GOWORK=off GOFLAGS=-buildvcs=false

all=(etcd kube-apiserver kube-controller-manager cert-manager controller-gen vault)

log() { printf '[tools] %s\n' "$*" >&2; }

# module COMPONENT: the tool module under hack/tools that builds it.
module() {
  case $1 in
    etcd) echo etcd ;;
    kube-apiserver | kube-controller-manager) echo kube ;;
    vault) echo vault ;;
    cert-manager) echo certmanager ;;
    controller-gen) echo controllergen ;;
    *) log "unknown component '$1'; known: ${all[*]}"; exit 2 ;;
  esac
}

version() {
  case $1 in
    etcd) echo "$ETCD_VERSION" ;;
    kube-apiserver | kube-controller-manager) echo "$KUBERNETES_VERSION" ;;
    vault) echo "$VAULT_VERSION" ;;
    cert-manager) echo "$CERT_MANAGER_VERSION" ;;
    controller-gen) echo "$CONTROLLER_TOOLS_VERSION" ;;
  esac
}

# package COMPONENT: the Go package to build inside its tool module.
package() {
  case $1 in
    etcd | cert-manager) echo . ;;
    kube-apiserver | kube-controller-manager) echo "k8s.io/kubernetes/cmd/$1" ;;
    vault) echo github.com/hashicorp/vault ;;
    controller-gen) echo sigs.k8s.io/controller-tools/cmd/controller-gen ;;
  esac
}

# estimate COMPONENT: what a cold build cost on a 2-core machine.
estimate() {
  case $1 in
    vault) echo "about 15 minutes and 4.6 GB of memory" ;;
    kube-apiserver) echo "about 10 minutes with module downloads" ;;
    kube-controller-manager) echo "about 3 minutes after kube-apiserver" ;;
    *) echo "a few minutes" ;;
  esac
}

ldflags() {
  local flags="-s -w"
  case $1 in
    kube-apiserver | kube-controller-manager)
      local v=${KUBERNETES_VERSION#v} p=k8s.io/component-base/version
      local major=${v%%.*} rest=${v#*.}
      local minor=${rest%%.*}
      for x in "$p" k8s.io/client-go/pkg/version; do
        flags+=" -X $x.gitVersion=$KUBERNETES_VERSION -X $x.gitMajor=$major"
        flags+=" -X $x.gitMinor=$minor -X $x.gitTreeState=clean"
        flags+=" -X $x.gitCommit=0000000000000000000000000000000000000000"
        flags+=" -X $x.buildDate=1970-01-01T00:00:00Z"
      done
      ;;
  esac
  echo "$flags"
}

path() {
  local mod dir sum
  mod=$(module "$1")
  dir=$root/hack/tools/$mod
  # The key covers what decides the binary: the module graph and the flags.
  sum=$({ cat "$dir/go.mod" "$dir/go.sum"; ldflags "$1"; } | sha256sum | cut -c1-10)
  echo "$cache/bin/$1-$(version "$1")-$sum/$1"
}

build_one() {
  local name=$1 out mod start
  out=$(path "$name")
  if [[ -x $out ]]; then
    log "$name $(version "$name") is cached at $out"
    return
  fi
  mod=$(module "$name")
  log "building $name $(version "$name") from hack/tools/$mod; cold, $(estimate "$name")"
  start=$SECONDS
  mkdir -p "$(dirname "$out")"
  (cd "$root/hack/tools/$mod" &&
    go build -trimpath -ldflags "$(ldflags "$name")" -o "$out.tmp.$$" "$(package "$name")")
  mv "$out.tmp.$$" "$out"
  log "built $name in $((SECONDS - start))s: $out"
}

# download: fetch every tool module's dependencies at once; the network is
# the bottleneck there, not the two CPU cores.
download() {
  local pids=() mod
  for mod in "$@"; do
    (cd "$root/hack/tools/$mod" && go mod download) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

build() {
  local want=("$@") missing=() lane_a=() lane_b=() name
  ((${#want[@]})) || want=("${all[@]}")
  for name in "${want[@]}"; do
    if [[ -x $(path "$name") ]]; then log "$name $(version "$name") is cached"; else missing+=("$name"); fi
  done
  ((${#missing[@]})) || return 0
  local mods=()
  for name in "${missing[@]}"; do mods+=("$(module "$name")"); done
  log "downloading modules for: ${missing[*]}"
  download $(printf '%s\n' "${mods[@]}" | sort -u)

  # Two lanes: Vault alone (the longest build and the most memory) beside
  # everything else in sequence. Two concurrent builds keep both cores busy
  # through the single-threaded link steps and stay near 8 GB of memory.
  for name in "${missing[@]}"; do
    if [[ $name == vault ]]; then lane_a+=("$name"); else lane_b+=("$name"); fi
  done
  local pid_a="" rc=0
  if ((${#lane_a[@]})); then
    (for n in "${lane_a[@]}"; do build_one "$n"; done) &
    pid_a=$!
  fi
  for n in "${lane_b[@]}"; do build_one "$n" || rc=1; done
  if [[ -n $pid_a ]]; then wait "$pid_a" || rc=1; fi
  return $rc
}

assets() {
  # envtest looks for etcd, kube-apiserver (and kubectl) in one directory.
  local dir=$cache/assets/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION
  mkdir -p "$dir"
  local n
  for n in etcd kube-apiserver kube-controller-manager; do
    # envtest starts these in their own process group but does not tie
    # them to its life: a test binary killed by a timeout would leave them
    # running. setpriv (util-linux) makes the kernel kill them with it.
    printf '#!/bin/sh\nexec setpriv --pdeathsig KILL -- %s "$@"\n' "$(path "$n")" \
      >"$dir/$n.tmp.$$"
    chmod +x "$dir/$n.tmp.$$"
    mv -f "$dir/$n.tmp.$$" "$dir/$n"
  done
  if command -v kubectl >/dev/null; then ln -sfn "$(command -v kubectl)" "$dir/kubectl"; fi
  echo "$dir"
}

check() {
  local want=("$@") missing=()
  ((${#want[@]})) || want=("${all[@]}")
  for n in "${want[@]}"; do [[ -x $(path "$n") ]] || missing+=("$n"); done
  if ((${#missing[@]})); then
    log "missing: ${missing[*]}; run: make tools"
    exit 1
  fi
}

prune() {
  local keep=() d n
  for n in "${all[@]}"; do keep+=("$(dirname "$(path "$n")")"); done
  for d in "$cache"/bin/*/; do
    d=${d%/}
    if [[ ! " ${keep[*]} " == *" $d "* ]]; then
      log "removing $d"
      rm -rf "$d"
    fi
  done
}

cmd=${1:-build}
shift || true
case $cmd in
  build) build "$@" ;;
  path) path "$1" ;;
  assets) assets ;;
  check) check "$@" ;;
  prune) prune ;;
  *) log "usage: hack/tools.sh build|path|assets|check|prune [COMPONENT...]"; exit 2 ;;
esac
