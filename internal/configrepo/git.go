package configrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// GitError is a git command that failed for a reason this package does not classify
// (network trouble, a server error): worth retrying.
type GitError struct {
	// Args are git's arguments.
	Args []string
	// Stderr is what git said, trimmed.
	Stderr string
	// Err is the exit or timeout error.
	Err error
}

func (e *GitError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("git %s failed: %s", strings.Join(e.Args, " "), msg)
}

func (e *GitError) Unwrap() error { return e.Err }

// RefError is a ref the repository does not resolve as asked: absent, ambiguous, or a
// commit the server will not serve. Retrying does not change it; the spec must.
type RefError struct {
	// Repo is the repository's ssh:// URL; Ref the ref as given.
	Repo, Ref string
	// Problem says what is wrong and what to write instead.
	Problem string
}

func (e *RefError) Error() string {
	return fmt.Sprintf("cannot resolve ref %q of %s: %s", e.Ref, e.Repo, e.Problem)
}

// RepoError is a repository path the server does not serve.
type RepoError struct {
	// Repo is the repository's ssh:// URL; Detail what the server said.
	Repo, Detail string
}

func (e *RepoError) Error() string {
	return fmt.Sprintf("cannot read %s: the server has no repository there (%s): check the path in the URL", e.Repo, e.Detail)
}

// Resolved is a ref resolved on the server.
type Resolved struct {
	// Commit is the commit the ref names (an annotated tag peeled).
	Commit string
	// Ref is the full ref name that matched (refs/heads/…, refs/tags/…), or "" when the
	// ref is a commit hash.
	Ref string
}

// env is the environment of every git command: the worker's, less anything that could
// send git elsewhere or change what it reads (GIT_*, the user's and system's git
// configuration, an ssh agent), in the C locale so its messages can be classified.
func env(sshCommand string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "SSH_AUTH_SOCK=") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if sshCommand != "" {
		out = append(out, "GIT_SSH_COMMAND="+sshCommand, "GIT_SSH_VARIANT=ssh")
	}
	return out
}

// runGit runs git with a timeout; on timeout or cancellation its whole process group
// (ssh included) is killed. stdin may be nil.
func runGit(ctx context.Context, git string, environ []string, timeout time.Duration, stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, args...)
	cmd.Env = environ
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %s)", ctx.Err(), timeout)
		}
		return stdout.Bytes(), &GitError{Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// remote runs a git command that talks to the repository and classifies its refusals.
func (s *Session) remote(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	out, err := runGit(ctx, s.opts.Git, env(s.sshCommand), timeout, nil, args...)
	return out, s.classify(err)
}

var fingerprintRE = regexp.MustCompile(`SHA256:[A-Za-z0-9+/]{43}`)

// classify turns what git and ssh said into the package's typed errors. The Go check
// in Open makes these rare: they catch a server that changed between the two.
func (s *Session) classify(err error) error {
	var ge *GitError
	if !errors.As(err, &ge) {
		return err
	}
	msg := ge.Stderr
	switch {
	case strings.Contains(msg, "Host key verification failed") || strings.Contains(msg, "REMOTE HOST IDENTIFICATION HAS CHANGED"):
		he := &HostKeyError{Addr: s.opts.Repo.Addr(), OfferedFingerprint: fingerprintRE.FindString(msg)}
		if pinned, perr := parsePinned(s.opts.HostKey); perr == nil {
			he.Pinned = fingerprints(pinned)
		}
		return he
	case strings.Contains(msg, "Permission denied (publickey"):
		return &AuthError{Addr: s.opts.Repo.Addr(), User: s.opts.Repo.User, KeyFingerprint: s.clientFP, Detail: lastLine(msg)}
	case strings.Contains(msg, "does not appear to be a git repository") || strings.Contains(msg, "not a git repository"):
		return &RepoError{Repo: s.opts.Repo.SSHURL(), Detail: lastLine(msg)}
	}
	return err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// RemoteCommit resolves the session's ref with git ls-remote: a branch
// (refs/heads/REF), a tag (refs/tags/REF, an annotated one peeled to its commit), a
// full ref name as written, or a full commit hash, which is returned as it is (the
// server is asked for it by Fetch). A name that is both a branch and a tag is refused
// as ambiguous.
func (s *Session) RemoteCommit(ctx context.Context) (Resolved, error) {
	ref := s.opts.Repo.Ref
	if IsCommitHash(ref) {
		return Resolved{Commit: ref}, nil
	}
	candidates := []string{"refs/heads/" + ref, "refs/tags/" + ref}
	if strings.HasPrefix(ref, "refs/") {
		candidates = []string{ref}
	}
	args := []string{"ls-remote", s.opts.Repo.SSHURL()}
	for _, c := range candidates {
		args = append(args, c, c+"^{}")
	}
	out, err := s.remote(ctx, s.opts.CommandTimeout, args...)
	if err != nil {
		return Resolved{}, err
	}
	listed := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if oid, name, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok {
			listed[name] = oid
		}
	}
	var found []Resolved
	for _, c := range candidates {
		oid, ok := listed[c]
		if !ok {
			continue
		}
		if peeled, ok := listed[c+"^{}"]; ok {
			oid = peeled
		}
		found = append(found, Resolved{Commit: oid, Ref: c})
	}
	repo := s.opts.Repo.SSHURL()
	switch len(found) {
	case 0:
		return Resolved{}, &RefError{Repo: repo, Ref: ref, Problem: "no branch or tag of that name: push it, or name an existing branch, tag or full commit hash"}
	case 1:
		return found[0], nil
	}
	return Resolved{}, &RefError{Repo: repo, Ref: ref, Problem: fmt.Sprintf("names both a branch and a tag: write @refs/heads/%s or @refs/tags/%s", ref, ref)}
}

// Fetch fetches the resolved commit, and nothing older (--depth 1), into the cache,
// unless the cache holds it already; it reports whether it fetched. A branch that moved
// between RemoteCommit and the fetch is an error worth retrying (the next attempt
// resolves it again).
func (s *Session) Fetch(ctx context.Context, c *Cache, r Resolved) (fetched bool, err error) {
	unlock, err := c.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	if has, err := c.Has(ctx, r.Commit); err != nil || has {
		return false, err
	}
	want := r.Ref
	if want == "" {
		want = r.Commit
	}
	// A local ref keeps the fetched objects reachable, so git's garbage collection
	// leaves them to the next sync of the same commit.
	_, err = s.remote(ctx, s.opts.FetchTimeout, "-C", c.Dir, "fetch", "--quiet", "--depth=1", "--no-tags",
		"--no-recurse-submodules", s.opts.Repo.SSHURL(), "+"+want+":refs/socflow/fetched")
	var ge *GitError
	if errors.As(err, &ge) && r.Ref == "" && (strings.Contains(ge.Stderr, "not our ref") || strings.Contains(ge.Stderr, "unadvertised object") ||
		strings.Contains(ge.Stderr, "couldn't find remote ref")) {
		return false, &RefError{Repo: s.opts.Repo.SSHURL(), Ref: r.Commit,
			Problem: "the server does not serve that commit (" + lastLine(ge.Stderr) + "): check the hash, or name the branch or tag holding it"}
	}
	if err != nil {
		return false, err
	}
	has, err := c.Has(ctx, r.Commit)
	if err != nil {
		return true, err
	}
	if !has {
		return true, fmt.Errorf("cannot fetch commit %s of %s: %s moved while it was fetched; the next attempt resolves it again", r.Commit, s.opts.Repo.SSHURL(), r.Ref)
	}
	return true, nil
}
