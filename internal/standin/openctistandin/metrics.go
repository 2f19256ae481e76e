package openctistandin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// processStart is when this process started, for process_start_time_seconds.
var processStart = time.Now()

// eventLoopLag holds the last measured scheduling delay, in nanoseconds: the Go
// analogue of node's event-loop lag, which the charm's alert rules watch.
var eventLoopLag atomic.Int64

// lagProbe measures how late a 1 s timer fires, forever.
func lagProbe() {
	for {
		want := time.Now().Add(time.Second)
		time.Sleep(time.Second)
		eventLoopLag.Store(int64(max(time.Since(want), 0)))
	}
}

// serveMetrics opens the Prometheus exporter on all interfaces at /metrics and
// returns how to close it.
func serveMetrics(port int) (func(), error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("cannot listen on the metrics port %d: %w", port, err)
	}
	go lagProbe()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(metricsText()))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// metricsText renders the process_* and nodejs_* metrics of prom-client's
// default set that dashboards and alerts use, with this process's real values.
func metricsText() string {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	lag := float64(eventLoopLag.Load()) / 1e9
	var b strings.Builder
	metric := func(name, kind, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, kind, name, v)
	}
	metric("process_cpu_user_seconds_total", "counter", "Total user CPU time spent in seconds.", tv(ru.Utime))
	metric("process_cpu_system_seconds_total", "counter", "Total system CPU time spent in seconds.", tv(ru.Stime))
	metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", tv(ru.Utime)+tv(ru.Stime))
	metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", float64(processStart.Unix()))
	metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", float64(ru.Maxrss)*1024)
	metric("process_open_fds", "gauge", "Number of open file descriptors.", float64(openFDs()))
	metric("nodejs_eventloop_lag_seconds", "gauge", "Lag of event loop in seconds.", lag)
	metric("nodejs_eventloop_lag_p50_seconds", "gauge", "The 50th percentile of the recorded event loop delays.", lag)
	metric("nodejs_eventloop_lag_p90_seconds", "gauge", "The 90th percentile of the recorded event loop delays.", lag)
	metric("nodejs_eventloop_lag_p99_seconds", "gauge", "The 99th percentile of the recorded event loop delays.", lag)
	metric("nodejs_heap_size_total_bytes", "gauge", "Process heap size from Node.js in bytes.", float64(ms.HeapSys))
	metric("nodejs_heap_size_used_bytes", "gauge", "Process heap size used from Node.js in bytes.", float64(ms.HeapAlloc))
	metric("nodejs_active_handles_total", "gauge", "Total number of active handles.", float64(runtime.NumGoroutine()))
	return b.String()
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// openFDs counts /proc/self/fd entries (0 where /proc is missing).
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	return len(entries)
}
