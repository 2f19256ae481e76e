package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

func TestEnsureGeneratesOnceAndKeeps(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	calls := 0
	gen := func() (string, error) { calls++; return NewUUIDv4() }
	ref, created, err := s.Ensure("demo", "admin-token", gen)
	if err != nil || !created || ref != "store:demo/admin-token" {
		t.Fatalf("first Ensure: %q %v %v", ref, created, err)
	}
	first, err := s.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	ref2, created, err := s.Ensure("demo", "admin-token", gen)
	if err != nil || created || ref2 != ref {
		t.Fatalf("second Ensure: %q %v %v", ref2, created, err)
	}
	second, _ := s.Resolve(ref)
	if first != second || calls != 1 {
		t.Fatalf("secret regenerated: %q -> %q after %d generations", first, second, calls)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "demo", "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestEnsureConcurrentAttemptsAgree(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	var wg sync.WaitGroup
	created := make(chan bool, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := s.Ensure("demo", "health-key", func() (string, error) { return NewHex(16) })
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d attempts report creating the secret, want exactly 1", n)
	}
}

func TestResolveKinds(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOCFLOW_TEST_SECRET", "from-env")
	s := &Store{Dir: dir}
	for ref, want := range map[spec.SecretRef]string{
		"plain":                     "plain",
		spec.SecretRef("file:" + f): "from-file",
		"env:SOCFLOW_TEST_SECRET":   "from-env",
	} {
		got, err := s.Resolve(ref)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for _, ref := range []spec.SecretRef{"env:SOCFLOW_NOT_SET_ANYWHERE", spec.SecretRef("file:" + filepath.Join(dir, "nope")), "store:demo/none"} {
		if _, err := s.Resolve(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%s) = %v, want ErrNotFound", ref, err)
		}
	}
	if _, err := (&Store{}).Resolve("store:demo/x"); err == nil {
		t.Error("Resolve with no store dir succeeded")
	}
	if _, err := s.Resolve("store:../../etc/passwd"); err == nil {
		t.Error("Resolve accepted a path-escaping store key")
	}
}

func TestPutReplacesTheValue(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	ref, err := s.Put("demo", "connector-mitre-token", "one")
	if err != nil || ref != Ref("demo", "connector-mitre-token") {
		t.Fatalf("Put: %q %v", ref, err)
	}
	if _, err := s.Put("demo", "connector-mitre-token", "two"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Resolve(ref); err != nil || v != "two" {
		t.Errorf("after a second Put: %q %v", v, err)
	}
	if _, err := s.Put("demo", "Bad Key", "x"); err == nil {
		t.Error("a bad key was stored")
	}
}
