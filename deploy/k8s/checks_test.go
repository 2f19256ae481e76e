package k8s

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/wazuh"
)

// operatorSecrets are the Secrets the manifests use but do not hold, with the keys
// they read: the operator creates them (README, "socflow on Kubernetes").
var operatorSecrets = map[string][]string{
	"socflow-temporal-tls":      {"tls.crt", "tls.key", "ca.crt"},
	"socflow-codec":             {"codec-keys.json", "token"},
	"socflow-pebble-client":     {"client.pem", "client.key"},
	"socflow-pebble-servers":    {"opencti-0.pem", "wazuh-0.pem", "wazuh-1.pem"},
	"socflow-pebble-identities": {"identities.yaml"},
	"socflow-instance-secrets": {"opencti-admin-password", "opensearch-password", "opensearch-ca.pem", "rabbitmq-password",
		"redis-password", "s3-access-key", "s3-secret-key", "indexer-password", "indexer-ca.pem"},
}

// The names the checks single out.
const (
	workerName     = "socflow-worker"
	pebblePortName = "pebble-https"
	instancesMap   = "socflow-instances"
	podNameLabel   = "statefulset.kubernetes.io/pod-name"
)

// pod is one pod a workload makes: a Deployment's template once, a StatefulSet's once
// per replica with the pod-name label the controller adds.
type pod struct {
	name   string // StatefulSet pod name, or the Deployment's
	owner  string
	labels labels.Set
	spec   *corev1.PodSpec
}

func (m *manifests) namespaced() []*metav1.ObjectMeta {
	var out []*metav1.ObjectMeta
	for _, o := range m.configMaps {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.pvcs {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.services {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.deployments {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.statefulSets {
		out = append(out, &o.ObjectMeta)
	}
	for _, o := range m.policies {
		out = append(out, &o.ObjectMeta)
	}
	return out
}

func (m *manifests) podSpecs() []*corev1.PodSpec {
	var out []*corev1.PodSpec
	for _, d := range m.deployments {
		out = append(out, &d.Spec.Template.Spec)
	}
	for _, s := range m.statefulSets {
		out = append(out, &s.Spec.Template.Spec)
	}
	return out
}

func (m *manifests) pods() []pod {
	var out []pod
	for _, d := range m.deployments {
		out = append(out, pod{d.Name, d.Name, labels.Set(d.Spec.Template.Labels), &d.Spec.Template.Spec})
	}
	for _, s := range m.statefulSets {
		n := int32(1)
		if s.Spec.Replicas != nil {
			n = *s.Spec.Replicas
		}
		for i := range n {
			l := labels.Set{}
			for k, v := range s.Spec.Template.Labels {
				l[k] = v
			}
			name := s.Name + "-" + strconv.Itoa(int(i))
			l[podNameLabel] = name
			out = append(out, pod{name, s.Name, l, &s.Spec.Template.Spec})
		}
	}
	return out
}

func selected(sel map[string]string, pods []pod) []pod {
	if len(sel) == 0 {
		return nil
	}
	var out []pod
	for _, p := range pods {
		if labels.SelectorFromSet(sel).Matches(p.labels) {
			out = append(out, p)
		}
	}
	return out
}

// containerPort finds a named or numbered port among a pod's containers.
func containerPort(spec *corev1.PodSpec, port intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
				return p, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

// check returns every broken cross-reference, each naming the object and the fix.
func check(m *manifests) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	pods := m.pods()

	// Workload selectors select their own templates.
	for _, d := range m.deployments {
		checkSelector(&p, "Deployment "+d.Name, d.Spec.Selector, d.Spec.Template.Labels)
	}
	for _, s := range m.statefulSets {
		checkSelector(&p, "StatefulSet "+s.Name, s.Spec.Selector, s.Spec.Template.Labels)
		svc := m.service(s.Spec.ServiceName)
		switch {
		case svc == nil:
			add("StatefulSet %s: serviceName %q names no Service", s.Name, s.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			add("StatefulSet %s: Service %s must be headless (clusterIP: None) for per-pod DNS", s.Name, svc.Name)
		}
	}

	// References from pods to ConfigMaps, Secrets, claims and volumes.
	for _, d := range m.deployments {
		m.checkPodRefs(&p, "Deployment "+d.Name, &d.Spec.Template.Spec, nil)
	}
	for _, s := range m.statefulSets {
		var claims []string
		for _, c := range s.Spec.VolumeClaimTemplates {
			claims = append(claims, c.Name)
		}
		m.checkPodRefs(&p, "StatefulSet "+s.Name, &s.Spec.Template.Spec, claims)
	}

	// Services select pods that have their target ports.
	for _, svc := range m.services {
		sel := selected(svc.Spec.Selector, pods)
		if len(sel) == 0 {
			add("Service %s: selector %v matches no pod", svc.Name, svc.Spec.Selector)
		}
		for _, sp := range svc.Spec.Ports {
			for _, pd := range sel {
				if _, ok := containerPort(pd.spec, sp.TargetPort); !ok {
					add("Service %s: targetPort %s is no container port of pod %s", svc.Name, sp.TargetPort.String(), pd.name)
				}
			}
		}
	}

	p = append(p, m.checkWazuhServices(pods)...)
	p = append(p, m.checkPolicies(pods)...)
	p = append(p, m.checkPebbleContainers()...)
	p = append(p, m.checkWorker()...)
	p = append(p, m.checkInstances(pods)...)
	return p
}

func checkSelector(p *[]string, what string, sel *metav1.LabelSelector, tmpl map[string]string) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		*p = append(*p, what+": no selector")
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		*p = append(*p, fmt.Sprintf("%s: selector: %v", what, err))
		return
	}
	if !s.Matches(labels.Set(tmpl)) {
		*p = append(*p, fmt.Sprintf("%s: selector %v does not select its template's labels %v", what, sel.MatchLabels, tmpl))
	}
}

func (m *manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, c := range m.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (m *manifests) checkConfigMapKey(p *[]string, what, name, key string) {
	c := m.configMap(name)
	switch {
	case c == nil:
		*p = append(*p, fmt.Sprintf("%s: ConfigMap %s is not in the manifests", what, name))
	case key != "":
		if _, ok := c.Data[key]; !ok {
			*p = append(*p, fmt.Sprintf("%s: ConfigMap %s has no key %s", what, name, key))
		}
	}
}

func checkSecretKey(p *[]string, what, name, key string) {
	keys, ok := operatorSecrets[name]
	switch {
	case !ok:
		*p = append(*p, fmt.Sprintf("%s: Secret %s is neither in the manifests nor in the operator's list", what, name))
	case key != "" && !slices.Contains(keys, key):
		*p = append(*p, fmt.Sprintf("%s: Secret %s has no key %s in the operator's list", what, name, key))
	}
}

func (m *manifests) checkPodRefs(p *[]string, what string, spec *corev1.PodSpec, claimTemplates []string) {
	volumes := map[string]bool{}
	for _, c := range claimTemplates {
		volumes[c] = true
	}
	for _, v := range spec.Volumes {
		at := what + " volume " + v.Name
		volumes[v.Name] = true
		switch {
		case v.Secret != nil:
			checkSecretKey(p, at, v.Secret.SecretName, "")
			for _, it := range v.Secret.Items {
				checkSecretKey(p, at, v.Secret.SecretName, it.Key)
			}
		case v.ConfigMap != nil:
			m.checkConfigMapKey(p, at, v.ConfigMap.Name, "")
			for _, it := range v.ConfigMap.Items {
				m.checkConfigMapKey(p, at, v.ConfigMap.Name, it.Key)
			}
		case v.PersistentVolumeClaim != nil:
			if !slices.ContainsFunc(m.pvcs, func(c *corev1.PersistentVolumeClaim) bool { return c.Name == v.PersistentVolumeClaim.ClaimName }) {
				*p = append(*p, fmt.Sprintf("%s: PersistentVolumeClaim %s is not in the manifests", at, v.PersistentVolumeClaim.ClaimName))
			}
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		at := what + " container " + c.Name
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				checkSecretKey(p, at+" env "+e.Name, r.Name, r.Key)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				m.checkConfigMapKey(p, at+" env "+e.Name, r.Name, r.Key)
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil {
				checkSecretKey(p, at+" envFrom", ef.SecretRef.Name, "")
			}
			if ef.ConfigMapRef != nil {
				m.checkConfigMapKey(p, at+" envFrom", ef.ConfigMapRef.Name, "")
			}
		}
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				*p = append(*p, fmt.Sprintf("%s: volumeMount %s names no volume", at, vm.Name))
			}
		}
		for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if probe == nil {
				continue
			}
			var port *intstr.IntOrString
			if probe.HTTPGet != nil {
				port = &probe.HTTPGet.Port
			} else if probe.TCPSocket != nil {
				port = &probe.TCPSocket.Port
			}
			if port != nil {
				if _, ok := containerPort(&corev1.PodSpec{Containers: []corev1.Container{c}}, *port); !ok {
					*p = append(*p, fmt.Sprintf("%s: probe port %s is not a port of the container", at, port.String()))
				}
			}
		}
	}
}

// Wazuh's ports: agents and syslog to every node, enrolment and the API (through a
// load-balanced Service) to the master only, since agents enrolling on a worker fail.
func (m *manifests) checkWazuhServices(pods []pod) []string {
	var p []string
	var nodes []string
	for _, pd := range pods {
		if pd.owner == "wazuh" {
			nodes = append(nodes, pd.name)
		}
	}
	if len(nodes) < 2 {
		return []string{fmt.Sprintf("StatefulSet wazuh: %d pods, want a master and at least one worker", len(nodes))}
	}
	exposed := map[int32][]string{} // port -> pods it reaches through non-headless Services
	for _, svc := range m.services {
		if svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			for _, pd := range selected(svc.Spec.Selector, pods) {
				if cp, ok := containerPort(pd.spec, sp.TargetPort); ok && pd.owner == "wazuh" {
					exposed[cp.ContainerPort] = append(exposed[cp.ContainerPort], pd.name)
				}
			}
		}
	}
	for _, port := range []int32{wazuh.DefaultAgentPort, wazuh.DefaultSyslogPort} {
		for _, n := range nodes {
			if !slices.Contains(exposed[port], n) {
				p = append(p, fmt.Sprintf("Wazuh port %d: no Service reaches node %s", port, n))
			}
		}
	}
	for _, port := range []int32{wazuh.DefaultEnrolmentPort, wazuh.DefaultAPIPort} {
		got := slices.Compact(slices.Sorted(slices.Values(exposed[port])))
		if !slices.Equal(got, []string{"wazuh-0"}) {
			p = append(p, fmt.Sprintf("Wazuh port %d: Services reach %v, want the master wazuh-0 only", port, got))
		}
	}
	return p
}

// Only the worker reaches Pebble's HTTPS port: every pod that has one is selected by an
// ingress policy, and every rule admitting that port admits the worker's pods only.
func (m *manifests) checkPolicies(pods []pod) []string {
	var p []string
	guarded := map[string]bool{}
	for _, np := range m.policies {
		sel := selected(np.Spec.PodSelector.MatchLabels, pods)
		if len(sel) == 0 {
			p = append(p, fmt.Sprintf("NetworkPolicy %s: podSelector %v matches no pod", np.Name, np.Spec.PodSelector.MatchLabels))
			continue
		}
		if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
			continue
		}
		for _, pd := range sel {
			guarded[pd.name] = true
		}
		for i, rule := range np.Spec.Ingress {
			pebble := len(rule.Ports) == 0 // a rule without ports admits every port
			for _, rp := range rule.Ports {
				if rp.Port == nil {
					pebble = true
					continue
				}
				for _, pd := range sel {
					cp, ok := containerPort(pd.spec, *rp.Port)
					if !ok {
						p = append(p, fmt.Sprintf("NetworkPolicy %s rule %d: port %s is no container port of pod %s", np.Name, i, rp.Port.String(), pd.name))
					} else if cp.Name == pebblePortName {
						pebble = true
					}
				}
			}
			if !pebble {
				continue
			}
			if len(rule.From) == 0 {
				p = append(p, fmt.Sprintf("NetworkPolicy %s rule %d: admits Pebble's HTTPS port from anywhere", np.Name, i))
			}
			for _, peer := range rule.From {
				if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
					p = append(p, fmt.Sprintf("NetworkPolicy %s rule %d: admits Pebble's HTTPS port from other than a pod selector", np.Name, i))
					continue
				}
				for _, from := range selected(peer.PodSelector.MatchLabels, pods) {
					if from.owner != workerName {
						p = append(p, fmt.Sprintf("NetworkPolicy %s rule %d: admits Pebble's HTTPS port from %s, not only the worker", np.Name, i, from.name))
					}
				}
				if len(selected(peer.PodSelector.MatchLabels, pods)) == 0 {
					p = append(p, fmt.Sprintf("NetworkPolicy %s rule %d: its pod selector %v matches no pod", np.Name, i, peer.PodSelector.MatchLabels))
				}
			}
		}
	}
	for _, pd := range pods {
		if _, ok := containerPort(pd.spec, intstr.FromString(pebblePortName)); ok && !guarded[pd.name] {
			p = append(p, fmt.Sprintf("pod %s: its Pebble HTTPS port is selected by no ingress NetworkPolicy (open to every pod)", pd.name))
		}
	}
	return p
}

// Workload containers run Pebble itself, serving HTTPS on their pebble-https port and
// seeding socflow's identity from the operator's secret; their images are the rocks.
func (m *manifests) checkPebbleContainers() []string {
	var p []string
	for _, s := range m.statefulSets {
		c := s.Spec.Template.Spec.Containers[0]
		at := "StatefulSet " + s.Name + " container " + c.Name
		cmd := c.Command
		if len(cmd) < 2 || path.Base(cmd[0]) != "pebble" || cmd[1] != "run" {
			p = append(p, fmt.Sprintf("%s: command %q is not `pebble run`", at, cmd))
			continue
		}
		port, ok := containerPort(&corev1.PodSpec{Containers: []corev1.Container{c}}, intstr.FromString(pebblePortName))
		if i := slices.Index(cmd, "--https"); i < 0 || i+1 >= len(cmd) || !ok || !strings.HasSuffix(cmd[i+1], ":"+strconv.Itoa(int(port.ContainerPort))) {
			p = append(p, fmt.Sprintf("%s: `pebble run --https` must listen on its %s container port", at, pebblePortName))
		}
		i := slices.Index(cmd, "--identities")
		if i < 0 || i+1 >= len(cmd) || !m.mountedFrom(s.Spec.Template.Spec, c, cmd[i+1], "socflow-pebble-identities") {
			p = append(p, fmt.Sprintf("%s: `pebble run --identities` must read socflow's identity from the socflow-pebble-identities secret", at))
		}
		rock := strings.TrimSuffix(path.Base(strings.Split(c.Image, ":")[0]), "")
		if want := rockVersion(rock); want == "" || !strings.HasSuffix(c.Image, ":"+want) {
			p = append(p, fmt.Sprintf("%s: image %s, want the rock's version %q (rocks/%s)", at, c.Image, want, rock))
		}
	}
	return p
}

// mountedFrom reports whether file is a key of secret mounted into c.
func (m *manifests) mountedFrom(spec corev1.PodSpec, c corev1.Container, file, secret string) bool {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, vm.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.Secret != nil && v.Secret.SecretName == secret {
				return slices.Contains(operatorSecrets[secret], rel) || slices.ContainsFunc(v.Secret.Items, func(it corev1.KeyToPath) bool { return it.Path == rel })
			}
		}
	}
	return false
}

var rockVersionRE = regexp.MustCompile(`(?m)^version:\s*"?([^"\s]+)"?`)

// rockVersion is the version of rocks/<name>/rockcraft.yaml ("" when there is none).
func rockVersion(name string) string {
	data, err := os.ReadFile("../../rocks/" + name + "/rockcraft.yaml")
	if err != nil {
		return ""
	}
	if m := rockVersionRE.FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return ""
}

// workerEnv are the variables the worker reads: envconfig's TEMPORAL_* and socflow's
// own, each found in the source that reads it (so a renamed variable fails here).
var workerEnv = map[string]string{
	"TEMPORAL_ADDRESS":                 "envconfig",
	"TEMPORAL_NAMESPACE":               "envconfig",
	"TEMPORAL_TLS":                     "envconfig",
	"TEMPORAL_TLS_CLIENT_CERT_PATH":    "envconfig",
	"TEMPORAL_TLS_CLIENT_KEY_PATH":     "envconfig",
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "envconfig",
	"TEMPORAL_TLS_SERVER_NAME":         "envconfig",
	"SOCFLOW_TASK_QUEUE":               "../../internal/workerapp/workerapp.go",
	"SOCFLOW_CODEC_KEYS":               "../../internal/workerapp/workerapp.go",
	"SOCFLOW_SECRET_DIR":               "../../internal/workerapp/workerapp.go",
	"SOCFLOW_INFLIGHT_DIR":             "../../internal/workerapp/workerapp.go",
	"SOCFLOW_METRICS_ADDR":             "../../worker/main.go",
	"SOCFLOW_HEALTH_ADDR":              "../../worker/main.go",
	"SOCFLOW_DEPLOYMENT_NAME":          "../../internal/workerapp/workerapp.go",
	"SOCFLOW_BUILD_ID":                 "../../internal/workerapp/workerapp.go",
}

// The worker: known variables only, files under its mounts, metrics and health on the
// ports it names, probes on its own health endpoint, and no root.
func (m *manifests) checkWorker() []string {
	var p []string
	var d = func() *corev1.PodSpec {
		for _, d := range m.deployments {
			if d.Name == workerName {
				return &d.Spec.Template.Spec
			}
		}
		return nil
	}()
	if d == nil {
		return []string{"Deployment " + workerName + ": missing"}
	}
	c := d.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		src, ok := workerEnv[e.Name]
		if !ok {
			p = append(p, fmt.Sprintf("worker env %s: the worker does not read it", e.Name))
			continue
		}
		if src != "envconfig" {
			code, err := os.ReadFile(src)
			if err != nil || !strings.Contains(string(code), `"`+e.Name+`"`) {
				p = append(p, fmt.Sprintf("worker env %s: %s no longer reads it", e.Name, src))
			}
		}
		env[e.Name] = e.Value
	}
	for _, name := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "SOCFLOW_CODEC_KEYS", "SOCFLOW_SECRET_DIR", "SOCFLOW_INFLIGHT_DIR", "SOCFLOW_METRICS_ADDR", "SOCFLOW_HEALTH_ADDR", "SOCFLOW_DEPLOYMENT_NAME", "SOCFLOW_BUILD_ID"} {
		if _, ok := env[name]; !ok {
			p = append(p, "worker env "+name+": missing")
		}
	}
	// A build id that is not the image's tag names another build: a rollout would make
	// current a version whose pods run something else.
	if _, tag, _ := strings.Cut(c.Image, ":"); env["SOCFLOW_BUILD_ID"] != tag {
		p = append(p, fmt.Sprintf("worker env SOCFLOW_BUILD_ID=%q: must be the image tag %q", env["SOCFLOW_BUILD_ID"], tag))
	}
	for _, name := range []string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "SOCFLOW_CODEC_KEYS", "SOCFLOW_SECRET_DIR", "SOCFLOW_INFLIGHT_DIR"} {
		if v := env[name]; v != "" && !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return v == vm.MountPath || strings.HasPrefix(v, vm.MountPath+"/") }) {
			p = append(p, fmt.Sprintf("worker env %s=%s: no volume is mounted there", name, v))
		}
	}
	for envName, portName := range map[string]string{"SOCFLOW_METRICS_ADDR": "metrics", "SOCFLOW_HEALTH_ADDR": "health"} {
		_, port, _ := net.SplitHostPort(env[envName])
		cp, ok := containerPort(d, intstr.FromString(portName))
		if !ok || port != strconv.Itoa(int(cp.ContainerPort)) {
			p = append(p, fmt.Sprintf("worker %s=%q: must listen on the container port named %s", envName, env[envName], portName))
		}
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "health" {
			p = append(p, "worker probes: liveness must GET /healthz and readiness /readyz on port health")
		}
	}
	if sc := d.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		p = append(p, "worker: securityContext.runAsNonRoot must be true")
	}
	if c.Resources.Requests == nil || c.Resources.Limits == nil {
		p = append(p, "worker: resources requests and limits are required")
	}
	return p
}

var fileRefRE = regexp.MustCompile(`file:(/\S+)`)

// The example instance specs pass socflow's own validation, every file they name is a
// key of a secret mounted into the worker, and every pebble.url reaches a pod's
// Pebble HTTPS port through a headless Service.
func (m *manifests) checkInstances(pods []pod) []string {
	var p []string
	cm := m.configMap(instancesMap)
	if cm == nil {
		return []string{"ConfigMap " + instancesMap + ": missing"}
	}
	var worker *corev1.PodSpec
	for _, d := range m.deployments {
		if d.Name == workerName {
			worker = &d.Spec.Template.Spec
		}
	}
	if worker == nil {
		return nil
	}
	for key, load := range map[string]func([]byte) error{
		"opencti.yaml": func(b []byte) error { _, err := opencti.Load(b); return err },
		"wazuh.yaml":   func(b []byte) error { _, err := wazuh.Load(b); return err },
	} {
		spec, ok := cm.Data[key]
		if !ok {
			p = append(p, fmt.Sprintf("ConfigMap %s: no %s", instancesMap, key))
			continue
		}
		if err := load([]byte(spec)); err != nil {
			p = append(p, fmt.Sprintf("ConfigMap %s %s: %v", instancesMap, key, err))
		}
		for _, ref := range fileRefRE.FindAllStringSubmatch(spec, -1) {
			found := false
			for secret := range operatorSecrets {
				if m.mountedFrom(*worker, worker.Containers[0], ref[1], secret) {
					found = true
				}
			}
			if !found {
				p = append(p, fmt.Sprintf("%s: file:%s is no key of a secret mounted into the worker", key, ref[1]))
			}
		}
		for _, raw := range regexp.MustCompile(`url: (https://\S+)`).FindAllStringSubmatch(spec, -1) {
			u, err := url.Parse(raw[1])
			if err != nil {
				p = append(p, fmt.Sprintf("%s: %v", key, err))
				continue
			}
			host := strings.Split(u.Hostname(), ".")
			if len(host) < 2 || !strings.HasSuffix(u.Hostname(), ".svc.cluster.local") {
				continue // not a pod of these manifests (an indexer, OpenSearch…)
			}
			svc := m.service(host[1])
			if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				p = append(p, fmt.Sprintf("%s: %s: %s is no headless Service", key, raw[1], host[1]))
				continue
			}
			var target *pod
			for _, pd := range selected(svc.Spec.Selector, pods) {
				if pd.name == host[0] {
					target = &pd
				}
			}
			if target == nil {
				p = append(p, fmt.Sprintf("%s: %s: Service %s selects no pod %s", key, raw[1], host[1], host[0]))
				continue
			}
			if cp, ok := containerPort(target.spec, intstr.FromString(pebblePortName)); !ok || u.Port() != strconv.Itoa(int(cp.ContainerPort)) {
				p = append(p, fmt.Sprintf("%s: %s: not pod %s's %s port", key, raw[1], host[0], pebblePortName))
			}
		}
	}
	return p
}
