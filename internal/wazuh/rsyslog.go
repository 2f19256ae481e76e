package wazuh

import (
	"fmt"
	"strings"
)

// DefaultRsyslogPort is the port Wazuh's rsyslog listens on for remote syslog over mutual TLS.
const DefaultRsyslogPort = 6514

// RsyslogConfig is what the private rsyslogd of a Wazuh server needs to receive remote
// syslog over mutual TLS and hand it to the manager through a collector file.
type RsyslogConfig struct {
	// IncludeDir holds extra *.conf files (the configuration repository's rsyslog
	// directory), included at the end; "" includes nothing.
	IncludeDir string
	// Port is the TCP port imtcp listens on; 0 means DefaultRsyslogPort (6514).
	Port int
	// CAFile is the logs CA that client certificates must chain to (PEM); rsyslog
	// refuses a client whose certificate it does not sign.
	CAFile string
	// CertFile is the server's certificate chain (PEM, leaf first) presented to clients.
	CertFile string
	// KeyFile is the server certificate's private key (PEM).
	KeyFile string
	// WorkDir is rsyslog's work directory (queue files and state); it must exist.
	WorkDir string
	// OutputFile is the collector file where received lines go, one per message,
	// for the manager to read as a syslog localfile.
	OutputFile string
	// PermittedPeers are optional x509/name patterns (certificate SAN DNS names or CN,
	// "*" wildcards allowed); empty means any certificate signed by CAFile.
	PermittedPeers []string
}

// RsyslogConf renders a standalone rsyslog.conf (RainerScript) for a private instance
// (`rsyslogd -n -f FILE -i PIDFILE`): one imtcp listener over GnuTLS that requires a
// client certificate, received lines written to OutputFile as "TIMESTAMP HOST tag[pid]:
// msg" (the traditional format the manager's syslog pre-decoder parses, for RFC 3164 and
// RFC 5424 senders alike: the charm's template ran an RFC 5424 tag into its message), and
// no system sockets (imuxsock, imklog), so it never competes with a host's own syslog.
// rsyslog's own messages (refused peers, TLS errors) are processed by this instance and
// go to stdout, where the supervisor's log forwarding shows them; by default rsyslog
// would send them to the system's /dev/log, which a container does not have.
func RsyslogConf(c RsyslogConfig) string {
	port := c.Port
	if port == 0 {
		port = DefaultRsyslogPort
	}
	authMode := "x509/certvalid"
	var peers string
	if len(c.PermittedPeers) > 0 {
		authMode = "x509/name"
		quoted := make([]string, len(c.PermittedPeers))
		for i, p := range c.PermittedPeers {
			quoted[i] = rsyslogString(p)
		}
		peers = "\n       PermittedPeer=[" + strings.Join(quoted, ", ") + "]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# rsyslog for the Wazuh server: remote syslog over mutual TLS, rendered by socflow.
global(
  processInternalMessages="on"
  workDirectory=%s
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile=%s
  DefaultNetstreamDriverCertFile=%s
  DefaultNetstreamDriverKeyFile=%s
)

template(name="WazuhSyslog" type="string"
         string="%%TIMESTAMP%% %%HOSTNAME%% %%$.tag%%%%msg:::sp-if-no-1st-sp%%%%msg:::drop-last-lf%%\n")

module(load="imtcp"
       StreamDriver.Name="gtls"
       StreamDriver.Mode="1"
       StreamDriver.Authmode=%s%s)

input(type="imtcp" port="%d" ruleset="remote")

ruleset(name="remote") {
  if $protocol-version == "1" then {
    set $.tag = $app-name & "[" & $procid & "]:";
  } else {
    set $.tag = $syslogtag;
  }
  action(type="omfile" file=%s template="WazuhSyslog")
}

# rsyslog's own messages (the only ones outside the "remote" ruleset).
action(type="omfile" file="/dev/stdout")
`, rsyslogString(c.WorkDir), rsyslogString(c.CAFile), rsyslogString(c.CertFile), rsyslogString(c.KeyFile),
		rsyslogString(authMode), peers, port, rsyslogString(c.OutputFile))
	if c.IncludeDir != "" {
		fmt.Fprintf(&b, "\n# The configuration repository's rsyslog files.\ninclude(file=%s mode=\"optional\")\n", rsyslogString(strings.TrimSuffix(c.IncludeDir, "/")+"/*.conf"))
	}
	return b.String()
}

// RsyslogCommand returns the Pebble service command that runs rsyslogd in the
// foreground (-n, so Pebble supervises it) on confFile, with its pid file at pidFile.
func RsyslogCommand(rsyslogd, confFile, pidFile string) string {
	return strings.Join([]string{shellWord(rsyslogd), "-n", "-f", shellWord(confFile), "-i", shellWord(pidFile)}, " ")
}

// rsyslogString quotes s as a RainerScript string constant, in which backslash and
// double quote are the escaped characters.
func rsyslogString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// shellWord quotes s for Pebble's command splitting (POSIX shell words) when it holds
// anything beyond the characters a path needs.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
