package configrepo

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Default bounds of the steps of a session; Options overrides each.
const (
	// DefaultDialTimeout bounds the SSH connection, key exchange and login of the host
	// key check: a server that does not answer within it is down or filtered.
	DefaultDialTimeout = 15 * time.Second
	// DefaultCommandTimeout bounds ls-remote and each local git command: they move
	// a few refs or read objects already on disk.
	DefaultCommandTimeout = 30 * time.Second
	// DefaultFetchTimeout bounds a shallow fetch: one commit's files of a
	// configuration repository, a few megabytes over a slow link at most.
	DefaultFetchTimeout = 2 * time.Minute
)

// Options is what a session with a repository needs. The zero value of each optional
// field means its default.
type Options struct {
	// Repo is the repository to read (required).
	Repo Repo
	// Key is the SSH private key, PEM or OpenSSH format, unencrypted (required). It is a
	// secret: it is written only to a 0600 file in the session's own temporary
	// directory, which Close removes.
	Key string
	// HostKey pins the server: one or more public keys in authorized_keys format (one a
	// line; ed25519, ecdsa or rsa). Empty pins nothing, so the server is refused with
	// its key's fingerprint (a first connection never trusts what it is shown).
	HostKey string
	// Git is the git binary (default "git" on PATH).
	Git string
	// DialTimeout bounds the host key check (default DefaultDialTimeout).
	DialTimeout time.Duration
	// CommandTimeout bounds ls-remote and local git commands (default DefaultCommandTimeout).
	CommandTimeout time.Duration
	// FetchTimeout bounds one fetch (default DefaultFetchTimeout).
	FetchTimeout time.Duration
}

// withDefaults returns a copy of o with the defaults filled in.
func (o Options) withDefaults() Options {
	if o.Git == "" {
		o.Git = "git"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	return o
}

// KeyError is a private or pinned key that cannot be used as given.
type KeyError struct {
	// Field is "sshKey" (the private key) or "hostKey" (the pinned public key).
	Field string
	// Problem says what is wrong and what to give instead.
	Problem string
}

func (e *KeyError) Error() string { return e.Field + ": " + e.Problem }

// HostKeyError is a server that offered a host key other than the pinned ones (or when
// none is pinned): nothing was sent to it and no git command ran.
type HostKeyError struct {
	// Addr is the server's host:port.
	Addr string
	// OfferedType is the offered key's type (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa).
	OfferedType string
	// OfferedFingerprint is the offered key's SHA256 fingerprint (ssh.FingerprintSHA256,
	// what ssh-keygen -lf prints), or "" when ssh refused without saying it.
	OfferedFingerprint string
	// Pinned are the pinned keys' fingerprints; empty when none is pinned.
	Pinned []string
}

func (e *HostKeyError) Error() string {
	offered := "a host key"
	if e.OfferedFingerprint != "" {
		offered = strings.TrimSpace(fmt.Sprintf("%s key %s", e.OfferedType, e.OfferedFingerprint))
	}
	if len(e.Pinned) == 0 {
		return fmt.Sprintf("cannot trust the SSH server at %s: it offered %s and no host key is pinned", e.Addr, offered)
	}
	return fmt.Sprintf("cannot trust the SSH server at %s: it offered %s, which is not the pinned %s", e.Addr, offered, strings.Join(e.Pinned, ", "))
}

// AuthError is a server (whose host key matched) that refused the login.
type AuthError struct {
	// Addr is the server's host:port; User the login user.
	Addr, User string
	// KeyFingerprint is the SHA256 fingerprint of the public half of the key offered.
	KeyFingerprint string
	// Detail is what the SSH layer said.
	Detail string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("cannot log in to %s as %s with key %s: the server refused it (%s)", e.Addr, e.User, e.KeyFingerprint, e.Detail)
}

// Session is one conversation with a repository whose host key was checked: it holds
// the key file and known_hosts file git's ssh uses. Close removes them.
type Session struct {
	opts       Options
	dir        string // temporary directory of the key and known_hosts files
	sshCommand string // GIT_SSH_COMMAND
	clientFP   string // fingerprint of the client key, for refusals
}

// Open parses the keys, connects to the server with Go's SSH client to check its host
// key against the pinned ones and to log in, and only then writes the files git's ssh
// will use. A *KeyError, *HostKeyError or *AuthError says which check failed; other
// errors (the server unreachable) are worth retrying.
func Open(ctx context.Context, o Options) (*Session, error) {
	o = o.withDefaults()
	pinned, err := parsePinned(o.HostKey)
	if err != nil {
		return nil, err
	}
	raw, err := ssh.ParseRawPrivateKey([]byte(o.Key))
	if err != nil {
		var pass *ssh.PassphraseMissingError
		if errors.As(err, &pass) {
			return nil, &KeyError{"sshKey", "is protected by a passphrase: give the key unencrypted (it is kept as a secret)"}
		}
		return nil, &KeyError{"sshKey", "is not an SSH private key (" + err.Error() + "): give the PEM or OpenSSH private key"}
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, &KeyError{"sshKey", "cannot be used for SSH (" + err.Error() + "): give an ed25519, ecdsa or rsa key"}
	}
	block, err := ssh.MarshalPrivateKey(raw, "socflow")
	if err != nil {
		return nil, &KeyError{"sshKey", "cannot be written in OpenSSH format (" + err.Error() + "): give an ed25519, ecdsa or rsa key"}
	}
	s := &Session{opts: o, clientFP: ssh.FingerprintSHA256(signer.PublicKey())}
	if err := s.check(ctx, pinned, signer); err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "socflow-configrepo-"); err != nil {
		return nil, fmt.Errorf("cannot make a directory for the ssh key: %w", err)
	}
	keyFile, knownHosts := filepath.Join(s.dir, "key"), filepath.Join(s.dir, "known_hosts")
	// The alias names the pinned keys in known_hosts whatever the host's spelling
	// (IPv6, port), so ssh checks exactly them.
	const alias = "socflow-config-repository"
	var kh bytes.Buffer
	for _, k := range pinned {
		fmt.Fprintf(&kh, "%s %s", alias, ssh.MarshalAuthorizedKey(k))
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("cannot write the ssh key file: %w", err)
	}
	if err := os.WriteFile(knownHosts, kh.Bytes(), 0o600); err != nil {
		s.Close()
		return nil, fmt.Errorf("cannot write the known_hosts file: %w", err)
	}
	s.sshCommand = fmt.Sprintf("ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "+
		"-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o HostKeyAlias=%s -o HostKeyAlgorithms=%s "+
		"-o BatchMode=yes -o ConnectTimeout=%d -p %d",
		shellQuote(keyFile), shellQuote(knownHosts), alias, "^"+strings.Join(pinnedAlgorithms(pinned), ","),
		int(o.DialTimeout.Seconds()), o.Repo.Port)
	return s, nil
}

// Close removes the session's key and known_hosts files.
func (s *Session) Close() error {
	if s == nil || s.dir == "" {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// check connects with Go's SSH client: the host key is compared with the pinned ones
// during the key exchange, before anything is sent, then the key logs in.
func (s *Session) check(ctx context.Context, pinned []ssh.PublicKey, signer ssh.Signer) error {
	addr := s.opts.Repo.Addr()
	var rejected *HostKeyError
	hostKeyOK := false
	cfg := &ssh.ClientConfig{
		User:              s.opts.Repo.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
		Timeout:           s.opts.DialTimeout,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, p := range pinned {
				if bytes.Equal(p.Marshal(), key.Marshal()) {
					hostKeyOK = true
					return nil
				}
			}
			rejected = &HostKeyError{Addr: addr, OfferedType: key.Type(), OfferedFingerprint: ssh.FingerprintSHA256(key), Pinned: fingerprints(pinned)}
			return rejected
		},
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot connect to the SSH server at %s: %w", addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	switch {
	case rejected != nil:
		return rejected
	case err != nil && hostKeyOK && strings.Contains(err.Error(), "unable to authenticate"):
		// x/crypto/ssh has no error type for a refused login; this is its message.
		return &AuthError{Addr: addr, User: s.opts.Repo.User, KeyFingerprint: s.clientFP, Detail: strings.TrimPrefix(err.Error(), "ssh: handshake failed: ")}
	case err != nil:
		return fmt.Errorf("cannot open an SSH session with %s: %w", addr, err)
	}
	// Logged in: the check is done, and the session ends without running anything.
	return ssh.NewClient(c, chans, reqs).Close()
}

// parsePinned reads authorized_keys-format lines; blank lines and # comments are skipped.
func parsePinned(s string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for n, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, &KeyError{"hostKey", fmt.Sprintf("line %d is not a public key in authorized_keys format (%v): "+
				"give the server's key as \"ssh-ed25519 AAAA… comment\" (its /etc/ssh/ssh_host_*_key.pub)", n+1, err)}
		}
		switch k.Type() {
		case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		default:
			return nil, &KeyError{"hostKey", fmt.Sprintf("line %d is a %s key: pin an ed25519, ecdsa or rsa host key", n+1, k.Type())}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// pinnedAlgorithms are the host key algorithms of the pinned keys' types.
func pinnedAlgorithms(pinned []ssh.PublicKey) []string {
	var algos []string
	for _, k := range pinned {
		names := []string{k.Type()}
		if k.Type() == ssh.KeyAlgoRSA {
			// ssh-rsa names the key; the signatures servers still accept are SHA-2.
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
		}
		for _, n := range names {
			if !slices.Contains(algos, n) {
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// hostKeyAlgorithms lists the pinned types' algorithms first, so a server with several
// host keys shows the pinned one; a server without a key of those types still shows
// one, which is then refused with its fingerprint rather than with "no common algorithm".
func hostKeyAlgorithms(pinned []ssh.PublicKey) []string {
	algos := pinnedAlgorithms(pinned)
	for _, n := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(algos, n) {
			algos = append(algos, n)
		}
	}
	return algos
}

func fingerprints(keys []ssh.PublicKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return out
}

// shellQuote quotes s for the shell git runs GIT_SSH_COMMAND with.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
