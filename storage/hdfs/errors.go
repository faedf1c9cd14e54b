package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	gohdfs "github.com/colinmarc/hdfs/v2"

	"github.com/kbr-project/kbr/storage"
)

// Java exception classes a NameNode or DataNode answers with, by what retrying
// can do about them.
var (
	// notFoundExceptions mean the name does not exist.
	notFoundExceptions = map[string]bool{
		"java.io.FileNotFoundException": true,
	}
	// permanentExceptions will not go away by retrying: authorisation,
	// quotas, names HDFS refuses, a path through a file.
	permanentExceptions = map[string]bool{
		"org.apache.hadoop.security.AccessControlException":                                   true,
		"org.apache.hadoop.security.authorize.AuthorizationException":                         true,
		"org.apache.hadoop.hdfs.protocol.SnapshotAccessControlException":                      true,
		"org.apache.hadoop.hdfs.protocol.QuotaExceededException":                              true,
		"org.apache.hadoop.hdfs.protocol.DSQuotaExceededException":                            true,
		"org.apache.hadoop.hdfs.protocol.NSQuotaExceededException":                            true,
		"org.apache.hadoop.hdfs.protocol.QuotaByStorageTypeExceededException":                 true,
		"org.apache.hadoop.hdfs.protocol.FSLimitException$PathComponentTooLongException":      true,
		"org.apache.hadoop.hdfs.protocol.FSLimitException$MaxDirectoryItemsExceededException": true,
		"org.apache.hadoop.fs.InvalidPathException":                                           true,
		"org.apache.hadoop.fs.ParentNotDirectoryException":                                    true,
		"org.apache.hadoop.fs.FileAlreadyExistsException":                                     true,
		"org.apache.hadoop.fs.PathIsNotEmptyDirectoryException":                               true,
		"org.apache.hadoop.HadoopIllegalArgumentException":                                    true,
		"org.apache.hadoop.ipc.RpcNoSuchMethodException":                                      true,
		"org.apache.hadoop.ipc.RpcNoSuchProtocolException":                                    true,
		"org.apache.hadoop.hdfs.server.namenode.UnsupportedActionException":                   true,
	}
	// Everything else is retryable, notably SafeModeException (a NameNode
	// starting up), StandbyException and RetriableException (HA failover),
	// LeaseExpiredException (the write has to be redone), and the I/O
	// errors of a NameNode or DataNode that went away.
)

// remoteError is what colinmarc/hdfs returns for a Java exception (hdfs.Error).
type remoteError = gohdfs.Error

// exceptionOf returns the Java exception class and message err carries, if any.
func exceptionOf(err error) (class, msg string) {
	var re remoteError
	if errors.As(err, &re) {
		return re.Exception(), re.Message()
	}
	return "", ""
}

// firstLine is the first line of a Java exception message (the rest is a stack trace).
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// noSpace reports an IOException that says no DataNode could take a block
// although DataNodes run and none was excluded: every DataNode is full (or
// none fits the storage policy). A DataNode that is down or was excluded
// after a failure is retryable instead.
func noSpace(msg string) bool {
	if !strings.Contains(msg, "could only be written to 0 of the") {
		return false
	}
	return strings.Contains(msg, "no node(s) are excluded") && !strings.Contains(msg, "There are 0 datanode(s) running")
}

// classify turns an error of colinmarc/hdfs (or the network) into the storage
// contract's terms: not found, permanent, or retryable. where names the target
// (the backend's String) so the operator can tell which one failed; op and
// name describe the operation.
func classify(where, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if name != "" {
		op += " " + name
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s: %w", where, op, err)
	}
	class, msg := exceptionOf(err)
	detail := ""
	if m := firstLine(msg); m != "" && !strings.Contains(err.Error(), m) {
		detail = ": " + m
	}
	wrapped := fmt.Errorf("%s: %s: %w%s", where, op, err, detail)
	switch {
	case notFoundExceptions[class], errors.Is(err, fs.ErrNotExist):
		return storage.Permanent(fmt.Errorf("%w: %w", storage.ErrNotFound, wrapped))
	case errors.Is(err, fs.ErrPermission):
		return storage.Permanent(fmt.Errorf("%s: %s: permission denied (HDFS AccessControlException): %w", where, op, err))
	case permanentExceptions[class],
		errors.Is(err, os.ErrInvalid), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, fs.ErrExist),
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return storage.Permanent(wrapped)
	case noSpace(msg):
		return storage.Permanent(fmt.Errorf("%s: %s: no space: no DataNode can take a block: %w", where, op, err))
	}
	return wrapped
}

// unavailable reports the error colinmarc/hdfs gives when it has no NameNode
// connection: every address failed recently (it waits 5 s before trying an
// address again) or refused. The request was not sent, so it may be repeated.
func unavailable(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), "no available namenodes") {
			return true
		}
	}
	return false
}
