#!/usr/bin/env bash
# Serves the portal against the local stack started by `make demo-up`:
# creates (once) a transit key, a database owned by an unprivileged role, a
# tenant file and a self-signed TLS pair under STATE, then runs
# `bin/portal serve` in the foreground on https://localhost:8443 (TLS 1.3
# only) with metrics on 127.0.0.1:9090.
#
# Mint the first admin's enrolment code from another shell with
#   hack/run-portal.sh STATE admin-code -email you@example.org
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo=${PLEURA_DEMO_DIR:-$root/.state/demo}
# Under the demo directory, so a new `make demo-up` (which starts an empty
# PostgreSQL and Vault) also starts the portal from empty state.
state=${1:-$demo/portal}
shift || true
log() { printf '[portal] %s\n' "$*" >&2; }

[[ -f $demo/env ]] || { log "no local stack: run 'make demo-up' first"; exit 1; }
# shellcheck disable=SC1091
source "$demo/env"
mkdir -p "$state"
chmod 700 "$state"

# Transit key for the demo tenant (idempotent in Vault).
curl -fsS -H "X-Vault-Token: $VAULT_TOKEN" -X POST -d '{"type":"aes256-gcm96"}' \
  "$VAULT_ADDR/v1/transit/keys/demo-portal-data" >/dev/null

# Database and role, once.
if [[ ! -f $state/dsn ]]; then
  pw=$(openssl rand -hex 16)
  psql -q "$PLEURA_POSTGRES_DSN" -c "CREATE ROLE demo_portal LOGIN PASSWORD '$pw'" \
    -c "CREATE DATABASE demo_portal OWNER demo_portal"
  hostport=$(sed -E 's#^postgres://[^@]+@([^/]+)/.*#\1#' <<<"$PLEURA_POSTGRES_DSN")
  dsn="postgres://demo_portal:$pw@$hostport/demo_portal?sslmode=disable"
  (umask 077; echo "$dsn" >"$state/dsn")
fi

# Self-signed TLS pair for localhost, once.
if [[ ! -f $state/tls.crt ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$state/tls.key" -out "$state/tls.crt" 2>/dev/null
fi

cat >"$state/tenant.json" <<JSON
{
  "schemaVersion": "tenantconfig.pleura.dev/v1",
  "tenant": {"name": "demo", "displayName": "Demo Lung Clinic",
             "namespace": "clinic-demo", "hostname": "localhost:8443"},
  "vault": {"address": "$VAULT_ADDR", "authMount": "kubernetes", "role": "portal",
            "transitMount": "transit", "dataKey": "demo-portal-data",
            "signingKey": "demo-portal-signing"},
  "policy": {
    "name": "demo", "generation": 1,
    "roles": [
      {"name": "patient", "mfa": {"factors": ["totp", "webauthn"]},
       "session": {"idle": "30m", "absolute": "12h"}},
      {"name": "admin", "grants": [
         {"record": "account", "actions": ["read", "write"]},
         {"record": "demographics", "actions": ["read", "write"]}],
       "mfa": {"required": true, "factors": ["totp", "webauthn"]},
       "session": {"idle": "15m", "absolute": "10h"}}
    ],
    "stepUp": {"actions": ["changeContact", "changeNotifications", "changeAuthenticators"],
               "window": "5m"},
    "breakGlass": {"maxDuration": "1h"},
    "proxies": {"allowed": false, "maxGrant": "720h", "documentationRequired": true},
    "entitlementReviewInterval": "2160h"
  }
}
JSON

export PLEURA_TENANT_FILE=$state/tenant.json
export PLEURA_DATABASE_DSN=$(cat "$state/dsn")
export PLEURA_TLS_CERT=$state/tls.crt PLEURA_TLS_KEY=$state/tls.key
export PLEURA_VAULT_AUTH=token PLEURA_VAULT_TOKEN=$VAULT_TOKEN
export PLEURA_LISTEN=${PLEURA_LISTEN:-127.0.0.1:8443}
export PLEURA_OPS_LISTEN=${PLEURA_OPS_LISTEN:-127.0.0.1:9090}
export PLEURA_PUBLIC_URL=${PLEURA_PUBLIC_URL:-https://localhost:8443}
unset VAULT_TOKEN PLEURA_POSTGRES_DSN
[[ -x $root/bin/portal ]] || (cd "$root" && go build -o bin/portal ./cmd/portal)
log "serving https://localhost:8443 (metrics on http://$PLEURA_OPS_LISTEN/metrics)"
exec "$root/bin/portal" "${@:-serve}"
