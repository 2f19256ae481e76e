package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of Kustomize's schema socflow uses; strict decoding
// refuses any other field, so a transformer this renderer does not apply cannot slip in.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// manifests are the rendered objects by kind; the checks read only these.
type manifests struct {
	namespaces   []*corev1.Namespace
	configMaps   []*corev1.ConfigMap
	pvcs         []*corev1.PersistentVolumeClaim
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	policies     []*networkingv1.NetworkPolicy
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decode adds one YAML document to m, strictly decoded into its API type.
func (m *manifests) decode(file string, doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var obj any
	switch head.APIVersion + " " + head.Kind {
	case "v1 Namespace":
		o := &corev1.Namespace{}
		m.namespaces, obj = append(m.namespaces, o), o
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps, obj = append(m.configMaps, o), o
	case "v1 PersistentVolumeClaim":
		o := &corev1.PersistentVolumeClaim{}
		m.pvcs, obj = append(m.pvcs, o), o
	case "v1 Service":
		o := &corev1.Service{}
		m.services, obj = append(m.services, o), o
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		m.deployments, obj = append(m.deployments, o), o
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		m.statefulSets, obj = append(m.statefulSets, o), o
	case "networking.k8s.io/v1 NetworkPolicy":
		o := &networkingv1.NetworkPolicy{}
		m.policies, obj = append(m.policies, o), o
	default:
		return fmt.Errorf("%s: no checks for %s %s: add its type to decode", file, head.APIVersion, head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %s: %w", file, head.Kind, err)
	}
	return nil
}

// render reads a kustomization directory as `kubectl kustomize` would for the fields
// kustomization allows: resources (files and directories, recursively), then the
// namespace and images transformers of this level.
func render(dir string) (*manifests, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	m := &manifests{}
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s/kustomization.yaml: resource %s: %w", dir, r, err)
		}
		if st.IsDir() {
			sub, err := render(p)
			if err != nil {
				return nil, err
			}
			m.add(sub)
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, doc := range docSep.Split(string(raw), -1) {
			if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
				continue
			}
			if err := m.decode(p, []byte(doc)); err != nil {
				return nil, err
			}
		}
	}
	if k.Namespace != "" {
		for _, meta := range m.namespaced() {
			meta.Namespace = k.Namespace
		}
	}
	for _, img := range k.Images {
		for _, spec := range m.podSpecs() {
			for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
				for i := range cs {
					name, tag, _ := strings.Cut(cs[i].Image, ":")
					if name != img.Name {
						continue
					}
					if img.NewName != "" {
						name = img.NewName
					}
					if img.NewTag != "" {
						tag = img.NewTag
					}
					cs[i].Image = name + ":" + tag
				}
			}
		}
	}
	return m, nil
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

func (m *manifests) add(o *manifests) {
	m.namespaces = append(m.namespaces, o.namespaces...)
	m.configMaps = append(m.configMaps, o.configMaps...)
	m.pvcs = append(m.pvcs, o.pvcs...)
	m.services = append(m.services, o.services...)
	m.deployments = append(m.deployments, o.deployments...)
	m.statefulSets = append(m.statefulSets, o.statefulSets...)
	m.policies = append(m.policies, o.policies...)
}
