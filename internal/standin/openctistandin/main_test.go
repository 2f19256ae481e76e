package openctistandin

import (
	"os"
	"syscall"
	"testing"
)

// TestMain lets the test binary serve as the stand-in binary's lock child, so
// Run forks a real child process in tests too.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ChildLockArg {
		os.Exit(RunLockChild(os.Args[2:], os.Getenv, os.Stdin, os.NewFile(3, "lock-replies")))
	}
	os.Exit(m.Run())
}

// syscallKill sends SIGTERM, which the lock child must ignore.
func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }
