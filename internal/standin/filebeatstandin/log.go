package filebeatstandin

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// logger writes filebeat 7.10's console log lines (what `-e` prints on stderr): a
// zap ISO 8601 timestamp, the level, the logger's name in brackets when it has one,
// the source file that logs the line in the real program, and the message, separated
// by tabs, so log parsing written against filebeat is exercised by the stand-in.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

// timestampLayout is zap's ISO 8601 encoder: milliseconds and a numeric zone, Z for UTC.
const timestampLayout = "2006-01-02T15:04:05.000Z0700"

func (l *logger) line(level, name, caller, format string, a ...any) {
	if l == nil || l.w == nil {
		return
	}
	msg := fmt.Sprintf(format, a...)
	ts := time.Now().Format(timestampLayout)
	l.mu.Lock()
	defer l.mu.Unlock()
	if name != "" {
		fmt.Fprintf(l.w, "%s\t%s\t[%s]\t%s\t%s\n", ts, level, name, caller, msg)
		return
	}
	fmt.Fprintf(l.w, "%s\t%s\t%s\t%s\n", ts, level, caller, msg)
}

func (l *logger) info(name, caller, format string, a ...any) {
	l.line("INFO", name, caller, format, a...)
}

func (l *logger) warn(name, caller, format string, a ...any) {
	l.line("WARN", name, caller, format, a...)
}

func (l *logger) error(name, caller, format string, a ...any) {
	l.line("ERROR", name, caller, format, a...)
}
