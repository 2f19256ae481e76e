// Package openctiapi is a small typed client for the parts of OpenCTI's HTTP API socflow
// uses: the /health endpoint and GraphQL queries. Queries are constants; values travel
// only as GraphQL variables, never interpolated into query text.
package openctiapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to one OpenCTI platform.
type Client struct {
	// BaseURL is the platform URL including APP__BASE_PATH, without a trailing slash.
	BaseURL string
	// Token is the bearer token (an API token of a user) for GraphQL calls.
	Token string
	// HTTP is the client to use; callers set its timeout.
	HTTP *http.Client
	// noTokenField is set once the platform said User has no api_token (OpenCTI 7).
	noTokenField bool
}

// HealthStatus is the outcome of one /health call, in OpenCTI's own terms.
type HealthStatus int

// The answers /health gives.
const (
	HealthOK          HealthStatus = iota // 200: every dependency answers
	HealthDependency                      // 503: a dependency is down
	HealthKeyRejected                     // 401: wrong or default health key
	HealthUnexpected                      // any other answer
)

// Health calls GET {base}/health?health_access_key=KEY. A transport error (not
// listening yet) is returned as err; HTTP answers come back as a status and the body.
func (c *Client) Health(ctx context.Context, key string) (HealthStatus, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/health?health_access_key="+url.QueryEscape(key), nil)
	if err != nil {
		return HealthUnexpected, "", fmt.Errorf("cannot build health request: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// The URL carries the health key: never let it into an error's text.
		var ue *url.Error
		if errors.As(err, &ue) {
			return HealthUnexpected, "", fmt.Errorf("GET %s/health: %w", c.BaseURL, ue.Err)
		}
		return HealthUnexpected, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusOK:
		return HealthOK, text, nil
	case http.StatusServiceUnavailable:
		return HealthDependency, text, nil
	case http.StatusUnauthorized:
		return HealthKeyRejected, text, nil
	}
	return HealthUnexpected, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, text), nil
}

// GraphQLError is one entry of a GraphQL response's errors.
type GraphQLError struct {
	// Message is the human-readable error.
	Message string `json:"message"`
	// Name is OpenCTI's error code (AUTH_REQUIRED, FORBIDDEN_ACCESS, …), which the
	// real platform and pycti put at the top level of each error.
	Name string `json:"name,omitempty"`
	// Extensions carries extensions.data {http_status, genre} and, on some
	// versions, extensions.code.
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Code returns the error's code: its name, as pycti reads it (errors[0].name),
// or extensions.code where a version puts it there.
func (e GraphQLError) Code() string {
	if e.Name != "" {
		return e.Name
	}
	s, _ := e.Extensions["code"].(string)
	return s
}

// QueryError is a GraphQL answer with errors, the platform's own words and codes,
// so callers can tell "already exists" from a fault.
type QueryError struct {
	// Errors are the response's errors, first first.
	Errors []GraphQLError
}

// Error is the first error's message, as pycti reports it.
func (e *QueryError) Error() string { return "opencti graphql error: " + e.Errors[0].Message }

// Code is the first error's code (errors[0].name).
func (e *QueryError) Code() string { return e.Errors[0].Code() }

// Data is the first error's extensions.data field key ("" when absent).
func (e *QueryError) Data(key string) string {
	data, _ := e.Errors[0].Extensions["data"].(map[string]any)
	s, _ := data[key].(string)
	return s
}

// ErrAuthRequired is returned when the platform rejects the token.
var ErrAuthRequired = errors.New("opencti rejected the token (AUTH_REQUIRED)")

// Query runs one GraphQL query with variables and decodes data into out.
func (c *Client) Query(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("cannot encode graphql request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cannot build graphql request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach opencti graphql: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cannot read graphql response: %w", err)
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []GraphQLError  `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("cannot decode graphql response (HTTP %d): %.200s", resp.StatusCode, raw)
	}
	for _, e := range env.Errors {
		if e.Code() == "AUTH_REQUIRED" {
			return ErrAuthRequired
		}
	}
	if len(env.Errors) > 0 {
		return &QueryError{Errors: env.Errors}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("opencti graphql answered HTTP %d", resp.StatusCode)
	}
	return json.Unmarshal(env.Data, out)
}

// About is OpenCTI's `about` object.
type About struct {
	Version string `json:"version"`
}

// Me is the calling user.
type Me struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	UserEmail string `json:"user_email"`
}

const aboutQuery = `query SocflowAbout { about { version } }`
const meQuery = `query SocflowMe { me { id name user_email } }`

// About returns the platform version.
func (c *Client) About(ctx context.Context) (About, error) {
	var out struct {
		About About `json:"about"`
	}
	err := c.Query(ctx, aboutQuery, nil, &out)
	return out.About, err
}

// Me returns the user the token belongs to.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var out struct {
		Me Me `json:"me"`
	}
	err := c.Query(ctx, meQuery, nil, &out)
	return out.Me, err
}
