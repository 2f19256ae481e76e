package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/socflow/socflow/internal/configrepo"
	"github.com/socflow/socflow/internal/spec"
)

// ConfigComponent is one directory of a configuration repository and the container
// directory its files go to.
type ConfigComponent struct {
	// Name is the directory in the repository ("var/ossec", "rsyslog", "filebeat").
	Name string `json:"name"`
	// Dest is the absolute directory in the container its files are written below.
	Dest string `json:"dest"`
}

// SyncConfigRepoInput names the repository, the pinned server, and where each component
// goes in which container.
type SyncConfigRepoInput struct {
	// Instance is the instance whose container this is, named in heartbeats and errors.
	Instance string `json:"instance"`
	// Pebble is the workload container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// URL is git+ssh://user@host[:port]/path@ref.
	URL string `json:"url"`
	// SSHKey refers to the private key that logs in; the value is resolved here, so it
	// never enters workflow history, and written only to a 0600 file removed after the sync.
	SSHKey spec.SecretRef `json:"sshKey"`
	// HostKey pins the server: its public key(s) in authorized_keys format. Empty pins
	// nothing, and the sync is refused with the key the server offered.
	HostKey string `json:"hostKey"`
	// Components are the repository directories to apply.
	Components []ConfigComponent `json:"components"`
	// MarkerDir is the container directory holding, per component, a marker with the
	// tree hash applied (written last) and the list of files it wrote.
	MarkerDir string `json:"markerDir"`
	// AppliedCommit is the commit the workflow last applied ("" when it keeps none: the
	// markers alone decide): when the ref still names it and every marker agrees,
	// nothing is fetched or pushed.
	AppliedCommit string `json:"appliedCommit,omitempty"`
	// CacheDir holds the worker's shallow clones (default os.UserCacheDir()/socflow/configrepo).
	CacheDir string `json:"cacheDir,omitempty"`
}

// SyncConfigRepoResult says what the sync found and did.
type SyncConfigRepoResult struct {
	// Commit is the commit the ref names now, and the one the markers record.
	Commit string `json:"commit"`
	// Ref is the full ref that matched (refs/heads/…, refs/tags/…), "" for a hash.
	Ref string `json:"ref,omitempty"`
	// Fetched is true when objects were fetched from the repository: false when the
	// ref's commit is AppliedCommit and every marker agrees, or when the worker's
	// cache already held the commit.
	Fetched bool `json:"fetched"`
	// Applied are the components whose tree differed from their marker, pushed.
	Applied []string `json:"applied,omitempty"`
	// Unchanged are the components whose tree matched their marker.
	Unchanged []string `json:"unchanged,omitempty"`
	// Missing are components the commit has no directory for: skipped, their files in
	// the container left as they are (a directory deleted by mistake must not wipe
	// /var/ossec).
	Missing []string `json:"missing,omitempty"`
	// Removed are container files an applied component's previous tree had and its
	// new one lacks, removed.
	Removed []string `json:"removed,omitempty"`
}

// SyncConfigRepo brings the container's copy of a configuration repository to the commit
// its ref names. The server's host key is checked against the pinned one before any git
// command runs. When the ref still names AppliedCommit and every marker agrees, it
// returns without fetching; otherwise it fetches the commit shallowly (unless the
// worker's cache has it) and pushes each component whose tree hash differs from its
// marker: its files with their modes, then the removal of files its previous tree had
// and this one lacks (other files under Dest are never touched), then its file list,
// and its marker last, so an interrupted apply is redone. Empty directories left by
// removed files stay, and files are owned by Pebble's user (git records no owner).
//
// It heartbeats at least every 5 s while it connects, resolves and fetches, and once per
// pushed file; its start-to-close timeout must cover configrepo.DefaultDialTimeout,
// DefaultCommandTimeout and DefaultFetchTimeout plus the pushes.
func (a *Activities) SyncConfigRepo(ctx context.Context, in SyncConfigRepoInput) (SyncConfigRepoResult, error) {
	var res SyncConfigRepoResult
	repo, err := in.validate()
	if err != nil {
		return res, permanent(ErrTypeInvalidInput, err)
	}
	ep, err := a.pebble(in.Pebble)
	if err != nil {
		return res, classify(err)
	}
	key, err := a.resolve("wazuh.configRepo.sshKey", in.SSHKey)
	if err != nil {
		return res, classify(err)
	}
	stop := beatWhile(ctx, "resolving "+repo.Ref+" of "+repo.SSHURL())
	sess, err := configrepo.Open(ctx, configrepo.Options{Repo: repo, Key: key, HostKey: in.HostKey})
	if err != nil {
		stop()
		return res, configRepoError(in.Instance, err)
	}
	defer sess.Close()
	resolved, err := sess.RemoteCommit(ctx)
	stop()
	if err != nil {
		return res, configRepoError(in.Instance, err)
	}
	res.Commit, res.Ref = resolved.Commit, resolved.Ref

	markers := make([]marker, len(in.Components))
	// Without a commit from the workflow (a deploy keeps none between runs), the
	// container's markers are the record of what was applied.
	current := in.AppliedCommit == "" || resolved.Commit == in.AppliedCommit
	for i, c := range in.Components {
		if markers[i], err = ep.readMarker(ctx, in.MarkerDir, c.Name); err != nil {
			return res, classify(err)
		}
		current = current && markers[i].Commit == resolved.Commit && markers[i].Dest == c.Dest
	}
	if current {
		for i, c := range in.Components {
			if markers[i].Tree == "" {
				res.Missing = append(res.Missing, c.Name)
			} else {
				res.Unchanged = append(res.Unchanged, c.Name)
			}
		}
		return res, nil
	}

	cache, err := configrepo.OpenCache(ctx, in.cacheDir(), repo, "", 0)
	if err != nil {
		return res, err
	}
	stop = beatWhile(ctx, "fetching "+resolved.Commit+" of "+repo.SSHURL())
	res.Fetched, err = sess.Fetch(ctx, cache, resolved)
	stop()
	if err != nil {
		return res, configRepoError(in.Instance, err)
	}
	for i, c := range in.Components {
		applied, removed, err := ep.syncComponent(ctx, cache, resolved.Commit, in.MarkerDir, c, markers[i])
		if err != nil {
			return res, configRepoError(in.Instance, err)
		}
		switch applied {
		case componentApplied:
			res.Applied = append(res.Applied, c.Name)
		case componentMissing:
			res.Missing = append(res.Missing, c.Name)
		default:
			res.Unchanged = append(res.Unchanged, c.Name)
		}
		res.Removed = append(res.Removed, removed...)
	}
	return res, nil
}

// validate checks the input before anything is contacted; errors name the field.
func (in SyncConfigRepoInput) validate() (configrepo.Repo, error) {
	repo, err := configrepo.ParseURL(in.URL)
	if err != nil {
		return repo, fmt.Errorf("url: %w", err)
	}
	if strings.TrimSpace(string(in.SSHKey)) == "" {
		return repo, errors.New("sshKey: is empty: give the private key that logs in to " + repo.Addr())
	}
	if !isCleanAbs(in.MarkerDir) {
		return repo, fmt.Errorf("markerDir: %q is not a clean absolute path", in.MarkerDir)
	}
	if len(in.Components) == 0 {
		return repo, errors.New("components: none given: name the repository directories to apply")
	}
	seen := map[string]string{}
	for i, c := range in.Components {
		if c.Name == "" || path.Clean(c.Name) != c.Name || path.IsAbs(c.Name) || c.Name == "." || strings.HasPrefix(c.Name, "../") || c.Name == ".." {
			return repo, fmt.Errorf("components[%d].name: %q is not a directory of the repository (write it as var/ossec)", i, c.Name)
		}
		if !isCleanAbs(c.Dest) || c.Dest == "/" {
			return repo, fmt.Errorf("components[%d].dest: %q is not a clean absolute directory other than /", i, c.Dest)
		}
		if other, dup := seen[markerKey(c.Name)]; dup {
			return repo, fmt.Errorf("components[%d].name: %q shares its marker with %q: name each directory once", i, c.Name, other)
		}
		seen[markerKey(c.Name)] = c.Name
	}
	return repo, nil
}

func isCleanAbs(p string) bool { return p != "" && path.IsAbs(p) && path.Clean(p) == p }

// cacheDir is where the worker keeps its shallow clones.
func (in SyncConfigRepoInput) cacheDir() string {
	if in.CacheDir != "" {
		return in.CacheDir
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "socflow", "configrepo")
	}
	return filepath.Join(os.TempDir(), "socflow-configrepo")
}

// configRepoError classifies the repository's refusals at the activity boundary: a host
// key that is not the pinned one, a refused login and input the repository cannot
// satisfy are permanent; the rest (network, timeouts) is retried.
func configRepoError(instance string, err error) error {
	var (
		he *configrepo.HostKeyError
		ae *configrepo.AuthError
		ke *configrepo.KeyError
		re *configrepo.RefError
		ro *configrepo.RepoError
		ee *configrepo.EntryError
	)
	switch {
	case errors.As(err, &he):
		fix := "if it is the server's key (ask its operator: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub there), set hostKey to its public key line"
		return permanent(ErrTypeHostKeyRejected, fmt.Errorf("hostKey: %w; nothing was fetched or applied for %s: %s", err, instance, fix))
	case errors.As(err, &ae):
		return permanent(ErrTypeAuthFailed, fmt.Errorf("sshKey: %w: add its public key to %s's authorized_keys on the server, or give the key that is there", err, ae.User))
	case errors.As(err, &ke):
		return permanent(ErrTypeInvalidInput, err)
	case errors.As(err, &re):
		return permanent(ErrTypeInvalidInput, fmt.Errorf("url: %w", err))
	case errors.As(err, &ro):
		return permanent(ErrTypeInvalidInput, fmt.Errorf("url: %w", err))
	case errors.As(err, &ee):
		return permanent(ErrTypeInvalidInput, err)
	}
	return classify(err)
}
