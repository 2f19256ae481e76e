package wazuhstandin

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const clusterKey = "c98b62a9b6169ac5f67dae55ae4a9088"

// clusterPair installs a master and a worker on one machine, each with its own
// ports; the worker's <node> is "127.0.0.1:<master cluster port>".
func clusterPair(t *testing.T, workerKey string) (master, worker *testNode) {
	t.Helper()
	port := freePort(t)
	timings := FastTimings()
	master = newNode(t, timings, NodeOptions{Cluster: &ClusterOptions{NodeName: "master-0", NodeType: "master",
		Key: clusterKey, Port: port, Master: "127.0.0.1"}})
	worker = newNode(t, timings, NodeOptions{Cluster: &ClusterOptions{NodeName: "worker-1", NodeType: "worker",
		Key: workerKey, Port: port, Master: fmt.Sprintf("127.0.0.1:%d", port)}})
	return master, worker
}

func TestWorkerJoinsWithTheSameKey(t *testing.T) {
	master, worker := clusterPair(t, clusterKey)
	// The worker starts first: it cannot reach the master and retries.
	worker.mustControl("start")
	worker.waitFile(clusterLogRel, "ERROR: [Worker worker-1] [Main] Could not connect to master. Trying again in 10 seconds.", 10*time.Second)
	master.mustControl("start")
	worker.waitFile(clusterLogRel, "INFO: [Worker worker-1] [Main] Successfully connected to master.", 10*time.Second)

	tok := master.adminToken()
	want := "master-0/master,worker-1/worker"
	for deadline := time.Now().Add(10 * time.Second); strings.Join(master.nodeNames(tok), ",") != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("master lists %v, want %s", master.nodeNames(tok), want)
		}
	}
	wtok := worker.adminToken()
	for deadline := time.Now().Add(10 * time.Second); strings.Join(worker.nodeNames(wtok), ",") != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker lists %v, want %s", worker.nodeNames(wtok), want)
		}
	}

	// /cluster/healthcheck lists each node's health as the API's affected items, by name.
	code, body := master.call("GET", "/cluster/healthcheck", tok, nil)
	items, _ := body["data"].(map[string]any)["affected_items"].([]any)
	var names []string
	for _, it := range items {
		names = append(names, it.(map[string]any)["info"].(map[string]any)["name"].(string))
	}
	if code != 200 || strings.Join(names, ",") != "master-0,worker-1" {
		t.Errorf("healthcheck %d, items %v: %v", code, names, body)
	}

	// Stopping the worker removes it from the master's list.
	worker.mustControl("stop")
	for deadline := time.Now().Add(10 * time.Second); strings.Join(master.nodeNames(tok), ",") != "master-0/master"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("master still lists %v after the worker stopped", master.nodeNames(tok))
		}
	}
}

func TestWorkerWithAnotherKeyIsRefused(t *testing.T) {
	master, worker := clusterPair(t, "ffffffffffffffffffffffffffffffff")
	master.mustControl("start")
	worker.mustControl("start")
	master.waitFile(clusterLogRel, "ERROR: [Master] [Main] Could not decrypt message from 127.0.0.1: Error 3025 - Could not decrypt message", 10*time.Second)
	worker.waitFile(clusterLogRel, "ERROR: [Worker worker-1] [Main] The master closed the connection", 10*time.Second)
	// It keeps trying, every ClusterRetry.
	for deadline := time.Now().Add(10 * time.Second); strings.Count(worker.file(clusterLogRel), "Reconnecting in 10 seconds.") < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker stopped retrying:\n%s", worker.file(clusterLogRel))
		}
	}
	if strings.Contains(worker.file(clusterLogRel), "Successfully connected") {
		t.Fatal("worker with another key joined")
	}
	tok := master.adminToken()
	if got := strings.Join(master.nodeNames(tok), ","); got != "master-0/master" {
		t.Fatalf("master lists %s", got)
	}
	wtok := worker.adminToken()
	code, body := worker.call("GET", "/cluster/nodes", wtok, nil)
	if code != 400 || body["error"].(float64) != 3023 {
		t.Errorf("worker's /cluster/nodes while not joined: %d %v", code, body)
	}
}
