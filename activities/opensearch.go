package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/socflow/socflow/internal/spec"
)

// ProbeOpenSearchInput is the search engine to probe.
type ProbeOpenSearchInput struct {
	// OpenSearch is the spec's integrations.opensearch section, secrets as references.
	OpenSearch spec.OpenSearch `json:"opensearch"`
	// AllowOldDependencies turns a version below OpenCTI's minimum into a warning.
	AllowOldDependencies bool `json:"allowOldDependencies,omitempty"`
	ProbeWindow
}

// ProbeOpenSearch waits until the search engine answers with a usable cluster:
// reachable, credentials accepted, status not red, version new enough.
func (a *Activities) ProbeOpenSearch(ctx context.Context, in ProbeOpenSearchInput) (ProbeResult, error) {
	s := in.OpenSearch
	urls := s.URLs
	if len(urls) == 0 {
		urls = []string{spec.DefaultOpenSearchURL}
	}
	var password, ca string
	var err error
	if !s.Password.IsZero() {
		if password, err = a.resolve("integrations.opensearch.password", s.Password); err != nil {
			return ProbeResult{Dependency: "opensearch"}, classify(err)
		}
	}
	if !s.CA.IsZero() {
		if ca, err = a.resolve("integrations.opensearch.ca", s.CA); err != nil {
			return ProbeResult{Dependency: "opensearch"}, classify(err)
		}
	}
	var warning string
	res, err := a.poll(ctx, "opensearch", in.Window, func(ctx context.Context) (string, error) {
		// OpenCTI fails over between the listed nodes, so one node answering is
		// enough; the reasons of the others are kept for the operator.
		var reasons []string
		for _, u := range urls {
			flavour, version, err := probeOpenSearchNode(ctx, u, s.Username, password, ca)
			if err == nil {
				warning, err = openSearchMinimum(flavour, version, in.AllowOldDependencies)
				return version, err
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

// openSearchMinimum applies OpenCTI's minimum for the flavour that answered:
// OpenSearch >= 2.9, Elasticsearch >= 8.
func openSearchMinimum(flavour, version string, allow bool) (string, error) {
	if flavour == "opensearch" {
		return minimumVersion("opensearch", version, 2, 9, allow)
	}
	return minimumVersion("elasticsearch", version, 8, 0, allow)
}

// probeOpenSearchNode asks one node for its version and the cluster's health,
// with a client built for this one call: retries and background health checks
// off, because the probe's poll loop is the only place that waits.
func probeOpenSearchNode(ctx context.Context, url, username, password, ca string) (flavour, version string, err error) {
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
		return "", "", &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot configure an opensearch client for %s: %w (check integrations.opensearch.urls and integrations.opensearch.ca)", url, err)}
	}
	defer client.Close()

	info, err := client.Info(ctx, nil)
	if err != nil {
		return "", "", openSearchError(url, "GET /", username, responseStatus(info.Inspect().Response), err)
	}
	flavour = info.Version.Distribution
	if flavour == "" {
		flavour = "elasticsearch" // Elasticsearch does not send a distribution
	}
	health, err := client.Cluster.Health(ctx, nil)
	if err != nil {
		return "", "", openSearchError(url, "GET /_cluster/health", username, responseStatus(health.Inspect().Response), err)
	}
	if health.Status == "red" {
		return "", "", fmt.Errorf("cannot use %s at %s yet: cluster status red (%d unassigned shards)",
			flavour, url, health.UnassignedShards)
	}
	return flavour, info.Version.Number, nil
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
