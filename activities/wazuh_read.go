package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuhapi"
)

// WazuhAPILogin is an API address, its pinned certificate and a user to read as.
type WazuhAPILogin struct {
	// URL is the API, https://host:port.
	URL string `json:"url"`
	// APICert is the API's certificate in PEM (its server.crt), pinned.
	APICert string `json:"apiCert"`
	// User is the API user to log in as (a readonly user suffices).
	User string `json:"user"`
	// Password refers to the user's password (ReconcileWazuhAPIUsers' Refs); the
	// activity resolves it, so the value never enters history.
	Password spec.SecretRef `json:"password"`
}

// ReadWazuhManagerInfoInput names the manager whose version to read.
type ReadWazuhManagerInfoInput struct {
	// Instance is the instance name, for messages.
	Instance string `json:"instance"`
	WazuhAPILogin
}

// ReadWazuhManagerInfoResult is what the manager says about itself.
type ReadWazuhManagerInfoResult struct {
	// Version is the manager's version without the API's "v" ("4.11.0").
	Version string `json:"version"`
	// Type is "server" for a manager.
	Type string `json:"type"`
	// Path is the installation directory.
	Path string `json:"path"`
}

// ReadWazuhManagerInfo reads the manager's version through the API (GET
// /manager/info): the version the running manager has, which the workflow
// compares with the one the spec asks for.
func (a *Activities) ReadWazuhManagerInfo(ctx context.Context, in ReadWazuhManagerInfoInput) (ReadWazuhManagerInfoResult, error) {
	var res ReadWazuhManagerInfoResult
	err := a.withWazuhAPI(ctx, in.WazuhAPILogin, func(api *wazuhapi.Client, token string) error {
		info, err := api.ManagerInfo(ctx, token)
		if err != nil {
			return fmt.Errorf("cannot read the wazuh manager's version: %w", err)
		}
		res = ReadWazuhManagerInfoResult{Version: info.SemVer(), Type: info.Type, Path: info.Path}
		return nil
	})
	return res, err
}

// ReadWazuhClusterInput names the manager whose cluster to read.
type ReadWazuhClusterInput struct {
	// Instance is the instance name, for messages.
	Instance string `json:"instance"`
	WazuhAPILogin
}

// WazuhClusterNode is one node connected to the cluster.
type WazuhClusterNode struct {
	// Name is the node's name.
	Name string `json:"name"`
	// Type is "master" or "worker".
	Type string `json:"type"`
	// Version is the node's Wazuh version.
	Version string `json:"version"`
	// IP is the address the master knows it by.
	IP string `json:"ip"`
}

// ReadWazuhClusterResult is the cluster as the manager sees it.
type ReadWazuhClusterResult struct {
	// Running is false when the manager runs without a cluster (disabled in ossec.conf).
	Running bool `json:"running"`
	// Nodes are the connected nodes, the master included.
	Nodes []WazuhClusterNode `json:"nodes,omitempty"`
}

// ReadWazuhCluster lists the nodes connected to the cluster (GET /cluster/nodes):
// a worker that is configured but missing here failed to join (a mismatched
// cluster key, a master it cannot reach). A manager without a cluster is an
// answer (Running false), not an error.
func (a *Activities) ReadWazuhCluster(ctx context.Context, in ReadWazuhClusterInput) (ReadWazuhClusterResult, error) {
	var res ReadWazuhClusterResult
	err := a.withWazuhAPI(ctx, in.WazuhAPILogin, func(api *wazuhapi.Client, token string) error {
		nodes, err := api.ClusterNodes(ctx, token)
		if errors.Is(err, wazuhapi.ErrClusterNotRunning) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot list the wazuh cluster's nodes: %w", err)
		}
		res.Running = true
		for _, n := range nodes {
			res.Nodes = append(res.Nodes, WazuhClusterNode(n))
		}
		return nil
	})
	return res, err
}

// withWazuhAPI logs in and runs read with the token, classifying errors at the
// boundary: refused credentials are permanent (AuthFailed), a closed port is not.
func (a *Activities) withWazuhAPI(ctx context.Context, in WazuhAPILogin, read func(api *wazuhapi.Client, token string) error) error {
	password, err := a.resolve("password of wazuh API user "+in.User, in.Password)
	if err != nil {
		return classify(err)
	}
	api, err := wazuhapi.New(wazuhapi.Options{BaseURL: in.URL, CertPEM: []byte(in.APICert), Timeout: WazuhAPICallTimeout})
	if err != nil {
		return permanent(ErrTypeInvalidInput, err)
	}
	defer api.Close()
	s := &wazuhSession{api: api, user: in.User, password: password}
	err = s.call(ctx, func(token string) error { return read(api, token) })
	if errors.Is(err, wazuhapi.ErrInvalidCredentials) {
		return permanent(ErrTypeAuthFailed, fmt.Errorf("cannot log in to the wazuh API at %s as user %s: it refused the password socflow stored (reconcile the API users first)", in.URL, in.User))
	}
	return wazuhError(in.URL, err)
}

// wazuhSession is a user logged in to the API. It logs in again, once, when the
// API refuses its token: the API revokes a user's tokens when its password or
// roles change, by timestamp at a one-second grain, so even a token issued just
// after such a change can be refused.
type wazuhSession struct {
	api            *wazuhapi.Client
	user, password string
	// token is the current token; "" logs in at the next call.
	token string
}

// call runs fn with the session's token.
func (s *wazuhSession) call(ctx context.Context, fn func(token string) error) error {
	for attempt := 0; ; attempt++ {
		if s.token == "" {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wazuhReloginPause):
				}
			}
			token, err := s.api.Authenticate(ctx, s.user, s.password)
			if err != nil {
				return err
			}
			s.token = token
		}
		err := fn(s.token)
		if !errors.Is(err, wazuhapi.ErrUnauthorized) || attempt > 0 {
			return err
		}
		s.token = ""
	}
}
