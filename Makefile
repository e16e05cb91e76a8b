# Switchyard's make targets. `make help` lists them; each has a one-line help text.
SHELL := /bin/bash
GO ?= go
BIN := bin
BINARIES := omaha-server syctl update-engine updatectl
STATICCHECK_VERSION := v0.8.2
# Debian packages the tests use as real components and independent judges.
TEST_DEBS := cgpt gdisk postgresql etcd-server xz-utils curl chromium libxml2-utils e2fsprogs openssl dbus systemd
# And those the delta benchmark compares with (make bench).
BENCH_DEBS := xdelta3 zstd casync
# And those the VM scenarios need.
E2E_DEBS := qemu-system-x86 e2fsprogs busybox-static cpio
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
export PATH := $(PATH):$(shell $(GO) env GOPATH)/bin

# nfpm builds the .deb and .rpm packages; run at a pinned version, outside go.mod.
NFPM := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
PACKAGES := build/packages
# packaging's test: systemd-analyze verifies the installed units, rpm reads the .rpm packages.
TEST_DEBS += systemd rpm
# packaging's alert rules: promtool (Debian's prometheus package) checks and unit-tests them.
TEST_DEBS += prometheus

.PHONY: help build packages check fmt vet staticcheck race test unit e2e e2e-deps bench demo deps tools clean

help: ## print the targets and what they do
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

build: ## build every binary into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))

packages: build ## .deb and .rpm of the host side (update-engine, updatectl) and the server side (omaha-server, syctl) into build/packages/ (VERSION= overrides git describe)
	@mkdir -p $(PACKAGES)
	rm -f $(PACKAGES)/*.deb $(PACKAGES)/*.rpm $(PACKAGES)/*.yaml
	@# The D-Bus policy is packaged once it exists: its lines are marked "# optional".
	set -e; version=$${VERSION:-$$(./packaging/version.sh)}; arch=$$($(GO) env GOARCH); \
	for side in host server; do \
		if [ -f packaging/dbus/com.coreos.update1.conf ]; then cp packaging/nfpm/$$side.yaml $(PACKAGES)/$$side.yaml; \
		else sed '/# optional$$/d' packaging/nfpm/$$side.yaml > $(PACKAGES)/$$side.yaml; fi; \
		for format in deb rpm; do \
			VERSION=$$version GOARCH=$$arch $(NFPM) package -f $(PACKAGES)/$$side.yaml -p $$format -t $(PACKAGES)/; \
		done; \
	done

deps: ## install the Debian packages the tests need (when missing)
	@missing=""; for p in $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# The tuf-js judge needs node and npm; the machines ship Node 20, Debian's packages stand in otherwise.
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }

tools: ## install staticcheck
	@command -v staticcheck >/dev/null && staticcheck -version | grep -q $(STATICCHECK_VERSION:v%=%) || \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fmt: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...

staticcheck: tools ## staticcheck
	staticcheck ./...

race: ## race-enabled fast tests (no VM scenarios, short mode)
	$(GO) test -race -short -timeout 20m ./...

check: fmt vet staticcheck race ## format, vet, staticcheck, race tests, dependency direction

test: deps ## install what the tests need, then run the whole suite (unit tests, then the VM scenarios)
	$(MAKE) unit
	$(MAKE) e2e

unit: deps packages ## every test but the VM scenarios (packaging's test installs the packages)
	$(GO) test -timeout 40m $$($(GO) list ./... | grep -v /testimages)

e2e-deps: deps
	@missing=""; for p in $(E2E_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi; \
	apt-cache show linux-image-amd64 >/dev/null 2>&1 || $(SUDO) apt-get update -qq

e2e: e2e-deps ## VM scenarios: boot the A/B test images in QEMU (fetches a Debian kernel once, cached in build/)
	$(GO) test -count=1 -timeout 30m ./testimages/...

bench: deps build ## benchmarks, each reported against a baseline from the same run
	@missing=""; for p in $(BENCH_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi
	./scripts/deltabench.sh build/deltabench
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

demo: deps build ## the main job on embedded defaults: a disk image updated end to end
	@./scripts/demo.sh

clean: ## remove build output
	rm -rf $(BIN)
