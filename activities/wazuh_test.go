package activities_test

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/stacktest"
)

// socflowWazuhUsers are the users socflow keeps on every manager.
var socflowWazuhUsers = []activities.WazuhAPIUser{
	{Name: "wazuh", Role: activities.WazuhRoleAdministrator},
	{Name: "wazuh-wui", Role: activities.WazuhRoleAdministrator},
	{Name: "prometheus", Role: activities.WazuhRoleReadonly},
}

// wazuhStores are the secret stores of the environments wazuhEnv made.
var wazuhStores = map[*testsuite.TestActivityEnvironment]*secrets.Store{}

// wazuhEnv is an activity environment whose activities keep secrets in a store of
// their own, which reconcileWazuhUsers fills with a test's "stored" passwords.
func wazuhEnv() *testsuite.TestActivityEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	dir, err := os.MkdirTemp("", "socflow-wazuh-secrets-")
	if err != nil {
		panic(err)
	}
	store := &secrets.Store{Dir: dir}
	wazuhStores[env] = store
	env.RegisterActivity(&activities.Activities{Secrets: store})
	return env
}

// reconcileWazuhUsers runs the activity as if in.Stored were what socflow's store
// holds (the activity reads the store itself), and returns its result with the
// passwords its references name read back from the store.
func reconcileWazuhUsers(t *testing.T, env *testsuite.TestActivityEnvironment, in activities.ReconcileWazuhAPIUsersInput) (activities.ReconcileWazuhAPIUsersResult, error) {
	t.Helper()
	store := wazuhStores[env]
	t.Cleanup(func() { os.RemoveAll(store.Dir) })
	for _, u := range in.Users {
		key := activities.WazuhAPIPasswordKey(u.Name)
		if p, ok := in.Stored[u.Name]; ok {
			if _, err := store.Put(in.Instance, key, p); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(filepath.Join(store.Dir, in.Instance, key)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	var res activities.ReconcileWazuhAPIUsersResult
	v, err := env.ExecuteActivity(nilActs.ReconcileWazuhAPIUsers, in)
	if err != nil {
		return res, err
	}
	if err := v.Get(&res); err != nil {
		t.Fatalf("cannot decode the result: %v", err)
	}
	res.Passwords = map[string]string{}
	for name, ref := range res.Refs {
		if res.Passwords[name], err = store.Resolve(ref); err != nil {
			t.Fatalf("the result's reference of %s: %v", name, err)
		}
	}
	return res, nil
}

// otherCertPEM is a self-signed certificate no server here presents.
func otherCertPEM(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(stacktest.NewTestCert(t, "wazuh.example", nil).Cert)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReconcileWazuhAPIUsersNotReady(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // only its certificate is used
	defer srv.Close()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	_, err = reconcileWazuhUsers(t, wazuhEnv(), activities.ReconcileWazuhAPIUsersInput{
		Instance: "soc", URL: "https://" + addr, APICert: string(certPEM), Users: socflowWazuhUsers})
	requireRetryable(t, err, "wazuh API not ready at https://"+addr+" (connection refused)")
}

func TestReconcileWazuhAPIUsersRefusesAnotherCertificate(t *testing.T) {
	// The handshake fails before any request: nothing of the server but its TLS is used.
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	cert := otherCertPEM(t)
	_, err := reconcileWazuhUsers(t, wazuhEnv(), activities.ReconcileWazuhAPIUsersInput{
		Instance: "soc", URL: srv.URL, APICert: string(cert), Users: socflowWazuhUsers})
	requirePermanent(t, err, activities.ErrTypeWazuhCertMismatch, "cannot trust the wazuh API at "+srv.URL, "not the pinned one", "server.crt")
}

func TestReconcileWazuhAPIUsersInvalidInput(t *testing.T) {
	cert := otherCertPEM(t)
	for name, in := range map[string]activities.ReconcileWazuhAPIUsersInput{
		"no admin":     {URL: "https://127.0.0.1:1", APICert: string(cert), Users: []activities.WazuhAPIUser{{Name: "prometheus", Role: "readonly"}}},
		"http URL":     {URL: "http://127.0.0.1:1", APICert: string(cert), Users: socflowWazuhUsers},
		"no cert":      {URL: "https://127.0.0.1:1", Users: socflowWazuhUsers},
		"unknown role": {URL: "https://127.0.0.1:1", APICert: string(cert), Users: []activities.WazuhAPIUser{{Name: "wazuh", Role: "admin"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := reconcileWazuhUsers(t, wazuhEnv(), in)
			requirePermanent(t, err, activities.ErrTypeInvalidInput, "cannot ")
		})
	}
}
