package wazuh_test

// Tests of the rendered configuration against the real rsyslogd (Debian's rsyslog and
// rsyslog-gnutls), run under a private Pebble with the wazuh.RsyslogCommand a deploy uses.

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/socflow/socflow/internal/wazuh"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/stacktest"
)

// rsyslogd returns the real rsyslogd the stack provides (SOCFLOW_RSYSLOGD_BIN, else
// Debian's path), failing the test when it is not installed.
func rsyslogd(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SOCFLOW_RSYSLOGD_BIN")
	if bin == "" {
		bin = "/usr/sbin/rsyslogd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("cannot find rsyslogd (apt-get install -y rsyslog rsyslog-gnutls): %v", err)
	}
	return bin
}

// rsyslogSetup is a rendered configuration with real certificates on disk.
type rsyslogSetup struct {
	conf     wazuh.RsyslogConfig
	confFile string
	serverCA *stacktest.CA
	logsCA   *stacktest.CA
}

func newRsyslogSetup(t *testing.T, dir string, peers []string) rsyslogSetup {
	t.Helper()
	serverCA, logsCA := stacktest.NewCA(t, "server-ca"), stacktest.NewCA(t, "logs-ca")
	cert, key, _ := serverCA.Issue(t, "localhost", true)
	c := wazuh.RsyslogConfig{
		Port:           stacktest.FreePort(t),
		CAFile:         logsCA.CertFile,
		CertFile:       cert,
		KeyFile:        key,
		WorkDir:        filepath.Join(dir, "work"),
		OutputFile:     filepath.Join(dir, "collector", "rsyslog.log"),
		PermittedPeers: peers,
	}
	for _, d := range []string{c.WorkDir, filepath.Dir(c.OutputFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := rsyslogSetup{conf: c, confFile: filepath.Join(dir, "rsyslog.conf"), serverCA: serverCA, logsCA: logsCA}
	if err := os.WriteFile(s.confFile, []byte(wazuh.RsyslogConf(c)), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRsyslogConfValidatesWithRealRsyslogd runs `rsyslogd -N1` on rendered configs: one
// with its certificates present (and awkward characters in its paths) passes, and the
// same config without its CA file is refused with rsyslog's own message.
func TestRsyslogConfValidatesWithRealRsyslogd(t *testing.T) {
	bin := rsyslogd(t)
	dir := filepath.Join(t.TempDir(), `it's a "dir"`)
	for _, peers := range [][]string{nil, {"rsyslog-agent", "*.example.com"}} {
		s := newRsyslogSetup(t, dir, peers)
		out, err := exec.Command(bin, "-N1", "-f", s.confFile).CombinedOutput()
		if err != nil {
			t.Fatalf("rsyslogd -N1 refused the rendered config: %v\n%s\n%s", err, out, wazuh.RsyslogConf(s.conf))
		}
		if err := os.Remove(s.conf.CAFile); err != nil {
			t.Fatal(err)
		}
		out, err = exec.Command(bin, "-N1", "-f", s.confFile).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "defaultnetstreamdrivercafile file '"+s.conf.CAFile+"' could not be accessed") {
			t.Fatalf("rsyslogd -N1 without the CA file: %v\n%s", err, out)
		}
	}
}

// startRsyslog runs the real rsyslogd on s under a private Pebble, as a deploy does,
// and returns its pid; the service is stopped, and the process checked gone, at the end.
func startRsyslog(t *testing.T, s rsyslogSetup, dir string) (pc *client.Client, pid int) {
	t.Helper()
	bin := rsyslogd(t)
	pc, err := client.New(&client.Config{Socket: stacktest.Pebble(t)})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "rsyslogd.pid")
	layer := fmt.Sprintf("services:\n  rsyslog:\n    override: replace\n    command: %q\n    startup: enabled\n",
		wazuh.RsyslogCommand(bin, s.confFile, pidFile))
	if err := pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: "rsyslog", LayerData: []byte(layer)}); err != nil {
		t.Fatalf("cannot add the rsyslog layer: %v", err)
	}
	id, err := pc.Start(&client.ServiceOptions{Names: []string{"rsyslog"}})
	if err != nil {
		t.Fatalf("cannot start rsyslog: %v", err)
	}
	if ch, err := pc.WaitChange(id, &client.WaitChangeOptions{Timeout: 30 * time.Second}); err != nil || ch.Err != "" {
		t.Fatalf("rsyslog did not start: %v %v\n%s", err, ch, pebbleLogs(pc))
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.conf.Port)); err == nil && pid > 0 {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd (pid file %q) not listening on %d:\n%s", b, s.conf.Port, pebbleLogs(pc))
		}
	}
	t.Cleanup(func() {
		id, err := pc.Stop(&client.ServiceOptions{Names: []string{"rsyslog"}})
		if err == nil {
			_, err = pc.WaitChange(id, &client.WaitChangeOptions{Timeout: 30 * time.Second})
		}
		if err != nil {
			t.Errorf("cannot stop rsyslog: %v", err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("rsyslogd %d still exists after its service stopped (%v)", pid, err)
		}
	})
	return pc, pid
}

func pebbleLogs(pc *client.Client) string {
	var b bytes.Buffer
	_ = pc.Logs(&client.LogsOptions{WriteLog: func(e client.LogEntry) error { _, err := fmt.Fprintf(&b, "%s\n", e.Message); return err }, N: -1})
	return b.String()
}

// rfc5424 is a syslog message as RFC 5424 frames it, from host wazuh-agent-7.
func rfc5424(msg string) string {
	return fmt.Sprintf("<134>1 %s wazuh-agent-7 socflow-test 4242 ID47 - %s", time.Now().UTC().Format(time.RFC3339Nano), msg)
}

// rfc3164 is a syslog message in the older BSD format, from host wazuh-agent-7.
func rfc3164(msg string) string {
	return fmt.Sprintf("<38>%s wazuh-agent-7 sshd[77]: %s", time.Now().Format(time.Stamp), msg)
}

// waitCollected waits until the collector file holds a line with marker and returns it.
func waitCollected(t *testing.T, file, marker string, pc *client.Client) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, marker) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in %s within 20s; file:\n%s\nrsyslog:\n%s", marker, file, b, pebbleLogs(pc))
		}
	}
}

// TestRsyslogMutualTLS runs the real rsyslogd on the rendered config: a client with a
// certificate from the logs CA gets its line into the collector file; a client without
// a certificate, and one whose certificate another CA signed, are cut off and their
// lines never arrive (checked after a later accepted line has arrived, so not by timing).
func TestRsyslogMutualTLS(t *testing.T) {
	dir := t.TempDir()
	s := newRsyslogSetup(t, dir, nil)
	pc, _ := startRsyslog(t, s, dir)

	roots := x509.NewCertPool()
	roots.AddCert(s.serverCA.Cert())
	_, _, good := s.logsCA.Issue(t, "rsyslog-agent", false)
	_, _, foreign := stacktest.NewCA(t, "other-ca").Issue(t, "rsyslog-agent", false)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)

	if err := stacktest.SendSyslog(t, s.conf.Port, roots, nil, rfc5424("no-cert-"+run)); err == nil {
		t.Fatal("rsyslog kept the connection of a client without a certificate open")
	} else {
		t.Logf("client without a certificate: %v", err)
	}
	if err := stacktest.SendSyslog(t, s.conf.Port, roots, &foreign, rfc5424("other-ca-"+run)); err == nil {
		t.Fatal("rsyslog kept the connection of a client whose certificate another CA signed open")
	} else {
		t.Logf("client from another CA: %v", err)
	}
	if err := stacktest.SendSyslog(t, s.conf.Port, roots, &good, rfc5424("accepted-"+run)); err != nil {
		t.Fatalf("rsyslog refused a client with a logs-CA certificate: %v\n%s", err, pebbleLogs(pc))
	}
	line := waitCollected(t, s.conf.OutputFile, "accepted-"+run, pc)
	if !regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d wazuh-agent-7 socflow-test\[4242\]: accepted-` + run + `$`).MatchString(line) {
		t.Fatalf("RFC 5424 line not written in the traditional format: %q", line)
	}
	if err := stacktest.SendSyslog(t, s.conf.Port, roots, &good, rfc3164("bsd-"+run)); err != nil {
		t.Fatalf("rsyslog refused a client with a logs-CA certificate: %v", err)
	}
	line = waitCollected(t, s.conf.OutputFile, "bsd-"+run, pc)
	if !regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d wazuh-agent-7 sshd\[77\]: bsd-` + run + `$`).MatchString(line) {
		t.Fatalf("RFC 3164 line not written in the traditional format: %q", line)
	}
	b, _ := os.ReadFile(s.conf.OutputFile)
	for _, refused := range []string{"no-cert-" + run, "other-ca-" + run} {
		if strings.Contains(string(b), refused) {
			t.Fatalf("refused client's line %q reached the collector file:\n%s", refused, b)
		}
	}
	if strings.Contains(string(b), "rsyslogd") {
		t.Fatalf("rsyslog's own messages went to the collector file:\n%s", b)
	}
	// rsyslog says why, on stdout where Pebble collects it.
	logs := pebbleLogs(pc)
	for _, want := range []string{"peer did not provide a certificate, not permitted to talk to it",
		"not permitted to talk to peer, certificate invalid: signer not found"} {
		if !strings.Contains(logs, want) {
			t.Errorf("rsyslog's log lacks %q:\n%s", want, logs)
		}
	}
}

// TestRsyslogPermittedPeers runs the real rsyslogd with x509/name: a logs-CA client
// whose name matches a permitted pattern is accepted, one whose name does not is cut off.
func TestRsyslogPermittedPeers(t *testing.T) {
	dir := t.TempDir()
	s := newRsyslogSetup(t, dir, []string{"*.agents.example.com"})
	pc, _ := startRsyslog(t, s, dir)
	roots := x509.NewCertPool()
	roots.AddCert(s.serverCA.Cert())
	_, _, permitted := s.logsCA.Issue(t, "web-1.agents.example.com", false)
	_, _, stranger := s.logsCA.Issue(t, "intruder.example.org", false)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)

	if err := stacktest.SendSyslog(t, s.conf.Port, roots, &stranger, rfc5424("stranger-"+run)); err == nil {
		t.Fatal("rsyslog kept the connection of a logs-CA client whose name is not permitted open")
	}
	if err := stacktest.SendSyslog(t, s.conf.Port, roots, &permitted, rfc5424("permitted-"+run)); err != nil {
		t.Fatalf("rsyslog refused a permitted peer: %v\n%s", err, pebbleLogs(pc))
	}
	waitCollected(t, s.conf.OutputFile, "permitted-"+run, pc)
	if b, _ := os.ReadFile(s.conf.OutputFile); strings.Contains(string(b), "stranger-"+run) {
		t.Fatalf("a peer that is not permitted got its line in:\n%s", b)
	}
	if logs, want := pebbleLogs(pc), "peer name not authorized -  not permitted to talk to it. Names: DNSname: intruder.example.org"; !strings.Contains(logs, want) {
		t.Errorf("rsyslog's log lacks %q:\n%s", want, logs)
	}
}
