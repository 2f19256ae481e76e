package wazuhstandin

import (
	"fmt"
	"time"
)

// Timings are how long the real manager takes. They come from the environment
// (WAZUH_STANDIN_*), because Pebble runs `wazuh-control reload` with no other
// arguments and the detached daemons inherit the control's environment; unset
// variables mean the real figures. Tests shorten them.
type Timings struct {
	// Start is the initialisation work of all daemons in one start, spread over
	// them by startShare (the Python API and cluster daemons and analysisd's
	// ruleset loading take most). With Settle it makes the ≈ 9 s a real
	// `wazuh-control start` takes on 2 cores. WAZUH_STANDIN_START_DELAY.
	Start time.Duration
	// Settle is the script's closing "sleep 2" before "Completed.".
	// WAZUH_STANDIN_SETTLE_DELAY.
	Settle time.Duration
	// APIReady is wazuh-apid writing its pid file to its port accepting
	// connections (uvicorn and the OpenAPI spec loading after the fork): the
	// port refuses connections for that long. WAZUH_STANDIN_API_READY_DELAY.
	APIReady time.Duration
	// ClusterRetry is a worker's wait between attempts to reach the master
	// (cluster.json intervals.worker.connection_retry). WAZUH_STANDIN_CLUSTER_RETRY.
	ClusterRetry time.Duration
	// Stop is SIGTERM to exit of the Python daemons (wazuh-apid, wazuh-clusterd),
	// which shut their process pools down. WAZUH_STANDIN_STOP_DELAY.
	Stop time.Duration
}

// RealTimings returns the figures of a real 4.11 manager on 2 cores.
func RealTimings() Timings {
	return Timings{Start: 7 * time.Second, Settle: 2 * time.Second, APIReady: 3 * time.Second,
		ClusterRetry: 10 * time.Second, Stop: time.Second}
}

// Timing environment variables, one per field of Timings.
const (
	EnvStartDelay    = "WAZUH_STANDIN_START_DELAY"
	EnvSettleDelay   = "WAZUH_STANDIN_SETTLE_DELAY"
	EnvAPIReadyDelay = "WAZUH_STANDIN_API_READY_DELAY"
	EnvClusterRetry  = "WAZUH_STANDIN_CLUSTER_RETRY"
	EnvStopDelay     = "WAZUH_STANDIN_STOP_DELAY"
)

// TimingsFromEnv reads the WAZUH_STANDIN_* durations over RealTimings.
func TimingsFromEnv(getenv func(string) string) (Timings, error) {
	t := RealTimings()
	for name, dst := range map[string]*time.Duration{EnvStartDelay: &t.Start, EnvSettleDelay: &t.Settle,
		EnvAPIReadyDelay: &t.APIReady, EnvClusterRetry: &t.ClusterRetry, EnvStopDelay: &t.Stop} {
		v := getenv(name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return t, fmt.Errorf("cannot read %s=%q: want a duration such as 500ms", name, v)
		}
		*dst = d
	}
	return t, nil
}

// Env returns t as the environment entries that reproduce it in a child process.
func (t Timings) Env() []string {
	return []string{EnvStartDelay + "=" + t.Start.String(), EnvSettleDelay + "=" + t.Settle.String(),
		EnvAPIReadyDelay + "=" + t.APIReady.String(), EnvClusterRetry + "=" + t.ClusterRetry.String(),
		EnvStopDelay + "=" + t.Stop.String()}
}

// startShare is each daemon's part of Timings.Start, in percent.
var startShare = map[string]int{"wazuh-apid": 30, "wazuh-analysisd": 20, "wazuh-clusterd": 15,
	"wazuh-db": 10, "wazuh-modulesd": 10}

// initDelay is how long daemon initialises before it writes its pid file.
func (t Timings) initDelay(daemon string) time.Duration {
	share, ok := startShare[daemon]
	if !ok { // the ten other daemons share the remaining 15 %
		return t.Start * 15 / 1000
	}
	return t.Start * time.Duration(share) / 100
}
