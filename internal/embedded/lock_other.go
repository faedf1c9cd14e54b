//go:build !unix

package embedded

import (
	"fmt"
	"os"
)

// lockDataDir only creates the lock file on platforms without flock; it does
// not protect against a second server on the same data directory.
func lockDataDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	return f, nil
}

func unlockDataDir(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
