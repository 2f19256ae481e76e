//go:build linux

// Package reaper runs one command as socflow's process-group reaper: it starts the
// command in its own process group, becomes a child subreaper so the command's
// orphans re-parent to it, and when the command exits it SIGKILLs and reaps every
// process left behind before exiting with the command's own exit code.
//
// It exists because OpenCTI forks child-lock.manager.js, which holds the Redis init
// lock, ignores SIGTERM and SIGINT and outlives every exit of the platform. Pebble
// signals the service's process group only when it stops a service, and skips the
// SIGKILL when the main process exits quickly after SIGTERM, so without the reaper
// the lock child keeps the lock alive after both a crash and a stop, and the next
// start fails on the lock.
//
// Run owns the whole process: it waits for any child (wait4(-1)) and changes signal
// handling, so it is meant to be called from a main and nowhere else.
package reaper

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit codes of the reaper itself, following the shell's conventions so that a
// supervisor reading them needs no socflow-specific table.
const (
	// ExitUsage is returned for a command line that cannot be run.
	ExitUsage = 2
	// ExitCannotExecute is returned when the command exists but cannot be executed.
	ExitCannotExecute = 126
	// ExitNotFound is returned when the command cannot be found.
	ExitNotFound = 127
	// exitSignalBase is added to the number of the signal that killed the command.
	exitSignalBase = 128
)

var (
	// procRoot is where processes are listed; a variable so the parser can be
	// exercised against a fixture tree.
	procRoot = "/proc"
	// pollInterval is how often /proc is rescanned while waiting for leftovers to
	// exit or die: short, because the lock's TTL only starts once they are gone.
	pollInterval = 10 * time.Millisecond
	// killTimeout bounds the kill phase. SIGKILLed processes die in milliseconds; one
	// stuck in uninterruptible sleep (a hung NFS read) must not keep the reaper alive
	// forever, because then Pebble never sees the service exit.
	killTimeout = 5 * time.Second
)

// handledSignals are caught so that the reaper survives them and keeps supervising.
// They are caught, not ignored: an ignored disposition would be inherited by the
// command across exec, and the platform must still react to SIGTERM. SIGPIPE is
// caught so that a vanished log reader cannot kill the reaper and orphan the
// command's leftovers.
var handledSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE}

// forwardedSignals are passed on to the command when Options.Forward is set.
var forwardedSignals = map[os.Signal]bool{unix.SIGTERM: true, unix.SIGINT: true, unix.SIGHUP: true, unix.SIGQUIT: true}

// Main parses args (without the program name), runs the command and returns the
// process exit code. Usage errors go to stderr; log lines go to stdout.
func Main(args []string, stdout, stderr io.Writer) int {
	o, err := ParseArgs(args)
	if errors.Is(err, ErrHelp) {
		fmt.Fprintln(stderr, Usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "socflow-reap: %v\n%s\n", err, Usage)
		return ExitUsage
	}
	return Run(o, stdout)
}

// Run starts o.Command, supervises it and cleans up after it, writing JSON log lines
// to stdout. It returns the command's exit code (128+n when signal n killed it),
// ExitNotFound or ExitCannotExecute when it could not be started.
func Run(o Options, stdout io.Writer) int {
	lg := &logger{w: stdout, instance: o.Instance, plan: o.Plan, now: time.Now}
	self := os.Getpid()

	// Catch signals before anything starts, so an early stop cannot kill the reaper
	// between the command's start and its supervision.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, handledSignals...)
	defer signal.Stop(sigs)

	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		lg.log(Entry{Level: "warn", Message: MsgNoSubreaper, PID: self, Error: err.Error()})
	}

	lg.log(Entry{Level: "info", Message: MsgStarting, PID: self})
	start := time.Now()
	pid, pidfd, err := startCommand(o.Command)
	if err != nil {
		code := ExitCannotExecute
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			code = ExitNotFound
		}
		lg.log(Entry{Level: "error", Message: MsgCannotStart, PID: self, Error: err.Error()})
		return code
	}

	fw := &forwarder{enabled: o.Forward, pid: pid, pidfd: pidfd}
	done := make(chan struct{})
	defer close(done)
	go fw.relay(sigs, done)

	ws, err := waitCommand(pid)
	fw.exited()
	// Milliseconds are enough for a service runtime and keep the line short.
	seconds := math.Round(time.Since(start).Seconds()*1000) / 1000
	exit := Entry{Level: "info", Message: MsgExited, PID: pid, RuntimeSeconds: &seconds}
	code := 1
	switch {
	case err != nil:
		// Only possible if something else reaped the command; its status is lost.
		exit.Error = err.Error()
	case ws.Signaled():
		code = exitSignalBase + int(ws.Signal())
		exit.Signal = signalName(ws.Signal())
	default:
		code = ws.ExitStatus()
		exit.ExitCode = &code
	}
	if code != 0 {
		exit.Level = "error"
	}
	lg.log(exit)

	leader := unix.Getpgrp() == self
	if o.Grace > 0 {
		awaitLeftovers(self, leader, o.Grace)
	}
	killLeftovers(lg, self, leader)
	return code
}

// startCommand looks argv[0] up in PATH and starts it with the reaper's stdio,
// environment, working directory and process group. It returns the child's pid and
// a pidfd (-1 when the kernel has none) for race-free signal forwarding.
func startCommand(argv []string) (pid, pidfd int, err error) {
	path, err := exec.LookPath(argv[0])
	if errors.Is(err, exec.ErrDot) {
		// A relative PATH entry is the operator's choice, as it is in a shell.
		err = nil
	}
	if err != nil {
		return 0, -1, fmt.Errorf("cannot find command %q: %w", argv[0], err)
	}
	pidfd = -1
	pid, err = syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		// No Setpgid: the command stays in the reaper's group so that Pebble's
		// group-wide SIGTERM and SIGKILL reach it and its children directly.
		Sys: &syscall.SysProcAttr{PidFD: &pidfd},
	})
	if err != nil {
		return 0, -1, fmt.Errorf("cannot start command %q: %w", path, err)
	}
	return pid, pidfd, nil
}

// waitCommand reaps children until pid exits. Every other child is an orphan that
// re-parented to the subreaper; reaping it here keeps zombies from piling up while
// the platform runs for weeks.
func waitCommand(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("cannot wait for command %d: %w", pid, err)
		}
		if got == pid {
			return ws, nil
		}
	}
}

// reapExited reaps every child that has already exited, without blocking, and
// reports whether the reaper has no children left at all.
func reapExited() (none bool) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return true
		case err != nil || got == 0:
			return false
		}
	}
}

// awaitLeftovers gives leftovers up to grace to exit on their own, reaping them as
// they go, and returns early once none is left.
func awaitLeftovers(self int, leader bool, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for {
		reapExited()
		procs, err := readProcs(procRoot)
		if err != nil || len(leftovers(procs, self, leader)) == 0 {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		time.Sleep(min(left, pollInterval))
	}
}

// killLeftovers SIGKILLs every leftover and reaps them, rescanning until none is
// left, because a leftover may fork between a scan and its kill. Each process is
// logged once, when it is first killed. A leftover's pid cannot be reused while
// the reaper holds it as an unreaped child; for group members that are not
// children the window between scan and kill is microseconds.
func killLeftovers(lg *logger, self int, leader bool) {
	killed := map[int]bool{}
	deadline := time.Now().Add(killTimeout)
	for {
		none := reapExited()
		procs, err := readProcs(procRoot)
		if err != nil {
			lg.log(Entry{Level: "error", Message: MsgLeftoversRemain, PID: self, Error: err.Error()})
			return
		}
		left := leftovers(procs, self, leader)
		if len(left) == 0 && none {
			return
		}
		if time.Now().After(deadline) {
			pids := make([]string, 0, len(left))
			for _, p := range left {
				pids = append(pids, fmt.Sprint(p.pid))
			}
			lg.log(Entry{Level: "error", Message: MsgLeftoversRemain, PID: self,
				Error: fmt.Sprintf("still running after SIGKILL: %s", strings.Join(pids, ", "))})
			return
		}
		for _, p := range left {
			// Read before the kill: a dying process loses its cmdline.
			name := cmdline(procRoot, p)
			if unix.Kill(p.pid, unix.SIGKILL) != nil || killed[p.pid] {
				continue
			}
			killed[p.pid] = true
			lg.log(Entry{Level: "warn", Message: fmt.Sprintf("%s %d (%s)", MsgKilledPrefix, p.pid, name), PID: p.pid, Cmdline: name})
		}
		time.Sleep(pollInterval)
	}
}

// forwarder passes signals on to the command when asked to, and swallows them
// otherwise (they reach the command through the process group already).
type forwarder struct {
	enabled bool
	mu      sync.Mutex
	pid     int
	pidfd   int
	done    bool
}

// relay handles caught signals until stop is closed.
func (f *forwarder) relay(sigs <-chan os.Signal, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case sig := <-sigs:
			if f.enabled && forwardedSignals[sig] {
				f.send(sig.(syscall.Signal))
			}
		}
	}
}

// send signals the command unless it has been reaped. The pidfd makes this safe
// against pid reuse; without one (old kernels) the done flag narrows the window to
// the moment between wait4 returning and exited being called.
func (f *forwarder) send(sig syscall.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return
	}
	if f.pidfd >= 0 {
		_ = unix.PidfdSendSignal(f.pidfd, sig, nil, 0)
		return
	}
	_ = unix.Kill(f.pid, sig)
}

// exited stops forwarding and releases the pidfd once the command has been reaped.
func (f *forwarder) exited() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = true
	if f.pidfd >= 0 {
		_ = unix.Close(f.pidfd)
		f.pidfd = -1
	}
}

// signalName spells a signal as "SIGKILL", falling back to its number for
// real-time signals that have no name.
func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}
