# Pleura's developer entry points. `make help` lists them.
#
# Every upstream component is pinned in hack/versions.env and built from the
# Go module proxy by hack/tools.sh into $(PLEURA_CACHE); nothing else is
# downloaded, and nothing built is committed.

include hack/versions.env

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
export GOWORK := off
export GOFLAGS := -buildvcs=false

PLEURA_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/pleura
export PLEURA_CACHE
TOOLS := hack/tools.sh
# The go test timeout for the whole suite; integration packages start real
# components and take minutes on a 2-core machine.
TEST_TIMEOUT ?= 30m
# Extra flags for go test, e.g. TEST_FLAGS='-run TestStack -v'.
TEST_FLAGS ?=

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Main job

.PHONY: demo
demo: ## The main job: local stack + operator + samples, then a table of tenant conditions.
	@hack/demo.sh up
	@hack/demo.sh operator

.PHONY: demo-up
demo-up: ## Start the local stack in the background and print its exports.
	@hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop the operator, the local stack and every process they started.
	@hack/demo.sh down

.PHONY: demo-status
demo-status: ## Say whether the local stack runs.
	@hack/demo.sh status

##@ Test

.PHONY: test
test: deps tools verify ## Run every test, starting the real components they need.
	go test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...

.PHONY: bench
bench: deps tools ## Run the benchmarks (figures, not pass/fail).
	go test -count=1 -run '^$$' -bench . -benchmem -timeout 60m ./...

.PHONY: verify
verify: ## Check formatting, vet and version pins.
	@hack/verify.sh

##@ Build

.PHONY: build
build: ## Build every binary into bin/.
	go build -o bin/ ./cmd/...

.PHONY: tools
tools: ## Build the pinned upstream components (cached; cold: 35-60 minutes).
	@$(TOOLS) build

.PHONY: tools-update
tools-update: ## Rewrite hack/tools/*/go.mod from hack/versions.env.
	hack/tools/update-modules.sh

.PHONY: deps
deps: ## Install the Debian packages the tests use (PostgreSQL, Chromium), if missing.
	@hack/deps.sh

##@ Portal

PORTAL_STATE ?= .state/demo/portal

.PHONY: portal
portal: ## Build the portal binary into bin/portal.
	go build -o bin/portal ./cmd/portal

.PHONY: test-portal
test-portal: deps tools ## Run only the portal's tests (real PostgreSQL, Vault and SMTP).
	go test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./portal/... ./cmd/portal/...

.PHONY: run-portal
run-portal: portal ## Serve the portal against the local stack (make demo-up first).
	@hack/run-portal.sh $(PORTAL_STATE)

##@ Operator

CONTROLLER_GEN = $(shell $(TOOLS) path controller-gen)

.PHONY: manifests
manifests: ## Generate CRDs (config/crd/bases) and RBAC (config/rbac) with controller-gen.
	@$(TOOLS) build controller-gen
	$(CONTROLLER_GEN) rbac:roleName=pleura-operator crd:allowDangerousTypes=false \
	  paths=./api/... paths=./controllers/... \
	  output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: ## Generate deep-copy code for api/v1alpha1 with controller-gen.
	@$(TOOLS) build controller-gen
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manager
manager: ## Build the operator binary into bin/manager.
	go build -o bin/manager ./cmd/manager
