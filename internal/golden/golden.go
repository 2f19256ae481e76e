// Package golden compares what a test produced with a file under its package's
// testdata, and rewrites that file instead when the tests run with -update.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is the -update flag of every test binary that imports this package: it
// rewrites the golden files with what the tests produce (review the diff, then commit).
var update = flag.Bool("update", false, "rewrite the golden files under testdata with what the tests produce")

// Check compares got with testdata/name (a path below testdata), or writes got there
// first under -update; a difference fails the test showing both.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it, if the change is meant):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
