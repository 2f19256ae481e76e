package openctistandin

import (
	"flag"
	"fmt"
	"time"
)

// Timings are how long the real platform takes for each step. The defaults are
// the figures measured on a real 6.9.28 backend on 2 cores (docs/opencti.md §7,
// §8): a stand-in must be no faster than the real program, so a supervisor tuned
// on the stand-in copes with the real one. Tests pass shorter values.
type Timings struct {
	// Start is process start to the first dependency check: node loading its
	// bundle. A failed dependency check therefore exits ≈ 4–5 s after start.
	Start time.Duration
	// Fork is how long the forked init-lock child takes to load before it can
	// take the lock; with Start it makes a failure after the lock take ≥ 10 s.
	Fork time.Duration
	// Init is the first-boot initialisation, lock taken to "[INIT] Platform
	// initialization done"; the admin token is checked at 36 % of it (≈ 40 s from start).
	Init time.Duration
	// Migration is the silent mapping refresh of a boot that changes version:
	// no log line between "[INIT] Existing platform detected" and "[MIGRATION]
	// Read N migrations from the database". With Start and Fork it is the "first
	// ≈ 30 s are silent" of §8: 4 + 5 + 21 = 30 s from process start.
	Migration time.Duration
	// MigrationStep is how long each migration of a version change runs before it
	// is recorded ("[MIGRATION] Saving current configuration, <file>"). §8's upgrade
	// reached the port 38 s after start on a small dataset: 38 − 30 s silent − 7 s
	// Ready leaves ≈ 1 s for its 5 migrations, so 200 ms each. Big datasets take
	// hours (§2); tests lengthen it to kill or watch a migration in progress.
	MigrationStep time.Duration
	// Ready is "[INIT] Platform initialization done" to the port opening (modules
	// starting). Start+Fork+Init+Ready is the 102 s first boot, Start+Fork+Ready
	// the 16 s second boot, Start+Fork+Migration+5×MigrationStep+Ready the 38 s
	// upgrade.
	Ready time.Duration
	// LockRetry is how long a start retries a held platform_init_lock before
	// failing with LOCK_ERROR.
	LockRetry time.Duration
	// LockTTL is the lock's lifetime, extended by the child while it holds it.
	LockTTL time.Duration
	// LockLinger is how long the lock child keeps extending the lock after its
	// parent is gone before exiting without releasing it (the key then lives
	// LockTTL more: ≈ 2 min in all).
	LockLinger time.Duration
	// Stop is SIGTERM to exit in steady state ("[OPENCTI] Platform stopped 8996 ms").
	Stop time.Duration
	// StopHang is the probability that a steady-state stop never ends (real stops
	// hung for more than 10 minutes); the supervisor must SIGKILL.
	StopHang float64
	// Seed seeds the hang draw (0: from the clock), so tests choose the outcome.
	Seed int64
	// HealthTimeout is when /health gives up on a dependency that does not answer.
	HealthTimeout time.Duration
	// UserAddAnswer holds back userAdd's answer after the user is written: a slow
	// or lost answer, which the real platform gives under load or a network fault.
	// Not a measured figure (a real userAdd answers in well under a second, and the
	// stand-in answers as fast by default); tests lengthen it to kill a caller whose
	// userAdd did its work but never answered.
	UserAddAnswer time.Duration
}

// RealTimings returns the measured figures every zero field of Timings defaults to.
func RealTimings() Timings {
	return Timings{
		Start:         4 * time.Second,
		Fork:          5 * time.Second,
		Init:          86 * time.Second,
		Migration:     21 * time.Second,
		MigrationStep: 200 * time.Millisecond,
		Ready:         7 * time.Second,
		LockRetry:     26 * time.Second,
		LockTTL:       60 * time.Second,
		LockLinger:    60 * time.Second,
		Stop:          9 * time.Second,
		StopHang:      0.5,
		HealthTimeout: 15 * time.Second,
	}
}

// AddFlags registers one flag per field on fs, defaulting to RealTimings, and
// returns the Timings the flags fill in; 0 on the command line means no delay.
func AddFlags(fs *flag.FlagSet) *Timings {
	r := RealTimings()
	t := &Timings{}
	fs.DurationVar(&t.Start, "start-delay", r.Start, "process start to the first dependency check")
	fs.DurationVar(&t.Fork, "fork-delay", r.Fork, "start-up of the forked init-lock child")
	fs.DurationVar(&t.Init, "init-delay", r.Init, "first-boot initialisation (lock to \"[INIT] Platform initialization done\")")
	fs.DurationVar(&t.Migration, "migration-delay", r.Migration, "silent mapping refresh of a migrating boot")
	fs.DurationVar(&t.MigrationStep, "migration-step-delay", r.MigrationStep, "time each migration of a version change runs before it is recorded")
	fs.DurationVar(&t.Ready, "ready-delay", r.Ready, "initialisation done to API port open")
	fs.DurationVar(&t.LockRetry, "lock-retry", r.LockRetry, "how long a held platform_init_lock is retried before LOCK_ERROR")
	fs.DurationVar(&t.LockTTL, "lock-ttl", r.LockTTL, "platform_init_lock lifetime (extended while held)")
	fs.DurationVar(&t.LockLinger, "lock-linger", r.LockLinger, "how long the lock child keeps the lock alive after its parent is gone")
	fs.DurationVar(&t.Stop, "stop-delay", r.Stop, "SIGTERM to exit once the platform is running")
	fs.Float64Var(&t.StopHang, "stop-hang", r.StopHang, "probability that a stop of the running platform hangs until SIGKILL")
	fs.Int64Var(&t.Seed, "seed", 0, "seed of the stop-hang draw (0: from the clock)")
	fs.DurationVar(&t.HealthTimeout, "health-timeout", r.HealthTimeout, "how long /health waits for a dependency")
	fs.DurationVar(&t.UserAddAnswer, "user-add-answer-delay", 0, "how long userAdd holds back its answer after writing the user (a lost or slow answer)")
	return t
}

// validate refuses timings the lock cannot work with.
func (t Timings) validate() error {
	if t.LockTTL < 10*time.Millisecond {
		return fmt.Errorf("cannot use a lock TTL of %s: want at least 10ms", t.LockTTL)
	}
	if t.StopHang < 0 || t.StopHang > 1 {
		return fmt.Errorf("cannot use a stop-hang probability of %g: want 0..1", t.StopHang)
	}
	return nil
}
