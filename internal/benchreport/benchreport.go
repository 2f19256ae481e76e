// Package benchreport is what socflow's benchmarks (internal/e2e) record for `make
// bench`'s report: each figure with its goal, and per-run points of the stage gaps and
// overhead, appended as JSON lines to a file; the command socflow-benchreport turns that
// file into docs/benchmarks.{md,json,png}.
package benchreport

import (
	"fmt"
	"strconv"
)

// Op is how a figure compares with its goal's bound.
type Op string

// The comparisons a goal can make: the figure's value Op the bound.
const (
	Less    Op = "<"
	AtMost  Op = "<="
	AtLeast Op = ">="
	More    Op = ">"
)

// Goal is what a figure should reach: Text as a person reads it ("< 3 s"), and the
// bound in the figure's own unit so that Met can be computed.
type Goal struct {
	Text  string  `json:"text"`
	Op    Op      `json:"op"`
	Bound float64 `json:"bound"`
}

// Met reports whether value reaches the goal; an unknown Op is never met.
func (g Goal) Met(value float64) bool {
	switch g.Op {
	case Less:
		return value < g.Bound
	case AtMost:
		return value <= g.Bound
	case AtLeast:
		return value >= g.Bound
	case More:
		return value > g.Bound
	}
	return false
}

// Figure is one figure a benchmark reports. Name is also its b.ReportMetric name, so a
// row of the report can be found in `go test -bench` output.
type Figure struct {
	Benchmark string  `json:"benchmark"`
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Goal      *Goal   `json:"goal,omitempty"` // nil: a figure shown for context, with no goal
}

// Met reports whether the figure reaches its goal, and false for ok when it has none.
func (f Figure) Met() (met, ok bool) {
	if f.Goal == nil {
		return false, false
	}
	return f.Goal.Met(f.Value), true
}

// String is the figure as a benchmark prints it: name, value and unit, goal and verdict.
func (f Figure) String() string {
	s := fmt.Sprintf("%s %s %s", f.Name, FormatValue(f.Value), f.Unit)
	if met, ok := f.Met(); ok {
		verdict := "met"
		if !met {
			verdict = "NOT met"
		}
		s += fmt.Sprintf(" (goal %s: %s)", f.Goal.Text, verdict)
	}
	return s
}

// FormatValue prints a figure's value with four significant digits, and whole numbers
// (and anything from 1000 up) without decimals or an exponent.
func FormatValue(v float64) string {
	if v == float64(int64(v)) || v >= 1000 || v <= -1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// Point is one run (iteration) of a benchmark: its stage gaps and its overhead, what
// the report's plot draws.
type Point struct {
	Benchmark    string             `json:"benchmark"`
	Run          int                `json:"run"`              // the iteration, from 0
	GapsMS       map[string]float64 `json:"gapsMs,omitempty"` // stage gap name -> milliseconds
	Overhead     float64            `json:"overhead"`
	OverheadUnit string             `json:"overheadUnit,omitempty"` // "%" or "ms"; empty: no overhead measured
}

// Record is one line of the JSONL file: everything one call of a benchmark function
// measured. `go test -bench` calls a benchmark function once with b.N = 1 before the
// b.N asked for, so a report keeps only each benchmark's last record.
type Record struct {
	Benchmark string   `json:"benchmark"`
	Figures   []Figure `json:"figures"`
	Points    []Point  `json:"points,omitempty"`
}
