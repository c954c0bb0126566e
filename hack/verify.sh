#!/usr/bin/env bash
# Quick checks before the tests: formatting, vet, and that the versions the
# root module builds against agree with hack/versions.env.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=versions.env
source hack/versions.env
fail=0

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
  echo "[verify] gofmt would change (run gofmt -w):"$'\n'"$unformatted" >&2
  fail=1
fi

go vet ./... || fail=1

# pin MODULE WANT: the root module must build against the pinned version.
pin() {
  local got
  got=$(go list -m -f '{{.Version}}' "$1")
  if [[ $got != "$2" ]]; then
    echo "[verify] go.mod has $1 $got but hack/versions.env pins $2;" \
      "run: go get $1@$2" >&2
    fail=1
  fi
}
pin github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION"
pin k8s.io/api "$KUBE_STAGING_VERSION"
pin k8s.io/client-go "$KUBE_STAGING_VERSION"

exit $fail
