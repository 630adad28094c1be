package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/repricer/repricer/internal/flock"
)

// stagingPrefix names the hidden folder a run writes into before publishing.
const stagingPrefix = ".repricer-staging-"

// OutputPatterns returns the names (path.Match patterns) of the files a
// run publishes in its output folder, in every format: publishing removes
// the ones an earlier run left there that the new run does not write
// again, so the folder holds exactly one run.
func OutputPatterns() []string {
	return []string{"priced.csv", "priced.parquet", "priced.arrows",
		"exceptions.csv", "exceptions.parquet", "exceptions.arrows", ScheduleIssuesFile, SummaryFile}
}

// staging writes a run's outputs aside, inside the output folder (so the
// final renames stay on one file system), and publishes them by renaming.
// The staging folder is flock(2)ed for as long as the run lives, so that
// SweepStaging can tell the folders of live runs from those of runs that
// were killed: the kernel drops the lock with its holder.
type staging struct {
	out, dir string
	lock     *os.File // the staging folder, open and locked
	files    []*os.File
	names    []string
	// superseded are patterns of files an earlier run may have left in out
	// that commit removes (beyond those it replaces).
	superseded []string
	// redirected files are copied to a writer instead of renamed.
	redirected map[string]io.Writer
}

// redirect makes commit copy the staged file name to w instead of
// publishing it in the output folder.
func (s *staging) redirect(name string, w io.Writer) {
	if s.redirected == nil {
		s.redirected = map[string]io.Writer{}
	}
	s.redirected[name] = w
}

// newStaging removes what dead runs left in out and creates this run's
// locked staging folder there.
func newStaging(out string, superseded []string) (*staging, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	if _, err := SweepStaging(out); err != nil {
		return nil, err
	}
	// A concurrent run's sweep may lock and remove the new folder between
	// its creation and our lock: then take another.
	for attempt := 0; attempt < 5; attempt++ {
		dir, err := os.MkdirTemp(out, stagingPrefix)
		if err != nil {
			return nil, fmt.Errorf("output folder: %w", err)
		}
		lock, err := lockDir(dir)
		if errors.Is(err, flock.ErrLocked) || errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("output folder: %w", err)
		}
		return &staging{out: out, dir: dir, lock: lock, superseded: append(OutputPatterns(), superseded...)}, nil
	}
	return nil, fmt.Errorf("output folder %s: could not create a staging folder that stays", out)
}

// lockDir opens and locks dir, and checks that it still exists (a sweeper
// removes a folder only while holding its lock).
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := flock.TryLock(f); err != nil {
		f.Close()
		return nil, err
	}
	held, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	now, err := os.Stat(dir)
	if err != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, os.ErrNotExist
	}
	return f, nil
}

// SweepStaging removes the staging folders in out whose runs are no longer
// alive (killed, or stopped by a broken pipe before they could clean up),
// and returns their names. The folder of a live run is locked and left
// alone. Every run sweeps before it starts.
func SweepStaging(out string) ([]string, error) {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stagingPrefix) {
			continue
		}
		dir := filepath.Join(out, e.Name())
		f, err := os.Open(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("leftover %s: %w", dir, err)
		}
		err = flock.TryLock(f)
		if errors.Is(err, flock.ErrLocked) {
			f.Close() // a live run's
			continue
		}
		if err == nil {
			err = os.RemoveAll(dir)
		}
		f.Close()
		if err != nil {
			return removed, fmt.Errorf("remove leftover %s: %w", dir, err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// create opens a staged file that commit will publish under name.
func (s *staging) create(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	s.files = append(s.files, f)
	s.names = append(s.names, name)
	return f, nil
}

// reset discards everything staged so far.
func (s *staging) reset() error {
	err := s.closeAll()
	for _, n := range s.names {
		if rmErr := os.Remove(filepath.Join(s.dir, n)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	s.files, s.names = nil, nil
	return err
}

func (s *staging) closeAll() error {
	var err error
	for _, f := range s.files {
		if cerr := f.Close(); cerr != nil && !errors.Is(cerr, os.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// commit syncs every staged file and renames them into the output folder in
// the order they were created; the last one (summary.json) marks a
// complete run.
func (s *staging) commit() error {
	for _, f := range s.files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", f.Name(), err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.Name(), err)
		}
	}
	// Remove the previous run's completion marker first, so that a folder
	// with a summary.json always holds one run's complete set of files, then
	// the files of the previous run that this one does not write again.
	if len(s.names) > 0 {
		marker := filepath.Join(s.out, s.names[len(s.names)-1])
		if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", marker, err)
		}
	}
	if err := s.removeSuperseded(); err != nil {
		return err
	}
	for _, n := range s.names {
		if w, ok := s.redirected[n]; ok {
			if err := copyOut(filepath.Join(s.dir, n), w); err != nil {
				return fmt.Errorf("publish %s: %w", n, err)
			}
			continue
		}
		if err := os.Rename(filepath.Join(s.dir, n), filepath.Join(s.out, n)); err != nil {
			return fmt.Errorf("publish %s: %w", n, err)
		}
	}
	if d, err := os.Open(s.out); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync output folder: %w", err)
		}
	}
	err := os.RemoveAll(s.dir)
	s.lock.Close()
	return err
}

// removeSuperseded removes the files of an earlier run that match the
// superseded patterns and are not published by this one.
func (s *staging) removeSuperseded() error {
	entries, err := os.ReadDir(s.out)
	if err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !s.isSuperseded(n) {
			continue
		}
		if _, published := s.redirected[n]; !published && slices.Contains(s.names, n) {
			continue // replaced by the rename
		}
		if err := os.Remove(filepath.Join(s.out, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the earlier run's %s: %w", n, err)
		}
	}
	return nil
}

func (s *staging) isSuperseded(name string) bool {
	for _, p := range s.superseded {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// copyOut copies the file at path to w and removes it.
func copyOut(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	f.Close()
	if err != nil {
		return err
	}
	return os.Remove(path)
}

// abort removes the staging folder and everything in it.
func (s *staging) abort() {
	s.closeAll()
	os.RemoveAll(s.dir)
	s.lock.Close()
}
