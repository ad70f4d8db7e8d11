# Everything a user or CI needs, with nothing installed but Go: every other
# tool is fetched through the Go module proxy by `go run pkg@version`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
RESULTS     := results

# make bench: short runs, several counts, medians; three to five minutes on 2
# cores (200 s measured on 2026-12-06 for 24 suites, with the build cached;
# 313 s under heavy load).
BENCH       ?= .
BENCHTIME   ?= 80ms
COUNT       ?= 3
CPU         ?= 1,2
FUZZTIME    ?= 10s

# How many top-level benchmarks each run has, for the progress line.
SUITES      := $(shell grep -h '^func Benchmark' *_test.go | wc -l)
PEER_SUITES := $(shell grep -h '^func Benchmark' bench/peers/*_test.go | wc -l)

.PHONY: all test bench bench-full bench-peers bench-peers-full bench-nats bench-redis bench-chart bench-chart-full bench-summary lint fuzz cover clean viz viz-screenshot

all: test

# Every module of the repository: the root and each nested go.mod (service
# clients, the browser test, the peers). `make test` and `make lint` walk them
# all, each in its own directory, since ./... stops at a nested go.mod.
MODULES     := . $(sort $(patsubst ./%/go.mod,%,$(filter-out ./go.mod,$(shell find . -name go.mod -not -path "./$(RESULTS)/*"))))

## test: vet, then every test with the race detector and goroutine-leak checks,
## in every module.
test:
	@for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 8m ./...) || exit 1; \
	done

## bench: the comparison suites (conc vs naive mutex vs naive channel) as one table.
bench:
	@mkdir -p $(RESULTS)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -cpu $(CPU) -count $(COUNT) -benchtime $(BENCHTIME) -timeout 0 . \
		| $(GO) run ./internal/benchreport -title "conc vs naive" -suites $(SUITES) -out $(RESULTS)/bench

## bench-full: -count=10 and benchstat (one table per suite, implementations as
## columns), for the figures quoted in notes and issues. BENCHTIME_FULL keeps a
## full run of every suite near a quarter of an hour on 2 cores.
BENCHTIME_FULL ?= 200ms
bench-full:
	@mkdir -p $(RESULTS)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -cpu $(CPU) -count 10 -benchtime $(BENCHTIME_FULL) -timeout 0 . \
		| $(GO) run ./internal/benchreport -title "conc vs naive (count=10)" -suites $(SUITES) -out $(RESULTS)/full
	$(call benchstat,$(RESULTS)/full)

## bench-peers-full: the same for bench/peers.
bench-peers-full:
	@mkdir -p $(RESULTS)
	cd bench/peers && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -cpu $(CPU) -count 10 -benchtime $(BENCHTIME_FULL) -timeout 0 . \
		| $(GO) run ../../internal/benchreport -title "conc vs peers (count=10)" -peers -suites $(PEER_SUITES) -out ../../$(RESULTS)/peers-full
	$(call benchstat,$(RESULTS)/peers-full)

# benchstat keys columns on name=value parts, so the last part of each name
# (the implementation) is rewritten as impl=<name> before it is read; then one
# table per suite, implementations side by side.
define benchstat
	sed -E 's#^(Benchmark[^ \t]*/)([^/ \t]+)([ \t])#\1impl=\2\3#' $(1).txt > $(1).impl.txt
	for s in $$(grep -oE '^Benchmark[A-Za-z0-9]+' $(1).txt | sort -u | sed 's/^Benchmark//'); do \
		$(GO) run $(BENCHSTAT) -filter ".name:$$s" -col /impl $(1).impl.txt; \
	done | tee $(1).benchstat.txt
endef

## bench-peers: conc against the peer libraries (separate module bench/peers).
bench-peers:
	@mkdir -p $(RESULTS)
	cd bench/peers && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -cpu $(CPU) -count $(COUNT) -benchtime $(BENCHTIME) -timeout 0 . \
		| $(GO) run ../../internal/benchreport -title "conc vs peers" -peers -suites $(PEER_SUITES) -out ../../$(RESULTS)/peers

## bench-nats: natsbroker against watermill-nats v2 and plain nats.go with
## hand-written JSON (the floor), end to end on an embedded nats-server: one
## publisher, ten subscribers, 128-byte events (module natsbroker/bench);
## COUNT_NATS rounds, each running every implementation once (interleaved, so
## that the machine's drift over a run does not favour whichever goes first),
## then benchstat.
COUNT_NATS ?= 10
bench-nats:
	@mkdir -p $(RESULTS)
	cd natsbroker/bench && $(GO) test -c -o bench.test . && for i in $$(seq $(COUNT_NATS)); do \
		./bench.test -test.run '^$$' -test.bench 'NATS' -test.benchmem -test.cpu 2 -test.count 1 -test.benchtime $(BENCHTIME_FULL); \
	done | tee ../../$(RESULTS)/nats.txt; rm -f bench.test
	$(call benchstat,$(RESULTS)/nats)

## bench-chart: run the short suites and keep their charts: the detailed
## docs/bench.svg (docs/peers.svg too when bench-peers has run) and the summary
## docs/bench-summary.svg. A quick look; bench-chart-full draws them from the
## count=10 runs.
bench-chart: bench
	@mkdir -p docs
	cp $(RESULTS)/bench.svg docs/bench.svg
	if [ -f $(RESULTS)/peers.svg ]; then cp $(RESULTS)/peers.svg docs/peers.svg; fi
	$(MAKE) --no-print-directory bench-summary

## bench-summary: redraw docs/bench-summary.svg from the last runs of make bench
## and make bench-peers (results/bench.txt, results/peers.txt), without
## running anything: one row per primitive, conc's speed-up over the fastest
## naive version and over the fastest peer.
SUMMARY_NAIVE ?= $(RESULTS)/bench.txt
SUMMARY_PEERS ?= $(RESULTS)/peers.txt
bench-summary:
	@mkdir -p docs
	$(GO) run ./internal/benchreport -summary docs/bench-summary.svg -title "conc: speed-up per primitive" \
		-naive $(SUMMARY_NAIVE) -peerfile $(SUMMARY_PEERS)

## bench-chart-full: the charts the README shows, drawn from the same
## count=10 runs as its tables: bench-full and bench-peers-full, then both
## charts copied to docs/ and the summary drawn from them.
bench-chart-full: bench-full bench-peers-full
	@mkdir -p docs
	cp $(RESULTS)/full.svg docs/bench.svg
	cp $(RESULTS)/peers-full.svg docs/peers.svg
	$(MAKE) --no-print-directory bench-summary SUMMARY_NAIVE=$(RESULTS)/full.txt SUMMARY_PEERS=$(RESULTS)/peers-full.txt

## bench-redis: redislimit against redis_rate v10, ulule/limiter v3 and
## throttled v2 (redislimit/bench), 64 callers on one local redis-server that
## the benchmark starts itself; count=10 at GOMAXPROCS=2, then benchstat.
bench-redis:
	@mkdir -p $(RESULTS)
	cd redislimit/bench && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -cpu 2 -count 10 -benchtime $(BENCHTIME_FULL) . \
		| tee ../../$(RESULTS)/redis.txt
	$(call benchstat,$(RESULTS)/redis)

## lint: go vet and staticcheck.
lint:
	@for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...) || exit 1; \
	done

## fuzz: each fuzz target for FUZZTIME.
fuzz:
	@for t in $$($(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
		echo "== $$t"; \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) . ; \
	done

## cover: race-free test run with a coverage summary.
cover:
	@mkdir -p $(RESULTS)
	$(GO) test -count=1 -coverprofile=$(RESULTS)/cover.out .
	$(GO) tool cover -func=$(RESULTS)/cover.out | tail -1

## viz: run the demo pipeline and serve its monitor page; prints the URL.
VIZ_ADDR    ?= 127.0.0.1:6061
viz:
	$(GO) run ./examples/vizdemo -addr $(VIZ_ADDR)

## viz-screenshot: run the browser test against the demo and keep its
## screenshot as docs/viz.png (needs Chromium).
viz-screenshot:
	cd viz/browsertest && $(GO) test -count=1 -run TestPage . -update

clean:
	rm -rf $(RESULTS)
