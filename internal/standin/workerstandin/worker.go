// Package workerstandin is a test stand-in for the OpenCTI worker (worker.py), not
// product: it reads the worker's environment, needs a reachable platform that
// accepts its token at start, and dies after repeated failed polls, so that the
// orchestrator's ordering of platform and workers is tested on that behaviour.
package workerstandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

// Config is the worker's environment plus timing knobs for tests.
type Config struct {
	// URL is OPENCTI_URL, the platform's base URL including its base path.
	URL string
	// Token is OPENCTI_TOKEN.
	Token string
	// LogLevel is WORKER_LOG_LEVEL (default info).
	LogLevel slog.Level
	// PollInterval is the pause between polls (default 5s).
	PollInterval time.Duration
	// MaxFailures is how many consecutive failed polls end the worker (default 3).
	MaxFailures int
	// RequestTimeout bounds one GraphQL call (default 10s).
	RequestTimeout time.Duration
	// Stdout receives the JSON log lines (default os.Stdout).
	Stdout io.Writer
}

// ErrTokenRejected marks a platform that answered AUTH_REQUIRED to the worker's token.
var ErrTokenRejected = errors.New("cannot authenticate to OpenCTI: token rejected (AUTH_REQUIRED)")

// ConfigFromEnv reads OPENCTI_URL, OPENCTI_TOKEN and WORKER_LOG_LEVEL through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{URL: strings.TrimSpace(getenv("OPENCTI_URL")), Token: strings.TrimSpace(getenv("OPENCTI_TOKEN"))}
	if cfg.URL == "" {
		return Config{}, errors.New("cannot start without OPENCTI_URL")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return Config{}, fmt.Errorf("cannot use OPENCTI_URL=%q: want http(s)://host[:port][/base]", cfg.URL)
	}
	if cfg.Token == "" {
		return Config{}, errors.New("cannot start without OPENCTI_TOKEN")
	}
	lvl, err := standinlog.ParseLevel(getenv("WORKER_LOG_LEVEL"))
	if err != nil {
		return Config{}, fmt.Errorf("cannot use WORKER_LOG_LEVEL: %w", err)
	}
	cfg.LogLevel = lvl
	return cfg, nil
}

func (c Config) withDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	return c
}

// Run checks the platform once, failing at once like a real worker started
// before its platform, then polls until ctx ends (nil) or MaxFailures
// consecutive polls fail (error).
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	log := standinlog.New(cfg.Stdout, cfg.LogLevel)
	c := &client{url: strings.TrimRight(cfg.URL, "/") + "/graphql", token: cfg.Token, http: &http.Client{Timeout: cfg.RequestTimeout}}

	log.Info("Starting worker", "url", cfg.URL)
	me, err := c.me(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrTokenRejected) {
			log.Error("OpenCTI API token is invalid or the user is not allowed", "error", err.Error())
		} else {
			log.Error("OpenCTI API is not reachable. Waiting for OpenCTI API to start or check your configuration...", "error", err.Error())
		}
		return err
	}
	log.Info("Worker connected to OpenCTI", "user", me)

	failures := 0
	t := time.NewTicker(cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("Worker stopped")
			return nil
		case <-t.C:
		}
		if _, err := c.me(ctx); err != nil {
			if ctx.Err() != nil {
				log.Info("Worker stopped")
				return nil
			}
			failures++
			log.Warn("Cannot poll OpenCTI", "error", err.Error(), "consecutive_failures", failures)
			if failures >= cfg.MaxFailures {
				log.Error(fmt.Sprintf("OpenCTI unreachable for %d consecutive polls, exiting", failures))
				return fmt.Errorf("cannot poll OpenCTI %d times in a row: %w", failures, err)
			}
			continue
		}
		if failures > 0 {
			log.Info("OpenCTI reachable again")
		}
		failures = 0
		log.Debug("Polled OpenCTI")
	}
}

// client is a minimal GraphQL client: the worker needs one query, not a library.
type client struct {
	url, token string
	http       *http.Client
}

// me asks who the token belongs to and returns the user's name.
func (c *client) me(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"query": "query { me { id name } }"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("cannot build request to %s: %w", c.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach OpenCTI at %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("cannot query OpenCTI at %s: %s", c.url, resp.Status)
	}
	var out struct {
		Data struct {
			Me *struct{ ID, Name string }
		}
		Errors []struct {
			Message    string
			Extensions struct{ Code string }
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("cannot decode OpenCTI answer: %w", err)
	}
	if len(out.Errors) > 0 {
		if out.Errors[0].Extensions.Code == "AUTH_REQUIRED" {
			return "", ErrTokenRejected
		}
		return "", fmt.Errorf("cannot query me: %s", out.Errors[0].Message)
	}
	if out.Data.Me == nil {
		return "", errors.New("cannot query me: empty answer")
	}
	return out.Data.Me.Name, nil
}
