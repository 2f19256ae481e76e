package benchreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// OutEnv names the JSONL file benchmarks append their records to.
const OutEnv = "SOCFLOW_BENCH_OUT"

// Recorder appends records to the JSONL file at Path; with no Path it records nothing,
// so a benchmark run by hand without the stack's environment still runs.
type Recorder struct {
	Path string
}

// FromEnv is the recorder the environment names: $SOCFLOW_BENCH_OUT, else
// $SOCFLOW_STACK_DIR/bench/current.jsonl (the stack's state, where `make bench` reads
// it), else none.
func FromEnv() Recorder {
	if p := os.Getenv(OutEnv); p != "" {
		return Recorder{Path: p}
	}
	if dir := os.Getenv("SOCFLOW_STACK_DIR"); dir != "" {
		return Recorder{Path: filepath.Join(dir, "bench", "current.jsonl")}
	}
	return Recorder{}
}

// Record appends rec as one line, its benchmark's name set on each figure and point.
// A line is written whole with one write, so records of parallel runs do not mix.
func (r Recorder) Record(rec Record) error {
	if r.Path == "" {
		return nil
	}
	// Copies, so that the caller's slices are left as they were.
	rec.Figures, rec.Points = slices.Clone(rec.Figures), slices.Clone(rec.Points)
	for i := range rec.Figures {
		rec.Figures[i].Benchmark = rec.Benchmark
	}
	for i := range rec.Points {
		rec.Points[i].Benchmark = rec.Benchmark
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("cannot encode %s's record: %w", rec.Benchmark, err)
	}
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o755); err != nil {
		return fmt.Errorf("cannot create the benchmark record's directory: %w", err)
	}
	f, err := os.OpenFile(r.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open the benchmark record: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write the benchmark record %s: %w", r.Path, err)
	}
	return nil
}

// Read reads a JSONL file's records in order; a line that is not a record is an error
// that names it.
func Read(in io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("cannot read benchmark record line %d: %w", n, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read benchmark records: %w", err)
	}
	return out, nil
}

// Latest keeps each benchmark's last record, in the order they were first recorded.
func Latest(recs []Record) []Record {
	var out []Record
	at := map[string]int{}
	for _, r := range recs {
		if i, ok := at[r.Benchmark]; ok {
			out[i] = r
			continue
		}
		at[r.Benchmark] = len(out)
		out = append(out, r)
	}
	return out
}
