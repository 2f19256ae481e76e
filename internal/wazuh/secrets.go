package wazuh

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// InstanceSecrets are the references of the secrets socflow generates per Wazuh
// instance (or takes from the spec); workflows carry only these references.
type InstanceSecrets struct {
	// AgentPassword refers to the agent enrolment password (authd.pass).
	AgentPassword spec.SecretRef `json:"agentPassword"`
	// ClusterKey refers to the cluster's 32-hex-character key.
	ClusterKey spec.SecretRef `json:"clusterKey"`
}

// Secrets are the resolved secret values of an instance; activities resolve them
// so that the plan stays pure.
type Secrets struct {
	// AgentPassword is wazuh.agentPassword's value, or the generated one.
	AgentPassword string `json:"agentPassword,omitempty"`
	// ClusterKey is wazuh.clusterKey's value, or the generated one.
	ClusterKey string `json:"clusterKey,omitempty"`
	// IndexerPassword is set exactly when integrations.indexer.password is.
	IndexerPassword string `json:"indexerPassword,omitempty"`
	// IndexerCA is the PEM text, set exactly when integrations.indexer.ca is.
	IndexerCA string `json:"indexerCA,omitempty"`
	// SyslogCert is wazuh.syslog.cert's PEM chain.
	SyslogCert string `json:"syslogCert,omitempty"`
	// SyslogKey is wazuh.syslog.key's PEM key.
	SyslogKey string `json:"syslogKey,omitempty"`
	// SyslogCA is wazuh.syslog.ca's PEM logs CA.
	SyslogCA string `json:"syslogCA,omitempty"`
	// OpenCTIToken is the token the custom-opencti integrations send.
	OpenCTIToken string `json:"openCTIToken,omitempty"`
}

// String hides every value, so a Secrets printed by mistake shows no secret.
func (Secrets) String() string { return "wazuh.Secrets{<hidden>}" }

// Secret is one row of Wazuh's secret table.
type Secret = spec.Secret[Instance, InstanceSecrets, Secrets]

// Service names of the wazuh layer.
const (
	// ManagerService runs `wazuh-control reload`, which checks the configuration and
	// (re)starts the manager's daemons; they detach, so the check tells whether they run.
	ManagerService = "wazuh"
	// FilebeatService ships the manager's alerts to the indexer.
	FilebeatService = "filebeat"
	// RsyslogService receives remote logs over mutual TLS.
	RsyslogService = "rsyslog"
)

// StartOrder is the order a node's services start in: the manager writes the alerts
// filebeat ships; rsyslog is independent of both.
var StartOrder = []string{ManagerService, FilebeatService, RsyslogService}

// StartOrdered is the node services among names, each once, in StartOrder: what an
// apply and a repository sync each say must restart, merged into one restart.
func StartOrdered(names ...string) []string {
	var out []string
	for _, s := range StartOrder {
		if slices.Contains(names, s) {
			out = append(out, s)
		}
	}
	return out
}

// Shippers are the long-running services beside the manager that node plans hold:
// filebeat, and rsyslog when the spec gives it a TLS listener.
func (i Instance) Shippers() []string {
	if i.Wazuh.Syslog != nil {
		return []string{FilebeatService, RsyslogService}
	}
	return []string{FilebeatService}
}

var clusterKeyRE = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// CheckClusterKey reports why v cannot be a cluster key: Wazuh requires exactly 32
// characters, and socflow asks for hex so that a key never needs escaping in XML.
func CheckClusterKey(v string) error {
	if !clusterKeyRE.MatchString(v) {
		return fmt.Errorf("wazuh.clusterKey must be 32 hexadecimal characters (got %d characters); generate one with `openssl rand -hex 16` or leave it unset for socflow to generate", len(v))
	}
	return nil
}

// SecretTable is every secret of a Wazuh spec, in field order; redaction,
// resolution, the plan's checks and secret generation all walk it.
var SecretTable = spec.SecretTable[Instance, InstanceSecrets, Secrets]{
	{
		Field:     "wazuh.agentPassword",
		Ref:       func(i *Instance) *spec.SecretRef { return &i.Wazuh.AgentPassword },
		Generate:  &spec.Generator{Key: "agent-password", New: func() (string, error) { return secrets.NewHex(16) }},
		Generated: func(g *InstanceSecrets) *spec.SecretRef { return &g.AgentPassword },
		Value:     func(s *Secrets) *string { return &s.AgentPassword },
		Uses:      []spec.Use{{Service: ManagerService}},
	},
	{
		Field:     "wazuh.clusterKey",
		Ref:       func(i *Instance) *spec.SecretRef { return &i.Wazuh.ClusterKey },
		Generate:  &spec.Generator{Key: "cluster-key", New: func() (string, error) { return secrets.NewHex(16) }},
		Generated: func(g *InstanceSecrets) *spec.SecretRef { return &g.ClusterKey },
		Value:     func(s *Secrets) *string { return &s.ClusterKey },
		Check:     CheckClusterKey,
		Uses:      []spec.Use{{Service: ManagerService}},
	},
	{
		// Read by the socflow worker to fetch the repository, never planned into a container.
		Field: "wazuh.configRepo.sshKey",
		Ref: func(i *Instance) *spec.SecretRef {
			if r := i.Wazuh.ConfigRepo; r != nil {
				return &r.SSHKey
			}
			return nil
		},
	},
	syslogSecret("cert", func(s *Syslog) *spec.SecretRef { return &s.Cert }, func(v *Secrets) *string { return &v.SyslogCert }),
	syslogSecret("key", func(s *Syslog) *spec.SecretRef { return &s.Key }, func(v *Secrets) *string { return &v.SyslogKey }),
	syslogSecret("ca", func(s *Syslog) *spec.SecretRef { return &s.CA }, func(v *Secrets) *string { return &v.SyslogCA }),
	{
		Field: "integrations.indexer.password",
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Integrations.Indexer; s != nil {
				return &s.Password
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.IndexerPassword },
		Uses:  []spec.Use{{Service: FilebeatService, Env: "INDEXER_PASSWORD"}},
	},
	{
		Field: "integrations.indexer.ca",
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Integrations.Indexer; s != nil {
				return &s.CA
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.IndexerCA },
		Check: spec.CheckCA,
		Uses:  []spec.Use{{Service: FilebeatService}},
	},
	{
		Field: "integrations.opencti.token",
		Ref: func(i *Instance) *spec.SecretRef {
			if o := i.Integrations.OpenCTI; o != nil {
				return &o.Token
			}
			return nil
		},
		Value: func(s *Secrets) *string { return &s.OpenCTIToken },
		Uses:  []spec.Use{{Service: ManagerService}},
	},
}

// syslogSecret is the table row of one wazuh.syslog field: a PEM file rsyslog reads.
func syslogSecret(name string, ref func(*Syslog) *spec.SecretRef, value func(*Secrets) *string) Secret {
	return Secret{
		Field: "wazuh.syslog." + name,
		Ref: func(i *Instance) *spec.SecretRef {
			if s := i.Wazuh.Syslog; s != nil {
				return ref(s)
			}
			return nil
		},
		Value: value,
		Uses:  []spec.Use{{Service: RsyslogService}},
	}
}

// Mask is what a diff of Wazuh's layers may show of an environment value.
func Mask(service, key, value string) string { return SecretTable.Mask(service, key, value) }
