package openctistandin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// searchBackend is the OpenSearch/Elasticsearch cluster holding the platform's data.
type searchBackend struct {
	client   *opensearchapi.Client
	prefix   string
	replicas int
}

// indexNames are OpenCTI's 14 indices (READ_INDEX_* without the prefix); each is
// a rollover alias "<prefix>_<name>" over "<prefix>_<name>-000001".
var indexNames = []string{
	"internal_objects", "internal_relationships", "stix_meta_objects", "stix_meta_relationships",
	"stix_domain_objects", "stix_cyber_observables", "stix_core_relationships", "stix_sighting_relationships",
	"stix_cyber_observable_relationships", "inferred_entities", "inferred_relationships", "history",
	"files", "deleted_objects",
}

// rolloverSuffix is OpenCTI's ES_INDEX_PATTERN_SUFFIX.
const rolloverSuffix = "-000001"

// newSearchBackend builds the client without contacting the cluster.
func newSearchBackend(cfg SearchConfig) (*searchBackend, error) {
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{
		Addresses: cfg.URLs,
		Username:  cfg.Username,
		Password:  cfg.Password,
		// A check must report the cluster as it is now; client retries would
		// turn a down cluster into a slow answer.
		DisableRetry: true,
		Transport:    http.DefaultTransport.(*http.Transport).Clone(),
	}})
	if err != nil {
		return nil, fmt.Errorf("cannot build search engine client: %w", err)
	}
	return &searchBackend{client: client, prefix: cfg.IndexPrefix, replicas: cfg.Replicas}, nil
}

func (s *searchBackend) label() string { return "Search engine" }

// report is OpenCTI's searchEngineVersion error.
func (s *searchBackend) report(err error) error {
	return newError(ConfigurationErrorName, "Search engine seems down", err, nil, nil)
}

// check reads cluster info, which also proves the credentials, and returns the
// version as about.dependencies shows it ("opensearch - 2.19.3").
func (s *searchBackend) check(ctx context.Context) (string, error) {
	info, err := s.client.Info(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("cannot read search engine info: %w", err)
	}
	engine := "elk"
	if info.Version.Distribution == "opensearch" {
		engine = "opensearch"
	}
	return engine + " - " + info.Version.Number, nil
}

// alias is the read/write alias of one index, e.g. "cti_internal_objects".
func (s *searchBackend) alias(name string) string { return s.prefix + "_" + name }

// internalObjects is where the migration status, settings and users live.
func (s *searchBackend) internalObjects() string { return s.alias("internal_objects") }

// coreSettings is the component template every index template is composed of.
func (s *searchBackend) coreSettings() string { return s.prefix + "-core-settings" }

// ismPolicy is the rollover policy OpenCTI installs on OpenSearch.
func (s *searchBackend) ismPolicy() string { return s.prefix + "-ism-policy" }

// do sends one raw request and returns status and body; OpenCTI's schema calls
// are plain REST, so they are sent as such.
func (s *searchBackend) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("cannot encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot build %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Client.Perform(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, out, nil
}

// mustOK turns a non-2xx answer into an error carrying the engine's reason.
func mustOK(status int, body []byte, err error) error {
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("status %d: %s", status, truncate(string(body), 400))
	}
	return nil
}

// hasISM reports whether the index-management plugin is installed, which
// OpenCTI assumes on OpenSearch.
func (s *searchBackend) hasISM(ctx context.Context) (bool, error) {
	status, body, err := s.do(ctx, http.MethodGet, "/_nodes/plugins", nil)
	if err := mustOK(status, body, err); err != nil {
		return false, fmt.Errorf("cannot list search engine plugins: %w", err)
	}
	return bytes.Contains(body, []byte(`"opensearch-index-management"`)), nil
}

// createCoreSettings puts the component template whose custom normalizer needs
// the analysis-common module (asciifolding): without it this fails as in OpenCTI.
func (s *searchBackend) createCoreSettings(ctx context.Context) error {
	body := map[string]any{"template": map[string]any{"settings": map[string]any{"index": map[string]any{
		"max_result_window":          100000,
		"number_of_replicas":         s.replicas,
		"number_of_shards":           1,
		"mapping.total_fields.limit": 3000,
		"analysis": map[string]any{"normalizer": map[string]any{"string_normalizer": map[string]any{
			"type": "custom", "filter": []string{"lowercase", "asciifolding"},
		}}},
	}}}}
	status, raw, err := s.do(ctx, http.MethodPut, "/_component_template/"+s.coreSettings(), body)
	if err := mustOK(status, raw, err); err != nil {
		return newError(DatabaseErrorName, "Creating component template fail", err, nil, nil)
	}
	return nil
}

// createISMPolicy puts OpenCTI's rollover policy.
func (s *searchBackend) createISMPolicy(ctx context.Context) error {
	body := map[string]any{"policy": map[string]any{
		"description":   "OpenCTI rollover policy",
		"default_state": "hot",
		"states": []any{map[string]any{
			"name":        "hot",
			"actions":     []any{map[string]any{"rollover": map[string]any{"min_primary_shard_size": "50gb", "min_index_age": "365d"}}},
			"transitions": []any{},
		}},
		"ism_template": map[string]any{"index_patterns": []string{s.prefix + "*"}, "priority": 100},
	}}
	status, raw, err := s.do(ctx, http.MethodPut, "/_plugins/_ism/policies/"+s.ismPolicy(), body)
	if status == http.StatusConflict {
		return nil
	}
	if err := mustOK(status, raw, err); err != nil {
		return newError(DatabaseErrorName, "Creating lifecycle policy fail", err, nil, nil)
	}
	return nil
}

// indexMappings is a small part of OpenCTI's mappings, enough to use the
// normalizer and the fields the stand-in stores.
func indexMappings() map[string]any {
	keyword := map[string]any{"type": "keyword"}
	text := map[string]any{"type": "text", "fields": map[string]any{"keyword": map[string]any{"type": "keyword", "normalizer": "string_normalizer"}}}
	date := map[string]any{"type": "date"}
	return map[string]any{
		"dynamic_templates": []any{map[string]any{"strings": map[string]any{"match_mapping_type": "string", "mapping": text}}},
		"properties": map[string]any{
			"internal_id": keyword, "standard_id": keyword, "entity_type": keyword, "parent_types": keyword,
			"name": text, "platformVersion": keyword, "lastRun": keyword, "created_at": date, "updated_at": date,
		},
	}
}

// putIndexTemplate writes one index template; OpenCTI rewrites them on every
// boot. The rollover alias setting exists only with the index-management plugin.
func (s *searchBackend) putIndexTemplate(ctx context.Context, name string, ism bool) error {
	alias := s.alias(name)
	settings := map[string]any{}
	if ism {
		settings["index"] = map[string]any{"plugins.index_state_management.rollover_alias": alias}
	}
	body := map[string]any{
		"index_patterns": []string{alias + "*"},
		"composed_of":    []string{s.coreSettings()},
		"template":       map[string]any{"settings": settings, "mappings": indexMappings()},
		"version":        3,
	}
	status, raw, err := s.do(ctx, http.MethodPut, "/_index_template/"+alias, body)
	if err := mustOK(status, raw, err); err != nil {
		return newError(DatabaseErrorName, "Creating index template fail", err, nil, map[string]any{"index": alias})
	}
	return nil
}

// createIndex creates "<alias>-000001" with its write alias.
func (s *searchBackend) createIndex(ctx context.Context, name string) error {
	alias := s.alias(name)
	body := map[string]any{"aliases": map[string]any{alias: map[string]any{"is_write_index": true}}}
	status, raw, err := s.do(ctx, http.MethodPut, "/"+alias+rolloverSuffix, body)
	if err == nil && status == http.StatusBadRequest && bytes.Contains(raw, []byte("resource_already_exists_exception")) {
		return errIndexExists(fmt.Errorf("cannot create index %s: %s", alias+rolloverSuffix, truncate(string(raw), 400)))
	}
	if err := mustOK(status, raw, err); err != nil {
		return newError(DatabaseErrorName, "Creating index fail", err, nil, map[string]any{"index": alias})
	}
	return nil
}

// errIndexExists is OpenCTI's answer to a first boot over a previous one's indices.
func errIndexExists(cause error) error {
	return newError(ConfigurationErrorName, "Fail initialize schema, index already exists, previous initialization fail because you kill the platform before the end of the initialization. Please remove your elastic/opensearch data and restart.",
		cause, ErrIndexAlreadyExists, nil)
}

// indexExists reports whether the name (index or alias) exists.
func (s *searchBackend) indexExists(ctx context.Context, name string) (bool, error) {
	status, _, err := s.do(ctx, http.MethodHead, "/"+url.PathEscape(name), nil)
	if err != nil {
		return false, err
	}
	return status == http.StatusOK, nil
}

// migrationStatus is OpenCTI's MigrationStatus entity, the one document that
// makes a platform "existing".
type migrationStatus struct {
	InternalID      string   `json:"internal_id"`
	StandardID      string   `json:"standard_id"`
	EntityType      string   `json:"entity_type"`
	ParentTypes     []string `json:"parent_types"`
	PlatformVersion string   `json:"platformVersion"`
	LastRun         string   `json:"lastRun"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
}

// readMigrationStatus loads the MigrationStatus; found=false when the alias or
// the document is missing.
func (s *searchBackend) readMigrationStatus(ctx context.Context) (migrationStatus, bool, error) {
	var ms migrationStatus
	found, err := s.findEntity(ctx, "MigrationStatus", &ms)
	return ms, found, err
}

// putDoc indexes one document by id through the write alias and refreshes the
// shard, as OpenCTI's elIndex and elUpdate do (refresh: true), so the document is
// searchable at once; refresh=wait_for would wait up to the 1 s refresh interval
// on every write, slower than the real platform.
func (s *searchBackend) putDoc(ctx context.Context, alias, id string, doc any) error {
	status, raw, err := s.do(ctx, http.MethodPut, "/"+alias+"/_doc/"+url.PathEscape(id)+"?refresh=true", doc)
	if err := mustOK(status, raw, err); err != nil {
		return newError(DatabaseErrorName, "Fail to index document", err, nil, map[string]any{"index": alias, "id": id})
	}
	return nil
}

// nowISO is the timestamp format of OpenCTI's documents.
func nowISO() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// isOpenSearch tells the engine from the version string check returns.
func isOpenSearch(version string) bool { return strings.HasPrefix(version, "opensearch") }
