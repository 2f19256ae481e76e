package wazuhstandin

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"sigs.k8s.io/yaml"
)

// apiYAMLRel is the API configuration file, relative to home.
const apiYAMLRel = "api/configuration/api.yaml"

// APIConfig is what the stand-in reads from api.yaml, defaults as in the 4.x
// api/api/configuration.py default_api_configuration.
type APIConfig struct {
	Host                string // first of host (a string or a list), default 0.0.0.0
	Port                int    // default 55000
	HTTPS               bool   // https.enabled, default yes
	MaxLoginAttempts    int    // access.max_login_attempts, default 50
	BlockTime           time.Duration
	MaxRequestPerMinute int // access.max_request_per_minute, default 300
}

// apiKeys are the top-level options the 4.x API schema allows.
var apiKeys = map[string]bool{
	"host": true, "port": true, "drop_privileges": true, "experimental_features": true,
	"max_upload_size": true, "authentication_pool_size": true, "intervals": true, "https": true,
	"logs": true, "cors": true, "cache": true, "access": true, "upload_configuration": true,
}

// LoadAPIConfig reads <home>/api/configuration/api.yaml; a missing file means the defaults.
func LoadAPIConfig(home string) (APIConfig, error) {
	c := APIConfig{Host: "0.0.0.0", Port: 55000, HTTPS: true, MaxLoginAttempts: 50,
		BlockTime: 300 * time.Second, MaxRequestPerMinute: 300}
	raw, err := os.ReadFile(filepath.Join(home, apiYAMLRel))
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("Error 2000 - Some parameters are not expected in the configuration file (WAZUH_PATH/%s): %v", apiYAMLRel, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return c, fmt.Errorf("Error 2000 - Some parameters are not expected in the configuration file (WAZUH_PATH/%s): %v", apiYAMLRel, err)
	}
	var unexpected []string
	for k := range doc {
		if !apiKeys[k] {
			unexpected = append(unexpected, k)
		}
	}
	sort.Strings(unexpected)
	if len(unexpected) > 0 {
		return c, fmt.Errorf("Error 2000 - Some parameters are not expected in the configuration file (WAZUH_PATH/%s): Additional properties are not allowed ('%s' was unexpected)", apiYAMLRel, unexpected[0])
	}
	typeErr := func(field, want string, v any) error {
		return fmt.Errorf("Error 2000 - Some parameters are not expected in the configuration file (WAZUH_PATH/%s): %v is not of type '%s'. Failed validating 'type' in schema['properties']['%s']", apiYAMLRel, v, want, field)
	}
	switch h := doc["host"].(type) {
	case nil:
	case string:
		c.Host = h
	case []any:
		if len(h) > 0 {
			c.Host = fmt.Sprint(h[0])
		}
	default:
		return c, typeErr("host", "string", h)
	}
	if v, ok := doc["port"]; ok {
		f, isNum := v.(float64)
		if !isNum || f != float64(int(f)) {
			return c, typeErr("port", "integer", v)
		}
		c.Port = int(f)
	}
	if https, ok := doc["https"].(map[string]any); ok {
		if v, ok := https["enabled"]; ok {
			b, isBool := v.(bool)
			if !isBool {
				return c, typeErr("https.enabled", "boolean", v)
			}
			c.HTTPS = b
		}
	}
	if access, ok := doc["access"].(map[string]any); ok {
		for field, dst := range map[string]*int{"max_login_attempts": &c.MaxLoginAttempts, "max_request_per_minute": &c.MaxRequestPerMinute} {
			if v, ok := access[field]; ok {
				f, isNum := v.(float64)
				if !isNum {
					return c, typeErr("access."+field, "integer", v)
				}
				*dst = int(f)
			}
		}
		if v, ok := access["block_time"]; ok {
			f, isNum := v.(float64)
			if !isNum {
				return c, typeErr("access.block_time", "integer", v)
			}
			c.BlockTime = time.Duration(f) * time.Second
		}
	}
	return c, nil
}
