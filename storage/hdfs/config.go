package hdfs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/colinmarc/hdfs/v2/hadoopconf"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kbr-project/kbr/storage"
)

// DefaultNameService is the MRS default name service (LocalHDFS).
const DefaultNameService = "hacluster"

// defaultServicePrincipal is the NameNode's Kerberos service principal
// unless the target or the Hadoop configuration says otherwise; _HOST is
// replaced with each NameNode's host.
const defaultServicePrincipal = "nn/_HOST"

var nameServiceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate is the path types' parameter check: no network, no disk. A
// target without a type is RemoteHDFS.
func Validate(t storage.Target) error {
	typ := t.Type
	if typ == "" {
		typ = RemoteType
	}
	return validate(typ, t)
}

func validate(pathType string, t storage.Target) error {
	remote := strings.EqualFold(pathType, RemoteType)
	switch n := len(t.NameNodes); {
	case n == 0 && remote:
		return &storage.ParamError{Param: "name_nodes", Msg: "required: the NameNode's host:port, or both of an HA pair"}
	case n > 2:
		return &storage.ParamError{Param: "name_nodes", Msg: fmt.Sprintf("%d addresses: give one NameNode, or the two of an HA pair", n)}
	}
	seen := map[string]bool{}
	for i, a := range t.NameNodes {
		param := fmt.Sprintf("name_nodes[%d]", i)
		if err := checkHostPort(a); err != nil {
			return &storage.ParamError{Param: param, Msg: err.Error()}
		}
		if seen[a] {
			return &storage.ParamError{Param: param, Msg: fmt.Sprintf("%q is listed twice", a)}
		}
		seen[a] = true
	}
	if t.NameService != "" && !nameServiceRE.MatchString(t.NameService) {
		return &storage.ParamError{Param: "name_service", Msg: fmt.Sprintf("%q is not a name service id (letters, digits, '.', '_', '-')", t.NameService)}
	}
	if err := checkRoot(t.Path); err != nil {
		return &storage.ParamError{Param: "path", Msg: err.Error()}
	}
	if strings.ContainsAny(t.User, " \t\n/@") {
		return &storage.ParamError{Param: "user", Msg: fmt.Sprintf("%q is not an HDFS user name", t.User)}
	}
	if k := t.Kerberos; k != nil {
		if k.Principal == "" {
			return &storage.ParamError{Param: "kerberos.principal", Msg: "required with kerberos (user@REALM or user/host@REALM)"}
		}
		if k.Keytab == "" {
			return &storage.ParamError{Param: "kerberos.keytab", Msg: "required with kerberos: the keytab file of the principal on the worker"}
		}
		if !filepath.IsAbs(k.Keytab) {
			return &storage.ParamError{Param: "kerberos.keytab", Msg: fmt.Sprintf("%q: want an absolute path", k.Keytab)}
		}
		if k.Krb5Conf != "" && !filepath.IsAbs(k.Krb5Conf) {
			return &storage.ParamError{Param: "kerberos.krb5_conf", Msg: fmt.Sprintf("%q: want an absolute path", k.Krb5Conf)}
		}
	}
	return nil
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q: want host:port (%v)", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q: no host", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", a, port)
	}
	return nil
}

// checkRoot accepts an absolute HDFS path without "..", ":" or backslashes.
func checkRoot(p string) error {
	switch {
	case p == "":
		return errors.New("required: the absolute HDFS directory backups go to, e.g. /kbr-backup")
	case strings.HasPrefix(p, "hdfs://") || strings.HasPrefix(p, "viewfs://"):
		return fmt.Errorf("%q: give the path alone (e.g. /kbr-backup); the NameNodes come from name_nodes or name_service", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not absolute", p)
	case strings.Contains(p, "\\") || strings.Contains(p, ":"):
		return fmt.Errorf("%q: HDFS paths cannot hold ':' or '\\'", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("%q climbs with '..'", p)
		}
	}
	return nil
}

// resolveNameNodes returns the NameNode addresses of a target: its
// name_nodes, or for LocalHDFS those of its name service in the Hadoop client
// configuration of this machine.
func resolveNameNodes(pathType string, t storage.Target) ([]string, error) {
	if len(t.NameNodes) > 0 {
		return t.NameNodes, nil
	}
	if strings.EqualFold(pathType, RemoteType) {
		return nil, storage.Permanent(errors.New("target.name_nodes: required for RemoteHDFS"))
	}
	ns := t.NameService
	if ns == "" {
		ns = DefaultNameService
	}
	conf, dir, err := loadHadoopConf()
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("target.name_nodes: not given, and the Hadoop configuration in %s cannot be read: %w", dir, err))
	}
	if conf == nil {
		return nil, storage.Permanent(fmt.Errorf("target.name_nodes: not given, and no Hadoop client configuration found (set HADOOP_CONF_DIR to the directory holding hdfs-site.xml, or give name_nodes)"))
	}
	nns, err := nameNodesOf(conf, ns)
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("target.name_nodes: not given, and %s: %w", dir, err))
	}
	return nns, nil
}

// loadHadoopConf reads core-site.xml and hdfs-site.xml from HADOOP_CONF_DIR,
// else $HADOOP_HOME/etc/hadoop, else /etc/hadoop/conf.
func loadHadoopConf() (hadoopconf.HadoopConf, string, error) {
	var dirs []string
	if d := os.Getenv("HADOOP_CONF_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if h := os.Getenv("HADOOP_HOME"); h != "" {
		dirs = append(dirs, filepath.Join(h, "etc", "hadoop"))
	}
	dirs = append(dirs, "/etc/hadoop/conf")
	for _, d := range dirs {
		conf, err := hadoopconf.Load(d)
		if err != nil || conf != nil {
			return conf, d, err
		}
	}
	return nil, strings.Join(dirs, ", "), nil
}

// nameNodesOf finds the RPC addresses of name service ns: the HA pair
// (dfs.ha.namenodes.<ns> and dfs.namenode.rpc-address.<ns>.<id>), a single
// dfs.namenode.rpc-address.<ns>, or fs.defaultFS when it names a host:port.
func nameNodesOf(conf hadoopconf.HadoopConf, ns string) ([]string, error) {
	if ids := conf["dfs.ha.namenodes."+ns]; ids != "" {
		var out []string
		for _, id := range strings.Split(ids, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			key := "dfs.namenode.rpc-address." + ns + "." + id
			a := strings.TrimSpace(conf[key])
			if a == "" {
				return nil, fmt.Errorf("name service %q lists NameNode %q but has no %s", ns, id, key)
			}
			out = append(out, a)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	if a := strings.TrimSpace(conf["dfs.namenode.rpc-address."+ns]); a != "" {
		return []string{a}, nil
	}
	for _, key := range []string{"fs.defaultFS", "fs.default.name"} {
		u, err := url.Parse(strings.TrimSpace(conf[key]))
		if err != nil || u.Scheme != "hdfs" || u.Host == "" {
			continue
		}
		if u.Port() != "" {
			return []string{u.Host}, nil
		}
		if u.Host != ns && !isNameService(conf, u.Host) {
			return []string{net.JoinHostPort(u.Host, "8020")}, nil
		}
	}
	return nil, fmt.Errorf("no NameNode address for name service %q (dfs.ha.namenodes.%s, dfs.namenode.rpc-address.%s or fs.defaultFS)", ns, ns, ns)
}

// isNameService reports whether the configuration defines name service ns
// (then hdfs://ns is a logical name, not a host).
func isNameService(conf hadoopconf.HadoopConf, ns string) bool {
	if conf["dfs.ha.namenodes."+ns] != "" || conf["dfs.namenode.rpc-address."+ns] != "" {
		return true
	}
	for _, n := range strings.Split(conf["dfs.nameservices"], ",") {
		if strings.TrimSpace(n) == ns {
			return true
		}
	}
	return false
}

// hdfsUser is the user the client acts as under simple authentication: the
// target's, else HADOOP_USER_NAME (as Hadoop's own clients do), else the OS user.
func hdfsUser(t storage.Target) (string, error) {
	if t.User != "" {
		return t.User, nil
	}
	if u := os.Getenv("HADOOP_USER_NAME"); u != "" {
		return u, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", storage.Permanent(fmt.Errorf("target.user: not given and the OS user is unknown: %w", err))
	}
	return u.Username, nil
}

// kerberosClient logs in with the target's keytab. Errors name the parameter
// at fault; a KDC that cannot be reached is retryable, one that refuses the
// principal or key is not.
func kerberosClient(k *storage.Kerberos) (*krbclient.Client, string, error) {
	if k.Keytab == "" {
		return nil, "", storage.Permanent(errors.New("target.kerberos.keytab: required with kerberos"))
	}
	kt, err := keytab.Load(k.Keytab)
	if err != nil {
		return nil, "", storage.Permanent(fmt.Errorf("target.kerberos.keytab: cannot read the keytab %s: %w", k.Keytab, err))
	}
	confPath := k.Krb5Conf
	if confPath == "" {
		confPath = os.Getenv("KRB5_CONFIG")
	}
	if confPath == "" {
		confPath = "/etc/krb5.conf"
	}
	cfg, err := krbconfig.Load(confPath)
	if err != nil {
		return nil, "", storage.Permanent(fmt.Errorf("target.kerberos.krb5_conf: cannot read %s: %w", confPath, err))
	}
	name, realm, _ := strings.Cut(k.Principal, "@")
	if realm == "" {
		realm = cfg.LibDefaults.DefaultRealm
	}
	if name == "" || realm == "" {
		return nil, "", storage.Permanent(fmt.Errorf("target.kerberos.principal: %q: want user@REALM (no default_realm in %s)", k.Principal, confPath))
	}
	cl := krbclient.NewWithKeytab(name, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		err = fmt.Errorf("kerberos authentication of %s with keytab %s: %w", k.Principal, k.Keytab, err)
		if strings.Contains(err.Error(), "KDC_ERR_") || strings.Contains(err.Error(), "KRB_AP_ERR_") {
			return nil, "", storage.Permanent(err)
		}
		return nil, "", err
	}
	spn := k.ServicePrincipal
	if spn == "" {
		spn = defaultServicePrincipal
		if conf, _, err := loadHadoopConf(); err == nil && conf["dfs.namenode.kerberos.principal"] != "" {
			spn = conf["dfs.namenode.kerberos.principal"]
		}
	}
	spn, _, _ = strings.Cut(spn, "@")
	return cl, spn, nil
}

// cleanRoot is the target path, cleaned.
func cleanRoot(p string) string { return path.Clean(p) }
