package filebeatstandin

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/yaml"
)

// wazuhFilesets are the filesets of Wazuh's filebeat module (wazuh-filebeat-0.4) the
// stand-in knows how to ship: what the module's ingest pipeline does to each is done
// here (keys of the JSON line at the root, @timestamp from the alert's timestamp,
// _index = index_prefix + the alert's day).
var wazuhFilesets = map[string]bool{"alerts": true, "archives": true}

// moduleInputs turns filebeat.modules into inputs as libbeat's module registry does:
// the module must be installed under path.home/module (a fileset is a directory with
// a manifest.yml, whose var defaults apply), only configured filesets run, and the
// refusals keep filebeat's words.
func moduleInputs(fb tree, paths Paths, tm Timings, notes func(string)) ([]Input, error) {
	list, _ := fb["modules"].([]any)
	if len(list) == 0 {
		return nil, nil
	}
	modulesPath := filepath.Join(paths.Home, "module")
	if st, err := os.Stat(modulesPath); err != nil || !st.IsDir() {
		notes("Not loading modules. Module directory not found: " + modulesPath)
		return nil, nil
	}
	var inputs []Input
	for _, it := range list {
		m, _ := it.(tree)
		name := str(m, "module")
		if name == "" || !boolAt(m, "enabled", true) {
			continue
		}
		available, err := moduleFilesets(modulesPath, name)
		if err != nil {
			return nil, fmt.Errorf("error getting filesets for module %s: %w", name, err)
		}
		var configured []string
		for k := range m {
			if k != "module" && k != "enabled" && k != "path" {
				configured = append(configured, k)
			}
		}
		sort.Strings(configured)
		n := 0
		for _, fs := range configured {
			fcfg, _ := m[fs].(tree)
			if fcfg == nil {
				fcfg = tree{}
			}
			if !boolAt(fcfg, "enabled", true) {
				continue
			}
			if !available[fs] {
				return nil, fmt.Errorf("fileset %s/%s is configured but doesn't exist", name, fs)
			}
			if name != "wazuh" || !wazuhFilesets[fs] {
				return nil, fmt.Errorf("fileset %s/%s: the filebeat stand-in ships only the wazuh module's alerts and archives", name, fs)
			}
			vars, err := manifestVars(filepath.Join(modulesPath, name, fs, "manifest.yml"))
			if err != nil {
				return nil, fmt.Errorf("error reading fileset %s/%s: %w", name, fs, err)
			}
			if ov, ok := fcfg["var"].(tree); ok {
				for k, v := range ov {
					vars[k] = v
				}
			}
			in := Input{
				Type: "log", Module: name, Fileset: fs, JSON: true, KeysUnderRoot: true,
				Paths:         strs(tree{"p": vars["paths"]}, "p"),
				IndexPrefix:   str(tree{"p": vars["index_prefix"]}, "p"),
				ScanFrequency: tm.ScanFrequency, Backoff: tm.Backoff, MaxBackoff: tm.MaxBackoff,
			}
			if len(in.Paths) == 0 {
				return nil, fmt.Errorf("error getting config for fileset %s/%s: each input must have at least one path defined", name, fs)
			}
			inputs = append(inputs, in)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("module %s is configured but has no enabled filesets", name)
		}
	}
	return inputs, nil
}

// moduleFilesets lists a module's filesets: its subdirectories holding a manifest.yml.
func moduleFilesets(modulesPath, module string) (map[string]bool, error) {
	entries, err := os.ReadDir(filepath.Join(modulesPath, module))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(modulesPath, module, e.Name(), "manifest.yml")); e.IsDir() && err == nil {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// manifestVars reads the var defaults of a fileset's manifest.yml.
func manifestVars(file string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var mf struct {
		Var []struct {
			Name    string `json:"name"`
			Default any    `json:"default"`
		} `json:"var"`
	}
	if err := yaml.Unmarshal(b, &mf); err != nil {
		return nil, err
	}
	vars := map[string]any{}
	for _, v := range mf.Var {
		vars[v.Name] = v.Default
	}
	return vars, nil
}
