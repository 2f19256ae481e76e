package filebeatstandin

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"
)

// LookupEnv finds an environment variable as os.LookupEnv does; ${VAR} references in
// filebeat.yml resolve through it.
type LookupEnv func(string) (string, bool)

// Paths are filebeat's path.* settings, resolved as libbeat resolves them: home
// defaults to the binary's directory, config to home, data to home/data, logs to
// home/logs.
type Paths struct {
	Home, Config, Data, Logs string
}

// Config is what a filebeat.yml says that the stand-in acts on.
type Config struct {
	// File is the configuration file as read (-c, relative to path.config).
	File string
	// Inputs are the enabled inputs: filebeat.inputs and the filesets of
	// filebeat.modules, in that order.
	Inputs []Input
	// Output is output.elasticsearch.
	Output Output
	// inputErr is an input the crawler cannot start; like filebeat, only a run
	// reports it (`test config` builds the beater but starts no input).
	inputErr error
}

// Input is one log input: the files it reads and how lines become documents.
type Input struct {
	// Type is "log" or "filestream".
	Type string
	// Paths are glob patterns of the files to read.
	Paths []string
	// Module and Fileset name the module fileset this input comes from ("wazuh",
	// "alerts"); empty for filebeat.inputs.
	Module, Fileset string
	// IndexPrefix is the fileset's var.index_prefix: the Wazuh module's ingest
	// pipeline routes each alert to IndexPrefix + the alert's day.
	IndexPrefix string
	// JSON decodes each line as a JSON object (json.* options, and the Wazuh module).
	JSON bool
	// KeysUnderRoot puts the decoded keys at the document's root, not under "json".
	KeysUnderRoot bool
	// ScanFrequency, Backoff and MaxBackoff are the input's scan_frequency,
	// backoff and max_backoff (defaults from the timings).
	ScanFrequency, Backoff, MaxBackoff time.Duration
}

// Output is the elasticsearch output's settings.
type Output struct {
	// Hosts are the nodes' base URLs ("host:port" gets protocol, port defaults to 9200).
	Hosts []*url.URL
	// Username and Password are sent as HTTP basic auth when Username is set.
	Username, Password string
	// CAs are ssl.certificate_authorities: PEM files of the CAs trusted for the nodes.
	CAs []string
	// Certificate and Key are ssl.certificate and ssl.key, a client certificate.
	Certificate, Key string
	// VerificationMode is ssl.verification_mode: full (default), certificate or none.
	VerificationMode string
	// Index is output.elasticsearch.index ("" for the default).
	Index string
	// BackoffInit and BackoffMax are backoff.init and backoff.max.
	BackoffInit, BackoffMax time.Duration
	// BulkMaxSize is bulk_max_size, the most events in one _bulk request (default 50).
	BulkMaxSize int
}

// beatVersion is the filebeat release Wazuh 4.x ships (filebeat-oss 7.10.2).
const beatVersion = "7.10.2"

// defaultIndex is libbeat's index when ILM is off and none is configured.
const defaultIndex = "filebeat-" + beatVersion + "-%{+yyyy.MM.dd}"

// errNoInputs is filebeat's refusal to run with nothing to read.
var errNoInputs = errors.New("no modules or inputs enabled and configuration reloading disabled. What files do you want me to watch?")

// loadConfig reads and parses file as filebeat does before anything else, applying
// the -E overrides; its errors are the text filebeat prints after "Exiting: ".
func loadConfig(file string, overrides []string, strictPerms bool) (tree, error) {
	if strictPerms {
		if err := ownerHasExclusiveWritePerms(file); err != nil {
			return nil, fmt.Errorf("error loading config file: %w", err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("error loading config file: %w", err)
	}
	t, err := parseYAML(b)
	if err != nil {
		return nil, fmt.Errorf("error loading config file: %w", err)
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("error loading config file: invalid -E setting %q, want key=value", o)
		}
		var val any
		if yaml.Unmarshal([]byte(v), &val) != nil || val == nil {
			val = v
		}
		setPath(t, strings.Split(k, "."), normalize(val))
	}
	return t, nil
}

// buildConfig reads the settings of a loaded config in the order libbeat builds the
// beat (output first, then modules and inputs) and returns them, or the error filebeat
// exits with. ${VAR} references resolve through env; notes receives the non-fatal
// complaints filebeat logs on the way (a missing module directory).
func buildConfig(t tree, file string, paths Paths, env LookupEnv, tm Timings, notes func(string)) (*Config, error) {
	var err error
	c := &Config{File: file}
	// libbeat builds the publisher (output) before the beater (modules, inputs).
	if c.Output, err = outputConfig(t, file, env, tm); err != nil {
		return nil, err
	}
	if err := checkIndexTemplate(t, c.Output.Index); err != nil {
		return nil, err
	}
	fb, err := expand(t["filebeat"], "filebeat", file, env)
	if err != nil {
		return nil, err
	}
	fbt, _ := fb.(tree)
	mods, err := moduleInputs(fbt, paths, tm, notes)
	if err != nil {
		return nil, err
	}
	list, _ := lookup(fbt, "inputs")
	items, _ := list.([]any)
	for _, it := range items {
		m, _ := it.(tree)
		if m == nil || !boolAt(m, "enabled", true) {
			continue
		}
		in, err := plainInput(m, tm)
		switch {
		case err == nil:
			c.Inputs = append(c.Inputs, in)
		case c.inputErr == nil:
			c.inputErr = fmt.Errorf("Failed to start crawler: starting input failed: Error while initializing input: %w", err)
		}
	}
	c.Inputs = append(c.Inputs, mods...)
	if len(c.Inputs) == 0 && c.inputErr == nil {
		return nil, errNoInputs
	}
	return c, nil
}

// outputConfig reads output.elasticsearch, expanding its variables.
func outputConfig(t tree, file string, env LookupEnv, tm Timings) (Output, error) {
	outs, _ := t["output"].(tree)
	var enabled []string
	for name, v := range outs {
		if m, ok := v.(tree); !ok || boolAt(m, "enabled", true) {
			enabled = append(enabled, name)
		}
	}
	sort.Strings(enabled)
	switch {
	case len(enabled) == 0:
		return Output{}, errors.New("No outputs are defined. Please define one under the output section.")
	case len(enabled) > 1:
		return Output{}, fmt.Errorf("error unpacking output config: more than one namespace configured accessing 'output' (source:'%s')", file)
	case enabled[0] != "elasticsearch":
		return Output{}, fmt.Errorf("error initializing publisher: the filebeat stand-in ships to elasticsearch only, not output.%s", enabled[0])
	}
	raw, err := expand(outs["elasticsearch"], "output.elasticsearch", file, env)
	if err != nil {
		return Output{}, fmt.Errorf("error initializing publisher: %w", err)
	}
	es, _ := raw.(tree)
	fail := func(format string, a ...any) (Output, error) {
		return Output{}, fmt.Errorf("error initializing publisher: "+format, a...)
	}
	o := Output{
		Username:         str(es, "username"),
		Password:         str(es, "password"),
		Certificate:      str(es, "ssl.certificate"),
		Key:              str(es, "ssl.key"),
		VerificationMode: str(es, "ssl.verification_mode"),
		Index:            str(es, "index"),
		BulkMaxSize:      50,
	}
	o.CAs = strs(es, "ssl.certificate_authorities")
	if o.VerificationMode == "" {
		o.VerificationMode = "full"
	}
	switch o.VerificationMode {
	case "full", "certificate", "none":
	default:
		return fail("unknown verification mode '%s' accessing 'output.elasticsearch.ssl.verification_mode' (source:'%s')", o.VerificationMode, file)
	}
	if n, ok := lookup(es, "bulk_max_size"); ok {
		if f, ok := n.(float64); ok && f > 0 {
			o.BulkMaxSize = int(f)
		}
	}
	if o.BackoffInit, err = durationAt(es, "backoff.init", tm.OutputBackoffInit); err != nil {
		return fail("%v accessing 'output.elasticsearch.backoff.init' (source:'%s')", err, file)
	}
	if o.BackoffMax, err = durationAt(es, "backoff.max", tm.OutputBackoffMax); err != nil {
		return fail("%v accessing 'output.elasticsearch.backoff.max' (source:'%s')", err, file)
	}
	hosts := strs(es, "hosts")
	if len(hosts) == 0 {
		return fail("missing required field accessing 'output.elasticsearch.hosts' (source:'%s')", file)
	}
	protocol := str(es, "protocol")
	if protocol == "" {
		protocol = "http"
	}
	for i, h := range hosts {
		u, err := hostURL(h, protocol, str(es, "path"))
		if err != nil {
			return fail("%v accessing 'output.elasticsearch.hosts.%d' (source:'%s')", err, i, file)
		}
		o.Hosts = append(o.Hosts, u)
	}
	return o, nil
}

// hostURL makes a node's base URL as libbeat's MakeURL does.
func hostURL(h, protocol, path string) (*url.URL, error) {
	if !strings.Contains(h, "://") {
		h = protocol + "://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return nil, err
	}
	if u.Port() == "" {
		u.Host = u.Hostname() + ":9200"
		if strings.Contains(u.Hostname(), ":") {
			u.Host = "[" + u.Hostname() + "]:9200"
		}
	}
	if path != "" && (u.Path == "" || u.Path == "/") {
		u.Path = "/" + strings.Trim(path, "/")
	}
	return u, nil
}

// checkIndexTemplate is libbeat's refusal of a custom index without a template for it.
func checkIndexTemplate(t tree, index string) error {
	if index == "" || !boolAt(t, "setup.template.enabled", true) {
		return nil
	}
	if str(t, "setup.template.name") == "" || str(t, "setup.template.pattern") == "" {
		return errors.New("setup.template.name and setup.template.pattern have to be set if index name is modified")
	}
	return nil
}

// plainInput reads one entry of filebeat.inputs.
func plainInput(m tree, tm Timings) (Input, error) {
	in := Input{Type: str(m, "type"), Paths: strs(m, "paths")}
	if in.Type == "" {
		in.Type = "log"
	}
	if in.Type != "log" && in.Type != "filestream" {
		return in, fmt.Errorf("Error creating input. No such input type exist: '%s'", in.Type)
	}
	if len(in.Paths) == 0 {
		return in, errors.New("each input must have at least one path defined")
	}
	if _, ok := m["json"]; ok {
		in.JSON, in.KeysUnderRoot = true, boolAt(m, "json.keys_under_root", false)
	}
	var err error
	if in.ScanFrequency, err = durationAt(m, "scan_frequency", tm.ScanFrequency); err != nil {
		return in, err
	}
	if in.Backoff, err = durationAt(m, "backoff", tm.Backoff); err != nil {
		return in, err
	}
	in.MaxBackoff, err = durationAt(m, "max_backoff", tm.MaxBackoff)
	return in, err
}

// ownerHasExclusiveWritePerms is libbeat's strict.perms check of the config file.
func ownerHasExclusiveWritePerms(name string) error {
	info, err := os.Stat(name)
	if err != nil {
		return err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	euid := os.Geteuid()
	if ok && int(st.Uid) != euid && st.Uid != 0 {
		return fmt.Errorf(`config file ("%v") must be owned by the user identifier (uid=%v) or root`, name, euid)
	}
	if perm := info.Mode().Perm(); perm&0o022 > 0 {
		abs, _ := filepath.Abs(name)
		return fmt.Errorf(`config file ("%v") can only be writable by the owner but the permissions are "%v" (to fix the permissions use: 'chmod go-w %v')`, name, perm, abs)
	}
	return nil
}

// str reads a scalar at a dotted path as a string ("" when absent).
func str(t tree, path string) string {
	v, ok := lookup(t, path)
	if !ok || v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// strs reads a list of strings at a dotted path; a scalar is a list of one, as ucfg unpacks it.
func strs(t tree, path string) []string {
	v, ok := lookup(t, path)
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return []string{str(tree{"v": v}, "v")}
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, str(tree{"v": e}, "v"))
	}
	return out
}

// boolAt reads a boolean at a dotted path, def when absent.
func boolAt(t tree, path string, def bool) bool {
	v, ok := lookup(t, path)
	if !ok {
		return def
	}
	switch v := v.(type) {
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(v)
		if err == nil {
			return b
		}
	}
	return def
}

// durationAt reads a duration ("10s", or a number of seconds) at a dotted path.
func durationAt(t tree, path string, def time.Duration) (time.Duration, error) {
	v, ok := lookup(t, path)
	if !ok || v == nil {
		return def, nil
	}
	switch v := v.(type) {
	case float64:
		return time.Duration(v * float64(time.Second)), nil
	case string:
		return time.ParseDuration(v)
	}
	return 0, fmt.Errorf("cannot read %v as a duration", v)
}
