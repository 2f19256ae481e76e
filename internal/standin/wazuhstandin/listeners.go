package wazuhstandin

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bindError is the C daemons' (1206) message for a port they cannot bind.
func bindError(port int, proto string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("(1206): Unable to Bind port '%d' due to [(%d)-(%s)]", port, int(errno), errnoText(errno))
	}
	return fmt.Errorf("(1206): Unable to Bind port '%d' due to [%v]", port, err)
}

func errnoText(e syscall.Errno) string {
	s := e.Error()
	return strings.ToUpper(s[:1]) + s[1:]
}

// openRemoted listens for agents on each secure <remote> port. Agents are not
// modelled: connections are read and dropped.
func (d *daemon) openRemoted() (func(context.Context) error, error) {
	remotes := d.m.Remote
	if len(remotes) == 0 {
		remotes = []Remote{{Port: 1514, Protocol: "tcp"}}
	}
	var lns []net.Listener
	for _, r := range remotes {
		ln, err := net.Listen("tcp", net.JoinHostPort(listenHost(r.LocalIP), strconv.Itoa(r.Port)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, bindError(r.Port, "TCP", err)
		}
		lns = append(lns, ln)
		d.ossec.daemonf(d.name, "INFO", "Started (pid: %d). Listening on port %d/TCP (secure).", os.Getpid(), r.Port)
	}
	return func(ctx context.Context) error {
		for _, ln := range lns {
			go acceptDiscard(ln)
		}
		<-ctx.Done()
		for _, ln := range lns {
			ln.Close()
		}
		return nil
	}, nil
}

func acceptDiscard(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(time.Minute))
			buf := make([]byte, 4096)
			for {
				if _, err := conn.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}

// enrolRequest is the agent's enrolment line: OSSEC PASS: <pw> OSSEC A:'<name>' ...
var enrolRequest = regexp.MustCompile(`^(?:OSSEC PASS: (\S+) )?OSSEC A:'([^']+)'`)

// openAuthd is the enrolment service (TLS, etc/sslmanager.cert and .key,
// generated when missing as the installer does). With <use_password>yes it
// checks etc/authd.pass; it answers "OSSEC K:'<id> <name> any <key>'" and
// appends the agent to etc/client.keys. On a worker it does not listen: the
// stand-in has no forwarding of enrolments to the master.
func (d *daemon) openAuthd() (func(context.Context) error, error) {
	if d.m.Cluster.Running() && d.m.Cluster.NodeType == "worker" {
		d.ossec.daemonf(d.name, "INFO", "Accepting connections is disabled on this worker node (stand-in: no enrolment forwarding).")
		return nil, nil
	}
	cert, err := loadOrCreateCert(filepath.Join(d.home, "etc/sslmanager.cert"), filepath.Join(d.home, "etc/sslmanager.key"), "wazuh-manager")
	if err != nil {
		return nil, fmt.Errorf("(1103): Could not open file 'etc/sslmanager.cert': %v", err)
	}
	password := ""
	if d.m.Auth.UsePassword {
		raw, err := os.ReadFile(filepath.Join(d.home, "etc/authd.pass"))
		if err != nil {
			pw := make([]byte, 16)
			_, _ = rand.Read(pw)
			password = hex.EncodeToString(pw)
			d.ossec.daemonf(d.name, "INFO", "Accepting connections on port %d. Random password chosen for agent authentication: %s", d.m.Auth.Port, password)
		} else {
			password = strings.TrimSpace(string(raw))
			d.ossec.daemonf(d.name, "INFO", "Accepting connections on port %d. Using password specified on file: etc/authd.pass", d.m.Auth.Port)
		}
	} else {
		d.ossec.daemonf(d.name, "INFO", "Accepting connections on port %d. No password required.", d.m.Auth.Port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.m.Auth.Port)))
	if err != nil {
		return nil, bindError(d.m.Auth.Port, "TCP", err)
	}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	var mu sync.Mutex
	return func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			tlsLn.Close()
		}()
		for {
			conn, err := tlsLn.Accept()
			if err != nil {
				return nil
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				line, _ := bufio.NewReader(conn).ReadString('\n')
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprint(conn, d.enrol(strings.TrimSpace(line), password, conn.RemoteAddr()))
			}()
		}
	}, nil
}

// enrol answers one enrolment request.
func (d *daemon) enrol(line, password string, from net.Addr) string {
	m := enrolRequest.FindStringSubmatch(line)
	if m == nil {
		return "ERROR: Invalid request for new agent\n"
	}
	if password != "" && m[1] != password {
		d.ossec.daemonf(d.name, "WARNING", "Invalid password provided by %s. Closing connection.", from)
		return "ERROR: Invalid password\n"
	}
	keysPath := filepath.Join(d.home, "etc/client.keys")
	raw, _ := os.ReadFile(keysPath)
	next := 1
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if f[1] == m[2] {
			return fmt.Sprintf("ERROR: Duplicate agent name: %s (from manager)\n", m[2])
		}
		if id, err := strconv.Atoi(f[0]); err == nil && id >= next {
			next = id + 1
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	entry := fmt.Sprintf("%03d %s any %s", next, m[2], hex.EncodeToString(key))
	f, err := os.OpenFile(keysPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return "ERROR: Unable to add agent (from manager)\n"
	}
	defer f.Close()
	fmt.Fprintln(f, entry)
	d.ossec.daemonf(d.name, "INFO", "Agent key generated for '%s' (requested by %s)", m[2], from)
	return "OSSEC K:'" + entry + "'\n"
}
