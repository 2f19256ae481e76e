package wazuh

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// OssecSettings are the parts of ossec.conf socflow owns; everything else in the file
// (rules, decoders, the repository's own blocks) is kept as it is.
type OssecSettings struct {
	// ClusterName is the <cluster><name>, the same on every node (the instance's name).
	ClusterName string
	// NodeName is this node's <node_name>.
	NodeName string
	// Master says whether this node is the master; workers also stop enrolling agents,
	// since agents must enrol against the master.
	Master bool
	// ClusterKey is the shared <key>.
	ClusterKey string
	// ClusterPort is this node's <cluster><port>.
	ClusterPort int
	// BindAddr is the <bind_addr> the cluster listener binds.
	BindAddr string
	// MasterNode is the master's address in <nodes><node>: a host, or host:port when
	// the master listens on another cluster port than this node.
	MasterNode string
	// AgentPort is the secure <remote><port>.
	AgentPort int
	// EnrolmentPort is the <auth><port>.
	EnrolmentPort int
	// IndexerHosts are the <indexer><hosts>.
	IndexerHosts []string
	// IndexerCA is the path of the indexer's CA file, or "" for none.
	IndexerCA string
	// OpenCTIHookURL and OpenCTIToken fill every custom-opencti-* <integration>;
	// empty leaves them alone.
	OpenCTIHookURL, OpenCTIToken string
	// VulnerabilityDetection is <vulnerability-detection><enabled>.
	VulnerabilityDetection bool
}

// ParseError is a base ossec.conf socflow cannot read as XML: socflow reports it with
// the line, and never pushes or reloads it, so the running configuration stays.
type ParseError struct {
	// Err is the XML parser's error, with its line.
	Err error
}

// Error says where the file is malformed.
func (e *ParseError) Error() string { return "ossec.conf is not valid XML: " + e.Err.Error() }

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.Err }

// EditOssecConf returns base with socflow's settings applied: edits in place, so the
// file's comments, order and every block socflow does not own stay as they were, and
// editing an edited file again changes nothing.
func EditOssecConf(base []byte, s OssecSettings) ([]byte, error) {
	if err := wellFormed(base); err != nil {
		return nil, &ParseError{Err: err}
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(base); err != nil {
		return nil, &ParseError{Err: err}
	}
	// Wazuh reads every top-level <ossec_config>; socflow's blocks go in the first.
	root := doc.SelectElement("ossec_config")
	if root == nil {
		return nil, &ParseError{Err: fmt.Errorf("no <ossec_config> element")}
	}
	roots := doc.SelectElements("ossec_config")

	cluster := single(roots, root, "cluster")
	setText(cluster, "name", s.ClusterName)
	setText(cluster, "node_name", s.NodeName)
	setText(cluster, "node_type", map[bool]string{true: "master", false: "worker"}[s.Master])
	setText(cluster, "key", s.ClusterKey)
	setText(cluster, "port", strconv.Itoa(s.ClusterPort))
	setText(cluster, "bind_addr", s.BindAddr)
	nodes := child(cluster, "nodes")
	for _, n := range nodes.SelectElements("node") {
		nodes.RemoveChild(n)
	}
	nodes.CreateElement("node").SetText(s.MasterNode)
	setText(cluster, "hidden", "no")
	setText(cluster, "disabled", "no")

	remote := secureRemote(roots, root)
	setText(remote, "port", strconv.Itoa(s.AgentPort))

	auth := single(roots, root, "auth")
	setText(auth, "disabled", map[bool]string{true: "no", false: "yes"}[s.Master])
	setText(auth, "port", strconv.Itoa(s.EnrolmentPort))
	setText(auth, "use_password", "yes")

	indexer := single(roots, root, "indexer")
	setText(indexer, "enabled", "yes")
	hosts := child(indexer, "hosts")
	for _, h := range hosts.SelectElements("host") {
		hosts.RemoveChild(h)
	}
	for _, h := range s.IndexerHosts {
		hosts.CreateElement("host").SetText(h)
	}
	ssl := child(indexer, "ssl")
	cas := child(ssl, "certificate_authorities")
	for _, c := range cas.SelectElements("ca") {
		cas.RemoveChild(c)
	}
	if s.IndexerCA != "" {
		cas.CreateElement("ca").SetText(s.IndexerCA)
	}

	if s.OpenCTIHookURL != "" {
		integrations := openCTIIntegrations(roots)
		if len(integrations) == 0 {
			in := root.CreateElement("integration")
			in.CreateElement("name").SetText("custom-opencti")
			in.CreateElement("alert_format").SetText("json")
			integrations = append(integrations, in)
		}
		for _, in := range integrations {
			setText(in, "hook_url", s.OpenCTIHookURL)
			setText(in, "api_key", s.OpenCTIToken)
		}
	}

	vd := single(roots, root, "vulnerability-detection")
	setText(vd, "enabled", map[bool]string{true: "yes", false: "no"}[s.VulnerabilityDetection])

	doc.Indent(2)
	var out bytes.Buffer
	if _, err := doc.WriteTo(&out); err != nil {
		return nil, fmt.Errorf("cannot render ossec.conf: %w", err)
	}
	return out.Bytes(), nil
}

// wellFormed reads every token of b, so a malformed file is reported with the line
// encoding/xml stopped at (etree's own error has no position).
func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// single returns the first <tag> in any <ossec_config>, creating it in root when none
// exists, and removes later duplicates, which Wazuh would merge unpredictably.
func single(roots []*etree.Element, root *etree.Element, tag string) *etree.Element {
	var found *etree.Element
	for _, r := range roots {
		for _, e := range r.SelectElements(tag) {
			if found == nil {
				found = e
				continue
			}
			r.RemoveChild(e)
		}
	}
	if found == nil {
		found = root.CreateElement(tag)
	}
	return found
}

// secureRemote is the <remote> block agents connect to (connection secure), which the
// stock file has beside a syslog one.
func secureRemote(roots []*etree.Element, root *etree.Element) *etree.Element {
	for _, r := range roots {
		for _, e := range r.SelectElements("remote") {
			if c := e.SelectElement("connection"); c == nil || strings.TrimSpace(c.Text()) == "secure" {
				return e
			}
		}
	}
	e := root.CreateElement("remote")
	e.CreateElement("connection").SetText("secure")
	return e
}

// openCTIIntegrations are the <integration> blocks named custom-opencti*.
func openCTIIntegrations(roots []*etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, r := range roots {
		for _, e := range r.SelectElements("integration") {
			if n := e.SelectElement("name"); n != nil && strings.HasPrefix(strings.TrimSpace(n.Text()), "custom-opencti") {
				out = append(out, e)
			}
		}
	}
	return out
}

// child returns parent's first <tag>, creating it when missing.
func child(parent *etree.Element, tag string) *etree.Element {
	if e := parent.SelectElement(tag); e != nil {
		return e
	}
	return parent.CreateElement(tag)
}

// setText sets the text of parent's <tag>, creating it when missing.
func setText(parent *etree.Element, tag, v string) { child(parent, tag).SetText(v) }
