package filebeatstandin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// errLocked is libbeat 7.10's refusal to share a data path with a running beat.
var errLocked = errors.New("data path already locked by another beat")

// lockData takes path.data/filebeat.lock for the life of the process, as libbeat does.
func lockData(data string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(data, "filebeat.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errLocked
	}
	return f, nil
}

// beatMeta reads or creates path.data/meta.json, which holds the beat's ID across runs.
func beatMeta(data string) (string, error) {
	file := filepath.Join(data, "meta.json")
	var meta struct {
		UUID       string    `json:"uuid"`
		FirstStart time.Time `json:"first_start"`
	}
	if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &meta) == nil && meta.UUID != "" {
		return meta.UUID, nil
	}
	meta.UUID, meta.FirstStart = uuid.NewString(), time.Now().UTC()
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(file+".new", b, 0o600); err != nil {
		return "", fmt.Errorf("Failed to create Beat meta file: %w", err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		return "", fmt.Errorf("Failed to create Beat meta file: %w", err)
	}
	return meta.UUID, nil
}

// fileState is a file's entry in the registry, in the shape filebeat 7.10's memlog
// store gives it: the offset up to which its lines were acknowledged by the output.
type fileState struct {
	Source         string      `json:"source"`
	Offset         int64       `json:"offset"`
	Timestamp      []int64     `json:"timestamp"`
	TTL            int64       `json:"ttl"`
	Type           string      `json:"type"`
	FileStateOS    fileStateOS `json:"FileStateOS"`
	IdentifierName string      `json:"identifier_name"`
	ID             string      `json:"id"`
	PrevID         string      `json:"prev_id"`
}

// fileStateOS identifies a file by inode and device, so a renamed file keeps its offset.
type fileStateOS struct {
	Inode  uint64 `json:"inode"`
	Device uint64 `json:"device"`
}

// registry is path.data/registry/filebeat: meta.json and log.json, an append-only log
// of {"op":"set","id":N} lines each followed by {"k":KEY,"v":STATE} (memlog's format;
// the real store also compacts it into checkpoint files, which the stand-in does not).
type registry struct {
	mu     sync.Mutex
	dir    string
	log    *os.File
	nextID int64
	states map[string]fileState
}

// openRegistry loads the registry under data, creating it on first run.
func openRegistry(data string) (*registry, error) {
	dir := filepath.Join(data, "registry", "filebeat")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(`{"version":"1"}`+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	r := &registry{dir: dir, states: map[string]fileState{}, nextID: 1}
	if f, err := os.Open(filepath.Join(dir, "log.json")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			var op struct {
				Op string `json:"op"`
				ID int64  `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &op) != nil || op.Op == "" || !sc.Scan() {
				continue
			}
			var kv struct {
				K string    `json:"k"`
				V fileState `json:"v"`
			}
			if json.Unmarshal(sc.Bytes(), &kv) == nil && op.Op == "set" {
				r.states[kv.K] = kv.V
			}
			r.nextID = op.ID + 1
		}
		f.Close()
	}
	var err error
	r.log, err = os.OpenFile(filepath.Join(dir, "log.json"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	return r, err
}

// get returns the state stored under key.
func (r *registry) get(key string) (fileState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.states[key]
	return s, ok
}

// set records an acknowledged state and appends it to log.json.
func (r *registry) set(key string, s fileState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[key] = s
	op, _ := json.Marshal(struct {
		Op string `json:"op"`
		ID int64  `json:"id"`
	}{"set", r.nextID})
	kv, _ := json.Marshal(struct {
		K string    `json:"k"`
		V fileState `json:"v"`
	}{key, s})
	r.nextID++
	_, err := r.log.Write(append(append(append(op, '\n'), kv...), '\n'))
	return err
}

func (r *registry) close() error { return r.log.Close() }

// fileKey is the registry key of a file: filebeat::logs::native::<inode>-<device>.
func fileKey(os fileStateOS) string {
	return fmt.Sprintf("filebeat::logs::native::%d-%d", os.Inode, os.Device)
}
