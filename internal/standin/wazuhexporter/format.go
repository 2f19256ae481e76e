package wazuhexporter

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is one line of the exposition.
type sample struct {
	name   string
	labels [][2]string
	value  float64
}

// families is the text exposition as prometheus_client's generate_latest writes it.
type families struct{ b strings.Builder }

// add writes one family: info families are gauges whose name gains _info.
func (f *families) add(name, help, typ string, samples ...sample) {
	if typ == "info" {
		name, typ = name+"_info", "gauge"
	}
	fmt.Fprintf(&f.b, "# HELP %s %s\n# TYPE %s %s\n", name, strings.ReplaceAll(help, "\\", `\\`), name, typ)
	for _, s := range samples {
		f.b.WriteString(s.name)
		if len(s.labels) > 0 {
			f.b.WriteByte('{')
			for i, l := range s.labels {
				if i > 0 {
					f.b.WriteByte(',')
				}
				fmt.Fprintf(&f.b, "%s=\"%s\"", l[0], labelValue.Replace(l[1]))
			}
			f.b.WriteByte('}')
		}
		f.b.WriteString(" " + goFloat(s.value) + "\n")
	}
}

func (f *families) String() string { return f.b.String() }

var labelValue = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// goFloat is prometheus_client's floatToGoString: Python's repr of a float.
func goFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return nil
}

func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case bool:
		if n {
			return 1
		}
	}
	return 0
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	return pyRepr(v)
}

// pyRepr is str() of a JSON value as Python shows it.
func pyRepr(v any) string {
	switch n := v.(type) {
	case nil:
		return "None"
	case string:
		return n
	case bool:
		if n {
			return "True"
		}
		return "False"
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1e15 {
			return strconv.FormatInt(int64(n), 10)
		}
		return strconv.FormatFloat(n, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// logger writes json_logging's lines.
type logger struct {
	mu    sync.Mutex
	w     io.Writer
	level string
}

var levels = map[string]int{"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}

func (l *logger) log(level, msg string) {
	if levels[strings.ToUpper(level)] < levels[l.level] {
		return
	}
	now := time.Now().UTC()
	line, _ := json.Marshal(map[string]any{"written_at": now.Format("2006-01-02T15:04:05.000Z"), "written_ts": now.UnixNano(),
		"msg": msg, "type": "log", "logger": "wazuh-exporter", "thread": "MainThread", "level": level, "module": "prometheus_exporter"})
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s\n", line)
}

// traceback is an uncaught Python exception as the interpreter prints it.
func (l *logger) traceback(where, exc string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "Traceback (most recent call last):\n  File \"/srv/prometheus/prometheus_exporter.py\", line 1, in <module>\n%s\n%s\n", where, exc)
}
