package filebeatstandin

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cmdline is a parsed filebeat command line.
type cmdline struct {
	command     []string // "run", "version", "test config"; empty means run
	configs     []string // -c (last wins here; filebeat merges several)
	overrides   []string // -E key=value
	toStderr    bool     // -e
	strictPerms bool     // --strict.perms (default true)
	paths       Paths
	timings     Timings
}

// usage is the short help cobra prints after a usage error.
const usage = `Usage:
  filebeat [flags]
  filebeat [command]

Available Commands:
  run         Run filebeat
  test        Test config
  version     Show current version info

Flags:
  -E, --E setting=value      Configuration overwrite
  -c, --c string             Configuration file, relative to path.config (default "filebeat.yml")
  -d, --d string             Enable certain debug selectors
  -e, --e                    Log to stderr and disable syslog/file output
      --path.config string   Configuration path
      --path.data string     Data path
      --path.home string     Home path
      --path.logs string     Logs path
      --strict.perms         Strict permission checking on config files (default true)
  -v, --v                    Log at INFO level
`

// valueFlags and boolFlags are filebeat's global flags (libbeat's Go flags as cobra
// exposes them: one-letter names also as -x shorthands).
var (
	valueFlags = map[string]bool{"c": true, "E": true, "d": true, "M": true, "path.home": true, "path.config": true,
		"path.data": true, "path.logs": true, "environment": true, "system.hostfs": true, "modules": true, "cpuprofile": true,
		"memprofile": true, "httpprof": true}
	boolFlags = map[string]bool{"e": true, "v": true, "strict.perms": true, "once": true, "N": true, "setup": true}
)

// parseArgs reads filebeat's command line; timing flags (--standin.*) are the stand-in's own.
func parseArgs(args []string, env LookupEnv) (*cmdline, error) {
	fs := flag.NewFlagSet("filebeat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tm, err := addTimingFlags(fs, env)
	if err != nil {
		return nil, err
	}
	cl := &cmdline{strictPerms: true}
	values := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			cl.command = append(cl.command, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			cl.command = append(cl.command, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") && len(name) > 1 {
			// A shorthand cluster such as -path.home: only -cFILE / -EFOO=bar forms are flags.
			if !valueFlags[name[:1]] {
				return nil, fmt.Errorf("unknown shorthand flag: '%c' in %s", name[0], a)
			}
			name, val, hasVal = name[:1], strings.TrimPrefix(a, "-"+name[:1]), true
		}
		switch {
		case fs.Lookup(name) != nil:
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: --%s", name)
				}
				i++
				val = args[i]
			}
			if err := fs.Set(name, val); err != nil {
				return nil, fmt.Errorf("invalid argument %q for \"--%s\" flag: %v", val, name, err)
			}
		case valueFlags[name]:
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: %s", a)
				}
				i++
				val = args[i]
			}
			switch name {
			case "c":
				cl.configs = append(cl.configs, val)
			case "E":
				cl.overrides = append(cl.overrides, val)
			default:
				values[name] = val
			}
		case boolFlags[name]:
			b := true
			if hasVal {
				if b, err = strconv.ParseBool(val); err != nil {
					return nil, fmt.Errorf("invalid argument %q for \"--%s\" flag: %v", val, name, err)
				}
			}
			switch name {
			case "e":
				cl.toStderr = b
			case "strict.perms":
				cl.strictPerms = b
			}
		case strings.HasPrefix(a, "--"):
			return nil, fmt.Errorf("unknown flag: --%s", name)
		default:
			return nil, fmt.Errorf("unknown shorthand flag: '%c' in %s", name[0], a)
		}
	}
	cl.timings = *tm
	cl.paths = resolvePaths(values)
	return cl, nil
}

// resolvePaths applies libbeat's path defaults: home is the binary's directory.
func resolvePaths(v map[string]string) Paths {
	p := Paths{Home: v["path.home"], Config: v["path.config"], Data: v["path.data"], Logs: v["path.logs"]}
	if p.Home == "" {
		if exe, err := os.Executable(); err == nil {
			p.Home = filepath.Dir(exe)
		}
	}
	abs := func(s string) string {
		if a, err := filepath.Abs(s); err == nil {
			return a
		}
		return s
	}
	p.Home = abs(p.Home)
	if p.Config == "" {
		p.Config = p.Home
	}
	if p.Data == "" {
		p.Data = filepath.Join(p.Home, "data")
	}
	if p.Logs == "" {
		p.Logs = filepath.Join(p.Home, "logs")
	}
	p.Config, p.Data, p.Logs = abs(p.Config), abs(p.Data), abs(p.Logs)
	return p
}

// configFile is the file -c names (default filebeat.yml), relative to path.config.
func (cl *cmdline) configFile() string {
	f := "filebeat.yml"
	if len(cl.configs) > 0 {
		f = cl.configs[len(cl.configs)-1]
	}
	if !filepath.IsAbs(f) {
		f = filepath.Join(cl.paths.Config, f)
	}
	return f
}
