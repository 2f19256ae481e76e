package wazuhstandin

// What `wazuh-control info` and the API report: the stand-in plays Wazuh manager 4.11.0.
const (
	// Version is WAZUH_VERSION of the installation.
	Version = "v4.11.0"
	// Revision is WAZUH_REVISION of the installation.
	Revision = "rc1"
	// InstallType is WAZUH_TYPE: a manager ("server"), not an agent.
	InstallType = "server"
	// APIVersion is api_version in GET / and the version nodes report in the cluster.
	APIVersion = "4.11.0"
)

// daemons is DAEMONS of wazuh-control, the order stop and status walk.
var daemons = []string{"wazuh-clusterd", "wazuh-modulesd", "wazuh-monitord", "wazuh-logcollector",
	"wazuh-remoted", "wazuh-syscheckd", "wazuh-analysisd", "wazuh-maild", "wazuh-execd", "wazuh-db",
	"wazuh-authd", "wazuh-agentlessd", "wazuh-integratord", "wazuh-dbd", "wazuh-csyslogd", "wazuh-apid"}

// optionalDaemons is OP_DAEMONS: start does not wait for their pid files, and
// they exit cleanly when their section is not configured.
var optionalDaemons = map[string]bool{"wazuh-clusterd": true, "wazuh-maild": true, "wazuh-agentlessd": true,
	"wazuh-integratord": true, "wazuh-dbd": true, "wazuh-csyslogd": true}

// pythonDaemons log to their own files and take longer to stop.
var pythonDaemons = map[string]bool{"wazuh-apid": true, "wazuh-clusterd": true}

// startDaemons is SDAEMONS: DAEMONS reversed, the order start and the
// configuration test walk.
func startDaemons() []string {
	out := make([]string, len(daemons))
	for i, d := range daemons {
		out[len(daemons)-1-i] = d
	}
	return out
}

// isDaemon reports whether name is one of the manager's daemons.
func isDaemon(name string) bool {
	for _, d := range daemons {
		if d == name {
			return true
		}
	}
	return false
}
