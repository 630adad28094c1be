package load_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/rates"
)

// copyBundle copies the sample bundle into a new folder.
func copyBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{bundle.ContractsFile, bundle.RatesFile, bundle.KindsFile} {
		b, err := os.ReadFile(filepath.Join(sampleContracts, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// cached loads src through c and checks the cache did what was expected.
func cached(t *testing.T, c *load.Cache, src string, opts rates.Options, want load.CacheStatus) *rates.Engine {
	t.Helper()
	e, desc, got, err := c.Engine(context.Background(), src, load.Options{Rates: opts})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != want {
		t.Fatalf("cache status %q, want %q", got.Status, want)
	}
	if !strings.HasSuffix(desc, src) {
		t.Errorf("description %q does not name %s", desc, src)
	}
	return e
}

func TestCacheFolder(t *testing.T) {
	ctx := context.Background()
	lines := readClaims(t, sampleClaims)
	src := copyBundle(t)
	c := &load.Cache{Dir: t.TempDir()}
	sys, err := rates.ParseDefaultRate("Percentage:40")
	if err != nil {
		t.Fatal(err)
	}
	opts := rates.Options{SystemDefault: &sys}
	fresh := func() []string {
		t.Helper()
		e, _, err := load.Engine(ctx, src, load.Options{Rates: opts})
		if err != nil {
			t.Fatal(err)
		}
		return priceAll(e, lines)
	}
	want := fresh()

	t.Run("built, then used", func(t *testing.T) {
		if got := priceAll(cached(t, c, src, opts, load.CacheBuilt), lines); !slices.Equal(got, want) {
			t.Fatal("the built image prices differently from its source")
		}
		e := cached(t, c, src, opts, load.CacheHit)
		if got := priceAll(e, lines); !slices.Equal(got, want) {
			t.Fatal("the cached image prices differently from its source")
		}
		if e.Schedule().Fingerprint == "" || len(e.Schedule().Issues) == 0 {
			t.Error("the image lost the schedule's fingerprint or issues")
		}
		// An engine that explains opens from the image too.
		ex := cached(t, c, src, rates.Options{SystemDefault: &sys, Explain: true}, load.CacheHit)
		if x := ex.ExplainLine(lines[0].Line); x.Rate == nil && x.Contract == nil {
			t.Error("no explanation from the image")
		}
	})

	t.Run("a changed source is never priced from the old image", func(t *testing.T) {
		ratesFile := filepath.Join(src, bundle.RatesFile)
		fi, err := os.Stat(ratesFile)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(ratesFile)
		if err != nil {
			t.Fatal(err)
		}
		// The same size and modification time: only the contents tell.
		changed := strings.Replace(string(b), ",Amount,1850.00,", ",Amount,1851.00,", 1)
		if changed == string(b) {
			t.Fatal("the sample has no 1850.00 amount rate to change")
		}
		if err := os.WriteFile(ratesFile, []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(ratesFile, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		want := fresh()
		if got := priceAll(cached(t, c, src, opts, load.CacheBuilt), lines); !slices.Equal(got, want) {
			t.Fatal("after a change the cache priced with the old schedule")
		}
		cached(t, c, src, opts, load.CacheHit)
		// Removing an optional file is a change too.
		if err := os.Remove(filepath.Join(src, bundle.KindsFile)); err != nil {
			t.Fatal(err)
		}
		cached(t, c, src, opts, load.CacheBuilt)
	})

	t.Run("a damaged image is rebuilt", func(t *testing.T) {
		want := fresh()
		imgs, err := filepath.Glob(filepath.Join(c.Dir, "*.img"))
		if err != nil || len(imgs) != 1 {
			t.Fatalf("images %v, %v: want one per source", imgs, err)
		}
		b, err := os.ReadFile(imgs[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, damage := range []func([]byte) []byte{
			func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
			func(b []byte) []byte { return b[:len(b)-100] },
			func(b []byte) []byte { return nil },
		} {
			if err := os.WriteFile(imgs[0], damage(slices.Clone(b)), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := priceAll(cached(t, c, src, opts, load.CacheBuilt), lines); !slices.Equal(got, want) {
				t.Fatal("a rebuilt image prices differently")
			}
		}
	})
}

func TestCacheDatabase(t *testing.T) {
	ctx := context.Background()
	url := sampleDatabase(t)
	db := pgtest.Open(t, url)
	lines := readClaims(t, sampleClaims)
	c := &load.Cache{Dir: t.TempDir()}
	fresh := func() []string {
		t.Helper()
		e, _, err := load.Engine(ctx, url, load.Options{Postgres: postgres.Options{StatementTimeout: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		return priceAll(e, lines)
	}
	want := fresh()
	if got := priceAll(cached(t, c, url, rates.Options{}, load.CacheBuilt), lines); !slices.Equal(got, want) {
		t.Fatal("the built image prices differently from the database")
	}
	if got := priceAll(cached(t, c, url, rates.Options{}, load.CacheHit), lines); !slices.Equal(got, want) {
		t.Fatal("the cached image prices differently from the database")
	}

	// Every kind of write to the schedule's tables makes the image stale,
	// even one that changes no row.
	for _, stmt := range []string{
		`UPDATE rates SET rate_value = rate_value + 1 WHERE rate_type = 'Amount' AND retired_at IS NULL`,
		`UPDATE contracts SET admin_fee_pct = 1.5`,
		`UPDATE rate_kinds SET priority = priority`,
		`DELETE FROM rates WHERE false`,
	} {
		t.Run(stmt, func(t *testing.T) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
			want := fresh()
			if got := priceAll(cached(t, c, url, rates.Options{}, load.CacheBuilt), lines); !slices.Equal(got, want) {
				t.Fatal("after a change the cache priced with the old schedule")
			}
			cached(t, c, url, rates.Options{}, load.CacheHit)
		})
	}

	t.Run("a database without the change counter is read every time", func(t *testing.T) {
		if _, err := db.ExecContext(ctx, `DROP TABLE schedule_version CASCADE`); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if got := priceAll(cached(t, c, url, rates.Options{}, load.CacheBypass), lines); !slices.Equal(got, fresh()) {
				t.Fatal("prices differ")
			}
		}
	})
}
