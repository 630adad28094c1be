package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
)

// Version identifies the schedule at src as it is now, without reading
// and validating it: for a bundle folder, a SHA-256 over the bytes of its
// files; for a database, its change counter (postgres.ScheduleVersion). A
// change to the schedule changes the version. ident names the source
// itself (the folder's absolute path, the URL without its password), so
// that a cache can keep one entry per source.
func Version(ctx context.Context, src string, opts postgres.Options) (ident, version string, err error) {
	if postgres.IsURL(src) {
		err := postgres.WithDB(ctx, src, opts, func(db *sqlx.DB) (err error) {
			version, err = postgres.ScheduleVersion(ctx, db)
			return err
		})
		return "postgres:" + postgres.Redact(src), "postgres:" + version, err
	}
	if err := checkBundle(src); err != nil {
		return "", "", err
	}
	dir, err := filepath.Abs(src)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return "", "", &SourceError{Source: src, Err: err}
	}
	h := sha256.New()
	for _, name := range []string{bundle.KindsFile, bundle.ContractsFile, bundle.RatesFile} {
		if err := ctx.Err(); err != nil {
			return "", "", err
		}
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "%s absent\n", name)
			continue
		}
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(h, "%s\n", name)
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", filepath.Join(src, name), err)
		}
		fmt.Fprintf(h, "\n%d bytes\n", n)
	}
	return "bundle:" + dir, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Describe names src for summaries and logs, without a password, as Load
// and Stream do.
func Describe(src string) string { return describe(src) }
