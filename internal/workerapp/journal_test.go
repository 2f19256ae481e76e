package workerapp

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenJournal: a default journal directory that cannot be made (a read-only home)
// costs only the fast retry, with a warning naming the setting; a directory the operator
// named must work.
func TestOpenJournal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cfg := Config{Logger: slog.New(slog.NewTextHandler(&log, nil)), InflightDir: filepath.Join(file, "inflight")}
	if j, err := openJournal(cfg, false); j != nil || err != nil || !strings.Contains(log.String(), "SOCFLOW_INFLIGHT_DIR") {
		t.Errorf("default directory unusable: journal %v, err %v, log %q; want none, no error, a warning naming SOCFLOW_INFLIGHT_DIR", j, err, log.String())
	}
	if _, err := openJournal(cfg, true); err == nil || !strings.Contains(err.Error(), "SOCFLOW_INFLIGHT_DIR") {
		t.Errorf("named directory unusable: %v, want an error naming SOCFLOW_INFLIGHT_DIR", err)
	}
	cfg.InflightDir = t.TempDir()
	j, err := openJournal(cfg, true)
	if err != nil || j == nil {
		t.Fatalf("a writable directory: %v, %v", j, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}
