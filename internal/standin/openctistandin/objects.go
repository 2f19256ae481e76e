package openctistandin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"
)

// objectStore keeps the platform's internal objects (users, groups, connectors,
// works) as JSON documents keyed by entity type and internal id. OpenCTI keeps
// them in its search engine, so Run uses searchObjects and what the API writes
// survives a restart exactly when the real platform's data would; unit tests use
// memoryObjects.
type objectStore interface {
	// put writes the document of an object, replacing any earlier version.
	put(ctx context.Context, entityType, id string, doc any) error
	// get loads one object into out; false when there is none of that type and id.
	get(ctx context.Context, entityType, id string, out any) (bool, error)
	// list returns every object of a type, ordered by id so listings are stable.
	list(ctx context.Context, entityType string) ([]json.RawMessage, error)
	// remove deletes one object; false when there was none.
	remove(ctx context.Context, entityType, id string) (bool, error)
}

// maxListedObjects bounds one listing; the stand-in holds tens of objects.
const maxListedObjects = 10000

// searchObjects stores objects in an index of the search engine, as OpenCTI
// does (internal objects in <prefix>_internal_objects, works in <prefix>_history).
type searchObjects struct {
	s *searchBackend
	// index names the write alias for an entity type.
	index func(entityType string) string
}

// newSearchObjects puts works in the history index and everything else in the
// internal objects index, OpenCTI's split.
func newSearchObjects(s *searchBackend) *searchObjects {
	return &searchObjects{s: s, index: func(entityType string) string {
		if entityType == entityWork {
			return s.alias("history")
		}
		return s.internalObjects()
	}}
}

func (o *searchObjects) put(ctx context.Context, entityType, id string, doc any) error {
	return o.s.putDoc(ctx, o.index(entityType), id, doc)
}

func (o *searchObjects) get(ctx context.Context, entityType, id string, out any) (bool, error) {
	raw, err := o.list(ctx, entityType)
	if err != nil {
		return false, err
	}
	for _, r := range raw {
		var head struct {
			InternalID string `json:"internal_id"`
		}
		if json.Unmarshal(r, &head) == nil && head.InternalID == id {
			return true, json.Unmarshal(r, out)
		}
	}
	return false, nil
}

func (o *searchObjects) list(ctx context.Context, entityType string) ([]json.RawMessage, error) {
	return o.s.entitySources(ctx, o.index(entityType), entityType, maxListedObjects, []any{map[string]any{"internal_id": "asc"}})
}

// entitySources searches index for the documents of an entity type and returns
// them as stored, at most size of them, in the order order gives (nil: the
// engine's); a missing index is no documents, as before the first write.
func (s *searchBackend) entitySources(ctx context.Context, index, entityType string, size int, order []any) ([]json.RawMessage, error) {
	q := map[string]any{"size": size, "query": map[string]any{"term": map[string]any{"entity_type": entityType}}}
	if order != nil {
		q["sort"] = order
	}
	status, raw, err := s.do(ctx, http.MethodPost, "/"+index+"/_search?ignore_unavailable=true&allow_no_indices=true", q)
	if err := mustOK(status, raw, err); err != nil {
		return nil, newError(DatabaseErrorName, "Fail to load "+entityType, err, nil, nil)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("cannot decode the %s search: %w", entityType, err)
	}
	out := make([]json.RawMessage, len(res.Hits.Hits))
	for i, h := range res.Hits.Hits {
		out[i] = h.Source
	}
	return out, nil
}

func (o *searchObjects) remove(ctx context.Context, entityType, id string) (bool, error) {
	status, raw, err := o.s.do(ctx, http.MethodDelete, "/"+o.index(entityType)+"/_doc/"+url.PathEscape(id)+"?refresh=true", nil)
	if err != nil {
		return false, newError(DatabaseErrorName, "Fail to delete document", err, nil, map[string]any{"id": id})
	}
	if status == http.StatusNotFound {
		return false, nil
	}
	if err := mustOK(status, raw, nil); err != nil {
		return false, newError(DatabaseErrorName, "Fail to delete document", err, nil, map[string]any{"id": id})
	}
	return true, nil
}

// memoryObjects is an objectStore in memory, for unit tests.
type memoryObjects struct {
	mu   sync.Mutex
	docs map[string]map[string]json.RawMessage
}

func newMemoryObjects() *memoryObjects {
	return &memoryObjects{docs: map[string]map[string]json.RawMessage{}}
}

func (m *memoryObjects) put(_ context.Context, entityType, id string, doc any) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("cannot encode %s %s: %w", entityType, id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.docs[entityType] == nil {
		m.docs[entityType] = map[string]json.RawMessage{}
	}
	m.docs[entityType][id] = raw
	return nil
}

func (m *memoryObjects) get(_ context.Context, entityType, id string, out any) (bool, error) {
	m.mu.Lock()
	raw, ok := m.docs[entityType][id]
	m.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, out)
}

func (m *memoryObjects) list(_ context.Context, entityType string) ([]json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.docs[entityType]))
	for id := range m.docs[entityType] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		out[i] = m.docs[entityType][id]
	}
	return out, nil
}

func (m *memoryObjects) remove(_ context.Context, entityType, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.docs[entityType][id]
	delete(m.docs[entityType], id)
	return ok, nil
}

// listAs decodes every object of a type.
func listAs[T any](ctx context.Context, o objectStore, entityType string) ([]T, error) {
	raw, err := o.list(ctx, entityType)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(raw))
	for _, r := range raw {
		var v T
		if err := json.Unmarshal(r, &v); err != nil {
			return nil, fmt.Errorf("cannot decode a stored %s: %w", entityType, err)
		}
		out = append(out, v)
	}
	return out, nil
}
