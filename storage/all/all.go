// Package all links every storage backend into a binary: import it for its
// side effect of registering each path type.
package all

import (
	_ "github.com/kbr-project/kbr/storage/cifs"     // CIFS
	_ "github.com/kbr-project/kbr/storage/hdfs"     // LocalHDFS, RemoteHDFS
	_ "github.com/kbr-project/kbr/storage/localdir" // LocalDir
	_ "github.com/kbr-project/kbr/storage/nfs"      // NFS
	_ "github.com/kbr-project/kbr/storage/obs"      // OBS
	_ "github.com/kbr-project/kbr/storage/sftp"     // SFTP
)
