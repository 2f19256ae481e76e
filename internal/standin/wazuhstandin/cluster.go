package wazuhstandin

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// localSocketRel is the socket through which the API asks wazuh-clusterd.
const localSocketRel = "queue/cluster/c-internal.sock"

// keepAliveEvery is how often a connected worker refreshes its view of the
// cluster from the master: a stand-in cadence, not a real figure.
const keepAliveEvery = time.Second

// NodeInfo is one node as GET /cluster/nodes lists it.
type NodeInfo struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Version string `json:"version"`
	IP      string `json:"ip"`
}

// frame header: counter, payload length, 12-byte command padded with '-'.
const headerLen = 20

func writeFrame(w io.Writer, counter uint32, cmd string, payload []byte) error {
	h := make([]byte, headerLen)
	binary.BigEndian.PutUint32(h[0:], counter)
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	copy(h[8:], []byte(cmd + strings.Repeat("-", 12))[:12])
	_, err := w.Write(append(h, payload...))
	return err
}

func readFrame(r io.Reader) (string, []byte, error) {
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(r, h); err != nil {
		return "", nil, err
	}
	n := binary.BigEndian.Uint32(h[4:])
	if n > 1<<20 {
		return "", nil, errors.New("Error 3024 - Length of command exceeds limit")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return "", nil, err
	}
	return strings.TrimRight(string(h[8:]), "-"), payload, nil
}

// clusterState is what clusterd knows, answered on the local socket.
type clusterState struct {
	mu        sync.Mutex
	self      NodeInfo
	workers   map[string]NodeInfo // master: connected workers
	connected bool                // worker: joined the master
	nodes     []NodeInfo          // worker: the master's last list
}

func (s *clusterState) list() ([]NodeInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.self.Type == "worker" {
		if !s.connected {
			return nil, errors.New("3023")
		}
		return append([]NodeInfo{}, s.nodes...), nil
	}
	out := []NodeInfo{s.self}
	names := make([]string, 0, len(s.workers))
	for n := range s.workers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, s.workers[n])
	}
	return out, nil
}

// openClusterd binds the master's cluster port (or prepares the worker's
// connection) and the local socket the API uses.
func (d *daemon) openClusterd() (func(context.Context) error, error) {
	c := d.m.Cluster
	host := c.BindAddr
	if len(c.Nodes) > 0 && c.NodeType == "master" {
		if h, _, err := net.SplitHostPort(c.Nodes[0]); err == nil {
			host = h
		} else {
			host = c.Nodes[0]
		}
	}
	st := &clusterState{self: NodeInfo{Name: c.NodeName, Type: c.NodeType, Version: APIVersion, IP: host},
		workers: map[string]NodeInfo{}}
	sock := filepath.Join(d.home, localSocketRel)
	_ = os.MkdirAll(filepath.Dir(sock), 0o750)
	_ = os.Remove(sock)
	local, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("cannot serve %s: %v", localSocketRel, err)
	}
	var master net.Listener
	if c.NodeType == "master" {
		addr := net.JoinHostPort(listenHost(c.BindAddr), strconv.Itoa(c.Port))
		master, err = net.Listen("tcp", addr)
		if err != nil {
			local.Close()
			return nil, fmt.Errorf("[Errno %d] error while attempting to bind on address ('%s', %d): %v",
				errnoOf(err), listenHost(c.BindAddr), c.Port, err)
		}
	}
	return func(ctx context.Context) error {
		d.cluster.clusterf("INFO", "Local Server", "Main", "Serving on %s", sock)
		go serveLocal(local, st)
		defer local.Close()
		if master != nil {
			defer master.Close()
			d.cluster.clusterf("INFO", "Master", "Main", "Serving on ('%s', %d).", listenHost(c.BindAddr), c.Port)
			go d.serveMaster(master, st)
			<-ctx.Done()
			return nil
		}
		d.runWorker(ctx, st)
		return nil
	}, nil
}

func errnoOf(err error) int {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return int(errno)
	}
	return 0
}

func serveLocal(ln net.Listener, st *clusterState) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
				return
			}
			nodes, err := st.list()
			if err != nil {
				_ = json.NewEncoder(conn).Encode(map[string]any{"error": 3023})
				return
			}
			_ = json.NewEncoder(conn).Encode(map[string]any{"error": 0, "nodes": nodes})
		}()
	}
}

func (d *daemon) serveMaster(ln net.Listener, st *clusterState) {
	f := newFernet(d.m.Cluster.Key)
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go d.masterConn(conn, f, st)
	}
}

// masterConn is one worker's connection: a hello sealed with the shared key,
// then keep-alives until the worker goes.
func (d *daemon) masterConn(conn net.Conn, f fernet, st *clusterState) {
	defer conn.Close()
	ip, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	cmd, payload, err := readFrame(conn)
	if err != nil {
		return
	}
	plain, err := f.open(payload)
	if err != nil {
		d.cluster.clusterf("ERROR", "Master", "Main", "Could not decrypt message from %s: Error 3025 - Could not decrypt message (InvalidToken). Check the cluster key is correct", ip)
		return
	}
	fields := strings.Fields(string(plain))
	if cmd != "hello" || len(fields) < 4 {
		return
	}
	name, clusterName, nodeType, version := fields[0], fields[1], fields[2], fields[3]
	refuse := func(msg string) {
		d.cluster.clusterf("ERROR", "Master", "Main", "Error processing hello from %s: %s", name, msg)
		_ = writeFrame(conn, 1, "err", f.seal([]byte(msg)))
	}
	st.mu.Lock()
	_, dup := st.workers[name]
	st.mu.Unlock()
	switch {
	case dup || name == d.m.Cluster.NodeName:
		refuse("Error 3028 - Worker node ID already exists")
		return
	case clusterName != d.m.Cluster.Name:
		refuse("Error 3030 - Worker does not belong to the same cluster")
		return
	case version != APIVersion:
		refuse("Error 3031 - Worker and master versions are different")
		return
	}
	st.mu.Lock()
	st.workers[name] = NodeInfo{Name: name, Type: nodeType, Version: version, IP: ip}
	st.mu.Unlock()
	d.cluster.clusterf("INFO", "Worker "+name, "Main", "Connected.")
	defer func() {
		st.mu.Lock()
		delete(st.workers, name)
		st.mu.Unlock()
		d.cluster.clusterf("INFO", "Worker "+name, "Main", "Cleaning the connection. The worker %s closed the connection.", name)
	}()
	if writeFrame(conn, 1, "ok", f.seal([]byte("Client "+name+" added"))) != nil {
		return
	}
	for counter := uint32(2); ; counter++ {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		cmd, payload, err := readFrame(conn)
		if err != nil {
			return
		}
		if _, err := f.open(payload); err != nil || cmd != "echo-c" {
			return
		}
		nodes, _ := st.list()
		body, _ := json.Marshal(nodes)
		if writeFrame(conn, counter, "ok", f.seal(body)) != nil {
			return
		}
	}
}

// runWorker connects to the master for ever, retrying every ClusterRetry.
func (d *daemon) runWorker(ctx context.Context, st *clusterState) {
	c := d.m.Cluster
	tag := "Worker " + c.NodeName
	f := newFernet(c.Key)
	for ctx.Err() == nil {
		conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", c.MasterAddr())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				d.cluster.clusterf("ERROR", tag, "Main", "Could not connect to master. Trying again in 10 seconds.")
			} else {
				d.cluster.clusterf("ERROR", tag, "Main", "Could not connect to master: %v. Trying again in 10 seconds.", err)
			}
			sleepCtx(ctx, d.t.ClusterRetry)
			continue
		}
		d.workerSession(ctx, conn, f, st, tag)
		st.mu.Lock()
		st.connected = false
		st.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		d.cluster.clusterf("INFO", tag, "Main", "The connection has been closed. Reconnecting in 10 seconds.")
		sleepCtx(ctx, d.t.ClusterRetry)
	}
}

func (d *daemon) workerSession(ctx context.Context, conn net.Conn, f fernet, st *clusterState, tag string) {
	defer conn.Close()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	c := d.m.Cluster
	hello := fmt.Sprintf("%s %s %s %s", c.NodeName, c.Name, c.NodeType, APIVersion)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if writeFrame(conn, 1, "hello", f.seal([]byte(hello))) != nil {
		d.cluster.clusterf("ERROR", tag, "Main", "The master closed the connection")
		return
	}
	cmd, payload, err := readFrame(conn)
	if err != nil {
		d.cluster.clusterf("ERROR", tag, "Main", "The master closed the connection")
		return
	}
	plain, err := f.open(payload)
	if err != nil {
		d.cluster.clusterf("ERROR", tag, "Main", "Connection closed due to an unhandled error: Error 3025 - Could not decrypt message")
		return
	}
	if cmd != "ok" {
		d.cluster.clusterf("ERROR", tag, "Main", "Error sending request: %s", plain)
		return
	}
	d.cluster.clusterf("INFO", tag, "Main", "Successfully connected to master.")
	for counter := uint32(2); ctx.Err() == nil; counter++ {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if writeFrame(conn, counter, "echo-c", f.seal([]byte("keepalive"))) != nil {
			break
		}
		_, payload, err := readFrame(conn)
		if err != nil {
			break
		}
		body, err := f.open(payload)
		var nodes []NodeInfo
		if err != nil || json.Unmarshal(body, &nodes) != nil {
			break
		}
		st.mu.Lock()
		st.connected, st.nodes = true, nodes
		st.mu.Unlock()
		sleepCtx(ctx, keepAliveEvery)
	}
	if ctx.Err() == nil {
		d.cluster.clusterf("ERROR", tag, "Main", "The master closed the connection")
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// askCluster asks the local wazuh-clusterd for the node list. It fails with
// "3012" when clusterd does not answer, "3023" when this worker is not joined.
func askCluster(home string) ([]NodeInfo, error) {
	conn, err := net.DialTimeout("unix", filepath.Join(home, localSocketRel), 5*time.Second)
	if err != nil {
		return nil, errors.New("3012")
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, `{"cmd":"get_nodes"}`+"\n"); err != nil {
		return nil, errors.New("3012")
	}
	var resp struct {
		Error int        `json:"error"`
		Nodes []NodeInfo `json:"nodes"`
	}
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, errors.New("3012")
	}
	if resp.Error != 0 {
		return nil, errors.New(strconv.Itoa(resp.Error))
	}
	return resp.Nodes, nil
}
