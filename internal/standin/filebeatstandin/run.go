package filebeatstandin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// Main runs the stand-in as `filebeat ARGS...` would run and returns its exit code:
// `version`, `test config`, and `run` (the default) with filebeat's flags. stdout gets
// what filebeat prints there (the version, "Config OK"), stderr the "Exiting: ..."
// lines and, with -e, the log. It returns when ctx ends (0, as filebeat on SIGTERM)
// or on a startup error (1).
func Main(ctx context.Context, args []string, env LookupEnv, stdout, stderr io.Writer) int {
	cl, err := parseArgs(args, env)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n%s", err, usage)
		return 1
	}
	switch strings.Join(cl.command, " ") {
	case "version":
		fmt.Fprintf(stdout, "filebeat version %s (%s), libbeat %s [unknown built unknown]\n", beatVersion, runtime.GOARCH, beatVersion)
		return 0
	case "test config":
		return cl.start(ctx, env, stdout, stderr, true)
	case "", "run":
		return cl.start(ctx, env, stdout, stderr, false)
	}
	fmt.Fprintf(stderr, "Error: the filebeat stand-in does not implement %q\n", strings.Join(cl.command, " "))
	return 1
}

// start is the beat's life: configuration, logging, data path, then either the
// config test or the run.
func (cl *cmdline) start(ctx context.Context, env LookupEnv, stdout, stderr io.Writer, testOnly bool) int {
	exit := func(l *logger, err error) int {
		l.error("", "instance/beat.go:956", "Exiting: %v", err)
		fmt.Fprintf(stderr, "Exiting: %v\n", err)
		return 1
	}
	t, err := loadConfig(cl.configFile(), cl.overrides, cl.strictPerms)
	if err != nil {
		return exit(nil, err)
	}
	l := &logger{w: stderr}
	if !cl.toStderr {
		if err := os.MkdirAll(cl.paths.Logs, 0o750); err != nil {
			return exit(nil, fmt.Errorf("error initializing logging: %w", err))
		}
		f, err := os.OpenFile(filepath.Join(cl.paths.Logs, "filebeat"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return exit(nil, fmt.Errorf("error initializing logging: %w", err))
		}
		defer f.Close()
		l = &logger{w: f}
	}
	p := cl.paths
	l.info("", "instance/beat.go:645", "Home path: [%s] Config path: [%s] Data path: [%s] Logs path: [%s]", p.Home, p.Config, p.Data, p.Logs)
	if err := os.MkdirAll(p.Data, 0o750); err != nil {
		return exit(l, fmt.Errorf("Failed to create data path %s: %w", p.Data, err))
	}
	beatID, err := beatMeta(p.Data)
	if err != nil {
		return exit(l, err)
	}
	l.info("", "instance/beat.go:653", "Beat ID: %s", beatID)
	var lock *os.File
	if !testOnly {
		if lock, err = lockData(p.Data); err != nil {
			return exit(l, err)
		}
		defer lock.Close()
	}
	notes := func(msg string) { l.error("modules", "fileset/modules.go:471", "%s", msg) }
	c, err := buildConfig(t, cl.configFile(), p, env, cl.timings, notes)
	if err != nil {
		return exit(l, err)
	}
	if testOnly {
		if _, err := newPublisher(c.Output, l, nil, 0); err != nil {
			return exit(l, err)
		}
		fmt.Fprintln(stdout, "Config OK")
		return 0
	}
	reg, err := openRegistry(p.Data)
	if err != nil {
		return exit(l, fmt.Errorf("Failed to open the registry: %w", err))
	}
	defer reg.close()
	pub, err := newPublisher(c.Output, l, reg, cl.timings.FlushTimeout)
	if err != nil {
		return exit(l, err)
	}
	l.info("", "instance/beat.go:450", "filebeat start running.")
	l.info("", "memlog/store.go:124", "Finished loading transaction log file for '%s'. Active transaction id=%d", reg.dir, reg.nextID-1)
	if c.inputErr != nil {
		return exit(l, c.inputErr)
	}
	hostname, _ := os.Hostname()
	events := make(chan event, 4096) // queue.mem.events
	cr := &crawler{log: l, reg: reg, out: events, active: map[string]bool{},
		docs: docMaker{output: c.Output, hostname: hostname, beatID: beatID, ephemID: uuid.NewString()}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cr.run(ctx, c.Inputs) }()
	go func() { defer wg.Done(); pub.run(ctx, events) }()
	<-ctx.Done()
	l.info("", "beater/filebeat.go:515", "Stopping filebeat")
	wg.Wait()
	l.info("", "instance/beat.go:461", "filebeat stopped.")
	return 0
}
