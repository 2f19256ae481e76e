//go:build linux

package reaper

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want procInfo
	}{
		{"4321 (node) S 100 100 100 0 -1 4194560 1 0\n", procInfo{pid: 4321, state: 'S', ppid: 100, pgid: 100, comm: "node"}},
		// comm is chosen by the process and may contain ") " to fool a naive split.
		{"7 (a) R 1 2 (b) Z 3 9 9 0\n", procInfo{pid: 7, state: 'Z', ppid: 3, pgid: 9, comm: "a) R 1 2 (b"}},
		{"8 (with space) D 5 6 6", procInfo{pid: 8, state: 'D', ppid: 5, pgid: 6, comm: "with space"}},
	} {
		got, err := parseStat([]byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "12 node S 1 1", "x (n) S 1 1", "1 (n) S 1", "1 (n) S a 1", "1 (n) SS 1 1"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestLeftovers(t *testing.T) {
	const self = 100
	procs := map[int]procInfo{
		1:   {pid: 1, state: 'S', ppid: 0, pgid: 1},
		50:  {pid: 50, state: 'S', ppid: 1, pgid: 50},      // Pebble
		100: {pid: self, state: 'S', ppid: 50, pgid: self}, // the reaper
		101: {pid: 101, state: 'S', ppid: self, pgid: self},
		102: {pid: 102, state: 'S', ppid: 101, pgid: self},  // the lock child
		103: {pid: 103, state: 'Z', ppid: self, pgid: self}, // zombie: wait, do not kill
		104: {pid: 104, state: 'S', ppid: self, pgid: 104},  // setsid daemon re-parented
		105: {pid: 105, state: 'S', ppid: 104, pgid: 104},   // its child, another group
		106: {pid: 106, state: 'S', ppid: 1, pgid: self},    // group member re-parented elsewhere
		200: {pid: 200, state: 'S', ppid: 50, pgid: 200},    // another service
		300: {pid: 300, state: 'S', ppid: 301, pgid: 300},   // cycle in a torn snapshot
		301: {pid: 301, state: 'S', ppid: 300, pgid: 300},
	}
	pids := func(ps []procInfo) []int {
		var out []int
		for _, p := range ps {
			out = append(out, p.pid)
		}
		slices.Sort(out)
		return out
	}
	if got, want := pids(leftovers(procs, self, true)), []int{101, 102, 104, 105, 106}; !slices.Equal(got, want) {
		t.Errorf("leader: got %v, want %v", got, want)
	}
	// Not a leader: the group is someone else's, only descendants are ours.
	if got, want := pids(leftovers(procs, self, false)), []int{101, 102, 104, 105}; !slices.Equal(got, want) {
		t.Errorf("not leader: got %v, want %v", got, want)
	}
}

func TestCmdline(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte("node\x00build/child-lock.manager.js\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := cmdline(root, procInfo{pid: 42, comm: "node"}); got != "node build/child-lock.manager.js" {
		t.Errorf("got %q", got)
	}
	// A process that is gone (or a kernel thread) still gets a name.
	if got := cmdline(root, procInfo{pid: 43, comm: "node"}); got != "[node]" {
		t.Errorf("got %q", got)
	}
}
