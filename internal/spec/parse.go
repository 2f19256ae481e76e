package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Parse decodes a YAML or JSON instance spec into a T strictly: unknown fields,
// fields spelled with the wrong case and duplicate keys are errors naming the
// field, because a typo silently ignored becomes a default nobody asked for. It
// neither defaults nor validates; each app's Load does both.
func Parse[T any](data []byte) (T, error) {
	var zero T
	// encoding/json matches field names case-insensitively, so check the
	// exact key spelling first, on a generic decoding of the document.
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	var doc any
	if err := json.Unmarshal(j, &doc); err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	if err := checkKeys(doc, reflect.TypeFor[T](), ""); err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	var in T
	// UnmarshalStrict adds yaml.DisallowUnknownFields and rejects duplicate keys.
	if err := yaml.UnmarshalStrict(data, &in); err != nil {
		return zero, fmt.Errorf("cannot parse instance spec: %w", err)
	}
	return in, nil
}

// checkKeys walks a generic JSON value alongside the Go type it decodes into
// and reports the first key (in sorted order, so errors are stable) that no
// field's json name matches exactly.
func checkKeys(v any, t reflect.Type, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type mismatch is reported by the real decoder
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			path := join(at, k)
			ft, ok := fields[k]
			if !ok {
				return unknownField(path, k, fields)
			}
			if err := checkKeys(obj[k], ft, path); err != nil {
				return err
			}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, item := range list {
			if err := checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// unknownField builds the error for key k, suggesting the right spelling
// when only the case differs.
func unknownField(path, k string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Errorf("unknown field %q (did you mean %q?)", path, name)
		}
	}
	return fmt.Errorf("unknown field %q", path)
}

// jsonFields maps each json field name of struct type t to its type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// join appends a key to a dotted JSON path.
func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}
