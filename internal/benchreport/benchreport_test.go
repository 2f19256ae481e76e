package benchreport

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestGoalMet(t *testing.T) {
	for _, c := range []struct {
		op    Op
		value float64
		want  bool
	}{
		{Less, 2.9, true}, {Less, 3, false},
		{AtMost, 3, true}, {AtMost, 3.1, false},
		{AtLeast, 3, true}, {AtLeast, 2.9, false},
		{More, 3.1, true}, {More, 3, false},
		{"≈", 3, false},
	} {
		if got := (Goal{Op: c.op, Bound: 3}).Met(c.value); got != c.want {
			t.Errorf("%v %s 3: got %v, want %v", c.value, c.op, got, c.want)
		}
	}
	if _, ok := (Figure{Value: 1}).Met(); ok {
		t.Error("a figure without a goal has a verdict")
	}
}

func TestFigureString(t *testing.T) {
	for _, c := range []struct {
		f    Figure
		want string
	}{
		{Figure{Name: "resume-p99-s", Value: 21.5349, Unit: "s", Goal: &Goal{Text: "< 3 s", Op: Less, Bound: 3}},
			"resume-p99-s 21.53 s (goal < 3 s: NOT met)"},
		{Figure{Name: "instances", Value: 1250, Unit: "instances", Goal: &Goal{Text: "≥ 1000", Op: AtLeast, Bound: 1000}},
			"instances 1250 instances (goal ≥ 1000: met)"},
		{Figure{Name: "wall-p50-ms", Value: 18350.4, Unit: "ms"}, "wall-p50-ms 18350 ms"},
	} {
		if got := c.f.String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestRecordThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench", "current.jsonl")
	r := Recorder{Path: path}
	figs := []Figure{{Name: "overhead-p50-ms", Value: 1550, Unit: "ms", Goal: &Goal{Text: "< 3 s", Op: Less, Bound: 3000}}}
	for _, rec := range []Record{
		{Benchmark: "BenchmarkUpgrade", Figures: figs, Points: []Point{{Run: 0, Overhead: 1600, OverheadUnit: "ms"}}},
		{Benchmark: "BenchmarkDeploy", Figures: []Figure{{Name: "wall-p50-s", Value: 31.4, Unit: "s"}}},
		{Benchmark: "BenchmarkUpgrade", Figures: figs, Points: []Point{{Run: 0, Overhead: 1500, OverheadUnit: "ms"}, {Run: 1, Overhead: 1550, OverheadUnit: "ms"}}},
	} {
		if err := r.Record(rec); err != nil {
			t.Fatal(err)
		}
	}
	if figs[0].Benchmark != "" {
		t.Error("Record changed the caller's figures")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	latest := Latest(recs)
	if len(recs) != 3 || len(latest) != 2 || latest[0].Benchmark != "BenchmarkUpgrade" || len(latest[0].Points) != 2 {
		t.Fatalf("got %d records, latest %+v; want 3, the upgrade's second then the deploy", len(recs), latest)
	}
	if got := latest[0].Figures[0].Benchmark + "/" + latest[0].Points[1].Benchmark; got != "BenchmarkUpgrade/BenchmarkUpgrade" {
		t.Errorf("figures and points not stamped with their benchmark: %s", got)
	}
	if !reflect.DeepEqual(latest[0].Figures[0].Goal, figs[0].Goal) {
		t.Errorf("goal did not survive the round trip: %+v", latest[0].Figures[0].Goal)
	}
}

func TestReadNamesTheBadLine(t *testing.T) {
	_, err := Read(strings.NewReader(`{"benchmark":"BenchmarkDeploy","figures":[]}` + "\n\nnot json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("got %v, want an error naming line 3", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(OutEnv, "")
	t.Setenv("SOCFLOW_STACK_DIR", "")
	if r := FromEnv(); r.Path != "" {
		t.Errorf("with neither variable set: %q, want no path", r.Path)
	}
	if err := (Recorder{}).Record(Record{Benchmark: "BenchmarkDeploy"}); err != nil {
		t.Errorf("a recorder without a path: %v", err)
	}
	t.Setenv("SOCFLOW_STACK_DIR", "/state")
	if r := FromEnv(); r.Path != "/state/bench/current.jsonl" {
		t.Errorf("with the stack's directory: %q", r.Path)
	}
	t.Setenv(OutEnv, "/tmp/out.jsonl")
	if r := FromEnv(); r.Path != "/tmp/out.jsonl" {
		t.Errorf("with %s: %q", OutEnv, r.Path)
	}
}
