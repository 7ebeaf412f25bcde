# sitewatch — build, test, lint. `make test` is what CI runs.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 15m

# staticcheck is pinned; `make tools` (run by .ci/run) installs this version.
STATICCHECK_VERSION := v0.8.2
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(GOBIN)/staticcheck

# make release: static binaries of the three commands for every platform
# below, with SHA256SUMS, into $(DIST). PLATFORMS can be narrowed
# (make release PLATFORMS=linux/amd64), as the release test does.
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
COMMANDS  := emitter processor sitewatch

.PHONY: all build test test-short lint staticcheck tools fmt vet bench bench-more fuzz run release clean

all: lint test build

build:
	$(GO) build -o bin/ ./cmd/...

test:
	$(GO) test $(TESTFLAGS) $(PKGS)
	# The fleet proof (6 emitters, 2 processors) skips itself under -race,
	# whose children are too slow for its load on two cores.
	$(GO) test -count=1 -timeout 10m -run 'TestEmitterFleetRequestsEachSlotOnce$$' ./test/faults/

# Fast feedback: unit tests only, no long end-to-end runs.
test-short:
	$(GO) test -short -count=1 $(PKGS)

lint: vet staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi

staticcheck:
	@$(STATICCHECK) -version 2>/dev/null | grep -q '($(STATICCHECK_VERSION:v%=%))' || \
		{ echo "staticcheck $(STATICCHECK_VERSION) is not installed at $(STATICCHECK); run: make tools"; exit 1; }
	$(STATICCHECK) $(PKGS)

tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks print figures; they never fail on speed. The emitter and processor programs
# measure the emitter and the sink against baselines of the same run
# (README, "Performance"); bench-more adds the in-process figures.
bench:
	$(GO) run ./bench/emitter
	$(GO) run ./bench/processor
	$(GO) run ./bench/notify
	$(GO) run ./bench/report
	$(GO) run ./bench/web

bench-more:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./checker/ ./processors/windows/... ./sinks/...
	$(GO) run ./bench/processor -mode inprocess

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeResult -fuzztime 30s ./codecs/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./config/

run:
	$(GO) run ./cmd/sitewatch -sites examples/sites.yaml

# -buildvcs=auto overrides a GOFLAGS=-buildvcs=false so that -version
# reports the commit; CGO_ENABLED=0 makes every binary static.
release:
	@test -n "$(DIST)" || { echo "DIST is empty"; exit 1; }
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		for c in $(COMMANDS); do \
			echo "build $(DIST)/$$c-$$os-$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=auto -ldflags='-s -w' \
				-o $(DIST)/$$c-$$os-$$arch ./cmd/$$c; \
		done; \
	done
	cd $(DIST) && files=$$(ls | grep -v SHA256SUMS) && \
		if command -v sha256sum >/dev/null; then sha256sum $$files; else shasum -a 256 $$files; fi > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

clean:
	rm -rf bin/ $(if $(DIST),$(DIST)/)
