package postgres_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
)

// Benchmark data: benchContracts contracts with benchRatesPer rates each,
// plus one contract with benchBigRates rates (2.1M rates in total).
const (
	benchContracts = 2000
	benchRatesPer  = 1000
	benchBigRates  = 100_000

	// envBench enables TestLoadLarge; envBenchChild is how it hands the
	// database to its child process.
	envBench      = "REPRICER_PG_BENCH"
	envBenchChild = "REPRICER_PG_BENCH_CHILD_URL"
)

// seedLarge fills db with the benchmark schedule: contracts through Import,
// rates through COPY. It returns the number of rates.
func seedLarge(tb testing.TB, db *sqlx.DB) int {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	s := genSchedule(benchContracts+1, 0)
	mustImport(tb, db, s)
	total := benchContracts*benchRatesPer + benchBigRates
	err := postgres.SeedRates(ctx, db, total, func(i int, r *contracts.Rate) {
		ci, j := i/benchRatesPer, i%benchRatesPer
		if ci >= benchContracts {
			ci, j = benchContracts, i-benchContracts*benchRatesPer
		}
		*r = genRate(&s.Contracts[ci], ci, j)
	})
	if err != nil {
		tb.Fatalf("seed: %v", err)
	}
	tb.Logf("seeded %d contracts and %d rates in %s", len(s.Contracts), total, time.Since(start).Round(time.Millisecond))
	return total
}

func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}

// BenchmarkLoad loads 2.1M rates per iteration. Run with
//
//	scripts/with-postgres.sh go test -run '^$' -bench BenchmarkLoad -benchtime 3x ./connectors/postgres/
func BenchmarkLoad(b *testing.B) {
	db := pgtest.DB(b)
	total := seedLarge(b, db)
	ctx := context.Background()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var heap uint64
	for b.Loop() {
		s, err := postgres.Load(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Rates) != total {
			b.Fatalf("loaded %d rates, want %d", len(s.Rates), total)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heap = max(heap, m.HeapInuse)
		runtime.KeepAlive(s)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rates/s")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	b.ReportMetric(maxRSSMB(), "maxrss-MB")
}

// loadResult is what the child process of TestLoadLarge reports.
type loadResult struct {
	Rates     int     `json:"rates"`
	Contracts int     `json:"contracts"`
	Seconds   float64 `json:"seconds"`
	HeapMB    float64 `json:"heap_mb"`
	MaxRSSMB  float64 `json:"maxrss_mb"`
}

// TestLoadLarge seeds the benchmark data and loads it in a child process,
// so that the child's peak RSS is the load's alone. It runs only with
// REPRICER_PG_BENCH=1:
//
//	REPRICER_PG_BENCH=1 scripts/with-postgres.sh go test -run TestLoadLarge -v ./connectors/postgres/
func TestLoadLarge(t *testing.T) {
	if os.Getenv(envBench) != "1" {
		t.Skip("set " + envBench + "=1 to load 2.1M rates")
	}
	childURL := pgtest.NewDatabase(t)
	db := pgtest.Open(t, childURL)
	if err := postgres.Migrate(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
	total := seedLarge(t, db)
	args := []string{"-test.run=^TestLoadLargeChild$", "-test.v"}
	if prof := os.Getenv("REPRICER_PG_BENCH_CPUPROFILE"); prof != "" {
		args = append(args, "-test.cpuprofile="+prof)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envBenchChild+"="+childURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var res loadResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	found := false
	for sc.Scan() {
		if line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "RESULT "); ok {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("child printed no result:\n%s", out)
	}
	t.Logf("Load of %d contracts / %d rates: %.2fs (%.0f rates/s), heap in use %.0f MB, peak RSS %.0f MB",
		res.Contracts, res.Rates, res.Seconds, float64(res.Rates)/res.Seconds, res.HeapMB, res.MaxRSSMB)
	if res.Rates != total {
		t.Errorf("child loaded %d rates, want %d", res.Rates, total)
	}
	if res.Seconds > 30 {
		t.Errorf("Load took %.1fs; the target is well under 30s", res.Seconds)
	}
}

// TestLoadLargeChild is the child half of TestLoadLarge.
func TestLoadLargeChild(t *testing.T) {
	url := os.Getenv(envBenchChild)
	if url == "" {
		t.Skip("run by TestLoadLarge")
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	s, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res := loadResult{Rates: len(s.Rates), Contracts: len(s.Contracts), Seconds: elapsed.Seconds(),
		HeapMB: float64(m.HeapInuse) / (1 << 20), MaxRSSMB: maxRSSMB()}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("RESULT " + string(b))
	runtime.KeepAlive(s)
}
