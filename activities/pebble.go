package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/canonical/pebble/client"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/plan"
	"github.com/socflow/socflow/internal/spec"
)

// PebbleCallTimeout bounds one Pebble API call: Pebble's convenience methods ignore the
// context, and a hung API must cost an attempt, not the deploy (the charm raised its
// client timeout to 60 s after such hangs).
const PebbleCallTimeout = 30 * time.Second

// InstanceSecrets are the references of the secrets socflow generates per instance (or
// takes from the spec); workflows carry only these references, never the values.
type InstanceSecrets struct {
	// AdminToken refers to the admin API token (a UUIDv4).
	AdminToken spec.SecretRef `json:"adminToken"`
	// HealthAccessKey refers to the key of the /health endpoint.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
	// EncryptionKey refers to APP__ENCRYPTION_KEY (mandatory from OpenCTI 7).
	EncryptionKey spec.SecretRef `json:"encryptionKey"`
}

// ApplyOpenCTIPlanInput is the validated instance and its secret references.
type ApplyOpenCTIPlanInput struct {
	// Instance is the defaulted, validated spec.
	Instance spec.Instance `json:"instance"`
	// Secrets are the instance's generated-secret references.
	Secrets InstanceSecrets `json:"secrets"`
}

// ApplyOpenCTIPlanResult says what was pushed, without any secret value.
type ApplyOpenCTIPlanResult struct {
	// Services are the services of the layer, platform first.
	Services []string `json:"services"`
	// Files are the paths pushed into the container.
	Files []string `json:"files,omitempty"`
	// PlatformDigest identifies the platform definition that was applied; the
	// platform wait compares it with what the running platform was started from.
	PlatformDigest string `json:"platformDigest,omitempty"`
}

// ApplyOpenCTIPlan resolves the secrets, computes the OpenCTI plan and pushes its files and
// layer (combined under the "opencti" label) into the workload container's Pebble. It
// starts nothing: a changed layer takes effect when services are started, so re-applying
// never restarts a running platform behind the workflow's back.
func (a *Activities) ApplyOpenCTIPlan(ctx context.Context, in ApplyOpenCTIPlanInput) (ApplyOpenCTIPlanResult, error) {
	ep, err := a.pebble(in.Instance.Pebble)
	if err != nil {
		return ApplyOpenCTIPlanResult{}, classify(err)
	}
	in2, err := a.planInput(in.Instance, in.Secrets)
	if err != nil {
		return ApplyOpenCTIPlanResult{}, classify(err)
	}
	p, err := plan.OpenCTI(in2)
	if err != nil {
		return ApplyOpenCTIPlanResult{}, permanent(ErrTypeInvalidInput, err)
	}
	layer, err := p.Layer.YAML()
	if err != nil {
		return ApplyOpenCTIPlanResult{}, permanent(ErrTypeInvalidInput, fmt.Errorf("cannot render the opencti layer: %w", err))
	}
	res := ApplyOpenCTIPlanResult{Services: append([]string{plan.PlatformService}, plan.WorkerServices(*in.Instance.OpenCTI.Workers)...),
		PlatformDigest: p.PlatformDigest}
	// Before anything changes: a container belongs to one instance, and replacing
	// another instance's layer would make its platform boot as this one.
	if err := ep.ensureOwner(ctx, in.Instance); err != nil {
		return res, classify(err)
	}
	for _, d := range p.Dirs {
		err := ep.call(ctx, func(pc *client.Client) error {
			return pc.MakeDir(&client.MakeDirOptions{Path: d.Path, MakeParents: true, Permissions: d.Perm})
		})
		if err != nil && !isExists(err) {
			return res, classify(pebbleError("cannot create "+d.Path+" in the container", err))
		}
	}
	for _, f := range append(p.Files, ownerMarker(in.Instance)) {
		err := ep.call(ctx, func(pc *client.Client) error {
			return pc.Push(&client.PushOptions{Source: bytes.NewReader(f.Content), Path: f.Path, MakeDirs: true, Permissions: f.Perm})
		})
		if err != nil {
			return res, classify(pebbleError("cannot push "+f.Path+" into the container", err))
		}
		res.Files = append(res.Files, f.Path)
	}
	err = ep.call(ctx, func(pc *client.Client) error {
		return pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: plan.LayerLabel, LayerData: layer})
	})
	if err != nil {
		return res, classify(pebbleError("cannot add the opencti layer", err))
	}
	return res, nil
}

// ownerMarker is the file that records, inside the container, which instance owns
// it; the layer's SOCFLOW_INSTANCE says the same to `pebble plan` readers.
func ownerMarker(inst spec.Instance) plan.File {
	return plan.File{Path: ownerMarkerPath(inst), Content: []byte(inst.Name + "\n"), Perm: 0o644}
}

func ownerMarkerPath(inst spec.Instance) string {
	return path.Join(inst.OpenCTI.PlatformDir, ".socflow-instance")
}

// ensureOwner refuses a container whose plan or marker belongs to another
// instance, naming both and the endpoint; a container with nothing of socflow in
// it, or with this instance's plan, is fine.
func (ep pebbleEndpoint) ensureOwner(ctx context.Context, inst spec.Instance) error {
	var raw []byte
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		raw, err = pc.PlanBytes(&client.PlanOptions{})
		return err
	})
	if err != nil {
		return pebbleError("cannot read the container's plan", err)
	}
	var current plan.Layer
	if err := yaml.Unmarshal(raw, &current); err != nil {
		return fmt.Errorf("cannot parse the container's plan: %w", err)
	}
	owners := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(current.Services)) {
		if o := serviceOwner(name, current.Services[name]); o != "" && o != inst.Name {
			owners[o] = append(owners[o], name)
		}
	}
	var marker bytes.Buffer
	err = ep.call(ctx, func(pc *client.Client) error {
		marker.Reset()
		return pc.Pull(&client.PullOptions{Path: ownerMarkerPath(inst), Target: &marker})
	})
	if o := strings.TrimSpace(marker.String()); err == nil && o != "" && o != inst.Name {
		owners[o] = append(owners[o], ownerMarkerPath(inst))
	}
	if len(owners) == 0 {
		return nil
	}
	var parts []string
	for _, o := range slices.Sorted(maps.Keys(owners)) {
		parts = append(parts, fmt.Sprintf("instance %s (%s)", o, strings.Join(owners[o], ", ")))
	}
	first := slices.Sorted(maps.Keys(owners))[0]
	return &errPermanent{ErrTypeContainerOwned, fmt.Errorf("cannot deploy %s into the container at %s: it runs %s; give %s its own container, or remove %s first",
		inst.Name, ep.address(), strings.Join(parts, " and "), inst.Name, first)}
}

// serviceOwner is the instance a service of a container's plan belongs to: its
// SOCFLOW_INSTANCE, or for a platform planned before socflow set that, its index
// prefix (which socflow always set to the instance name).
func serviceOwner(name string, svc plan.Service) string {
	if o := svc.Environment[plan.InstanceEnv]; o != "" {
		return o
	}
	if name == plan.PlatformService {
		return svc.Environment["ELASTICSEARCH__INDEX_PREFIX"]
	}
	return ""
}

// address names the endpoint for operators: its socket path or URL.
func (ep pebbleEndpoint) address() string {
	if ep.spec.URL != "" {
		return ep.spec.URL
	}
	return ep.spec.Socket
}

// isExists reports Pebble's answer to creating a directory that is already there.
func isExists(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Kind == "generic-file-error" && strings.Contains(ce.Message, "file exists")
}

// AddOpenCTIReadyCheckInput names the instance whose ready-level health check to add.
type AddOpenCTIReadyCheckInput struct {
	// Instance is the defaulted, validated spec.
	Instance spec.Instance `json:"instance"`
	// HealthAccessKey refers to the key the check URL carries.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
}

// AddOpenCTIReadyCheck adds the ready-level HTTP check on the platform's health URL,
// only once the platform is healthy (as the charm does), so Pebble's view of readiness
// starts true rather than flapping through first boot.
func (a *Activities) AddOpenCTIReadyCheck(ctx context.Context, in AddOpenCTIReadyCheckInput) error {
	ep, err := a.pebble(in.Instance.Pebble)
	if err != nil {
		return classify(err)
	}
	key, err := a.resolve("opencti.healthAccessKey", in.HealthAccessKey)
	if err != nil {
		return classify(err)
	}
	layer, err := plan.ReadyCheck(plan.Input{Instance: in.Instance, Secrets: plan.Secrets{HealthAccessKey: key}}).YAML()
	if err != nil {
		return permanent(ErrTypeInvalidInput, fmt.Errorf("cannot render the health check layer: %w", err))
	}
	err = ep.call(ctx, func(pc *client.Client) error {
		return pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: plan.LayerLabel, LayerData: layer})
	})
	return classify(pebbleError("cannot add the platform health check", err))
}

// StartPebbleServicesInput names the services to start in one container.
type StartPebbleServicesInput struct {
	// Pebble is the workload container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// Services are started in one change; Pebble honours their after/requires order.
	Services []string `json:"services"`
	// Watched says the caller watches the services after the start (the platform
	// wait reads its exits and their causes), so a service that exits at once and
	// that Pebble is restarting is reported in Restarting instead of failing the
	// start, and a retry leaves it to Pebble's backoff.
	Watched bool `json:"watched,omitempty"`
}

// StartPebbleServicesResult tells what this call started and what already ran.
type StartPebbleServicesResult struct {
	// Started are the services this call started.
	Started []string `json:"started,omitempty"`
	// AlreadyActive were running already and were left alone.
	AlreadyActive []string `json:"alreadyActive,omitempty"`
	// Restarting exited at once and Pebble restarts them (Watched only).
	Restarting []string `json:"restarting,omitempty"`
}

// StartPebbleServices starts the inactive ones of the given services and waits for the
// change. Active services are left alone: a retry after a crash must never restart a
// platform that may be initialising (killing it mid-init corrupts its indices).
func (a *Activities) StartPebbleServices(ctx context.Context, in StartPebbleServicesInput) (StartPebbleServicesResult, error) {
	var res StartPebbleServicesResult
	ep, infos, err := a.serviceStates(ctx, "start", in.Pebble, in.Services)
	if err != nil {
		return res, err
	}
	for _, name := range in.Services {
		info, ok := infos[name]
		switch {
		case !ok:
			return res, permanent(ErrTypeInvalidInput, fmt.Errorf("cannot start %s: no such service in the container's plan", name))
		case info.Current == client.StatusActive:
			res.AlreadyActive = append(res.AlreadyActive, name)
		case info.Current == client.StatusBackoff && in.Watched:
			res.Restarting = append(res.Restarting, name)
		default:
			res.Started = append(res.Started, name)
		}
	}
	if len(res.Started) == 0 {
		return res, nil
	}
	// One change per service, started together: Pebble confirms each start by watching
	// the process for a second, and in one change it does so service after service.
	type outcome struct {
		name string
		err  error
	}
	errs := make(chan outcome, len(res.Started))
	for _, name := range res.Started {
		go func() { errs <- outcome{name, ep.startAndWait(ctx, name)} }()
	}
	var failed []error
	var restarting []string
	for range res.Started {
		o := <-errs
		switch {
		case o.err == nil:
		case in.Watched && errors.Is(o.err, errExitedAtOnce):
			restarting = append(restarting, o.name)
		default:
			failed = append(failed, o.err)
		}
	}
	if len(restarting) > 0 {
		res.Started = slices.DeleteFunc(res.Started, func(n string) bool { return slices.Contains(restarting, n) })
		res.Restarting = append(res.Restarting, restarting...)
		slices.Sort(res.Restarting)
	}
	if len(failed) > 0 {
		return res, classify(errors.Join(failed...))
	}
	return res, nil
}

// StopPebbleServicesInput names the services to stop in one container.
type StopPebbleServicesInput struct {
	// Pebble is the workload container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// Services are stopped together; Pebble stops dependants first.
	Services []string `json:"services"`
}

// StopPebbleServicesResult tells what this call stopped.
type StopPebbleServicesResult struct {
	// Stopped were running (or restarting) and are stopped now.
	Stopped []string `json:"stopped,omitempty"`
	// AlreadyStopped were not running.
	AlreadyStopped []string `json:"alreadyStopped,omitempty"`
}

// StopPebbleServices stops the named services and waits until Pebble reports them
// stopped: SIGTERM to each service's process group, then SIGKILL after the
// service's kill-delay, so a stop that hangs is bounded. Stopped services are left
// alone, so a retry is harmless.
func (a *Activities) StopPebbleServices(ctx context.Context, in StopPebbleServicesInput) (StopPebbleServicesResult, error) {
	var res StopPebbleServicesResult
	ep, infos, err := a.serviceStates(ctx, "stop", in.Pebble, in.Services)
	if err != nil {
		return res, err
	}
	for _, name := range in.Services {
		switch info := infos[name]; {
		case info == nil:
			res.AlreadyStopped = append(res.AlreadyStopped, name)
		case info.Current == client.StatusActive || info.Current == client.StatusBackoff:
			res.Stopped = append(res.Stopped, name)
		default:
			res.AlreadyStopped = append(res.AlreadyStopped, name)
		}
	}
	if len(res.Stopped) == 0 {
		return res, nil
	}
	var changeID string
	err = ep.call(ctx, func(pc *client.Client) (err error) {
		changeID, err = pc.Stop(&client.ServiceOptions{Names: res.Stopped})
		return err
	})
	if err != nil {
		return res, classify(pebbleError("cannot stop "+strings.Join(res.Stopped, ", "), err))
	}
	// Pebble finishes the change after the kill-delay and its own grace at most;
	// wait in slices so each call stays inside PebbleCallTimeout.
	for {
		var change *client.Change
		err = ep.call(ctx, func(pc *client.Client) (err error) {
			change, err = pc.WaitChange(changeID, &client.WaitChangeOptions{Timeout: PebbleCallTimeout / 3})
			return err
		})
		if err == nil && change.Ready {
			if change.Err != "" {
				return res, fmt.Errorf("cannot stop %s: %s", strings.Join(res.Stopped, ", "), change.Err)
			}
			return res, nil
		}
		if err != nil && !isWaitTimeout(err) {
			return res, classify(fmt.Errorf("cannot wait for the stop of %s: %w", strings.Join(res.Stopped, ", "), err))
		}
		recordHeartbeat(ctx, "stopping "+strings.Join(res.Stopped, ", "))
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
}

// serviceStates opens the endpoint and reads the state of the services a start or a
// stop is asked for; its errors are classified, ready to return.
func (a *Activities) serviceStates(ctx context.Context, verb string, p spec.Pebble, names []string) (pebbleEndpoint, map[string]*client.ServiceInfo, error) {
	if len(names) == 0 {
		return pebbleEndpoint{}, nil, permanent(ErrTypeInvalidInput, errors.New("cannot "+verb+" services: none named"))
	}
	ep, err := a.pebble(p)
	if err != nil {
		return ep, nil, classify(err)
	}
	infos, err := ep.services(ctx, names)
	if err != nil {
		return ep, nil, classify(err)
	}
	return ep, infos, nil
}

// isWaitTimeout is Pebble's answer to a change wait that ran out before the change.
func isWaitTimeout(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && strings.Contains(ce.Message, "timed out waiting for change")
}

// startAndWait starts one service and waits for Pebble to confirm it stayed up; a
// failed start carries the service's last output, which usually says why.
func (ep pebbleEndpoint) startAndWait(ctx context.Context, name string) error {
	var changeID string
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		changeID, err = pc.Start(&client.ServiceOptions{Names: []string{name}})
		return err
	})
	if err != nil {
		return pebbleError("cannot start "+name, err)
	}
	var change *client.Change
	err = ep.call(ctx, func(pc *client.Client) (err error) {
		change, err = pc.WaitChange(changeID, &client.WaitChangeOptions{Timeout: PebbleCallTimeout - time.Second})
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot wait for the start of %s: %w", name, err)
	}
	if change.Err != "" {
		err := fmt.Errorf("cannot start %s: %s; last output: %s", name, change.Err, ep.lastLogLines(ctx, []string{name}, 5))
		if strings.Contains(change.Err, "exited quickly") && strings.Contains(change.Err, "will restart") {
			return fmt.Errorf("%w: %w", errExitedAtOnce, err)
		}
		return err
	}
	return nil
}

// errExitedAtOnce marks a start whose process exited within Pebble's okay delay and
// that Pebble will restart ("exited quickly with code 1, will restart").
var errExitedAtOnce = errors.New("exited at once, pebble restarts it")

// pebbleEndpoint is a workload container's Pebble, ready to dial: the spec's endpoint
// and, for HTTPS, its pinned server identity and socflow's client identity, resolved
// and parsed once per activity so a bad certificate fails before any call.
type pebbleEndpoint struct {
	spec       spec.Pebble
	serverCert *x509.Certificate // the pinned identity certificate (HTTPS only)
	clientCert *tls.Certificate  // socflow's identity (HTTPS only)
	clientID   string            // the client identity, named in refusals
}

// pebble resolves the endpoint's secret references through the worker's secret store.
// Unreadable or malformed certificates are permanent faults naming the field.
func (a *Activities) pebble(p spec.Pebble) (pebbleEndpoint, error) {
	ep := pebbleEndpoint{spec: p}
	if p.URL == "" {
		return ep, nil
	}
	pems := map[string]string{}
	for _, r := range []struct {
		field string
		ref   spec.SecretRef
	}{{"pebble.serverCert", p.ServerCert}, {"pebble.clientCert", p.ClientCert}, {"pebble.clientKey", p.ClientKey}} {
		if r.ref.IsZero() {
			return ep, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("%s: is required with pebble.url %s", r.field, p.URL)}
		}
		v, err := a.resolve(r.field, r.ref)
		if err != nil {
			return ep, err
		}
		pems[r.field] = v
	}
	server, err := parseCertPEM("pebble.serverCert", pems["pebble.serverCert"])
	if err != nil {
		return ep, err
	}
	if !server.IsCA {
		return ep, &errPermanent{ErrTypeInvalidInput, errors.New("pebble.serverCert: is not a CA certificate: " +
			"pin the server's identity certificate ($PEBBLE/tls/identity.pem), not its short-lived TLS certificate")}
	}
	cc, err := parseCertPEM("pebble.clientCert", pems["pebble.clientCert"])
	if err != nil {
		return ep, err
	}
	if !usableForClientAuth(cc) {
		return ep, &errPermanent{ErrTypeInvalidInput, errors.New("pebble.clientCert: its extended key usage does not include " +
			"clientAuth, so Pebble would refuse it as an identity: issue it with extendedKeyUsage=clientAuth")}
	}
	if now := time.Now(); now.After(cc.NotAfter) || now.Before(cc.NotBefore) {
		return ep, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("pebble.clientCert: is valid only from %s to %s: issue a new one and register it with pebble update-identities",
			cc.NotBefore.UTC().Format(time.RFC3339), cc.NotAfter.UTC().Format(time.RFC3339))}
	}
	pair, err := tls.X509KeyPair([]byte(pems["pebble.clientCert"]), []byte(pems["pebble.clientKey"]))
	if err != nil {
		return ep, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("pebble.clientKey: is not the PEM private key of pebble.clientCert: %v", err)}
	}
	ep.serverCert, ep.clientCert, ep.clientID = server, &pair, identityName(cc)
	return ep, nil
}

// parseCertPEM parses the first PEM CERTIFICATE block of v.
func parseCertPEM(field, v string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(v))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, &errPermanent{ErrTypeInvalidInput, errors.New(field + ": is not a PEM CERTIFICATE block")}
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("%s: cannot parse the certificate: %v", field, err)}
	}
	return c, nil
}

// usableForClientAuth mirrors the check Pebble makes of a cert identity.
func usableForClientAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// identityName names a client certificate for operators: its subject and the start of
// its SHA-256 fingerprint (what `openssl x509 -fingerprint -sha256` prints).
func identityName(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("%q (SHA-256 %s…)", c.Subject.String(), strings.ToUpper(hex.EncodeToString(sum[:8])))
}

// client opens a client for the container's Pebble: the one place socflow builds one.
// Over HTTPS the server must present a TLS certificate signed by the pinned identity
// certificate (Pebble's TLSServerIDCert; the fingerprint option is meant for pairing
// only), and socflow presents its client identity.
func (ep pebbleEndpoint) client() (*client.Client, error) {
	cfg := &client.Config{Socket: ep.spec.Socket, UserAgent: "socflow"}
	if ep.spec.URL != "" {
		cfg = &client.Config{BaseURL: ep.spec.URL, UserAgent: "socflow",
			TLSServerIDCert: ep.serverCert, TLSClientIDCert: ep.clientCert}
	}
	pc, err := client.New(cfg)
	if err != nil {
		return nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("cannot create a pebble client for %s%s: %w", ep.spec.Socket, ep.spec.URL, err)}
	}
	return pc, nil
}

// call runs one Pebble call on a client of its own, bounded by PebbleCallTimeout and
// ctx. Pebble's client methods take no context, so a call runs aside and is abandoned
// on timeout; and its client is not safe for concurrent use (each request writes
// unguarded fields), so no two calls — an abandoned one included — share one.
func (ep pebbleEndpoint) call(ctx context.Context, call func(pc *client.Client) error) error {
	pc, err := ep.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, PebbleCallTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(pc) }()
	select {
	case err := <-done:
		return ep.refusal(err)
	case <-ctx.Done():
		return fmt.Errorf("pebble API did not answer: %w", ctx.Err())
	}
}

// refusal makes the HTTPS refusals permanent, naming the setting to fix: a server that
// does not present the pinned identity, and a client identity the server does not know.
// Anything else (refused connections, timeouts) is returned as it is, retryable.
func (ep pebbleEndpoint) refusal(err error) error {
	if err == nil || ep.spec.URL == "" {
		return err
	}
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &invalid) {
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("pebble.serverCert: the server at %s does not present the pinned identity "+
			"(%v): pin that Pebble's $PEBBLE/tls/identity.pem, or check pebble.url points at the right Pebble", ep.spec.URL, err)}
	}
	var ce *client.Error
	if errors.As(err, &ce) && (ce.StatusCode == 401 || ce.StatusCode == 403) {
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("pebble.clientCert: the Pebble at %s refuses client identity %s (HTTP %d: %v): "+
			"register it there with `pebble add-identities` as type cert with access admin", ep.spec.URL, ep.clientID, ce.StatusCode, err)}
	}
	return err
}

// pebbleError classifies Pebble's answers: a 4xx other than a transient one means the
// request itself is wrong (bad layer, unknown service) and retrying will not fix it.
// Errors already permanent keep their type.
func pebbleError(what string, err error) error {
	if err == nil {
		return nil
	}
	var perm *errPermanent
	if errors.As(err, &perm) {
		return &errPermanent{perm.errType, fmt.Errorf("%s: %w", what, err)}
	}
	var ce *client.Error
	if errors.As(err, &ce) && ce.StatusCode >= 400 && ce.StatusCode < 500 && ce.StatusCode != 408 && ce.StatusCode != 429 {
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("%s: pebble refused it: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// services reads the state of the named services.
func (ep pebbleEndpoint) services(ctx context.Context, names []string) (map[string]*client.ServiceInfo, error) {
	var infos []*client.ServiceInfo
	err := ep.call(ctx, func(pc *client.Client) (err error) {
		infos, err = pc.Services(&client.ServicesOptions{Names: names})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read service status from pebble: %w", err)
	}
	m := make(map[string]*client.ServiceInfo, len(infos))
	for _, i := range infos {
		m[i.Name] = i
	}
	return m, nil
}

// logs returns up to n of the services' last log entries, oldest first.
func (ep pebbleEndpoint) logs(ctx context.Context, services []string, n int) ([]client.LogEntry, error) {
	var entries []client.LogEntry
	err := ep.call(ctx, func(pc *client.Client) error {
		return pc.Logs(&client.LogsOptions{Services: services, N: n, WriteLog: func(e client.LogEntry) error {
			entries = append(entries, e)
			return nil
		}})
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read service logs from pebble: %w", err)
	}
	return entries, nil
}

// lastLogLines returns the services' last n log lines, one string, for error reasons
// that tell the operator what the process said before it died.
func (ep pebbleEndpoint) lastLogLines(ctx context.Context, services []string, n int) string {
	entries, err := ep.logs(ctx, services, n)
	if err != nil || len(entries) == 0 {
		return "(no output)"
	}
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		lines = append(lines, e.Service+": "+strings.TrimSpace(e.Message))
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// planInput resolves every secret the plan needs; the values never leave the activity.
func (a *Activities) planInput(inst spec.Instance, s InstanceSecrets) (plan.Input, error) {
	in := plan.Input{Instance: inst}
	type ref struct {
		field string
		ref   spec.SecretRef
		dst   *string
	}
	refs := []ref{
		{"opencti.adminPassword", inst.OpenCTI.AdminPassword, &in.Secrets.AdminPassword},
		{"opencti.adminToken", s.AdminToken, &in.Secrets.AdminToken},
		{"opencti.healthAccessKey", s.HealthAccessKey, &in.Secrets.HealthAccessKey},
		{"opencti.encryptionKey", s.EncryptionKey, &in.Secrets.EncryptionKey},
	}
	if os := inst.Integrations.OpenSearch; os != nil {
		refs = append(refs, ref{"integrations.opensearch.password", os.Password, &in.Secrets.OpenSearchPassword},
			ref{"integrations.opensearch.ca", os.CA, &in.Secrets.OpenSearchCA})
	}
	if r := inst.Integrations.RabbitMQ; r != nil {
		refs = append(refs, ref{"integrations.rabbitmq.password", r.Password, &in.Secrets.RabbitMQPassword})
	}
	if r := inst.Integrations.Redis; r != nil {
		refs = append(refs, ref{"integrations.redis.password", r.Password, &in.Secrets.RedisPassword})
	}
	if s3 := inst.Integrations.S3; s3 != nil {
		refs = append(refs, ref{"integrations.s3.accessKey", s3.AccessKey, &in.Secrets.S3AccessKey},
			ref{"integrations.s3.secretKey", s3.SecretKey, &in.Secrets.S3SecretKey})
	}
	for _, r := range refs {
		if r.ref.IsZero() {
			continue
		}
		v, err := a.resolve(r.field, r.ref)
		if err != nil {
			return plan.Input{}, err
		}
		*r.dst = v
	}
	return in, nil
}

// activeOrNot reports whether a service is active and, if not, a reason naming its state.
func activeOrNot(info *client.ServiceInfo) (bool, string) {
	if info == nil {
		return false, "not in the container's plan"
	}
	if info.Current == client.StatusActive {
		return true, ""
	}
	return false, fmt.Sprintf("%s since %s", info.Current, info.CurrentSince.UTC().Format(time.RFC3339))
}
