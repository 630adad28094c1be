//go:build !unix

package load

import "os"

// mapFile reads the file at name (no memory mapping on this system).
func mapFile(name string) ([]byte, error) { return os.ReadFile(name) }

func unmap([]byte) {}
