package openctistandin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
)

// filterGroupInput is OpenCTI 6's FilterGroup: filters and nested groups,
// combined by mode.
type filterGroupInput struct {
	Mode         string
	Filters      []filterInput
	FilterGroups []filterGroupInput
}

// filterInput is one Filter: keys, values, an operator (default eq) and the
// mode that combines several values (default or).
type filterInput struct {
	Key      []string
	Values   []anyValue
	Operator *string
	Mode     *string
}

// matchFilters evaluates a FilterGroup against an object's JSON fields. The
// stand-in implements the operators eq, not_eq, nil and not_nil on the object's
// own fields ("id" meaning internal_id); anything else is refused by name
// rather than silently matching everything.
func matchFilters(fg *filterGroupInput, obj map[string]any) (bool, error) {
	if fg == nil {
		return true, nil
	}
	and := fg.Mode != "or"
	results := make([]bool, 0, len(fg.Filters)+len(fg.FilterGroups))
	for _, f := range fg.Filters {
		ok, err := matchFilter(f, obj)
		if err != nil {
			return false, err
		}
		results = append(results, ok)
	}
	for i := range fg.FilterGroups {
		ok, err := matchFilters(&fg.FilterGroups[i], obj)
		if err != nil {
			return false, err
		}
		results = append(results, ok)
	}
	if len(results) == 0 {
		return true, nil
	}
	for _, r := range results {
		if and && !r {
			return false, nil
		}
		if !and && r {
			return true, nil
		}
	}
	return and, nil
}

func matchFilter(f filterInput, obj map[string]any) (bool, error) {
	op := "eq"
	if f.Operator != nil {
		op = *f.Operator
	}
	valuesAnd := f.Mode != nil && *f.Mode == "and"
	for _, key := range f.Key {
		field := key
		if key == "id" || key == "ids" {
			field = "internal_id"
		}
		raw, present := obj[field]
		if !present {
			return false, errUnsupported(fmt.Sprintf("The stand-in cannot filter on %s", key), map[string]any{"key": key})
		}
		have := fieldStrings(raw)
		switch op {
		case "nil":
			if len(have) != 0 {
				return false, nil
			}
			continue
		case "not_nil":
			if len(have) == 0 {
				return false, nil
			}
			continue
		case "eq", "not_eq":
		default:
			return false, errUnsupported(fmt.Sprintf("The stand-in does not implement the filter operator %s", op), map[string]any{"operator": op})
		}
		matched := 0
		for _, v := range f.Values {
			for _, h := range have {
				// OpenCTI matches on normalised keywords: case does not count.
				if strings.EqualFold(h, v.String()) {
					matched++
					break
				}
			}
		}
		hit := matched > 0
		if valuesAnd {
			hit = matched == len(f.Values)
		}
		if op == "not_eq" {
			hit = !hit
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

// fieldStrings flattens a JSON field into the strings a keyword index holds.
func fieldStrings(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fieldStrings(e)...)
		}
		return out
	default:
		raw, _ := json.Marshal(x)
		return []string{string(raw)}
	}
}

// asFields is an object's JSON fields.
func asFields(v any) map[string]any {
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// listArgs are the paging, ordering, search and filter arguments of users and groups.
type listArgs struct {
	First     *int32
	After     *graphql.ID
	OrderBy   *string
	OrderMode *string
	Filters   *filterGroupInput
	Search    *string
}

// listPage is a listing such as users(...) or groups(...): every stored object of
// the type, filtered, searched in the fields searchIn, ordered and paged.
func listPage[T any](ctx context.Context, o objectStore, entityType string, args listArgs, searchIn ...string) ([]T, pageInfo, error) {
	items, err := listAs[T](ctx, o, entityType)
	if err != nil {
		return nil, pageInfo{}, errDatabase(err)
	}
	return selectPage(items, args, searchIn...)
}

// selectPage filters, searches, orders and pages objects by their JSON fields,
// returning the page and OpenCTI's pageInfo figures.
func selectPage[T any](items []T, args listArgs, searchIn ...string) ([]T, pageInfo, error) {
	var kept []T
	var keptFields []map[string]any
	for _, it := range items {
		f := asFields(it)
		ok, err := matchFilters(args.Filters, f)
		if err != nil {
			return nil, pageInfo{}, err
		}
		if ok && args.Search != nil && *args.Search != "" {
			ok = false
			for _, k := range searchIn {
				if s, _ := f[k].(string); strings.Contains(strings.ToLower(s), strings.ToLower(*args.Search)) {
					ok = true
				}
			}
		}
		if ok {
			kept = append(kept, it)
			keptFields = append(keptFields, f)
		}
	}
	order := "name"
	if args.OrderBy != nil && *args.OrderBy != "_score" {
		order = *args.OrderBy
	}
	idx := make([]int, len(kept))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := fmt.Sprint(keptFields[idx[a]][order]), fmt.Sprint(keptFields[idx[b]][order])
		if args.OrderMode != nil && *args.OrderMode == "desc" {
			return strings.ToLower(x) > strings.ToLower(y)
		}
		return strings.ToLower(x) < strings.ToLower(y)
	})
	sorted := make([]T, len(kept))
	for i, j := range idx {
		sorted[i] = kept[j]
	}
	start := 0
	if args.After != nil && *args.After != "" {
		raw, err := base64.StdEncoding.DecodeString(string(*args.After))
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 {
			return nil, pageInfo{}, errFunctional("Invalid cursor", map[string]any{"after": string(*args.After)})
		}
		start = min(n+1, len(sorted))
	}
	first := 500
	if args.First != nil && *args.First >= 0 {
		first = int(*args.First)
	}
	end := min(start+first, len(sorted))
	pi := pageInfo{global: len(sorted), hasNext: end < len(sorted), hasPrev: start > 0}
	if end > start {
		pi.start, pi.end = cursor(start), cursor(end-1)
	}
	return sorted[start:end], pi, nil
}

// cursor is the opaque cursor of a position.
func cursor(i int) string { return base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(i))) }

// pageInfo is PageInfo's figures.
type pageInfo struct {
	start, end       string
	hasNext, hasPrev bool
	global           int
}

type pageInfoResolver struct{ p pageInfo }

func (p *pageInfoResolver) StartCursor() string   { return p.p.start }
func (p *pageInfoResolver) EndCursor() string     { return p.p.end }
func (p *pageInfoResolver) HasNextPage() bool     { return p.p.hasNext }
func (p *pageInfoResolver) HasPreviousPage() bool { return p.p.hasPrev }
func (p *pageInfoResolver) GlobalCount() int32    { return int32(p.p.global) }
func onePage(n int) *pageInfoResolver {
	return &pageInfoResolver{pageInfo{global: n, start: cursorIf(n, 0), end: cursorIf(n, n-1)}}
}
func cursorIf(n, i int) string { return map[bool]string{true: cursor(i), false: ""}[n > 0] }
