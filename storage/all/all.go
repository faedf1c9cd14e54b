// Package all links every storage backend into a binary: import it for its
// side effect of registering each path type.
package all

import (
	_ "github.com/kbr-project/kbr/storage/localdir" // LocalDir
)
