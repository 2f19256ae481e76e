package opencti

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// ConnectorType is what a connector does, as OpenCTI's CONNECTOR_TYPE names it.
type ConnectorType string

// The connector types OpenCTI knows.
const (
	ExternalImport     ConnectorType = "EXTERNAL_IMPORT"
	InternalImportFile ConnectorType = "INTERNAL_IMPORT_FILE"
	InternalEnrichment ConnectorType = "INTERNAL_ENRICHMENT"
	InternalAnalysis   ConnectorType = "INTERNAL_ANALYSIS"
	InternalExportFile ConnectorType = "INTERNAL_EXPORT_FILE"
	Stream             ConnectorType = "STREAM"
)

// ConnectorTypes are the types in OpenCTI's order.
var ConnectorTypes = []ConnectorType{ExternalImport, InternalImportFile, InternalEnrichment, InternalAnalysis, InternalExportFile, Stream}

// Connector is one connector the instance runs (the spec's connectors list): its
// user, token and CONNECTOR_ID are socflow's, its process runs under the Pebble of
// its own container.
type Connector struct {
	// Name names the connector (CONNECTOR_NAME), its user connector-<name> and its
	// Pebble layer connector-<name>; 2-40 lowercase letters, digits or dashes.
	Name string `json:"name"`
	// Type is the connector's CONNECTOR_TYPE.
	Type ConnectorType `json:"type"`
	// Scope is CONNECTOR_SCOPE: MIME types for file import/export, entity types
	// for enrichment (required for those three), optional otherwise.
	Scope []string `json:"scope,omitempty"`
	// Command starts the connector.
	Command string `json:"command"`
	// WorkingDir is the connector's working directory (default: Pebble's).
	WorkingDir string `json:"workingDir,omitempty"`
	// Pebble is how to reach the connector's container's Pebble API.
	Pebble spec.Pebble `json:"pebble"`
	// LogLevel is CONNECTOR_LOG_LEVEL (default: opencti.logLevel).
	LogLevel LogLevel `json:"logLevel,omitempty"`
	// Config is the connector's own settings, rendered to its environment in
	// CONSTANT_CASE (my-option: MY_OPTION; booleans true/false), as the charm does.
	Config map[string]any `json:"config,omitempty"`
}

// ConnectorService is the Pebble service of a connector, in its layer ConnectorLayer.
const ConnectorService = "connector"

// ConnectorLayer is the label of a connector's Pebble layer.
func ConnectorLayer(name string) string { return "connector-" + name }

// ConnectorUser is the OpenCTI user a connector runs as.
func ConnectorUser(name string) string { return "connector-" + name }

// ConnectorEmail is the email of a connector's user.
func ConnectorEmail(name string) string { return name + "@opencti.local" }

// ConnectorGroup is the OpenCTI group of a connector's user: exporting files needs
// the Administrators' rights, every other type the Connectors group's.
func ConnectorGroup(t ConnectorType) string {
	if t == InternalExportFile {
		return "Administrators"
	}
	return "Connectors"
}

var (
	scopeRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)?$`)
	configKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)
)

// ConfigEnv renders a connector's config key to its environment variable, the
// charm's rule: dashes and dots become underscores, letters upper case.
func ConfigEnv(key string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(key))
}

// configValue renders a config value as the connector reads it from its environment.
func configValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), true
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// clone deep-copies the connector's scope and config.
func (c Connector) clone() Connector {
	out := c
	out.Scope = slices.Clone(c.Scope)
	out.Config = maps.Clone(c.Config)
	return out
}

// Connector returns the spec's connector of that name.
func (i Instance) Connector(name string) (Connector, bool) {
	for _, c := range i.Connectors {
		if c.Name == name {
			return c.clone(), true
		}
	}
	return Connector{}, false
}

// ConnectorNames are the names of the spec's connectors, in the spec's order.
func (i Instance) ConnectorNames() []string {
	names := make([]string, len(i.Connectors))
	for n, c := range i.Connectors {
		names[n] = c.Name
	}
	return names
}

// ValidateConnectors checks a list of connectors alone: each one's fields, names
// and containers unique (Validate checks a spec's list the same way).
func ValidateConnectors(list []Connector) error {
	var c checker
	c.connectors(list)
	return c.Err()
}

// connectors checks the connectors list: each connector's fields, names unique, and
// each in a container of its own (every connector's service is named connector).
func (c *checker) connectors(list []Connector) {
	seen := map[string]int{}
	containers := map[spec.Pebble]int{}
	for i, cn := range list {
		at := fmt.Sprintf("connectors[%d].", i)
		c.connector(at, cn)
		if first, dup := seen[cn.Name]; dup && cn.Name != "" {
			c.Add(at+"name", fmt.Sprintf("%q is already the name of connectors[%d]", cn.Name, first), "give each connector its own name")
		} else if !dup {
			seen[cn.Name] = i
		}
		if first, dup := containers[cn.Pebble]; dup && (cn.Pebble.Socket != "" || cn.Pebble.URL != "") {
			c.Add(at+"pebble", fmt.Sprintf("is the container of connectors[%d] (%s)", first, list[first].Name),
				"run each connector in its own container: its Pebble service is named "+ConnectorService+", as in the charm's rock")
		} else if !dup {
			containers[cn.Pebble] = i
		}
	}
}

// ValidateConnector checks one connector's fields, naming them under at (e.g.
// "connector."), for a change that carries a single connector.
func ValidateConnector(at string, cn Connector) error {
	var c checker
	c.connector(at, cn)
	return c.Err()
}

// connector checks one connector's fields, named under at.
func (c *checker) connector(at string, cn Connector) {
	c.Name(at+"name", cn.Name, "name the connector, e.g. mitre", "pick a name like mitre; it names the connector's user connector-<name>")
	types := make([]string, len(ConnectorTypes))
	for j, t := range ConnectorTypes {
		types[j] = string(t)
	}
	if !slices.Contains(ConnectorTypes, cn.Type) {
		c.Add(at+"type", fmt.Sprintf("must be one of %s (got %q)", strings.Join(types, ", "), cn.Type), "use the connector's CONNECTOR_TYPE")
	}
	c.scope(at+"scope", cn.Type, cn.Scope)
	c.Command(at+"command", cn.Command)
	if cn.WorkingDir != "" {
		c.AbsPath(at+"workingDir", cn.WorkingDir)
	}
	c.PebbleAt(at+"pebble", cn.Pebble)
	switch cn.LogLevel {
	case "", LogError, LogWarn, LogInfo, LogDebug:
	default:
		c.Add(at+"logLevel", fmt.Sprintf("must be one of error, warn, info, debug (got %q)", cn.LogLevel), "leave it empty to follow opencti.logLevel")
	}
	c.connectorConfig(at+"config", cn.Config)
}

// scope checks CONNECTOR_SCOPE: comma-free MIME or entity types; file import and
// export need MIME types, enrichment entity types, and those three need a scope.
func (c *checker) scope(at string, t ConnectorType, scope []string) {
	mime := t == InternalImportFile || t == InternalExportFile
	if len(scope) == 0 && (mime || t == InternalEnrichment) {
		what := map[bool]string{true: "MIME types, e.g. [application/pdf]", false: "entity types, e.g. [IPv4-Addr, Domain-Name]"}[mime]
		c.Add(at, "is required for a "+string(t)+" connector", "list the "+what+" it handles")
	}
	for j, s := range scope {
		f := fmt.Sprintf("%s[%d]", at, j)
		switch {
		case !scopeRE.MatchString(s):
			c.Add(f, fmt.Sprintf("must be a MIME type or an entity type such as text/csv or Indicator (got %q)", s), "one type per entry, no commas or spaces")
		case mime && !strings.Contains(s, "/"):
			c.Add(f, fmt.Sprintf("must be a MIME type for a %s connector (got %q)", t, s), "use e.g. application/pdf")
		case t == InternalEnrichment && strings.Contains(s, "/"):
			c.Add(f, fmt.Sprintf("must be an entity type for an enrichment connector (got %q)", s), "use e.g. IPv4-Addr")
		}
	}
}

// connectorConfig checks that every config key renders to its own environment
// variable, none of which socflow sets, and every value is a string, number or boolean.
func (c *checker) connectorConfig(at string, cfg map[string]any) {
	envs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		f := at + "." + k
		env := ConfigEnv(k)
		switch other, dup := envs[env]; {
		case !configKey.MatchString(k):
			c.Add(f, "is not a config key: letters, digits, dots, dashes and underscores, starting with a letter", "rename it, e.g. my-option")
			continue
		case strings.HasPrefix(env, "OPENCTI_") || strings.HasPrefix(env, "CONNECTOR_"):
			c.Add(f, "would overwrite "+env+", which socflow sets", "remove it; socflow sets OPENCTI_* and CONNECTOR_* from the connector's fields")
		case env == InstanceEnv:
			c.Add(f, "would overwrite "+env+", which socflow sets", "remove it")
		case dup:
			c.Add(f, fmt.Sprintf("renders to %s, as %s.%s does", env, at, other), "keep one of the two")
		}
		envs[env] = k
		if _, ok := configValue(cfg[k]); !ok {
			c.Add(f, fmt.Sprintf("must be a string, a number or a boolean (got %T)", cfg[k]), "write a single value; lists and maps have no environment form")
		}
	}
}

// ConnectorInput is what a connector's plan is computed from.
type ConnectorInput struct {
	// Instance is the defaulted, valid instance spec.
	Instance Instance
	// Connector is one of Instance's connectors.
	Connector Connector
	// Token is the connector's user's API token (OPENCTI_TOKEN).
	Token string
	// ID is the connector's CONNECTOR_ID, a UUIDv4 generated once.
	ID string
}

// ConnectorPlan is the Pebble layer that runs one connector in its container: the
// service is started by socflow once the platform is healthy, restarted by Pebble
// when it fails (pycti exits on a lost platform), and reaches the platform at its
// internal URL.
func ConnectorPlan(in ConnectorInput) layer.Layer {
	cn, o := in.Connector, in.Instance.OpenCTI
	env := map[string]string{
		"OPENCTI_URL":         LocalURL(Input{Instance: in.Instance}),
		"OPENCTI_TOKEN":       in.Token,
		"CONNECTOR_ID":        in.ID,
		"CONNECTOR_NAME":      cn.Name,
		"CONNECTOR_TYPE":      string(cn.Type),
		"CONNECTOR_SCOPE":     strings.Join(cn.Scope, ","),
		"CONNECTOR_LOG_LEVEL": string(cmp.Or(cn.LogLevel, o.LogLevel)),
		InstanceEnv:           in.Instance.Name,
	}
	for k, v := range cn.Config {
		env[ConfigEnv(k)], _ = configValue(v)
	}
	l := layer.Layer{
		Summary:     "OpenCTI connector " + cn.Name + " for socflow instance " + in.Instance.Name,
		Description: "Managed by socflow: started once the platform is healthy; its user and token are socflow's.",
		Services: map[string]layer.Service{ConnectorService: {
			Summary:     string(cn.Type) + " connector " + cn.Name,
			Override:    layer.OverrideReplace,
			Startup:     layer.StartupDisabled,
			Command:     cn.Command,
			WorkingDir:  cn.WorkingDir,
			Environment: env,
			OnFailure:   layer.ActionRestart,
			KillDelay:   layer.Duration(WorkerKillDelay),
		}},
	}
	return l.WithLoki(in.Instance.Logs.LokiURL(), spec.LogLabels("opencti", in.Instance.Name, "socflow_connector", cn.Name))
}

// ConnectorMask is what a diff of a connector's layer may show of its environment:
// socflow's own settings, not the token (a secret) nor the config values (they often
// hold the API keys of the connector's source).
func ConnectorMask(service, key, value string) string {
	switch {
	case key == "OPENCTI_TOKEN":
		return "<secret>"
	case key == InstanceEnv || strings.HasPrefix(key, "OPENCTI_") || strings.HasPrefix(key, "CONNECTOR_"):
		return value
	}
	return layer.Hidden
}

// ConnectorPreview is a connector's plan with its token and CONNECTOR_ID as
// placeholders: both are fixed for a connector of an instance, so two previews
// differ exactly when pushing the real plans would change the connector.
func ConnectorPreview(inst Instance, cn Connector) layer.Layer {
	return ConnectorPlan(ConnectorInput{Instance: inst, Connector: cn, Token: "<token of " + ConnectorUser(cn.Name) + ">", ID: "<connector id>"})
}
