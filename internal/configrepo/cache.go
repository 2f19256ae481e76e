package configrepo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Cache is a bare repository on the worker holding shallow fetches of one configuration
// repository, so a commit already fetched is read without the network.
type Cache struct {
	// Dir is the bare repository.
	Dir     string
	git     string
	timeout time.Duration
}

// OpenCache opens (creating it the first time) the cache of repo under root: one bare
// repository per server and path, so two instances with the same repository share it.
// git and timeout are as in Options (zero values: defaults).
func OpenCache(ctx context.Context, root string, repo Repo, git string, timeout time.Duration) (*Cache, error) {
	o := Options{Git: git, CommandTimeout: timeout}.withDefaults()
	key := sha256.Sum256([]byte(repo.SSHURL()))
	c := &Cache{Dir: filepath.Join(root, hex.EncodeToString(key[:8])+".git"), git: o.Git, timeout: o.CommandTimeout}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("cannot make the configuration repository cache %s: %w", root, err)
	}
	unlock, err := c.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(c.Dir, "HEAD")); err == nil {
		return c, nil
	}
	// Made aside and renamed, so a crash never leaves a half repository in place.
	tmp, err := os.MkdirTemp(root, ".init-")
	if err != nil {
		return nil, fmt.Errorf("cannot make the configuration repository cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := runGit(ctx, c.git, env(""), c.timeout, nil, "init", "--quiet", "--bare", tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, c.Dir); err != nil {
		return nil, fmt.Errorf("cannot make the configuration repository cache: %w", err)
	}
	return c, nil
}

// lock takes the cache's file lock (other workers' processes and this one's other
// activities share the directory), waiting until ctx is done.
func (c *Cache) lock(ctx context.Context) (unlock func(), err error) {
	f, err := os.OpenFile(c.Dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open the cache lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cannot lock the cache %s: %w", c.Dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("cannot lock the cache %s: %w", c.Dir, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run runs a local git command in the cache; stdin may be nil.
func (c *Cache) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	return runGit(ctx, c.git, env(""), c.timeout, stdin, append([]string{"-C", c.Dir}, args...)...)
}

// Has reports whether the cache holds the commit.
func (c *Cache) Has(ctx context.Context, commit string) (bool, error) {
	_, err := c.run(ctx, nil, "cat-file", "-e", commit+"^{commit}")
	var ge *GitError
	var exit *exec.ExitError
	if errors.As(err, &ge) && errors.As(ge.Err, &exit) && ctx.Err() == nil {
		return false, nil
	}
	return err == nil, err
}

// TreeOf returns the hash of the directory dir (a path from the repository's root, like
// "var/ossec") in the commit, and false when the commit has no such directory.
func (c *Cache) TreeOf(ctx context.Context, commit, dir string) (string, bool, error) {
	out, err := c.run(ctx, nil, "ls-tree", "-z", "--full-tree", commit, "--", dir)
	if err != nil {
		return "", false, err
	}
	for _, e := range bytes.Split(out, []byte{0}) {
		meta, name, ok := strings.Cut(string(e), "\t")
		if !ok || name != dir {
			continue
		}
		f := strings.Fields(meta)
		if len(f) != 3 {
			return "", false, fmt.Errorf("cannot read git ls-tree entry %q", e)
		}
		if f[1] != "tree" {
			return "", false, &EntryError{Commit: commit, Path: dir, Problem: "is a " + f[1] + ", not a directory"}
		}
		return f[2], true, nil
	}
	return "", false, nil
}

// File is one regular file of a directory of the repository.
type File struct {
	// Path is the file's path below the directory, slash-separated.
	Path string
	// Mode is 0644, or 0755 for a file git records as executable.
	Mode fs.FileMode
	// Content is the file's content.
	Content []byte
}

// EntryError is a repository entry socflow cannot apply (a symlink, a submodule, a
// name that cannot be a path): the commit must change.
type EntryError struct {
	// Commit and Path locate the entry; Problem says what is wrong with it.
	Commit, Path, Problem string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("cannot apply %s of commit %s: it %s", e.Path, e.Commit, e.Problem)
}

// Files lists the regular files below dir in the commit (git ls-tree -r) with their
// content (one git cat-file --batch), in git's tree order. Symlinks and submodules are
// refused with an *EntryError: the container gets files only.
func (c *Cache) Files(ctx context.Context, commit, dir string) ([]File, error) {
	out, err := c.run(ctx, nil, "ls-tree", "-r", "-z", commit+":"+dir)
	if err != nil {
		return nil, err
	}
	var files []File
	var oids bytes.Buffer
	for _, e := range bytes.Split(out, []byte{0}) {
		if len(e) == 0 {
			continue
		}
		meta, name, ok := strings.Cut(string(e), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("cannot read git ls-tree entry %q", e)
		}
		full := path.Join(dir, name)
		var mode fs.FileMode
		switch f[0] {
		case "100644":
			mode = 0o644
		case "100755":
			mode = 0o755
		case "120000":
			return nil, &EntryError{commit, full, "is a symbolic link: commit the file it points to instead"}
		case "160000":
			return nil, &EntryError{commit, full, "is a submodule: commit its files instead"}
		default:
			return nil, &EntryError{commit, full, "has git mode " + f[0] + ", which is not a regular file"}
		}
		if path.Clean(name) != name || strings.HasPrefix(name, "../") || strings.ContainsAny(name, "\n\r") {
			return nil, &EntryError{commit, full, "has a name that cannot be a path in the container"}
		}
		files = append(files, File{Path: name, Mode: mode})
		oids.WriteString(f[2] + "\n")
	}
	if len(files) == 0 {
		return nil, nil
	}
	blobs, err := c.run(ctx, &oids, "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(bytes.NewReader(blobs))
	for i := range files {
		header, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("cannot read git cat-file output for %s: %w", files[i].Path, err)
		}
		f := strings.Fields(header)
		if len(f) != 3 || f[1] != "blob" {
			return nil, fmt.Errorf("cannot read %s of commit %s: git cat-file answered %q", files[i].Path, commit, strings.TrimSpace(header))
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("cannot read git cat-file size %q", f[2])
		}
		files[i].Content = make([]byte, size)
		if _, err := io.ReadFull(r, files[i].Content); err != nil {
			return nil, fmt.Errorf("cannot read %s of commit %s: %w", files[i].Path, commit, err)
		}
		if _, err := r.Discard(1); err != nil { // the newline after each object
			return nil, fmt.Errorf("cannot read git cat-file output: %w", err)
		}
	}
	return files, nil
}
