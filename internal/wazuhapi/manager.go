package wazuhapi

import (
	"context"
	"net/http"
	"strings"
)

// ManagerInfo is GET /manager/info's item: what the manager says about itself.
type ManagerInfo struct {
	// Version is as the API reports it, "v4.11.0".
	Version string `json:"version"`
	// Path is the installation directory (/var/ossec).
	Path string `json:"path"`
	// Type is "server" for a manager.
	Type string `json:"type"`
	// MaxAgents is the agent limit ("unlimited").
	MaxAgents string `json:"max_agents"`
	// UUID identifies the installation.
	UUID string `json:"uuid"`
	// TZName is the manager's time zone name.
	TZName string `json:"tz_name"`
}

// SemVer is the version without the API's "v" prefix ("4.11.0"), as wazuh-control
// and socflow's specs write it.
func (m ManagerInfo) SemVer() string { return strings.TrimPrefix(m.Version, "v") }

// ManagerInfo reads the manager's version and basics (GET /manager/info).
func (c *Client) ManagerInfo(ctx context.Context, token string) (ManagerInfo, error) {
	op := "read the manager information"
	raw, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/manager/info", token: token})
	if err != nil {
		return ManagerInfo{}, err
	}
	return one[ManagerInfo](op, raw)
}

// ClusterNode is one connected node as GET /cluster/nodes returns it.
type ClusterNode struct {
	// Name is the node's name (<node_name> of its ossec.conf).
	Name string `json:"name"`
	// Type is "master" or "worker".
	Type string `json:"type"`
	// Version is the node's Wazuh version.
	Version string `json:"version"`
	// IP is the address the master knows the node by.
	IP string `json:"ip"`
}

// ClusterNodes lists the cluster's connected nodes (GET /cluster/nodes). A manager
// running without a cluster answers with an error matching ErrClusterNotRunning.
func (c *Client) ClusterNodes(ctx context.Context, token string) ([]ClusterNode, error) {
	return list[ClusterNode](ctx, c, token, "list the cluster nodes", "/cluster/nodes")
}

// NodeHealth is one node's item of GET /cluster/healthcheck.
type NodeHealth struct {
	// Info is the node and the agents reporting to it.
	Info struct {
		// Name is the node's name.
		Name string `json:"name"`
		// Type is "master" or "worker".
		Type string `json:"type"`
		// Version is the node's Wazuh version.
		Version string `json:"version"`
		// IP is the node's address.
		IP string `json:"ip"`
		// ActiveAgents counts the agents reporting to the node.
		ActiveAgents int `json:"n_active_agents"`
	} `json:"info"`
	// Status is the worker's synchronisation state (absent for the master).
	Status *struct {
		// LastKeepAlive is when the master last heard from the worker.
		LastKeepAlive string `json:"last_keep_alive"`
		// SyncIntegrityFree is true when no integrity sync is in progress.
		SyncIntegrityFree bool `json:"sync_integrity_free"`
		// SyncAgentInfoFree is true when no agent-info sync is in progress.
		SyncAgentInfoFree bool `json:"sync_agent_info_free"`
	} `json:"status,omitempty"`
}

// ClusterHealthcheck reads every node's health (GET /cluster/healthcheck).
func (c *Client) ClusterHealthcheck(ctx context.Context, token string) ([]NodeHealth, error) {
	op := "read the cluster healthcheck"
	raw, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/cluster/healthcheck", token: token})
	if err != nil {
		return nil, err
	}
	items, err := decodeItems[NodeHealth](op, raw)
	return items.Affected, err
}

// Validation is one node's verdict on its configuration.
type Validation struct {
	// Name is the node.
	Name string `json:"name"`
	// Status is "OK" or "KO".
	Status string `json:"status"`
	// Error is why the configuration is not valid (empty when OK).
	Error string `json:"error,omitempty"`
}

// OK reports whether the node found its configuration valid.
func (v Validation) OK() bool { return v.Status == "OK" }

// ConfigurationValidation asks each node to validate its configuration (GET
// /manager/configuration/validation). An invalid configuration is an answer, not an
// error: the API reports it as a failed item with code CodeConfigurationNotValid,
// which comes back as a Validation with status KO and the API's words.
func (c *Client) ConfigurationValidation(ctx context.Context, token string) ([]Validation, error) {
	op := "validate the configuration"
	raw, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/manager/configuration/validation", token: token})
	if err != nil {
		return nil, err
	}
	items, err := decodeItems[Validation](op, raw)
	out := items.Affected
	for _, f := range items.Failed {
		if f.Error.Code != CodeConfigurationNotValid {
			return nil, failedError(op, f)
		}
		for _, id := range orNode(f.ID) {
			out = append(out, Validation{Name: id, Status: "KO", Error: f.Error.Message})
		}
	}
	if err != nil && len(items.Failed) == 0 {
		return nil, err
	}
	return out, nil
}

func orNode(ids IDs) IDs {
	if len(ids) == 0 {
		return IDs{"manager"}
	}
	return ids
}
