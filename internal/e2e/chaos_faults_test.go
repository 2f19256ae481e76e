package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// The faults a run can draw. Each touches only what the run owns (see TestChaos).
const (
	faultWorker     = "kill-worker"         // SIGKILL the socflow worker; a new one starts after 0-5 s
	faultTemporal   = "restart-temporal"    // stop the run's Temporal dev server for 1-5 s, same database
	faultDependency = "stop-redis"          // stop the run's private Redis for 5-60 s
	faultPlatform   = "kill-platform"       // SIGKILL the platform stand-in once it serves (after init)
	faultService    = "kill-worker-service" // SIGKILL worker-0's process (the health check heals it)
	faultWatermark  = "flood-watermark"     // the flood-stage block on the run's indices for 5-30 s
)

// pebbleStartConfirmation is Pebble's one second in which a started service that exits
// fails its start change (instead of being restarted by Pebble), with a margin.
const pebbleStartConfirmation = 1200 * time.Millisecond

var chaosFaults = []string{faultWorker, faultTemporal, faultDependency, faultPlatform, faultService, faultWatermark}

// chaosKills counts the processes a run's fault SIGKILLed under Pebble: each may
// account for one start more than the operation makes.
type chaosKills struct {
	platform int
	// restarted are the platform processes (1-based, in the stand-in's log) Pebble
	// started after a kill: such a process may be stopped by the operation before it is
	// ready (the upgrade's stop of the platform, say) without socflow having restarted a
	// platform it started itself during init.
	restarted map[int]bool
	services  map[string]int
}

// strike waits for the drawn moment, then does the fault (and its end: a worker
// started again, the server or Redis back, the block lifted) and says when it struck,
// where the operation stood, and what was done. Every draw is made up front, so a seed
// means the same draws whatever happens.
func (e *chaosEnv) strike(fault, operation string, opStart time.Time) (moment, detail string) {
	t := e.t
	at := time.Duration(e.rng.Int64N(int64(chaosSpan[operation])))
	workerGap := time.Duration(e.rng.Int64N(int64(5 * time.Second)))
	serverGap := time.Second + time.Duration(e.rng.Int64N(int64(4*time.Second)))
	redisGap := 5*time.Second + time.Duration(e.rng.Int64N(int64(55*time.Second)))
	floodGap := 5*time.Second + time.Duration(e.rng.Int64N(int64(25*time.Second)))
	time.Sleep(time.Until(opStart.Add(at)))
	where := func() string {
		return fmt.Sprintf("+%.1fs (%s)", time.Since(opStart).Seconds(), e.where(operation))
	}
	switch fault {
	case faultWorker:
		moment = where()
		old := e.worker.name
		e.worker.kill9(t)
		time.Sleep(workerGap)
		e.startWorker()
		return moment, fmt.Sprintf("SIGKILL %s, %s started %.1fs later", old, e.worker.name, workerGap.Seconds())
	case faultTemporal:
		moment = where()
		e.srv.stop(t)
		time.Sleep(serverGap)
		e.srv.start(t)
		return moment, fmt.Sprintf("dev server on %s down %.1fs, same database", e.address, serverGap.Seconds())
	case faultDependency:
		moment = where()
		e.redis.stop()
		time.Sleep(redisGap)
		e.redis.start()
		return moment, fmt.Sprintf("private redis :%d down %.1fs", e.redis.port, redisGap.Seconds())
	case faultPlatform:
		// After init: the platform's port opens only once its boot (and any migration) is
		// done. A kill before that is the unrecoverable first boot TestPlatformKilledMidInit
		// covers, not a fault the operation should survive.
		// And after Pebble's one-second start confirmation: the stand-in's existing-platform
		// boot is shorter than that, a real one's never is, so a real platform that serves
		// is always past it. (Killed within it, Pebble fails socflow's restart change and
		// socflow's retry restarts the platform a second time: see the README's chaos notes.)
		pid := 0
		if !waitUntil(3*time.Minute, func() bool {
			if !portOpen(e.inst.OpenCTI.Port) {
				return false
			}
			p := platformPID(t, e.inst.Name)
			time.Sleep(pebbleStartConfirmation)
			pid = p
			return portOpen(e.inst.OpenCTI.Port) && platformPID(t, e.inst.Name) == p
		}) {
			return where(), "not struck: the platform never served"
		}
		moment = where()
		kill9(t, pid)
		e.kills.platform++
		e.kills.restarted[len(platformBoots(t, e.inst))+1] = true
		return moment, fmt.Sprintf("SIGKILL platform pid %d (serving)", pid)
	case faultService:
		svc := opencti.WorkerServices(1)[0]
		if !waitUntil(3*time.Minute, func() bool { return serviceActive(t, e.inst.Pebble.Socket, svc) }) {
			return where(), "not struck: " + svc + " never ran"
		}
		moment = where()
		if err := pebbleClient(t, e.inst.Pebble.Socket).SendSignal(&client.SendSignalOptions{Signal: "SIGKILL", Services: []string{svc}}); err != nil {
			t.Fatalf("cannot SIGKILL %s: %v", svc, err)
		}
		e.kills.services[svc]++
		return moment, "SIGKILL " + svc + " through pebble"
	case faultWatermark:
		// What OpenSearch's flood-stage watermark does to every index on a full node:
		// index.blocks.read_only_allow_delete, here set on the run's own indices only.
		// Lowering the cluster's watermark settings instead would block the indices of
		// every test sharing the stack's OpenSearch, and its snapshot repository.
		if !waitUntil(3*time.Minute, func() bool { return indexCount(t, stacktest.Get(t), e.inst.Name) > 0 }) {
			return where(), "not struck: the platform created no index"
		}
		moment = where()
		e.floodBlock(true)
		t.Cleanup(func() { e.floodBlock(false) })
		time.Sleep(floodGap)
		e.floodBlock(false)
		return moment, fmt.Sprintf("read_only_allow_delete on %s_* for %.1fs", e.inst.Name, floodGap.Seconds())
	}
	t.Fatalf("unknown fault %q", fault)
	return "", ""
}

// floodBlock sets (or lifts) the flood-stage block on the run's indices.
func (e *chaosEnv) floodBlock(on bool) {
	var v any
	if on {
		v = true
	}
	if code, body := searchDo(e.t, http.MethodPut, "/"+e.inst.Name+"_*/_settings",
		map[string]any{"index.blocks.read_only_allow_delete": v}); code >= 300 {
		e.t.Errorf("cannot set read_only_allow_delete=%v on %s_*: %d %s", v, e.inst.Name, code, body)
	}
}

// where says where the operation stands, from its workflow's status query (a short
// wait: the worker may be the one just killed).
func (e *chaosEnv) where(operation string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	switch operation {
	case opDeploy:
		var st workflows.DeployStatus
		v, err := e.c.QueryWorkflow(ctx, workflows.DeployWorkflowID(e.inst.Name), "", workflows.StatusQuery)
		if err != nil || v.Get(&st) != nil {
			return "deploy: ?"
		}
		return "deploy: " + string(st.Phase)
	case opUpgrade:
		var st workflows.UpgradeStatus
		v, err := e.c.QueryWorkflow(ctx, workflows.UpgradeWorkflowID(e.inst.Name), "", workflows.StatusQuery)
		if err != nil || v.Get(&st) != nil {
			return "upgrade: ?"
		}
		return "upgrade: " + st.Status.Step
	}
	var st workflows.InstanceStatus
	v, err := e.c.QueryWorkflow(ctx, e.id, "", workflows.StatusQuery)
	if err != nil || v.Get(&st) != nil {
		return "instance: ?"
	}
	return "instance: " + string(st.Status.Kind) + " " + st.Status.Step
}

// waitUntil polls cond every 100 ms for up to limit.
func waitUntil(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// portOpen reports whether something accepts connections on the local port.
func portOpen(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// serviceActive reports whether Pebble runs the service.
func serviceActive(t *testing.T, socket, name string) bool {
	s := services(t, socket)[name]
	return s != nil && s.Current == client.StatusActive
}
