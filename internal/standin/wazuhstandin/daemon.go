package wazuhstandin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// daemon is one running manager daemon.
type daemon struct {
	name    string
	home    string
	t       Timings
	m       *Manager
	ossec   *fileLog
	cluster *fileLog
	api     *fileLog
}

// runDaemon is a daemon process, started detached by the control: it reads the
// configuration, initialises (Timings.initDelay), opens what it serves, writes
// var/run/<name>-<pid>.pid and runs until SIGTERM, when it removes the pid
// file. Killed with -9 it leaves the pid file behind, as the real ones do.
func runDaemon(name, home string, t Timings, stdout io.Writer) int {
	d := &daemon{name: name, home: home, t: t, ossec: newFileLog(home, ossecLogRel),
		cluster: newFileLog(home, clusterLogRel), api: newFileLog(home, apiLogRel)}
	m, _, err := LoadManager(home)
	if err != nil {
		d.ossec.daemonf(name, "CRITICAL", "(1202): Configuration error at '%s'.", ossecConfRel)
		return 1
	}
	d.m = m
	switch {
	case name == "wazuh-csyslogd" && m.SyslogOutputs == 0:
		d.ossec.daemonf(name, "INFO", "Remote syslog server not configured. Clean exit.")
		return 0
	case name == "wazuh-integratord" && m.Integrations == 0:
		d.ossec.daemonf(name, "INFO", "Remote integrations not configured. Clean exit.")
		return 0
	case name == "wazuh-agentlessd" && m.Agentless == 0:
		d.ossec.daemonf(name, "INFO", "Not configured. Exiting.")
		return 0
	case name == "wazuh-dbd" && !m.DatabaseOutput:
		d.ossec.daemonf(name, "INFO", "Database not configured. Clean exit.")
		return 0
	case name == "wazuh-clusterd" && !m.Cluster.Running():
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	time.Sleep(t.initDelay(name))

	serve, err := d.open()
	if err != nil {
		d.fatal(err)
		return 1
	}
	pidFile := filepath.Join(home, "var/run", fmt.Sprintf("%s-%d.pid", name, os.Getpid()))
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o640); err != nil {
		d.ossec.daemonf(name, "CRITICAL", "(1212): Unable to create PID file.")
		return 1
	}
	d.started()
	errs := make(chan error, 1)
	if serve != nil {
		go func() { errs <- serve(ctx) }()
	}
	code := 0
	select {
	case <-ctx.Done():
		d.stopping()
	case err := <-errs:
		if err != nil {
			d.fatal(err)
			code = 1
		}
	}
	if pythonDaemons[name] {
		time.Sleep(t.Stop)
	}
	_ = os.Remove(pidFile)
	return code
}

// open binds what the daemon serves; the returned function serves until ctx ends.
func (d *daemon) open() (func(context.Context) error, error) {
	switch d.name {
	case "wazuh-remoted":
		return d.openRemoted()
	case "wazuh-authd":
		return d.openAuthd()
	case "wazuh-clusterd":
		return d.openClusterd()
	case "wazuh-apid":
		return d.openAPI()
	case "wazuh-analysisd":
		return nil, d.startAlert()
	}
	return nil, nil
}

func (d *daemon) started() {
	switch d.name {
	case "wazuh-apid", "wazuh-clusterd", "wazuh-remoted":
	default:
		d.ossec.daemonf(d.name, "INFO", "Started (pid: %d).", os.Getpid())
	}
}

func (d *daemon) stopping() {
	switch d.name {
	case "wazuh-apid":
		d.api.apif("INFO", "Shutting down (pid: %d)", os.Getpid())
	case "wazuh-clusterd":
		d.cluster.clusterf("INFO", "Cluster", "Main", "SIGNAL [(15)-(SIGTERM)] received. Exit...")
	default:
		d.ossec.daemonf(d.name, "INFO", "(1225): SIGNAL [(15)-(Terminated)] Received. Exit Cleaning...")
	}
}

func (d *daemon) fatal(err error) {
	switch d.name {
	case "wazuh-apid":
		d.api.apif("ERROR", "%v", err)
	case "wazuh-clusterd":
		d.cluster.clusterf("ERROR", "Cluster", "Main", "%v", err)
	default:
		d.ossec.daemonf(d.name, "CRITICAL", "%v", err)
	}
}
