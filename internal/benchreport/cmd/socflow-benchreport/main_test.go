package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/benchreport"
	"github.com/socflow/socflow/internal/golden"
)

var testMachine = machine{Cores: 2, Go: "go1.26.8", Kernel: "6.18.44"}

// readRecords reads testdata/records.jsonl: two calls of BenchmarkUpgrade (the first
// one's, b.N = 1, must be dropped), a deploy and a resume.
func readRecords(t *testing.T) []benchreport.Record {
	t.Helper()
	f, err := os.Open("testdata/records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := benchreport.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestReportJSONIsStable pins the JSON format: the golden file is what
// socflow-bench/1 looks like, and the same records in another order encode the same.
func TestReportJSONIsStable(t *testing.T) {
	recs := readRecords(t)
	js, err := newReport("2026-12-05", testMachine, "580730d", recs).encode()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "report.golden.json", js)

	// The deploy's figures reversed: the report sorts them again.
	d := &recs[1]
	for i, j := 0, len(d.Figures)-1; i < j; i, j = i+1, j-1 {
		d.Figures[i], d.Figures[j] = d.Figures[j], d.Figures[i]
	}
	again, err := newReport("2026-12-05", testMachine, "580730d", recs).encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, again) {
		t.Errorf("the same figures in another order encode differently:\n%s", again)
	}
}

func TestSectionTable(t *testing.T) {
	golden.Check(t, "section.golden.md", []byte(section(newReport("2026-12-05", testMachine, "580730d", readRecords(t)))))
}

func TestMetInTheReport(t *testing.T) {
	r := newReport("2026-12-05", testMachine, "580730d", readRecords(t))
	got := map[string]string{}
	for _, f := range r.Figures {
		switch {
		case f.Met == nil:
			got[f.Name] = "no goal"
		case *f.Met:
			got[f.Name] = "met"
		default:
			got[f.Name] = "not met"
		}
	}
	for name, want := range map[string]string{
		"overhead-p50-%":        "not met", // 5.31 % against < 5 %
		"gap-deps-p99-ms":       "met",
		"overhead-p50-ms":       "met", // the second upgrade record's 1550 ms
		"workflow-tasks/deploy": "met", // 15 <= 16.5
		"wall-p50-s":            "no goal",
	} {
		if got[name] != want {
			t.Errorf("%s: %s, want %s", name, got[name], want)
		}
	}
}

func TestInsertSection(t *testing.T) {
	intro := "# Benchmarks\n\nWhat they measure.\n\n## Results\n\n" + resultsMarker + "\n"
	first := insertSection(intro, "### day 1\n\n| a |\n")
	if want := intro + "\n### day 1\n\n| a |\n"; first != want {
		t.Fatalf("first section:\n%q\nwant\n%q", first, want)
	}
	second := insertSection(first, "### day 2\n\n| b |\n")
	if want := intro + "\n### day 2\n\n| b |\n\n### day 1\n\n| a |\n"; second != want {
		t.Fatalf("second section, newest first:\n%q\nwant\n%q", second, want)
	}
	if got, want := insertSection("", "### day 1\n"), resultsMarker+"\n\n### day 1\n"; got != want {
		t.Errorf("no document yet: %q, want %q", got, want)
	}
	if got, want := insertSection("# Old", "### day 1\n"), "# Old\n\n"+resultsMarker+"\n\n### day 1\n"; got != want {
		t.Errorf("a document without the marker: %q, want %q", got, want)
	}
}

func TestPlotDecodes(t *testing.T) {
	r := newReport("2026-12-05", testMachine, "580730d", readRecords(t))
	for _, c := range []struct {
		name   string
		points []benchreport.Point
		panels int
	}{
		// The deploy's stage gaps, its overhead (%), the upgrade's overhead (ms).
		{"deploy and upgrade", r.Runs, 3},
		{"nothing recorded", nil, 1},
		{"one run", r.Runs[:1], 2},
	} {
		b, err := plot(c.points)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := img.Bounds().Size(), plotSize(c.panels); got != want {
			t.Errorf("%s: size %v, want %v (%d panels)", c.name, got, want, c.panels)
		}
		if c.points == nil {
			continue
		}
		// Every panel has its first series drawn.
		for i := range c.panels {
			if !hasColour(img, i, palette[0]) {
				t.Errorf("%s: panel %d has no series drawn", c.name, i)
			}
		}
	}
}

// hasColour reports whether panel i of img has a pixel of colour c.
func hasColour(img image.Image, i int, c color.RGBA) bool {
	for y := i * panelHeight; y < (i+1)*panelHeight; y++ {
		for x := range plotWidth {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				return true
			}
		}
	}
	return false
}

func TestRunWritesTheThreeFiles(t *testing.T) {
	docs := t.TempDir()
	md := filepath.Join(docs, "benchmarks.md")
	if err := os.WriteFile(md, []byte("# Benchmarks\n\n"+resultsMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-in", "testdata/records.jsonl", "-docs", docs, "-date", "2026-12-05", "-commit", "580730d"}
	var out strings.Builder
	for range 2 {
		if err := run(args, &out); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(doc), "### 2026-12-05 · commit 580730d"); n != 2 {
		t.Errorf("benchmarks.md has %d sections of the run, want 2 (older ones kept):\n%s", n, doc)
	}
	for _, name := range []string{"benchmarks.json", "benchmarks.png"} {
		if _, err := os.Stat(filepath.Join(docs, name)); err != nil {
			t.Error(err)
		}
	}
	if err := run([]string{"-in", filepath.Join(docs, "missing.jsonl"), "-docs", docs}, &out); err == nil {
		t.Error("no error for a missing records file")
	}
}
