package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/internal/atomicfile"
	"github.com/repricer/repricer/internal/flock"
	"github.com/repricer/repricer/rates"
)

// Cache keeps compiled schedule images (rates.WriteImage) in a folder, one
// per schedule source, so that a run opens its schedule's image in a
// fraction of a second instead of reading, validating and indexing it.
//
// An image is used only when the source's version (schedule.Version: a
// hash of a folder's files, a database's change counter) and the program
// that compiled it are the ones of this run; otherwise the source is read
// and the image rebuilt. A damaged image fails its checksum and is rebuilt
// too: an image is never trusted. Images are memory-mapped, so processes
// pricing with one schedule share its pages.
type Cache struct {
	// Dir is the cache folder; it is created when missing.
	Dir string
	// Log receives what the cache did (an image used, built, refused and
	// why); nil logs nothing. It never gets schedule contents.
	Log *slog.Logger

	once     sync.Once
	compiler string
	err      error
}

// DefaultCacheDir is $XDG_CACHE_HOME/repricer/schedules, else
// $HOME/.cache/repricer/schedules (the XDG base directory convention for a
// program's caches), or "" (no cache) when neither is set.
func DefaultCacheDir(getenv func(string) string) string {
	if d := getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "repricer", "schedules")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".cache", "repricer", "schedules")
	}
	return ""
}

// imageExtra is what an image records beside the engine.
type imageExtra struct {
	// Key is the compiling program and the source's version.
	Key string `json:"key"`
	// Source is the source's identity (schedule.Version's ident).
	Source string `json:"source"`
}

// CacheUse is what Cache.Engine did, and with which image file.
type CacheUse struct {
	Status CacheStatus
	Image  string
}

// CacheStatus is what Cache.Engine did.
type CacheStatus string

// Cache statuses.
const (
	CacheHit     CacheStatus = "hit"     // an up-to-date image was opened
	CacheBuilt   CacheStatus = "built"   // the source was read and its image written
	CacheUnkept  CacheStatus = "unkept"  // the source was read; no image could be kept
	CacheBypass  CacheStatus = "bypass"  // the source has no version to key an image on
	cacheMissing CacheStatus = "missing" // internal: no image yet
)

// Engine returns the engine of the schedule at src from its image when the
// image is up to date, and otherwise loads the source (Engine without a
// cache) and writes its image for the next run. The description is the
// one the source gives.
func (c *Cache) Engine(ctx context.Context, src string, opts Options) (*rates.Engine, string, CacheUse, error) {
	ident, version, err := schedule.Version(ctx, src, opts.Postgres)
	if errors.Is(err, postgres.ErrNoScheduleVersion) {
		c.log().Warn("schedule image not used: the database has no change counter; run `repricer db migrate`", "stage", "load")
		e, desc, err := build(ctx, src, opts)
		return e, desc, CacheUse{Status: CacheBypass}, err
	}
	if err != nil {
		return nil, "", CacheUse{}, err
	}
	compiler, err := c.compilerID()
	if err != nil {
		return nil, "", CacheUse{}, err
	}
	want := imageExtra{Key: compiler + " " + version, Source: ident}
	name := filepath.Join(c.Dir, imageName(ident))
	desc := schedule.Describe(src)
	use := func(s CacheStatus) CacheUse { return CacheUse{Status: s, Image: name} }
	e, why := c.open(name, want, opts.Rates)
	if e != nil {
		c.log().Info("schedule image used", "stage", "load", "image", name)
		return e, desc, use(CacheHit), nil
	}

	// One process builds an image at a time; the others wait for it and
	// then use it rather than build it again.
	unlock, err := c.lock(ctx, name)
	if err != nil {
		c.log().Warn("schedule image not kept: cannot lock the cache", "stage", "load", "error", err.Error())
		e, desc, err := build(ctx, src, opts)
		return e, desc, use(CacheUnkept), err
	}
	defer unlock()
	if e, again := c.open(name, want, opts.Rates); e != nil {
		c.log().Info("schedule image used (built by another process)", "stage", "load", "image", name)
		return e, desc, use(CacheHit), nil
	} else if why == cacheMissing {
		why = again
	}
	c.log().Info("schedule image being built", "stage", "load", "image", name, "reason", string(why))

	bo := opts
	bo.Rates.Compile = true
	built, desc, err := build(ctx, src, bo)
	if err != nil {
		return nil, "", CacheUse{}, err
	}
	if postgres.IsURL(src) {
		// Keep the image only if nothing changed while it was read: then
		// its contents are those of the version it is filed under.
		_, now, err := schedule.Version(ctx, src, opts.Postgres)
		if err != nil || now != version {
			c.log().Warn("schedule image not kept: the schedule changed while it was read", "stage", "load")
			return built, desc, use(CacheUnkept), nil
		}
	}
	if err := writeImage(name, built, want); err != nil {
		c.log().Warn("schedule image not kept", "stage", "load", "error", err.Error())
		return built, desc, use(CacheUnkept), nil
	}
	if e, why := c.open(name, want, opts.Rates); e != nil {
		// The mapped image rather than the built engine: its pages are
		// shared and not on the heap; return the built one's memory now.
		debug.FreeOSMemory()
		c.log().Info("schedule image built", "stage", "load", "image", name)
		return e, desc, use(CacheBuilt), nil
	} else {
		c.log().Warn("schedule image written but not readable", "stage", "load", "reason", string(why))
	}
	return built, desc, use(CacheUnkept), nil
}

func (c *Cache) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// imageName is the file of the image of the source ident.
func imageName(ident string) string {
	sum := sha256.Sum256([]byte(ident))
	return hex.EncodeToString(sum[:16]) + ".img"
}

// open returns the engine of the image at name when it is the image want
// describes, and otherwise nil and why not.
func (c *Cache) open(name string, want imageExtra, opts rates.Options) (*rates.Engine, CacheStatus) {
	data, err := mapFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cacheMissing
	}
	if err != nil {
		return nil, CacheStatus("unreadable: " + err.Error())
	}
	e, extra, err := rates.OpenImage(data, opts)
	if err != nil {
		unmap(data)
		if errors.Is(err, rates.ErrImageCorrupt) {
			c.log().Warn("schedule image damaged; rebuilding it", "stage", "load", "image", name, "error", err.Error())
		}
		return nil, CacheStatus("refused: " + err.Error())
	}
	var got imageExtra
	if err := json.Unmarshal(extra, &got); err != nil || got != want {
		unmap(data)
		return nil, "stale"
	}
	return e, ""
}

// lock takes the build lock of the image at name, waiting while another
// process holds it; unlock releases it.
func (c *Cache) lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := flock.TryLock(f)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, flock.ErrLocked) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// writeImage writes e's image beside name and renames it into place, so
// that a reader sees the old image or the new one, never a part.
func writeImage(name string, e *rates.Engine, extra imageExtra) error {
	x, err := json.Marshal(extra)
	if err != nil {
		return err
	}
	// The build lock's holder alone writes name.
	return atomicfile.Write(name, func(w io.Writer) error { return e.WriteImage(w, x) })
}

// compilerID names the program that compiles images, so that an image is
// not used by a build whose engine could differ: this module's version
// when the binary records one (a release, or a library user's dependency),
// else a hash of the executable.
func (c *Cache) compilerID() (string, error) {
	c.once.Do(func() {
		const module = "github.com/repricer/repricer"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, d := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
				if d.Path == module && d.Replace == nil && released(d.Version) {
					c.compiler = d.Path + "@" + d.Version
					return
				}
			}
		}
		exe, err := os.Executable()
		if err != nil {
			c.err = fmt.Errorf("schedule cache: %w", err)
			return
		}
		f, err := os.Open(exe)
		if err != nil {
			c.err = fmt.Errorf("schedule cache: %w", err)
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			c.err = fmt.Errorf("schedule cache: %w", err)
			return
		}
		c.compiler = "exe:" + hex.EncodeToString(h.Sum(nil))
	})
	return c.compiler, c.err
}

// released reports a module version that names one source tree: not a
// development build, and not one with uncommitted changes.
func released(v string) bool {
	return v != "" && v != "(devel)" && !strings.HasSuffix(v, "+dirty")
}
