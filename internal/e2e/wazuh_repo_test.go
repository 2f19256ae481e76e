package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/ssh"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/workflows"
)

// wazuhRepo gives inst a configuration repository on the stack's sshd, pinned to its
// real host key, with one file per component, pushed to main.
func wazuhRepo(t *testing.T, inst *wazuh.Instance) *stacktest.GitRepo {
	t.Helper()
	g := stacktest.Get(t).GitSSH
	repo := stacktest.NewGitRepo(t)
	repo.Write("var/ossec/etc/rules/local_rules.xml", "<group name=\"local,\">\n</group>\n", 0o640)
	repo.Write("rsyslog/10-local.conf", "# local rsyslog rules, v1\n", 0o644)
	repo.Write("filebeat/wazuh-template.json", "{}\n", 0o644)
	repo.Commit("first")
	repo.Push("HEAD:refs/heads/main")
	inst.Wazuh.ConfigRepo = &wazuh.ConfigRepo{URL: g.ConfigURL(repo.Bare, "main"), SSHKey: spec.SecretRef("file:" + g.Key), HostKey: g.ReadHostKey(t)}
	return repo
}

// wazuhSyslog gives inst rsyslog's TLS listener: a server certificate from one CA, and
// a logs CA for the clients; it returns the logs CA and the server's CA.
func wazuhSyslog(t *testing.T, inst *wazuh.Instance) (logsCA, serverCA *stacktest.CA) {
	t.Helper()
	serverCA, logsCA = stacktest.NewCA(t, "syslog-server-ca"), stacktest.NewCA(t, "logs-ca")
	cert, key, _ := serverCA.Issue(t, "localhost", true)
	inst.Wazuh.Syslog = &wazuh.Syslog{Cert: spec.SecretRef("file:" + cert), Key: spec.SecretRef("file:" + key), CA: spec.SecretRef("file:" + logsCA.CertFile)}
	return logsCA, serverCA
}

// since is when each of the node's services last changed state: a restart moves it.
func since(t *testing.T, inst wazuh.Instance, k int) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for name, s := range services(t, inst.Nodes[k].Pebble.Socket) {
		out[name] = s.CurrentSince
	}
	return out
}

func deployWazuh(t *testing.T, queue string, inst wazuh.Instance) (workflows.DeployWazuhResult, error) {
	t.Helper()
	c := temporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res workflows.DeployWazuhResult
	err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &res)
	return res, err
}

// TestWazuhConfigRepoAndSyslog: the repository's components land where they belong,
// rsyslog takes TLS clients of the logs CA only, a commit touching only rsyslog
// restarts only rsyslog, and an unchanged ref restarts nothing.
func TestWazuhConfigRepoAndSyslog(t *testing.T) {
	queue := inProcessWorker(t, temporalClient(t), t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{})
	repo := wazuhRepo(t, &inst)
	logsCA, serverCA := wazuhSyslog(t, &inst)

	res, err := deployWazuh(t, queue, inst)
	if err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	if res.ConfigCommit == "" {
		t.Error("the result names no configuration commit")
	}
	for _, f := range []string{"/var/ossec/etc/rules/local_rules.xml", "/etc/rsyslog-wazuh/conf.d/10-local.conf", "/etc/filebeat/wazuh-template.json"} {
		if _, err := os.Stat(inst.Nodes[0].Path(f)); err != nil {
			t.Errorf("the repository's file is not in the container: %v", err)
		}
	}

	// rsyslog on the syslog port: a client of the logs CA is collected, others are not.
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert())
	_, _, good := logsCA.Issue(t, "agent-1", false)
	_, _, foreign := stacktest.NewCA(t, "other-ca").Issue(t, "agent-2", false)
	port := inst.Nodes[0].SyslogPort
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := stacktest.SendSyslog(t, port, roots, nil, "<13>1 - host app - - - no-cert-"+run+"\n"); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	if err := stacktest.SendSyslog(t, port, roots, &foreign, "<13>1 - host app - - - foreign-"+run+"\n"); err == nil {
		t.Error("a client of another CA was accepted")
	}
	if err := stacktest.SendSyslog(t, port, roots, &good, "<13>1 - host app - - - good-"+run+"\n"); err != nil {
		t.Fatalf("a client of the logs CA was refused: %v", err)
	}
	collected := inst.Nodes[0].Path("/var/log/collectors/remote.log")
	waitFor(t, 30*time.Second, "the line in the collector file", func() bool {
		b, _ := os.ReadFile(collected)
		return strings.Contains(string(b), "good-"+run)
	})
	if b, _ := os.ReadFile(collected); strings.Contains(string(b), "no-cert-"+run) || strings.Contains(string(b), "foreign-"+run) {
		t.Errorf("a refused client's line was collected:\n%s", b)
	}

	// One commit touching only rsyslog: rsyslog alone is restarted.
	before := since(t, inst, 0)
	reloads := logCount(t, inst.Nodes[0].Pebble.Socket, wazuh.ManagerService, "Completed.")
	repo.Write("rsyslog/10-local.conf", "# local rsyslog rules, v2\n", 0o644)
	repo.Commit("rsyslog only")
	repo.Push("HEAD:refs/heads/main")
	if _, err := deployWazuh(t, queue, inst); err != nil {
		t.Fatalf("redeploy failed: %v", err)
	}
	after := since(t, inst, 0)
	if !after[wazuh.RsyslogService].After(before[wazuh.RsyslogService]) {
		t.Error("rsyslog was not restarted for its changed configuration")
	}
	if !after[wazuh.FilebeatService].Equal(before[wazuh.FilebeatService]) {
		t.Error("filebeat was restarted although its files did not change")
	}
	if n := logCount(t, inst.Nodes[0].Pebble.Socket, wazuh.ManagerService, "Completed."); n != reloads {
		t.Errorf("the manager was reloaded (%d reloads, then %d) although var/ossec did not change", reloads, n)
	}
	if b, _ := os.ReadFile(inst.Nodes[0].Path("/etc/rsyslog-wazuh/conf.d/10-local.conf")); !strings.Contains(string(b), "v2") {
		t.Errorf("rsyslog's file was not updated: %q", b)
	}

	// The ref unchanged: nothing restarted.
	before = since(t, inst, 0)
	if _, err := deployWazuh(t, queue, inst); err != nil {
		t.Fatalf("third deploy failed: %v", err)
	}
	for name, at := range since(t, inst, 0) {
		if !at.Equal(before[name]) {
			t.Errorf("%s changed state although nothing changed", name)
		}
	}
}

// TestWazuhUnknownHostKeyIsRefused: a repository server whose key is not the pinned
// one is refused with the key's SHA256 fingerprint, and nothing reaches the node.
func TestWazuhUnknownHostKeyIsRefused(t *testing.T) {
	queue := inProcessWorker(t, temporalClient(t), t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{})
	wazuhRepo(t, &inst)
	real, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inst.Wazuh.ConfigRepo.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	inst.Wazuh.ConfigRepo.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))
	stock := nodeFile(t, inst, 0, "/var/ossec/etc/ossec.conf")

	_, err = deployWazuh(t, queue, inst)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeHostKeyRejected {
		t.Fatalf("deploy = %v, want a %s failure", err, activities.ErrTypeHostKeyRejected)
	}
	if fp := ssh.FingerprintSHA256(real); !strings.Contains(err.Error(), fp) {
		t.Errorf("the refusal does not name the server's key %s: %v", fp, err)
	}
	if got := nodeFile(t, inst, 0, "/var/ossec/etc/ossec.conf"); got != stock {
		t.Error("ossec.conf changed although the repository was refused")
	}
	if _, err := os.Stat(filepath.Join(inst.Nodes[0].Path("/var/ossec/etc/rules/local_rules.xml"))); err == nil {
		t.Error("a repository file reached the node")
	}
}

// TestWazuhMalformedOssecConfFromTheRepository: a repository commit with an ossec.conf
// that is not XML is refused with the parser's line, the running manager is left as it
// was (same daemons, same configuration on disk), and fixing the file recovers.
func TestWazuhMalformedOssecConfFromTheRepository(t *testing.T) {
	queue := inProcessWorker(t, temporalClient(t), t.TempDir())
	inst := newWazuhInstance(t, wazuhOpts{})
	repo := wazuhRepo(t, &inst)
	if _, err := deployWazuh(t, queue, inst); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	good := nodeFile(t, inst, 0, "/var/ossec/etc/ossec.conf")
	before := since(t, inst, 0)

	repo.Write("var/ossec/etc/ossec.conf", "<ossec_config>\n  <global>\n    <logall>no</logal>\n  </global>\n</ossec_config>\n", 0o640)
	repo.Commit("broken ossec.conf")
	repo.Push("HEAD:refs/heads/main")
	_, err := deployWazuh(t, queue, inst)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeBadConfig || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("deploy = %v, want BadConfig naming line 3", err)
	}
	if got := nodeFile(t, inst, 0, "/var/ossec/etc/ossec.conf"); got != good {
		t.Errorf("the refused file stayed on disk:\n%s", got)
	}
	for name, at := range since(t, inst, 0) {
		if !at.Equal(before[name]) {
			t.Errorf("%s changed state although the configuration was refused", name)
		}
	}
	st := waitStatus(t, temporalClient(t), workflows.WazuhDeployWorkflowID(inst.Name), 10*time.Second, "blocked", func(s workflows.DeployStatus) bool {
		return s.Status.Kind == workflows.StatusBlocked
	})
	if !strings.Contains(st.Status.Message, "not valid XML") {
		t.Errorf("blocked status %q does not say why", st.Status.Message)
	}

	// The same bad commit is refused again (not skipped as applied); a fix recovers.
	if _, err := deployWazuh(t, queue, inst); err == nil {
		t.Fatal("the same bad commit was accepted on the second try")
	}
	repo.Remove("var/ossec/etc/ossec.conf")
	repo.Commit("back to the image's ossec.conf")
	repo.Push("HEAD:refs/heads/main")
	if _, err := deployWazuh(t, queue, inst); err != nil {
		t.Fatalf("deploy after the fix failed: %v", err)
	}
}
