package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// changeArgs is what a change command was asked to do.
type changeArgs struct {
	// args are the positional arguments (instance name first).
	args []string
	// values are the key=value arguments, values typed (parseValue).
	values map[string]any
	// file is -f's path ("" when not given).
	file      string
	signal    bool
	requestID string
}

// parseChangeArgs reads `NAME [positional…] [key=value…] [-f FILE] [--signal]
// [--request-id ID]`, wanting npos positional arguments (or, when npos < 0, one or
// more). Values are sent as
// given: the workflow's validator is the one judge of a change, so the starter, tctl
// and temporal get the same field-named errors.
func parseChangeArgs(args []string, npos int, use string) (changeArgs, error) {
	ca := changeArgs{values: map[string]any{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		flagValue := func(flag string) (string, error) {
			if v, ok := strings.CutPrefix(strings.TrimLeft(arg, "-"), flag+"="); ok {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("-%s needs a value\n%s", flag, use)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name := strings.TrimLeft(arg, "-"); {
		case arg == "--signal" || arg == "-signal":
			ca.signal = true
		case strings.HasPrefix(arg, "-") && strings.HasPrefix(name, "request-id"):
			ca.requestID, err = flagValue("request-id")
		case strings.HasPrefix(arg, "-") && (name == "f" || strings.HasPrefix(name, "f=")):
			ca.file, err = flagValue("f")
		case strings.HasPrefix(arg, "-"):
			return ca, fmt.Errorf("unknown flag %s\n%s", arg, use)
		case strings.Contains(arg, "="):
			k, v, _ := strings.Cut(arg, "=")
			if k == "" {
				return ca, fmt.Errorf("%q is not key=value\n%s", arg, use)
			}
			ca.values[k] = parseValue(k, v)
		default:
			ca.args = append(ca.args, arg)
		}
		if err != nil {
			return ca, err
		}
	}
	if npos >= 0 && len(ca.args) != npos || len(ca.args) == 0 {
		return ca, errors.New(use)
	}
	if ca.requestID == "" {
		ca.requestID = uuid.NewString()
	}
	return ca, nil
}

// parseValue types a key=value value as JSON would carry it: a whole number, true or
// false, a comma-separated list for the list fields (urls, allowMissingModules), else
// a string.
func parseValue(key, v string) any {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
		return b
	}
	if key == "urls" || key == "allowMissingModules" {
		return strings.Split(v, ",")
	}
	return v
}

const (
	configUse   = "usage: starter config set NAME key=value... [--signal] [--request-id ID]   (keys: workers, logLevel, publicURL, basePath, adminEmail)"
	relateUse   = "usage: starter relate NAME INTEGRATION key=value... | starter relate NAME -f integrations.yaml   [--signal] [--request-id ID]"
	unrelateUse = "usage: starter unrelate NAME INTEGRATION [--signal] [--request-id ID]   (INTEGRATION: opensearch, rabbitmq, redis, s3)"
	rotateUse   = "usage: starter rotate NAME SECRET [--signal] [--request-id ID]   (SECRET: its spec field, e.g. opencti.adminToken)"
	upgradeUse  = "usage: starter upgrade NAME VERSION [platformCommand=…] [workerCommand=…] [connector.NAME=command…] [--check] [--signal] [--request-id ID]"
)

// cmdUpgrade sends Upgrade: the target version and the commands of that version
// (--check: only the pre-flight, which changes nothing).
func cmdUpgrade(ctx context.Context, args []string, out io.Writer) error {
	check := false
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
		if a == "--check" || a == "-check" {
			check = true
			return true
		}
		return false
	})
	ca, err := parseChangeArgs(args, 2, upgradeUse)
	if err != nil {
		return err
	}
	req := map[string]any{"targetVersion": ca.args[1]}
	if check {
		req["check"] = true
	}
	connectors := map[string]any{}
	for k, v := range ca.values {
		switch name, ok := strings.CutPrefix(k, "connector."); {
		case ok:
			connectors[name] = fmt.Sprint(v)
		case k == "platformCommand" || k == "workerCommand":
			req[k] = fmt.Sprint(v)
		default:
			return fmt.Errorf("%s is not a setting of an upgrade\n%s", k, upgradeUse)
		}
	}
	if len(connectors) > 0 {
		req["connectorCommands"] = connectors
	}
	return sendChange(ctx, out, ca, workflows.UpgradeUpdate, req)
}

// cmdConfig sends SetConfig: `config set NAME key=value…`.
func cmdConfig(ctx context.Context, args []string, out io.Writer) error {
	if len(args) < 1 || args[0] != "set" {
		return errors.New(configUse)
	}
	ca, err := parseChangeArgs(args[1:], 1, configUse)
	if err != nil {
		return err
	}
	if len(ca.values) == 0 {
		return errors.New(configUse)
	}
	return sendChange(ctx, out, ca, workflows.SetConfigUpdate, ca.values)
}

// cmdRelate sends SetIntegration: one integration's section from key=value pairs, or
// sections from a YAML/JSON file written like the spec's integrations.
func cmdRelate(ctx context.Context, args []string, out io.Writer) error {
	ca, err := parseChangeArgs(args, -1, relateUse)
	if err != nil {
		return err
	}
	req := map[string]any{}
	switch {
	case ca.file != "" && len(ca.args) == 1 && len(ca.values) == 0:
		data, err := os.ReadFile(ca.file)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", ca.file, err)
		}
		if err := yaml.Unmarshal(data, &req); err != nil {
			return fmt.Errorf("cannot parse %s: %w", ca.file, err)
		}
	case ca.file == "" && len(ca.args) == 2 && len(ca.values) > 0:
		req[ca.args[1]] = ca.values
	default:
		return errors.New(relateUse)
	}
	return sendChange(ctx, out, ca, workflows.SetIntegrationUpdate, req)
}

// cmdUnrelate sends RemoveIntegration.
func cmdUnrelate(ctx context.Context, args []string, out io.Writer) error {
	ca, err := parseChangeArgs(args, 2, unrelateUse)
	if err != nil {
		return err
	}
	return sendChange(ctx, out, ca, workflows.RemoveIntegrationUpdate, map[string]any{"integration": ca.args[1]})
}

// cmdRotate sends RotateSecret.
func cmdRotate(ctx context.Context, args []string, out io.Writer) error {
	ca, err := parseChangeArgs(args, 2, rotateUse)
	if err != nil {
		return err
	}
	return sendChange(ctx, out, ca, workflows.RotateSecretUpdate, map[string]any{"secret": ca.args[1]})
}

// sendChange previews a change, then sends it to the instance's workflow as an Update
// (the result comes back, or the rejection) or, with --signal, as its Signal twin (then
// it follows the instance's status until the change is applied or rejected).
func sendChange(ctx context.Context, out io.Writer, ca changeArgs, name string, req map[string]any) error {
	req["requestId"] = ca.requestID
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.InstanceWorkflowID(ca.args[0])
	fmt.Fprintf(out, "%s %s on %s (request %s)\n", name, describeChange(req), id, ca.requestID)
	if p, err := queryPreview(ctx, c, id, name, req); err == nil && p.Invalid == "" {
		printPreview(out, p)
	}
	if ca.signal {
		return signalChange(ctx, c, id, name, ca.requestID, req, out)
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateID: ca.requestID, UpdateName: name,
		Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var res workflows.ChangeResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return fmt.Errorf("%s on %s not applied: %s", name, id, workflows.ErrorReason(err))
	}
	printChangeResult(out, res)
	return nil
}

// queryPreview asks the instance what a change would do.
func queryPreview(ctx context.Context, c client.Client, id, name string, req any) (workflows.Preview, error) {
	var p workflows.Preview
	body, err := json.Marshal(req)
	if err != nil {
		return p, err
	}
	key := map[string]string{workflows.SetConfigUpdate: "setConfig", workflows.SetIntegrationUpdate: "setIntegration",
		workflows.RemoveIntegrationUpdate: "removeIntegration", workflows.RotateSecretUpdate: "rotateSecret", workflows.ApplySpecUpdate: "applySpec",
		workflows.AddConnectorUpdate: "addConnector", workflows.RemoveConnectorUpdate: "removeConnector", workflows.UpgradeUpdate: "upgrade"}[name]
	v, err := c.QueryWorkflow(ctx, id, "", workflows.PreviewQuery, map[string]json.RawMessage{key: body})
	if err != nil {
		return p, err
	}
	return p, v.Get(&p)
}

// signalChange sends the Signal and waits until the instance's status lists the
// request as applied, failed or rejected.
func signalChange(ctx context.Context, c client.Client, id, name, requestID string, req any, out io.Writer) error {
	if err := c.SignalWorkflow(ctx, id, "", name, req); err != nil {
		return fmt.Errorf("cannot signal %s: %w", id, err)
	}
	fmt.Fprintln(out, "signal sent; waiting for the instance to apply it")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var st workflows.InstanceStatus
		if v, err := c.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil && v.Get(&st) == nil {
			for _, o := range st.Recent {
				if o.RequestID != requestID {
					continue
				}
				if o.State != "applied" {
					return fmt.Errorf("%s on %s %s: %s", name, id, o.State, o.Summary)
				}
				fmt.Fprintf(out, "applied %s: %s\n", o.RequestID, o.Summary)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting (the change stays queued in %s): %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// describeChange is the change's request on one line, keys sorted, requestId left out;
// nested sections are shown as JSON.
func describeChange(req map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(req)) {
		if k == "requestId" {
			continue
		}
		v := req[k]
		if cn, ok := v.(map[string]any); ok && k == "connector" {
			// Its name and type say which; its config often holds a source's API key.
			parts = append(parts, fmt.Sprintf("connector=%v (%v)", cn["name"], cn["type"]))
			continue
		}
		if _, nested := v.(map[string]any); nested {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(redactSection(v.(map[string]any)))
			parts = append(parts, k+"="+strings.TrimSpace(b.String()))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return strings.Join(parts, " ")
}

// redactSection hides the literal values of secret fields of an integration section
// (references stay visible: they say where the secret lives, not what it is).
func redactSection(s map[string]any) map[string]any {
	out := maps.Clone(s)
	for _, k := range []string{"password", "accessKey", "secretKey", "ca"} {
		if v, ok := out[k].(string); ok && !strings.Contains(v, ":") {
			out[k] = "<literal>"
		}
	}
	return out
}

// printPreview prints what a change would do, like `terraform plan`.
func printPreview(out io.Writer, p workflows.Preview) {
	when := "now"
	if p.Pending > 0 {
		when = fmt.Sprintf("after the %d change(s) queued before it", p.Pending)
	}
	fmt.Fprintf(out, "plan (%s): %s\n", when, p.Summary)
	for _, ch := range p.Changed {
		fmt.Fprintf(out, "  ~ %s: %s\n", ch.Service, strings.Join(ch.Fields, ", "))
		for _, e := range ch.Env {
			fmt.Fprintf(out, "      %s %s: %s -> %s\n", map[string]string{"added": "+", "removed": "-", "changed": "~"}[string(e.Kind)], e.Key, e.Old, e.New)
		}
	}
	for _, l := range []struct {
		mark, verb string
		names      []string
	}{{"~", "restart", p.Restart}, {"+", "start", p.Start}, {"-", "stop", p.Stop}, {"=", "unchanged", p.Unchanged}} {
		if len(l.names) > 0 {
			fmt.Fprintf(out, "  %s %-9s %s\n", l.mark, l.verb, strings.Join(l.names, ", "))
		}
	}
	if p.Blocked != "" {
		fmt.Fprintf(out, "  ! blocked after it: %s\n", p.Blocked)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(out, "  note: %s\n", n)
	}
}

// printChangeResult prints what a change changed (values masked) and what was
// restarted, started and stopped.
func printChangeResult(out io.Writer, res workflows.ChangeResult) {
	fmt.Fprintf(out, "applied %s: %s\n", res.RequestID, res.Summary)
	if u := res.Upgrade; u != nil {
		printUpgrade(out, *u)
	}
	if len(res.Rotated) > 0 {
		fmt.Fprintf(out, "  new value for: %s\n", strings.Join(res.Rotated, ", "))
	}
	for _, ch := range res.Changed {
		fmt.Fprintln(out, "  changed "+ch.String())
	}
	for _, p := range []struct {
		verb  string
		names []string
	}{{"restarted", res.Restarted}, {"started", res.Started}, {"stopped", res.Stopped}} {
		if len(p.names) > 0 {
			fmt.Fprintf(out, "  %s: %s\n", p.verb, strings.Join(p.names, ", "))
		}
	}
	if len(res.Restarted)+len(res.Started)+len(res.Stopped) == 0 {
		fmt.Fprintln(out, "  nothing to restart, start or stop")
	}
	for _, p := range []struct {
		what  string
		names []string
	}{{"connector users created", res.UsersCreated}, {"connector users reactivated", res.UsersReactivated},
		{"connector users deactivated", res.UsersDeactivated}, {"connector registrations deleted", res.Unregistered}} {
		if len(p.names) > 0 {
			fmt.Fprintf(out, "  %s: %s\n", p.what, strings.Join(p.names, ", "))
		}
	}
	if res.Blocked != "" {
		fmt.Fprintf(out, "  blocked: %s (the workers wait for it; send the integration again to resume)\n", res.Blocked)
	}
}

// printUpgrade prints an upgrade's outcome, its pre-flight's findings and its phases.
func printUpgrade(out io.Writer, u workflows.UpgradeResult) {
	fmt.Fprintf(out, "  upgrade %s -> %s: %s\n", u.From, u.To, u.Outcome)
	for _, f := range u.Findings {
		fmt.Fprintf(out, "    %s\n", f)
	}
	for _, t := range u.Timings {
		fmt.Fprintf(out, "    %-20s %s\n", t.Phase, t.End.Sub(t.Start).Round(time.Millisecond))
	}
}
