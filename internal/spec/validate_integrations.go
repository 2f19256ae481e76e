package spec

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var (
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$`)
	regionRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)
	bucketRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// OpenSearch checks an integrations.opensearch section, all but the names in
// allowMissingModules, which only the app can judge.
func (c *Checker) OpenSearch(o OpenSearch) { c.OpenSearchAt("integrations.opensearch", o) }

// OpenSearchAt checks an OpenSearch section at another path (Wazuh's indexer is
// OpenSearch-based: integrations.indexer).
func (c *Checker) OpenSearchAt(at string, o OpenSearch) {
	p := at + "."
	if len(o.URLs) == 0 {
		c.Add(p+"urls", "must list at least one node URL", "set "+p+"urls, e.g. [http://127.0.0.1:9200]")
	}
	anyHTTPS := false
	for i, u := range o.URLs {
		if msg := URLProblem(u, true); msg != "" {
			c.Add(fmt.Sprintf("%surls[%d]", p, i), msg, "write each node as http(s)://host:port, credentials in username/password")
		}
		anyHTTPS = anyHTTPS || strings.HasPrefix(u, "https://")
	}
	c.Username(p+"username", o.Username)
	switch {
	case o.Username != "" && o.Password.IsZero():
		c.Add(p+"password", "is required when username is set", "set "+p+"password or remove the username")
	case o.Username == "" && !o.Password.IsZero():
		c.Add(p+"username", "is required when password is set", "set "+p+"username or remove the password")
	}
	c.Secret(p+"password", o.Password, false, nil)
	c.Secret(p+"ca", o.CA, false, caProblem)
	if !o.CA.IsZero() && !anyHTTPS && len(o.URLs) > 0 {
		c.Add(p+"ca", "is set but no url uses https, so it would never be used", "use https:// urls or remove "+p+"ca")
	}
	switch o.Engine {
	case EngineAuto, EngineElk, EngineOpenSearch:
	default:
		c.Add(p+"engine", fmt.Sprintf("must be one of auto, elk, opensearch (got %q)", o.Engine), "use opensearch for OpenSearch, elk for Elasticsearch")
	}
	if o.Replicas < 0 {
		c.Add(p+"replicas", fmt.Sprintf("must be 0 or more (got %d)", o.Replicas), "use 0 for a single node, 1 or more for a cluster")
	}
	if r := o.SnapshotRepository; r != "" && !snapshotRepoRE.MatchString(r) {
		c.Add(p+"snapshotRepository", fmt.Sprintf("must be a repository name: lowercase letters, digits, '-', '_' or '.' (got %q)", r),
			"name a repository registered with PUT _snapshot/<name>")
	}
}

// snapshotRepoRE is what a snapshot repository's name may be.
var snapshotRepoRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,99}$`)

// prefixRE is what a queue prefix or a Redis namespace may hold: OpenCTI puts it
// into queue names and key names verbatim.
var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$`)

// RabbitMQ checks an integrations.rabbitmq section.
func (c *Checker) RabbitMQ(r RabbitMQ) {
	const p = "integrations.rabbitmq."
	c.Host(p+"host", r.Host)
	c.Port(p+"port", r.Port)
	c.Port(p+"managementPort", r.ManagementPort)
	if r.Port == r.ManagementPort && r.Port != 0 {
		c.Add(p+"managementPort", fmt.Sprintf("must differ from integrations.rabbitmq.port (both are %d)", r.Port),
			"use the management plugin's HTTP port, usually 15672")
	}
	if r.VHost == "" || strings.ContainsRune(r.VHost, 0) {
		c.Add(p+"vhost", fmt.Sprintf("must be a virtual host name (got %q)", r.VHost), `use "/" unless the broker has a dedicated vhost`)
	}
	if r.Username == "" {
		c.Add(p+"username", "is required", "set integrations.rabbitmq.username to a user with the administrator tag")
	} else {
		c.Username(p+"username", r.Username)
	}
	c.Secret(p+"password", r.Password, true, nil)
	if !prefixRE.MatchString(r.QueuePrefix) {
		c.Add(p+"queuePrefix", fmt.Sprintf("must be 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit (got %q)", r.QueuePrefix),
			"leave it out to use the instance name, which keeps instances on one broker apart")
	}
	switch r.QueueType {
	case QueueClassic, QueueQuorum:
	default:
		c.Add(p+"queueType", fmt.Sprintf("must be classic or quorum (got %q)", r.QueueType), "use classic unless the broker is a cluster")
	}
}

// Redis checks an integrations.redis section.
func (c *Checker) Redis(r Redis) {
	const p = "integrations.redis."
	c.Host(p+"host", r.Host)
	c.Port(p+"port", r.Port)
	c.Secret(p+"password", r.Password, false, nil)
	if !prefixRE.MatchString(r.Namespace) {
		c.Add(p+"namespace", fmt.Sprintf("must be 1-40 letters, digits, dots, dashes or underscores, starting with a letter or digit (got %q)", r.Namespace),
			"leave it out to use the instance name, which keeps instances on one Redis apart")
	}
	switch r.Mode {
	case RedisSingle:
	case RedisSentinel, RedisCluster:
		c.Add(p+"mode", fmt.Sprintf(`%q is not supported yet; only "single" is`, r.Mode),
			"point integrations.redis at one Redis node and set mode: single")
	default:
		c.Add(p+"mode", fmt.Sprintf(`must be "single" (got %q)`, r.Mode), "set mode: single")
	}
	const trimFix = "set integrations.redis.trimming to the maximum stream length, e.g. 2000000; untrimmed streams grow until Redis runs out of memory"
	switch {
	case r.Trimming == nil:
		c.Add(p+"trimming", "is required", trimFix)
	case *r.Trimming <= 0:
		c.Add(p+"trimming", fmt.Sprintf("must be greater than 0 (got %d)", *r.Trimming), trimFix)
	}
}

// S3 checks an integrations.s3 section.
func (c *Checker) S3(s S3) {
	const p = "integrations.s3."
	if msg := URLProblem(s.Endpoint, false); msg != "" {
		c.Add(p+"endpoint", msg, "write it as http(s)://host[:port] without a path, e.g. http://127.0.0.1:9000")
	}
	if !regionRE.MatchString(s.Region) {
		c.Add(p+"region", fmt.Sprintf("must be a region name such as us-east-1 (got %q)", s.Region), "use us-east-1 for MinIO unless it sets another region")
	}
	if msg := bucketProblem(s.Bucket); msg != "" {
		c.Add(p+"bucket", fmt.Sprintf("%s (got %q)", msg, s.Bucket), "follow S3 bucket naming rules, e.g. opencti-bucket")
	}
	c.Secret(p+"accessKey", s.AccessKey, true, nil)
	c.Secret(p+"secretKey", s.SecretKey, true, nil)
}

// Host checks a host name or IP address without scheme or port.
func (c *Checker) Host(field, h string) {
	switch {
	case h == "":
		c.Add(field, "is required", "set "+field+" to the service's host name or IP address")
	case !validHost(h):
		c.Add(field, fmt.Sprintf("must be a host name or IP address, without scheme or port (got %q)", h), "write only the host, e.g. 127.0.0.1")
	}
}

// Username checks a user name for control characters.
func (c *Checker) Username(field, u string) {
	if strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		c.Add(field, "must not contain control characters", "remove them from "+field)
	}
}

// validHost accepts an IP address or a DNS-style host name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return len(h) <= 253 && hostnameRE.MatchString(h)
}

// URLProblem says why s is not an absolute http(s) URL with a valid host and
// no credentials, query or fragment (nor path unless allowPath), or "".
func URLProblem(s string, allowPath bool) string {
	u, err := url.Parse(s)
	var why string
	switch {
	case err != nil:
		why = "must be an absolute http(s) URL"
	case u.Scheme != "http" && u.Scheme != "https", u.Opaque != "", u.Host == "":
		why = "must be an absolute http(s) URL"
	case u.User != nil:
		why = "must not carry credentials"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		why = "must not have a query or fragment"
	case !validHost(u.Hostname()):
		why = "must have a valid host"
	case !validURLPort(u.Port()):
		why = "must have a port between 1 and 65535"
	case !allowPath && u.Path != "" && u.Path != "/":
		why = "must not have a path"
	default:
		return ""
	}
	return fmt.Sprintf("%s (got %q)", why, s)
}

func validURLPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// bucketProblem applies S3's bucket naming rules, which MinIO enforces too.
func bucketProblem(b string) string {
	if !bucketRE.MatchString(b) {
		return "must be 3-63 lowercase letters, digits, dots or dashes, starting and ending with a letter or digit"
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return "must not have two dots, or a dot and a dash, next to each other"
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return "must not look like an IP address"
	}
	for _, pre := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, pre) {
			return fmt.Sprintf("must not start with the reserved prefix %q", pre)
		}
	}
	for _, suf := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, suf) {
			return fmt.Sprintf("must not end with the reserved suffix %q", suf)
		}
	}
	return ""
}
