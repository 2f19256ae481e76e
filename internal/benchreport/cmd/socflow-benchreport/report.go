package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/socflow/socflow/internal/benchreport"
)

// schema names the JSON report's format: a change that would break a reader of it
// (a field renamed, removed or given another meaning) is a new schema.
const schema = "socflow-bench/1"

// report is docs/benchmarks.json: one `make bench` run.
type report struct {
	Schema  string              `json:"schema"`
	Date    string              `json:"date"` // YYYY-MM-DD, UTC
	Machine machine             `json:"machine"`
	Commit  string              `json:"commit"`  // the checkout's short commit, "+dirty" when it had changes
	Figures []figure            `json:"figures"` // by benchmark, then name
	Runs    []benchreport.Point `json:"runs"`    // by benchmark, then run
}

// machine is what the figures were measured on.
type machine struct {
	Cores  int    `json:"cores"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"`
}

// figure is a recorded figure with its verdict, absent when it has no goal.
type figure struct {
	benchreport.Figure
	Met *bool `json:"met,omitempty"`
}

// newReport keeps each benchmark's last record (see benchreport.Record) and orders
// its figures and runs, so that the same records always make the same report.
func newReport(date string, m machine, commit string, recs []benchreport.Record) report {
	r := report{Schema: schema, Date: date, Machine: m, Commit: commit, Figures: []figure{}, Runs: []benchreport.Point{}}
	for _, rec := range benchreport.Latest(recs) {
		for _, f := range rec.Figures {
			fig := figure{Figure: f}
			if met, ok := f.Met(); ok {
				fig.Met = &met
			}
			r.Figures = append(r.Figures, fig)
		}
		r.Runs = append(r.Runs, rec.Points...)
	}
	slices.SortStableFunc(r.Figures, func(a, b figure) int {
		return cmp.Or(cmp.Compare(a.Benchmark, b.Benchmark), cmp.Compare(a.Name, b.Name))
	})
	slices.SortStableFunc(r.Runs, func(a, b benchreport.Point) int {
		return cmp.Or(cmp.Compare(a.Benchmark, b.Benchmark), cmp.Compare(a.Run, b.Run))
	})
	return r
}

// encode is the report as indented JSON, "<" and "≥" as they are (goals are read by
// people too); encoding/json writes struct fields in their order and map keys sorted,
// so equal reports encode to equal bytes.
func (r report) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("cannot encode the benchmark report: %w", err)
	}
	return b.Bytes(), nil
}
