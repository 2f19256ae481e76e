package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/configrepo"
)

// marker is what a component's marker file records: the tree applied ("" when the
// commit had no such directory), the commit it came from, and where it went.
type marker struct {
	Found              bool // a marker file exists
	Tree, Commit, Dest string
}

// markerKey names a component's files in the marker directory: its path, slashes dashed.
func markerKey(name string) string { return strings.ReplaceAll(name, "/", "-") }

func markerPath(dir, name string) string   { return path.Join(dir, markerKey(name)+".tree") }
func fileListPath(dir, name string) string { return path.Join(dir, markerKey(name)+".files") }

// encode writes the marker as "key value" lines.
func (m marker) encode() []byte {
	tree := m.Tree
	if tree == "" {
		tree = "none"
	}
	return fmt.Appendf(nil, "tree %s\ncommit %s\ndest %s\n", tree, m.Commit, m.Dest)
}

// parseMarker reads encode's lines; anything else reads as no marker, so the component
// is applied again rather than trusted.
func parseMarker(b []byte) marker {
	m := marker{Found: true}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "tree":
			m.Tree = v
		case "commit":
			m.Commit = v
		case "dest":
			m.Dest = v
		}
	}
	if m.Tree == "" || m.Commit == "" || m.Dest == "" {
		return marker{}
	}
	if m.Tree == "none" {
		m.Tree = ""
	}
	return m
}

// readOptional reads a container file, reporting a missing one as absent.
func (ep pebbleEndpoint) readOptional(ctx context.Context, p string) ([]byte, bool, error) {
	got, err := ep.pull(ctx, p)
	if err == nil {
		return got, true, nil
	}
	// Pebble 1.26's client reports a missing file's pull as a malformed answer, not as
	// its not-found error: listing the path tells.
	lerr := ep.call(ctx, func(pc *client.Client) error {
		_, err := pc.ListFiles(&client.ListFilesOptions{Path: p, Itself: true})
		return err
	})
	if isNotFound(lerr) {
		return nil, false, nil
	}
	return nil, false, pebbleError("cannot read "+p+" in the container", err)
}

func isNotFound(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Kind == "not-found"
}

// readMarker reads a component's marker; a missing one is the zero marker.
func (ep pebbleEndpoint) readMarker(ctx context.Context, dir, name string) (marker, error) {
	b, ok, err := ep.readOptional(ctx, markerPath(dir, name))
	if err != nil || !ok {
		return marker{}, err
	}
	return parseMarker(b), nil
}

// push writes one file into the container, making its parent directories.
func (ep pebbleEndpoint) push(ctx context.Context, p string, content []byte, mode fs.FileMode) error {
	err := ep.call(ctx, func(pc *client.Client) error {
		return pc.Push(&client.PushOptions{Source: bytes.NewReader(content), Path: p, MakeDirs: true, Permissions: mode})
	})
	return pebbleError("cannot push "+p+" into the container", err)
}

// remove removes one container file; one already gone is fine.
func (ep pebbleEndpoint) remove(ctx context.Context, p string) error {
	err := ep.call(ctx, func(pc *client.Client) error {
		return pc.RemovePath(&client.RemovePathOptions{Path: p})
	})
	if isNotFound(err) {
		return nil
	}
	return pebbleError("cannot remove "+p+" from the container", err)
}

// componentStatus is what syncComponent did with a component.
type componentStatus int

const (
	componentUnchanged componentStatus = iota
	componentApplied
	componentMissing
)

// syncComponent applies one component of the commit when its tree differs from the
// marker m: files pushed, files of the previous tree that this one lacks removed,
// then the file list, then the marker. A matching tree only has its marker's commit
// brought up to date, which is what lets the next sync of this commit skip the fetch.
func (ep pebbleEndpoint) syncComponent(ctx context.Context, cache *configrepo.Cache, commit, markerDir string,
	c ConfigComponent, m marker) (componentStatus, []string, error) {
	tree, ok, err := cache.TreeOf(ctx, commit, c.Name)
	if err != nil {
		return 0, nil, err
	}
	next := marker{Found: true, Tree: tree, Commit: commit, Dest: c.Dest}
	writeMarker := func() error {
		return ep.push(ctx, markerPath(markerDir, c.Name), next.encode(), 0o644)
	}
	if !ok {
		// Nothing to apply; the marker records the absence so that the next sync of
		// this commit can skip the fetch.
		if m != next {
			return componentMissing, nil, writeMarker()
		}
		return componentMissing, nil, nil
	}
	if m.Found && m.Tree == tree && m.Dest == c.Dest {
		if m != next {
			return componentUnchanged, nil, writeMarker()
		}
		return componentUnchanged, nil, nil
	}
	files, err := cache.Files(ctx, commit, c.Name)
	if err != nil {
		return 0, nil, err
	}
	written := make([]string, 0, len(files))
	for i, f := range files {
		p := path.Join(c.Dest, f.Path)
		recordHeartbeat(ctx, fmt.Sprintf("pushing %s: %d/%d files", c.Name, i+1, len(files)))
		if err := ep.push(ctx, p, f.Content, f.Mode); err != nil {
			return 0, nil, err
		}
		written = append(written, p)
	}
	var removed []string
	list, _, err := ep.readOptional(ctx, fileListPath(markerDir, c.Name))
	if err != nil {
		return 0, nil, err
	}
	for _, old := range strings.Split(string(list), "\n") {
		// Only files the list places under the component's directories: the list lives
		// in the container, and socflow removes nothing it did not write there.
		if old == "" || slices.Contains(written, old) || !isCleanAbs(old) || !(under(old, c.Dest) || under(old, m.Dest)) {
			continue
		}
		if err := ep.remove(ctx, old); err != nil {
			return 0, nil, err
		}
		removed = append(removed, old)
	}
	slices.Sort(written)
	if err := ep.push(ctx, fileListPath(markerDir, c.Name), []byte(strings.Join(written, "\n")+"\n"), 0o644); err != nil {
		return 0, nil, err
	}
	return componentApplied, removed, writeMarker()
}

// under reports whether p lies below the directory dir.
func under(p, dir string) bool {
	return dir != "" && strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
