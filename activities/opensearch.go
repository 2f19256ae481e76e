package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/socflow/socflow/internal/spec"
)

// ProbeOpenSearchInput is the search engine to probe.
type ProbeOpenSearchInput struct {
	// OpenSearch is the spec's integrations.opensearch section, secrets as references.
	OpenSearch spec.OpenSearch `json:"opensearch"`
	// AllowOldDependencies turns a version below the app's minimum into a warning.
	AllowOldDependencies bool `json:"allowOldDependencies,omitempty"`
	// Requires is the app's minimum versions (unset: OpenCTI's).
	Requires spec.Requirement `json:"requires,omitzero"`
	// IndexPrefix is the instance's index prefix (its name), used only to name the
	// objects that fail without a module; empty reads "<prefix>".
	IndexPrefix string `json:"indexPrefix,omitempty"`
	ProbeWindow
}

// ProbeOpenSearch waits until the search engine answers with a usable cluster:
// reachable, credentials accepted, status not red, version new enough, and every
// node carrying the modules OpenCTI needs (searchModules). A missing module fails
// with ErrTypeMissingSearchModules unless integrations.opensearch.allowMissingModules
// lists it, when it becomes the result's warning.
func (a *Activities) ProbeOpenSearch(ctx context.Context, in ProbeOpenSearchInput) (ProbeResult, error) {
	s := in.OpenSearch
	urls := searchURLs(s)
	password, ca, err := a.openSearchSecrets(s)
	if err != nil {
		return ProbeResult{Dependency: "opensearch"}, classify(err)
	}
	var warning string
	res, err := a.poll(ctx, "opensearch", in.Window, func(ctx context.Context) (string, error) {
		// OpenCTI fails over between the listed nodes, so one node answering is
		// enough; the reasons of the others are kept for the operator.
		var reasons []string
		for _, u := range urls {
			node, err := probeOpenSearchNode(ctx, u, s.Username, password, ca)
			if err == nil {
				versionWarning, err := minimumVersion(node.flavour, node.version, in.Requires, in.AllowOldDependencies)
				if err != nil {
					return "", err
				}
				modulesWarning, err := searchModulesVerdict(node.flavour, u, in.IndexPrefix, node.missing, s.AllowMissingModules)
				if err != nil {
					return "", err
				}
				warning = joinWarnings(versionWarning, modulesWarning)
				return node.version, nil
			}
			var perm *errPermanent
			if errors.As(err, &perm) || ctx.Err() != nil {
				return "", err
			}
			reasons = append(reasons, err.Error())
		}
		return "", errors.New(strings.Join(reasons, "; "))
	})
	return withWarning(res, err, warning)
}

// openSearchSecrets resolves the section's password and CA, either of which may be unset.
func (a *Activities) openSearchSecrets(s spec.OpenSearch) (password, ca string, err error) {
	if !s.Password.IsZero() {
		if password, err = a.resolve("integrations.opensearch.password", s.Password); err != nil {
			return "", "", err
		}
	}
	if !s.CA.IsZero() {
		if ca, err = a.resolve("integrations.opensearch.ca", s.CA); err != nil {
			return "", "", err
		}
	}
	return password, ca, nil
}

// searchNode is what one node told the probe about its cluster.
type searchNode struct {
	flavour string          // opensearch or elasticsearch
	version string          // the answering node's version
	missing []missingModule // modules OpenCTI needs that some node lacks
}

// newSearchClient builds a client for calls to one node: retries and background
// health checks off, because the callers' loops are the only places that wait.
func newSearchClient(ctx context.Context, url, username, password, ca string) (*opensearchapi.Client, error) {
	cfg := opensearch.Config{
		Addresses:             []string{url},
		Username:              username,
		Password:              password,
		DisableRetry:          true,
		HealthCheckMaxRetries: -1,
		DiscoverNodesOnStart:  new(false),
		Context:               ctx,
	}
	if ca != "" {
		cfg.CACert = []byte(ca)
	}
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: cfg})
	if err != nil {
		return nil, &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot configure an opensearch client for %s: %w (check integrations.opensearch.urls and integrations.opensearch.ca)", url, err)}
	}
	return client, nil
}

// probeOpenSearchNode asks one node for its version, the cluster's health and the
// modules and plugins of every node.
func probeOpenSearchNode(ctx context.Context, url, username, password, ca string) (searchNode, error) {
	client, err := newSearchClient(ctx, url, username, password, ca)
	if err != nil {
		return searchNode{}, err
	}
	defer client.Close()

	info, err := client.Info(ctx, nil)
	if err != nil {
		return searchNode{}, openSearchError(url, "GET /", username, responseStatus(info.Inspect().Response), err)
	}
	node := searchNode{flavour: info.Version.Distribution, version: info.Version.Number}
	if node.flavour == "" {
		node.flavour = "elasticsearch" // Elasticsearch does not send a distribution
	}
	health, err := client.Cluster.Health(ctx, nil)
	if err != nil {
		return searchNode{}, openSearchError(url, "GET /_cluster/health", username, responseStatus(health.Inspect().Response), err)
	}
	if health.Status == "red" {
		return searchNode{}, fmt.Errorf("cannot use %s at %s yet: cluster status red (%d unassigned shards)",
			node.flavour, url, health.UnassignedShards)
	}
	nodes, err := client.Nodes.Info(ctx, &opensearchapi.NodesInfoReq{Metrics: []string{"plugins"}})
	if err != nil {
		return searchNode{}, openSearchError(url, "GET /_nodes/plugins", username, responseStatus(nodes.Inspect().Response), err)
	}
	// A node that did not answer may lack a module: judging without it could pass a
	// cluster where OpenCTI later fails on that node.
	if nodes.NodesInfo.Failed > 0 {
		return searchNode{}, fmt.Errorf("cannot list the modules of every %s node at %s yet: %d of %d nodes did not answer GET /_nodes/plugins",
			node.flavour, url, nodes.NodesInfo.Failed, nodes.NodesInfo.Total)
	}
	loaded := make(map[string][]string, len(nodes.Nodes))
	for id, n := range nodes.Nodes {
		name := n.Name
		if name == "" {
			name = id
		}
		for _, p := range n.Modules {
			loaded[name] = append(loaded[name], p.Name)
		}
		for _, p := range n.Plugins {
			loaded[name] = append(loaded[name], p.Name)
		}
		if loaded[name] == nil {
			loaded[name] = []string{} // a node with nothing at all still counts
		}
	}
	node.missing = missingSearchModules(node.flavour, loaded)
	return node, nil
}

// responseStatus is the HTTP status of a response the client may not have received.
func responseStatus(resp *opensearch.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// openSearchError names what failed: refused credentials are permanent, anything
// else (unreachable, 5xx while starting) is a reason to keep waiting.
func openSearchError(url, call, username string, status int, err error) error {
	switch {
	case (status == http.StatusUnauthorized || status == http.StatusForbidden) && username == "":
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot use opensearch at %s: authentication failed (HTTP %d) and no username is set; set integrations.opensearch.username and password",
			url, status)}
	case status == http.StatusUnauthorized:
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot log in to opensearch at %s as %s: authentication failed (HTTP 401); check integrations.opensearch.username and password",
			url, username)}
	case status == http.StatusForbidden:
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot use opensearch at %s as %s: %s is forbidden (HTTP 403); grant the user cluster monitor rights",
			url, username, call)}
	case status != 0:
		return fmt.Errorf("cannot use opensearch at %s yet: %s answered HTTP %d: %w", url, call, status, err)
	}
	return fmt.Errorf("cannot reach opensearch at %s: %s", url, netReason(err))
}

// ErrTypeMissingSearchModules: a node lacks a module or plugin OpenCTI needs and the
// spec does not accept its absence; installing it (or accepting it) is a human's fix.
const ErrTypeMissingSearchModules = "MissingSearchModules"

// searchModule is a module or plugin OpenCTI needs from the search engine.
type searchModule struct {
	// name is how _nodes/plugins reports it on both engines, and how
	// integrations.opensearch.allowMissingModules names it (opencti.SearchModules).
	name string
	// openSearch and elasticsearch say on which engine OpenCTI needs it.
	openSearch, elasticsearch bool
	// without is what fails without it; "<prefix>" stands for the index prefix.
	without string
}

// searchModules is the one table of what OpenCTI needs from the search engine, in the
// order failures are reported. OpenSearch and Elasticsearch report the four shared
// modules by the same names; the lifecycle policy lives in a plugin on OpenSearch (ISM)
// and in x-pack on Elasticsearch (ILM).
var searchModules = []searchModule{
	{"analysis-common", true, true,
		`OpenCTI's first boot fails with DATABASE_ERROR "Creating component template fail" (its string normalizer uses the asciifolding filter)`},
	{"lang-painless", true, true,
		`painless scripts are refused ("script_lang not supported [painless]"), so OpenCTI's scripted updates and migrations fail`},
	{"mapper-extras", true, true,
		"the field types it adds (scaled_float, rank_feature, search_as_you_type, token_count…) are unknown, so OpenCTI's mappings or queries that use them fail"},
	{"reindex", true, true,
		"_reindex, _update_by_query and _delete_by_query do not exist, so OpenCTI's deletions, updates by query and migrations fail"},
	{"index-management", true, false,
		`creating the lifecycle policy <prefix>-ism-policy fails: OpenCTI's first boot stops with DATABASE_ERROR "Creating lifecycle policy fail"`},
	{"x-pack-ilm", false, true,
		"creating the ILM lifecycle policy <prefix>-ilm-policy fails, so OpenCTI's first boot fails"},
}

// missingModule is a needed module that some nodes lack.
type missingModule struct {
	module searchModule
	// nodes lists the nodes without it when others have it; nil when none has it.
	nodes []string
}

// missingSearchModules returns the modules the flavour needs that a node lacks, in
// table order; loaded holds each node's module and plugin names.
func missingSearchModules(flavour string, loaded map[string][]string) []missingModule {
	var missing []missingModule
	for _, m := range searchModules {
		if flavour == "elasticsearch" && !m.elasticsearch || flavour != "elasticsearch" && !m.openSearch {
			continue
		}
		var without []string
		for node, names := range loaded {
			if !slices.Contains(names, m.name) {
				without = append(without, node)
			}
		}
		switch {
		case len(without) == 0:
			continue
		case len(without) == len(loaded):
			without = nil
		default:
			slices.Sort(without)
		}
		missing = append(missing, missingModule{module: m, nodes: without})
	}
	return missing
}

// describe is one missing module as the operator reads it: its name, where it is
// missing when only some nodes lack it, and what fails without it.
func (m missingModule) describe(prefix string) string {
	if prefix == "" {
		prefix = "<prefix>"
	}
	where := ""
	if m.nodes != nil {
		where = " (missing on node " + strings.Join(m.nodes, ", ") + ")"
	}
	return m.module.name + where + ": " + strings.ReplaceAll(m.module.without, "<prefix>", prefix)
}

// searchModulesVerdict fails permanently when a missing module is not accepted by
// integrations.opensearch.allowMissingModules (waiting does not install a module), and
// turns the accepted ones into a warning.
func searchModulesVerdict(flavour, url, prefix string, missing []missingModule, allowed []string) (warning string, err error) {
	var refused, accepted []string
	for _, m := range missing {
		if slices.Contains(allowed, m.module.name) {
			accepted = append(accepted, m.describe(prefix))
		} else {
			refused = append(refused, m.describe(prefix))
		}
	}
	if len(refused) > 0 {
		return "", &errPermanent{ErrTypeMissingSearchModules, fmt.Errorf(
			"cannot use %s at %s: it lacks %s OpenCTI needs — %s. Install %s on every node, or list what this cluster cannot have in integrations.opensearch.allowMissingModules",
			flavour, url, modulesPhrase(len(refused)), strings.Join(refused, "; "), pronoun(len(refused)))}
	}
	if len(accepted) > 0 {
		warning = fmt.Sprintf("%s at %s lacks %s (accepted because integrations.opensearch.allowMissingModules lists it)",
			flavour, url, strings.Join(accepted, "; "))
	}
	return warning, nil
}

// modulesPhrase counts missing modules in words: "a module", "5 modules".
func modulesPhrase(n int) string {
	if n == 1 {
		return "a module"
	}
	return fmt.Sprintf("%d modules", n)
}

// pronoun refers back to n modules.
func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// joinWarnings joins the non-empty warnings of one probe.
func joinWarnings(warnings ...string) string {
	return strings.Join(slices.DeleteFunc(warnings, func(w string) bool { return w == "" }), "; ")
}
