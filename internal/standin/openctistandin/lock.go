package openctistandin

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// ChildLockArg is the first argument that turns the stand-in binary into its
// init-lock child, OpenCTI's forked child-lock.manager.js: the argv reads
// "<binary> -child-lock.manager -lock-ttl … -lock-retry … -lock-linger …", so an
// operator (or a test) can find it with ps/pgrep. Mains dispatch it to RunLockChild.
const ChildLockArg = "-child-lock.manager"

// Lock-child protocol, one line each way: the parent writes commands to the
// child's stdin, the child answers on fd 3. Closing stdin (the parent exiting
// in any way) tells the child its parent is gone.
const (
	cmdLock    = "lock"    // take the init lock; answer lockedReply or failedReply
	cmdUnlock  = "unlock"  // release it and stay (OpenCTI's finally on a failed init)
	cmdRelease = "release" // release it and exit (after a successful init)

	lockedReply   = "locked"
	unlockedReply = "unlocked"
	failedReply   = "failed"
)

// lockRetryInterval is the pause between two SET NX attempts.
const lockRetryInterval = 500 * time.Millisecond

// releaseScript deletes the lock only if this child still owns it.
var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// extendScript renews the lock's TTL only if this child still owns it.
var extendScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)

// lockChild is the parent's handle on the forked child.
type lockChild struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	replies chan string
}

// startLockChild forks the child in the parent's process group with the Redis
// settings in its environment (never on argv, which ps shows). Nothing waits on
// it except after a release: like node's fork, it outlives a parent that dies.
func startLockChild(cfg Config) (*lockChild, error) {
	exe := cfg.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("cannot find the stand-in binary to fork the lock child: %w", err)
		}
	}
	t := cfg.Timings
	cmd := exec.Command(exe, ChildLockArg, "-lock-ttl", t.LockTTL.String(), "-lock-retry", t.LockRetry.String(),
		"-lock-linger", t.LockLinger.String(), "-fork-delay", t.Fork.String())
	cmd.Env = append(os.Environ(),
		"REDIS__HOSTNAME="+cfg.Redis.Hostname, fmt.Sprintf("REDIS__PORT=%d", cfg.Redis.Port),
		"REDIS__PASSWORD="+cfg.Redis.Password, "REDIS__NAMESPACE="+cfg.Redis.Namespace,
		fmt.Sprintf("REDIS__USE_SSL=%t", cfg.Redis.UseSSL))
	// Like fork(), the child shares the parent's stdout/stderr when they are
	// files (a supervisor's log pipe stays open while it lives).
	if f, ok := cfg.Stdout.(*os.File); ok {
		cmd.Stdout, cmd.Stderr = f, os.Stderr
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("cannot create the lock child's command pipe: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot create the lock child's reply pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("cannot fork the lock child: %w", err)
	}
	w.Close()
	c := &lockChild{cmd: cmd, in: in, replies: make(chan string, 4)}
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.replies <- sc.Text()
		}
		close(c.replies)
	}()
	// Reap the child if it ends while this process lives; if this process ends
	// first, the child is re-parented and nobody reaps it here.
	go func() { _ = cmd.Wait() }()
	return c, nil
}

// call sends one command and waits for its answer or ctx.
func (c *lockChild) call(ctx context.Context, command string) (string, error) {
	if _, err := io.WriteString(c.in, command+"\n"); err != nil {
		return "", fmt.Errorf("cannot talk to the lock child: %w", err)
	}
	select {
	case reply, ok := <-c.replies:
		if !ok {
			return "", errors.New("cannot talk to the lock child: it exited")
		}
		return reply, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// lock takes platform_init_lock through the child; a LOCK_ERROR when another
// holder keeps it past the retry time.
func (c *lockChild) lock(ctx context.Context) error {
	reply, err := c.call(ctx, cmdLock)
	if err != nil {
		return err
	}
	if reply == lockedReply {
		return nil
	}
	detail := strings.TrimSpace(strings.TrimPrefix(reply, failedReply))
	if strings.HasPrefix(detail, LockErrorName) {
		return newError(LockErrorName, "Platform cant get the lock for initialization (can be due to other instance currently migrating/initializing)",
			nil, ErrLockHeld, map[string]any{"participantIds": []string{"platform_init_lock"}})
	}
	return newError(DatabaseErrorName, "Redis seems down", errors.New(detail), nil, nil)
}

// detach is what this process exiting does to the child: its command pipe
// closes and it starts lingering, still holding whatever it holds. Run calls
// it when stopped mid-init so a library caller behaves as the binary would.
func (c *lockChild) detach() { _ = c.in.Close() }

// unlockTimeout bounds a release: Redis answering slowly must not hold the start.
const unlockTimeout = 5 * time.Second

// unlock releases the lock; with exit the child then exits and is reaped.
func (c *lockChild) unlock(exit bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	command := cmdUnlock
	if exit {
		command = cmdRelease
	}
	reply, err := c.call(ctx, command)
	if err != nil {
		return err
	}
	if reply != unlockedReply {
		return fmt.Errorf("cannot release platform_init_lock: %s", reply)
	}
	if exit {
		_ = c.in.Close()
	}
	return nil
}

// RunLockChild is the child's main: args are those after ChildLockArg, getenv
// reads REDIS__*, commands arrive on stdin and answers go to reply (fd 3). It
// ignores SIGTERM and SIGINT, since a supervisor signalling the process group
// must not free the lock; once its parent is gone it keeps the lock alive for
// -lock-linger, then exits without releasing it, so the key lives one TTL more.
// It returns the exit code.
func RunLockChild(args []string, getenv func(string) string, stdin io.Reader, reply io.Writer) int {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGPIPE)
	fs := flag.NewFlagSet("child-lock.manager", flag.ContinueOnError)
	ttl := fs.Duration("lock-ttl", RealTimings().LockTTL, "lock lifetime")
	retry := fs.Duration("lock-retry", RealTimings().LockRetry, "how long to retry a held lock")
	linger := fs.Duration("lock-linger", RealTimings().LockLinger, "lock kept alive after the parent is gone")
	fork := fs.Duration("fork-delay", RealTimings().Fork, "start-up time")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	env := &envReader{getenv: getenv}
	rc := RedisConfig{
		Hostname: env.str("REDIS__HOSTNAME", "localhost"), Port: env.integer("REDIS__PORT", 6379),
		Password: getenv("REDIS__PASSWORD"), Namespace: getenv("REDIS__NAMESPACE"), UseSSL: env.boolean("REDIS__USE_SSL", false),
	}
	if env.err != nil {
		fmt.Fprintln(os.Stderr, "child-lock.manager:", env.err)
		return 1
	}
	ch := &childLock{client: redis.NewClient(redisOptions(rc)), key: namespacedKey(rc.Namespace, initLockKey),
		token: uuid.NewString(), ttl: *ttl, retry: *retry, reply: reply}
	defer ch.client.Close()

	commands := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			commands <- strings.TrimSpace(sc.Text())
		}
		close(commands)
	}()
	// Loading the bundle: node takes seconds before the child can answer.
	time.Sleep(*fork)

	extend := time.NewTicker(max(*ttl/3, time.Millisecond))
	defer extend.Stop()
	var lingerDone <-chan time.Time
	for {
		select {
		case cmd, ok := <-commands:
			if !ok {
				commands = nil
				lingerDone = time.After(*linger)
				continue
			}
			switch cmd {
			case cmdLock:
				ch.answer(ch.lock())
			case cmdUnlock:
				ch.answer(ch.release())
			case cmdRelease:
				ch.answer(ch.release())
				return 0
			}
		case <-extend.C:
			ch.extend()
		case <-lingerDone:
			// Gone without releasing: the key expires one TTL later.
			return 0
		}
	}
}

// childLock is the child's state: it owns the lock when held is true.
type childLock struct {
	client *redis.Client
	key    string
	token  string
	ttl    time.Duration
	retry  time.Duration
	held   bool
	reply  io.Writer
}

func (c *childLock) answer(s string) { _, _ = io.WriteString(c.reply, s+"\n") }

// lock retries SET NX PX for the retry time, as redlock's retryCount does.
func (c *childLock) lock() string {
	deadline := time.Now().Add(c.retry)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := c.client.SetNX(ctx, c.key, c.token, c.ttl).Result()
		cancel()
		if err != nil {
			return failedReply + " " + err.Error()
		}
		if ok {
			c.held = true
			return lockedReply
		}
		if time.Now().After(deadline) {
			return failedReply + " " + LockErrorName
		}
		time.Sleep(lockRetryInterval)
	}
}

// release deletes the key if this child still owns it.
func (c *childLock) release() string {
	if !c.held {
		return unlockedReply
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := releaseScript.Run(ctx, c.client, []string{c.key}, c.token).Err(); err != nil {
		return failedReply + " " + err.Error()
	}
	c.held = false
	return unlockedReply
}

// extend renews the TTL while held; a failed extension is left to the TTL, as
// redlock's automatic extension does after a Redis hiccup.
func (c *childLock) extend() {
	if !c.held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = extendScript.Run(ctx, c.client, []string{c.key}, c.token, c.ttl.Milliseconds()).Err()
}
