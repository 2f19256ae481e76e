// Command socflow-benchreport turns the records socflow's benchmarks wrote (package
// benchreport) into `make bench`'s report in the docs directory: benchmarks.json (this
// run, format socflow-bench/1), benchmarks.png (stage gaps and overhead per run) and a
// new dated section at the top of benchmarks.md's results.
//
//	socflow-benchreport [-in FILE] [-docs DIR] [-date YYYY-MM-DD] [-commit REV]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/socflow/socflow/internal/benchreport"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "socflow-benchreport:", err)
		os.Exit(1)
	}
}

// run reads the records, then writes the three files and names them on stdout.
func run(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("socflow-benchreport", flag.ContinueOnError)
	in := flags.String("in", benchreport.FromEnv().Path, "the benchmarks' JSONL records (default: where they record, see package benchreport)")
	docs := flags.String("docs", "docs", "the directory of benchmarks.md, .json and .png")
	date := flags.String("date", time.Now().UTC().Format(time.DateOnly), "the run's date")
	commit := flags.String("commit", "", "the commit measured (default: the checkout's HEAD, +dirty with uncommitted changes)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("no records to read: give -in, or set %s or SOCFLOW_STACK_DIR", benchreport.OutEnv)
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("cannot open the benchmark records: %w", err)
	}
	recs, err := benchreport.Read(f)
	f.Close()
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s holds no benchmark record: did every benchmark fail before its end?", *in)
	}
	if *commit == "" {
		*commit = headCommit()
	}
	r := newReport(*date, thisMachine(), *commit, recs)

	js, err := r.encode()
	if err != nil {
		return err
	}
	img, err := plot(r.Runs)
	if err != nil {
		return err
	}
	mdPath := filepath.Join(*docs, "benchmarks.md")
	doc, err := os.ReadFile(mdPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read %s: %w", mdPath, err)
	}
	for _, out := range []struct {
		name string
		data []byte
	}{
		{"benchmarks.json", js},
		{"benchmarks.png", img},
		{"benchmarks.md", []byte(insertSection(string(doc), section(r)))},
	} {
		path := filepath.Join(*docs, out.name)
		if err := os.WriteFile(path, out.data, 0o644); err != nil {
			return fmt.Errorf("cannot write the benchmark report: %w", err)
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}

// thisMachine is the machine the report is written on: the one that ran the benchmarks
// just before, with the same Go.
func thisMachine() machine {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Kernel: strings.TrimSpace(string(kernel))}
}

// headCommit is the checkout's short HEAD, "+dirty" when tracked files outside docs/
// have changes (a report's own files are not what was measured), or "unknown" outside
// a git checkout.
func headCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+dirty"
	}
	return rev
}
