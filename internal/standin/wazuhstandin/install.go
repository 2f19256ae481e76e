package wazuhstandin

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// binaryPackage is the stand-in's main package.
const binaryPackage = "github.com/socflow/socflow/internal/standin/wazuh"

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// Binary builds the stand-in once per test process and returns its path.
func Binary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wazuh-standin-")
		if err != nil {
			buildErr = fmt.Errorf("cannot make a build directory: %w", err)
			return
		}
		built = filepath.Join(dir, "wazuh-control")
		out, err := exec.Command("go", "build", "-o", built, binaryPackage).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("cannot build the wazuh stand-in: %v\n%s", err, out)
		}
	})
	return built, buildErr
}

// Install copies the stand-in to <home>/bin/wazuh-control (creating the
// directories a manager package lays out) and registers a cleanup that runs
// `wazuh-control stop`: the daemons detach, so nothing else would stop them.
func Install(tb testing.TB, home string) error {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "etc", "logs/alerts", "var/run", "queue/cluster", "api/configuration", "tmp", "stats"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o750); err != nil {
			return fmt.Errorf("cannot create %s: %w", d, err)
		}
	}
	src, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("cannot read the stand-in binary: %w", err)
	}
	defer src.Close()
	dst := filepath.Join(home, "bin", "wazuh-control")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o750)
	if err != nil {
		return fmt.Errorf("cannot install wazuh-control: %w", err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return fmt.Errorf("cannot install wazuh-control: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot install wazuh-control: %w", err)
	}
	tb.Cleanup(func() {
		cmd := exec.Command(dst, "stop")
		cmd.Env = append(os.Environ(), EnvStopDelay+"=0s")
		_ = cmd.Run()
	})
	return nil
}

// FastTimings are timings for tests that do not measure slowness: no
// initialisation or settling, the API port open at once, a 200 ms cluster retry.
func FastTimings() Timings {
	return Timings{ClusterRetry: 200 * time.Millisecond}
}

// NodeOptions describe a minimal node for tests of the stand-in itself;
// zero ports mean the real defaults (1514, 1515, 55000).
type NodeOptions struct {
	RemotePort int
	AuthPort   int
	APIPort    int
	// Cluster, when set, adds an enabled <cluster> block.
	Cluster *ClusterOptions
}

// ClusterOptions is the <cluster> block of NodeOptions.
type ClusterOptions struct {
	Name     string // default "wazuh"
	NodeName string
	NodeType string // master or worker
	Key      string
	Port     int    // the cluster port the master listens on
	Master   string // <nodes><node>: the master's address, "host:port" accepted
}

// WriteConfig writes a minimal valid etc/ossec.conf and
// api/configuration/api.yaml for tests of the stand-in (socflow's planner
// writes the real ones), listening on 127.0.0.1 only.
func WriteConfig(home string, o NodeOptions) error {
	def := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
    <alerts_log>yes</alerts_log>
    <email_notification>no</email_notification>
  </global>
  <remote>
    <connection>secure</connection>
    <port>%d</port>
    <protocol>tcp</protocol>
    <local_ip>127.0.0.1</local_ip>
  </remote>
  <auth>
    <disabled>no</disabled>
    <port>%d</port>
    <use_password>yes</use_password>
  </auth>
`, def(o.RemotePort, 1514), def(o.AuthPort, 1515))
	if c := o.Cluster; c != nil {
		name := c.Name
		if name == "" {
			name = "wazuh"
		}
		fmt.Fprintf(&b, `  <cluster>
    <name>%s</name>
    <node_name>%s</node_name>
    <node_type>%s</node_type>
    <key>%s</key>
    <port>%d</port>
    <bind_addr>127.0.0.1</bind_addr>
    <nodes>
      <node>%s</node>
    </nodes>
    <hidden>no</hidden>
    <disabled>no</disabled>
  </cluster>
`, name, c.NodeName, c.NodeType, c.Key, def(c.Port, 1516), c.Master)
	}
	b.WriteString("</ossec_config>\n")
	for _, d := range []string{"etc", "api/configuration"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o750); err != nil {
			return fmt.Errorf("cannot create %s: %w", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, ossecConfRel), b.Bytes(), 0o640); err != nil {
		return fmt.Errorf("cannot write ossec.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(home, "etc/authd.pass"), []byte("Enrol-Pass-1\n"), 0o640); err != nil {
		return fmt.Errorf("cannot write authd.pass: %w", err)
	}
	api := "host: 127.0.0.1\nport: " + strconv.Itoa(def(o.APIPort, 55000)) + "\nhttps:\n  enabled: yes\n"
	if err := os.WriteFile(filepath.Join(home, apiYAMLRel), []byte(api), 0o640); err != nil {
		return fmt.Errorf("cannot write api.yaml: %w", err)
	}
	return nil
}
