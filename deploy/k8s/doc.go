// Package k8s holds socflow's Kustomize manifests and, in its tests, a renderer that
// decodes them strictly into the Kubernetes API types and checks their cross-references;
// it has no product code.
package k8s
