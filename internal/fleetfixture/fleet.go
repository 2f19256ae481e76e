// Package fleetfixture serves many virtual OpenCTI instances from one process, for the
// fleet health benchmark: each instance's Pebble API on a unix socket of its own (the
// real API's shape for what a health check reads: services, plan, logs) and each
// platform's /health under a base path of its own on one port. Two thousand real
// Pebble daemons with a platform and workers each do not fit in this machine, and the
// benchmark measures socflow and Temporal, not the fixtures: the fixture answers at
// once, every service active, the platform healthy.
package fleetfixture

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// Fleet is the running fixture.
type Fleet struct {
	dir    string
	health net.Listener
	mu     sync.Mutex
	// healthKeys are each instance's health key, by base path.
	healthKeys map[string]string
	servers    []*http.Server
}

// New starts a fleet whose sockets live in dir, its /health port on 127.0.0.1.
func New(dir string) (*Fleet, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for /health: %w", err)
	}
	f := &Fleet{dir: dir, health: ln, healthKeys: map[string]string{}}
	srv := &http.Server{Handler: http.HandlerFunc(f.serveHealth), ReadHeaderTimeout: 10 * time.Second}
	f.servers = append(f.servers, srv)
	go srv.Serve(ln)
	return f, nil
}

// HealthPort is the port every virtual platform's /health answers on.
func (f *Fleet) HealthPort() int { return f.health.Addr().(*net.TCPAddr).Port }

// Socket is the path of the virtual instance's Pebble socket.
func (f *Fleet) Socket(name string) string { return filepath.Join(f.dir, name+".sock") }

// Add serves one virtual instance: its Pebble socket, whose plan is planYAML (what
// `pebble plan` prints) and whose services all run, and its /health under basePath,
// which accepts healthKey. It returns the socket's path.
func (f *Fleet) Add(name, basePath, healthKey string, planYAML []byte) (string, error) {
	var plan struct {
		Services map[string]struct {
			Startup string `json:"startup"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(planYAML, &plan); err != nil {
		return "", fmt.Errorf("%s: cannot read the plan: %w", name, err)
	}
	socket := f.Socket(name)
	os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return "", fmt.Errorf("%s: cannot listen: %w", name, err)
	}
	since := time.Now().UTC()
	var services []serviceInfo
	for _, n := range slices.Sorted(maps.Keys(plan.Services)) {
		services = append(services, serviceInfo{Name: n, Startup: cmp.Or(plan.Services[n].Startup, "disabled"), Current: "active", CurrentSince: since})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		names := strings.Split(r.URL.Query().Get("names"), ",")
		out := []serviceInfo{}
		for _, s := range services {
			if names[0] == "" || slices.Contains(names, s.Name) {
				out = append(out, s)
			}
		}
		sync200(w, out)
	})
	mux.HandleFunc("GET /v1/plan", func(w http.ResponseWriter, r *http.Request) {
		sync200(w, string(planYAML))
	})
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		pebbleError(w, http.StatusNotFound, "not found")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	f.mu.Lock()
	f.healthKeys[basePath] = healthKey
	f.servers = append(f.servers, srv)
	f.mu.Unlock()
	go srv.Serve(ln)
	return socket, nil
}

// Close stops every server.
func (f *Fleet) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, s := range f.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// serveHealth answers /health as the platform does: 200 with the key, 401 without it,
// 404 for a path no instance has.
func (f *Fleet) serveHealth(w http.ResponseWriter, r *http.Request) {
	base, ok := strings.CutSuffix(r.URL.Path, "/health")
	f.mu.Lock()
	key, known := f.healthKeys[base]
	f.mu.Unlock()
	switch {
	case !ok || !known:
		http.NotFound(w, r)
	case r.URL.Query().Get("health_access_key") != key:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "unauthorized"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
	}
}

// serviceInfo is one service as Pebble's /v1/services reports it.
type serviceInfo struct {
	Name         string    `json:"name"`
	Startup      string    `json:"startup"`
	Current      string    `json:"current"`
	CurrentSince time.Time `json:"current-since"`
}

// sync200 writes Pebble's envelope of a synchronous result.
func sync200(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"type": "sync", "status-code": 200, "status": "OK", "result": result})
}

// pebbleError writes Pebble's envelope of an error.
func pebbleError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"type": "error", "status-code": code, "status": http.StatusText(code),
		"result": map[string]string{"message": msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
