package openctistandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// searchBackend is the OpenSearch/Elasticsearch cluster holding the platform's data.
type searchBackend struct {
	client *opensearchapi.Client
	prefix string
}

// Index suffixes OpenCTI creates on first boot, in creation order; settings live
// in the first, so it is the index whose presence marks an earlier attempt.
var platformIndexSuffixes = []string{"_internal_objects", "_stix_domain_objects", "_stix_core_relationships", "_history"}

// settingsDocID is the id of the settings document; a fixed id lets every node
// find it with a realtime GET instead of a search that depends on refreshes.
const settingsDocID = "settings"

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
	return &searchBackend{client: client, prefix: cfg.IndexPrefix}, nil
}

func (s *searchBackend) label() string   { return "Search engine" }
func (s *searchBackend) product() string { return "Search engine" }

// check reads cluster info, which also proves the credentials.
func (s *searchBackend) check(ctx context.Context) (string, error) {
	info, err := s.client.Info(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("cannot read search engine info: %w", err)
	}
	if info.Version.Distribution == "opensearch" {
		return "opensearch " + info.Version.Number, nil
	}
	return "elasticsearch " + info.Version.Number, nil
}

// minimum is OpenSearch >= 2.9 or Elasticsearch >= 8, as OpenCTI documents.
func (s *searchBackend) minimum(version string) string {
	if strings.HasPrefix(version, "opensearch ") {
		return "2.9"
	}
	return "8.0"
}

// indexNames returns the platform's indices for this prefix.
func (s *searchBackend) indexNames() []string {
	names := make([]string, len(platformIndexSuffixes))
	for i, suffix := range platformIndexSuffixes {
		names[i] = s.prefix + suffix
	}
	return names
}

// internalIndex is where settings (and later users, groups, connectors) live.
func (s *searchBackend) internalIndex() string { return s.prefix + platformIndexSuffixes[0] }

// indexSettings keeps test clusters green: one node cannot host replicas.
const indexSettings = `{"settings":{"index":{"number_of_shards":1,"number_of_replicas":0}}}`

// createIndex creates one index and, like OpenCTI, fails if it exists already.
func (s *searchBackend) createIndex(ctx context.Context, name string) error {
	_, err := s.client.Indices.Create(ctx, opensearchapi.IndicesCreateReq{Index: name, Body: strings.NewReader(indexSettings)})
	if err == nil {
		return nil
	}
	if isAlreadyExists(err) {
		return fmt.Errorf("cannot create index %s: %w: %w", name, ErrIndexAlreadyExists, err)
	}
	return fmt.Errorf("cannot create index %s: %w", name, err)
}

// isAlreadyExists recognises OpenSearch's typed error for an existing index.
func isAlreadyExists(err error) bool {
	var se *opensearch.StructError
	return errors.As(err, &se) && se.Err.Type == "resource_already_exists_exception"
}

// settingsDoc is the stored settings entity; platform_version is written last on
// first boot, so its presence means the platform finished initialising.
type settingsDoc struct {
	InternalID      string `json:"internal_id"`
	EntityType      string `json:"entity_type"`
	PlatformVersion string `json:"platform_version"`
	CreatedAt       string `json:"created_at"`
	UpdatedAt       string `json:"updated_at"`
}

// readSettings returns the settings document, found=false when the index or the
// document is missing (a new platform or an interrupted first boot).
func (s *searchBackend) readSettings(ctx context.Context) (settingsDoc, bool, error) {
	resp, err := s.client.Document.Get(ctx, opensearchapi.DocumentGetReq{Index: s.internalIndex(), DocumentID: settingsDocID})
	if err != nil {
		if raw := resp.Inspect().Response; raw != nil && raw.StatusCode == http.StatusNotFound {
			return settingsDoc{}, false, nil
		}
		return settingsDoc{}, false, fmt.Errorf("cannot read platform settings: %w", err)
	}
	if !resp.Found {
		return settingsDoc{}, false, nil
	}
	var doc settingsDoc
	if err := json.Unmarshal(resp.Source, &doc); err != nil {
		return settingsDoc{}, false, fmt.Errorf("cannot decode platform settings: %w", err)
	}
	return doc, doc.PlatformVersion != "", nil
}

// writeSettings stores the settings document and waits for it to be searchable.
func (s *searchBackend) writeSettings(ctx context.Context, doc settingsDoc) error {
	return s.putDoc(ctx, s.internalIndex(), settingsDocID, doc)
}

// putDoc indexes one document by id; later work stores users and connectors with it.
func (s *searchBackend) putDoc(ctx context.Context, index, id string, doc any) error {
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("cannot encode document %s: %w", id, err)
	}
	_, err = s.client.Index(ctx, opensearchapi.IndexReq{
		Index: index, DocumentID: id, Body: bytes.NewReader(body),
		Params: opensearchapi.IndexParams{Refresh: "wait_for"},
	})
	if err != nil {
		return fmt.Errorf("cannot write document %s to %s: %w", id, index, err)
	}
	return nil
}
