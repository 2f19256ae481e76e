package wazuh

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/socflow/socflow/internal/golden"
)

// fullSecrets are resolved values for full.yaml, fake but of the right shapes.
var fullSecrets = Secrets{
	AgentPassword: "agent-pass", ClusterKey: "0123456789abcdef0123456789abcdef",
	IndexerPassword: "ix-pass", IndexerCA: "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
	SyslogCert: "CERT", SyslogKey: "KEY", SyslogCA: "LOGSCA", OpenCTIToken: "octi-token",
}

func loadFull(t *testing.T) Instance {
	t.Helper()
	in, err := Load(readTestdata(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// renderPlan writes a plan the way a reviewer reads it: the layer, then every dir
// and file with its mode and content.
func renderPlan(t *testing.T, p Plan) []byte {
	t.Helper()
	y, err := p.Layer.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("# layer\n")
	b.Write(y)
	for _, d := range p.Dirs {
		fmt.Fprintf(&b, "# dir %s %o\n", d.Path, d.Perm)
	}
	for _, f := range p.Files {
		fmt.Fprintf(&b, "# file %s %o\n%s\n", f.Path, f.Perm, f.Content)
	}
	return b.Bytes()
}

func TestNodePlanGolden(t *testing.T) {
	in := loadFull(t)
	base := readTestdata(t, "ossec-stock.conf")
	for k, name := range []string{"plan-master.txt", "plan-worker.txt"} {
		p, err := NodePlan(in, k, fullSecrets, base)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, name, renderPlan(t, p))
	}
}

func ossecOf(t *testing.T, p Plan) *etree.Document {
	t.Helper()
	for _, f := range p.Files {
		if strings.HasSuffix(f.Path, OssecConf) {
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(f.Content); err != nil {
				t.Fatal(err)
			}
			return doc
		}
	}
	t.Fatal("no ossec.conf in the plan")
	return nil
}

func text(doc *etree.Document, path string) string {
	e := doc.FindElement(path)
	if e == nil {
		return "<missing>"
	}
	return strings.TrimSpace(e.Text())
}

// TestClusterBlock checks the parts of ossec.conf a cluster stands on: one key on
// every node, the master named as such, workers pointing at it and enrolment only there.
func TestClusterBlock(t *testing.T) {
	in := loadFull(t)
	base := readTestdata(t, "ossec-stock.conf")
	for k, want := range []struct{ nodeType, nodeName, auth string }{{"master", "soc-master", "no"}, {"worker", "soc-worker", "yes"}} {
		p, err := NodePlan(in, k, fullSecrets, base)
		if err != nil {
			t.Fatal(err)
		}
		doc := ossecOf(t, p)
		for path, v := range map[string]string{
			"//cluster/node_type": want.nodeType, "//cluster/node_name": want.nodeName, "//cluster/name": "soc",
			"//cluster/key": fullSecrets.ClusterKey, "//cluster/port": "1516", "//cluster/nodes/node": "10.0.0.10",
			"//cluster/disabled": "no", "//auth/disabled": want.auth, "//auth/use_password": "yes",
			"//vulnerability-detection/enabled": "no",
		} {
			if got := text(doc, path); got != v {
				t.Errorf("node %d: %s = %q, want %q", k, path, got, v)
			}
		}
		if n := len(doc.FindElements("//cluster/nodes/node")); n != 1 {
			t.Errorf("node %d: %d master nodes listed, want 1", k, n)
		}
	}
}

// TestMasterOnAnotherPort checks the one-host case: a worker whose cluster port
// differs from the master's names the master with its port.
func TestMasterOnAnotherPort(t *testing.T) {
	in := loadFull(t)
	in.Nodes[0].Address, in.Nodes[1].Address = "127.0.0.1", "127.0.0.1"
	in.Nodes[1].ClusterPort, in.Nodes[1].APIPort = 1526, 55010
	p, err := NodePlan(in, 1, fullSecrets, readTestdata(t, "ossec-stock.conf"))
	if err != nil {
		t.Fatal(err)
	}
	doc := ossecOf(t, p)
	if got := text(doc, "//cluster/nodes/node"); got != "127.0.0.1:1516" {
		t.Errorf("worker's master node = %q, want 127.0.0.1:1516", got)
	}
	if got := text(doc, "//cluster/port"); got != "1526" {
		t.Errorf("worker's own cluster port = %q, want 1526", got)
	}
}

// TestOpenCTIIntegrations checks that every custom-opencti-* block gets the URL and
// token, other integrations stay untouched, and a file without one gets one.
func TestOpenCTIIntegrations(t *testing.T) {
	base := []byte(`<ossec_config>
  <integration><name>custom-opencti-alerts</name><hook_url>old</hook_url><level>10</level></integration>
  <integration><name>slack</name><hook_url>https://hooks.slack.com/x</hook_url></integration>
</ossec_config>
<ossec_config>
  <integration><name>custom-opencti-iocs</name><api_key>old</api_key></integration>
</ossec_config>
`)
	s := OssecSettings{OpenCTIHookURL: "https://opencti.example.com/graphql", OpenCTIToken: "tok", Master: true}
	out, err := EditOssecConf(base, s)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		t.Fatal(err)
	}
	for _, in := range doc.FindElements("//integration") {
		name := strings.TrimSpace(in.SelectElement("name").Text())
		hook := strings.TrimSpace(in.SelectElement("hook_url").Text())
		switch {
		case strings.HasPrefix(name, "custom-opencti"):
			if hook != s.OpenCTIHookURL || strings.TrimSpace(in.SelectElement("api_key").Text()) != "tok" {
				t.Errorf("%s not pointed at OpenCTI: %s", name, out)
			}
		case hook != "https://hooks.slack.com/x":
			t.Errorf("%s changed: %s", name, out)
		}
	}
	if got := text(doc, "//integration[name='custom-opencti-alerts']/level"); got != "10" {
		t.Errorf("the integration's own settings were lost: level %q", got)
	}

	out, err = EditOssecConf([]byte("<ossec_config></ossec_config>"), s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("<name>custom-opencti</name>")) {
		t.Errorf("no integration added to a file without one:\n%s", out)
	}
}

// TestOpenCTIByInstance checks the instance form end to end through the pure plan: an
// unresolved spec is refused rather than planned without its integration, and the spec
// WithOpenCTI resolved plans exactly as the same URL and token given by hand — hook_url
// is the handed-over URL + /graphql, api_key the token.
func TestOpenCTIByInstance(t *testing.T) {
	byURL := loadFull(t)
	byName := byURL
	byName.Integrations.OpenCTI = &OpenCTI{Instance: "demo"}
	if err := byName.Validate(); err != nil {
		t.Fatalf("the instance form does not validate: %v", err)
	}
	base := readTestdata(t, "ossec-stock.conf")
	if _, err := NodePlan(byName, 0, fullSecrets, base); err == nil || !strings.Contains(err.Error(), "integrations.opencti.instance demo is not resolved") {
		t.Fatalf("unresolved plan = %v, want it refused", err)
	}
	for _, tt := range []struct{ url, hook string }{
		{"http://localhost:8080", "http://localhost:8080/graphql"},
		{"https://cti.example.com/opencti/", "https://cti.example.com/opencti/graphql"},
	} {
		resolved := byName.WithOpenCTI(tt.url, "store:demo/wazuh-soc-token")
		if err := resolved.Validate(); err != nil {
			t.Fatalf("resolved spec invalid: %v", err)
		}
		if byName.Integrations.OpenCTI.Instance != "demo" {
			t.Fatal("WithOpenCTI changed the spec it was called on")
		}
		got, err := NodePlan(resolved, 1, fullSecrets, base)
		if err != nil {
			t.Fatal(err)
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(got.Files[0].Content); err != nil {
			t.Fatal(err)
		}
		blocks := doc.FindElements("//integration[name='custom-opencti']")
		if len(blocks) != 1 || text(doc, "//integration[name='custom-opencti']/hook_url") != tt.hook ||
			text(doc, "//integration[name='custom-opencti']/api_key") != fullSecrets.OpenCTIToken {
			t.Errorf("url %s: %d custom-opencti blocks, hook_url %q, api_key %q; want one, %s, the token", tt.url, len(blocks),
				text(doc, "//integration[name='custom-opencti']/hook_url"), text(doc, "//integration[name='custom-opencti']/api_key"), tt.hook)
		}
		byHand := byURL
		byHand.Integrations.OpenCTI = &OpenCTI{URL: tt.url, Token: "store:demo/wazuh-soc-token"}
		want, err := NodePlan(byHand, 1, fullSecrets, base)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(renderPlan(t, got), renderPlan(t, want)) {
			t.Errorf("url %s: the resolved plan differs from the same url and token given by hand", tt.url)
		}
	}
}

// TestEditKeepsTheRestAndIsIdempotent checks that socflow edits, never replaces:
// comments and blocks it does not own survive, and a second edit changes nothing.
func TestEditKeepsTheRestAndIsIdempotent(t *testing.T) {
	in := loadFull(t)
	base := readTestdata(t, "ossec-stock.conf")
	set := ossecSettings(in, 0, fullSecrets)
	once, err := EditOssecConf(base, set)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := EditOssecConf(once, set)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once, twice) {
		t.Errorf("editing an edited file changed it:\n%s\n---\n%s", once, twice)
	}
	for _, keep := range []string{"Default configuration for ubuntu 24.04", "<rule_exclude>0215-policy_rules.xml</rule_exclude>", `<wodle name="syscollector">`, "active-responses.log"} {
		if !bytes.Contains(once, []byte(keep)) {
			t.Errorf("edit lost %q", keep)
		}
	}
	if n := bytes.Count(once, []byte("<ossec_config>")); n != 2 {
		t.Errorf("%d <ossec_config> blocks, want the stock file's 2", n)
	}
}

// TestMalformedBaseIsRefusedWithItsLine checks that socflow never plans over a file
// it cannot read: the error names the parser's position.
func TestMalformedBaseIsRefusedWithItsLine(t *testing.T) {
	in := loadFull(t)
	bad := []byte("<ossec_config>\n  <global>\n    <logall>no</logal>\n  </global>\n</ossec_config>\n")
	_, err := NodePlan(in, 0, fullSecrets, bad)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("NodePlan = %v, want a *ParseError", err)
	}
	if !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %q does not name line 3", err)
	}
}

// TestSecretsStayOutOfLayer checks where secrets go: the indexer password only in
// filebeat's environment, never in a file; the cluster key in ossec.conf, mode 0640.
func TestSecretsStayOutOfLayer(t *testing.T) {
	p, err := NodePlan(loadFull(t), 0, fullSecrets, readTestdata(t, "ossec-stock.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if bytes.Contains(f.Content, []byte(fullSecrets.IndexerPassword)) {
			t.Errorf("%s carries the indexer password", f.Path)
		}
		if bytes.Contains(f.Content, []byte(fullSecrets.ClusterKey)) && f.Perm&0o004 != 0 {
			t.Errorf("%s carries the cluster key and is world-readable (%o)", f.Path, f.Perm)
		}
	}
	if got := p.Layer.Services[FilebeatService].Environment["INDEXER_PASSWORD"]; got != fullSecrets.IndexerPassword {
		t.Errorf("filebeat's INDEXER_PASSWORD = %q", got)
	}
	if Mask(FilebeatService, "INDEXER_PASSWORD", "x") == "x" {
		t.Error("Mask shows the indexer password in diffs")
	}
}

func TestNodePlanRejectsMissingSecrets(t *testing.T) {
	s := fullSecrets
	s.ClusterKey = "short"
	if _, err := NodePlan(loadFull(t), 0, s, readTestdata(t, "ossec-stock.conf")); err == nil || !strings.Contains(err.Error(), "32 hexadecimal") {
		t.Errorf("NodePlan with a short cluster key = %v", err)
	}
}

// TestRootPrefixesEveryPath checks a node whose container shares the host's
// filesystem (a local stack): every file, directory and command path, and the paths
// inside ossec.conf and filebeat.yml, are under its root.
func TestRootPrefixesEveryPath(t *testing.T) {
	in := loadFull(t)
	in.Nodes[1].Root = "/srv/node1"
	p, err := NodePlan(in, 1, fullSecrets, readTestdata(t, "ossec-stock.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if !strings.HasPrefix(f.Path, "/srv/node1/") {
			t.Errorf("file %s is outside the root", f.Path)
		}
	}
	for _, d := range p.Dirs {
		if !strings.HasPrefix(d.Path, "/srv/node1/") {
			t.Errorf("dir %s is outside the root", d.Path)
		}
	}
	fb := p.Layer.Services[FilebeatService].Command
	if !strings.Contains(fb, "-c /srv/node1/etc/filebeat/filebeat.yml --path.data /srv/node1/var/lib/filebeat") {
		t.Errorf("filebeat command %q does not read the node's filebeat.yml and data", fb)
	}
	if got := p.Layer.Services[ManagerService].Command; got != "/srv/node1/var/ossec/bin/wazuh-control reload" {
		t.Errorf("manager command %q", got)
	}
	doc := ossecOf(t, p)
	if got := text(doc, "//indexer/ssl/certificate_authorities/ca"); got != "/srv/node1/etc/filebeat/certs/root-ca.pem" {
		t.Errorf("ossec.conf's indexer CA = %q", got)
	}
}

// TestStartOrderedAndShippers: merged restarts come out once each, manager first;
// rsyslog is a shipper only with a TLS listener.
func TestStartOrderedAndShippers(t *testing.T) {
	got := StartOrdered(RsyslogService, FilebeatService, "worker-0", ManagerService, RsyslogService)
	if want := []string{ManagerService, FilebeatService, RsyslogService}; !slices.Equal(got, want) {
		t.Errorf("StartOrdered = %v, want %v", got, want)
	}
	in := loadFull(t)
	if got := in.Shippers(); !slices.Equal(got, []string{FilebeatService, RsyslogService}) {
		t.Errorf("shippers with syslog = %v", got)
	}
	in.Wazuh.Syslog = nil
	if got := in.Shippers(); !slices.Equal(got, []string{FilebeatService}) {
		t.Errorf("shippers without syslog = %v", got)
	}
	if got := in.Nodes[0].APIURL(); got != "https://10.0.0.10:55000" {
		t.Errorf("APIURL = %q", got)
	}
}
