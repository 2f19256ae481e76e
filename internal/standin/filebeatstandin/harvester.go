package filebeatstandin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// event is one line made into a document, with the file state its acknowledgement
// records in the registry.
type event struct {
	doc   map[string]any
	index string
	key   string
	state fileState
}

// crawler runs the inputs: each globs its paths every ScanFrequency and starts a
// harvester for each file not already being read.
type crawler struct {
	log      *logger
	reg      *registry
	out      chan<- event
	docs     docMaker
	mu       sync.Mutex
	active   map[string]bool // registry keys being harvested
	inputIDs uint64
}

func (c *crawler) run(ctx context.Context, inputs []Input) {
	c.log.info("crawler", "beater/crawler.go:71", "Loading Inputs: %d", len(inputs))
	var wg sync.WaitGroup
	for _, in := range inputs {
		c.inputIDs++
		c.log.info("", "log/input.go:157", "Configured paths: [%s]", strings.Join(in.Paths, " "))
		c.log.info("crawler", "beater/crawler.go:141", "Starting input (ID: %d)", c.inputIDs)
		wg.Add(1)
		go func(in Input) {
			defer wg.Done()
			c.scan(ctx, in, &wg)
		}(in)
	}
	c.log.info("crawler", "beater/crawler.go:108", "Loading and starting Inputs completed. Enabled inputs: %d", len(inputs))
	wg.Wait()
}

// scan globs the input's paths now and every ScanFrequency until ctx ends.
func (c *crawler) scan(ctx context.Context, in Input, wg *sync.WaitGroup) {
	for {
		for _, pattern := range in.Paths {
			matches, _ := filepath.Glob(pattern)
			for _, path := range matches {
				info, err := os.Stat(path)
				if err != nil || !info.Mode().IsRegular() {
					continue
				}
				id := identity(info)
				key := fileKey(id)
				c.mu.Lock()
				busy := c.active[key]
				c.active[key] = true
				c.mu.Unlock()
				if busy {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.harvest(ctx, in, path, id, key)
					c.mu.Lock()
					delete(c.active, key)
					c.mu.Unlock()
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(in.ScanFrequency):
		}
	}
}

func identity(info os.FileInfo) fileStateOS {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return fileStateOS{Inode: st.Ino, Device: uint64(st.Dev)}
	}
	return fileStateOS{}
}

// harvest reads path from its registry offset, one event per complete line; at the
// end of the file it waits Backoff, doubling to MaxBackoff while nothing comes. It
// stops when the file at path is another file (rotated) or has gone, once read to the end.
func (c *crawler) harvest(ctx context.Context, in Input, path string, id fileStateOS, key string) {
	f, err := os.Open(path)
	if err != nil {
		c.log.error("", "log/input.go:558", "Harvester could not be started on new file: %s, Err: %v", path, err)
		return
	}
	defer f.Close()
	state := fileState{Source: path, TTL: -1, Type: in.Type, FileStateOS: id, IdentifierName: "native",
		ID: strings.TrimPrefix(key, "filebeat::logs::")}
	if prev, ok := c.reg.get(key); ok {
		state.Offset = prev.Offset
	}
	if info, err := f.Stat(); err == nil && info.Size() < state.Offset {
		c.log.info("", "log/input.go:462", "File was truncated. Begin reading file from offset 0: %s", path)
		state.Offset = 0
	}
	if _, err := f.Seek(state.Offset, io.SeekStart); err != nil {
		return
	}
	c.log.info("", "log/harvester.go:302", "Harvester started for file: %s", path)
	r := bufio.NewReaderSize(f, 16*1024)
	wait := in.Backoff
	var partial []byte
	for {
		chunk, err := r.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err == nil {
			line := strings.TrimRight(string(partial), "\r\n")
			state.Offset += int64(len(partial))
			partial = partial[:0]
			wait = in.Backoff
			if line == "" {
				continue
			}
			st := state
			st.Timestamp = []int64{time.Now().UnixNano(), 0}
			doc, index := c.docs.make(in, line, st)
			select {
			case c.out <- event{doc: doc, index: index, key: key, state: st}:
			case <-ctx.Done():
				return
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			c.log.error("", "log/harvester.go:332", "Read line error: %v; File: %s", err, path)
			return
		}
		// End of file: truncated, replaced or gone means this harvester is done.
		if info, err := f.Stat(); err == nil && info.Size() < state.Offset+int64(len(partial)) {
			c.log.info("", "log/harvester.go:338", "File was truncated. Begin reading file from offset 0: %s", path)
			state.Offset, partial = 0, partial[:0]
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return
			}
			r.Reset(f)
			continue
		}
		if info, err := os.Stat(path); err != nil || identity(info) != id {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if wait *= 2; wait > in.MaxBackoff {
			wait = in.MaxBackoff
		}
	}
}

// docMaker turns lines into documents and picks their index.
type docMaker struct {
	output   Output
	hostname string
	beatID   string
	ephemID  string
}

// make builds the document of one line. Lines of the Wazuh module become what the
// module's ingest pipeline stores: the alert's own fields with @timestamp taken from
// its timestamp, in index_prefix + the alert's day (UTC). Other lines are filebeat
// events (message, log, input, agent, ecs, host), decoded when the input has json.*,
// in output.elasticsearch.index (default filebeat-7.10.2-%{+yyyy.MM.dd}).
func (d docMaker) make(in Input, line string, st fileState) (map[string]any, string) {
	now := time.Now().UTC()
	doc := map[string]any{}
	var decoded map[string]any
	var decodeErr error
	if in.JSON {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		decodeErr = dec.Decode(&decoded)
	}
	if in.Module == "wazuh" && decodeErr == nil {
		for k, v := range decoded {
			doc[k] = v
		}
		ts := now
		if s, ok := decoded["timestamp"].(string); ok {
			if t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", s); err == nil {
				ts = t.UTC()
			} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				ts = t.UTC()
			}
		}
		doc["@timestamp"] = ts.Format("2006-01-02T15:04:05.000Z")
		return doc, in.IndexPrefix + ts.Format("2006.01.02")
	}
	doc["@timestamp"] = now.Format("2006-01-02T15:04:05.000Z")
	doc["log"] = map[string]any{"offset": st.Offset, "file": map[string]any{"path": st.Source}}
	doc["input"] = map[string]any{"type": in.Type}
	doc["ecs"] = map[string]any{"version": "1.6.0"}
	doc["host"] = map[string]any{"name": d.hostname}
	doc["agent"] = map[string]any{"type": "filebeat", "version": beatVersion, "hostname": d.hostname,
		"name": d.hostname, "id": d.beatID, "ephemeral_id": d.ephemID}
	switch {
	case decodeErr != nil:
		doc["message"] = line
		doc["error"] = map[string]any{"message": "Error decoding JSON: " + decodeErr.Error(), "type": "json"}
	case decoded != nil && in.KeysUnderRoot:
		for k, v := range decoded {
			doc[k] = v
		}
	case decoded != nil:
		doc["json"] = decoded
	default:
		doc["message"] = line
	}
	index := d.output.Index
	if index == "" {
		index = defaultIndex
	}
	return doc, formatIndex(index, now, doc)
}

// formatIndex expands libbeat's format strings in an index name: %{+yyyy.MM.dd} (the
// event time, UTC) and %{[field.path]}; index names are lower case.
func formatIndex(pattern string, ts time.Time, doc map[string]any) string {
	var b strings.Builder
	for {
		i := strings.Index(pattern, "%{")
		if i < 0 {
			b.WriteString(pattern)
			break
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			b.WriteString(pattern)
			break
		}
		b.WriteString(pattern[:i])
		expr := pattern[i+2 : i+j]
		switch {
		case strings.HasPrefix(expr, "+"):
			b.WriteString(ts.Format(jodaToGo(expr[1:])))
		case strings.HasPrefix(expr, "[") && strings.HasSuffix(expr, "]"):
			var cur any = doc
			for _, p := range strings.Split(expr[1:len(expr)-1], ".") {
				m, _ := cur.(map[string]any)
				cur = m[p]
			}
			if cur != nil {
				b.WriteString(strings.TrimSpace(strings.Trim(jsonString(cur), `"`)))
			}
		}
		pattern = pattern[i+j+1:]
	}
	return strings.ToLower(b.String())
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// jodaToGo converts the date tokens libbeat index names use.
func jodaToGo(f string) string {
	return strings.NewReplacer("yyyy", "2006", "yy", "06", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05").Replace(f)
}
