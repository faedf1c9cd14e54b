package cifs

import (
	"fmt"
	"net"
	"strings"

	"github.com/kbr-project/kbr/storage"
)

// Validate checks a CIFS target's parameters without touching the network
// or reading the password.
func Validate(t storage.Target) error {
	if t.Server == "" {
		return &storage.ParamError{Param: "target.server", Msg: "required: the CIFS server's host name or address"}
	}
	if strings.ContainsAny(t.Server, `/\ @`) || (strings.Contains(t.Server, ":") && net.ParseIP(strings.Trim(t.Server, "[]")) == nil) {
		return &storage.ParamError{Param: "target.server", Msg: fmt.Sprintf("%q: give only the host name or address; the port goes in target.port, the share in target.share", t.Server)}
	}
	if t.Port < 0 || t.Port > 65535 {
		return &storage.ParamError{Param: "target.port", Msg: fmt.Sprintf("%d is not a TCP port (1-65535; 0 means %d)", t.Port, DefaultPort)}
	}
	if t.User == "" {
		return &storage.ParamError{Param: "target.user", Msg: `required: the user to log on as (user, or DOMAIN\user)`}
	}
	if !t.Password.IsSet() {
		return &storage.ParamError{Param: "target.password", Msg: "required: a secret reference (env or file)"}
	}
	if t.Password.Env != "" && t.Password.File != "" {
		return &storage.ParamError{Param: "target.password", Msg: "give env or file, not both"}
	}
	if t.Share == "" {
		return &storage.ParamError{Param: "target.share", Msg: "required: the share's name"}
	}
	if strings.ContainsAny(t.Share, `/\:*?"<>|`) {
		return &storage.ParamError{Param: "target.share", Msg: fmt.Sprintf("%q: give only the share's name; the directory in it goes in target.path", t.Share)}
	}
	if t.Path == "" {
		return &storage.ParamError{Param: "target.path", Msg: `required: the directory in the share ("/" for the share's root)`}
	}
	for _, part := range strings.FieldsFunc(t.Path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf("%q must not contain ..", t.Path)}
		}
	}
	if strings.ContainsAny(t.Path, `:*?"<>|`) {
		return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf(`%q: a share path cannot hold any of : * ? " < > |`, t.Path)}
	}
	switch strings.ToLower(t.Signing) {
	case "", SigningAuto, SigningRequired:
	default:
		return &storage.ParamError{Param: "target.signing", Msg: fmt.Sprintf("%q: want auto (sign when the server requires it; the default) or required (sign everything, refuse a session that cannot)", t.Signing)}
	}
	return nil
}
