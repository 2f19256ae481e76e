package replaytests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain points the production converters at the replay suite's own key ring: the
// histories are recorded with it (`make record-histories`), so they replay on any
// machine. It is a test key and protects nothing else.
func TestMain(m *testing.M) {
	keys, err := filepath.Abs("codec-test-keys.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("SOCFLOW_CODEC_KEYS", keys)
	os.Exit(m.Run())
}
