package main

import (
	"fmt"
	"strings"

	"github.com/socflow/socflow/internal/benchreport"
)

// resultsMarker is the line of docs/benchmarks.md below which each run's section goes,
// so the newest is first and the text above it is the document's own.
const resultsMarker = "<!-- socflow-benchreport: each `make bench` adds its section below this line, newest first -->"

// section is one run's dated section: a heading with the date, commit and machine,
// then a row per figure.
func section(r report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s · commit %s · %d cores, %s, Linux %s\n\n", r.Date, r.Commit, r.Machine.Cores, r.Machine.Go, r.Machine.Kernel)
	b.WriteString("| benchmark | figure | value | goal | met |\n|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		goal, met := "—", "—"
		if f.Met != nil {
			goal, met = f.Goal.Text, "yes"
			if !*f.Met {
				met = "**no**"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %s |\n",
			cell(f.Benchmark), cell(f.Name), benchreport.FormatValue(f.Value), cell(f.Unit), cell(goal), met)
	}
	return b.String()
}

// cell escapes what would end a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// insertSection puts sec right below doc's results marker, above the older sections;
// a doc without the marker (or no doc yet) gets it at its end first.
func insertSection(doc, sec string) string {
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	head, rest, ok := strings.Cut(doc, resultsMarker+"\n")
	if !ok {
		if doc != "" {
			doc += "\n"
		}
		head, rest = doc, ""
	}
	if rest = strings.TrimLeft(rest, "\n"); rest != "" {
		sec += "\n"
	}
	return head + resultsMarker + "\n\n" + sec + rest
}
