package wazuhstandin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main is the stand-in binary: installed as <home>/bin/wazuh-control it is the
// control script; started under a daemon's name (<home>/bin/wazuh-apid, ...)
// it is that daemon. Like the real script it finds <home> from its own path,
// dirname of args[0] made absolute and then "..", without resolving symlinks;
// a leading "-home DIR" overrides that for tests. It returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return 1
	}
	argv0, rest := args[0], args[1:]
	home := ""
	if len(rest) >= 2 && rest[0] == "-home" {
		home, rest = rest[1], rest[2:]
	}
	if home == "" {
		dir, err := filepath.Abs(filepath.Dir(argv0))
		if err != nil {
			fmt.Fprintf(stderr, "cannot find the installation directory: %v\n", err)
			return 1
		}
		home = filepath.Dir(dir)
	}
	home, _ = filepath.Abs(home)
	t, err := TimingsFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if name := filepath.Base(argv0); isDaemon(name) {
		return runDaemon(name, home, t, stdout)
	}
	c := &control{home: home, out: stdout, errOut: stderr, t: t}
	return c.run(argv0, rest)
}

// control is one run of wazuh-control.
type control struct {
	home        string
	out, errOut io.Writer
	t           Timings
	daemons     []string // DAEMONS, minus wazuh-execd for reload
}

func (c *control) path(rel ...string) string {
	return filepath.Join(append([]string{c.home}, rel...)...)
}

func (c *control) printf(format string, args ...any) { fmt.Fprintf(c.out, format+"\n", args...) }

func (c *control) run(argv0 string, args []string) int {
	c.daemons = daemons
	action, arg := "", ""
	if len(args) > 0 {
		action = args[0]
	}
	if len(args) > 1 {
		arg = args[1]
	}
	for _, d := range []string{"var/run", "logs/alerts", "queue/cluster", "tmp"} {
		_ = os.MkdirAll(c.path(d), 0o750)
	}
	switch action {
	case "start":
		if !c.testConfig() {
			return 1
		}
		if !c.lock() {
			return 1
		}
		defer c.unlock()
		return c.start()
	case "stop":
		if !c.lock() {
			return 1
		}
		defer c.unlock()
		c.stop()
		return 0
	case "restart":
		return c.restart()
	case "reload":
		c.daemons = nil
		for _, d := range daemons {
			if d != "wazuh-execd" {
				c.daemons = append(c.daemons, d)
			}
		}
		return c.restart()
	case "status":
		if !c.lock() {
			return 1
		}
		defer c.unlock()
		return c.status()
	case "info":
		return c.info(argv0, arg)
	}
	return c.help(argv0)
}

func (c *control) help(argv0 string) int {
	c.printf("")
	c.printf("Usage: %s [-j] {start|stop|restart|status|enable|disable|info [-v -r -t]}", argv0)
	c.printf("")
	c.printf("    -j    Use JSON output.")
	return 1
}

func (c *control) info(argv0, arg string) int {
	switch arg {
	case "":
		c.printf("WAZUH_VERSION=%q", Version)
		c.printf("WAZUH_REVISION=%q", Revision)
		c.printf("WAZUH_TYPE=%q", InstallType)
	case "-v":
		c.printf("%s", Version)
	case "-r":
		c.printf("%s", Revision)
	case "-t":
		c.printf("%s", InstallType)
	default:
		c.printf("Invalid flag: %s", arg)
		return c.help(argv0)
	}
	return 0
}

func (c *control) restart() int {
	touch(c.path("var/run/.restart"))
	if !c.testConfig() {
		return 1
	}
	if !c.lock() {
		return 1
	}
	defer c.unlock()
	c.stop()
	code := c.start()
	_ = os.Remove(c.path("var/run/.restart"))
	return code
}

// testConfig is the script's testconfig: every daemon's -t, in start order;
// the first refusal ends the command before anything is stopped.
func (c *control) testConfig() bool {
	ossecLog := newFileLog(c.home, ossecLogRel)
	for _, d := range startDaemons() {
		err := CheckDaemon(c.home, d)
		if err == nil {
			continue
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			for _, p := range ce.Printed {
				if d == "wazuh-apid" {
					c.printf("%s", p)
					continue
				}
				fmt.Fprintf(c.errOut, "%s %s: %s\n", time.Now().Format(logStamp), d, p)
				ossecLog.line(d + ": " + p)
			}
			if ce.Log != "" {
				newFileLog(c.home, clusterLogRel).clusterf("ERROR", "Cluster", "Main", "%s", ce.Log)
			}
		}
		c.printf("%s: Configuration error. Exiting", d)
		if _, err := os.Stat(c.path("var/run/.restart")); err != nil {
			touch(c.path("var/run", d+".failed"))
		}
		removeGlob(c.path("var/run/*.start"))
		_ = os.Remove(c.path("var/run/.restart"))
		return false
	}
	return true
}

// pidFiles returns the pids in <home>/var/run/<daemon>-*.pid, by file.
func (c *control) pidFiles(daemon string) map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(c.path("var/run", daemon+"-*.pid"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			out[f] = pid
		}
	}
	return out
}

// pstatus is the script's pstatus: a daemon runs when one of its pid files
// names a live process; files naming dead processes are removed.
func (c *control) pstatus(daemon string) bool {
	for f, pid := range c.pidFiles(daemon) {
		if !alive(pid) {
			c.printf("%s: Process %d not used by Wazuh, removing...", daemon, pid)
			_ = os.Remove(f)
			continue
		}
		return true
	}
	return false
}

// alive reports whether pid names a process that has not exited.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func (c *control) status() int {
	code := 0
	for _, d := range c.daemons {
		if c.pstatus(d) {
			c.printf("%s is running...", d)
		} else {
			c.printf("%s not running...", d)
			code = 1
		}
	}
	return code
}

func (c *control) stop() {
	for _, d := range c.daemons {
		if c.pstatus(d) {
			c.printf("Killing %s...", d)
			for _, pid := range c.pidFiles(d) {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				if !waitExit(pid, 600, 100*time.Millisecond) {
					c.printf("Process %s couldn't be terminated. It will be killed.", d)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		} else {
			c.printf("%s not running...", d)
		}
		removeGlob(c.path("var/run", d+"-*.pid"))
	}
	c.printf("Wazuh %s Stopped", Version)
}

// waitExit is the script's wait_pid: tries checks of pid, every, until it is gone.
func waitExit(pid, tries int, every time.Duration) bool {
	for i := 0; i < tries; i++ {
		if !alive(pid) {
			return true
		}
		time.Sleep(every)
	}
	return !alive(pid)
}

// skipped reports the daemons start leaves alone, with the script's own tests:
// maild without e-mail notification, clusterd without an enabled <cluster>
// block, authd without an enabled <auth> block.
func skipped(d string, m *Manager, authPresent bool) bool {
	switch d {
	case "wazuh-maild":
		return !m.EmailNotification
	case "wazuh-clusterd":
		return !m.Cluster.Running()
	case "wazuh-authd":
		return !authPresent || m.Auth.Disabled
	}
	return false
}

func (c *control) start() int {
	c.printf("Starting Wazuh %s...", Version)
	m, roots, err := LoadManager(c.home)
	if err != nil {
		c.printf("wazuh-analysisd: Configuration error. Exiting")
		return 1
	}
	authPresent := false
	for _, r := range roots {
		if r.Child("auth") != nil {
			authPresent = true
		}
	}
	self, err := os.Executable()
	if err != nil {
		c.printf("cannot find the stand-in binary: %v", err)
		return 1
	}
	for _, d := range startDaemons() {
		if skipped(d, m, authPresent) {
			continue
		}
		if c.pstatus(d) {
			c.printf("%s already running...", d)
			continue
		}
		_ = os.Remove(c.path("var/run", d+".failed"))
		touch(c.path("var/run", d+".start"))
		if !c.spawn(self, d) {
			c.printf("%s did not start correctly.", d)
			_ = os.Remove(c.path("var/run", d+".start"))
			touch(c.path("var/run", d+".failed"))
			removeGlob(c.path("var/run/*.start"))
			_ = os.Remove(c.path("var/run/.restart"))
			return 1
		}
		c.printf("Started %s...", d)
	}
	time.Sleep(c.t.Settle)
	c.printf("Completed.")
	removeGlob(c.path("var/run/*.start"))
	return 0
}

// spawn starts daemon detached (own session, stdio to ossec.log) and, unless
// it is optional, waits up to 60 s for its pid file as the script does.
func (c *control) spawn(self, daemon string) bool {
	logf, err := os.OpenFile(c.path(ossecLogRel), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o660)
	if err != nil {
		return false
	}
	defer logf.Close()
	cmd := &exec.Cmd{Path: self, Args: []string{c.path("bin", daemon), "-home", c.home}, Dir: c.home,
		Stdout: logf, Stderr: logf, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		return false
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if optionalDaemons[daemon] {
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, pid := range c.pidFiles(daemon) {
			if pid == cmd.Process.Pid {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// lock is the script's start-script-lock directory, taken over from a dead holder.
func (c *control) lock() bool {
	dir := c.path("var/start-script-lock")
	for i := 0; ; i++ {
		if err := os.Mkdir(dir, 0o750); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o640)
			return true
		}
		time.Sleep(time.Second)
		raw, err := os.ReadFile(filepath.Join(dir, "pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && perr == nil && !alive(pid) {
			c.unlock()
			continue
		}
		if i+1 >= 60 {
			c.printf("ERROR: Another instance is locking this process.")
			c.printf("If you are sure that no other instance is running, please remove %s", dir)
			return false
		}
	}
}

func (c *control) unlock() { _ = os.RemoveAll(c.path("var/start-script-lock")) }

func touch(path string) {
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o640); err == nil {
		_ = f.Close()
	}
}

func removeGlob(pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, f := range files {
		_ = os.Remove(f)
	}
}
