package sftp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
)

// Validate checks an SFTP target's parameters without touching the network
// or reading secrets.
func Validate(t storage.Target) error {
	if err := validateConnection(t); err != nil {
		return err
	}
	if strings.TrimSpace(t.KnownHostKey) == "" {
		return &storage.ParamError{Param: "target.known_host_key", Msg: "required: the server's host key as a known_hosts line (`ssh-keyscan -p PORT SERVER` prints it; check it out of band)"}
	}
	if _, err := ParseKnownHostKey(t.KnownHostKey); err != nil {
		return &storage.ParamError{Param: "target.known_host_key", Msg: err.Error()}
	}
	return nil
}

// validateConnection checks everything but the host key, which New checks
// itself (it refuses an empty one only once it can say which key the
// server offers).
func validateConnection(t storage.Target) error {
	if t.Server == "" {
		return &storage.ParamError{Param: "target.server", Msg: "required: the SFTP server's host name or address"}
	}
	if strings.ContainsAny(t.Server, "/ \t@") || (strings.Contains(t.Server, ":") && net.ParseIP(strings.Trim(t.Server, "[]")) == nil) {
		return &storage.ParamError{Param: "target.server", Msg: fmt.Sprintf("%q: give only the host name or address; the port goes in target.port, the user in target.user", t.Server)}
	}
	if t.Port < 0 || t.Port > 65535 {
		return &storage.ParamError{Param: "target.port", Msg: fmt.Sprintf("%d is not a TCP port (1-65535; 0 means %d)", t.Port, DefaultPort)}
	}
	if t.User == "" {
		return &storage.ParamError{Param: "target.user", Msg: "required: the user to log in as"}
	}
	if !t.Password.IsSet() && !t.PrivateKey.IsSet() {
		return &storage.ParamError{Param: "target.password", Msg: "give target.password or target.private_key (a secret reference: env or file)"}
	}
	for _, s := range []struct {
		param string
		ref   secret.Ref
	}{{"target.password", t.Password}, {"target.private_key", t.PrivateKey}} {
		if s.ref.Env != "" && s.ref.File != "" {
			return &storage.ParamError{Param: s.param, Msg: "give env or file, not both"}
		}
	}
	if t.Path == "" {
		return &storage.ParamError{Param: "target.path", Msg: "required: the remote directory backups go to"}
	}
	if strings.ContainsRune(t.Path, 0) || strings.Contains(t.Path, `\`) {
		return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf("%q: use / to separate directories", t.Path)}
	}
	return nil
}

// ParseKnownHostKey reads the server key from a known_hosts line
// ("host[,host] key-type base64 [comment]", hosts possibly hashed) or an
// authorized_keys-style line ("key-type base64 [comment]"). The host part
// is not matched against target.server: the target pins one key for its
// one server.
func ParseKnownHostKey(line string) (ssh.PublicKey, error) {
	fields := strings.Fields(line)
	if len(fields) >= 1 && strings.HasPrefix(fields[0], "@") {
		return nil, fmt.Errorf("%s lines are not supported: give the server's own key", fields[0])
	}
	if len(fields) >= 2 {
		if k, err := parseKey(fields[0], fields[1]); err == nil {
			return k, nil
		}
	}
	if len(fields) >= 3 {
		if k, err := parseKey(fields[1], fields[2]); err == nil {
			return k, nil
		} else if isKeyType(fields[1]) {
			return nil, err
		}
	}
	return nil, errors.New("not a known_hosts line (host key-type base64) nor a public key (key-type base64)")
}

func isKeyType(s string) bool {
	return strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") || strings.HasPrefix(s, "sk-")
}

func parseKey(typ, b64 string) (ssh.PublicKey, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%s key: bad base64: %w", typ, err)
	}
	k, err := ssh.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", typ, err)
	}
	if k.Type() != typ {
		return nil, fmt.Errorf("the key is of type %s, the line says %s", k.Type(), typ)
	}
	return k, nil
}

// hostKeyAlgorithms makes the server present the pinned key's type (a
// server with several host keys otherwise picks one we may not have).
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}
