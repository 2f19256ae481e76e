package wazuh

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/socflow/socflow/internal/spec"
)

var versionRE = regexp.MustCompile(`^4\.[0-9]{1,3}\.[0-9]{1,3}$`)

// MaxNodes bounds the cluster: Wazuh documents clusters of a master and a handful of
// workers, and every node is one more container socflow reconciles in turn.
const MaxNodes = 16

// Validate checks every field of i as given and returns a *spec.ValidationError
// listing all problems, or nil; call it on WithDefaults' result.
func (i Instance) Validate() error {
	var c spec.Checker
	c.Name("name", i.Name, "set name to a short lowercase identifier such as soc",
		"pick a name like soc; it names the instance's secrets and workflows")
	settings(&c, i.Wazuh)
	nodes(&c, i.Nodes)
	integrations(&c, i.Integrations)
	c.Logs(i.Logs)
	return c.Err()
}

func settings(c *spec.Checker, w Settings) {
	const p = "wazuh."
	if !versionRE.MatchString(w.Version) {
		c.Add(p+"version", fmt.Sprintf("must be a Wazuh 4 release such as 4.11.0 (got %q)", w.Version),
			"use the version the container image runs (wazuh-control info prints it)")
	}
	c.AbsPath(p+"home", w.Home)
	c.AbsPath(p+"filebeatDir", w.FilebeatDir)
	c.Command(p+"filebeatCommand", w.FilebeatCommand)
	c.AbsPath(p+"rsyslogd", w.Rsyslogd)
	c.AbsPath(p+"rsyslogDir", w.RsyslogDir)
	c.AbsPath(p+"logsDir", w.LogsDir)
	c.Secret(p+"agentPassword", w.AgentPassword, false, nil)
	c.Secret(p+"clusterKey", w.ClusterKey, false, func(v string) (string, string) {
		if err := CheckClusterKey(v); err != nil {
			return "must be 32 hexadecimal characters", "generate one with `openssl rand -hex 16`, or leave it unset for socflow to generate"
		}
		return "", ""
	})
	if px := w.Proxy; px != nil {
		proxyURL(c, p+"proxy.http", px.HTTP)
		proxyURL(c, p+"proxy.https", px.HTTPS)
		if strings.ContainsAny(px.NoProxy, " \t\n") {
			c.Add(p+"proxy.noProxy", "must be a comma-separated list without spaces", "write it as host1,.domain,10.0.0.0/8")
		}
	}
	if r := w.ConfigRepo; r != nil {
		configRepo(c, p+"configRepo.", *r)
	}
	if e := w.Exporter; e != nil {
		c.Command(p+"exporter.command", e.Command)
		c.Port(p+"exporter.port", e.Port)
	}
	if s := w.Syslog; s != nil {
		c.Secret(p+"syslog.cert", s.Cert, true, nil)
		c.Secret(p+"syslog.key", s.Key, true, nil)
		c.Secret(p+"syslog.ca", s.CA, true, nil)
	}
}

func proxyURL(c *spec.Checker, field, v string) {
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.Add(field, fmt.Sprintf("must be a proxy URL such as http://proxy:3128 (got %q)", v), "write it as http://host:port")
	}
}

// repoURLRE is git+ssh://user@host[:port]/path@ref: the charm's format, kept so that
// existing configurations carry over unchanged.
var repoURLRE = regexp.MustCompile(`^git\+ssh://([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?(/[^@\s]+)@([^\s@]+)$`)

func configRepo(c *spec.Checker, p string, r ConfigRepo) {
	if !repoURLRE.MatchString(r.URL) {
		c.Add(p+"url", fmt.Sprintf("must be git+ssh://user@host[:port]/path@ref (got %q)", r.URL),
			"name the user, host, repository path and the branch, tag or commit after @, e.g. git+ssh://git@git.example.com/wazuh-config.git@main")
	}
	c.Secret(p+"sshKey", r.SSHKey, true, nil)
	switch {
	case strings.TrimSpace(r.HostKey) == "":
		c.Add(p+"hostKey", "is required: socflow never trusts a host key on first use",
			"pin the server's key: run `ssh-keyscan -t ed25519 HOST` where you trust the network, check its fingerprint with the server's admin, and paste the line without the host name")
	default:
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.HostKey)); err != nil {
			c.Add(p+"hostKey", "is not an SSH public key line: "+err.Error(),
				"paste one line such as \"ssh-ed25519 AAAA…\" (the server's /etc/ssh/ssh_host_ed25519_key.pub)")
		}
	}
}

func nodes(c *spec.Checker, ns []Node) {
	switch {
	case len(ns) == 0:
		c.Add("nodes", "must list at least one node", "add the master: nodes: [{pebble: {socket: /path/.pebble.socket}}]")
		return
	case len(ns) > MaxNodes:
		c.Add("nodes", fmt.Sprintf("lists %d nodes, more than %d", len(ns), MaxNodes), "run at most one master and 15 workers per instance")
	}
	names := map[string]int{}
	for k, n := range ns {
		at := fmt.Sprintf("nodes[%d].", k)
		if c.Name(at+"name", n.Name, "name the node, e.g. soc-0", "pick a name like soc-1") {
			if prev, dup := names[n.Name]; dup {
				c.Add(at+"name", fmt.Sprintf("repeats nodes[%d].name %q", prev, n.Name), "give every node its own name: the cluster tells nodes apart by name")
			}
			names[n.Name] = k
		}
		c.PebbleAt(at+"pebble", n.Pebble)
		c.Host(at+"address", n.Address)
		if n.Root != "" {
			c.AbsPath(at+"root", n.Root)
		}
		ports := map[int]string{}
		for _, pt := range []struct {
			field string
			v     int
		}{{"apiPort", n.APIPort}, {"agentPort", n.AgentPort}, {"enrolmentPort", n.EnrolmentPort}, {"clusterPort", n.ClusterPort}, {"syslogPort", n.SyslogPort}} {
			c.Port(at+pt.field, pt.v)
			if other, dup := ports[pt.v]; dup && pt.v != 0 {
				c.Add(at+pt.field, fmt.Sprintf("is %d, the same port as %s", pt.v, other), "give each listener of a node its own port")
			}
			ports[pt.v] = pt.field
		}
	}
}

func integrations(c *spec.Checker, in Integrations) {
	if in.Indexer == nil {
		c.Add("integrations.indexer", "is required: filebeat ships the alerts there",
			"add integrations.indexer with the wazuh-indexer URLs, credentials and CA")
	} else {
		c.OpenSearchAt("integrations.indexer", *in.Indexer)
	}
	if o := in.OpenCTI; o != nil {
		openCTI(c, *o)
	}
}

// openCTI checks integrations.opencti: either instance (an OpenCTI instance socflow
// runs, which hands over its URL and a connector user's token at deploy time) or url
// and token, never both, since socflow could not tell which to point Wazuh at.
func openCTI(c *spec.Checker, o OpenCTI) {
	const p = "integrations.opencti."
	if o.Instance != "" {
		var given []string
		if o.URL != "" {
			given = append(given, "url")
		}
		if !o.Token.IsZero() {
			given = append(given, "token")
		}
		for _, f := range given {
			c.Add(p+f, "is set together with integrations.opencti.instance",
				"either name the OpenCTI instance socflow runs (it hands over its URL and a connector token), or give url and token, not both: remove "+strings.Join(given, " and ")+" or instance")
		}
		c.Name(p+"instance", o.Instance, "",
			"give the name of an OpenCTI instance socflow runs, as `starter status NAME` knows it")
		return
	}
	if msg := spec.URLProblem(o.URL, true); msg != "" {
		c.Add(p+"url", msg, "set integrations.opencti.url to the platform's base URL, e.g. https://opencti.example.com, or name an OpenCTI instance socflow runs with integrations.opencti.instance")
	}
	c.Secret(p+"token", o.Token, true, nil)
}
