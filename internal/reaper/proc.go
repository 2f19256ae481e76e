//go:build linux

package reaper

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procInfo is what the reaper needs from /proc/<pid>/stat to decide whether a
// process is one of its leftovers.
type procInfo struct {
	pid   int
	state byte
	ppid  int
	pgid  int
	comm  string
}

// parseStat reads /proc/<pid>/stat content. comm may hold spaces and parentheses,
// so the fixed fields are taken after the LAST ')'.
func parseStat(b []byte) (procInfo, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procInfo{}, fmt.Errorf("cannot parse stat %q: no (comm)", b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procInfo{}, fmt.Errorf("cannot parse stat %q: %w", b, err)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return procInfo{}, fmt.Errorf("cannot parse stat %q: too few fields", b)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procInfo{}, fmt.Errorf("cannot parse stat %q: bad ppid or pgrp", b)
	}
	return procInfo{pid: pid, state: f[0][0], ppid: ppid, pgid: pgid, comm: string(b[open+1 : end])}, nil
}

// alive reports whether signals still matter to the process: zombies (Z) and dead
// tasks (X, x) cannot be killed, only waited for by their parent.
func (p procInfo) alive() bool {
	return p.state != 'Z' && p.state != 'X' && p.state != 'x'
}

// readProcs snapshots every process of root (normally "/proc"). Processes that exit
// during the walk are skipped: the reaper rescans until nothing is left anyway.
func readProcs(root string) (map[int]procInfo, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("cannot list processes in %s: %w", root, err)
	}
	procs := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue
		}
		p, err := parseStat(b)
		if err != nil {
			continue
		}
		procs[pid] = p
	}
	return procs, nil
}

// leftovers returns the live processes the reaper owns in snapshot procs: every
// descendant of self (found through the ppid chain, which catches daemons that
// called setsid and re-parented to the subreaper), plus, when self leads its
// process group, every other member of that group. The group rule applies only
// to a leader because a non-leader's group belongs to whoever started it (a shell
// script, a test binary), and killing it would take out the reaper's own parent.
func leftovers(procs map[int]procInfo, self int, leader bool) []procInfo {
	var out []procInfo
	for pid, p := range procs {
		if pid == self || !p.alive() {
			continue
		}
		if (leader && p.pgid == self) || descends(procs, pid, self) {
			out = append(out, p)
		}
	}
	return out
}

// descends reports whether pid has ancestor in snapshot procs. The walk is bounded
// because a snapshot taken while processes exit and pids get reused may hold a
// cycle.
func descends(procs map[int]procInfo, pid, ancestor int) bool {
	for range len(procs) + 1 {
		p, ok := procs[pid]
		if !ok || p.ppid <= 0 {
			return false
		}
		if p.ppid == ancestor {
			return true
		}
		pid = p.ppid
	}
	return false
}

// cmdline returns the command line of pid with NULs as spaces, or "[comm]" when
// it is empty (kernel threads, exiting processes), so each killed line names
// something recognisable like "node build/child-lock.manager.js".
func cmdline(root string, p procInfo) string {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(p.pid), "cmdline"))
	b = bytes.TrimRight(b, "\x00")
	if err != nil || len(b) == 0 {
		return "[" + p.comm + "]"
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}
