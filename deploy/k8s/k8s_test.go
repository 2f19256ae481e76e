package k8s

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// overlays are the kustomizations an operator applies; each renders and checks whole.
var overlays = []string{"base", "overlays/example"}

func TestManifests(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			m, err := render(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, meta := range m.namespaced() {
				if meta.Namespace != "socflow" {
					t.Errorf("%s: namespace %q, want socflow", meta.Name, meta.Namespace)
				}
			}
			for _, problem := range check(m) {
				t.Error(problem)
			}
		})
	}
}

func TestOverlaySetsTheRegistry(t *testing.T) {
	m, err := render("overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range m.podSpecs() {
		for _, c := range spec.Containers {
			if !strings.HasPrefix(c.Image, "registry.example.com/socflow/") {
				t.Errorf("container %s: image %s not rewritten by the overlay", c.Name, c.Image)
			}
		}
	}
}

// TestOperatorSecretsAreDocumented keeps the README's list of secrets the operator
// creates in step with the list the checks accept.
func TestOperatorSecretsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, keys := range operatorSecrets {
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README names no secret `%s`", name)
		}
		for _, k := range keys {
			if !strings.Contains(string(readme), k) {
				t.Errorf("README names no key %s of secret %s", k, name)
			}
		}
	}
}

func TestRenderRefusesUnknownFields(t *testing.T) {
	m := &manifests{}
	err := m.decode("x.yaml", []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown field "replica"`) {
		t.Fatalf("decode(misspelt field) = %v, want an unknown-field error", err)
	}
	if err := m.decode("x.yaml", []byte("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\n")); err == nil {
		t.Fatal("decode(a kind without checks) succeeded")
	}
}

// TestChecksFail breaks one thing at a time in the rendered base and expects the
// checks to name it: a check that cannot fail proves nothing.
func TestChecksFail(t *testing.T) {
	worker := func(m *manifests) *corev1.PodSpec { return &m.deployments[idx(m, "socflow-worker")].Spec.Template.Spec }
	sts := func(m *manifests, name string) *corev1.PodSpec {
		for _, s := range m.statefulSets {
			if s.Name == name {
				return &s.Spec.Template.Spec
			}
		}
		panic(name)
	}
	for _, tc := range []struct {
		name   string
		mutate func(m *manifests)
		want   string
	}{
		{"secret key ref to an unknown secret", func(m *manifests) {
			c := &m.deployments[idx(m, "socflow-codec-server")].Spec.Template.Spec.Containers[0]
			c.Env[1].ValueFrom.SecretKeyRef.Name = "socflow-codec-typo"
		}, "Secret socflow-codec-typo is neither"},
		{"secret key ref to an unknown key", func(m *manifests) {
			c := &m.deployments[idx(m, "socflow-codec-server")].Spec.Template.Spec.Containers[0]
			c.Env[1].ValueFrom.SecretKeyRef.Key = "tokn"
		}, "has no key tokn"},
		{"configmap key ref to a missing key", func(m *manifests) {
			worker(m).Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Key = "addr"
		}, "ConfigMap socflow-temporal has no key addr"},
		{"configmap volume missing", func(m *manifests) {
			for i, v := range worker(m).Volumes {
				if v.ConfigMap != nil {
					worker(m).Volumes[i].ConfigMap.Name = "nope"
				}
			}
		}, "ConfigMap nope is not in the manifests"},
		{"claim missing", func(m *manifests) { m.pvcs = nil }, "PersistentVolumeClaim socflow-secrets"},
		{"mount without volume", func(m *manifests) { worker(m).Volumes = worker(m).Volumes[1:] }, "volumeMount temporal-tls names no volume"},
		{"service target port missing", func(m *manifests) {
			m.services[svcIdx(m, "opencti")].Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}, "targetPort htp"},
		{"service selector matches nothing", func(m *manifests) {
			m.services[svcIdx(m, "socflow-worker-metrics")].Spec.Selector = map[string]string{"app.kubernetes.io/name": "worker"}
		}, "matches no pod"},
		{"deployment selector misses its template", func(m *manifests) {
			m.deployments[idx(m, "socflow-worker")].Spec.Selector.MatchLabels = map[string]string{"app": "w"}
		}, "does not select its template"},
		{"statefulset service not headless", func(m *manifests) { m.services[svcIdx(m, "opencti-pebble")].Spec.ClusterIP = "" }, "must be headless"},
		{"enrolment to every wazuh node", func(m *manifests) {
			delete(m.services[svcIdx(m, "wazuh-master")].Spec.Selector, podNameLabel)
		}, "Wazuh port 1515"},
		{"syslog to the master only", func(m *manifests) {
			m.services[svcIdx(m, "wazuh")].Spec.Selector = map[string]string{podNameLabel: "wazuh-0"}
		}, "Wazuh port 6514: no Service reaches node wazuh-1"},
		{"pebble open to every pod", func(m *manifests) {
			m.policies[0].Spec.Ingress[0].From = nil
		}, "admits Pebble's HTTPS port from anywhere"},
		{"pebble open to the codec server", func(m *manifests) {
			m.policies[1].Spec.Ingress[0].From[0].PodSelector.MatchLabels = map[string]string{"app.kubernetes.io/part-of": "socflow"}
		}, "not only the worker"},
		{"pebble port in an open rule", func(m *manifests) {
			r := &m.policies[0].Spec.Ingress[1]
			p := intstr.FromInt32(8443)
			r.Ports = append(r.Ports, r.Ports[0])
			r.Ports[len(r.Ports)-1].Port = &p
		}, "from anywhere"},
		{"workload without a policy", func(m *manifests) { m.policies = m.policies[1:] }, "pod opencti-0: its Pebble HTTPS port is selected by no ingress NetworkPolicy"},
		{"policy selects nothing", func(m *manifests) {
			m.policies[0].Spec.PodSelector.MatchLabels = map[string]string{"app.kubernetes.io/name": "octi"}
		}, "podSelector map[app.kubernetes.io/name:octi] matches no pod"},
		{"policy port not in the pods", func(m *manifests) {
			p := intstr.FromString("pebble")
			m.policies[1].Spec.Ingress[0].Ports[0].Port = &p
		}, "port pebble is no container port"},
		{"workload not running pebble", func(m *manifests) { sts(m, "opencti").Containers[0].Command[0] = "/usr/bin/node" }, "is not `pebble run`"},
		{"pebble https on another port", func(m *manifests) { sts(m, "wazuh").Containers[0].Command[4] = ":9443" }, "--https` must listen"},
		{"identities not from the secret", func(m *manifests) { sts(m, "opencti").Containers[0].Command[6] = "/tmp/ids.yaml" }, "--identities"},
		{"image is not the rock's version", func(m *manifests) { sts(m, "wazuh").Containers[0].Image = "wazuh-server:4.10.0" }, "the rock's version"},
		{"worker env the worker does not read", func(m *manifests) {
			worker(m).Containers[0].Env = append(worker(m).Containers[0].Env, corev1.EnvVar{Name: "TEMPORAL_HOST", Value: "x"})
		}, "TEMPORAL_HOST: the worker does not read it"},
		{"worker TLS file outside the mounts", func(m *manifests) {
			worker(m).Containers[0].Env[4].Value = "/etc/temporal/tls.crt"
		}, "no volume is mounted there"},
		{"worker metrics on another port", func(m *manifests) {
			for i, e := range worker(m).Containers[0].Env {
				if e.Name == "SOCFLOW_METRICS_ADDR" {
					worker(m).Containers[0].Env[i].Value = ":9090"
				}
			}
		}, "SOCFLOW_METRICS_ADDR"},
		{"worker readiness elsewhere", func(m *manifests) { worker(m).Containers[0].ReadinessProbe.HTTPGet.Path = "/metrics" }, "readiness /readyz"},
		{"worker as root", func(m *manifests) { worker(m).SecurityContext.RunAsNonRoot = nil }, "runAsNonRoot"},
		{"invalid opencti spec", func(m *manifests) {
			cm := m.configMap(instancesMap)
			cm.Data["opencti.yaml"] = strings.Replace(cm.Data["opencti.yaml"], "version: 6.9.28", "version: latest", 1)
		}, "opencti.version"},
		{"invalid wazuh spec", func(m *manifests) {
			cm := m.configMap(instancesMap)
			cm.Data["wazuh.yaml"] = strings.Replace(cm.Data["wazuh.yaml"], "name: soc\n", "name: SOC\n", 1)
		}, "wazuh.yaml"},
		{"spec file not mounted", func(m *manifests) {
			cm := m.configMap(instancesMap)
			cm.Data["wazuh.yaml"] = strings.Replace(cm.Data["wazuh.yaml"], "/etc/socflow/secrets/indexer-password", "/etc/socflow/indexer-password", 1)
		}, "file:/etc/socflow/indexer-password is no key"},
		{"spec pebble url to another port", func(m *manifests) {
			cm := m.configMap(instancesMap)
			cm.Data["opencti.yaml"] = strings.Replace(cm.Data["opencti.yaml"], "svc.cluster.local:8443", "svc.cluster.local:8444", 1)
		}, "not pod opencti-0's pebble-https port"},
		{"spec pebble url to a missing pod", func(m *manifests) {
			cm := m.configMap(instancesMap)
			cm.Data["wazuh.yaml"] = strings.Replace(cm.Data["wazuh.yaml"], "https://wazuh-1.", "https://wazuh-2.", 1)
		}, "selects no pod wazuh-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := render("base")
			if err != nil {
				t.Fatal(err)
			}
			if problems := check(m); len(problems) != 0 {
				t.Fatalf("the base is not clean before the mutation: %q", problems)
			}
			tc.mutate(m)
			problems := check(m)
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %q", tc.want, problems)
		})
	}
}

func idx(m *manifests, name string) int {
	for i, d := range m.deployments {
		if d.Name == name {
			return i
		}
	}
	panic(name)
}

func svcIdx(m *manifests, name string) int {
	for i, s := range m.services {
		if s.Name == name {
			return i
		}
	}
	panic(name)
}
