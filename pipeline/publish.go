package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// stagingPrefix names the hidden folder a run writes into before publishing.
const stagingPrefix = ".repricer-staging-"

// staging writes a run's outputs aside, inside the output folder (so the
// final renames stay on one file system), and publishes them by renaming.
type staging struct {
	out, dir string
	files    []*os.File
	names    []string
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

func newStaging(out string) (*staging, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	dir, err := os.MkdirTemp(out, stagingPrefix)
	if err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	return &staging{out: out, dir: dir}, nil
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
	// with a summary.json always holds one run's complete set of files.
	if len(s.names) > 0 {
		marker := filepath.Join(s.out, s.names[len(s.names)-1])
		if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", marker, err)
		}
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
	return os.Remove(s.dir)
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
}
