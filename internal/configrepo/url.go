// Package configrepo reads a configuration repository with the system's git over SSH,
// trusting only a pinned host key: it resolves a ref to a commit, fetches that commit
// shallowly into a worker-local cache, and lists a directory's tree hash and files.
// It knows nothing of Temporal or of the containers the files go to.
package configrepo

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Repo is a configuration repository address: git+ssh://user@host[:port]/path@ref.
type Repo struct {
	// User is the SSH login user.
	User string
	// Host is the SSH server's name or address (no brackets for IPv6).
	Host string
	// Port is the SSH port; 22 unless the URL names one.
	Port int
	// Path is the repository's path on the server, as in an ssh:// URL (absolute, or
	// /~/… for one under the user's home).
	Path string
	// Ref is the branch, tag (short or as refs/heads/…, refs/tags/…) or full commit
	// hash to deploy.
	Ref string
}

// URLError says which part of a configuration repository URL is wrong and how to write
// it, so the operator fixes the spec rather than reading git's reaction to it.
type URLError struct {
	// URL is the address as given.
	URL string
	// Part is the part at fault: scheme, user, host, port, path or ref.
	Part string
	// Problem says what is wrong with it.
	Problem string
	// Fix says what to write instead.
	Fix string
}

func (e *URLError) Error() string {
	return fmt.Sprintf("cannot use configuration repository %q: %s: %s; %s", e.URL, e.Part, e.Problem, e.Fix)
}

// urlForm is the form every fix refers to.
const urlForm = "write it as git+ssh://user@host[:port]/path@ref"

// ParseURL parses git+ssh://user@host[:port]/path@ref. The ref follows the last "@"
// of the path, so a ref cannot hold "@"; a path can.
func ParseURL(s string) (Repo, error) {
	bad := func(part, problem, fix string) (Repo, error) {
		return Repo{}, &URLError{URL: s, Part: part, Problem: problem, Fix: fix}
	}
	if strings.TrimSpace(s) != s || s == "" {
		return bad("url", "is empty or has surrounding spaces", urlForm)
	}
	if !strings.Contains(s, "://") && !strings.HasPrefix(s, "git+ssh:") {
		return bad("scheme", "is missing (the scp form user@host:path is not read)", urlForm)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("url", err.Error(), urlForm)
	}
	if u.Scheme != "git+ssh" {
		return bad("scheme", fmt.Sprintf("%q is not supported, only git+ssh", u.Scheme),
			"the repository is read over SSH with the configured key: "+urlForm)
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("host", "is missing", urlForm+" (two slashes after git+ssh:)")
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "#") {
		return bad("url", "has a query or fragment", "remove what follows ? or #; "+urlForm)
	}
	var r Repo
	if u.User == nil || u.User.Username() == "" {
		return bad("user", "is missing", "name the SSH login user: "+urlForm)
	}
	if _, has := u.User.Password(); has {
		return bad("user", "carries a password", "remove it: the SSH key authenticates; "+urlForm)
	}
	r.User = u.User.Username()
	r.Host = u.Hostname()
	if r.Host == "" {
		return bad("host", "is missing", urlForm)
	}
	// ssh would read a leading '-' as an option (the injection git itself refuses).
	if strings.HasPrefix(r.User, "-") {
		return bad("user", "starts with '-', which ssh would read as an option", "name the plain login user")
	}
	if strings.HasPrefix(r.Host, "-") {
		return bad("host", "starts with '-', which ssh would read as an option", "name the plain host name or address")
	}
	r.Port = 22
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port", fmt.Sprintf("%q is not a port number", p), "use 1-65535, or leave it out for 22")
		}
		r.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("port", "is empty after the colon", "remove the colon, or give the port")
	}
	if u.Path == "" || u.Path == "/" {
		return bad("path", "is missing", "name the repository on the server: "+urlForm)
	}
	at := strings.LastIndex(u.Path, "@")
	if at < 0 {
		return bad("ref", "is missing", "append @ and a branch, tag or commit hash: "+urlForm)
	}
	r.Path, r.Ref = u.Path[:at], u.Path[at+1:]
	if r.Path == "" || r.Path == "/" {
		return bad("path", "is missing", "name the repository on the server: "+urlForm)
	}
	if strings.ContainsAny(r.Path, "\x00\n\r") {
		return bad("path", fmt.Sprintf("%q holds a control character", r.Path), "name the repository by its plain path")
	}
	if problem := refProblem(r.Ref); problem != "" {
		return bad("ref", fmt.Sprintf("%q %s", r.Ref, problem), "name a branch, a tag or a full 40-character commit hash")
	}
	return r, nil
}

// refProblem checks the rules of git check-ref-format that a ref name given on its own
// can break, and returns what is wrong ("" when nothing is).
func refProblem(ref string) string {
	switch {
	case ref == "":
		return "is empty"
	case strings.HasPrefix(ref, "-"):
		return "starts with '-'"
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.Contains(ref, "//"):
		return "has an empty path component"
	case strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock"):
		return "ends with '.' or '.lock'"
	case strings.Contains(ref, "..") || strings.Contains(ref, "/."):
		return "holds '..' or a component starting with '.'"
	case strings.HasPrefix(ref, "."):
		return "starts with '.'"
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return fmt.Sprintf("holds %q, which git refuses in ref names", c)
		}
	}
	return ""
}

// IsCommitHash reports whether ref is a full SHA-1 commit hash, which names a commit
// without a ref on the server.
func IsCommitHash(ref string) bool {
	if len(ref) != 40 {
		return false
	}
	for _, c := range ref {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Addr is the SSH server's host:port.
func (r Repo) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// SSHURL is the ssh:// URL git is given (the ref is not part of it).
func (r Repo) SSHURL() string {
	return (&url.URL{Scheme: "ssh", User: url.User(r.User), Host: r.Addr(), Path: r.Path}).String()
}

// String is the repository's address as ParseURL reads it.
func (r Repo) String() string {
	host := r.Host
	if r.Port != 22 {
		host = r.Addr()
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("git+ssh://%s@%s%s@%s", r.User, host, r.Path, r.Ref)
}
