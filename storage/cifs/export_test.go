package cifs

import (
	"context"

	"github.com/cloudsoda/go-smb2"
)

// RawShare is the mounted share under b, for tests that set up or inspect
// the server directly; nil when b cannot connect.
func RawShare(b *Backend) *smb2.Share {
	s, err := b.get(context.Background())
	if err != nil {
		return nil
	}
	return s.share
}

// PreferSMB21 sets whether sessions try SMB 2.1 first, and returns the
// previous setting (benchmarks compare the dialects).
func PreferSMB21(v bool) bool {
	old := preferSMB21
	preferSMB21 = v
	return old
}
