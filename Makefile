# storepack — see README.md.
GO          ?= go
DOCKER      ?= docker
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE       ?= storepack:latest
PLUGIN_DIR  ?= $(HOME)/.docker/cli-plugins
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
LDFLAGS     := -s -w -X github.com/storepack/storepack/internal/version.Version=$(VERSION)
GOBUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: all build install plugin standalone frontend-image demo test unit-test fuzz e2e-test bench bench-layering bench-store bench-build bench-scale fmt clean

all: build

build: bin/docker-storepack bin/storepack-frontend

bin/docker-storepack: FORCE
	$(GOBUILD) -o $@ ./cmd/docker-storepack

bin/storepack-frontend: FORCE
	$(GOBUILD) -o $@ ./cmd/storepack-frontend

# The frontend image, built from the static binary alone (offline, no base image).
frontend-image: bin/storepack-frontend
	DOCKER_BUILDKIT=0 $(DOCKER) build -q -f Dockerfile.frontend -t $(IMAGE) bin

plugin: bin/docker-storepack
	install -D -m 0755 bin/docker-storepack $(PLUGIN_DIR)/docker-storepack

# The same binary as the command `storepack`, for machines without a docker CLI.
standalone: bin/docker-storepack
	install -D -m 0755 bin/docker-storepack $(BINDIR)/storepack

# The plugin into ~/.docker/cli-plugins, `storepack` into $(BINDIR), the
# frontend image into the running engine.
install: plugin standalone frontend-image

# Starts Debian's Docker Engine if none answers, installs storepack, builds
# the built-in example with `docker build` and runs it.
demo:
	hack/demo.sh

# Everything: unit tests, then end-to-end tests against real engines that
# hack/testbed.sh installs and starts under a temporary directory.
test: unit-test fuzz e2e-test

unit-test:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/
	$(GO) vet -tags nix ./store/ ./store/storedb/
	# The plugin is a docker CLI plugin on macOS and Windows too.
	GOOS=darwin GOARCH=arm64 $(GO) vet ./cmd/docker-storepack/ ./cliplugin/...
	GOOS=windows GOARCH=amd64 $(GO) vet ./cmd/docker-storepack/ ./cliplugin/...
	$(GO) test ./...

# Every fuzz target for a short time beyond its seed corpus (FUZZTIME).
fuzz:
	GO=$(GO) hack/fuzz.sh

# The store's formats and scanner against real Nix (installed by the test
# bed), then the engines.
e2e-test:
	hack/testbed.sh install
	$(GO) test -tags nix -count=1 -timeout 20m ./store/ ./store/storedb/
	$(GO) test -tags e2e -count=1 -timeout 60m -v ./e2e/...

# Measurements, never assertions: the layer-reuse table of every strategy
# over the release-history corpus, the store benchmarks and the image
# builds, each beside its floor measured in the same run (sha256 over the
# same bytes).
bench: bench-layering bench-store bench-build bench-scale

bench-layering:
	$(GO) run ./layering/internal/reusebench

bench-store:
	$(GO) test -run '^$$' -bench . -benchmem ./store/ ./layering/

# Image builds of a ~500 MiB, ~280-path closure laid out from /usr: the
# floor, nixpkgs' streaming approach, a Dockerfile and storepack on Docker
# 20.10 and buildkitd, cold and warm; plain docker load of the plugin's
# image, the plugin on a fresh builder with its host cache kept and on a
# fresh runner pushing over the previous image; bytes uploaded per push;
# in a test bed of its own (root).
# BENCHBUILD_FLAGS=-quick exercises it on a small closure.
bench-build:
	$(GO) run ./hack/benchbuild $(BENCHBUILD_FLAGS)

# Scale: a generated closure of 100,000 store paths and 10 GiB (sparse
# files; laid out and hashed once, kept in ~/.cache/storepack/bench),
# planned and built through the plugin and the frontend beside a floor (a
# stat walk of the store and a read of its GRAPH): times, and the peak RSS
# of each process. BENCHSCALE_FLAGS='-synthetic-paths 5000
# -synthetic-gib 1 -runs 1' exercises it on a small closure.
bench-scale:
	$(GO) run ./hack/benchbuild -synthetic $(BENCHSCALE_FLAGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

FORCE:
