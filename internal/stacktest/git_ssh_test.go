package stacktest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/socflow/socflow/internal/stacktest"
)

// lsRemote runs `git ls-remote` against url over the given GIT_SSH_COMMAND.
func lsRemote(t *testing.T, git, sshCommand, url string) (string, error) {
	t.Helper()
	cmd := exec.Command(git, "ls-remote", url)
	cmd.Env = append(os.Environ(), "GIT_SSH_COMMAND="+sshCommand, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSmokeGitOverSSH logs in to the stack's sshd with the client key and the pinned
// host key and lists a bare repository's refs with git; another host key pinned, or
// another client key, is refused.
func TestSmokeGitOverSSH(t *testing.T) {
	g := stacktest.Get(t).GitSSH
	repo := stacktest.NewGitRepo(t)
	repo.Write("README", "smoke\n", 0o644)
	commit := repo.Commit("smoke")
	repo.Push("HEAD:refs/heads/main")

	pinned := g.KnownHosts(t, g.ReadHostKey(t))
	out, err := lsRemote(t, g.GitBin, g.SSHCommand(pinned), g.URL(repo.Bare))
	if err != nil {
		t.Fatalf("git ls-remote over ssh: %v\n%s", err, out)
	}
	if want := commit + "\trefs/heads/main"; !strings.Contains(out, want) {
		t.Fatalf("ls-remote listed %q, want a line %q", out, want)
	}

	// A host key the server does not hold: ssh must refuse before git talks.
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, err := ssh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	wrong := g.KnownHosts(t, string(ssh.MarshalAuthorizedKey(otherPub)))
	out, err = lsRemote(t, g.GitBin, g.SSHCommand(wrong), g.URL(repo.Bare))
	if err == nil || !strings.Contains(out, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("ls-remote with another pinned host key: %v\n%s\nwant a host key refusal", err, out)
	}

	// A client key the server was not given: public-key login is the only way in.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	stranger := filepath.Join(t.TempDir(), "stranger")
	if err := os.WriteFile(stranger, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Key = stranger
	out, err = lsRemote(t, g.GitBin, g.SSHCommand(pinned), g.URL(repo.Bare))
	if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
		t.Fatalf("ls-remote with an unknown client key: %v\n%s\nwant a publickey refusal", err, out)
	}
}
