// Package stacktest gives integration tests the running local stack of real dependencies
// (deploy/local/stack): its addresses and credentials, starting it when it is not up.
package stacktest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/log"

	"github.com/socflow/socflow/internal/workerapp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
)

// Stack holds the connection settings of the local stack, as `deploy/local/stack env` prints them.
type Stack struct {
	Dir             string // SOCFLOW_STACK_DIR: the stack's state (data, logs, credentials)
	Bin             string // SOCFLOW_BIN: cached binaries (temporal, tctl, pebble, workflowcheck)
	TemporalBin     string // SOCFLOW_TEMPORAL_BIN: the temporal CLI, for StartDevServer
	PebbleBin       string // SOCFLOW_PEBBLE_BIN
	TemporalAddress string // host:port of the stack's Temporal frontend
	TemporalUI      string // base URL of the Web UI
	PebbleOpenCTI   string // socket of the Pebble in the "opencti" workload container
	PebbleWazuh     string // socket of the Pebble in the "wazuh" workload container
	// PebbleWazuhWorker is the socket of the Pebble in the "wazuh-worker" container, a
	// second Wazuh server node.
	PebbleWazuhWorker string
	// RsyslogdBin is Debian's rsyslogd (with rsyslog-gnutls), SOCFLOW_RSYSLOGD_BIN.
	RsyslogdBin      string
	RabbitMQHost     string
	RabbitMQPort     int
	RabbitMQMgmtPort int
	RabbitMQUser     string
	RabbitMQPassword string
	RabbitMQVHost    string
	RedisHost        string
	RedisPort        int
	RedisPassword    string
	S3Endpoint       string // http://host:port
	S3AccessKey      string
	S3SecretKey      string
	S3Region         string
	OpenSearchURL    string
	// PrometheusURL is the stack's Prometheus (Debian's 2.42), SOCFLOW_PROMETHEUS_URL.
	PrometheusURL string
	// PrometheusTargets is the directory of file_sd JSON files that Prometheus rereads
	// every 2 s: a test adds scrape targets by writing one there.
	PrometheusTargets string
	Raw               map[string]string // every KEY=VALUE line, for settings not named above

	// PebbleHTTPS is the "opencti-https" workload container, whose Pebble also serves HTTPS.
	PebbleHTTPS PebbleHTTPS

	// GitSSH is the stack's sshd serving bare git repositories.
	GitSSH GitSSH
}

// GitSSH is the stack's private sshd for git (its own host key, public-key login only)
// and the directory where tests create the bare repositories it serves.
type GitSSH struct {
	Host    string // SOCFLOW_GIT_SSH_HOST: 127.0.0.1
	Port    int    // SOCFLOW_GIT_SSH_PORT
	User    string // SOCFLOW_GIT_SSH_USER: the login user, the one running the stack
	Key     string // SOCFLOW_GIT_SSH_KEY: file of the client's ed25519 private key (0600)
	HostKey string // SOCFLOW_GIT_SSH_HOST_KEY: file of the server's public host key, authorized_keys format
	Root    string // SOCFLOW_GIT_ROOT: where tests create bare repositories
	GitBin  string // SOCFLOW_GIT_BIN: the git the stack installed
}

// PebbleHTTPS is the workload container whose Pebble serves its API over HTTPS (`pebble
// run --https`), with socflow's client certificate registered as an admin identity.
// One deploy layer owns its service names, so only one test may deploy into it.
type PebbleHTTPS struct {
	URL        string // SOCFLOW_PEBBLE_HTTPS_URL: https://127.0.0.1:<port>
	ServerCert string // SOCFLOW_PEBBLE_HTTPS_SERVER_CERT: file of the pinned identity certificate
	ClientCert string // SOCFLOW_PEBBLE_HTTPS_CLIENT_CERT: file of socflow's client certificate
	ClientKey  string // SOCFLOW_PEBBLE_HTTPS_CLIENT_KEY: file of its private key (0600)
	Identity   string // SOCFLOW_PEBBLE_HTTPS_IDENTITY: the identity's name in that Pebble
	Socket     string // SOCFLOW_PEBBLE_OPENCTI_HTTPS: the same Pebble's Unix socket
}

var (
	once     sync.Once
	shared   Stack
	sharedEr error
)

// Get returns the running stack, bringing it up once per test process when the
// environment does not already describe it; it fails the test when the stack cannot
// be had, so no integration test silently runs against nothing.
func Get(t testing.TB) Stack {
	t.Helper()
	once.Do(func() { shared, sharedEr = load() })
	if sharedEr != nil {
		t.Fatalf("cannot get the local stack: %v", sharedEr)
	}
	return shared
}

// TemporalProfileEnv names the setting that picks the Temporal the tests run against:
// empty for the stack's dev server, "cluster" for the PostgreSQL-backed cluster profile
// (`SOCFLOW_TEMPORAL=cluster deploy/local/stack up`), so one suite proves both.
const TemporalProfileEnv = "SOCFLOW_E2E_TEMPORAL"

// wantCluster reports whether the tests were asked to run against the cluster profile.
func wantCluster() bool { return os.Getenv(TemporalProfileEnv) == "cluster" }

// load reads the stack from the environment (the Makefile exports `stack env` once for
// all packages) or else runs `deploy/local/stack up` and `env` itself; asked for the
// cluster, it points every Temporal client at the cluster's frontend.
func load() (Stack, error) {
	st, err := loadStack()
	if err != nil || !wantCluster() {
		return st, err
	}
	if st, err = onCluster(st); err != nil {
		return Stack{}, err
	}
	// Processes the tests start (socflow's worker and starter, the temporal CLI and tctl
	// through their own flags) read the address from the environment: the same one.
	os.Setenv("SOCFLOW_TEMPORAL_ADDRESS", st.TemporalAddress)
	os.Setenv("TEMPORAL_ADDRESS", st.TemporalAddress)
	return st, nil
}

// onCluster returns the stack with its Temporal address switched to the cluster
// profile's frontend, or an error naming the command that brings the profile up.
func onCluster(st Stack) (Stack, error) {
	addr := st.Raw["SOCFLOW_TEMPORAL_CLUSTER_ADDRESS"]
	if addr == "" {
		return Stack{}, fmt.Errorf("%s=cluster but the stack env has no SOCFLOW_TEMPORAL_CLUSTER_ADDRESS: bring the profile up with `SOCFLOW_TEMPORAL=cluster deploy/local/stack up` (make test-cluster does)", TemporalProfileEnv)
	}
	raw := maps.Clone(st.Raw)
	raw["SOCFLOW_TEMPORAL_ADDRESS"] = addr
	raw["TEMPORAL_ADDRESS"] = addr
	st.Raw = raw
	st.TemporalAddress = addr
	return st, nil
}

// loadStack is load without the choice of Temporal: the stack as `env` describes it.
func loadStack() (Stack, error) {
	if os.Getenv("SOCFLOW_STACK_DIR") != "" && os.Getenv("SOCFLOW_OPENSEARCH_URL") != "" {
		kv := map[string]string{}
		for _, e := range os.Environ() {
			k, v, _ := strings.Cut(e, "=")
			if strings.HasPrefix(k, "SOCFLOW_") || strings.HasPrefix(k, "TEMPORAL_") {
				kv[k] = v
			}
		}
		return fromMap(kv)
	}
	script, err := Script()
	if err != nil {
		return Stack{}, err
	}
	up := exec.Command(script, "up")
	if wantCluster() {
		up.Env = append(os.Environ(), "SOCFLOW_TEMPORAL=cluster")
	}
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		return Stack{}, fmt.Errorf("deploy/local/stack up failed: %w", err)
	}
	out, err := exec.Command(script, "env").Output()
	if err != nil {
		return Stack{}, fmt.Errorf("deploy/local/stack env failed: %w", err)
	}
	st, err := Parse(out)
	if err != nil {
		return Stack{}, err
	}
	// Export the settings as the Makefile would, so specs can use env: references and
	// subprocesses (workers, stand-ins) see the same stack.
	for k, v := range st.Raw {
		os.Setenv(k, v)
	}
	return st, nil
}

// Script returns the path of deploy/local/stack, found from the module root above the
// working directory (go test runs each package in its own directory).
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "deploy", "local", "stack"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot find the module root (go.mod) above the working directory")
		}
		dir = parent
	}
}

// Parse reads the KEY=VALUE lines of `deploy/local/stack env`.
func Parse(out []byte) (Stack, error) {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Stack{}, fmt.Errorf("cannot parse stack env line %q", line)
		}
		kv[k] = v
	}
	return fromMap(kv)
}

func fromMap(kv map[string]string) (Stack, error) {
	var missing []string
	str := func(k string) string {
		v, ok := kv[k]
		if !ok || v == "" {
			missing = append(missing, k)
		}
		return v
	}
	num := func(k string) int {
		n, err := strconv.Atoi(str(k))
		if err != nil && kv[k] != "" {
			missing = append(missing, k+" (not a number)")
		}
		return n
	}
	s := Stack{
		Dir:               str("SOCFLOW_STACK_DIR"),
		Bin:               str("SOCFLOW_BIN"),
		TemporalBin:       str("SOCFLOW_TEMPORAL_BIN"),
		PebbleBin:         str("SOCFLOW_PEBBLE_BIN"),
		TemporalAddress:   str("SOCFLOW_TEMPORAL_ADDRESS"),
		TemporalUI:        str("SOCFLOW_TEMPORAL_UI"),
		PebbleOpenCTI:     str("SOCFLOW_PEBBLE_OPENCTI"),
		PebbleWazuh:       str("SOCFLOW_PEBBLE_WAZUH"),
		PebbleWazuhWorker: str("SOCFLOW_PEBBLE_WAZUH_WORKER"),
		RsyslogdBin:       str("SOCFLOW_RSYSLOGD_BIN"),
		RabbitMQHost:      str("SOCFLOW_RABBITMQ_HOST"),
		RabbitMQPort:      num("SOCFLOW_RABBITMQ_PORT"),
		RabbitMQMgmtPort:  num("SOCFLOW_RABBITMQ_MANAGEMENT_PORT"),
		RabbitMQUser:      str("SOCFLOW_RABBITMQ_USER"),
		RabbitMQPassword:  str("SOCFLOW_RABBITMQ_PASSWORD"),
		RabbitMQVHost:     str("SOCFLOW_RABBITMQ_VHOST"),
		RedisHost:         str("SOCFLOW_REDIS_HOST"),
		RedisPort:         num("SOCFLOW_REDIS_PORT"),
		RedisPassword:     str("SOCFLOW_REDIS_PASSWORD"),
		S3Endpoint:        str("SOCFLOW_S3_ENDPOINT"),
		S3AccessKey:       str("SOCFLOW_S3_ACCESS_KEY"),
		S3SecretKey:       str("SOCFLOW_S3_SECRET_KEY"),
		S3Region:          str("SOCFLOW_S3_REGION"),
		OpenSearchURL:     str("SOCFLOW_OPENSEARCH_URL"),
		PrometheusURL:     str("SOCFLOW_PROMETHEUS_URL"),
		PrometheusTargets: str("SOCFLOW_PROMETHEUS_TARGETS"),
		Raw:               kv,
	}
	s.PebbleHTTPS = PebbleHTTPS{
		URL:        str("SOCFLOW_PEBBLE_HTTPS_URL"),
		ServerCert: str("SOCFLOW_PEBBLE_HTTPS_SERVER_CERT"),
		ClientCert: str("SOCFLOW_PEBBLE_HTTPS_CLIENT_CERT"),
		ClientKey:  str("SOCFLOW_PEBBLE_HTTPS_CLIENT_KEY"),
		Identity:   str("SOCFLOW_PEBBLE_HTTPS_IDENTITY"),
		Socket:     str("SOCFLOW_PEBBLE_OPENCTI_HTTPS"),
	}
	s.GitSSH = GitSSH{
		Host:    str("SOCFLOW_GIT_SSH_HOST"),
		Port:    num("SOCFLOW_GIT_SSH_PORT"),
		User:    str("SOCFLOW_GIT_SSH_USER"),
		Key:     str("SOCFLOW_GIT_SSH_KEY"),
		HostKey: str("SOCFLOW_GIT_SSH_HOST_KEY"),
		Root:    str("SOCFLOW_GIT_ROOT"),
		GitBin:  str("SOCFLOW_GIT_BIN"),
	}
	if len(missing) > 0 {
		return Stack{}, fmt.Errorf("stack env lacks %s; is deploy/local/stack current?", strings.Join(missing, ", "))
	}
	return s, nil
}

// Service runs `deploy/local/stack start|stop|restart NAME` so a test can take a
// dependency away and give it back (always paired with t.Cleanup restoring it).
func Service(t testing.TB, verb, name string) {
	t.Helper()
	script, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(script, verb, name).CombinedOutput(); err != nil {
		t.Fatalf("cannot %s stack service %s: %v\n%s", verb, name, err, out)
	}
}

// DevServer starts a private Temporal dev server from the stack's cached temporal
// binary (never a download) and stops it when the test ends; tests that restart or
// stop the server use one of their own rather than the shared stack's.
func DevServer(t testing.TB, opts testsuite.DevServerOptions) (*testsuite.DevServer, client.Client) {
	t.Helper()
	st := Get(t)
	opts.ExistingPath = st.TemporalBin
	if opts.LogLevel == "" {
		opts.LogLevel = "error"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, opts)
	if err != nil {
		t.Fatalf("cannot start a Temporal dev server from %s: %v", st.TemporalBin, err)
	}
	c := srv.Client()
	t.Cleanup(func() {
		c.Close()
		_ = srv.Stop()
	})
	return srv, c
}

// Pebble starts a private Pebble daemon (the stack's cached binary) in a temporary
// directory and returns its socket; it is stopped, with its services, when the test
// ends. Deploy tests use one each, because an OpenCTI layer owns its container's
// service names.
func Pebble(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "socflow-pebble-")
	if err != nil {
		t.Fatal(err)
	}
	return PebbleAt(t, dir)
}

// PebbleAt is Pebble with its directory (PEBBLE) chosen by the test, created if
// missing: a test can hand a deploy the socket path, dir/.pebble.socket, before the
// Pebble exists, and start it later.
func PebbleAt(t testing.TB, dir string) string {
	t.Helper()
	st := Get(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(st.PebbleBin, "run", "--create-dirs")
	cmd.Env = append(os.Environ(), "PEBBLE="+dir)
	logf, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start pebble: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		// A service whose stop hangs (the stand-in's -stop-hang, a frozen migration)
		// outlives a daemon killed before its kill-delay ran out; its processes carry
		// the daemon's PEBBLE, so they are found and killed, not leaked.
		killWithEnv("PEBBLE=" + dir)
		logf.Close()
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("pebble dir kept for inspection: %s", dir)
		}
	})
	socket := filepath.Join(dir, ".pebble.socket")
	for range 100 {
		if _, err := os.Stat(socket); err == nil {
			return socket
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pebble did not create %s; see %s", socket, logf.Name())
	return ""
}

// killWithEnv SIGKILLs every process whose environment holds the entry kv (Linux /proc).
func killWithEnv(kv string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(env), "\x00"), kv) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for private
// servers a test starts (stand-ins, Redis, dev servers), and never one it returned
// before in this process: the kernel may give a just-closed port again, and a test
// asking for several ports before starting anything got the same one twice.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// handedOut are the ports FreePort returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// TemporalClient dials hostPort with socflow's production converters (what operators
// and the worker use), logging through logger, and closes the client when the test ends.
func TemporalClient(t testing.TB, hostPort string, logger log.Logger) client.Client {
	t.Helper()
	opts := client.Options{HostPort: hostPort, Logger: logger}
	conv, err := workerapp.LoadConverters()
	if err != nil {
		t.Fatal(err)
	}
	conv.Apply(&opts)
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatalf("cannot dial temporal at %s: %v", hostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}
