//go:build unix

package load

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the file at name read-only. The mapping is never written;
// unmap releases it.
func mapFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() == 0 {
		return []byte{}, nil
	}
	if int64(int(fi.Size())) != fi.Size() {
		return nil, fmt.Errorf("%s: too large to map", name)
	}
	return syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
}

// unmap releases a mapping of mapFile that nothing uses.
func unmap(b []byte) {
	if len(b) > 0 {
		_ = syscall.Munmap(b) // a mapping of ours: it cannot fail
	}
}
