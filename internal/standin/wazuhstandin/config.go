package wazuhstandin

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ossecConfRel is how the daemons name the configuration in their messages:
// they run from (or chroot to) the home directory.
const ossecConfRel = "etc/ossec.conf"

// Manager is what the stand-in reads from ossec.conf; every other section of a
// real configuration is accepted and ignored.
type Manager struct {
	JSONOut           bool // <global><jsonout_output>: alerts.json is written
	EmailNotification bool // <global><email_notification>: wazuh-maild is started
	Remote            []Remote
	Auth              Auth
	Cluster           Cluster
	Integrations      int  // <integration> blocks: wazuh-integratord stays up
	SyslogOutputs     int  // <syslog_output> blocks: wazuh-csyslogd stays up
	Agentless         int  // <agentless> blocks: wazuh-agentlessd stays up
	DatabaseOutput    bool // <database_output>: wazuh-dbd stays up
}

// Remote is one <remote> block of the "secure" (agent) kind.
type Remote struct {
	Port     int    // default 1514
	LocalIP  string // <local_ip>, default all addresses
	Protocol string // tcp (the 4.x default) or udp
}

// Auth is the <auth> block that wazuh-authd reads.
type Auth struct {
	Disabled    bool
	Port        int // default 1515
	UsePassword bool
}

// Cluster is the <cluster> block as wazuh-clusterd reads it, defaults filled in
// like framework/wazuh/core/cluster/utils.py read_cluster_config.
type Cluster struct {
	Present  bool // the block exists at all (no block: clusterd is not started)
	Disabled bool
	Name     string
	NodeName string
	NodeType string
	Key      string
	Port     int
	BindAddr string
	Nodes    []string
	Hidden   bool

	portText     string // as written, checked by clusterd
	disabledText string
}

// ConfigError is a refused configuration: the lines the refusing daemon prints
// (without timestamps) and, for wazuh-clusterd, the line it logs to cluster.log.
type ConfigError struct {
	Daemon  string
	Printed []string // "ERROR: ...", "CRITICAL: ..." as the daemon prints them
	Log     string   // cluster.log message (clusterd only)
}

func (e *ConfigError) Error() string {
	if e.Log != "" {
		return e.Daemon + ": " + e.Log
	}
	return e.Daemon + ": " + strings.Join(e.Printed, " ")
}

// configReaders are the C daemons whose -t reads ossec.conf, in no particular order.
var configReaders = map[string]bool{
	"wazuh-csyslogd": true, "wazuh-dbd": true, "wazuh-integratord": true, "wazuh-agentlessd": true,
	"wazuh-authd": true, "wazuh-db": true, "wazuh-execd": true, "wazuh-maild": true,
	"wazuh-analysisd": true, "wazuh-syscheckd": true, "wazuh-remoted": true, "wazuh-logcollector": true,
	"wazuh-monitord": true, "wazuh-modulesd": true,
}

// LoadManager reads <home>/etc/ossec.conf as the C daemons do (XML and root
// elements only); semantic checks are left to CheckDaemon.
func LoadManager(home string) (*Manager, []*Node, error) {
	raw, err := os.ReadFile(filepath.Join(home, ossecConfRel))
	if err != nil {
		return nil, nil, &XMLError{Msg: fmt.Sprintf("XMLERR: File '%s' not found.", ossecConfRel), Line: 0}
	}
	roots, err := ParseXML(string(raw))
	if err != nil {
		return nil, nil, err
	}
	m := &Manager{JSONOut: true}
	for _, r := range roots {
		if r.Name != "ossec_config" && r.Name != "agent_config" {
			return nil, roots, fmt.Errorf("(1230): Invalid element in the configuration: '%s'.", r.Name)
		}
	}
	for _, r := range roots {
		if r.Name != "ossec_config" {
			continue
		}
		m.read(r)
	}
	if len(m.Remote) == 0 {
		m.Remote = nil
	}
	return m, roots, nil
}

func (m *Manager) read(root *Node) {
	for _, sec := range root.Children {
		switch sec.Name {
		case "global":
			if v, ok := sec.Text("jsonout_output"); ok {
				m.JSONOut = v == "yes"
			}
			if v, ok := sec.Text("email_notification"); ok {
				m.EmailNotification = v == "yes"
			}
		case "remote":
			if conn, _ := sec.Text("connection"); conn != "" && conn != "secure" {
				continue
			}
			r := Remote{Port: 1514, Protocol: "tcp"}
			if v, ok := sec.Text("port"); ok {
				r.Port, _ = strconv.Atoi(v)
			}
			r.LocalIP, _ = sec.Text("local_ip")
			if v, ok := sec.Text("protocol"); ok {
				r.Protocol = strings.ToLower(v)
			}
			m.Remote = append(m.Remote, r)
		case "auth":
			m.Auth = Auth{Port: 1515}
			if v, ok := sec.Text("disabled"); ok {
				m.Auth.Disabled = v == "yes"
			}
			if v, ok := sec.Text("port"); ok {
				m.Auth.Port, _ = strconv.Atoi(v)
			}
			if v, ok := sec.Text("use_password"); ok {
				m.Auth.UsePassword = v == "yes"
			}
		case "cluster":
			m.Cluster = readCluster(sec)
		case "integration":
			m.Integrations++
		case "syslog_output":
			m.SyslogOutputs++
		case "agentless":
			m.Agentless++
		case "database_output":
			m.DatabaseOutput = true
		}
	}
}

func readCluster(sec *Node) Cluster {
	c := Cluster{Present: true, Name: "wazuh", NodeName: "node01", NodeType: "master", Port: 1516,
		BindAddr: "0.0.0.0", Nodes: []string{"NODE_IP"}, portText: "1516", disabledText: "no"}
	if v, ok := sec.Text("disabled"); ok {
		c.disabledText = v
		c.Disabled = v == "yes"
	}
	if v, ok := sec.Text("name"); ok {
		c.Name = v
	}
	if v, ok := sec.Text("node_name"); ok {
		c.NodeName = v
	}
	if v, ok := sec.Text("node_type"); ok {
		c.NodeType = v
		if v == "client" {
			c.NodeType = "worker"
		}
	}
	c.Key, _ = sec.Text("key")
	if v, ok := sec.Text("port"); ok {
		c.portText = v
		c.Port, _ = strconv.Atoi(v)
	}
	if v, ok := sec.Text("bind_addr"); ok {
		c.BindAddr = v
	}
	if nodes := sec.Child("nodes"); nodes != nil {
		c.Nodes = nil
		for _, n := range nodes.ChildrenNamed("node") {
			c.Nodes = append(c.Nodes, strings.TrimSpace(n.Content))
		}
	}
	if v, ok := sec.Text("hidden"); ok {
		c.Hidden = v == "yes"
	}
	return c
}

// Running reports whether wazuh-clusterd runs with this configuration.
func (c Cluster) Running() bool { return c.Present && !c.Disabled }

// MasterAddr is where a worker connects: <nodes><node> with the cluster port,
// or "host:port" when the node is written that way (a stand-in extension so
// two nodes can share one machine).
func (c Cluster) MasterAddr() string {
	if len(c.Nodes) == 0 {
		return ""
	}
	n := c.Nodes[0]
	if _, _, err := net.SplitHostPort(n); err == nil {
		return n
	}
	return net.JoinHostPort(n, strconv.Itoa(c.Port))
}

// CheckDaemon runs what `<daemon> -t` checks, on the configuration in home.
func CheckDaemon(home, daemon string) error {
	if daemon == "wazuh-apid" {
		if _, err := LoadAPIConfig(home); err != nil {
			return &ConfigError{Daemon: daemon, Printed: []string{"Configuration not valid. ERROR: " + err.Error()}}
		}
		return nil
	}
	if !configReaders[daemon] && daemon != "wazuh-clusterd" {
		return nil
	}
	m, _, err := LoadManager(home)
	if err != nil {
		if xe, ok := err.(*XMLError); ok {
			return &ConfigError{Daemon: daemon, Printed: []string{
				fmt.Sprintf("ERROR: (1226): Error reading XML file '%s': %s (line %d).", ossecConfRel, xe.Msg, xe.Line),
				fmt.Sprintf("CRITICAL: (1202): Configuration error at '%s'.", ossecConfRel)}}
		}
		return &ConfigError{Daemon: daemon, Printed: []string{"ERROR: " + err.Error(),
			fmt.Sprintf("CRITICAL: (1202): Configuration error at '%s'.", ossecConfRel)}}
	}
	switch daemon {
	case "wazuh-analysisd":
		if msg := m.Cluster.cCheck(); msg != "" {
			return &ConfigError{Daemon: daemon, Printed: []string{"ERROR: " + msg,
				fmt.Sprintf("CRITICAL: (1202): Configuration error at '%s'.", ossecConfRel)}}
		}
	case "wazuh-clusterd":
		if msg := m.Cluster.pythonCheck(); msg != "" {
			return &ConfigError{Daemon: daemon, Log: msg}
		}
	}
	return nil
}

// cCheck is src/config/cluster-config.c Read_Cluster, which the C daemons run.
func (c Cluster) cCheck() string {
	if !c.Present {
		return ""
	}
	switch {
	case c.NodeName == "":
		return "Node name is empty in configuration"
	case c.NodeType == "":
		return "Node type is empty in configuration"
	case c.NodeType != "master" && c.NodeType != "worker":
		return fmt.Sprintf("Detected a not allowed node type '%s'. Valid types are 'master' and 'worker'.", c.NodeType)
	case c.disabledText != "yes" && c.disabledText != "no":
		return fmt.Sprintf("Detected a not allowed value for disabled tag '%s'. Valid values are 'yes' and 'no'.", c.disabledText)
	}
	return ""
}

// pythonCheck is read_cluster_config plus check_cluster_config of the 4.x
// framework, formatted as WazuhError(3004) prints.
func (c Cluster) pythonCheck() string {
	if !c.Present {
		return ""
	}
	bad := func(extra string) string { return "Error 3004 - Error in cluster configuration: " + extra }
	if _, err := strconv.Atoi(c.portText); err != nil {
		return bad("Cluster port must be an integer.")
	}
	if c.disabledText != "yes" && c.disabledText != "no" {
		return bad(fmt.Sprintf("Allowed values for 'disabled' field are 'yes' and 'no'. Found: '%s'", c.disabledText))
	}
	if c.Disabled {
		return ""
	}
	switch {
	case c.Key == "":
		return bad("Unspecified key")
	case len(c.Key) != 32 || !alnum(c.Key):
		return bad("Key must be 32 characters long and only have alphanumeric characters")
	case c.NodeType != "master" && c.NodeType != "worker":
		return bad(fmt.Sprintf("Invalid node type %s. Correct values are master and worker", c.NodeType))
	case c.Port <= 1024 || c.Port >= 65535:
		return bad("Port must be higher than 1024 and lower than 65535.")
	}
	var invalid []string
	for _, n := range c.Nodes {
		switch n {
		case "localhost", "NODE_IP", "0.0.0.0", "127.0.1.1":
			invalid = append(invalid, n)
		}
	}
	if len(invalid) > 0 {
		return bad(fmt.Sprintf("Invalid elements in node fields: %s.", strings.Join(invalid, ", ")))
	}
	return ""
}

func alnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// listenHost maps the "all addresses" spellings to 127.0.0.1: the stand-in runs
// on shared test machines and never listens beyond loopback (a documented
// deviation; any other configured address is used as is).
func listenHost(h string) string {
	switch strings.TrimSpace(h) {
	case "", "0.0.0.0", "::", "any":
		return "127.0.0.1"
	}
	return strings.TrimSpace(h)
}
