package stacktest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RemoveInstanceData removes what an OpenCTI platform (or its stand-in) of the given
// prefix left in the stack's shared services: in OpenSearch its indices, index and
// component templates and lifecycle policy; in Redis the keys of its namespace; in
// RabbitMQ the queues of its prefix. Every test and every later run shares the stack,
// and RabbitMQ 3.10's management statistics break down under hundreds of leftover
// queues (GET /api/overview then answers 500), so tests clean up after themselves.
// It is best effort: a failure here must not fail the test that used the data.
func (s Stack) RemoveInstanceData(prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	do := func(method, u string, auth bool) *http.Response {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil
		}
		if auth {
			req.SetBasicAuth(s.RabbitMQUser, s.RabbitMQPassword)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil
		}
		return resp
	}
	paths := []string{"/" + prefix + "_*", "/_index_template/" + prefix + "_*",
		"/_component_template/" + prefix + "-core-settings", "/_plugins/_ism/policies/" + prefix + "-ism-policy"}
	if repo := s.Raw["SOCFLOW_SNAPSHOT_REPOSITORY"]; repo != "" {
		// The snapshots its upgrades took, which fill the repository's disk otherwise.
		paths = append(paths, "/_snapshot/"+repo+"/"+prefix+"-upgrade-*")
	}
	for _, path := range paths {
		if resp := do(http.MethodDelete, s.OpenSearchURL+path, false); resp != nil {
			resp.Body.Close()
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(s.RedisHost, strconv.Itoa(s.RedisPort)), Password: s.RedisPassword})
	defer rdb.Close()
	if keys, err := rdb.Keys(ctx, prefix+":*").Result(); err == nil && len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
	// Names only: the full listing computes statistics for every queue, the very call
	// that breaks down when there are many.
	mgmt := "http://" + net.JoinHostPort(s.RabbitMQHost, strconv.Itoa(s.RabbitMQMgmtPort)) + "/api/queues/" + url.PathEscape(s.RabbitMQVHost)
	resp := do(http.MethodGet, mgmt+"?columns=name", true)
	if resp == nil {
		return
	}
	var queues []struct {
		Name string `json:"name"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&queues)
	resp.Body.Close()
	for _, q := range queues {
		if strings.HasPrefix(q.Name, prefix+"_") {
			if resp := do(http.MethodDelete, mgmt+"/"+url.PathEscape(q.Name), true); resp != nil {
				resp.Body.Close()
			}
		}
	}
}
