package wazuh

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// Names shared with the activities that push the layer and start services.
const (
	// LayerLabel is the Pebble layer label of every Wazuh node.
	LayerLabel = "wazuh"
	// AliveCheck is the TCP check of the Wazuh API port: the manager's daemons detach
	// from `wazuh-control`, so the API answering is how Pebble sees them.
	AliveCheck = "wazuh-alive"
	// InstanceEnv names the instance on every service socflow plans, so a plan of
	// another instance is recognised before it replaces this one.
	InstanceEnv = "SOCFLOW_INSTANCE"
	// OssecConf is ossec.conf's path under the manager's home.
	OssecConf = "etc/ossec.conf"
	// APICert is the Wazuh API's certificate under the home, written at its first start.
	APICert = "api/configuration/ssl/server.crt"
)

// FilebeatKillDelay lets filebeat flush its in-flight batch before SIGKILL.
const FilebeatKillDelay = 10 * time.Second

// Plan is what one node's container receives.
type Plan struct {
	// Layer holds the manager, filebeat and rsyslog services and the alive check.
	Layer layer.Layer
	// Files are pushed before the services start, in order.
	Files []layer.File
	// Dirs must exist before the services start.
	Dirs []layer.Dir
}

// NodePlan is node k's plan: base is the ossec.conf the container has now (the
// image's, or the configuration repository's), which socflow edits, never replaces.
func NodePlan(in Instance, k int, s Secrets, base []byte) (Plan, error) {
	if k < 0 || k >= len(in.Nodes) {
		return Plan{}, fmt.Errorf("cannot plan node %d: the instance has %d nodes", k, len(in.Nodes))
	}
	if o := in.OpenCTIInstance(); o != "" {
		// Planned as is, the custom-opencti-* blocks would silently keep whatever they
		// point at: the deploy must first take the URL and token from that instance.
		return Plan{}, fmt.Errorf("cannot plan node %d: integrations.opencti.instance %s is not resolved to a URL and token yet (WithOpenCTI)", k, o)
	}
	if err := SecretTable.CheckResolved(&in, &s); err != nil {
		return Plan{}, fmt.Errorf("cannot plan wazuh instance %s: %w", in.Name, err)
	}
	w, n := in.Wazuh, in.Nodes[k]
	home, fbDir := n.Path(w.Home), n.Path(w.FilebeatDir)
	ossec, err := EditOssecConf(base, ossecSettings(in, k, s))
	if err != nil {
		return Plan{}, err
	}

	env := map[string]string{InstanceEnv: in.Name}
	if px := w.Proxy; px != nil {
		for k, v := range map[string]string{"HTTP_PROXY": px.HTTP, "HTTPS_PROXY": px.HTTPS, "NO_PROXY": px.NoProxy} {
			if v != "" {
				env[k], env[strings.ToLower(k)] = v, v
			}
		}
	}
	p := Plan{
		Layer: layer.Layer{
			Summary:     "wazuh server node " + n.Name,
			Description: "Written by socflow for Wazuh instance " + in.Name + "; changes made by hand are reverted at the next reconcile.",
			Services: map[string]layer.Service{
				ManagerService: {
					Summary:  "wazuh manager (wazuh-control reload: checks ossec.conf, then (re)starts the daemons, which detach)",
					Override: layer.OverrideReplace, Startup: layer.StartupEnabled,
					Command:     path.Join(home, "bin/wazuh-control") + " reload",
					Environment: env,
					// The command ends once the daemons run; its exit is not a failure to restart.
					OnSuccess: layer.ActionIgnore, OnFailure: layer.ActionIgnore,
				},
			},
			Checks: map[string]layer.Check{
				AliveCheck: {
					Override: layer.OverrideReplace, Level: layer.LevelAlive,
					Period: layer.Duration(10 * time.Second), Timeout: layer.Duration(3 * time.Second), Threshold: 3,
					TCP: &layer.TCPCheck{Port: n.APIPort, Host: "127.0.0.1"},
				},
			},
		},
		Dirs: []layer.Dir{{Path: path.Join(home, "etc"), Perm: 0o770}, {Path: path.Join(home, "api/configuration"), Perm: 0o770},
			{Path: fbDir, Perm: 0o755}, {Path: n.Path(FilebeatData), Perm: 0o750}},
		Files: []layer.File{
			{Path: path.Join(home, OssecConf), Content: ossec, Perm: 0o640},
			{Path: path.Join(home, "etc/authd.pass"), Content: []byte(s.AgentPassword + "\n"), Perm: 0o640},
			{Path: path.Join(home, "api/configuration/api.yaml"), Content: []byte(apiYAML(n)), Perm: 0o640},
		},
	}

	fbEnv := map[string]string{InstanceEnv: in.Name}
	if s.IndexerPassword != "" {
		fbEnv["INDEXER_PASSWORD"] = s.IndexerPassword
	}
	caPath := ""
	if s.IndexerCA != "" {
		caPath = path.Join(fbDir, "certs/root-ca.pem")
		p.Dirs = append(p.Dirs, layer.Dir{Path: path.Dir(caPath), Perm: 0o755})
		p.Files = append(p.Files, layer.File{Path: caPath, Content: []byte(s.IndexerCA), Perm: 0o644})
	}
	fbConf := path.Join(fbDir, "filebeat.yml")
	p.Files = append(p.Files, layer.File{Path: fbConf, Content: []byte(filebeatYAML(in, n, caPath)), Perm: 0o600})
	p.Layer.Services[FilebeatService] = layer.Service{
		Summary:  "filebeat: ships the manager's alerts to the indexer",
		Override: layer.OverrideReplace, Startup: layer.StartupEnabled,
		Command: w.FilebeatCommand + " -c " + fbConf + " --path.data " + n.Path(FilebeatData), Environment: fbEnv,
		After: []string{ManagerService}, KillDelay: layer.Duration(FilebeatKillDelay),
	}

	if sy := w.Syslog; sy != nil {
		dir, logs := n.Path(w.RsyslogDir), n.Path(w.LogsDir)
		rc := RsyslogConfig{
			Port:   n.SyslogPort,
			CAFile: path.Join(dir, "certs/logs-ca.pem"), CertFile: SyslogCertPath(in, k), KeyFile: path.Join(dir, "certs/server.key"),
			WorkDir: path.Join(dir, "work"), OutputFile: path.Join(logs, "remote.log"),
		}
		if w.ConfigRepo != nil {
			rc.IncludeDir = path.Join(dir, RsyslogRepoDir)
		}
		conf := path.Join(dir, "rsyslog.conf")
		p.Dirs = append(p.Dirs, layer.Dir{Path: path.Join(dir, "certs"), Perm: 0o750}, layer.Dir{Path: rc.WorkDir, Perm: 0o750}, layer.Dir{Path: logs, Perm: 0o750})
		p.Files = append(p.Files,
			layer.File{Path: rc.CAFile, Content: []byte(s.SyslogCA), Perm: 0o644},
			layer.File{Path: rc.CertFile, Content: []byte(s.SyslogCert), Perm: 0o644},
			layer.File{Path: rc.KeyFile, Content: []byte(s.SyslogKey), Perm: 0o600},
			layer.File{Path: conf, Content: []byte(RsyslogConf(rc)), Perm: 0o644},
		)
		p.Layer.Services[RsyslogService] = layer.Service{
			Summary:  "rsyslog: remote logs over mutual TLS on port " + strconv.Itoa(n.SyslogPort),
			Override: layer.OverrideReplace, Startup: layer.StartupEnabled,
			Command:     RsyslogCommand(w.Rsyslogd, conf, path.Join(rc.WorkDir, "rsyslogd.pid")),
			Environment: map[string]string{InstanceEnv: in.Name},
		}
	}
	p.Layer = p.Layer.WithLoki(in.Logs.LokiURL(), spec.LogLabels("wazuh", in.Name, "socflow_node", n.Name))
	return p, nil
}

// ossecSettings derives node k's part of ossec.conf from the spec.
func ossecSettings(in Instance, k int, s Secrets) OssecSettings {
	n, master := in.Nodes[k], in.Master()
	masterNode := master.Address
	if master.ClusterPort != n.ClusterPort {
		// Only when two nodes share a host (a local stack): Wazuh's <node> is a host,
		// and every node listens on the same <port> in a real cluster.
		masterNode = master.Address + ":" + strconv.Itoa(master.ClusterPort)
	}
	set := OssecSettings{
		ClusterName: in.Name, NodeName: n.Name, Master: k == 0,
		ClusterKey: s.ClusterKey, ClusterPort: n.ClusterPort, BindAddr: bindAddr(n.Address),
		MasterNode: masterNode, AgentPort: n.AgentPort, EnrolmentPort: n.EnrolmentPort,
		IndexerHosts:           in.Integrations.Indexer.URLs,
		VulnerabilityDetection: *in.Wazuh.VulnerabilityDetection,
	}
	if s.IndexerCA != "" {
		set.IndexerCA = path.Join(n.Path(in.Wazuh.FilebeatDir), "certs/root-ca.pem")
	}
	if o := in.Integrations.OpenCTI; o != nil && o.URL != "" {
		set.OpenCTIHookURL = strings.TrimSuffix(o.URL, "/") + "/graphql"
		set.OpenCTIToken = s.OpenCTIToken
	}
	return set
}

// bindAddr is where a node's listeners bind: its address when that is an IP (a local
// stack keeps everything on 127.0.0.1), every interface when it is a host name.
func bindAddr(address string) string {
	if _, err := netip.ParseAddr(address); err == nil {
		return address
	}
	return "0.0.0.0"
}

// apiYAML is the Wazuh API's api.yaml: its port and bind address, HTTPS on.
func apiYAML(n Node) string {
	return fmt.Sprintf("# Written by socflow.\nhost: %s\nport: %d\nhttps:\n  enabled: yes\n", bindAddr(n.Address), n.APIPort)
}

// filebeatYAML is filebeat.yml: the wazuh module reading the alerts file, the
// indexer's hosts, user and CA; the password comes from INDEXER_PASSWORD in the
// service's environment, so it is never written to a file.
func filebeatYAML(in Instance, n Node, caPath string) string {
	ix := in.Integrations.Indexer
	var b strings.Builder
	b.WriteString("# Written by socflow for Wazuh instance " + in.Name + ".\n")
	b.WriteString("filebeat.modules:\n  - module: wazuh\n    alerts:\n      enabled: true\n")
	fmt.Fprintf(&b, "      var.paths: [%q]\n", path.Join(n.Path(in.Wazuh.Home), "logs/alerts/alerts.json"))
	b.WriteString("    archives:\n      enabled: false\n")
	b.WriteString("setup.template.enabled: false\nsetup.ilm.enabled: false\n")
	b.WriteString("output.elasticsearch:\n  hosts:\n")
	for _, u := range ix.URLs {
		fmt.Fprintf(&b, "    - %q\n", u)
	}
	if ix.Username != "" {
		fmt.Fprintf(&b, "  username: %q\n  password: \"${INDEXER_PASSWORD}\"\n", ix.Username)
	}
	if caPath != "" {
		fmt.Fprintf(&b, "  ssl.certificate_authorities: [%q]\n  ssl.verification_mode: full\n", caPath)
	}
	return b.String()
}

// RsyslogRepoDir is where, under the rsyslog dir, the configuration repository's
// rsyslog files go; rsyslog.conf includes its *.conf.
const RsyslogRepoDir = "conf.d"

// RepoComponent is one directory of the configuration repository: where it goes in a
// node's container and which service reads it.
type RepoComponent struct {
	// Name is the repository directory (var/ossec, rsyslog, filebeat).
	Name string
	// Dest is the directory in the container (as its Pebble sees it).
	Dest string
	// Service is the service to restart when it changes.
	Service string
}

// RepoComponents are the configuration repository's directories for node k: var/ossec
// over the manager's home (its etc/ossec.conf then being the base socflow edits),
// rsyslog into the included conf.d, filebeat into the filebeat dir (socflow's own
// filebeat.yml is written after it).
func RepoComponents(in Instance, k int) []RepoComponent {
	n, w := in.Nodes[k], in.Wazuh
	return []RepoComponent{
		{Name: "var/ossec", Dest: n.Path(w.Home), Service: ManagerService},
		{Name: "rsyslog", Dest: n.Path(path.Join(w.RsyslogDir, RsyslogRepoDir)), Service: RsyslogService},
		{Name: "filebeat", Dest: n.Path(w.FilebeatDir), Service: FilebeatService},
	}
}

// RepoMarkerDir is where the configuration repository's markers live in node k's
// container: outside every component, so no component's files can overwrite them.
func RepoMarkerDir(in Instance, k int) string {
	return in.Nodes[k].Path("/var/lib/socflow/config-repo")
}
