// Package atomicfile writes a file aside and renames it into place, so that
// a reader sees the old file or the new one, whole, never a part.
package atomicfile

import (
	"bufio"
	"io"
	"os"
)

// Write writes path through path+".tmp": write fills it through a buffer,
// then it is closed and renamed over path. On any failure the temporary
// file is removed and path is left as it was. Two writers of one path must
// not run at once (they would share the temporary file). It does not
// fsync: a file that must survive a crash needs more (see nightly's
// manifest).
func Write(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close() // already failing: the first error is the one to report
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
