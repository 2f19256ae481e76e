package activities_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// configTarget is a throwaway Pebble (the "container") and the directories the three
// Wazuh components and their markers go to; the Pebble shares the test's file system,
// so the test reads what it wrote directly.
type configTarget struct {
	pebble    spec.Pebble
	root      string
	markerDir string
	comps     []activities.ConfigComponent
}

func newConfigTarget(t *testing.T) configTarget {
	t.Helper()
	root := t.TempDir()
	return configTarget{
		pebble:    spec.Pebble{Socket: stacktest.Pebble(t)},
		root:      root,
		markerDir: filepath.Join(root, "var/lib/socflow/configrepo"),
		comps: []activities.ConfigComponent{
			{Name: "var/ossec", Dest: filepath.Join(root, "var/ossec")},
			{Name: "rsyslog", Dest: filepath.Join(root, "etc/rsyslog.d")},
			{Name: "filebeat", Dest: filepath.Join(root, "etc/filebeat")},
		},
	}
}

// input syncs ref of repo into the target, with the stack's client key and pinned host key.
func (ct configTarget) input(t *testing.T, repo *stacktest.GitRepo, ref, applied string) activities.SyncConfigRepoInput {
	g := stacktest.Get(t).GitSSH
	return activities.SyncConfigRepoInput{
		Instance: "wazuh-test", Pebble: ct.pebble, URL: g.ConfigURL(repo.Bare, ref),
		SSHKey: spec.SecretRef("file:" + g.Key), HostKey: g.ReadHostKey(t), Components: ct.comps,
		MarkerDir: ct.markerDir, AppliedCommit: applied, CacheDir: filepath.Join(ct.root, "cache"),
	}
}

func syncConfig(t *testing.T, in activities.SyncConfigRepoInput) (activities.SyncConfigRepoResult, error) {
	t.Helper()
	v, err := probeEnv(t).ExecuteActivity(nilActs.SyncConfigRepo, in)
	if err != nil {
		return activities.SyncConfigRepoResult{}, err
	}
	var res activities.SyncConfigRepoResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	t.Logf("sync of %s: %+v", in.URL, res)
	return res, nil
}

func mustSync(t *testing.T, in activities.SyncConfigRepoInput) activities.SyncConfigRepoResult {
	t.Helper()
	res, err := syncConfig(t, in)
	if err != nil {
		t.Fatalf("SyncConfigRepo: %v", err)
	}
	return res
}

// wazuhConfig commits the three components' first version.
func wazuhConfig(repo *stacktest.GitRepo) string {
	repo.Write("var/ossec/etc/ossec.conf", "<ossec_config>v1</ossec_config>\n", 0o644)
	repo.Write("var/ossec/etc/rules/local_rules.xml", "<group name=\"local\"/>\n", 0o644)
	repo.Write("var/ossec/integrations/custom-opencti", "#!/bin/sh\nexec python3 \"$0.py\" \"$@\"\n", 0o755)
	repo.Write("rsyslog/10-wazuh.conf", "module(load=\"imtcp\")\n", 0o644)
	repo.Write("rsyslog/20-old.conf", "# to be removed\n", 0o644)
	repo.Write("filebeat/filebeat.yml", "output.elasticsearch: {}\n", 0o644)
	repo.Write("README.md", "not a component\n", 0o644)
	return repo.Commit("wazuh configuration v1")
}

// requireFile asserts a container file's content and mode.
func requireFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("container file: %v", err)
	}
	fi, _ := os.Stat(p)
	if string(b) != content || fi.Mode().Perm() != mode {
		t.Fatalf("%s holds %q mode %o, want %q mode %o", p, b, fi.Mode().Perm(), content, mode)
	}
}

func requireList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestSyncConfigRepoAppliesOnlyWhatChanged(t *testing.T) {
	ct := newConfigTarget(t)
	repo := stacktest.NewGitRepo(t)
	c1 := wazuhConfig(repo)
	repo.Push("HEAD:refs/heads/main")

	// First sync: everything is applied, with its modes.
	res := mustSync(t, ct.input(t, repo, "main", ""))
	if res.Commit != c1 || res.Ref != "refs/heads/main" || !res.Fetched {
		t.Fatalf("first sync %+v, want commit %s fetched", res, c1)
	}
	requireList(t, "applied", res.Applied, []string{"var/ossec", "rsyslog", "filebeat"})
	ossec, rsyslog := ct.comps[0].Dest, ct.comps[1].Dest
	requireFile(t, filepath.Join(ossec, "etc/ossec.conf"), "<ossec_config>v1</ossec_config>\n", 0o644)
	requireFile(t, filepath.Join(ossec, "integrations/custom-opencti"), "#!/bin/sh\nexec python3 \"$0.py\" \"$@\"\n", 0o755)
	requireFile(t, filepath.Join(rsyslog, "20-old.conf"), "# to be removed\n", 0o644)
	requireFile(t, filepath.Join(ct.comps[2].Dest, "filebeat.yml"), "output.elasticsearch: {}\n", 0o644)
	if _, err := os.Stat(filepath.Join(ct.root, "README.md")); err == nil {
		t.Fatal("a file outside every component was pushed")
	}

	// The container drifts in var/ossec, and a file socflow never wrote sits beside
	// the rsyslog ones: a commit touching only rsyslog must leave both alone.
	drifted := filepath.Join(ossec, "etc/ossec.conf")
	if err := os.WriteFile(drifted, []byte("edited in the container\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(rsyslog, "99-local.conf")
	if err := os.WriteFile(foreign, []byte("not from the repository\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo.Write("rsyslog/10-wazuh.conf", "module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"6514\")\n", 0o644)
	repo.Remove("rsyslog/20-old.conf")
	c2 := repo.Commit("rsyslog: listen on 6514")
	repo.Push("HEAD:refs/heads/main")
	res = mustSync(t, ct.input(t, repo, "main", c1))
	if res.Commit != c2 || !res.Fetched {
		t.Fatalf("second sync %+v, want commit %s fetched", res, c2)
	}
	requireList(t, "applied", res.Applied, []string{"rsyslog"})
	requireList(t, "unchanged", res.Unchanged, []string{"var/ossec", "filebeat"})
	requireList(t, "removed", res.Removed, []string{filepath.Join(rsyslog, "20-old.conf")})
	requireFile(t, filepath.Join(rsyslog, "10-wazuh.conf"), "module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"6514\")\n", 0o644)
	if _, err := os.Stat(filepath.Join(rsyslog, "20-old.conf")); !os.IsNotExist(err) {
		t.Fatalf("20-old.conf, gone from the repository, is still in the container: %v", err)
	}
	requireFile(t, foreign, "not from the repository\n", 0o644)
	requireFile(t, drifted, "edited in the container\n", 0o644)

	// The branch has not moved: nothing is fetched (a cache of its own stays empty) and
	// nothing pushed.
	in := ct.input(t, repo, "main", c2)
	in.CacheDir = filepath.Join(t.TempDir(), "fresh-cache")
	res = mustSync(t, in)
	if res.Fetched || res.Commit != c2 || len(res.Applied) != 0 {
		t.Fatalf("sync of an unchanged branch %+v, want nothing fetched or applied", res)
	}
	requireList(t, "unchanged", res.Unchanged, []string{"var/ossec", "rsyslog", "filebeat"})
	if _, err := os.Stat(in.CacheDir); !os.IsNotExist(err) {
		t.Fatalf("the sync of an unchanged branch touched the cache %s: %v", in.CacheDir, err)
	}

	// A marker deleted in the container: that component alone is applied again.
	if err := os.Remove(filepath.Join(ct.markerDir, "var-ossec.tree")); err != nil {
		t.Fatal(err)
	}
	res = mustSync(t, ct.input(t, repo, "main", c2))
	requireList(t, "applied", res.Applied, []string{"var/ossec"})
	requireList(t, "unchanged", res.Unchanged, []string{"rsyslog", "filebeat"})
	if res.Fetched {
		t.Fatal("the worker's cache held the commit, yet it was fetched again")
	}
	requireFile(t, drifted, "<ossec_config>v1</ossec_config>\n", 0o644)
}

func TestSyncConfigRepoFollowsATag(t *testing.T) {
	ct := newConfigTarget(t)
	repo := stacktest.NewGitRepo(t)
	c1 := wazuhConfig(repo)
	repo.Tag("v4.11.0", "release")
	repo.Write("filebeat/filebeat.yml", "unreleased\n", 0o644)
	repo.Commit("unreleased")
	repo.Push("HEAD:refs/heads/main", "refs/tags/v4.11.0")

	res := mustSync(t, ct.input(t, repo, "v4.11.0", ""))
	if res.Commit != c1 || res.Ref != "refs/tags/v4.11.0" {
		t.Fatalf("sync of the tag %+v, want its commit %s", res, c1)
	}
	requireFile(t, filepath.Join(ct.comps[2].Dest, "filebeat.yml"), "output.elasticsearch: {}\n", 0o644)
	res = mustSync(t, ct.input(t, repo, "v4.11.0", c1))
	if res.Fetched || len(res.Applied) != 0 {
		t.Fatalf("second sync of the same tag %+v, want nothing fetched or applied", res)
	}
}

func TestSyncConfigRepoReportsMissingComponents(t *testing.T) {
	ct := newConfigTarget(t)
	repo := stacktest.NewGitRepo(t)
	repo.Write("rsyslog/10-wazuh.conf", "x\n", 0o644)
	c1 := repo.Commit("rsyslog only")
	repo.Push("HEAD:refs/heads/main")
	res := mustSync(t, ct.input(t, repo, "main", ""))
	requireList(t, "applied", res.Applied, []string{"rsyslog"})
	requireList(t, "missing", res.Missing, []string{"var/ossec", "filebeat"})
	if _, err := os.Stat(ct.comps[0].Dest); !os.IsNotExist(err) {
		t.Fatalf("a missing component's destination was touched: %v", err)
	}
	res = mustSync(t, ct.input(t, repo, "main", c1))
	if res.Fetched {
		t.Fatalf("sync of an unchanged branch with missing components fetched: %+v", res)
	}
	requireList(t, "missing", res.Missing, []string{"var/ossec", "filebeat"})
}

func TestSyncConfigRepoRefusesAHostKeyThatIsNotPinned(t *testing.T) {
	g := stacktest.Get(t).GitSSH
	real, _, _, _, err := ssh.ParseAuthorizedKey([]byte(g.ReadHostKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	repo := stacktest.NewGitRepo(t)
	wazuhConfig(repo)
	repo.Push("HEAD:refs/heads/main")
	for name, pinned := range map[string]string{"another key": string(ssh.MarshalAuthorizedKey(other)), "nothing pinned": ""} {
		t.Run(name, func(t *testing.T) {
			ct := newConfigTarget(t)
			in := ct.input(t, repo, "main", "")
			in.HostKey = pinned
			_, err := syncConfig(t, in)
			requirePermanent(t, err, activities.ErrTypeHostKeyRejected, ssh.FingerprintSHA256(real), "ssh-ed25519", "hostKey", "nothing was fetched")
			for _, p := range []string{ct.markerDir, ct.comps[0].Dest, ct.comps[1].Dest, ct.comps[2].Dest, in.CacheDir} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a refused host key: %v", p, err)
				}
			}
		})
	}
}

func TestSyncConfigRepoRefusals(t *testing.T) {
	repo := stacktest.NewGitRepo(t)
	wazuhConfig(repo)
	repo.Push("HEAD:refs/heads/main")
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(stranger, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		mutate  func(*activities.SyncConfigRepoInput)
		errType string
		want    []string
	}{
		{"client key not authorized", func(in *activities.SyncConfigRepoInput) { in.SSHKey = spec.SecretRef(pem.EncodeToMemory(block)) },
			activities.ErrTypeAuthFailed, []string{"sshKey", "authorized_keys"}},
		{"ref not found", func(in *activities.SyncConfigRepoInput) { in.URL = in.URL[:len(in.URL)-len("main")] + "no-such-branch" },
			activities.ErrTypeInvalidInput, []string{"no-such-branch", "no branch or tag"}},
		{"url without ref", func(in *activities.SyncConfigRepoInput) { in.URL = in.URL[:len(in.URL)-len("@main")] },
			activities.ErrTypeInvalidInput, []string{"url:", "ref: is missing"}},
		{"no key", func(in *activities.SyncConfigRepoInput) { in.SSHKey = "" }, activities.ErrTypeInvalidInput, []string{"sshKey"}},
		{"relative dest", func(in *activities.SyncConfigRepoInput) { in.Components[1].Dest = "etc/rsyslog.d" },
			activities.ErrTypeInvalidInput, []string{"components[1].dest"}},
		{"component outside the repository", func(in *activities.SyncConfigRepoInput) { in.Components[0].Name = "../etc" },
			activities.ErrTypeInvalidInput, []string{"components[0].name"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ct := newConfigTarget(t)
			in := ct.input(t, repo, "main", "")
			in.Components = slices.Clone(in.Components)
			tt.mutate(&in)
			_, err := syncConfig(t, in)
			requirePermanent(t, err, tt.errType, tt.want...)
			if _, err := os.Stat(ct.markerDir); !os.IsNotExist(err) {
				t.Errorf("markers written after a refusal: %v", err)
			}
		})
	}
}
