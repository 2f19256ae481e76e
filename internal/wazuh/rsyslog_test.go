package wazuh

import (
	"github.com/socflow/socflow/internal/golden"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRsyslogConfGolden compares whole rendered configurations with testdata/rsyslog/.
func TestRsyslogConfGolden(t *testing.T) {
	base := RsyslogConfig{
		CAFile:     "/etc/rsyslog.d/certs/logs-ca.pem",
		CertFile:   "/etc/rsyslog.d/certs/certificate.pem",
		KeyFile:    "/etc/rsyslog.d/certs/certificate.key",
		WorkDir:    "/var/spool/rsyslog",
		OutputFile: "/var/log/collectors/rsyslog/rsyslog.log",
	}
	named := base
	named.Port = 10514
	named.PermittedPeers = []string{"rsyslog-agent", "*.logs.example.com"}
	odd := base
	odd.OutputFile = `/var/log/a "quoted" \dir/rsyslog.log`
	for _, tc := range []struct {
		name string
		in   RsyslogConfig
	}{
		{"certvalid", base},
		{"name", named},
		{"escaped", odd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden.Check(t, filepath.Join("rsyslog", tc.name+".conf"), []byte(RsyslogConf(tc.in)))
		})
	}
}

// TestRsyslogConfAuthMode checks the choice the golden files encode: any CA-signed
// certificate without peers, name matching with them, and never anonymous TLS.
func TestRsyslogConfAuthMode(t *testing.T) {
	open := RsyslogConf(RsyslogConfig{})
	if !strings.Contains(open, `StreamDriver.Authmode="x509/certvalid"`) || strings.Contains(open, "PermittedPeer") {
		t.Fatalf("no peers should mean x509/certvalid without PermittedPeer:\n%s", open)
	}
	if !strings.Contains(open, `port="6514"`) {
		t.Fatalf("port 0 should render the default 6514:\n%s", open)
	}
	named := RsyslogConf(RsyslogConfig{PermittedPeers: []string{"a"}})
	if !strings.Contains(named, `StreamDriver.Authmode="x509/name"`) || !strings.Contains(named, `PermittedPeer=["a"]`) {
		t.Fatalf("peers should mean x509/name with PermittedPeer:\n%s", named)
	}
	for _, conf := range []string{open, named} {
		for _, banned := range []string{"anon", "imuxsock", "imklog"} {
			if strings.Contains(conf, banned) {
				t.Fatalf("config mentions %s:\n%s", banned, conf)
			}
		}
	}
}

// TestRsyslogCommand checks the Pebble command splits back into the same arguments,
// using the POSIX shell as the reference for word splitting.
func TestRsyslogCommand(t *testing.T) {
	for _, tc := range []struct {
		bin, conf, pid string
		want           string
	}{
		{"/usr/sbin/rsyslogd", "/etc/rsyslog.d/wazuh.conf", "/run/rsyslogd-wazuh.pid",
			"/usr/sbin/rsyslogd -n -f /etc/rsyslog.d/wazuh.conf -i /run/rsyslogd-wazuh.pid"},
		{"/opt/rs yslog/rsyslogd", "/etc/it's.conf", "/run/x.pid",
			`'/opt/rs yslog/rsyslogd' -n -f '/etc/it'"'"'s.conf' -i /run/x.pid`},
	} {
		got := RsyslogCommand(tc.bin, tc.conf, tc.pid)
		if got != tc.want {
			t.Fatalf("RsyslogCommand = %q, want %q", got, tc.want)
		}
		out, err := exec.Command("sh", "-c", `set -- `+got+`; for a in "$@"; do printf '%s\n' "$a"; done`).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Join([]string{tc.bin, "-n", "-f", tc.conf, "-i", tc.pid}, "\n") + "\n"
		if string(out) != want {
			t.Fatalf("%q splits into %q, want %q", got, out, want)
		}
	}
}
