package nfs

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/kbr-project/kbr/storage"
)

// Validate checks an NFS target's parameters without touching the disk.
func Validate(t storage.Target) error {
	if t.MountPoint == "" {
		return &storage.ParamError{Param: "target.mount_point", Msg: "required: the local directory the share is (or will be) mounted on"}
	}
	if !filepath.IsAbs(t.MountPoint) {
		return &storage.ParamError{Param: "target.mount_point", Msg: fmt.Sprintf("%q must be an absolute path", t.MountPoint)}
	}
	if filepath.Clean(t.MountPoint) == "/" {
		return &storage.ParamError{Param: "target.mount_point", Msg: "must not be /"}
	}
	if strings.Contains(t.Path, "\\") {
		return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf("%q: use / to separate directories", t.Path)}
	}
	for _, part := range strings.Split(t.Path, "/") {
		if part == ".." {
			return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf("%q must stay under the mount point (no ..)", t.Path)}
		}
	}
	if t.ExistingMount {
		if t.MountCommand != "" || t.UnmountCommand != "" {
			return &storage.ParamError{Param: "target.mount_command", Msg: "given with existing_mount, where kbr neither mounts nor unmounts: drop one"}
		}
		return nil
	}
	if t.Server == "" {
		return &storage.ParamError{Param: "target.server", Msg: "required (or set existing_mount and mount the share yourself)"}
	}
	if strings.ContainsAny(t.Server, " \t\r\n/") || strings.HasPrefix(t.Server, "-") {
		return &storage.ParamError{Param: "target.server", Msg: fmt.Sprintf("%q is not a host name or address", t.Server)}
	}
	if strings.Contains(t.Server, ":") && !(strings.HasPrefix(t.Server, "[") && strings.HasSuffix(t.Server, "]")) {
		return &storage.ParamError{Param: "target.server", Msg: fmt.Sprintf("%q: write an IPv6 address in brackets, like [fd00::1]", t.Server)}
	}
	if t.SharePath == "" {
		return &storage.ParamError{Param: "target.share_path", Msg: "required: the server's exported path, like /srv/nfs/backup"}
	}
	if !strings.HasPrefix(t.SharePath, "/") {
		return &storage.ParamError{Param: "target.share_path", Msg: fmt.Sprintf("%q must be an absolute path on the server", t.SharePath)}
	}
	if path.Clean(t.SharePath) == "/" {
		return &storage.ParamError{Param: "target.share_path", Msg: "the server's root / is refused: export and give a dedicated directory"}
	}
	for _, part := range strings.Split(t.SharePath, "/") {
		if part == ".." {
			return &storage.ParamError{Param: "target.share_path", Msg: fmt.Sprintf("%q must not contain ..", t.SharePath)}
		}
	}
	for _, c := range []struct{ param, cmd string }{
		{"target.mount_command", t.MountCommand},
		{"target.unmount_command", t.UnmountCommand},
	} {
		if c.cmd == "" {
			continue
		}
		if _, err := splitArgs(c.cmd); err != nil {
			return &storage.ParamError{Param: c.param, Msg: err.Error()}
		}
	}
	return nil
}

// expand splits a command template into arguments (see splitArgs) and then
// replaces the placeholders inside each argument, so a substituted value is
// always part of one argument, whatever characters it holds.
func expand(template string, vars map[string]string) ([]string, error) {
	args, err := splitArgs(template)
	if err != nil {
		return nil, err
	}
	for i, a := range args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, k, v)
		}
		args[i] = a
	}
	return args, nil
}

// splitArgs splits a command line the way a POSIX shell splits words, with
// none of a shell's expansions: blanks separate arguments; '...' is literal;
// "..." is literal except for \" \\ \$ and \`; a backslash outside quotes
// escapes the next character.
func splitArgs(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inArg = true
		case c == '"':
			inArg = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`unterminated " quote`)
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inArg = true
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}
