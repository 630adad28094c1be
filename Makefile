# repricer — common tasks. `make help` lists them.
GO      ?= go
BIN     := bin/repricer
SAMPLE  := testdata/sample
OUT     ?= out/sample

.PHONY: help demo build test test-short test-race test-beam vet fuzz bench bench-core clean

help:
	@echo "make demo        reprice the bundled sample claims into $(OUT)/"
	@echo "make test        run every test (starts a throwaway PostgreSQL when DATABASE_URL is unset)"
	@echo "make test-short  unit tests only, no database"
	@echo "make test-race   the concurrent packages under the race detector"
	@echo "make test-beam   the Apache Beam pipeline (beam/, its own module) on Beam's Prism runner"
	@echo "make bench       micro-benchmarks plus the end-to-end benchmark against DuckDB (bench/run.sh)"
	@echo "make bench-core  micro-benchmarks only (go test -bench)"
	@echo "make fuzz        run every fuzz target for FUZZTIME (default 10s) each"

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/repricer

demo: build
	$(BIN) reprice --contracts $(SAMPLE)/contracts --claims $(SAMPLE)/claims.csv --out $(OUT)
	@echo "open $(OUT)/priced.csv, $(OUT)/exceptions.csv and $(OUT)/summary.json"

# The Postgres-backed tests need a server: with DATABASE_URL set they use it,
# otherwise scripts/with-postgres.sh starts a throwaway cluster from the
# installed server binaries and removes it afterwards.
test: vet
	@if [ -n "$$DATABASE_URL" ]; then $(GO) test ./...; else scripts/with-postgres.sh $(GO) test ./...; fi

test-short:
	$(GO) test -short ./...

# The concurrent parts under the race detector (short mode: no database).
test-race:
	$(GO) test -race -short ./pipeline/ ./rates/ ./connectors/claimcsv/ ./connectors/claimparquet/ ./nightly/ ./adjust/ ./internal/... .

# The Beam pipeline is its own module (beam/), so that the repricer binary
# keeps its small dependency set; its tests run it on Prism, in-process,
# against the repricer binary on the same inputs.
test-beam:
	cd beam && $(GO) vet ./... && $(GO) test ./...

vet:
	$(GO) vet ./...

FUZZTIME ?= 10s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

bench-core:
	$(GO) test -run '^$$' -bench . -benchmem ./rates/ ./connectors/claimcsv/ ./connectors/claimparquet/

bench: bench-core
	bash bench/run.sh

clean:
	rm -rf bin out
