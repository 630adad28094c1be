package nightly

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/repricer/repricer/pipeline"
)

// ManifestFile is the completion marker of a run, written last.
const ManifestFile = "_SUCCESS.json"

// ManifestVersion is the version of the manifest format.
const ManifestVersion = 1

// Manifest is the content of _SUCCESS.json: what a complete run published.
// A consumer takes the folder only when the manifest is there, and can
// check every file against it (Verify).
type Manifest struct {
	Version    int    `json:"version"`
	RunID      string `json:"run_id"`
	Job        string `json:"job"`
	RunDate    string `json:"run_date"`
	StartedAt  string `json:"started_at"`
	FinishedAt string `json:"finished_at"`
	// Files are the published files, in publication order, summary.json
	// and report.html included; not the manifest itself.
	Files     []ManifestFileEntry       `json:"files"`
	Inputs    []pipeline.InputSummary   `json:"inputs"`
	Reference pipeline.ReferenceSummary `json:"reference"`
	Counts    pipeline.Counts           `json:"counts"`
	Books     pipeline.Books            `json:"books"`
	BCSync    *SyncSummary              `json:"bc_sync,omitempty"`
}

// ManifestFileEntry is one published file.
type ManifestFileEntry struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ManifestError is a manifest that is missing, unreadable, or does not
// match the files next to it.
type ManifestError struct {
	Dir string
	Err error
}

func (e *ManifestError) Error() string { return "manifest in " + e.Dir + ": " + e.Err.Error() }
func (e *ManifestError) Unwrap() error { return e.Err }

// ErrNoManifest means the folder holds no complete run.
var ErrNoManifest = errors.New(ManifestFile + " is missing: the folder holds no complete run")

// hashFile returns the size and SHA-256 of a file.
func hashFile(path string) (ManifestFileEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return ManifestFileEntry{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return ManifestFileEntry{}, fmt.Errorf("read %s: %w", path, err)
	}
	return ManifestFileEntry{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeAside writes a file through a temporary file in the same folder:
// written, fsynced, closed, renamed over name, and the folder fsynced. A
// crash at any point leaves either the old file or the new one, whole.
func writeAside(dir, name string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// removeManifest withdraws a previous run's completion marker before a new
// run touches the folder.
func removeManifest(dir string) error {
	err := os.Remove(filepath.Join(dir, ManifestFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		return syncDir(dir)
	}
	return nil
}

func writeManifest(dir string, m *Manifest) error {
	return writeAside(dir, ManifestFile, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
}

// ReadManifest reads the manifest of dir; ErrNoManifest when there is none.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ManifestError{Dir: dir, Err: ErrNoManifest}
	}
	if err != nil {
		return nil, &ManifestError{Dir: dir, Err: err}
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &ManifestError{Dir: dir, Err: err}
	}
	if m.Version != ManifestVersion || m.RunID == "" || len(m.Files) == 0 {
		return nil, &ManifestError{Dir: dir, Err: errors.New("not a complete manifest")}
	}
	return &m, nil
}

// Verify reads the manifest of dir and checks that every file it lists is
// there with its size and SHA-256 — what a consumer should do before taking
// the outputs.
func Verify(dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		got, err := hashFile(filepath.Join(dir, f.Name))
		if err != nil {
			return nil, &ManifestError{Dir: dir, Err: err}
		}
		if got != f {
			return nil, &ManifestError{Dir: dir, Err: fmt.Errorf("%s: %d bytes, sha256 %s; the manifest says %d bytes, sha256 %s",
				f.Name, got.Bytes, got.SHA256, f.Bytes, f.SHA256)}
		}
	}
	return m, nil
}
