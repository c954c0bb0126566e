#!/usr/bin/env bash
# Rewrites the go.mod of every tool module under hack/tools from
# hack/versions.env and tidies it. Run it (make tools-update) after bumping a
# version; commit the resulting go.mod and go.sum files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../versions.env
source "$here/../versions.env"

# header MODULE: the first lines every tool module shares.
header() {
  printf 'module github.com/pleura-dev/pleura/hack/tools/%s\n\ngo %s\n\n' "$1" "$GO_VERSION.0"
}

kube_staging_replaces() {
  local mod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod
  [[ -f $mod ]] || go mod download k8s.io/kubernetes@"$KUBERNETES_VERSION"
  grep -E '=> \./staging' "$mod" | awk -v v="$KUBE_STAGING_VERSION" \
    '{printf "replace %s => %s %s\n", $1, $1, v}'
}

tidy() {
  (cd "$here/$1" && go mod tidy -e >/dev/null)
  echo "updated hack/tools/$1"
}

{
  header kube
  printf 'require k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"
  printf 'tool (\n\tk8s.io/kubernetes/cmd/kube-apiserver\n'
  printf '\tk8s.io/kubernetes/cmd/kube-controller-manager\n)\n\n'
  kube_staging_replaces
} >"$here/kube/go.mod"
tidy kube

{
  header etcd
  printf 'require go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION"
} >"$here/etcd/go.mod"
tidy etcd

{
  header vault
  printf 'require github.com/hashicorp/vault %s\n\n' "$VAULT_VERSION"
  printf 'tool github.com/hashicorp/vault\n\n'
  printf 'replace github.com/hashicorp/vault/api => github.com/hashicorp/vault/api %s\n' \
    "$VAULT_API_REPLACE_VERSION"
  printf 'replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk %s\n' \
    "$VAULT_SDK_REPLACE_VERSION"
  # The two replacements Vault's own go.mod carries.
  printf 'replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3\n'
  printf 'replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1\n'
} >"$here/vault/go.mod"
tidy vault

{
  header certmanager
  printf 'require github.com/cert-manager/cert-manager %s\n' "$CERT_MANAGER_VERSION"
} >"$here/certmanager/go.mod"
tidy certmanager

{
  header controllergen
  printf 'require sigs.k8s.io/controller-tools %s\n\n' "$CONTROLLER_TOOLS_VERSION"
  printf 'tool sigs.k8s.io/controller-tools/cmd/controller-gen\n'
} >"$here/controllergen/go.mod"
tidy controllergen
