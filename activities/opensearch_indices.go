package activities

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/socflow/socflow/internal/spec"
)

// instanceIndices lists the indices of one instance (`<prefix>_*`), for the fix an
// operator must apply after an interrupted first boot.
func (a *Activities) instanceIndices(ctx context.Context, s spec.OpenSearch, prefix string) ([]string, error) {
	c, err := a.openSearchClient(ctx, s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	resp, err := c.Cat.Indices(ctx, &opensearchapi.CatIndicesReq{Indices: []string{prefix + "_*"}})
	if err != nil {
		if raw := resp.Inspect().Response; raw != nil && raw.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot list the indices of %s: %w", prefix, err)
	}
	var names []string
	for _, ix := range resp.Indices {
		if strings.HasPrefix(ix.Index, prefix+"_") {
			names = append(names, ix.Index)
		}
	}
	sort.Strings(names)
	return names, nil
}

// openSearchClient is a client for the instance's search engine with its credentials
// resolved, for short calls that are not probes (the probe builds one per node).
func (a *Activities) openSearchClient(ctx context.Context, s spec.OpenSearch) (*opensearchapi.Client, error) {
	cfg := opensearch.Config{Addresses: s.URLs, Username: s.Username, DisableRetry: true, Context: ctx}
	if !s.Password.IsZero() {
		p, err := a.resolve("integrations.opensearch.password", s.Password)
		if err != nil {
			return nil, err
		}
		cfg.Password = p
	}
	if !s.CA.IsZero() {
		ca, err := a.resolve("integrations.opensearch.ca", s.CA)
		if err != nil {
			return nil, err
		}
		cfg.CACert = []byte(ca)
	}
	c, err := opensearchapi.NewClient(opensearchapi.Config{Client: cfg})
	if err != nil {
		return nil, &errPermanent{ErrTypeBadConfig, fmt.Errorf("cannot configure an opensearch client: %w (check integrations.opensearch)", err)}
	}
	return c, nil
}
