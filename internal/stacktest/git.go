package stacktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// URL returns the ssh:// URL of a repository path on the stack's sshd (the absolute
// path of a bare repository under Root).
func (g GitSSH) URL(repoPath string) string {
	return fmt.Sprintf("ssh://%s@%s:%d%s", g.User, g.Host, g.Port, repoPath)
}

// ConfigURL returns the repository's address in the form socflow's Wazuh spec takes,
// git+ssh://user@host:port/path@ref.
func (g GitSSH) ConfigURL(repoPath, ref string) string {
	return fmt.Sprintf("git+ssh://%s@%s:%d%s@%s", g.User, g.Host, g.Port, repoPath, ref)
}

// SSHCommand returns a GIT_SSH_COMMAND that logs in with the stack's client key and
// trusts no host key but the one in knownHosts (a known_hosts file), never prompting.
func (g GitSSH) SSHCommand(knownHosts string) string {
	return fmt.Sprintf("ssh -F /dev/null -i '%s' -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "+
		"-o UserKnownHostsFile='%s' -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=5", g.Key, knownHosts)
}

// KnownHosts writes a known_hosts file pinning hostKey (an authorized_keys-format line)
// for the stack's sshd and returns its path.
func (g GitSSH) KnownHosts(t testing.TB, hostKey string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	fields := strings.Fields(hostKey)
	if len(fields) < 2 {
		t.Fatalf("host key %q is not an authorized_keys line", hostKey)
	}
	line := fmt.Sprintf("[%s]:%d %s %s\n", g.Host, g.Port, fields[0], fields[1])
	if err := os.WriteFile(f, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// ReadHostKey returns the stack sshd's public host key line.
func (g GitSSH) ReadHostKey(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(g.HostKey)
	if err != nil {
		t.Fatalf("cannot read the stack sshd's host key: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// ReadKey returns the stack's client private key (PEM, OpenSSH format).
func (g GitSSH) ReadKey(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(g.Key)
	if err != nil {
		t.Fatalf("cannot read the stack's git client key: %v", err)
	}
	return string(b)
}

// GitRepo is a bare repository in the stack's git root, served by its sshd, and a work
// tree the test commits into and pushes from (over the file system: only the reader
// under test goes through SSH). Both are removed when the test ends.
type GitRepo struct {
	t    testing.TB
	git  string
	Bare string // absolute path of the bare repository: its path in ssh:// URLs
	Work string // the work tree
}

// NewGitRepo creates an empty bare repository and a work tree for it.
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	g := Get(t).GitSSH
	if err := os.MkdirAll(g.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	bare, err := os.MkdirTemp(g.Root, strings.ReplaceAll(t.Name(), "/", "_")+"-*.git")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bare) })
	r := &GitRepo{t: t, git: g.GitBin, Bare: bare, Work: t.TempDir()}
	r.Git(bare, "init", "-q", "--bare")
	r.Git(r.Work, "init", "-q", "-b", "main")
	return r
}

// Git runs git in dir with a fixed identity and no user or system configuration, and
// returns its trimmed output; it fails the test on error.
func (r *GitRepo) Git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(r.git, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=socflow test", "GIT_AUTHOR_EMAIL=test@socflow.invalid",
		"GIT_COMMITTER_NAME=socflow test", "GIT_COMMITTER_EMAIL=test@socflow.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes a file of the work tree (parents made) with the given mode.
func (r *GitRepo) Write(path, content string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.Work, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		r.t.Fatal(err)
	}
}

// Remove removes a file or directory of the work tree.
func (r *GitRepo) Remove(path string) {
	r.t.Helper()
	if err := os.RemoveAll(filepath.Join(r.Work, path)); err != nil {
		r.t.Fatal(err)
	}
}

// Commit commits every change of the work tree and returns the commit's hash.
func (r *GitRepo) Commit(message string) string {
	r.t.Helper()
	r.Git(r.Work, "add", "-A")
	r.Git(r.Work, "commit", "-q", "--allow-empty", "-m", message)
	return r.Git(r.Work, "rev-parse", "HEAD")
}

// Push pushes refspecs (e.g. "HEAD:refs/heads/main") into the bare repository, forced.
func (r *GitRepo) Push(refspecs ...string) {
	r.t.Helper()
	r.Git(r.Work, append([]string{"push", "-q", "--force", r.Bare}, refspecs...)...)
}

// Tag makes a tag of the work tree's HEAD (annotated when message is not empty).
func (r *GitRepo) Tag(name, message string) {
	r.t.Helper()
	if message == "" {
		r.Git(r.Work, "tag", "-f", name)
		return
	}
	r.Git(r.Work, "tag", "-f", "-a", name, "-m", message)
}
