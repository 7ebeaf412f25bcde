# sitewatch — build, test, lint. `make test` is what CI runs.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build test test-short lint fmt vet bench fuzz run clean

all: lint test build

build:
	$(GO) build -o bin/ ./cmd/...

test:
	$(GO) test $(TESTFLAGS) $(PKGS)

# Fast feedback: unit tests only, no long end-to-end runs.
test-short:
	$(GO) test -short -count=1 $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks print figures; they never fail on speed.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./checker/ ./processors/windows/... ./sinks/...
	$(GO) run ./bench/emitter
	$(GO) run ./bench/processor
	$(GO) run ./bench/notify

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeResult -fuzztime 30s ./codecs/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./config/

run:
	$(GO) run ./cmd/sitewatch -sites examples/sites.yaml

clean:
	rm -rf bin/
