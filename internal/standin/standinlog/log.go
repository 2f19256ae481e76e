// Package standinlog writes the JSON log lines of socflow's OpenCTI stand-ins
// (test fixtures, not product) in the shape OpenCTI itself prints, so that log
// parsing written against the real platform is exercised by the stand-ins too.
package standinlog

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// timestampLayout matches the ISO-8601 UTC timestamps of OpenCTI's winston logger.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// New returns a logger printing one {"level","message","timestamp",...} JSON object per line to w.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: rename}))
}

// rename maps slog's built-in keys onto OpenCTI's, because consumers key on "message" and "timestamp".
func rename(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("timestamp", a.Value.Time().UTC().Format(timestampLayout))
	case slog.MessageKey:
		return slog.String("message", a.Value.String())
	case slog.LevelKey:
		if lvl, ok := a.Value.Any().(slog.Level); ok {
			return slog.String("level", levelName(lvl))
		}
	}
	return a
}

// levelName spells levels as winston does ("warn", not "WARN").
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// ParseLevel reads the level names OpenCTI and pycti accept (debug, info, warn/warning, error).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "critical":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("cannot parse log level %q: want debug, info, warning or error", s)
}

// SyncBuffer is a log sink that is safe to read while a stand-in writes to it, for
// tests that watch a stand-in's log lines as it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
