package configrepo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/socflow/socflow/internal/configrepo"
	"github.com/socflow/socflow/internal/stacktest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// options reads ref of repo through the stack's sshd with its client key and pinned host key.
func options(t *testing.T, repo *stacktest.GitRepo, ref string) configrepo.Options {
	t.Helper()
	g := stacktest.Get(t).GitSSH
	r, err := configrepo.ParseURL(g.ConfigURL(repo.Bare, ref))
	if err != nil {
		t.Fatal(err)
	}
	return configrepo.Options{Repo: r, Key: g.ReadKey(t), HostKey: g.ReadHostKey(t), Git: g.GitBin}
}

func open(t *testing.T, o configrepo.Options) *configrepo.Session {
	t.Helper()
	s, err := configrepo.Open(testCtx(t), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// authorizedKey returns a new public key of the given type in authorized_keys format,
// and its private key.
func authorizedKey(t *testing.T, kind string) (string, any) {
	t.Helper()
	var priv any
	var err error
	switch kind {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), priv
}

// serverFingerprint is the SHA256 fingerprint of the stack sshd's real host key.
func serverFingerprint(t *testing.T) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(stacktest.Get(t).GitSSH.ReadHostKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(k)
}

func TestRemoteCommitResolvesBranchesTagsAndHashes(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/a.conf", "one\n", 0o644)
	first := repo.Commit("first")
	repo.Tag("light", "")
	repo.Write("rsyslog/a.conf", "two\n", 0o644)
	second := repo.Commit("second")
	repo.Tag("v1", "annotated release")
	repo.Push("HEAD:refs/heads/main", first+":refs/heads/old", "refs/tags/light", "refs/tags/v1",
		first+":refs/heads/both", second+":refs/tags/both")
	tagObject := repo.Git(repo.Work, "rev-parse", "refs/tags/v1")
	if tagObject == second {
		t.Fatal("v1 is not an annotated tag")
	}

	for _, tt := range []struct{ ref, commit, full string }{
		{"main", second, "refs/heads/main"},
		{"old", first, "refs/heads/old"},
		{"light", first, "refs/tags/light"},
		{"v1", second, "refs/tags/v1"}, // peeled: the commit, not the tag object
		{"refs/tags/v1", second, "refs/tags/v1"},
		{"refs/heads/both", first, "refs/heads/both"},
		{"refs/tags/both", second, "refs/tags/both"},
		{first, first, ""},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := open(t, options(t, repo, tt.ref)).RemoteCommit(testCtx(t))
			if err != nil {
				t.Fatalf("RemoteCommit: %v", err)
			}
			if got != (configrepo.Resolved{Commit: tt.commit, Ref: tt.full}) {
				t.Fatalf("RemoteCommit = %+v, want commit %s ref %q", got, tt.commit, tt.full)
			}
		})
	}
	for _, tt := range []struct{ ref, want string }{
		{"nope", "no branch or tag"},
		{"both", "names both a branch and a tag"},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			_, err := open(t, options(t, repo, tt.ref)).RemoteCommit(testCtx(t))
			var re *configrepo.RefError
			if !errors.As(err, &re) || re.Ref != tt.ref || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RemoteCommit(%s) = %v, want a *RefError naming the ref and %q", tt.ref, err, tt.want)
			}
		})
	}
}

func TestRemoteCommitOfAMissingRepository(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Bare += "-absent"
	_, err := open(t, options(t, repo, "main")).RemoteCommit(testCtx(t))
	var re *configrepo.RepoError
	if !errors.As(err, &re) {
		t.Fatalf("RemoteCommit of a missing repository = %v, want a *RepoError", err)
	}
}

// gitIn runs git in dir and returns its trimmed output, or the error.
func gitIn(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestFetchIsShallowCachedAndReadable(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/old.conf", "old\n", 0o644)
	older := repo.Commit("older")
	repo.Write("rsyslog/rsyslog.conf", "module(load=\"imtcp\")\n", 0o644)
	repo.Write("var/ossec/etc/ossec.conf", "<ossec_config/>\n", 0o640)
	repo.Write("var/ossec/bin/hook.sh", "#!/bin/sh\necho hi\n", 0o755)
	repo.Write("filebeat.yml", "not a directory\n", 0o644)
	head := repo.Commit("head")
	repo.Push("HEAD:refs/heads/main")

	o := options(t, repo, "main")
	s := open(t, o)
	res, err := s.RemoteCommit(testCtx(t))
	if err != nil || res.Commit != head {
		t.Fatalf("RemoteCommit = %+v, %v; want %s", res, err, head)
	}
	c, err := configrepo.OpenCache(testCtx(t), t.TempDir(), o.Repo, o.Git, 0)
	if err != nil {
		t.Fatal(err)
	}
	if has, err := c.Has(testCtx(t), head); has || err != nil {
		t.Fatalf("a new cache has %s: %v %v", head, has, err)
	}
	fetched, err := s.Fetch(testCtx(t), c, res)
	if err != nil || !fetched {
		t.Fatalf("Fetch = %v, %v; want a fetch", fetched, err)
	}
	if out, _ := gitIn(c.Dir, "rev-parse", "--is-shallow-repository"); out != "true" {
		t.Errorf("cache is not shallow: %q", out)
	}
	if _, err := gitIn(c.Dir, "cat-file", "-e", older+"^{commit}"); err == nil {
		t.Errorf("the cache holds %s, the parent of the fetched commit: the fetch was not --depth 1", older)
	}
	if fetched, err := s.Fetch(testCtx(t), c, res); fetched || err != nil {
		t.Fatalf("second Fetch = %v, %v; want nothing fetched from a cache holding the commit", fetched, err)
	}

	tree, ok, err := c.TreeOf(testCtx(t), head, "var/ossec")
	want := repo.Git(repo.Work, "rev-parse", head+":var/ossec")
	if err != nil || !ok || tree != want {
		t.Fatalf("TreeOf(var/ossec) = %q %v %v, want %s", tree, ok, err, want)
	}
	if _, ok, err := c.TreeOf(testCtx(t), head, "filebeat"); ok || err != nil {
		t.Fatalf("TreeOf(filebeat) = %v %v, want absent", ok, err)
	}
	var ee *configrepo.EntryError
	if _, _, err := c.TreeOf(testCtx(t), head, "filebeat.yml"); !errors.As(err, &ee) {
		t.Fatalf("TreeOf(a file) = %v, want an *EntryError", err)
	}
	files, err := c.Files(testCtx(t), head, "var/ossec")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]configrepo.File{}
	for _, f := range files {
		got[f.Path] = f
	}
	if len(got) != 2 || got["bin/hook.sh"].Mode != 0o755 || string(got["bin/hook.sh"].Content) != "#!/bin/sh\necho hi\n" ||
		got["etc/ossec.conf"].Mode != 0o644 || string(got["etc/ossec.conf"].Content) != "<ossec_config/>\n" {
		t.Fatalf("Files(var/ossec) = %+v", files)
	}

	// A hash that no ref names: protocol v2 serves it.
	r2 := options(t, repo, older)
	got2, err := open(t, r2).RemoteCommit(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if fetched, err := open(t, r2).Fetch(testCtx(t), c, got2); !fetched || err != nil {
		t.Fatalf("Fetch by hash = %v, %v", fetched, err)
	}
	if files, err := c.Files(testCtx(t), older, "rsyslog"); err != nil || len(files) != 1 || files[0].Path != "old.conf" {
		t.Fatalf("Files of the commit fetched by hash = %+v, %v", files, err)
	}
}

func TestFilesRefusesSymlinks(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/a.conf", "a\n", 0o644)
	if err := os.Symlink("a.conf", filepath.Join(repo.Work, "rsyslog", "link")); err != nil {
		t.Fatal(err)
	}
	head := repo.Commit("symlink")
	repo.Push("HEAD:refs/heads/main")
	o := options(t, repo, "main")
	s := open(t, o)
	res, err := s.RemoteCommit(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := configrepo.OpenCache(testCtx(t), t.TempDir(), o.Repo, o.Git, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(testCtx(t), c, res); err != nil {
		t.Fatal(err)
	}
	_, err = c.Files(testCtx(t), head, "rsyslog")
	var ee *configrepo.EntryError
	if !errors.As(err, &ee) || ee.Path != "rsyslog/link" || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Files with a symlink = %v, want an *EntryError naming rsyslog/link", err)
	}
}

func TestOpenRefusesAHostKeyThatIsNotPinned(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	other, _ := authorizedKey(t, "ed25519")
	for name, pinned := range map[string]string{"another key": other, "nothing pinned": ""} {
		t.Run(name, func(t *testing.T) {
			o := options(t, repo, "main")
			o.HostKey = pinned
			s, err := configrepo.Open(testCtx(t), o)
			var he *configrepo.HostKeyError
			if !errors.As(err, &he) {
				t.Fatalf("Open = %v, %v; want a *HostKeyError", s, err)
			}
			if he.OfferedFingerprint != serverFingerprint(t) || he.OfferedType != ssh.KeyAlgoED25519 {
				t.Fatalf("offered %s %s, want the server's ssh-ed25519 %s", he.OfferedType, he.OfferedFingerprint, serverFingerprint(t))
			}
			if !strings.Contains(err.Error(), serverFingerprint(t)) {
				t.Fatalf("error %q does not name the offered fingerprint", err)
			}
			t.Log(err)
		})
	}
}

func TestOpenAcceptsThePinAmongOthers(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/a.conf", "a\n", 0o644)
	head := repo.Commit("a")
	repo.Push("HEAD:refs/heads/main")
	rsaKey, _ := authorizedKey(t, "rsa")
	ecdsaKey, _ := authorizedKey(t, "ecdsa")
	o := options(t, repo, "main")
	o.HostKey = "# rotated keys\n" + rsaKey + ecdsaKey + "\n" + o.HostKey + "\n"
	res, err := open(t, o).RemoteCommit(testCtx(t))
	if err != nil || res.Commit != head {
		t.Fatalf("RemoteCommit with the pin among others = %+v, %v", res, err)
	}
	// A server without a key of the pinned type shows another, refused by fingerprint.
	o.HostKey = ecdsaKey
	_, err = configrepo.Open(testCtx(t), o)
	var he *configrepo.HostKeyError
	if !errors.As(err, &he) || he.OfferedFingerprint != serverFingerprint(t) || len(he.Pinned) != 1 || !strings.HasPrefix(he.Pinned[0], "ecdsa-sha2-nistp256 SHA256:") {
		t.Fatalf("Open with only an ecdsa key pinned = %v, want a *HostKeyError with the server's fingerprint", err)
	}
}

func TestOpenRefusesAKeyTheServerDoesNotKnow(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			_, priv := authorizedKey(t, kind)
			block, err := ssh.MarshalPrivateKey(priv, "")
			if err != nil {
				t.Fatal(err)
			}
			o := options(t, repo, "main")
			o.Key = string(pem.EncodeToMemory(block))
			_, err = configrepo.Open(testCtx(t), o)
			var ae *configrepo.AuthError
			if !errors.As(err, &ae) || ae.User != o.Repo.User || !strings.HasPrefix(ae.KeyFingerprint, "SHA256:") {
				t.Fatalf("Open with an unknown %s key = %v, want an *AuthError", kind, err)
			}
		})
	}
}

func TestOpenRefusesUnusableKeys(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	_, priv := authorizedKey(t, "ed25519")
	locked, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, field string
		mutate      func(*configrepo.Options)
		want        string
	}{
		{"key not a key", "sshKey", func(o *configrepo.Options) { o.Key = "hello" }, "not an SSH private key"},
		{"key with a passphrase", "sshKey", func(o *configrepo.Options) { o.Key = string(pem.EncodeToMemory(locked)) }, "passphrase"},
		{"host key not a key", "hostKey", func(o *configrepo.Options) { o.HostKey = "ssh-ed25519 notbase64" }, "authorized_keys format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := options(t, repo, "main")
			tt.mutate(&o)
			_, err := configrepo.Open(testCtx(t), o)
			var ke *configrepo.KeyError
			if !errors.As(err, &ke) || ke.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want a *KeyError on %s mentioning %q", err, tt.field, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error %q quotes the key", err)
			}
		})
	}
}

func TestOpenUnreachableIsNotTyped(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	o := options(t, repo, "main")
	o.Repo.Port = stacktest.FreePort(t)
	_, err := configrepo.Open(testCtx(t), o)
	var he *configrepo.HostKeyError
	var ae *configrepo.AuthError
	if err == nil || errors.As(err, &he) || errors.As(err, &ae) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Open of a closed port = %v, want a plain connection error", err)
	}
}

func TestSessionKeepsTheKeyPrivateAndRemovesIt(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	o := options(t, repo, "main")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	s, err := configrepo.Open(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(tmp, "socflow-configrepo-*"))
	if len(dirs) != 1 {
		t.Fatalf("session directories %v, want one", dirs)
	}
	fi, err := os.Stat(filepath.Join(dirs[0], "key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("Close left %v in %s", left, tmp)
	}
}

// TestGitsSSHChecksThePinToo: git's own ssh connection is held to the same pin and key,
// so a server that changed after Open's check is refused with the same typed errors.
func TestGitsSSHChecksThePinToo(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/a.conf", "a\n", 0o644)
	repo.Commit("a")
	repo.Push("HEAD:refs/heads/main")

	s := open(t, options(t, repo, "main"))
	_, knownHosts := configrepo.SessionFiles(s)
	other, _ := authorizedKey(t, "ed25519")
	if err := os.WriteFile(knownHosts, []byte("socflow-config-repository "+other), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.RemoteCommit(testCtx(t))
	var he *configrepo.HostKeyError
	if !errors.As(err, &he) || he.OfferedFingerprint != serverFingerprint(t) {
		t.Fatalf("ls-remote against another known host key = %v, want a *HostKeyError with the server's fingerprint", err)
	}

	s = open(t, options(t, repo, "main"))
	keyFile, _ := configrepo.SessionFiles(s)
	_, priv := authorizedKey(t, "ed25519")
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.RemoteCommit(testCtx(t))
	var ae *configrepo.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("ls-remote with a key the server does not know = %v, want an *AuthError", err)
	}
}

func TestFetchStopsAtItsTimeout(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/a.conf", "a\n", 0o644)
	repo.Commit("a")
	repo.Push("HEAD:refs/heads/main")
	o := options(t, repo, "main")
	o.FetchTimeout = time.Millisecond
	s := open(t, o)
	res, err := s.RemoteCommit(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := configrepo.OpenCache(testCtx(t), t.TempDir(), o.Repo, o.Git, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Fetch(testCtx(t), c, res)
	var ge *configrepo.GitError
	if !errors.As(err, &ge) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch with a 1 ms timeout = %v, want a *GitError for the deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Fetch returned %s after its 1 ms timeout", d)
	}
	if has, _ := c.Has(testCtx(t), res.Commit); has {
		t.Fatal("the commit arrived despite the timeout")
	}
}
