package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/opensearch-project/opensearch-go/v4"

	"github.com/socflow/socflow/internal/spec"
)

// ErrTypePrefixClash: another OpenCTI instance on the same search engine uses an index
// prefix that starts with this instance's, or the other way round. OpenCTI matches
// "<prefix>*" for its templates, so one would rewrite the other's on every start.
const ErrTypePrefixClash = "PrefixClash"

// CheckOpenSearchPrefixInput is the search engine and the index prefix an instance
// is about to use.
type CheckOpenSearchPrefixInput struct {
	// OpenSearch is the spec's integrations.opensearch section, secrets as references.
	OpenSearch spec.OpenSearch `json:"opensearch"`
	// Prefix is the instance's index prefix (ELASTICSEARCH__INDEX_PREFIX, its name).
	Prefix string `json:"prefix"`
}

// CheckOpenSearchPrefixResult is what the cluster holds.
type CheckOpenSearchPrefixResult struct {
	// Prefixes are the OpenCTI index prefixes in use on the cluster, sorted, the
	// instance's own included.
	Prefixes []string `json:"prefixes,omitempty"`
	// InUse is true when the instance's own prefix already has objects (a redeploy).
	InUse bool `json:"inUse,omitempty"`
}

// openCTIIndexSuffixes are the indices OpenCTI creates as <prefix>_<suffix>: rollover
// indices <prefix>_<suffix>-000001, aliases and index templates <prefix>_<suffix>.
var openCTIIndexSuffixes = []string{
	"history", "internal_objects", "stix_meta_objects", "stix_domain_objects",
	"stix_cyber_observables", "internal_relationships", "stix_core_relationships",
	"stix_sighting_relationships", "stix_cyber_observable_relationships",
	"stix_meta_relationships", "inferred_entities", "inferred_relationships",
	"deleted_objects", "draft_objects", "files", "pir_relationships",
}

// openCTIObjectSuffixes are the cluster-wide objects OpenCTI names <prefix><suffix>.
var openCTIObjectSuffixes = []string{"-core-settings", "-ism-policy", "-ilm-policy"}

var rolloverRE = regexp.MustCompile(`-\d{6,}$`)

// openCTIPrefix derives the OpenCTI index prefix an object name belongs to: what comes
// before "_<known index>" (once a rollover counter "-000001" is taken off), or before a
// known cluster-object suffix; ok is false for anything else, system indices included.
func openCTIPrefix(name string) (prefix string, ok bool) {
	if name == "" || strings.HasPrefix(name, ".") {
		return "", false
	}
	for _, s := range openCTIObjectSuffixes {
		if p, found := strings.CutSuffix(name, s); found && p != "" {
			return p, true
		}
	}
	base := rolloverRE.ReplaceAllString(name, "")
	// No known index name ends with "_" and another's, so at most one matches.
	for _, s := range openCTIIndexSuffixes {
		if p, found := strings.CutSuffix(base, "_"+s); found && p != "" {
			return p, true
		}
	}
	return "", false
}

// prefixClashes returns, for each prefix in use that starts with own or that own starts
// with, an operator's sentence; objects maps each prefix to names that show it in use.
func prefixClashes(own string, objects map[string][]string) []string {
	others := make([]string, 0, len(objects))
	for p := range objects {
		others = append(others, p)
	}
	slices.Sort(others)
	var clashes []string
	for _, other := range others {
		shown := examples(objects[other])
		switch {
		case other == own:
		case strings.HasPrefix(other, own):
			clashes = append(clashes, fmt.Sprintf(
				"it would match instance %s's indices (%s): OpenCTI matches %s* for templates", other, shown, own))
		case strings.HasPrefix(own, other):
			clashes = append(clashes, fmt.Sprintf(
				"instance %s's prefix would match its indices, as OpenCTI matches %s* for templates (%s's objects: %s)",
				other, other, other, shown))
		}
	}
	return clashes
}

// examples names up to three objects, sorted, and says when there are more.
func examples(names []string) string {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + "…"
	}
	return strings.Join(names, ", ")
}

// CheckOpenSearchPrefix refuses an instance whose index prefix is a prefix of another
// OpenCTI instance's on the same cluster, or has another's as its prefix: OpenCTI
// matches "<prefix>*" for templates, so they would rewrite each other's (issue 8).
// Prefixes in use are read from indices, aliases, index and component templates and
// ISM/ILM policy names. Its own prefix in use is a redeploy and passes.
func (a *Activities) CheckOpenSearchPrefix(ctx context.Context, in CheckOpenSearchPrefixInput) (CheckOpenSearchPrefixResult, error) {
	if in.Prefix == "" {
		return CheckOpenSearchPrefixResult{}, permanent(ErrTypeInvalidInput, errors.New("cannot check an empty index prefix"))
	}
	s := in.OpenSearch
	urls := searchURLs(s)
	password, ca, err := a.openSearchSecrets(s)
	if err != nil {
		return CheckOpenSearchPrefixResult{}, classify(err)
	}
	// Any node answers for the whole cluster; an unreachable one is tried past.
	var reasons []string
	for _, u := range urls {
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		objects, err := openCTIObjects(callCtx, u, s.Username, password, ca)
		cancel()
		if err != nil {
			var perm *errPermanent
			if errors.As(err, &perm) || ctx.Err() != nil {
				return CheckOpenSearchPrefixResult{}, classify(err)
			}
			reasons = append(reasons, err.Error())
			continue
		}
		res := CheckOpenSearchPrefixResult{InUse: len(objects[in.Prefix]) > 0}
		for p := range objects {
			res.Prefixes = append(res.Prefixes, p)
		}
		slices.Sort(res.Prefixes)
		if clashes := prefixClashes(in.Prefix, objects); len(clashes) > 0 {
			return res, permanent(ErrTypePrefixClash, fmt.Errorf("cannot use index prefix %s on %s: %s; rename one instance (its name is its index prefix)",
				in.Prefix, u, strings.Join(clashes, "; ")))
		}
		return res, nil
	}
	return CheckOpenSearchPrefixResult{}, errors.New(strings.Join(reasons, "; "))
}

// getPath is a bare GET of one API path, for the listings the typed client
// does not cover on both engines.
type getPath string

// GetRequest builds the request; the client adds the node's address.
func (p getPath) GetRequest(method string) (*http.Request, error) {
	return http.NewRequest(method, string(p), nil)
}

// openCTIObjects lists the cluster's objects that carry an OpenCTI index prefix, by prefix.
func openCTIObjects(ctx context.Context, url, username, password, ca string) (map[string][]string, error) {
	client, err := newSearchClient(ctx, url, username, password, ca)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var names []string
	var aliases map[string]struct {
		Aliases map[string]any `json:"aliases"`
	}
	if err := listingError(url, username, "/_aliases?expand_wildcards=open,closed", false)(getJSON(ctx, client.Client, "/_aliases?expand_wildcards=open,closed", &aliases)); err != nil {
		return nil, err
	}
	for index, a := range aliases {
		names = append(names, index)
		for alias := range a.Aliases {
			names = append(names, alias)
		}
	}
	var indexTemplates struct {
		IndexTemplates []struct {
			Name string `json:"name"`
		} `json:"index_templates"`
	}
	if err := listingError(url, username, "/_index_template", true)(getJSON(ctx, client.Client, "/_index_template", &indexTemplates)); err != nil {
		return nil, err
	}
	for _, t := range indexTemplates.IndexTemplates {
		names = append(names, t.Name)
	}
	var componentTemplates struct {
		ComponentTemplates []struct {
			Name string `json:"name"`
		} `json:"component_templates"`
	}
	if err := listingError(url, username, "/_component_template", true)(getJSON(ctx, client.Client, "/_component_template", &componentTemplates)); err != nil {
		return nil, err
	}
	for _, t := range componentTemplates.ComponentTemplates {
		names = append(names, t.Name)
	}
	var ism struct {
		Policies []struct {
			ID string `json:"_id"`
		} `json:"policies"`
	}
	if err := listingError(url, username, "/_plugins/_ism/policies?size=1000", true)(getJSON(ctx, client.Client, "/_plugins/_ism/policies?size=1000", &ism)); err != nil {
		return nil, err
	}
	for _, p := range ism.Policies {
		names = append(names, p.ID)
	}
	var ilm map[string]struct {
		Policy struct {
			Meta struct {
				Managed bool `json:"managed"`
			} `json:"_meta"`
		} `json:"policy"`
	}
	if err := listingError(url, username, "/_ilm/policy", true)(getJSON(ctx, client.Client, "/_ilm/policy", &ilm)); err != nil {
		return nil, err
	}
	for name, p := range ilm {
		// Elasticsearch's own policies (ilm-history-ilm-policy…) are not an instance's.
		if !p.Policy.Meta.Managed {
			names = append(names, name)
		}
	}

	objects := map[string][]string{}
	for _, n := range names {
		if p, ok := openCTIPrefix(n); ok {
			objects[p] = append(objects[p], n)
		}
	}
	return objects, nil
}

// listingError judges the answer to one listing: an optional listing (ISM, ILM) a
// cluster does not have answers 4xx, and then simply lists nothing.
func listingError(url, username, path string, optional bool) func(status int, err error) error {
	return func(status int, err error) error {
		if err == nil {
			return nil
		}
		if optional && status >= 400 && status < 500 && status != http.StatusUnauthorized && status != http.StatusForbidden {
			return nil
		}
		return openSearchError(url, "GET "+path, username, status, err)
	}
}

// getJSON GETs path and decodes a 2xx answer into into; status is the HTTP status
// when one arrived.
func getJSON[T any](ctx context.Context, c *opensearch.Client, path string, into *T) (status int, err error) {
	resp, err := opensearch.Do(ctx, c, http.MethodGet, getPath(path), into)
	status = responseStatus(resp)
	if err == nil && resp.IsError() {
		err = fmt.Errorf("HTTP %d", status)
	}
	return status, err
}
