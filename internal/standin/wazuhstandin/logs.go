package wazuhstandin

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// logStamp is the timestamp every Wazuh log line starts with.
const logStamp = "2006/01/02 15:04:05"

// Log files, relative to home.
const (
	ossecLogRel   = "logs/ossec.log"
	clusterLogRel = "logs/cluster.log"
	apiLogRel     = "logs/api.log"
	alertsRel     = "logs/alerts/alerts.json"
)

// fileLog appends lines to one of the manager's log files, opening it per line
// as several processes write to the same files.
type fileLog struct {
	mu   sync.Mutex
	path string
	also io.Writer // a copy of every line (a daemon's stdout), or nil
}

func newFileLog(home, rel string) *fileLog { return &fileLog{path: filepath.Join(home, rel)} }

func (l *fileLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s = time.Now().Format(logStamp) + " " + s + "\n"
	if f, err := os.OpenFile(l.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o660); err == nil {
		_, _ = f.WriteString(s)
		_ = f.Close()
	}
	if l.also != nil {
		_, _ = io.WriteString(l.also, s)
	}
}

// daemonf writes a C daemon's line: "<stamp> wazuh-remoted: INFO: ...".
func (l *fileLog) daemonf(daemon, level, format string, args ...any) {
	l.line(fmt.Sprintf("%s: %s: %s", daemon, level, fmt.Sprintf(format, args...)))
}

// clusterf writes a wazuh-clusterd line: "<stamp> INFO: [Master] [Main] ...".
func (l *fileLog) clusterf(level, tag, subtag, format string, args ...any) {
	l.line(fmt.Sprintf("%s: [%s] [%s] %s", level, tag, subtag, fmt.Sprintf(format, args...)))
}

// apif writes a wazuh-apid line: "<stamp> INFO: ...".
func (l *fileLog) apif(level, format string, args ...any) {
	l.line(fmt.Sprintf("%s: %s", level, fmt.Sprintf(format, args...)))
}
