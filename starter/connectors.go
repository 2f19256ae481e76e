package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

const connectorUse = `usage: starter connector add NAME -f connector.yaml [--signal] [--request-id ID]   (one entry of the spec's connectors)
       starter connector remove NAME CONNECTOR [--signal] [--request-id ID]
       starter connector list NAME`

// cmdConnector adds, removes or lists an instance's connectors: add and remove send
// AddConnector and RemoveConnector like every change (preview first); list reads the
// instance's status.
func cmdConnector(ctx context.Context, args []string, out io.Writer) error {
	if len(args) < 1 {
		return errors.New(connectorUse)
	}
	switch args[0] {
	case "add":
		ca, err := parseChangeArgs(args[1:], 1, connectorUse)
		if err != nil {
			return err
		}
		if ca.file == "" || len(ca.values) > 0 {
			return errors.New(connectorUse)
		}
		data, err := os.ReadFile(ca.file)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", ca.file, err)
		}
		var cn map[string]any
		if err := yaml.Unmarshal(data, &cn); err != nil {
			return fmt.Errorf("cannot parse %s: %w", ca.file, err)
		}
		return sendChange(ctx, out, ca, workflows.AddConnectorUpdate, map[string]any{"connector": cn})
	case "remove":
		ca, err := parseChangeArgs(args[1:], 2, connectorUse)
		if err != nil {
			return err
		}
		return sendChange(ctx, out, ca, workflows.RemoveConnectorUpdate, map[string]any{"name": ca.args[1]})
	case "list":
		if len(args) != 2 {
			return errors.New(connectorUse)
		}
		c, err := workerapp.Dial(ctx, nil, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		st, err := queryInstance(ctx, c, workflows.InstanceWorkflowID(args[1]))
		if err != nil {
			return err
		}
		if len(st.Connectors) == 0 {
			fmt.Fprintf(out, "instance %s runs no connectors\n", args[1])
			return nil
		}
		printConnectors(out, st.Connectors, time.Now())
		return nil
	}
	return errors.New(connectorUse)
}

// printConnectors prints connectors as a table: state, service, registration and the
// age of the last ping, and why one is waiting.
func printConnectors(out io.Writer, list []workflows.ConnectorStatus, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tTYPE\tSTATE\tSERVICE\tREGISTERED\tLAST PING\tREASON")
	for _, c := range list {
		ping := "-"
		if !c.LastPing.IsZero() {
			ping = now.Sub(c.LastPing).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\n", c.Name, c.Type, c.State, orDash(c.Service), c.Registered, ping, orDash(c.Reason))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
