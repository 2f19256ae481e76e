package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuh"
)

// ApplyWazuhExporterInput is the instance whose exporter to run and the reference of
// the prometheus API user's password.
type ApplyWazuhExporterInput struct {
	// Instance is the defaulted, validated spec; its wazuh.exporter is set.
	Instance wazuh.Instance `json:"instance"`
	// Password refers to the prometheus API user's password
	// (ReconcileWazuhAPIUsersResult.Refs): resolved here, so the value never enters a
	// history; only the container's plan holds it.
	Password spec.SecretRef `json:"password"`
}

// ApplyWazuhExporterResult says what the apply did, without the password.
type ApplyWazuhExporterResult struct {
	// PebbleLayerChanges says whether the exporter's service was added, changed or kept.
	PebbleLayerChanges
	// Started says the exporter was (re)started by this call.
	Started bool `json:"started,omitempty"`
	// MetricsURL is where it serves its metrics.
	MetricsURL string `json:"metricsURL"`
}

// ErrTypeExporterLoginRefused: the exporter's login as user prometheus was refused, so
// it exits (the real one with KeyError: 'data'); restarting it changes nothing.
const ErrTypeExporterLoginRefused = "ExporterLoginRefused"

// wazuhExporterWindow bounds the wait for a started exporter's first good /metrics:
// the real one logs in and makes ten reads per collection, in about a second.
const wazuhExporterWindow = time.Minute

// ApplyWazuhExporter pushes the master's `prometheus` layer (the exporter, reading the
// API as user prometheus) and starts the exporter, restarting it only when its
// definition changed, so an unchanged exporter keeps running; then it waits until
// /metrics answers with Wazuh metrics. An exporter whose login is refused exits as the
// real one does; that is reported as ExporterLoginRefused with its last output.
func (a *Activities) ApplyWazuhExporter(ctx context.Context, in ApplyWazuhExporterInput) (ApplyWazuhExporterResult, error) {
	var res ApplyWazuhExporterResult
	inst := in.Instance
	if inst.Wazuh.Exporter == nil {
		return res, permanent(ErrTypeInvalidInput, fmt.Errorf("cannot run the exporter of wazuh instance %s: wazuh.exporter is not set", inst.Name))
	}
	_, ep, err := a.wazuhNode(ReadWazuhNodeInput{Instance: inst, Node: wazuh.ExporterNode})
	if err != nil {
		return res, err
	}
	password, err := a.resolve("the "+wazuh.ExporterUser+" API user's password", in.Password)
	if err != nil {
		return res, classify(err)
	}
	l, err := wazuh.ExporterPlan(inst, password)
	if err != nil {
		return res, permanent(ErrTypeInvalidInput, err)
	}
	res.MetricsURL = wazuh.ExporterMetricsURL(inst)
	res.PebbleLayerChanges, err = ep.applyLayer(ctx, pebbleLayer{label: wazuh.ExporterLayerLabel, layer: l, mask: wazuh.ExporterMask})
	if err != nil {
		return res, classify(err)
	}
	infos, err := ep.services(ctx, []string{wazuh.ExporterService})
	if err != nil {
		return res, err
	}
	active := false
	if info := infos[wazuh.ExporterService]; info != nil {
		active = info.Current == client.StatusActive
	}
	changed := len(res.Changed) > 0 || len(res.Added) > 0
	if changed && active {
		if err := ep.stopAndWait(ctx, wazuh.ExporterService); err != nil {
			return res, err
		}
		active = false
	}
	if !active {
		res.Started = true
		if err := ep.startAndWait(ctx, wazuh.ExporterService); err != nil {
			return res, ep.exporterFailure(ctx, err)
		}
	}
	var last string
	err = waitUntil(ctx, "waiting for the exporter's metrics", wazuhExporterWindow, func() (bool, error) {
		infos, err := ep.services(ctx, []string{wazuh.ExporterService})
		if err == nil {
			if info := infos[wazuh.ExporterService]; info != nil && info.Current != client.StatusActive {
				return false, ep.exporterFailure(ctx, fmt.Errorf("the exporter is %s", info.Current))
			}
		}
		ok, why := ReadExporterMetrics(ctx, res.MetricsURL)
		last = why
		return ok, nil
	}, nil)
	if err != nil {
		return res, err
	}
	if last != "" {
		return res, fmt.Errorf("cannot read the exporter's metrics at %s within %s: %s; last output: %s", res.MetricsURL, wazuhExporterWindow, last,
			ep.lastLogLines(ctx, []string{wazuh.ExporterService}, 5))
	}
	return res, nil
}

// exporterFailure names why the exporter stopped: a refused login (the real exporter's
// KeyError: 'data' from the 401 body) is permanent, anything else is retried.
func (ep pebbleEndpoint) exporterFailure(ctx context.Context, err error) error {
	out := ep.lastLogLines(ctx, []string{wazuh.ExporterService}, 8)
	if strings.Contains(out, "KeyError: 'data'") {
		return permanent(ErrTypeExporterLoginRefused, fmt.Errorf("cannot run the wazuh exporter: the API refused its login as user %s (it exits with KeyError: 'data'); the manager's users were reset or changed behind socflow: run the deploy again, which restores the stored passwords; last output: %s",
			wazuh.ExporterUser, out))
	}
	return fmt.Errorf("cannot run the wazuh exporter: %w; last output: %s", err, out)
}

// stopAndWait stops one service and waits for the change.
func (ep pebbleEndpoint) stopAndWait(ctx context.Context, name string) error {
	return ep.call(ctx, func(pc *client.Client) error {
		id, err := pc.Stop(&client.ServiceOptions{Names: []string{name}})
		if err != nil {
			return pebbleError("cannot stop "+name, err)
		}
		ch, err := pc.WaitChange(id, &client.WaitChangeOptions{Timeout: PebbleCallTimeout - time.Second})
		if err != nil {
			return fmt.Errorf("cannot wait for the stop of %s: %w", name, err)
		}
		if ch.Err != "" {
			return errors.New("cannot stop " + name + ": " + ch.Err)
		}
		return nil
	})
}

// ReadExporterMetrics reads an exporter's /metrics once: ok when it answers 200 with
// the Wazuh API's info metric, else why not (the real exporter answers 500 when its
// login fails).
func ReadExporterMetrics(ctx context.Context, url string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "not answering: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("answered HTTP %d (%s)", resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 120)])))
	}
	if !slices.ContainsFunc(strings.Split(string(body), "\n"), func(l string) bool { return strings.HasPrefix(l, "wazuh_api_info{") }) {
		return false, "answered without wazuh_api_info: it has not read the API"
	}
	return true, ""
}
