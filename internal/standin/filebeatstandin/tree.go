package filebeatstandin

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// tree is a parsed configuration: maps, lists and scalars, with dotted keys already
// split into nested maps as libbeat's config library (go-ucfg) splits them, so
// `output.elasticsearch.hosts: [...]` and `output.elasticsearch: {hosts: [...]}` are
// the same setting.
type tree = map[string]any

// parseYAML reads YAML text into a tree, in the shape of ucfg's errors on failure.
func parseYAML(b []byte) (tree, error) {
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		// sigs.k8s.io/yaml prefixes the parser's "yaml: line N: ..." with its own words.
		msg := err.Error()
		if i := strings.Index(msg, "yaml: "); i >= 0 {
			msg = msg[i:]
		}
		return nil, fmt.Errorf("%s", msg)
	}
	if raw == nil {
		return tree{}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("type mismatch accessing '' (config is not a dictionary)")
	}
	return normalize(m).(tree), nil
}

// normalize splits dotted keys into nested maps and merges what lands on one path.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := tree{}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic merge order
		for _, k := range keys {
			setPath(out, strings.Split(k, "."), normalize(v[k]))
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

// setPath puts val at path in t, merging maps that meet on the way.
func setPath(t tree, path []string, val any) {
	for _, p := range path[:len(path)-1] {
		next, ok := t[p].(tree)
		if !ok {
			next = tree{}
			t[p] = next
		}
		t = next
	}
	last := path[len(path)-1]
	if old, ok := t[last].(tree); ok {
		if nv, ok := val.(tree); ok {
			for k, v := range nv {
				setPath(old, []string{k}, v)
			}
			return
		}
	}
	t[last] = val
}

// lookup returns the value at a dotted path of t.
func lookup(t tree, path string) (any, bool) {
	var cur any = t
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(tree)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// missingError is ucfg's error for a ${VAR} that resolves to nothing, naming the
// setting that needed it and the file it came from.
type missingError struct {
	path, source string
}

func (e *missingError) Error() string {
	return fmt.Sprintf("missing field accessing '%s' (source:'%s')", e.path, e.source)
}

// expand resolves ${VAR} and ${VAR:default} in every string of v from env, as ucfg
// does for the environment; a value that is exactly one reference and resolves to a
// JSON-like list or dictionary ("[a, b]", "{k: v}") becomes that structure. "$$"
// escapes a dollar. The first unresolvable reference is returned as a *missingError.
func expand(v any, path string, source string, env LookupEnv) (any, error) {
	switch v := v.(type) {
	case tree:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := tree{}
		for _, k := range keys {
			e, err := expand(v[k], join(path, k), source, env)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			e, err := expand(x, join(path, strconv.Itoa(i)), source, env)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case string:
		s, whole, err := expandString(v, env)
		if err != nil {
			return nil, &missingError{path: path, source: source}
		}
		if whole && (strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{")) {
			var structured any
			if yaml.Unmarshal([]byte(s), &structured) == nil {
				return normalize(structured), nil
			}
		}
		return s, nil
	}
	return v, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// expandString resolves the references in s; whole reports that s was a single reference.
func expandString(s string, env LookupEnv) (out string, whole bool, err error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	refs := 0
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$$") {
			b.WriteByte('$')
			i += 2
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		name, def, hasDef := strings.Cut(s[i+2:i+end], ":")
		val, ok := env(name)
		switch {
		case ok:
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			return "", false, fmt.Errorf("missing %s", name)
		}
		refs++
		whole = i == 0 && i+end+1 == len(s)
		i += end + 1
	}
	return b.String(), whole && refs == 1, nil
}
