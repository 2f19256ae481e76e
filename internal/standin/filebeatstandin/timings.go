package filebeatstandin

import (
	"flag"
	"fmt"
	"time"
)

// Timings are filebeat 7.10's defaults for when it looks at files and how it waits
// after failures; a stand-in must be no faster than the real program, so a supervisor
// tuned on it copes with the real one. filebeat.yml can set most of them per input or
// output, as with the real program; these are the defaults when it does not.
type Timings struct {
	// ScanFrequency is how often an input globs its paths for new files (log input
	// scan_frequency, 10 s): a file created after start is read up to 10 s later.
	ScanFrequency time.Duration
	// Backoff is how long a harvester waits at the end of a file before looking
	// again (backoff, 1 s), doubled on each idle look up to MaxBackoff.
	Backoff time.Duration
	// MaxBackoff caps that wait (max_backoff, 10 s): a line appended to a quiet file
	// is read up to 10 s later.
	MaxBackoff time.Duration
	// FlushTimeout is how long the memory queue holds events before handing a
	// partial batch to the output (queue.mem.flush.timeout, 1 s).
	FlushTimeout time.Duration
	// OutputBackoffInit is the first wait after a failed connection or publish
	// (output.elasticsearch.backoff.init, 1 s), doubled on each failure with jitter.
	OutputBackoffInit time.Duration
	// OutputBackoffMax caps that wait (output.elasticsearch.backoff.max, 60 s).
	OutputBackoffMax time.Duration
}

// RealTimings returns filebeat 7.10.2's defaults.
func RealTimings() Timings {
	return Timings{
		ScanFrequency:     10 * time.Second,
		Backoff:           time.Second,
		MaxBackoff:        10 * time.Second,
		FlushTimeout:      time.Second,
		OutputBackoffInit: time.Second,
		OutputBackoffMax:  60 * time.Second,
	}
}

// timingFlag ties a Timings field to its stand-in flag and environment variable:
// Pebble starts filebeat with a fixed command, so tests shorten timings through the
// environment, which sets the flag's default.
type timingFlag struct {
	name, env, usage string
	field            func(*Timings) *time.Duration
}

var timingFlags = []timingFlag{
	{"standin.scan-frequency", "FILEBEAT_STANDIN_SCAN_FREQUENCY", "default scan_frequency of log inputs", func(t *Timings) *time.Duration { return &t.ScanFrequency }},
	{"standin.backoff", "FILEBEAT_STANDIN_BACKOFF", "default backoff of harvesters at end of file", func(t *Timings) *time.Duration { return &t.Backoff }},
	{"standin.max-backoff", "FILEBEAT_STANDIN_MAX_BACKOFF", "default max_backoff of harvesters", func(t *Timings) *time.Duration { return &t.MaxBackoff }},
	{"standin.flush-timeout", "FILEBEAT_STANDIN_FLUSH_TIMEOUT", "queue.mem.flush.timeout", func(t *Timings) *time.Duration { return &t.FlushTimeout }},
	{"standin.output-backoff-init", "FILEBEAT_STANDIN_OUTPUT_BACKOFF_INIT", "default output.elasticsearch.backoff.init", func(t *Timings) *time.Duration { return &t.OutputBackoffInit }},
	{"standin.output-backoff-max", "FILEBEAT_STANDIN_OUTPUT_BACKOFF_MAX", "default output.elasticsearch.backoff.max", func(t *Timings) *time.Duration { return &t.OutputBackoffMax }},
}

// addTimingFlags registers the timing flags on fs, each defaulting to its environment
// variable when set, else to RealTimings; it returns the Timings the flags fill in.
func addTimingFlags(fs *flag.FlagSet, env LookupEnv) (*Timings, error) {
	t := RealTimings()
	for _, f := range timingFlags {
		if v, ok := env(f.env); ok && v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("cannot parse %s=%q: %w", f.env, v, err)
			}
			*f.field(&t) = d
		}
	}
	out := t
	for _, f := range timingFlags {
		fs.DurationVar(f.field(&out), f.name, *f.field(&t), f.usage+" (env "+f.env+")")
	}
	return &out, nil
}
