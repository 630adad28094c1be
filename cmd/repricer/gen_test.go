package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
)

// runGen runs the gen command on its own, so the test does not depend on
// how the app registers it.
func runGen(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	app := &cli.App{
		Name: "repricer", Writer: &out, ErrWriter: &out,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Commands:       []*cli.Command{genCommand()},
	}
	err := app.RunContext(ctx, append([]string{"repricer", "gen"}, args...))
	return out.String(), err
}

func TestGen(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		format string
		file   string
	}{
		{"csv", "csv", "claims.csv"},
		{"parquet", "parquet", "claims.parquet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out, err := runGen(ctx, "--out", dir, "--lines", "10000", "--contracts", "100", "--rates", "5000", "--format", tt.format)
			if err != nil {
				t.Fatalf("gen: %v\n%s", err, out)
			}
			if !strings.Contains(out, "10000 lines") {
				t.Errorf("output %q does not report the lines", out)
			}
			fi, err := os.Stat(filepath.Join(dir, tt.file))
			if err != nil || fi.Size() == 0 {
				t.Fatalf("claims file: %v", err)
			}
			s, err := bundle.Read(ctx, filepath.Join(dir, "contracts"))
			if err != nil {
				t.Fatal(err)
			}
			v := contracts.Validate(s)
			if len(v.Contracts) != 100 || len(s.Rates) != 5000 {
				t.Errorf("%d contracts, %d rates", len(v.Contracts), len(s.Rates))
			}
			if n := rejectedCount(v); n > 5 {
				t.Errorf("%d rows rejected, want few", n)
			}
		})
	}
}

func TestGenUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"no out", nil},
		{"bad format", []string{"--out", dir, "--format", "xml"}},
		{"negative lines", []string{"--out", dir, "--lines", "-1"}},
		{"no contracts", []string{"--out", dir, "--contracts", "0"}},
		{"bad share", []string{"--out", dir, "--bad-share", "1.5"}},
		{"not a number", []string{"--out", dir, "--lines", "many"}},
		{"extra args", []string{"--out", dir, "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runGen(context.Background(), tt.args...)
			var u *usageError
			if !errors.As(err, &u) {
				t.Errorf("err = %v, want a usage error", err)
			}
		})
	}
}
