package wazuhstandin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStockConfigParses(t *testing.T) {
	home := t.TempDir()
	raw, err := os.ReadFile("testdata/ossec-stock-4.11.conf")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(home, ossecConfRel), string(raw))
	m, roots, err := LoadManager(home)
	if err != nil {
		t.Fatalf("stock configuration refused: %v", err)
	}
	if len(roots) != 2 {
		t.Errorf("roots = %d, want the two <ossec_config> blocks", len(roots))
	}
	if len(m.Remote) != 1 || m.Remote[0].Port != 1514 || m.Remote[0].Protocol != "tcp" {
		t.Errorf("remote = %+v", m.Remote)
	}
	if m.Auth.Port != 1515 || !m.Auth.UsePassword || m.Auth.Disabled {
		t.Errorf("auth = %+v", m.Auth)
	}
	c := m.Cluster
	if !c.Running() || c.NodeType != "master" || c.NodeName != "wazuh-server-0" || c.Key != "c98b62a9b6169ac5f67dae55ae4a9088" ||
		c.Port != 1516 || len(c.Nodes) != 1 || c.Nodes[0] != "wazuh-server-0.wazuh-server-endpoints" {
		t.Errorf("cluster = %+v", c)
	}
	if m.Integrations != 1 || !m.JSONOut || m.EmailNotification {
		t.Errorf("integrations %d, jsonout %v, email %v", m.Integrations, m.JSONOut, m.EmailNotification)
	}
	for _, d := range startDaemons() {
		if err := CheckDaemon(home, d); err != nil {
			t.Errorf("%s -t refuses the stock configuration: %v", d, err)
		}
	}
}

func TestXMLErrorsAsWazuhReportsThem(t *testing.T) {
	for _, tc := range []struct{ doc, msg string }{
		{"<ossec_config>\n  <global>\n    <x>1</y>\n  </global>\n</ossec_config>\n", "XMLERR: Element 'x' not closed. (line 3)"},
		{"<ossec_config>\n  <global>\n</ossec_config>\n", "XMLERR: Element 'global' not closed. (line 3)"},
		{"</ossec_config>\n", "XMLERR: Element not opened. (line 1)"},
		{"<ossec_config>\n<!-- open\n\n", "XMLERR: Comment not closed. (line 4)"},
		{"<ossec_config>\n  <global>\n", "XMLERR: End of file and some elements were not closed. (line 3)"},
		{"<ossec_config>\n  <a b=c>\n</ossec_config>", "XMLERR: Attribute 'b' not followed by a \" or '. (line 2)"},
	} {
		_, err := ParseXML(tc.doc)
		var xe *XMLError
		if !errors.As(err, &xe) || err.Error() != tc.msg {
			t.Errorf("ParseXML(%q) = %v, want %q", tc.doc, err, tc.msg)
		}
	}
	// Wazuh's parser is lax where encoding/xml is not: entities stay as written,
	// several roots are fine.
	roots, err := ParseXML("<a><b>x & y</b></a><c/>")
	if err != nil || len(roots) != 2 || roots[0].Children[0].Content != "x & y" {
		t.Errorf("lax document: %v %+v", err, roots)
	}
}

func TestCheckDaemonRefusals(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	cluster := func(inner string) string {
		return "<ossec_config>\n<cluster>\n" + inner + "\n</cluster>\n</ossec_config>\n"
	}
	for _, tc := range []struct {
		name, conf, daemon, want string
	}{
		{"malformed", "<ossec_config>\n<global>\n<x></y>\n</global>\n</ossec_config>\n", "wazuh-csyslogd",
			"ERROR: (1226): Error reading XML file 'etc/ossec.conf': XMLERR: Element 'x' not closed. (line 3)."},
		{"bad root", "<ossec>\n</ossec>\n", "wazuh-csyslogd", "ERROR: (1230): Invalid element in the configuration: 'ossec'."},
		{"node type", cluster("<node_name>n</node_name><node_type>boss</node_type><key>" + key + "</key><nodes><node>10.0.0.1</node></nodes>"),
			"wazuh-analysisd", "ERROR: Detected a not allowed node type 'boss'. Valid types are 'master' and 'worker'."},
		{"short key", cluster("<node_name>n</node_name><node_type>master</node_type><key>" + key[1:] + "</key><nodes><node>10.0.0.1</node></nodes>"),
			"wazuh-clusterd", "Error 3004 - Error in cluster configuration: Key must be 32 characters long and only have alphanumeric characters"},
		{"no key", cluster("<node_name>n</node_name><node_type>master</node_type><nodes><node>10.0.0.1</node></nodes>"),
			"wazuh-clusterd", "Error 3004 - Error in cluster configuration: Unspecified key"},
		{"no nodes", cluster("<node_name>n</node_name><node_type>worker</node_type><key>" + key + "</key>"),
			"wazuh-clusterd", "Error 3004 - Error in cluster configuration: Invalid elements in node fields: NODE_IP."},
		{"port", cluster("<node_name>n</node_name><node_type>master</node_type><key>" + key + "</key><port>80</port><nodes><node>10.0.0.1</node></nodes>"),
			"wazuh-clusterd", "Error 3004 - Error in cluster configuration: Port must be higher than 1024 and lower than 65535."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			writeFile(t, filepath.Join(home, ossecConfRel), tc.conf)
			var first string
			for _, d := range startDaemons() {
				if err := CheckDaemon(home, d); err != nil {
					first = d
					var ce *ConfigError
					if !errors.As(err, &ce) {
						t.Fatalf("%s: %v is not a ConfigError", d, err)
					}
					got := ce.Log
					if got == "" {
						got = ce.Printed[0]
					}
					if got != tc.want {
						t.Errorf("%s refuses with %q, want %q", d, got, tc.want)
					}
					break
				}
			}
			if first != tc.daemon {
				t.Errorf("first refusing daemon %q, want %q", first, tc.daemon)
			}
		})
	}
}

func TestAPIConfig(t *testing.T) {
	home := t.TempDir()
	c, err := LoadAPIConfig(home)
	if err != nil || c.Port != 55000 || !c.HTTPS || c.Host != "0.0.0.0" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	writeFile(t, filepath.Join(home, apiYAMLRel), "host: ['127.0.0.1', '::']\nport: 55123\nhttps:\n  enabled: no\naccess:\n  max_login_attempts: 3\n  block_time: 60\n")
	c, err = LoadAPIConfig(home)
	if err != nil || c.Port != 55123 || c.HTTPS || c.Host != "127.0.0.1" || c.MaxLoginAttempts != 3 || c.BlockTime.Seconds() != 60 {
		t.Fatalf("read: %+v %v", c, err)
	}
	writeFile(t, filepath.Join(home, apiYAMLRel), "port: 55000\nbogus: 1\n")
	if _, err := LoadAPIConfig(home); err == nil || !strings.Contains(err.Error(), "('bogus' was unexpected)") {
		t.Fatalf("unknown option accepted: %v", err)
	}
	writeFile(t, filepath.Join(home, apiYAMLRel), "port: '55000'\n")
	if _, err := LoadAPIConfig(home); err == nil || !strings.Contains(err.Error(), "is not of type 'integer'") {
		t.Fatalf("string port accepted: %v", err)
	}
}

func TestFernetKey(t *testing.T) {
	a, b := newFernet("0123456789abcdef0123456789abcdef"), newFernet("fedcba9876543210fedcba9876543210")
	tok := a.seal([]byte("node02 wazuh worker 4.11.0"))
	if plain, err := a.open(tok); err != nil || string(plain) != "node02 wazuh worker 4.11.0" {
		t.Fatalf("same key: %q %v", plain, err)
	}
	if _, err := b.open(tok); !errors.Is(err, errInvalidToken) {
		t.Fatalf("other key opened the message: %v", err)
	}
}

func TestPasswordPolicy(t *testing.T) {
	for pw, want := range map[string]int{
		"Sh0rt!": 5009, strings.Repeat("Aa1!", 17): 5009, "alllowercase1!": 5007, "NoDigits!!": 5007,
		"NoSymbol123": 5007, "ALLUPPER1!": 5007, "Good-Passw0rd": 0, "Aa1!Aa1!": 0,
	} {
		if got := passwordError(pw); got != want {
			t.Errorf("passwordError(%q) = %d, want %d", pw, got, want)
		}
	}
}

func TestTimingsFromEnv(t *testing.T) {
	env := map[string]string{EnvStartDelay: "1s", EnvClusterRetry: "250ms"}
	got, err := TimingsFromEnv(func(k string) string { return env[k] })
	if err != nil || got.Start.String() != "1s" || got.ClusterRetry.String() != "250ms" || got.Settle != RealTimings().Settle {
		t.Fatalf("%+v %v", got, err)
	}
	env[EnvStopDelay] = "soon"
	if _, err := TimingsFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}
