package activities

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/socflow/socflow/internal/spec"
)

// instanceObjects lists the names of what one instance keeps in the search engine (indices,
// aliases, templates, lifecycle policy), for the fix an operator must apply after an
// interrupted first boot: the same listing the prefix check reads.
func (a *Activities) instanceObjects(ctx context.Context, s spec.OpenSearch, prefix string) ([]string, error) {
	password, ca, err := a.openSearchSecrets(s)
	if err != nil {
		return nil, err
	}
	var reasons []string
	for _, u := range searchURLs(s) {
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		objects, err := openCTIObjects(callCtx, u, s.Username, password, ca)
		cancel()
		if err == nil {
			names := objects[prefix]
			slices.Sort(names)
			return slices.Compact(names), nil
		}
		reasons = append(reasons, err.Error())
	}
	return nil, errors.New(strings.Join(reasons, "; "))
}

// searchURLs are the section's node URLs, or the default node.
func searchURLs(s spec.OpenSearch) []string {
	if len(s.URLs) == 0 {
		return []string{spec.DefaultOpenSearchURL}
	}
	return s.URLs
}
