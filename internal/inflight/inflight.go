// Package inflight lets a restarted worker retry at once the activities its crashed
// predecessor left started. Temporal learns of a dead worker only when an attempt's
// heartbeat or start-to-close timeout expires (20 s for a probe), so a deploy stalled that
// long after every worker crash. Each worker process keeps a journal of the attempts it
// runs, in a directory it holds an flock on for its whole life; the kernel drops the lock
// when the process dies, however it dies. A worker that starts finds the unlocked journals
// of dead processes and fails, by ID, each attempt Temporal still shows as started in the
// same attempt, with a retryable error: the server retries it after the activity's retry
// interval instead of after the timeout. Nothing is sent to Temporal while workers are
// healthy; a journal costs a file write and a remove per activity attempt.
//
// In a pod the journal root must outlive the container (an emptyDir): the container a
// kubelet restarts is the one that recovers. A worker that never restarts leaves its
// attempts to their timeouts, as before.
package inflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// ErrorType is the application error type of the failure a recovering worker reports for
// an attempt whose worker died; workflows and histories read it as the attempt's cause.
const ErrorType = "WorkerCrashed"

// lockFile is the file of a journal directory its process holds the flock on.
const lockFile = "lock"

// Entry is one activity attempt a worker process started and had not finished.
type Entry struct {
	// Namespace, WorkflowID and RunID name the attempt's workflow execution.
	Namespace, WorkflowID, RunID string
	// ActivityID names the activity in its workflow.
	ActivityID string
	// ActivityType is shown in the recovery's log line.
	ActivityType string
	// Attempt is the attempt the process ran; only that attempt is failed.
	Attempt int32
}

// Journal is one worker process's record of the activity attempts it is running.
type Journal struct {
	dir    string   // this process's directory under the root
	lock   *os.File // held with an exclusive flock until Close or death
	logger *slog.Logger
	seq    atomic.Uint64
	warned sync.Once
}

// Open creates this process's journal under root and locks it for the process's life.
// The journal is locked under a hidden name and then renamed into place, so another
// worker's Recover never finds it unlocked.
func Open(root string, logger *slog.Logger) (*Journal, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	name := hex.EncodeToString(id[:])
	tmp, dir := filepath.Join(root, "."+name), filepath.Join(root, name)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the in-flight journal %s (set SOCFLOW_INFLIGHT_DIR to a writable directory): %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(tmp, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		if err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			err = os.Rename(tmp, dir)
		}
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("cannot lock the in-flight journal %s (SOCFLOW_INFLIGHT_DIR must be a local filesystem): %w", dir, err)
	}
	return &Journal{dir: dir, lock: lock, logger: logger}, nil
}

// Close removes the journal: after a graceful stop nothing of this process is in flight.
func (j *Journal) Close() error {
	err := os.RemoveAll(j.dir)
	return errors.Join(err, j.lock.Close())
}

// record writes e to the journal and returns the func that removes it. A journal that
// cannot be written costs only the fast retry: the attempt runs anyway. The file is
// written in place: only a dead process's journal is read, and a file its death cut
// short is skipped, as if the process had died before writing it.
func (j *Journal) record(e Entry) (done func()) {
	path := filepath.Join(j.dir, strconv.FormatUint(j.seq.Add(1), 10)+".json")
	b, _ := json.Marshal(e)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		j.warned.Do(func() {
			j.logger.Warn("cannot record activity attempts in the in-flight journal: after a crash they wait for their timeouts", "error", err)
		})
		return func() {}
	}
	return func() { _ = os.Remove(path) }
}

// Interceptor records every activity attempt of the worker it is given to while the
// attempt runs. Local activities are not recorded: they die with their workflow task.
func (j *Journal) Interceptor() interceptor.WorkerInterceptor { return &workerInterceptor{j: j} }

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	j *Journal
}

func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityInterceptor{j: w.j}
	i.Next = next
	return i
}

type activityInterceptor struct {
	interceptor.ActivityInboundInterceptorBase
	j *Journal
}

func (a *activityInterceptor) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	if info.IsLocalActivity {
		return a.Next.ExecuteActivity(ctx, in)
	}
	done := a.j.record(Entry{Namespace: info.WorkflowNamespace, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		ActivityID: info.ActivityID, ActivityType: info.ActivityType.Name, Attempt: info.Attempt})
	defer done()
	return a.Next.ExecuteActivity(ctx, in)
}

// Recovered counts what Recover did.
type Recovered struct {
	// Failed are the attempts failed for a retry now.
	Failed int
	// Gone are the recorded attempts Temporal no longer runs in that attempt (finished,
	// timed out and retried, or of a workflow that is gone).
	Gone int
	// Kept are the attempts left for a later start because Temporal could not be asked.
	Kept int
}

// Recover fails, for a retry now, every attempt that a dead process's journal under root
// lists and that Temporal still shows as started in that same attempt, then removes that
// journal. Live processes' journals (locked) are left alone. An attempt Temporal cannot be
// asked about stays for the next start; it is retried at its timeout meanwhile.
func Recover(ctx context.Context, root string, c client.Client, logger *slog.Logger) (Recovered, error) {
	var r Recovered
	dirs, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("cannot read the in-flight journals in %s: %w", root, err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if strings.HasPrefix(d.Name(), ".") {
			// A journal being created is hidden until locked; one still hidden after a
			// minute belongs to a process that died while opening it, and is empty.
			if info, err := d.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
				_ = os.RemoveAll(filepath.Join(root, d.Name()))
			}
			continue
		}
		dir := filepath.Join(root, d.Name())
		lock, dead := claim(dir)
		if !dead {
			continue
		}
		entries, paths := readEntries(dir)
		kept := 0
		for i, e := range entries {
			switch state, err := failIfStarted(ctx, c, e); {
			case err != nil:
				kept++
				r.Kept++
				logger.Warn("cannot fail an activity attempt a dead worker left started; it is retried at its timeout",
					"workflowID", e.WorkflowID, "activityID", e.ActivityID, "activityType", e.ActivityType, "attempt", e.Attempt, "error", err)
				continue
			case state:
				r.Failed++
				logger.Info("failed an activity attempt a dead worker left started, so it is retried now instead of at its timeout",
					"workflowID", e.WorkflowID, "activityID", e.ActivityID, "activityType", e.ActivityType, "attempt", e.Attempt)
			default:
				r.Gone++
			}
			_ = os.Remove(paths[i])
		}
		if kept == 0 {
			_ = os.RemoveAll(dir)
		}
		lock.Close()
	}
	return r, nil
}

// WatchInterval is how often a running worker looks for journals of dead workers that
// share its root (several workers on one host); reading a directory costs nothing.
const WatchInterval = 2 * time.Second

// Watch runs Recover at once (a restarted worker's predecessor) and then every interval
// (a sibling on the same host that died and was not restarted) until ctx is done,
// logging what it recovered.
func Watch(ctx context.Context, root string, c client.Client, logger *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := Recover(ctx, root, c, logger)
		switch {
		case err != nil:
			logger.Warn("cannot recover the activity attempts of dead workers; they are retried at their timeouts", "error", err)
		case r != (Recovered{}):
			logger.Info("recovered the activity attempts dead workers left", "failedForRetry", r.Failed, "alreadyGone", r.Gone, "kept", r.Kept)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// claim locks dir's lock file if no live process holds it: the process that wrote the
// journal is dead. The caller closes the returned file.
func claim(dir string) (*os.File, bool) {
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
	if err != nil {
		// Removed by another worker's recovery, or not ours to judge.
		return nil, false
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, false
	}
	return lock, true
}

// readEntries reads the journal's entries; a file cut short by the death is skipped.
func readEntries(dir string) ([]Entry, []string) {
	files, _ := os.ReadDir(dir)
	var entries []Entry
	var paths []string
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, f.Name())
		b, err := os.ReadFile(path)
		var e Entry
		if err != nil || json.Unmarshal(b, &e) != nil || e.WorkflowID == "" || e.ActivityID == "" {
			continue
		}
		entries = append(entries, e)
		paths = append(paths, path)
	}
	return entries, paths
}

// failIfStarted fails e's attempt if Temporal shows it started in that attempt, and says
// whether it did. Between the read and the failure the attempt could time out and be
// retried elsewhere; the failure then cuts that retry short and the activity, idempotent
// like every socflow activity, runs once more.
func failIfStarted(ctx context.Context, c client.Client, e Entry) (bool, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, e.WorkflowID, e.RunID)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, p := range desc.GetPendingActivities() {
		if p.GetActivityId() != e.ActivityID {
			continue
		}
		if p.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED || p.GetAttempt() != e.Attempt {
			return false, nil
		}
		cause := temporal.NewApplicationError(fmt.Sprintf("the worker running attempt %d of %s died; "+
			"a restarted worker found the attempt in its journal and fails it so it is retried now, not at its timeout", e.Attempt, e.ActivityType), ErrorType)
		err := c.CompleteActivityByID(ctx, e.Namespace, e.WorkflowID, e.RunID, e.ActivityID, nil, cause)
		if errors.As(err, &notFound) {
			return false, nil
		}
		return err == nil, err
	}
	return false, nil
}
