package sftp

import (
	"context"

	pkgsftp "github.com/pkg/sftp"
)

// RawClient is the SFTP client under b, for tests that set up or inspect
// the server directly; nil when b cannot connect.
func RawClient(b *Backend) *pkgsftp.Client {
	c, err := b.get(context.Background())
	if err != nil {
		return nil
	}
	return c.sftp
}
