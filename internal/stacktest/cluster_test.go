package stacktest

import (
	"strings"
	"testing"
)

// TestOnClusterSwitchesTheTemporalAddress: asked for the cluster, every Temporal setting
// a test or a process it starts reads names the cluster's frontend; without the profile
// up, the error says how to bring it up rather than leaving tests on the dev server.
func TestOnClusterSwitchesTheTemporalAddress(t *testing.T) {
	st := Stack{TemporalAddress: "127.0.0.1:7233", Raw: map[string]string{
		"SOCFLOW_TEMPORAL_ADDRESS":         "127.0.0.1:7233",
		"TEMPORAL_ADDRESS":                 "127.0.0.1:7233",
		"SOCFLOW_TEMPORAL_CLUSTER_ADDRESS": "127.0.0.1:17233",
	}}
	got, err := onCluster(st)
	if err != nil {
		t.Fatal(err)
	}
	if got.TemporalAddress != "127.0.0.1:17233" || got.Raw["SOCFLOW_TEMPORAL_ADDRESS"] != "127.0.0.1:17233" ||
		got.Raw["TEMPORAL_ADDRESS"] != "127.0.0.1:17233" {
		t.Errorf("on the cluster: address %s, raw %v", got.TemporalAddress, got.Raw)
	}
	if st.Raw["TEMPORAL_ADDRESS"] != "127.0.0.1:7233" {
		t.Errorf("the dev server's stack was changed: %v", st.Raw)
	}

	delete(st.Raw, "SOCFLOW_TEMPORAL_CLUSTER_ADDRESS")
	if _, err := onCluster(st); err == nil || !strings.Contains(err.Error(), "SOCFLOW_TEMPORAL=cluster deploy/local/stack up") {
		t.Errorf("without the profile: %v, want the command that brings it up", err)
	}
}
