package layer

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// ChangeKind says how one entry of a layer changed between two versions.
type ChangeKind string

// The kinds of change Diff reports.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
)

// Change is one service or check that differs between two layers; a minimal
// reconcile restarts only what a change names, so it says which keys moved.
type Change struct {
	// Kind is how the entry changed.
	Kind ChangeKind `json:"kind"`
	// Service is the service's name, or "" for a check.
	Service string `json:"service,omitempty"`
	// Check is the check's name, or "" for a service.
	Check string `json:"check,omitempty"`
	// File is a pushed file's path, for a file whose content differs (Service and
	// Check are then "").
	File string `json:"file,omitempty"`
	// Fields are the Pebble keys (e.g. command, kill-delay) of a changed entry
	// whose values differ, in key order; "environment" is listed here too when
	// Env is not empty.
	Fields []string `json:"fields,omitempty"`
	// Env are the environment variables of a changed service that were added,
	// removed or changed, sorted by key.
	Env []EnvChange `json:"env,omitempty"`
}

// EnvChange is one environment variable of a changed service.
type EnvChange struct {
	// Key is the variable's name.
	Key string `json:"key"`
	// Kind is how it changed.
	Kind ChangeKind `json:"kind"`
	// Old is the masked old value ("" when added).
	Old string `json:"old,omitempty"`
	// New is the masked new value ("" when removed).
	New string `json:"new,omitempty"`
}

// Mask returns what a diff may show of an environment value: the value
// itself, or a stand-in when service's key carries a secret.
type Mask func(service, key, value string) string

// Hidden is what HideAll shows instead of every value.
const Hidden = "<hidden>"

// HideAll is the Mask Diff uses when given nil: a diff is logged and
// recorded in workflow histories, so by default it shows no value at all.
func HideAll(service, key, value string) string { return Hidden }

// Diff lists the services, then the checks, that were added, removed or
// changed from old to new, each group sorted by name; for a changed service it
// names the changed keys and environment variables, with values passed through
// mask (nil: HideAll) so secrets never reach a log.
func Diff(old, new Layer, mask Mask) []Change {
	if mask == nil {
		mask = HideAll
	}
	var out []Change
	for _, name := range unionKeys(old.Services, new.Services) {
		o, inOld := old.Services[name]
		n, inNew := new.Services[name]
		switch {
		case !inOld:
			out = append(out, Change{Kind: Added, Service: name})
		case !inNew:
			out = append(out, Change{Kind: Removed, Service: name})
		default:
			env := envDiff(name, o.Environment, n.Environment, mask)
			fields := fieldDiff(o, n)
			if len(fields) > 0 || len(env) > 0 {
				out = append(out, Change{Kind: Changed, Service: name, Fields: fields, Env: env})
			}
		}
	}
	for _, name := range unionKeys(old.Checks, new.Checks) {
		o, inOld := old.Checks[name]
		n, inNew := new.Checks[name]
		switch {
		case !inOld:
			out = append(out, Change{Kind: Added, Check: name})
		case !inNew:
			out = append(out, Change{Kind: Removed, Check: name})
		default:
			if fields := fieldDiff(o, n); len(fields) > 0 {
				out = append(out, Change{Kind: Changed, Check: name, Fields: fields})
			}
		}
	}
	return out
}

// envDiff compares two environments key by key, sorted so the result is stable.
func envDiff(service string, old, new map[string]string, mask Mask) []EnvChange {
	var out []EnvChange
	for _, k := range unionKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld:
			out = append(out, EnvChange{Key: k, Kind: Added, New: mask(service, k, n)})
		case !inNew:
			out = append(out, EnvChange{Key: k, Kind: Removed, Old: mask(service, k, o)})
		case o != n:
			out = append(out, EnvChange{Key: k, Kind: Changed, Old: mask(service, k, o), New: mask(service, k, n)})
		}
	}
	return out
}

// fieldDiff names the json keys of two entries of the same struct type whose
// values differ; reflection keeps it right when Pebble keys are added to the
// mirror, and an empty and a nil list or map count as equal, as in the YAML.
func fieldDiff[T any](old, new T) []string {
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	var out []string
	for _, f := range reflect.VisibleFields(ov.Type()) {
		a, b := ov.FieldByIndex(f.Index), nv.FieldByIndex(f.Index)
		if a.IsZero() && b.IsZero() || isEmpty(a) && isEmpty(b) || reflect.DeepEqual(a.Interface(), b.Interface()) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// isEmpty reports a nil or empty list or map, which renders as nothing.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Map, reflect.Slice:
		return v.Len() == 0
	}
	return false
}

// unionKeys returns the keys of both maps, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// String is the change on one line: "<name> added|removed", or "<name>: <fields>
// (<KEY> <old> -> <new>; …)" with values as masked.
func (c Change) String() string {
	name := c.Service
	switch {
	case c.File != "":
		name = "file " + c.File
	case name == "":
		name = "check " + c.Check
	}
	if c.Kind != Changed {
		return name + " " + string(c.Kind)
	}
	line := name + ": " + strings.Join(c.Fields, ", ")
	if len(c.Env) > 0 {
		env := make([]string, len(c.Env))
		for i, e := range c.Env {
			env[i] = fmt.Sprintf("%s %s -> %s", e.Key, e.Old, e.New)
		}
		line += " (" + strings.Join(env, "; ") + ")"
	}
	return line
}
