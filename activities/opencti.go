package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/plan"
	"github.com/socflow/socflow/internal/spec"
)

// WaitOpenCTIHealthyInput names the platform to wait for.
type WaitOpenCTIHealthyInput struct {
	// Instance is the defaulted, validated spec.
	Instance spec.Instance `json:"instance"`
	// HealthAccessKey refers to the key of the /health endpoint.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
	ProbeWindow
}

// WaitOpenCTIHealthy polls the platform's /health until it answers 200. Not listening
// yet means initialising (first boot takes minutes, migrations hours): keep waiting and
// never restart it. 503 means a dependency is down: keep waiting and say which. 401
// means the key is wrong: waiting cannot fix that, so it is permanent.
func (a *Activities) WaitOpenCTIHealthy(ctx context.Context, in WaitOpenCTIHealthyInput) (ProbeResult, error) {
	key, err := a.resolve("opencti.healthAccessKey", in.HealthAccessKey)
	if err != nil {
		return ProbeResult{Dependency: "opencti"}, classify(err)
	}
	ep, err := a.pebble(in.Instance.Pebble)
	if err != nil {
		return ProbeResult{Dependency: "opencti"}, classify(err)
	}
	api := &openctiapi.Client{BaseURL: plan.LocalURL(plan.Input{Instance: in.Instance}), HTTP: a.httpClient()}
	return a.poll(ctx, "opencti", in.Window, func(ctx context.Context) (string, error) {
		status, body, err := api.Health(ctx, key)
		if err != nil {
			if !isConnRefused(err) {
				return "", fmt.Errorf("health endpoint did not answer: %w", err)
			}
			infos, perr := ep.services(ctx, []string{plan.PlatformService})
			if perr != nil {
				return "", fmt.Errorf("platform not listening yet, and %w", perr)
			}
			if ok, why := activeOrNot(infos[plan.PlatformService]); !ok {
				return "", fmt.Errorf("platform service is %s; last output: %s", why,
					ep.lastLogLines(ctx, []string{plan.PlatformService}, 3))
			}
			return "", errors.New("platform is initialising (running, port not open yet)")
		}
		switch status {
		case openctiapi.HealthOK:
			return "", nil
		case openctiapi.HealthDependency:
			return "", fmt.Errorf("platform reports a dependency down (HTTP 503): %s", body)
		case openctiapi.HealthKeyRejected:
			return "", &errPermanent{ErrTypeHealthKeyRejected,
				errors.New("platform rejected the health access key (HTTP 401): the platform runs with another APP__HEALTH_ACCESS_KEY than socflow stored")}
		}
		return "", fmt.Errorf("unexpected health answer: %s", body)
	})
}

// VerifyOpenCTIInput names the platform and the token to verify with.
type VerifyOpenCTIInput struct {
	// Instance is the defaulted, validated spec (its version is the one expected).
	Instance spec.Instance `json:"instance"`
	// AdminToken refers to the admin API token.
	AdminToken spec.SecretRef `json:"adminToken"`
}

// VerifyOpenCTIResult is what the platform says about itself.
type VerifyOpenCTIResult struct {
	// Version is about.version.
	Version string `json:"version"`
	// AdminEmail is me.user_email for the admin token.
	AdminEmail string `json:"adminEmail"`
}

// VerifyOpenCTI checks through GraphQL that the platform runs the requested version and
// that the admin token works; both mismatches are permanent: a human must look.
func (a *Activities) VerifyOpenCTI(ctx context.Context, in VerifyOpenCTIInput) (VerifyOpenCTIResult, error) {
	token, err := a.resolve("opencti.adminToken", in.AdminToken)
	if err != nil {
		return VerifyOpenCTIResult{}, classify(err)
	}
	api := &openctiapi.Client{BaseURL: plan.LocalURL(plan.Input{Instance: in.Instance}), Token: token, HTTP: a.httpClient()}
	callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	me, err := api.Me(callCtx)
	if errors.Is(err, openctiapi.ErrAuthRequired) {
		return VerifyOpenCTIResult{}, permanent(ErrTypeAuthFailed, errors.New("cannot verify opencti: the platform rejected the admin token socflow stored"))
	}
	if err != nil {
		return VerifyOpenCTIResult{}, fmt.Errorf("cannot query me: %w", err)
	}
	about, err := api.About(callCtx)
	if err != nil {
		return VerifyOpenCTIResult{}, fmt.Errorf("cannot query about: %w", err)
	}
	res := VerifyOpenCTIResult{Version: about.Version, AdminEmail: me.UserEmail}
	if about.Version != in.Instance.OpenCTI.Version {
		return res, permanent(ErrTypeVersionMismatch, fmt.Errorf("cannot verify opencti: the platform runs version %s, the spec asks for %s (fix opencti.version or the image)",
			about.Version, in.Instance.OpenCTI.Version))
	}
	return res, nil
}

// isConnRefused tells "nothing listens there yet" from other transport failures.
func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}
