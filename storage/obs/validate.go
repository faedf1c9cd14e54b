package obs

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/kbr-project/kbr/storage"
)

// Validate checks an OBS target's parameters without touching the network.
func Validate(t storage.Target) error {
	if err := validateEndpoint(t.Endpoint); err != nil {
		return err
	}
	if err := ValidateBucketName(t.Bucket); err != nil {
		return err
	}
	for _, s := range []struct {
		param string
		set   bool
		both  bool
	}{
		{"target.access_key", t.AccessKey.IsSet(), t.AccessKey.Env != "" && t.AccessKey.File != ""},
		{"target.secret_key", t.SecretKey.IsSet(), t.SecretKey.Env != "" && t.SecretKey.File != ""},
	} {
		if !s.set {
			return &storage.ParamError{Param: s.param, Msg: "required: a secret reference (env or file)"}
		}
		if s.both {
			return &storage.ParamError{Param: s.param, Msg: "give env or file, not both"}
		}
	}
	if strings.Contains(t.Path, "\\") {
		return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf("%q: use / to separate key prefix parts", t.Path)}
	}
	for _, part := range strings.Split(t.Path, "/") {
		if part == ".." {
			return &storage.ParamError{Param: "target.path", Msg: fmt.Sprintf("%q must not contain ..", t.Path)}
		}
	}
	if t.CAFile != "" && strings.HasPrefix(strings.ToLower(t.Endpoint), "http://") {
		return &storage.ParamError{Param: "target.ca_file", Msg: "given, but target.endpoint is http: a CA file needs an https endpoint"}
	}
	return nil
}

func validateEndpoint(e string) error {
	const param = "target.endpoint"
	if e == "" {
		return &storage.ParamError{Param: param, Msg: "required: the service's URL, like https://obs.cn-north-4.myhuaweicloud.com or http://127.0.0.1:9000"}
	}
	u, err := url.Parse(e)
	if err != nil {
		return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q is not a URL: %v", e, err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q: the scheme must be http or https", e)}
	}
	if u.Host == "" || u.Hostname() == "" {
		return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q has no host", e)}
	}
	if u.User != nil {
		return &storage.ParamError{Param: param, Msg: "must not carry credentials: use target.access_key and target.secret_key"}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q: give only scheme://host[:port]; the key prefix goes in target.path", e)}
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q: bad port", e)}
		}
	}
	return nil
}

// ValidateBucketName applies the S3 (and OBS) bucket naming rules: 3 to 63
// characters of lowercase letters, digits, dots and hyphens, starting and
// ending with a letter or digit, no two adjacent dots, not shaped like an IP
// address, and none of the prefixes and suffixes AWS reserves.
func ValidateBucketName(b string) error {
	const param = "target.bucket"
	bad := func(why string) error {
		return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q: %s", b, why)}
	}
	switch {
	case b == "":
		return &storage.ParamError{Param: param, Msg: "required"}
	case len(b) < 3 || len(b) > 63:
		return bad("a bucket name has 3 to 63 characters")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("only lowercase letters, digits, dots and hyphens are allowed")
		}
	}
	first, last := b[0], b[len(b)-1]
	isAlnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	switch {
	case !isAlnum(first) || !isAlnum(last):
		return bad("must start and end with a letter or digit")
	case strings.Contains(b, ".."), strings.Contains(b, ".-"), strings.Contains(b, "-."):
		return bad("dots must not be next to another dot or a hyphen")
	case net.ParseIP(b) != nil:
		return bad("must not be formatted as an IP address")
	case strings.HasPrefix(b, "xn--"), strings.HasPrefix(b, "sthree-"):
		return bad("the prefixes xn-- and sthree- are reserved")
	case strings.HasSuffix(b, "-s3alias"), strings.HasSuffix(b, "--ol-s3"):
		return bad("the suffixes -s3alias and --ol-s3 are reserved")
	}
	return nil
}
